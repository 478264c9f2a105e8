"""Golden tamper cases: each must be reported with the right entry index and reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import checkpoint_note, entries_for, registration, write_bundle

from ledger import keys
from ledger.authority import KEY_REVOKED
from ledger.bundle import read_header, read_records
from ledger.statement import Statement, sign_statement
from ledger.verifier import Report, verify

ROOT, LEDGER, COUNCIL, PRODUCER = (keys.generate() for _ in range(4))
ROOT_ID = keys.key_id(keys.public_bytes(ROOT))


def base_statements() -> list[Statement]:
    statements = [
        registration(ROOT, LEDGER, "ledger", [], "test.ocop-trace.local/ledger"),
        registration(
            ROOT,
            COUNCIL,
            "council",
            ["key.registered", "key.revoked", "rating.recorded"],
            may_grant=["batch.registered"],
        ),
        registration(COUNCIL, PRODUCER, "producer", ["batch.registered"]),
    ]
    statements += [
        sign_statement("batch.registered", {"lot": f"L{i}", "product": "Miến dong"}, PRODUCER)
        for i in range(3, 10)
    ]
    return statements


BASE = entries_for(base_statements())


def standard_lines(entries: list[bytes]) -> list[bytes | str]:
    """Entries with a checkpoint after entry 3 and after the last one."""
    lines: list[bytes | str] = [*entries[:4], checkpoint_note(entries, LEDGER, size=4)]
    lines += [*entries[4:], checkpoint_note(entries, LEDGER)]
    return lines


def run(tmp_path: Path, lines: list[bytes | str], workers: int, **kwargs: object) -> Report:
    bundle = write_bundle(tmp_path / "b.jsonl", ROOT_ID, lines)
    return verify(
        read_records(bundle),
        ROOT_ID,
        workers=workers,
        expected_size=read_header(bundle).size,
        **kwargs,
    )  # type: ignore[arg-type]


def replace_in(entry: bytes, old: bytes, new: bytes) -> bytes:
    assert old in entry
    return entry.replace(old, new, 1)


def change_char(entry: bytes, field: bytes, offset: int, to: bytes, else_to: bytes) -> bytes:
    """The character `offset` places into the string value of `field`, always changed to
    another: `to`, or `else_to` when it already is `to`. (Replacing a hash's first four
    characters with "ffff" once changed nothing, a random hash that began so, or changed
    the first place those four occurred, earlier in the line.)"""
    start = entry.index(b'"' + field + b'":"') + len(field) + 4 + offset
    changed = to if entry[start : start + 1] != to else else_to
    return entry[:start] + changed + entry[start + 1 :]


def with_entry(index: int, change: Callable[[bytes], bytes]) -> list[bytes | str]:
    """The standard bundle with entry `index` changed."""
    return [
        change(line) if line == BASE[index] and isinstance(line, bytes) else line
        for line in standard_lines(BASE)
    ]


def drop(lines: list[bytes | str], index: int) -> list[bytes | str]:
    return [line for line in lines if line != BASE[index]]


def swap(lines: list[bytes | str], a: int, b: int) -> list[bytes | str]:
    out = list(lines)
    ia, ib = out.index(BASE[a]), out.index(BASE[b])
    out[ia], out[ib] = out[ib], out[ia]
    return out


def with_statements(statements: list[Statement]) -> list[bytes | str]:
    entries = entries_for(statements)
    return [*entries, checkpoint_note(entries, LEDGER)]


def unauthorised() -> list[bytes | str]:
    statements = base_statements()
    statements[8] = sign_statement("rating.recorded", {"stars": 5}, PRODUCER)
    return with_statements(statements)


def used_after_revocation() -> list[bytes | str]:
    statements = base_statements()
    producer_id = keys.key_id(keys.public_bytes(PRODUCER))
    statements[7] = sign_statement(KEY_REVOKED, {"key_id": producer_id, "reason": "lost"}, COUNCIL)
    return with_statements(statements)


def forged_checkpoint() -> list[bytes | str]:
    lines = standard_lines(BASE)
    lines[-1] = checkpoint_note(BASE, keys.generate())  # same name, someone else's key
    return lines


def wrong_root() -> list[bytes | str]:
    lines = standard_lines(BASE)
    lines[-1] = checkpoint_note(BASE, LEDGER, root=b"\x07" * 32)
    return lines


def forked() -> list[bytes | str]:
    return [*standard_lines(BASE), checkpoint_note(BASE, LEDGER, root=b"\x09" * 32)]


CASES: dict[str, tuple[Callable[[], list[bytes | str]], int | None, str]] = {
    "changed body byte": (
        lambda: with_entry(5, lambda line: replace_in(line, b'"L5"', b'"L6"')),
        5,
        "signature",
    ),
    "changed signature": (
        lambda: with_entry(6, lambda line: change_char(line, b"sig", 10, b"B", b"C")),
        6,
        "signature",
    ),
    "removed entry": (lambda: drop(standard_lines(BASE), 7), 7, "index"),
    "swapped entries": (lambda: swap(standard_lines(BASE), 5, 6), 5, "index"),
    "truncated tail": (
        lambda: [*standard_lines(BASE)[:-3], standard_lines(BASE)[-1]],
        8,
        "truncated",
    ),
    "forged checkpoint signature": (forged_checkpoint, 9, "checkpoint_signature"),
    "checkpoint root mismatch": (wrong_root, 9, "checkpoint_root"),
    "fork": (forked, 9, "fork"),
    "no authority for kind": (unauthorised, 8, "authority"),
    "key used after revocation": (used_after_revocation, 8, "authority"),
    "changed prev hash": (
        lambda: with_entry(4, lambda line: change_char(line, b"prev_hash", 0, b"f", b"0")),
        4,
        "hash_link",
    ),
    "non-canonical entry": (
        lambda: with_entry(3, lambda line: replace_in(line, b'{"index":3,', b'{"index": 3,')),
        3,
        "encoding",
    ),
}


@pytest.mark.parametrize("workers", [1, 2])
def test_valid_ledger(tmp_path: Path, workers: int) -> None:
    report = run(tmp_path, standard_lines(BASE), workers)
    assert report.ok, report.failure
    assert report.entries == 10
    assert report.checkpoints == 2
    assert report.kinds == {"batch.registered": 7, "key.registered": 3}


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("case", sorted(CASES))
def test_tamper_is_reported_precisely(tmp_path: Path, case: str, workers: int) -> None:
    build, index, reason = CASES[case]
    report = run(tmp_path, build(), workers)
    assert not report.ok
    assert report.failure is not None
    assert (report.failure.index, report.failure.reason) == (index, reason), report.failure
    assert report.failure.message


def test_revocation_message_names_both_indices(tmp_path: Path) -> None:
    report = run(tmp_path, used_after_revocation(), 1)
    assert report.failure is not None
    assert "revoked at entry 7" in str(report.failure.found)


def test_rollback_below_trusted_checkpoint(tmp_path: Path) -> None:
    trusted = checkpoint_note(BASE, LEDGER)
    older = [*BASE[:4], checkpoint_note(BASE, LEDGER, size=4), *BASE[4:8]]
    report = run(tmp_path, older, 2, trusted_checkpoint=trusted)
    assert report.failure is not None
    assert (report.failure.index, report.failure.reason) == (8, "rollback")


def test_fork_from_trusted_checkpoint(tmp_path: Path) -> None:
    other = base_statements()
    other[9] = sign_statement("batch.registered", {"lot": "ZZ"}, PRODUCER)
    trusted = checkpoint_note(entries_for(other), LEDGER)
    report = run(tmp_path, standard_lines(BASE), 1, trusted_checkpoint=trusted)
    assert report.failure is not None
    assert (report.failure.index, report.failure.reason) == (9, "fork")


def test_trusted_checkpoint_accepted_when_consistent(tmp_path: Path) -> None:
    trusted = checkpoint_note(BASE, LEDGER, size=6)
    report = run(tmp_path, standard_lines(BASE), 2, trusted_checkpoint=trusted)
    assert report.ok, report.failure


def test_header_size_detects_truncation_without_checkpoint(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b.jsonl", ROOT_ID, BASE[:8], size=10)
    report = verify(
        read_records(bundle), ROOT_ID, workers=1, expected_size=read_header(bundle).size
    )
    assert report.failure is not None
    assert (report.failure.index, report.failure.reason) == (8, "truncated")


def test_report_json_shape(tmp_path: Path) -> None:
    data = run(tmp_path, drop(standard_lines(BASE), 7), 1).to_json()
    assert data["ok"] is False
    assert data["failure"]["index"] == 7
    assert data["failure"]["expected"] == "7"
    assert data["failure"]["found"] == "8"


def test_only_root_registers_ledger_keys(tmp_path: Path) -> None:
    # A council key that may register keys must not mint a key that signs checkpoints.
    statements = base_statements()
    statements[3] = registration(COUNCIL, keys.generate(), "ledger", [], "rogue")
    report = run(tmp_path, with_statements(statements), 1)
    assert report.failure is not None
    assert (report.failure.index, report.failure.reason) == (3, "authority")
    assert "only the root key" in report.failure.message


def test_only_registrar_or_root_revokes(tmp_path: Path) -> None:
    statements = base_statements()
    council_id = keys.key_id(keys.public_bytes(COUNCIL))
    statements[4] = sign_statement(KEY_REVOKED, {"key_id": council_id}, COUNCIL)
    report = run(tmp_path, with_statements(statements), 1)
    assert report.failure is not None
    assert (report.failure.index, report.failure.reason) == (4, "authority")


def test_checkpoint_for_another_origin_is_refused(tmp_path: Path) -> None:
    report = run(tmp_path, standard_lines(BASE), 1, origin="someone-else.example/log")
    assert report.failure is not None
    assert report.failure.reason == "checkpoint_origin"


def test_checkpoint_with_lone_surrogate_is_malformed_not_a_crash(tmp_path: Path) -> None:
    lines = standard_lines(BASE)
    lines[4] = "bad\ud800\n"
    report = run(tmp_path, lines, 2)
    assert report.failure is not None
    assert report.failure.reason == "checkpoint_malformed"
