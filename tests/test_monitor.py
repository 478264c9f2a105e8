"""The monitor, end to end: a real ledger (SQLite file) served as tiles over HTTP."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import LedgerKit, make_kit
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from support import ORIGIN, registration
from witness_support import free_port, serving

from ledger import keys
from ledger.cosign_store import CosignatureStore
from ledger.cosignature import Cosigner
from ledger.note import NoteSigner, sign_note, split_note
from ledger.store import LedgerStore, open_engine
from ocop_trace.witness.monitor import STATE_FORMAT, load_state, monitor
from ocop_trace.witness.tile_routes import create_tiles_app


def grow(kit: LedgerKit, count: int, store: LedgerStore | None = None) -> str:
    store = store or kit.store
    for start in range(0, count, 100):
        store.append(
            [
                registration(kit.council, keys.generate(), "producer", ["batch.registered"], "p")
                for _ in range(min(100, count - start))
            ]
        )
    return store.publish_checkpoint()


class Run:
    """monitor() with its output captured."""

    def __init__(self, kit: LedgerKit, state: Path) -> None:
        self.kit, self.state, self.output = kit, state, []  # type: list[str]

    def __call__(self, url: str, witnesses: list[str] | None = None, quorum: int = 0) -> int:
        self.output = []
        return monitor(
            url,
            witnesses or [],
            quorum,
            self.state,
            root_key=self.kit.root_key_id,
            timeout=10,
            echo=self.output.append,
        )

    @property
    def report(self) -> str:
        return "\n".join(self.output)


@pytest.fixture
def kit(tmp_path: Path) -> LedgerKit:
    return make_kit(f"sqlite:///{tmp_path / 'ledger.db'}")


@pytest.fixture
def run(kit: LedgerKit, tmp_path: Path) -> Run:
    return Run(kit, tmp_path / "monitor" / "state.json")


def served(store: LedgerStore, checkpoint: Callable[[], str | None] | None = None) -> object:
    return serving(create_tiles_app(store, checkpoint or store.latest_checkpoint))


def copy_of(kit: LedgerKit, tmp_path: Path, name: str) -> LedgerStore:
    """A copy of the ledger database as it is now, opened as the operator would."""
    target = tmp_path / name
    with sqlite3.connect(tmp_path / "ledger.db") as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    return LedgerStore(
        open_engine(f"sqlite:///{target}"),
        origin=ORIGIN,
        root_key_id=kit.root_key_id,
        signer=NoteSigner(ORIGIN, kit.ledger_key),
        checkpoint_interval=3600,
    )


def saved_size(run: Run) -> int:
    return int(json.loads(run.state.read_text())["size"])


def test_follows_a_growing_log_quietly(kit: LedgerKit, run: Run) -> None:
    with served(kit.store) as url:  # type: ignore[attr-defined]
        assert run(url) == 0, run.report
        assert run.output == []
        assert saved_size(run) == kit.store.size() == 3
        grow(kit, 300)  # across an entry bundle's edge
        assert run(url) == 0, run.report
        assert run.output == []
        assert saved_size(run) == 303
        assert run(url) == 0  # nothing new
        grow(kit, 1)
        assert run(url) == 0, run.report
    state = load_state(run.state)
    assert state is not None
    assert json.loads(run.state.read_text())["format"] == STATE_FORMAT
    assert (state.size, state.root) == (304, kit.store.root())
    assert state.checkpoint == kit.store.latest_checkpoint()


def test_rollback_is_reported(kit: LedgerKit, run: Run, tmp_path: Path) -> None:
    old = copy_of(kit, tmp_path, "old.db")
    grow(kit, 5)
    with served(kit.store) as url:  # type: ignore[attr-defined]
        assert run(url) == 0
    before = run.state.read_bytes()
    with served(old) as url:  # type: ignore[attr-defined]
        assert run(url) == 1
    assert run.report.startswith("ALARM ROLLBACK")
    assert "expected: >= 8 entries" in run.report
    assert run.state.read_bytes() == before  # the evidence is kept


def test_a_rewritten_history_is_a_fork(kit: LedgerKit, run: Run, tmp_path: Path) -> None:
    """Issue 14's attack: roll back, append a longer future, re-sign with the ledger key."""
    old = copy_of(kit, tmp_path, "old.db")
    grow(kit, 5)
    with served(kit.store) as url:  # type: ignore[attr-defined]
        assert run(url) == 0
    grow(kit, 20, store=old)
    with served(old) as url:  # type: ignore[attr-defined]
        assert run(url) == 1
    assert run.report.startswith("ALARM FORK")
    assert "does not extend the tree of size 8" in run.report
    assert saved_size(run) == 8


