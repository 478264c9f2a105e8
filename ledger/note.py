"""C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints, with Ed25519 keys only."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import (
    InvalidNoteSignatureError,
    KeyFormatError,
    LedgerError,
    MalformedNoteError,
    UnverifiedNoteError,
)
from ledger.keys import private_seed, public_bytes, verify_signature

_ED25519 = b"\x01"  # signature type byte, part of both the key id hash and the encoded keys
_SIG_PREFIX = "\u2014 "  # EM DASH, not a hyphen
# Go's limit. The spec asks verifiers to accept at least 16 and to set some bound.
_MAX_SIGNATURES = 100
# ASCII controls other than newline (DEL included) are forbidden by the spec; lone
# surrogates can only come from a str and could not be encoded as UTF-8.
_FORBIDDEN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\ud800-\udfff]")
# The characters with the Unicode White_Space property (those of Go's unicode.IsSpace),
# spelled out so that the set is this list, not whatever one Python's Unicode tables say.
WHITE_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_BAD_NAME_CHAR = re.compile(f"[{WHITE_SPACE}+\x00-\x1f\x7f\ud800-\udfff]")
_HEX8 = re.compile(r"[0-9a-f]{8}")
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")  # [0-9]: \d also matches non-ASCII digits


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes | None:
    # Only the canonical spelling is accepted, so equal signatures are equal strings.
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if _b64(raw) == text else None


def _check_name(name: str, error: type[LedgerError]) -> None:
    # The fault is described, not the name echoed: callers include private key strings.
    if not name or (m := _BAD_NAME_CHAR.search(name)):
        fault = f"U+{ord(m.group()):04X}" if name and m else "an empty name"
        raise error("invalid key name", expected="no whitespace, '+' or controls", found=fault)


def check_key_name(name: str) -> None:
    """Raise KeyFormatError unless `name` is a valid signed-note key name."""
    _check_name(name, KeyFormatError)


def note_key_id(name: str, public: bytes, key_type: bytes = _ED25519) -> int:
    """SHA-256(name || 0x0A || key_type || public)[:4] as a big-endian integer; the type is
    0x01 for note signatures, 0x04 for tlog-cosignature/v1 (ledger.cosignature)."""
    if len(public) != 32:
        raise KeyFormatError("wrong Ed25519 key length", expected=32, found=len(public))
    digest = hashlib.sha256(name.encode() + b"\n" + key_type + public).digest()
    return int.from_bytes(digest[:4], "big")


def _split_key(
    name: str, id_hex: str, key64: str, what: str, key_type: bytes = _ED25519
) -> tuple[int, bytes]:
    """Check the fields shared by verifier keys and private key strings; return id and key."""
    _check_name(name, KeyFormatError)
    if not _HEX8.fullmatch(id_hex):
        raise KeyFormatError(f"bad {what} id", expected="8 lowercase hex digits", found="other")
    typed = _unb64(key64)
    if not typed:
        raise KeyFormatError(f"bad {what} encoding", expected="canonical base64", found="other")
    if typed[:1] != key_type:
        want, found = f"0x{key_type[0]:02x}", f"0x{typed[0]:02x}"
        raise KeyFormatError(f"unknown {what} type", expected=want, found=found)
    if len(typed) != 33:
        raise KeyFormatError(f"wrong {what} length", expected=32, found=len(typed) - 1)
    return int(id_hex, 16), typed[1:]


@dataclass(frozen=True, repr=False)
class NoteVerifier:
    name: str
    key_id: int
    public: bytes

    def __post_init__(self) -> None:
        _check_name(self.name, KeyFormatError)
        if (want := note_key_id(self.name, self.public)) != self.key_id:
            found = f"{self.key_id:08x}"
            raise KeyFormatError("key id does not match key", expected=f"{want:08x}", found=found)

    def __repr__(self) -> str:
        return f"NoteVerifier(name={self.name!r}, key_id={self.key_id:08x})"

    def verify(self, msg: bytes, sig: bytes) -> bool:
        return verify_signature(self.public, sig, msg)


def split_verifier_key(vkey: str, key_type: bytes = _ED25519) -> tuple[str, int, bytes]:
    """(name, key id, public key) of `name+hex8+base64(key_type || public)`; the base64 may
    itself contain '+'. The id is checked against the key by the caller's key class."""
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("bad verifier key", expected="name+keyid+key", found="too few '+'")
    key_id, public = _split_key(parts[0], parts[1], parts[2], "verifier key", key_type)
    return parts[0], key_id, public


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Parse `name+hex8+base64(0x01 || public)`."""
    return NoteVerifier(*split_verifier_key(vkey))


def format_verifier_key(name: str, public: bytes, key_type: bytes = _ED25519) -> str:
    _check_name(name, KeyFormatError)
    return f"{name}+{note_key_id(name, public, key_type):08x}+{_b64(key_type + public)}"


@dataclass(frozen=True, repr=False)
class NoteSigner:
    name: str
    key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        _check_name(self.name, KeyFormatError)

    def __repr__(self) -> str:
        return f"NoteSigner(name={self.name!r}, key_id={self.key_id:08x})"

    @cached_property
    def key_id(self) -> int:
        return note_key_id(self.name, public_bytes(self.key))

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.key_id, public_bytes(self.key))

    def sign(self, msg: bytes) -> bytes:
        return self.key.sign(msg)


def parse_private_key_string(s: str) -> NoteSigner:
    """Parse Go's `PRIVATE+KEY+name+hex8+base64(0x01 || seed)`; errors never quote it."""
    parts = s.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise KeyFormatError("bad private key", expected="PRIVATE+KEY+name+id+key", found="other")
    key_id, seed = _split_key(parts[2], parts[3], parts[4], "private key")
    signer = NoteSigner(parts[2], Ed25519PrivateKey.from_private_bytes(seed))
    if signer.key_id != key_id:
        want, found = f"{signer.key_id:08x}", f"{key_id:08x}"
        raise KeyFormatError("private key id does not match key", expected=want, found=found)
    return signer


