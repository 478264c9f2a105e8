"""Shared fixtures: real SQLite files in temporary folders, a real PostgreSQL when configured."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from support import CLI, ORIGIN, PASSWORD, PRODUCER, Api, login, registration

from ledger import keys
from ledger.note import NoteSigner
from ledger.store import LedgerStore, open_engine
from ocop_trace.app import create_app
from ocop_trace.ledger_setup import init_ledger, open_service
from ocop_trace.settings import Settings

# The browser fixtures (a served demo, Debian's chromium) for every page test.
pytest_plugins = ["browser"]
VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"
POSTGRES_ENV = "TRACE_TEST_POSTGRES_URL"


def postgres_admin_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV)
    if not url and os.environ.get("CI"):
        pytest.fail(f"{POSTGRES_ENV} must be set in CI so the PostgreSQL tests run")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(f"set {POSTGRES_ENV}=postgresql://postgres@127.0.0.1:5432/test to run")
    name = f"ocop_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(
        make_url(admin).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder for the command line, with its database and keys in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRACE_DATABASE_URL", f"sqlite:///{tmp_path / 'trace.db'}")
    monkeypatch.setenv("TRACE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.delenv("TRACE_ROOT_KEY", raising=False)
    return tmp_path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes this runs on a SQLite file and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("postgres_url"))


@dataclass
class LedgerKit:
    """A ledger with its genesis entry, and keys for each role."""

    store: LedgerStore
    root: Ed25519PrivateKey
    ledger_key: Ed25519PrivateKey
    council: Ed25519PrivateKey
    producer: Ed25519PrivateKey
    url: str

    @property
    def root_key_id(self) -> str:
        return keys.key_id(keys.public_bytes(self.root))


def make_kit(url: str) -> LedgerKit:
    root, ledger_key = keys.generate(), keys.generate()
    council, producer = keys.generate(), keys.generate()
    store = LedgerStore(
        open_engine(url),
        origin=ORIGIN,
        root_key_id=keys.key_id(keys.public_bytes(root)),
        signer=NoteSigner(ORIGIN, ledger_key),
        checkpoint_interval=3600,
    )
    store.create_schema()
    store.append(
        [
            registration(root, ledger_key, "ledger", [], ORIGIN),
            registration(
                root,
                council,
                "council",
                ["key.registered", "key.revoked", "rating.recorded"],
                "council",
                may_grant=["batch.registered", "batch.event"],
            ),
            registration(
                council, producer, "producer", ["batch.registered", "batch.event"], "producer"
            ),
        ]
    )
    store.publish_checkpoint()
    return LedgerKit(store, root, ledger_key, council, producer, url)


@pytest.fixture
def kit(db_url: str) -> LedgerKit:
    return make_kit(db_url)


@pytest.fixture
def sqlite_kit(tmp_path: Path) -> LedgerKit:
    return make_kit(f"sqlite:///{tmp_path / 'ledger.db'}")


# -- the HTTP API, on each database ------------------------------------------------------
def open_api(db_url: str, key_dir: Path) -> Api:
    """A served ledger with the producer registered and a user of each role signed in."""
    # page_cache_seconds=0: every scan sees the ledger as it is (the lag has its own test).
    settings = Settings(
        database_url=db_url,
        key_dir=key_dir,
        checkpoint_interval=3600,
        page_cache_seconds=0,
        page_checkpoint_seconds=0,
    )
    init_ledger(settings)
    service = open_service(settings)
    service.create_user(CLI, "council", PASSWORD, "council", "")
    client = TestClient(create_app(settings))
    tokens = {"council": login(client, "council")}
    assert (
        client.post(
            "/api/v1/producers",
            json=PRODUCER,
            headers={"Authorization": f"Bearer {tokens['council']}"},
        ).status_code
        == 201
    )
    for username, role, producer in (
        ("producer", "producer", "htx-tai-hoan"),
        ("inspector", "inspector", ""),
    ):
        answer = client.post(
            "/api/v1/users",
            headers={"Authorization": f"Bearer {tokens['council']}"},
            json={
                "username": username,
                "password": PASSWORD,
                "role": role,
                "producer_id": producer,
            },
        )
        assert answer.status_code == 201, answer.text
        tokens[role] = login(client, username)
    return Api(client, service, tokens, settings)


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    opened = open_api(db_url, tmp_path / "keys")
    yield opened
    opened.client.close()
    opened.service.engine.dispose()
