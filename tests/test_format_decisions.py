"""Input the format document once left open, each decided strictly (docs/ledger-format.md)."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest
from support import ORIGIN, checkpoint_note, entries_for, registration, write_bundle
from test_verifier import BASE, COUNCIL, LEDGER, ROOT, ROOT_ID, standard_lines

from ledger import keys
from ledger.authority import KEY_REVOKED, KeyGrant, checkpoint_verifiers, open_checkpoint_note
from ledger.bundle import read_checkpoint_file, read_header, read_records
from ledger.errors import (
    BundleError,
    InvalidNoteSignatureError,
    KeyFormatError,
    MalformedNoteError,
)
from ledger.note import WHITE_SPACE, NoteSigner, note_key_id, open_note, sign_note
from ledger.statement import sign_statement
from ledger.verifier import Report, verify


def bundle_bytes(tmp_path: Path, lines: list[bytes | str] | None = None) -> bytes:
    lines = standard_lines(BASE) if lines is None else lines
    return write_bundle(tmp_path / "honest.jsonl", ROOT_ID, lines).read_bytes()


def run(path: Path, trusted: str | None = None, workers: int = 1) -> Report:
    header = read_header(path)
    return verify(
        read_records(path),
        ROOT_ID,
        workers=workers,
        expected_size=header.size,
        origin=header.origin,
        trusted_checkpoint=trusted,
    )


def framing_error(path: Path) -> str:
    with pytest.raises(BundleError) as err:
        run(path)
    return str(err.value)


# -- bytes, not lenient text ----------------------------------------------------------------
def test_byte_order_mark_before_the_header_is_not_a_bundle(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + bundle_bytes(tmp_path))
    assert "byte-order mark" in framing_error(path)


def test_encoded_surrogate_in_the_header_is_not_a_bundle(tmp_path: Path) -> None:
    data = bundle_bytes(tmp_path).replace(b'"exported_at": "', b'"exported_at": "\xed\xa0\x80', 1)
    path = tmp_path / "b.jsonl"
    path.write_bytes(data)
    assert "not a bundle header" in framing_error(path)


def test_encoded_surrogate_in_a_checkpoint_line_is_not_a_bundle(tmp_path: Path) -> None:
    # Malformed, not a bad signature: the line is not UTF-8, so it is not JSON text.
    data = bundle_bytes(tmp_path).replace(b"\\u2014 ", b"\xed\xa0\x80 ", 1)
    path = tmp_path / "b.jsonl"
    path.write_bytes(data)
    assert "checkpoint line is not JSON in UTF-8" in framing_error(path)


@pytest.mark.parametrize("where", ["signature line", "text"])
def test_escaped_surrogate_in_a_checkpoint_is_malformed(tmp_path: Path, where: str) -> None:
    lines = standard_lines(BASE)
    note = str(lines[4])
    lines[4] = (
        note.replace("\u2014 ", "\u2014 \ud800")
        if where == "signature line"
        else (note.replace(ORIGIN, ORIGIN + "\ud800", 1))
    )
    report = run(write_bundle(tmp_path / "b.jsonl", ROOT_ID, lines))
    assert report.failure is not None
    assert (report.failure.index, report.failure.reason) == (None, "checkpoint_malformed")


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        (lambda b: b, True),
        (lambda b: b.replace(b"\n", b"\r\n"), False),  # CRLF line ends
        (lambda b: b.replace(b"\n\n", b"\n\r", 1), False),  # a lone CR for the blank line
        (lambda b: b.replace(b"\n\n", b"\r\n\r\n", 1), False),
        (lambda b: b.replace(ORIGIN.encode(), ORIGIN.encode() + b"\xff", 1), False),
    ],
)
def test_trusted_checkpoint_file_is_read_as_its_exact_bytes(
    tmp_path: Path, change: object, valid: bool
) -> None:
    saved = tmp_path / "seen.txt"
    saved.write_bytes(change(checkpoint_note(BASE, LEDGER).encode()))  # type: ignore[operator]
    report = run(
        write_bundle(tmp_path / "b.jsonl", ROOT_ID, standard_lines(BASE)),
        read_checkpoint_file(saved),
    )
    if valid:
        assert report.ok, report.failure
    else:
        assert report.failure is not None
        assert (report.failure.index, report.failure.reason) == (None, "checkpoint_malformed")
        assert report.entries == 0  # refused before any entry is read


# -- kinds -----------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["kinds", "may_grant"])
@pytest.mark.parametrize(("length", "valid"), [(64, True), (65, False)])
def test_kind_items_are_at_most_64_characters(
    tmp_path: Path, field: str, length: int, valid: bool
) -> None:
    kind = "a" * length
    body = {
        "key_id": keys.key_id(keys.public_bytes(keys.generate())),
        "role": "council",
        "name": "c",
        "kinds": [kind] if field == "kinds" else [],
        "may_grant": [kind] if field == "may_grant" else [],
    }
    statements = [
        registration(ROOT, LEDGER, "ledger", [], ORIGIN),
        sign_statement("key.registered", body, ROOT),
    ]
    report = run(write_bundle(tmp_path / "b.jsonl", ROOT_ID, entries_for(statements)))
    if valid:
        assert report.ok, report.failure
    else:
        assert report.failure is not None
        assert (report.failure.index, report.failure.reason) == (1, "encoding")


# -- settling --------------------------------------------------------------------------------
def test_an_early_checkpoint_settles_when_the_tree_reaches_its_size(tmp_path: Path) -> None:
    # Placed first, its wrong root is reported at entry 3, before the bad entry 5 is looked at.
    lines: list[bytes | str] = [
        checkpoint_note(BASE, LEDGER, size=4, root=b"\x05" * 32),
        *BASE[:5],
        BASE[5].replace(b'"L5"', b'"L6"'),
        *BASE[6:],
    ]
    for workers in (1, 2):
        report = run(write_bundle(tmp_path / "b.jsonl", ROOT_ID, lines), workers=workers)
        assert report.failure is not None
        assert (report.failure.index, report.failure.reason) == (3, "checkpoint_root")


# -- signed notes ----------------------------------------------------------------------------
SIGNER = NoteSigner(ORIGIN, LEDGER)
TEXT = f"{ORIGIN}\n1\n{base64.b64encode(bytes(32)).decode()}\n"


@pytest.mark.parametrize(("copies", "valid"), [(100, True), (101, False)])
def test_the_100_signature_lines_are_counted_before_identical_ones_merge(
    copies: int, valid: bool
) -> None:
    note = sign_note(TEXT, [SIGNER])
    line = note[len(TEXT) + 1 :]
    many = TEXT + "\n" + line * copies
    if valid:
        assert open_note(many, [SIGNER.verifier()]).verified == [ORIGIN]
    else:
        with pytest.raises(MalformedNoteError, match="too many signatures"):
            open_note(many, [SIGNER.verifier()])


def test_white_space_and_plus_are_refused_in_any_signature_line_name() -> None:
    note = sign_note(TEXT, [SIGNER])
    known = [SIGNER.verifier()]
    other = base64.b64encode(b"\x01\x02\x03\x04" + bytes(64)).decode()
    refused = [c for c in range(0x3001) if re.fullmatch(f"[{WHITE_SPACE}]", chr(c))]
    assert len(refused) == 25
    for code in [*refused, ord("+")]:
        with pytest.raises(MalformedNoteError):
            open_note(note + f"\u2014 a{chr(code)}b {other}\n", known)
    # Not White_Space, so a name like any other (an unknown key's line, listed unchecked).
    for name in ("a\u200bb", "a\u180eb", "caf\u00e9", "a\u00adb"):
        opened = open_note(note + f"\u2014 {name} {other}\n", known)
        assert opened.unverified == [(name, 0x01020304)]


def test_a_second_signature_by_the_same_key_is_checked_too() -> None:
    note = sign_note(TEXT, [SIGNER])
    line = note[len(TEXT) + 1 :]
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[-1] ^= 1
    second = f"\u2014 {ORIGIN} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(InvalidNoteSignatureError):
        open_note(note + second, [SIGNER.verifier()])


def test_two_valid_ledger_keys_with_one_note_id_reject_the_checkpoint(tmp_path: Path) -> None:
    # Same name, same 4-byte note key id, different keys: found by a birthday search over
    # 32-byte strings (a key id is not checked to be a curve point).
    seen: dict[int, bytes] = {}
    while True:
        public = os.urandom(32)
        if (twin := seen.setdefault(note_key_id(ORIGIN, public), public)) != public:
            break
    grants = [
        KeyGrant(key.hex(), "ledger", ORIGIN, frozenset(), frozenset(), "", 0, ROOT_ID)
        for key in (twin, public)
    ]
    assert len(checkpoint_verifiers(grants, 1)) == 2
    with pytest.raises(KeyFormatError, match="ambiguous verifier keys"):
        open_checkpoint_note(sign_note(TEXT, [SIGNER]), grants)


# -- authority and framing -------------------------------------------------------------------
@pytest.mark.parametrize("body", [{}, {"key_id": 5}, {"reason": "lost"}])
def test_a_revocation_naming_no_key_is_an_authority_failure(tmp_path: Path, body: dict) -> None:
    statements = [
        registration(ROOT, LEDGER, "ledger", [], ORIGIN),
        registration(ROOT, COUNCIL, "council", [KEY_REVOKED]),
        sign_statement(KEY_REVOKED, body, ROOT),
    ]
    report = run(write_bundle(tmp_path / "b.jsonl", ROOT_ID, entries_for(statements)))
    assert report.failure is not None
    assert (report.failure.index, report.failure.reason) == (2, "authority")


def test_moving_an_entrys_first_key_is_a_framing_error(tmp_path: Path) -> None:
    value = json.loads(BASE[3])
    moved = json.dumps(dict(reversed(value.items())), separators=(",", ":"), ensure_ascii=False)
    lines = standard_lines(BASE)
    lines[3] = moved.encode()
    assert "b.jsonl:5: neither an entry nor a checkpoint" in framing_error(
        write_bundle(tmp_path / "b.jsonl", ROOT_ID, lines)
    )
    # Any other order is an entry line whose bytes are not canonical.
    value["statement"] = dict(reversed(value["statement"].items()))
    lines[3] = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    report = run(write_bundle(tmp_path / "b.jsonl", ROOT_ID, lines))
    assert report.failure is not None
    assert (report.failure.index, report.failure.reason) == (3, "encoding")