def format_private_key_string(signer: NoteSigner) -> str:
    seed64 = _b64(_ED25519 + private_seed(signer.key))
    return f"PRIVATE+KEY+{signer.name}+{signer.key_id:08x}+{seed64}"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise MalformedNoteError("note must end in a newline", expected="\\n", found=text[-1:])
    if m := _FORBIDDEN.search(text):
        found = f"U+{ord(m.group()):04X} at offset {m.start()}"
        raise MalformedNoteError("forbidden character in note", expected="no controls", found=found)


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    _check_text(text)
    if not 1 <= len(signers) <= _MAX_SIGNATURES:
        raise MalformedNoteError("wrong number of signers", expected="1..100", found=len(signers))
    msg = text.encode()
    sigs = (
        f"{_SIG_PREFIX}{s.name} {_b64(s.key_id.to_bytes(4, 'big') + s.sign(msg))}\n"
        for s in signers
    )
    return text + "\n" + "".join(sigs)


@dataclass(frozen=True)
class OpenedNote:
    text: str
    verified: list[str]
    unverified: list[tuple[str, int]]


def split_note(note: str | bytes) -> tuple[str, list[str]]:
    """(text, signature lines without their newlines) of a well-formed note; nothing verified."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            found = f"byte 0x{note[exc.start]:02x} at offset {exc.start}"
            raise MalformedNoteError("note is not UTF-8", expected="UTF-8", found=found) from None
    _check_text(note)
    # The text ends at the LAST blank line, so it may contain blank lines itself.
    split = note.rfind("\n\n")
    if split < 0 or split + 2 == len(note):
        raise MalformedNoteError("note has no signatures", expected=">= 1", found=0)
    text, lines = note[: split + 1], note[split + 2 : -1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise MalformedNoteError("too many signatures", expected="<= 100", found=len(lines))
    return text, lines


def open_note(note: str | bytes, verifiers: Sequence[NoteVerifier]) -> OpenedNote:
    """Check `note` against the known keys; signatures by unknown keys are listed, not checked."""
    text, lines = split_note(note)
    known: dict[tuple[str, int], NoteVerifier] = {}
    for v in verifiers:
        if known.setdefault((v.name, v.key_id), v).public != v.public:
            found = f"two keys for {v.name}+{v.key_id:08x}"
            raise KeyFormatError("ambiguous verifier keys", expected="distinct keys", found=found)
    msg = text.encode()
    verified: list[str] = []
    unverified: list[tuple[str, int]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        name, key_id, sig = parse_signature_line(line, number)
        if line in seen:  # identical repeats add nothing; Go drops them too
            continue
        seen.add(line)
        if (verifier := known.get((name, key_id))) is None:
            unverified.append((name, key_id))
            continue
        # Unlike Go, which skips later signatures by a key it has seen, all are checked. A
        # wrong length is a bad signature, not a bad note: the vectors (and Go) say so.
        if not verifier.verify(msg, sig):
            want = f"a valid 64-byte signature by {name}+{key_id:08x}"
            found = f"an invalid {len(sig)}-byte one in signature line {number}"
            raise InvalidNoteSignatureError("bad note signature", expected=want, found=found)
        if name not in verified:
            verified.append(name)
    if not verified:
        keys = [f"{v.name}+{v.key_id:08x}" for v in known.values()]
        sigs = [f"{n}+{k:08x}" for n, k in unverified]
        raise UnverifiedNoteError("no signature by a known key", expected=keys, found=sigs)
    return OpenedNote(text, verified, unverified)


def note_text(note: str) -> str:
    """The text of a signed note, up to and including the LF before its last blank line."""
    cut = note.rfind("\n\n")
    if cut < 0:
        raise MalformedNoteError(
            "note has no blank line before its signatures", expected="\\n\\n", found="none"
        )
    return note[: cut + 1]


def parse_signature_line(line: str, number: int = 1) -> tuple[str, int, bytes]:
    """(key name, key id, signature bytes) of one signature line, without its newline."""
    name, _, sig64 = line.removeprefix(_SIG_PREFIX).partition(" ")
    raw = _unb64(sig64)
    if not line.startswith(_SIG_PREFIX) or raw is None or len(raw) < 5:
        want = "'\u2014 name base64(keyid || signature)'"
        raise MalformedNoteError("bad signature line", expected=want, found=f"line {number}")
    _check_name(name, MalformedNoteError)
    return name, int.from_bytes(raw[:4], "big"), raw[4:]


@dataclass(frozen=True)
class Checkpoint:
    """A C2SP tlog-checkpoint body: origin, tree size, RFC 6962 root hash, extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        fault = ""
        if not self.origin or "\n" in self.origin:
            fault = "an empty or multi-line origin"
        elif type(self.size) is not int or not 0 <= self.size < 2**64:
            fault = f"tree size {self.size!r}"
        elif len(self.root_hash) != 32:
            fault = f"a {len(self.root_hash)}-byte root hash"
        elif any(not line or "\n" in line for line in self.extensions):
            fault = "an empty or multi-line extension line"
        if fault:
            want = "origin, size < 2^64, 32-byte root, non-empty extension lines"
            raise MalformedNoteError("invalid checkpoint", expected=want, found=fault)


def format_checkpoint(cp: Checkpoint) -> str:
    return "".join(f"{s}\n" for s in (cp.origin, cp.size, _b64(cp.root_hash), *cp.extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if len(lines) < 3:
        raise MalformedNoteError("checkpoint too short", expected=">= 3 lines", found=len(lines))
    origin, size, root64, *extensions = lines
    if not _SIZE.fullmatch(size):
        found = repr(size[:24])
        raise MalformedNoteError("bad tree size", expected="canonical decimal", found=found)
    if (root := _unb64(root64)) is None:
        found = repr(root64[:64])
        raise MalformedNoteError("bad root hash", expected="canonical base64", found=found)
    return Checkpoint(origin, int(size), root, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signer: NoteSigner) -> str:
    return sign_note(format_checkpoint(cp), [signer])


def open_checkpoint(note: str | bytes, verifier: NoteVerifier) -> Checkpoint:
    """Parse a checkpoint only after `verifier`'s signature on it has been checked."""
    return parse_checkpoint(open_note(note, [verifier]).text)
