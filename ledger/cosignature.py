"""C2SP tlog-cosignature `cosignature/v1` (Ed25519, signature type 0x04): sign and verify."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.errors import KeyFormatError, MalformedNoteError, SignatureError
from ledger.keys import public_bytes, verify_signature
from ledger.note import (
    check_key_name,
    format_verifier_key,
    note_key_id,
    parse_signature_line,
    split_note,
    split_verifier_key,
)

COSIGNATURE_TYPE = 0x04  # signed-note signature type: timestamped Ed25519 cosignature
_TYPE = bytes([COSIGNATURE_TYPE])
HEADER = b"cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1  # the spec's bound on timestamped_signature.timestamp
_SIG_PREFIX = "\u2014 "  # EM DASH and a space, as every signed-note signature line
_PAYLOAD_LEN = 8 + 64  # u64 timestamp || Ed25519 signature


def cosigner_key_id(name: str, public: bytes) -> int:
    """SHA-256(name || 0x0A || 0x04 || public)[:4], big-endian. It differs from the same
    key's plain note key id (type 0x01), so a cosignature line never names a log key."""
    return note_key_id(name, public, _TYPE)


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The bytes a cosigner signs: the header line, the time line, then the checkpoint text."""
    _check_timestamp(timestamp)
    if not checkpoint_text.endswith("\n"):
        raise MalformedNoteError("checkpoint text must end in a newline", expected="\\n", found="")
    return HEADER + b"time %d\n" % timestamp + checkpoint_text.encode()


def _check_timestamp(timestamp: int) -> None:
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise SignatureError(
            "cosignature timestamp out of range", expected="0 <= t <= 2^63-1", found=timestamp
        )


@dataclass(frozen=True, repr=False)
class CosignerKey:
    """A witness's public identity: its key name, key id (type 0x04) and Ed25519 key."""

    name: str
    key_id: int
    public: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if (want := cosigner_key_id(self.name, self.public)) != self.key_id:
            raise KeyFormatError(
                "cosigner key id does not match the key",
                expected=f"{want:08x}",
                found=f"{self.key_id:08x}",
            )

    def __repr__(self) -> str:
        return f"CosignerKey(name={self.name!r}, key_id={self.key_id:08x})"

    @property
    def vkey(self) -> str:
        return format_cosigner_vkey(self.name, self.public)

    def verify(self, checkpoint_text: str, line: str) -> int:
        """The timestamp of `line` if it is this key's valid cosignature of the text; raises
        SignatureError if it is this key's and does not verify, MalformedNoteError if it is
        not a signature line, KeyFormatError if it is another key's."""
        name, key_id, payload = parse_signature_line(line.removesuffix("\n"))
        if (name, key_id) != (self.name, self.key_id):
            raise KeyFormatError(
                "not a cosignature by this key",
                expected=f"{self.name}+{self.key_id:08x}",
                found=f"{name}+{key_id:08x}",
            )
        if len(payload) != _PAYLOAD_LEN:
            raise SignatureError(
                "wrong cosignature length", expected=4 + _PAYLOAD_LEN, found=4 + len(payload)
            )
        timestamp = int.from_bytes(payload[:8], "big")
        _check_timestamp(timestamp)
        if not verify_signature(
            self.public, payload[8:], cosigned_message(checkpoint_text, timestamp)
        ):
            raise SignatureError(
                "cosignature does not verify",
                expected=f"a valid cosignature by {self.name}+{self.key_id:08x}",
                found=f"an invalid one with time {timestamp}",
            )
        return timestamp


def format_cosigner_vkey(name: str, public: bytes) -> str:
    """`name+hex8+base64(0x04 || public)`: the signed-note vkey of a cosigner key."""
    return format_verifier_key(name, public, _TYPE)


def parse_cosigner_vkey(vkey: str) -> CosignerKey:
    """A cosigner vkey (type 0x04); a plain note key (type 0x01) is refused, not converted."""
    return CosignerKey(*split_verifier_key(vkey, _TYPE))


@dataclass(frozen=True, repr=False)
class Cosigner:
    """A witness's signing side: name and Ed25519 private key."""

    name: str
    key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    def __repr__(self) -> str:
        return f"Cosigner(name={self.name!r}, key_id={self.key_id:08x})"

    @cached_property
    def public_key(self) -> CosignerKey:
        public = public_bytes(self.key)
        return CosignerKey(self.name, cosigner_key_id(self.name, public), public)

    @property
    def key_id(self) -> int:
        return self.public_key.key_id

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """One signature line, newline included, cosigning `checkpoint_text` at `timestamp`."""
        if timestamp == 0:  # tlog-witness: a witness's cosignature never omits the time
            raise SignatureError("a cosignature needs a time", expected="t > 0", found=0)
        signature = self.key.sign(cosigned_message(checkpoint_text, timestamp))
        payload = self.key_id.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + signature
        return f"{_SIG_PREFIX}{self.name} {base64.b64encode(payload).decode()}\n"


def cosignatures_in(
    note: str | bytes, keys: Sequence[CosignerKey]
) -> tuple[dict[CosignerKey, int], list[CosignerKey]]:
    """({key: timestamp} of the valid cosignatures by `keys` in a signed note, [keys with an
    invalid one]). Lines by other keys, the log's own included, are ignored, as signed-note
    requires of unknown keys; a key's latest valid timestamp is kept."""
    text, lines = split_note(note)
    by_id = {(k.name, k.key_id): k for k in keys}
    valid: dict[CosignerKey, int] = {}
    invalid: list[CosignerKey] = []
    for number, line in enumerate(lines, 1):
        key = by_id.get(parse_signature_line(line, number)[:2])
        if key is None:
            continue
        try:
            timestamp = key.verify(text, line)
        except SignatureError:
            if key not in invalid:
                invalid.append(key)
            continue
        valid[key] = max(timestamp, valid.get(key, 0))
    return valid, invalid
