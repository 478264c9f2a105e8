"""verify with a witness policy: the latest checkpoint must carry the quorum's cosignatures."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from conftest import LedgerKit, make_kit
from test_monitor import grow

from ledger import keys
from ledger.cosignature import Cosigner
from ledger.note import note_text
from ledger.policy import Policy, PolicyWitness
from ledger.verifier import CheckpointRecord, EntryRecord, Record, verify

A = Cosigner("witness.a.example/w", keys.generate())
B = Cosigner("witness.b.example/w", keys.generate())
TWO_OF_TWO = Policy.k_of_n([PolicyWitness(c.name, c.public_key) for c in (A, B)], 2)
ONE_OF_TWO = Policy.k_of_n([PolicyWitness(c.name, c.public_key) for c in (A, B)], 1)


@pytest.fixture
def kit(tmp_path: Path) -> LedgerKit:
    return make_kit(f"sqlite:///{tmp_path / 'ledger.db'}")


def cosigned(note: str, *cosigners: Cosigner) -> str:
    return note + "".join(c.cosign(note_text(note), 1_780_000_000) for c in cosigners)


def records(kit: LedgerKit, *notes: str) -> list[Record]:
    """The entries, each checkpoint placed after the entry that completes its size."""
    at = {int(note.split("\n")[1]): note for note in notes}
    out: list[Record] = []
    for i in range(kit.store.size()):
        out.append(EntryRecord(i, kit.store.entry(i) or b""))
        out += [CheckpointRecord(note) for note in notes if int(note.split("\n")[1]) == i + 1]
    assert all(size <= kit.store.size() for size in at)
    return out


def test_the_quorum_on_the_latest_checkpoint_passes(kit: LedgerKit) -> None:
    note = grow(kit, 3)
    report = verify(
        records(kit, cosigned(note, A, B)), kit.root_key_id, workers=1, witnesses=TWO_OF_TWO
    )
    assert report.ok, report.failure
    assert report.witnessed_by == (A.name, B.name)
    assert report.to_json()["witnessed_by"] == [A.name, B.name]
    # Without a policy, the cosignatures are skipped and nothing is said about witnesses.
    alone = verify(records(kit, cosigned(note, A)), kit.root_key_id, workers=1)
    assert alone.ok
    assert alone.witnessed_by is None


def test_too_few_cosignatures_fail_with_what_was_needed(kit: LedgerKit) -> None:
    note = grow(kit, 3)
    report = verify(
        records(kit, cosigned(note, A)), kit.root_key_id, workers=1, witnesses=TWO_OF_TWO
    )
    assert report.failure is not None
    assert (report.failure.reason, report.failure.index) == ("witness_quorum", 5)
    assert report.failure.expected == f"2 of {A.name}, {B.name}"
    assert report.failure.found == A.name
    one = verify(records(kit, cosigned(note, A)), kit.root_key_id, workers=1, witnesses=ONE_OF_TWO)
    assert one.ok


def test_only_the_latest_checkpoint_counts(kit: LedgerKit) -> None:
    old = cosigned(grow(kit, 2), A, B)  # witnessed; then a newer checkpoint nobody cosigned
    new = grow(kit, 2)
    report = verify(records(kit, old, new), kit.root_key_id, workers=1, witnesses=ONE_OF_TWO)
    assert report.failure is not None
    assert report.failure.reason == "witness_quorum"
    assert report.failure.found == "no witness"


def test_cosignatures_of_one_size_add_up_across_notes(kit: LedgerKit) -> None:
    note = grow(kit, 2)
    both = [cosigned(note, A), cosigned(note, B)]
    report = verify(records(kit, *both), kit.root_key_id, workers=1, witnesses=TWO_OF_TWO)
    assert report.ok, report.failure


def test_a_bad_cosignature_by_a_policy_witness_fails(kit: LedgerKit) -> None:
    note = grow(kit, 2)
    dash, name, payload = A.cosign(note_text(note), 1_780_000_000).split(" ")
    raw = bytearray(base64.b64decode(payload))
    raw[-1] ^= 1  # A's key id and time, a signature that does not verify
    bad = f"{dash} {name} {base64.b64encode(bytes(raw)).decode()}\n"
    report = verify(
        records(kit, note + bad + B.cosign(note_text(note), 1_780_000_000)),
        kit.root_key_id,
        workers=1,
        witnesses=TWO_OF_TWO,
    )
    assert report.failure is not None
    assert report.failure.reason == "witness_quorum"
    assert report.failure.found == A.name


def test_no_checkpoint_is_no_quorum(kit: LedgerKit) -> None:
    report = verify(records(kit), kit.root_key_id, workers=1, witnesses=ONE_OF_TWO)
    assert report.failure is not None
    assert (report.failure.reason, report.failure.index) == ("witness_quorum", None)
    assert report.failure.found == "no checkpoint"
