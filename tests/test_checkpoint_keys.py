"""The checkpoint-key rule: a ledger key counts for a checkpoint of size N when it was
registered inside the tree (index < N) and not revoked there (no revocation at index < N)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import ORIGIN, checkpoint_note, entries_for, registration, write_bundle

from ledger import keys
from ledger.authority import (
    KEY_REVOKED,
    KeyRegistry,
    checkpoint_verifiers,
    open_checkpoint_note,
)
from ledger.bundle import read_header, read_records
from ledger.errors import LedgerError
from ledger.statement import parse_entry, sign_statement
from ledger.verifier import Report, verify

ROOT, OLD, NEW, COUNCIL = (keys.generate() for _ in range(4))
ROOT_ID = keys.key_id(keys.public_bytes(ROOT))
# 0: old ledger key, 1: council, 2: new ledger key, 3: old key revoked, 4: a council statement.
STATEMENTS = [
    registration(ROOT, OLD, "ledger", [], ORIGIN),
    registration(ROOT, COUNCIL, "council", ["rating.recorded"]),
    registration(ROOT, NEW, "ledger", [], ORIGIN),
    sign_statement(KEY_REVOKED, {"key_id": keys.key_id(keys.public_bytes(OLD))}, ROOT),
    sign_statement("rating.recorded", {"stars": 4}, COUNCIL),
]
ENTRIES = entries_for(STATEMENTS)
REVOKED_AT = 3


def grants() -> KeyRegistry:
    registry = KeyRegistry(ROOT_ID)
    for index, data in enumerate(ENTRIES):
        registry.check_and_apply(parse_entry(data).statement, index)
    return registry


@pytest.mark.parametrize("size", range(1, len(ENTRIES) + 1))
def test_old_key_counts_up_to_its_revocation_and_the_new_one_from_its_registration(
    size: int,
) -> None:
    registry = grants().grants.values()
    names = {v.public for v in checkpoint_verifiers(registry, size)}
    old, new = keys.public_bytes(OLD), keys.public_bytes(NEW)
    # The revocation at index 3 is inside trees of 4 or more entries.
    assert (old in names) == (size <= REVOKED_AT)
    assert (new in names) == (size > 2)
    for key, valid in ((OLD, size <= REVOKED_AT), (NEW, size > 2)):
        note = checkpoint_note(ENTRIES, key, size=size)
        if valid:
            assert open_checkpoint_note(note, registry).size == size
        else:
            with pytest.raises(LedgerError, match="no signature by a known key"):
                open_checkpoint_note(note, registry)


def test_no_key_counts_for_size_zero() -> None:
    assert checkpoint_verifiers(grants().grants.values(), 0) == []


def run(tmp_path: Path, lines: list[bytes | str]) -> Report:
    bundle = write_bundle(tmp_path / "b.jsonl", ROOT_ID, lines)
    header = read_header(bundle)
    return verify(
        read_records(bundle), ROOT_ID, workers=1, expected_size=header.size, origin=ORIGIN
    )


def test_checkpoint_signed_before_revocation_still_verifies(tmp_path: Path) -> None:
    # Signed by the old key at size 3, the old key revoked by entry 3: still valid.
    lines = [*ENTRIES[:3], checkpoint_note(ENTRIES, OLD, size=3), *ENTRIES[3:]]
    report = run(tmp_path, lines)
    assert report.ok, report.failure
    assert (report.checkpoints, report.revoked_keys) == (1, 1)


def test_checkpoint_signed_after_revocation_fails(tmp_path: Path) -> None:
    lines = [*ENTRIES, checkpoint_note(ENTRIES, OLD)]
    report = run(tmp_path, lines)
    assert report.failure is not None
    assert (report.failure.index, report.failure.reason) == (4, "checkpoint_signature")
    # The same size signed by the new key is fine.
    assert run(tmp_path, [*ENTRIES, checkpoint_note(ENTRIES, NEW)]).ok