def test_the_same_size_with_another_root_is_a_fork(
    kit: LedgerKit, run: Run, tmp_path: Path
) -> None:
    old = copy_of(kit, tmp_path, "old.db")
    grow(kit, 5)
    with served(kit.store) as url:  # type: ignore[attr-defined]
        assert run(url) == 0
    grow(kit, 5, store=old)
    assert old.size() == kit.store.size()
    with served(old) as url:  # type: ignore[attr-defined]
        assert run(url) == 1
    assert run.report.startswith("ALARM FORK")
    assert "two signed checkpoints of size 8 differ" in run.report


def test_a_changed_entry_is_a_bad_entry(kit: LedgerKit, run: Run) -> None:
    with served(kit.store) as url:  # type: ignore[attr-defined]
        assert run(url) == 0
        grow(kit, 10)
        with kit.store.engine.begin() as conn:  # an edit behind the ledger's back
            data = conn.execute(text("SELECT data FROM ledger_entry WHERE idx = 7")).scalar_one()
            changed = bytes(data).replace(b'"name":"p"', b'"name":"q"')
            assert changed != data
            conn.execute(text("UPDATE ledger_entry SET data = :d WHERE idx = 7"), {"d": changed})
        assert run(url) == 1
    assert run.report.startswith("ALARM BAD_ENTRY at entry 7")
    assert saved_size(run) == 3


def test_a_checkpoint_by_another_key_is_refused(kit: LedgerKit, run: Run) -> None:
    grow(kit, 2)
    note = kit.store.latest_checkpoint()
    assert note is not None
    forged = sign_note(split_note(note)[0], [NoteSigner(ORIGIN, Ed25519PrivateKey.generate())])
    with served(kit.store, lambda: forged) as url:  # type: ignore[attr-defined]
        assert run(url) == 1
    assert run.report.startswith("ALARM BAD_CHECKPOINT")
    assert not run.state.exists()


def test_witness_quorum(kit: LedgerKit, run: Run) -> None:
    cosigns = CosignatureStore(kit.store)
    cosigns.create_schema()
    w1, w2 = (Cosigner(f"w{i}.example", Ed25519PrivateKey.generate()) for i in (1, 2))
    vkeys = [w1.public_key.vkey, w2.public_key.vkey]

    def cosigned() -> str | None:
        note = kit.store.latest_checkpoint()
        return None if note is None else cosigns.cosigned(note, kit.store.size())

    def cosign(witness: Cosigner) -> None:
        note = kit.store.latest_checkpoint()
        assert note is not None
        line = witness.cosign(split_note(note)[0], 1_700_000_000)
        cosigns.save(kit.store.size(), witness.public_key, line, 1_700_000_000)

    cosign(w1)
    with served(kit.store, cosigned) as url:  # type: ignore[attr-defined]
        assert run(url, vkeys, 2) == 1
        assert run.report.startswith("ALARM NO_QUORUM")
        assert "expected: 2 of w1.example, w2.example" in run.report
        assert "cosigned by w1.example" in run.report
        assert saved_size(run) == 3  # the entries were checked: the state moves on
        cosign(w2)
        assert run(url, vkeys, 2) == 0, run.report
        assert run.output == []


def test_cannot_check(kit: LedgerKit, run: Run, tmp_path: Path) -> None:
    assert run(f"http://127.0.0.1:{free_port()}") == 2
    assert run.report.startswith("monitor: could not check")
    first = monitor("http://127.0.0.1:1", [], 0, tmp_path / "s.json", echo=lambda _: None)
    assert first == 2  # no state and no --root-key


def test_a_wrong_root_key_fails_at_the_first_entry(kit: LedgerKit, tmp_path: Path) -> None:
    other = keys.key_id(keys.public_bytes(Ed25519PrivateKey.generate()))
    output: list[str] = []
    with served(kit.store) as url:  # type: ignore[attr-defined]
        code = monitor(url, [], 0, tmp_path / "s.json", root_key=other, echo=output.append)
    assert code == 1
    assert output[0].startswith("ALARM BAD_ENTRY at entry 0")
