"""Statements (what an actor signs) and entries (what the ledger appends), as canonical bytes."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import keys
from ledger.canonical import MAX_CANONICAL_BYTES, canonical_bytes, parse_canonical, parse_json
from ledger.errors import EncodingError, SignatureError

# Domain separation: a statement signature can never be replayed as a signed note or any
# other message signed by the same key, because no other format starts with these bytes.
STATEMENT_DOMAIN = b"ocop-trace/statement/v1\n"
GENESIS_PREV_HASH = "0" * 64
# Room for the entry's own members around the statement.
MAX_STATEMENT_BYTES = MAX_CANONICAL_BYTES - 1024

KIND_PATTERN = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
MAX_KIND_CHARS = 64
# [0-9], not \d: \d also matches other scripts' digits.
TIME_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
HEX64 = re.compile(r"[0-9a-f]{64}")
STATEMENT_FIELDS = ("body", "issued_at", "key_id", "kind", "sig")
ENTRY_FIELDS = ("index", "integrated_at", "prev_hash", "statement")


def utc_now() -> str:
    """The current time as the RFC 3339 UTC form every timestamp in the ledger uses."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_timestamp(value: object, field: str) -> str:
    if type(value) is not str or not TIME_PATTERN.fullmatch(value):
        raise EncodingError(
            f"{field} must be a UTC timestamp",
            expected="YYYY-MM-DDTHH:MM:SS[.ffffff]Z",
            found=value,
        )
    try:
        datetime.fromisoformat(value[:19])
    except ValueError:
        raise EncodingError(
            f"{field} is not a real date", expected="a calendar date", found=value
        ) from None
    return value


def is_kind(value: object) -> bool:
    """A statement kind: a dotted lower-case name of at most 64 characters. The same rule
    holds wherever a kind is written: a statement's `kind`, a key's `kinds` and `may_grant`."""
    return (
        type(value) is str and len(value) <= MAX_KIND_CHARS and bool(KIND_PATTERN.fullmatch(value))
    )


@dataclass(frozen=True, slots=True)
class Statement:
    """A signed claim: `key_id` is the signer's raw public key in hex (self-certifying)."""

    kind: str
    key_id: str
    issued_at: str
    body: dict[str, Any]
    sig: str

    def unsigned(self) -> dict[str, Any]:
        return {
            "body": self.body,
            "issued_at": self.issued_at,
            "key_id": self.key_id,
            "kind": self.kind,
        }

    def signing_input(self) -> bytes:
        return signing_input_of(self.canonical(), self.sig)

    def to_json(self) -> dict[str, Any]:
        return {**self.unsigned(), "sig": self.sig}

    def canonical(self) -> bytes:
        # Checked at the depth and size it will have inside an entry, so a statement the
        # ledger accepts always makes an entry the verifier accepts.
        return canonical_bytes(self.to_json(), depth=1, limit=MAX_STATEMENT_BYTES)

    def hash(self) -> bytes:
        return hashlib.sha256(self.canonical()).digest()

    def signature(self) -> bytes:
        return base64.b64decode(self.sig)

    def verify(self, signing_input: bytes | None = None) -> None:
        """Raise SignatureError unless `sig` is the signer's signature over the statement.

        `signing_input` may be passed when already known (see Entry.signing_input).
        """
        public = keys.public_key_from_id(self.key_id)
        message = self.signing_input() if signing_input is None else signing_input
        if not keys.verify_signature(public, self.signature(), message):
            raise SignatureError(
                f"signature of {self.kind} statement does not verify",
                expected=f"a signature by key {self.key_id[:16]}…",
                found=self.sig[:16] + "…",
            )


def signing_input_of(statement_canonical: bytes, sig: str) -> bytes:
    """The signing input, cut from a statement's canonical bytes (signature included).

    `sig` sorts last among the statement's members, so removing `,"sig":"…"` leaves exactly
    the canonical unsigned statement: no second encoding is needed.
    """
    suffix = b',"sig":"' + sig.encode("ascii") + b'"}'
    if not statement_canonical.endswith(suffix):
        raise EncodingError(
            "statement bytes do not end with its signature",
            expected="canonical statement",
            found=statement_canonical[-40:],
        )
    return STATEMENT_DOMAIN + statement_canonical[: -len(suffix)] + b"}"


def sign_statement(
    kind: str, body: dict[str, Any], key: Ed25519PrivateKey, issued_at: str | None = None
) -> Statement:
    unsigned = Statement(
        kind, keys.key_id(keys.public_bytes(key)), issued_at or utc_now(), body, ""
    )
    _check_shape(unsigned.to_json(), require_sig=False)
    signature = key.sign(unsigned.signing_input())
    return Statement(
        kind, unsigned.key_id, unsigned.issued_at, body, base64.b64encode(signature).decode("ascii")
    )


