"""TRACE_READ_DATABASE_URL: pages, proofs, tiles and /checkpoint from a streaming replica.

The test starts its own pair of PostgreSQL clusters (initdb, then pg_basebackup -R for a hot
standby on another port), so nothing about the shared test server's replication settings
matters. Missing PostgreSQL binaries fail the test with a message: CI installs them.
"""

from __future__ import annotations

import base64
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import open_api
from fastapi.testclient import TestClient
from pages import HTML, Page, link
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from support import Api, issue_labels, issued_serials

from ocop_trace.app import create_app


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        pytest.fail(
            f"the PostgreSQL server binary {name!r} is missing: install postgresql "
            "(apt-get install postgresql) to run the read replica test"
        )
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; the distribution's 'postgres' user can.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _run(args: list[str]) -> None:
    done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"


@dataclass
class Pair:
    primary_url: str
    replica_url: str
    primary: Engine  # AUTOCOMMIT, for the test's own looks
    replica: Engine

    def caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the replica has replayed everything the primary committed."""
        with self.primary.connect() as conn:
            target = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.replica.connect() as conn:
                behind = conn.execute(
                    text("SELECT pg_wal_lsn_diff(:t, pg_last_wal_replay_lsn()) > 0"), {"t": target}
                ).scalar_one()
            if not behind:
                return
            time.sleep(0.05)
        raise AssertionError("the replica did not catch up with the primary")

    def replay(self, on: bool) -> None:
        with self.replica.connect() as conn:
            conn.execute(text(f"SELECT pg_wal_replay_{'resume' if on else 'pause'}()"))


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    initdb, pg_ctl, basebackup = _bin("initdb"), _bin("pg_ctl"), _bin("pg_basebackup")
    folder = Path(tempfile.mkdtemp(prefix="ocop-replica-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    primary_dir, replica_dir = folder / "primary", folder / "replica"
    ports = _free_port(), _free_port()
    started: list[Path] = []
    try:
        # initdb's pg_hba.conf trusts local and 127.0.0.1 connections, replication included.
        _run([initdb, "-D", str(primary_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        settings = (
            f"port = {ports[0]}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{primary_dir}'\nfsync = off\n"
            "wal_level = replica\nmax_wal_senders = 4\n"
        )
        _append(primary_dir / "postgresql.conf", settings)
        _run([pg_ctl, "-D", str(primary_dir), "-l", str(folder / "primary.log"), "-w", "start"])
        started.append(primary_dir)
        # -R writes standby.signal and primary_conninfo: a hot standby streaming from it.
        source = ["-h", "127.0.0.1", "-p", str(ports[0]), "-U", "postgres"]
        _run([basebackup, *source, "-D", str(replica_dir), "-R", "-X", "stream"])
        _append(
            replica_dir / "postgresql.conf",
            f"port = {ports[1]}\nunix_socket_directories = '{replica_dir}'\nhot_standby = on\n",
        )
        _run([pg_ctl, "-D", str(replica_dir), "-l", str(folder / "replica.log"), "-w", "start"])
        started.append(replica_dir)
        urls = [f"postgresql://postgres@127.0.0.1:{port}/postgres" for port in ports]
        psycopg = [u.replace("postgresql:", "postgresql+psycopg:") for u in urls]
        engines = [create_engine(u, isolation_level="AUTOCOMMIT") for u in psycopg]
        with engines[1].connect() as conn:
            assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one()
        yield Pair(urls[0], urls[1], engines[0], engines[1])
        for engine in engines:
            engine.dispose()
    finally:
        for data in reversed(started):
            subprocess.run(
                _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(folder, ignore_errors=True)


def _append(path: Path, lines: str) -> None:
    # The file belongs to the server's user; appending as root keeps its owner.
    with path.open("a") as handle:
        handle.write(lines)


def _checkpoint(note: str) -> tuple[int, str]:
    """(size, short root) of a checkpoint note, as a page prints them."""
    lines = note.split("\n")
    return int(lines[1]), base64.b64decode(lines[2]).hex()[:16]


def _named(page: Page) -> tuple[int, str]:
    """The checkpoint a page names: 'Checkpoint: {size} entries, root {root}.'"""
    found = re.search(r"(\d[\d.,]*)\D+([0-9a-f]{16})", page.fields["text:checkpoint"])
    assert found, page.fields["text:checkpoint"]
    return int(re.sub(r"\D", "", found[1])), found[2]


def _proofs(page_html: str) -> list[str]:
    return re.findall(r'data-proof="(\w+)"', page_html)


@pytest.fixture
def served(pair: Pair, tmp_path: Path) -> Iterator[tuple[Api, TestClient]]:
    """The primary's app (as every test's), and one reading from the replica."""
    with pair.primary.connect() as conn:  # each test on a fresh ledger in the module's pair
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    pair.replay(True)
    api = open_api(pair.primary_url, tmp_path / "keys")
    pair.caught_up()
    settings = api.settings.model_copy(update={"read_database_url": pair.replica_url})
    reader = TestClient(create_app(settings))
    yield api, reader
    pair.replay(True)
    reader.close()
    api.client.close()
    api.service.engine.dispose()
    reader.app.state.service.engine.dispose()  # type: ignore[attr-defined]
    reader.app.state.public.store.engine.dispose()  # type: ignore[attr-defined]


def test_pages_proofs_and_tiles_are_read_from_the_replica(
    pair: Pair, served: tuple[Api, TestClient]
) -> None:
    api, reader = served
    assert issue_labels(api, 3).status_code == 201
    note = api.service.store.publish_checkpoint()
    serial = issued_serials(api)[0]
    pair.caught_up()
    answer = reader.get(link(serial), headers=HTML)
    assert answer.status_code == 200, answer.text
    page = Page(answer.text)
    assert page.verdict == "genuine"
    assert _named(page) == _checkpoint(note)
    assert _proofs(answer.text)
    assert set(_proofs(answer.text)) == {"verified"}
    assert reader.get("/checkpoint").text == note
    assert reader.get("/api/v1/checkpoint").text == note
    assert reader.get("/tile/0/000.p/" + str(_checkpoint(note)[0])).status_code == 200
    proof = reader.get("/api/v1/entries/1").json()
    assert proof["tree_size"] == api.service.store.size()

    # With replay paused, what the primary adds is invisible to the reader: it reads there.
    pair.replay(False)
    assert api.post("/api/v1/batches", {**_BATCH2}, "producer").status_code == 201
    assert api.client.get("/b/mien-2026-002", headers=HTML).status_code == 200
    assert reader.get("/b/mien-2026-002", headers=HTML).status_code == 404


def test_writes_go_to_the_primary(pair: Pair, served: tuple[Api, TestClient]) -> None:
    api, reader = served
    assert issue_labels(api, 1).status_code == 201
    api.service.store.publish_checkpoint()
    pair.caught_up()
    # An append through the reading app: the replica is read-only, so a 201 means the
    # primary took it, and the primary has it at once.
    producer = {"Authorization": f"Bearer {api.tokens['producer']}"}
    answer = reader.post("/api/v1/batches", json=_BATCH2, headers=producer)
    assert answer.status_code == 201, answer.text
    with pair.primary.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM batch WHERE id = 'mien-2026-002'")).scalar()
    # Scans of a page read from the replica are counted on the primary.
    serial = issued_serials(api)[0]
    assert reader.get(link(serial), headers=HTML).status_code == 200
    reader.app.state.scans.flush()  # type: ignore[attr-defined]
    with pair.primary.connect() as conn:
        counted = conn.execute(
            text("SELECT count(*) FROM scan_network WHERE serial = :s"), {"s": serial}
        ).scalar()
    assert counted == 1


def test_a_lagging_replica_names_a_checkpoint_it_holds(
    pair: Pair, served: tuple[Api, TestClient]
) -> None:
    api, reader = served
    assert issue_labels(api, 2).status_code == 201
    old = api.service.store.publish_checkpoint()
    serial = issued_serials(api)[0]
    pair.caught_up()
    pair.replay(False)  # the replica lags from here
    producer = {"Authorization": f"Bearer {api.tokens['producer']}"}
    event = {"biz_step": "shipping", "at": "2026-01-06T08:00:00Z", "place": "Chợ Đồng Xuân"}
    for hour in ("08", "09", "10"):
        answer = api.client.post(
            "/api/v1/batches/mien-2026-001/events",
            json={**event, "at": f"2026-01-06T{hour}:00:00Z"},
            headers=producer,
        )
        assert answer.status_code == 201, answer.text
    new = api.service.store.publish_checkpoint()
    assert _checkpoint(new)[0] > _checkpoint(old)[0]

    lagging = reader.get(link(serial), headers=HTML)
    assert lagging.status_code == 200
    assert _named(Page(lagging.text)) == _checkpoint(old)  # what the replica holds
    assert set(_proofs(lagging.text)) == {"verified"}  # every entry proven against it
    assert "Chợ Đồng Xuân" not in lagging.text  # and no entry newer than the replica
    assert reader.get("/checkpoint").text == old
    primary_page = api.client.get(link(serial), headers=HTML)
    assert _named(Page(primary_page.text)) == _checkpoint(new)
    assert "Chợ Đồng Xuân" in primary_page.text

    pair.replay(True)
    pair.caught_up()
    caught = reader.get(link(serial), headers=HTML)
    assert _named(Page(caught.text)) == _checkpoint(new)
    assert set(_proofs(caught.text)) == {"verified"}
    assert "Chợ Đồng Xuân" in caught.text


def test_one_connection_reads_one_snapshot(pair: Pair, served: tuple[Api, TestClient]) -> None:
    """What a page reads after it took its checkpoint is from the same state, even while
    the replica replays appends under it."""
    api, reader = served
    public = reader.app.state.public  # type: ignore[attr-defined]
    assert public.replica
    with public.connection() as conn:
        before = public.store.state(conn)
        assert issue_labels(api, 1).status_code == 201
        api.service.store.publish_checkpoint()
        pair.caught_up()
        assert public.store.state(conn) == before
    with public.connection() as conn:
        assert public.store.state(conn) > before


_BATCH2 = {
    "id": "mien-2026-002",
    "product_id": "mien-dong-tai-hoan",
    "lot": "L2602",
    "produced_on": "2026-01-05",
    "quantity": 1000,
    "unit": "g",
    "origin": "thôn Chè Cọ, xã Côn Minh",
}
