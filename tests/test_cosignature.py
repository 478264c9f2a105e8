"""ledger.cosignature against tlog-cosignature, checked by code that builds the bytes itself."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.cosignature import (
    Cosigner,
    CosignerKey,
    cosignatures_in,
    format_cosigner_vkey,
    parse_cosigner_vkey,
)
from ledger.errors import KeyFormatError, SignatureError, UnverifiedNoteError
from ledger.note import (
    NoteSigner,
    note_key_id,
    open_note,
    parse_private_key_string,
    parse_verifier_key,
    sign_note,
)

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors" / "signed-note"
DATA: dict[str, Any] = json.loads((VECTORS / "notes.json").read_text())
PETER = next(k for k in DATA["keys"] if k["key_name"] == "PeterNeumann")
SEED = bytes.fromhex(PETER["private_key_seed_hex"])
NAME = "witness.example/w1"
TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
TIME = 1679315147

# The checkpoint of tlog-cosignature's own example, with its log signature and a witness's
# cosignature (the spec publishes no keys for them).
SPEC_NOTE = (
    TEXT + "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5"
    "/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJ"
    "sX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


# -- the spec, written out directly: nothing below calls ledger.cosignature ----------------
def spec_message(text: str, timestamp: int) -> bytes:
    """'cosignature/v1' LF, 'time' SP decimal LF, then the checkpoint body with its final LF."""
    header = b"cosignature/v1" + b"\n"
    time_line = b"time" + b" " + str(timestamp).encode() + b"\n"
    return header + time_line + text.encode()


def spec_key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\x0a" + b"\x04" + public).digest()[:4]


def spec_line(name: str, key: Ed25519PrivateKey, text: str, timestamp: int) -> str:
    public = key.public_key().public_bytes_raw()
    signature = key.sign(spec_message(text, timestamp))
    payload = spec_key_id(name, public) + timestamp.to_bytes(8, "big") + signature
    return "\u2014 " + name + " " + base64.b64encode(payload).decode() + "\n"


def spec_parse(line: str) -> tuple[str, bytes, int, bytes]:
    assert line.startswith("\u2014 ")
    assert line.endswith("\n")
    name, b64 = line[2:-1].split(" ")
    raw = base64.b64decode(b64)
    return name, raw[:4], int.from_bytes(raw[4:12], "big"), raw[12:]


def peter() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


def witness_key() -> CosignerKey:
    public = peter().public_key().public_bytes_raw()
    return CosignerKey(NAME, int.from_bytes(spec_key_id(NAME, public), "big"), public)


# -- signing ---------------------------------------------------------------------------------
def test_cosign_matches_the_spec_byte_for_byte() -> None:
    line = Cosigner(NAME, peter()).cosign(TEXT, TIME)
    # Ed25519 is deterministic, so an independent signer must produce the very same line.
    assert line == spec_line(NAME, peter(), TEXT, TIME)
    name, key_id, timestamp, signature = spec_parse(line)
    assert (name, timestamp, len(signature)) == (NAME, TIME, 64)
    assert key_id == spec_key_id(NAME, peter().public_key().public_bytes_raw())
    public = Ed25519PublicKey.from_public_bytes(peter().public_key().public_bytes_raw())
    public.verify(signature, spec_message(TEXT, TIME))  # raises if the message differs
    with pytest.raises(InvalidSignature):
        public.verify(signature, spec_message(TEXT, TIME + 1))
    with pytest.raises(InvalidSignature):  # the plain text alone is not what was signed
        public.verify(signature, TEXT.encode())


def test_the_spec_example_has_the_layout_we_write() -> None:
    # The spec's witness line: key id, then the u64 time of its message example, then 64 bytes.
    name, key_id, timestamp, signature = spec_parse(SPEC_NOTE.splitlines(keepends=True)[-1])
    assert (name, key_id.hex(), timestamp, len(signature)) == (
        "witness.example.com/w1",
        "8d66cf3f",
        TIME,
        64,
    )
    ours = Cosigner("witness.example.com/w1", peter()).cosign(TEXT, TIME)
    assert len(ours) == len(SPEC_NOTE.splitlines(keepends=True)[-1])
    # Both lines are by keys nobody configured here: a note reader ignores them.
    with pytest.raises(UnverifiedNoteError):
        open_note(SPEC_NOTE, [])
    assert cosignatures_in(SPEC_NOTE, [witness_key()]) == ({}, [])


def test_a_cosignature_needs_a_time() -> None:
    with pytest.raises(SignatureError):
        Cosigner(NAME, peter()).cosign(TEXT, 0)
    with pytest.raises(SignatureError):
        Cosigner(NAME, peter()).cosign(TEXT, 2**63)


# -- verifying ---------------------------------------------------------------------------------
def test_an_independent_cosignature_verifies() -> None:
    key = witness_key()
    line = spec_line(NAME, peter(), TEXT, TIME)
    assert key.verify(TEXT, line) == TIME
    note = TEXT + "\n" + line
    assert cosignatures_in(note, [key]) == ({key: TIME}, [])


@pytest.mark.parametrize(
    ("text", "timestamp", "what"),
    [
        (TEXT, TIME + 1, "time"),
        (TEXT.replace("20852163", "20852164"), TIME, "size"),
        (TEXT + "extension\n", TIME, "extension line"),
    ],
)
def test_a_changed_message_does_not_verify(text: str, timestamp: int, what: str) -> None:
    """The signature covers the time and every line of the checkpoint, extensions included."""
    line = spec_line(NAME, peter(), TEXT, TIME)
    name, key_id, _, signature = spec_parse(line)
    payload = key_id + timestamp.to_bytes(8, "big") + signature
    forged = f"\u2014 {name} {base64.b64encode(payload).decode()}\n"
    with pytest.raises(SignatureError):
        witness_key().verify(text, forged)
    assert cosignatures_in(text + "\n" + forged, [witness_key()]) == ({}, [witness_key()]), what


@pytest.mark.parametrize("cut", [1, 8, 9])
def test_a_short_or_long_payload_is_invalid(cut: int) -> None:
    _, key_id, timestamp, signature = spec_parse(spec_line(NAME, peter(), TEXT, TIME))
    for payload in (
        (key_id + timestamp.to_bytes(8, "big") + signature)[:-cut],
        key_id + timestamp.to_bytes(8, "big") + signature + b"\0" * cut,
    ):
        line = f"\u2014 {NAME} {base64.b64encode(payload).decode()}\n"
        with pytest.raises(SignatureError):
            witness_key().verify(TEXT, line)


def test_a_timestamp_above_2_63_is_refused_even_if_signed() -> None:
    key = peter()
    timestamp = 2**63
    signature = key.sign(spec_message(TEXT, timestamp))
    payload = spec_key_id(NAME, witness_key().public) + timestamp.to_bytes(8, "big") + signature
    line = f"\u2014 {NAME} {base64.b64encode(payload).decode()}\n"
    with pytest.raises(SignatureError):
        witness_key().verify(TEXT, line)


def test_note_signatures_and_cosignatures_never_pass_for_each_other() -> None:
    """Same key, same name: the type byte in the key id keeps the two apart."""
    log_note = sign_note(TEXT, [NoteSigner(NAME, peter())])
    assert cosignatures_in(log_note, [witness_key()]) == ({}, [])
    cosigned = TEXT + "\n" + Cosigner(NAME, peter()).cosign(TEXT, TIME)
    with pytest.raises(UnverifiedNoteError):
        open_note(cosigned, [parse_verifier_key(PETER["verifier_key"])])
    assert witness_key().key_id != note_key_id(NAME, witness_key().public)


def test_a_cosigned_checkpoint_still_opens_for_the_log_key() -> None:
    log = parse_private_key_string(PETER["private_key"])
    note = sign_note(TEXT, [log]) + Cosigner(NAME, Ed25519PrivateKey.generate()).cosign(TEXT, TIME)
    opened = open_note(note, [log.verifier()])
    assert opened.verified == ["PeterNeumann"]
    assert [name for name, _ in opened.unverified] == [NAME]


def test_only_configured_keys_count_and_a_bad_line_is_named() -> None:
    other = Cosigner("witness.example/w2", Ed25519PrivateKey.generate())
    good = Cosigner(NAME, peter()).cosign(TEXT, TIME)
    name, key_id, timestamp, signature = spec_parse(other.cosign(TEXT, TIME))
    payload = key_id + timestamp.to_bytes(8, "big") + bytes([signature[0] ^ 1]) + signature[1:]
    bad = f"\u2014 {name} {base64.b64encode(payload).decode()}\n"
    note = TEXT + "\n" + good + bad
    valid, invalid = cosignatures_in(note, [witness_key(), other.public_key])
    assert valid == {witness_key(): TIME}
    assert invalid == [other.public_key]
    # Without w2 configured its bad line is somebody else's business.
    assert cosignatures_in(note, [witness_key()]) == ({witness_key(): TIME}, [])


# -- keys --------------------------------------------------------------------------------------
def test_cosigner_vkey_round_trip_and_layout() -> None:
    public = witness_key().public
    vkey = format_cosigner_vkey(NAME, public)
    name, id_hex, b64 = vkey.split("+", 2)
    assert (name, id_hex) == (NAME, spec_key_id(NAME, public).hex())
    assert base64.b64decode(b64) == b"\x04" + public
    assert parse_cosigner_vkey(vkey) == witness_key()
    assert Cosigner(NAME, peter()).public_key.vkey == vkey


@pytest.mark.parametrize("entry", DATA["keys"], ids=[k["key_name"] for k in DATA["keys"]])
def test_note_vkeys_from_the_vectors_are_not_cosigner_keys(entry: dict[str, Any]) -> None:
    with pytest.raises(KeyFormatError):
        parse_cosigner_vkey(entry["verifier_key"])
    # The same public key under type 0x04 gets its own id, computed as the spec says.
    public = bytes.fromhex(entry["public_key_hex"])
    key = parse_cosigner_vkey(format_cosigner_vkey(entry["key_name"], public))
    assert key.key_id.to_bytes(4, "big") == spec_key_id(entry["key_name"], public)
    assert f"{key.key_id:08x}" != entry["key_id_hex"]


@pytest.mark.parametrize(
    "entry", DATA["bad_verifier_keys"], ids=[k["desc"] for k in DATA["bad_verifier_keys"]]
)
def test_bad_vkeys_from_the_vectors_are_refused(entry: dict[str, Any]) -> None:
    with pytest.raises(KeyFormatError):
        parse_cosigner_vkey(entry["verifier_key"])


@pytest.mark.parametrize(
    "vkey",
    [
        f"{NAME}+00000000+" + base64.b64encode(b"\x04" + bytes(32)).decode(),  # wrong id
        f"{NAME}+{'0' * 8}",  # two parts
        "bad name+01234567+" + base64.b64encode(b"\x04" + bytes(32)).decode(),
        f"{NAME}+0123456+" + base64.b64encode(b"\x04" + bytes(32)).decode(),
        f"{NAME}+01234567+" + base64.b64encode(b"\x04" + bytes(31)).decode(),
        f"{NAME}+01234567+BAAA",  # short key
    ],
)
def test_malformed_cosigner_vkeys_are_refused(vkey: str) -> None:
    with pytest.raises(KeyFormatError):
        parse_cosigner_vkey(vkey)