def _check_shape(value: Any, *, require_sig: bool = True) -> None:
    if type(value) is not dict:
        raise EncodingError(
            "statement must be a JSON object", expected="object", found=type(value).__name__
        )
    fields = tuple(sorted(value))
    if fields != STATEMENT_FIELDS:
        raise EncodingError(
            "statement has the wrong fields",
            expected=",".join(STATEMENT_FIELDS),
            found=",".join(fields),
        )
    kind = value["kind"]
    if not is_kind(kind):
        raise EncodingError(
            "statement kind is malformed", expected="dotted lower-case name", found=kind
        )
    if type(value["key_id"]) is not str or not HEX64.fullmatch(value["key_id"]):
        raise EncodingError(
            "key_id must be the signer's public key in hex",
            expected="64 lower-case hex digits",
            found=value["key_id"],
        )
    check_timestamp(value["issued_at"], "issued_at")
    if type(value["body"]) is not dict:
        raise EncodingError(
            "statement body must be an object",
            expected="object",
            found=type(value["body"]).__name__,
        )
    if require_sig:
        sig = value["sig"]
        try:
            raw = base64.b64decode(sig, validate=True) if type(sig) is str else b""
        except ValueError:  # binascii.Error, or a non-ASCII character
            raw = b""
        if len(raw) != 64 or base64.b64encode(raw).decode("ascii") != sig:
            raise EncodingError(
                "sig must be a base64 Ed25519 signature",
                expected="88 base64 characters (64 bytes)",
                found=str(sig)[:100],
            )


def statement_from_json(value: Any) -> Statement:
    """Build a Statement from parsed JSON, checking every field (not the signature)."""
    _check_shape(value)
    return Statement(
        value["kind"], value["key_id"], value["issued_at"], value["body"], value["sig"]
    )


def parse_statement(data: bytes | str) -> Statement:
    """Parse a statement sent as JSON in any layout; it is re-encoded canonically to hash."""
    return statement_from_json(parse_json(data))


@dataclass(frozen=True, slots=True)
class Entry:
    """One appended record; its bytes are the canonical entry and its hash their SHA-256."""

    index: int
    prev_hash: str
    integrated_at: str
    statement: Statement
    data: bytes

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.data).digest()

    def signing_input(self) -> bytes:
        """The statement's signing input, cut from the entry bytes (the statement is last)."""
        statement = self.data[self.data.index(b',"statement":') + 13 : -1]
        return signing_input_of(statement, self.statement.sig)


def entry_bytes(
    index: int, prev_hash: str, integrated_at: str, statement_canonical: bytes
) -> bytes:
    """Canonical entry bytes, assembled around already-canonical statement bytes.

    The keys index < integrated_at < prev_hash < statement are in RFC 8785 order and every
    value here is ASCII that needs no escaping, so concatenation equals canonical_bytes
    (asserted in the tests) without re-encoding the statement.
    """
    return b'{"index":%d,"integrated_at":"%s","prev_hash":"%s","statement":%s}' % (
        index,
        integrated_at.encode("ascii"),
        prev_hash.encode("ascii"),
        statement_canonical,
    )


def make_entry(index: int, prev_hash: str, integrated_at: str, statement: Statement) -> Entry:
    data = entry_bytes(index, prev_hash, integrated_at, statement.canonical())
    return Entry(index, prev_hash, integrated_at, statement, data)


def parse_entry(data: bytes) -> Entry:
    """Parse stored entry bytes, which must be canonical, into an Entry."""
    value = parse_canonical(data)
    if type(value) is not dict or tuple(sorted(value)) != ENTRY_FIELDS:
        raise EncodingError(
            "entry has the wrong fields",
            expected=",".join(ENTRY_FIELDS),
            found=",".join(sorted(value)) if type(value) is dict else "non-object",
        )
    index = value["index"]
    if type(index) is not int or index < 0:
        raise EncodingError(
            "entry index must be a non-negative integer", expected=">= 0", found=index
        )
    prev = value["prev_hash"]
    if type(prev) is not str or not HEX64.fullmatch(prev):
        raise EncodingError(
            "prev_hash must be 64 lower-case hex digits", expected="hex SHA-256", found=prev
        )
    check_timestamp(value["integrated_at"], "integrated_at")
    return Entry(index, prev, value["integrated_at"], statement_from_json(value["statement"]), data)
