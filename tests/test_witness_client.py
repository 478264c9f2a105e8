"""The log's witness client against real witnesses over HTTP, on a real ledger (SQLite file)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from conftest import LedgerKit, make_kit
from support import ORIGIN, registration
from witness_support import free_port, serving, silent_server

from ledger import keys
from ledger.cosign_store import CosignatureStore
from ledger.cosignature import parse_cosigner_vkey
from ledger.note import Checkpoint, NoteSigner, format_checkpoint, format_verifier_key, sign_note
from ledger.policy import Policy, PolicyWitness, check_quorum
from ledger.store import LedgerStore, open_engine
from ocop_trace.witness.app import create_witness_app
from ocop_trace.witness.cli import init_witness
from ocop_trace.witness.client import Cosignature, WitnessClient, witness_once
from ocop_trace.witness.settings import WitnessSettings
from ocop_trace.witness.state import WitnessStore


def grow(kit: LedgerKit, count: int, store: LedgerStore | None = None) -> str:
    """Append `count` producer registrations and publish a checkpoint; returns its note."""
    store = store or kit.store
    store.append(
        [
            registration(kit.council, keys.generate(), "producer", ["batch.registered"], "p")
            for _ in range(count)
        ]
    )
    return store.publish_checkpoint()


def make_witness(directory: Path, kit: LedgerKit, name: str) -> WitnessSettings:
    settings = WitnessSettings(dir=directory)
    log_vkey = format_verifier_key(ORIGIN, keys.public_bytes(kit.ledger_key))
    init_witness(settings, name, [log_vkey])
    return settings


def policy_of(*pairs: tuple[WitnessSettings, str], quorum: int | None = None) -> Policy:
    witnesses = [
        PolicyWitness(f"w{i}", parse_cosigner_vkey(settings.vkey_file.read_text().strip()), url)
        for i, (settings, url) in enumerate(pairs, 1)
    ]
    return Policy.k_of_n(witnesses, len(witnesses) if quorum is None else quorum)


@contextmanager
def witnesses(
    tmp_path: Path, kit: LedgerKit, count: int
) -> Iterator[list[tuple[WitnessSettings, str]]]:
    with ExitStack() as stack:
        running = []
        for i in range(count):
            settings = make_witness(tmp_path / f"w{i}", kit, f"witness{i}.example/w")
            running.append((settings, stack.enter_context(serving(create_witness_app(settings)))))
        yield running


def held_size(url: str) -> int | None:
    size = httpx.get(f"{url}/").json()["logs"][0]["size"]
    return None if size is None else int(size)


@pytest.fixture
def kit(tmp_path: Path) -> LedgerKit:
    return make_kit(f"sqlite:///{tmp_path / 'ledger.db'}")


def test_every_witness_cosigns_and_the_store_serves_the_quorum(
    tmp_path: Path, kit: LedgerKit
) -> None:
    cosigns = CosignatureStore(kit.store)
    cosigns.create_schema()
    with witnesses(tmp_path, kit, 2) as running:
        policy = policy_of(*running)
        found = witness_once(
            policy, kit.store, lambda c: cosigns.save(c.size, c.witness.key, c.line, c.timestamp)
        )
        assert sorted(c.witness.name for c in found) == ["w1", "w2"]
        size = kit.store.size()
        assert {c.size for c in found} == {size}
        assert [held_size(url) for _, url in running] == [size, size]
    note = kit.store.latest_checkpoint()
    assert note is not None
    cosigned = cosigns.cosigned(note, size)
    result = check_quorum(cosigned, policy)
    assert (result.met, result.cosigned) == (True, ("w1", "w2"))
    assert cosigns.latest_with_quorum(policy) == (cosigned, result)
    assert cosigns.witness_sizes() == {w.key.public.hex(): size for w in policy.witnesses}
    # Saved twice, kept once; the note is not given a line twice.
    cosigns.save(found[0].size, found[0].witness.key, found[0].line, found[0].timestamp)
    assert cosigns.cosigned(cosigned, size) == cosigned


def test_a_409_teaches_the_client_the_witness_size(tmp_path: Path, kit: LedgerKit) -> None:
    with witnesses(tmp_path, kit, 1) as running:
        policy = policy_of(*running)
        first = witness_once(policy, kit.store)  # this client starts from 0: 200
        assert len(first) == 1
        grow(kit, 5)
        # A new client that knows nothing sends old 0, gets 409 with the held size, then
        # sends the proof from there.
        again = witness_once(policy, kit.store)
        assert [c.size for c in again] == [kit.store.size()]
        assert held_size(running[0][1]) == kit.store.size()
        # A restarted client told where the witness stands starts with the right proof.
        grow(kit, 2)
        known = {policy.witnesses[0].key.public.hex(): kit.store.size() - 2}
        assert [c.size for c in witness_once(policy, kit.store, known_sizes=known)] == [
            kit.store.size()
        ]


def test_down_and_hanging_witnesses_do_not_hold_up_the_others(
    tmp_path: Path, kit: LedgerKit
) -> None:
    with witnesses(tmp_path, kit, 1) as running, silent_server() as hanging:
        down = f"http://127.0.0.1:{free_port()}"
        others = [make_witness(tmp_path / n, kit, f"{n}.example/w") for n in ("down", "hang")]
        policy = policy_of(running[0], (others[0], down), (others[1], hanging), quorum=1)
        started = time.monotonic()
        found = witness_once(policy, kit.store, timeout=1.0)
        elapsed = time.monotonic() - started
        assert [c.witness.name for c in found] == ["w1"]
        assert elapsed < 3.0, elapsed


def test_the_background_client_follows_checkpoints_and_a_late_witness_catches_up(
    tmp_path: Path, kit: LedgerKit
) -> None:
    cosigns = CosignatureStore(kit.store)
    cosigns.create_schema()
    late_settings = make_witness(tmp_path / "late", kit, "late.example/w")
    late_port = free_port()
    with witnesses(tmp_path, kit, 1) as running, silent_server() as hanging:
        hang_settings = make_witness(tmp_path / "hang", kit, "hang.example/w")
        policy = policy_of(
            running[0],
            (late_settings, f"http://127.0.0.1:{late_port}"),
            (hang_settings, hanging),
            quorum=2,
        )
        got: list[Cosignature] = []

        def keep(c: Cosignature) -> None:
            got.append(c)
            cosigns.save(c.size, c.witness.key, c.line, c.timestamp)

        client = WitnessClient(policy, kit.store, keep, timeout=5.0, interval=0.2, max_backoff=0.5)
        loop = asyncio.new_event_loop()
        task = loop.create_task(client.run())

        def run() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            # The hanging witness holds its request for 5 s; w1's cosignature comes at once.
            size = kit.store.size()
            wait_for(lambda: any(c.witness.name == "w1" and c.size == size for c in got), 3.0)
            assert cosigns.latest_with_quorum(policy) is None  # one of two
            grow(kit, 3)
            client.notify()
            size = kit.store.size()
            wait_for(lambda: any(c.witness.name == "w1" and c.size == size for c in got), 3.0)
            # The late witness comes up: its cosignature follows within the backoff.
            with serving(create_witness_app(late_settings), late_port):
                wait_for(lambda: any(c.witness.name == "w2" for c in got), 5.0)
            found = cosigns.latest_with_quorum(policy)
            assert found is not None
            assert found[1].cosigned == ("w1", "w2")
            assert all(c.witness.name != "w3" for c in got)
        finally:
            loop.call_soon_threadsafe(task.cancel)
            thread.join(10)


def wait_for(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.02)


def test_rolled_back_and_resigned_ledger_is_refused(tmp_path: Path, kit: LedgerKit) -> None:
    """Issue 14's attack: restore an old copy of the database, append another future, re-sign
    with the ledger key the server holds. The witnesses refuse, and no quorum forms."""
    backup = tmp_path / "before.db"
    with sqlite3.connect(tmp_path / "ledger.db") as src, sqlite3.connect(backup) as dst:
        src.backup(dst)
    grow(kit, 4)  # the honest history: say, a recall
    cosigns = CosignatureStore(kit.store)
    cosigns.create_schema()
    with witnesses(tmp_path, kit, 2) as running:
        policy = policy_of(*running)
        honest = witness_once(policy, kit.store)
        assert len(honest) == 2
        honest_size = kit.store.size()
        # The operator rolls back to the copy and writes a longer, different future.
        rolled = LedgerStore(
            open_engine(f"sqlite:///{backup}"),
            origin=ORIGIN,
            root_key_id=kit.root_key_id,
            signer=NoteSigner(ORIGIN, kit.ledger_key),
            checkpoint_interval=3600,
        )
        forged = grow(kit, 10, store=rolled)
        assert rolled.size() > honest_size
        refused = witness_once(
            policy, rolled, known_sizes={w.key.public.hex(): honest_size for w in policy.witnesses}
        )
        assert refused == []
        assert [held_size(url) for _, url in running] == [honest_size, honest_size]
        # Nor does a fresh client (old size 0, then 409) get anything.
        assert witness_once(policy, rolled) == []
        for settings, _ in running:  # each witness kept the forged checkpoints it refused
            evidence = WitnessStore(settings.database).evidence(ORIGIN)
            assert len(evidence) == 2
            assert all(forged.encode() in body for _, body in evidence)
    assert not check_quorum(forged, policy).met


def test_a_witness_holding_a_fork_refuses_with_422(tmp_path: Path, kit: LedgerKit) -> None:
    with witnesses(tmp_path, kit, 1) as running:
        url = running[0][1]
        fake = sign_note(
            format_checkpoint(Checkpoint(ORIGIN, 1, bytes(32))),
            [NoteSigner(ORIGIN, kit.ledger_key)],
        )
        answer = httpx.post(f"{url}/add-checkpoint", content=b"old 0\n\n" + fake.encode())
        assert answer.status_code == 200
        assert witness_once(policy_of(*running), kit.store) == []
        assert held_size(url) == 1
