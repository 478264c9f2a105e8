"""The verifier's per-entry fast path: parse_entry's checks as one pass of booleans."""

from __future__ import annotations

import binascii
import hashlib
import re
from datetime import datetime
from typing import Any

import orjson

from ledger import keys
from ledger.authority import KEY_REGISTERED, KEY_REVOKED
from ledger.canonical import MAX_CANONICAL_BYTES, MAX_SAFE_INTEGER, is_plain
from ledger.errors import LedgerError
from ledger.statement import (
    ENTRY_FIELDS,
    HEX64,
    KIND_PATTERN,
    MAX_KIND_CHARS,
    STATEMENT_DOMAIN,
    STATEMENT_FIELDS,
    TIME_PATTERN,
)

# A worker's verdict on one entry, the facts the sequential checks need: index, prev_hash,
# the entry's hash in hex, its Merkle leaf hash, key_id, kind, and the body of a key
# registration or revocation.
Facts = tuple[int, str, str, bytes, str, str, dict[str, Any] | None]
# What the signature pass needs: the facts to report, then key, signature and message.
Ready = tuple[Facts, bytes, bytes, bytes]

_ENTRY_KEYS = frozenset(ENTRY_FIELDS)
_STATEMENT_KEYS = frozenset(STATEMENT_FIELDS)
# prev_hash, integrated_at and issued_at joined by spaces, which no pattern admits: one
# match instead of three. key_id and kind are checked once each, when first seen (_KEYS,
# _KINDS), and the signature by decoding it and encoding it back.
_FIELDS = re.compile(" ".join((HEX64.pattern, TIME_PATTERN.pattern, TIME_PATTERN.pattern)))
# `,"sig":"` + 88 characters + `"}` end the statement, and `}` the entry: the signing
# input is the statement's bytes without them (see statement.signing_input_of).
_SIG_TAIL = 8 + 88 + 2 + 1
_STATEMENT_AT = b',"statement":'
_ROOT_KINDS = (KEY_REGISTERED, KEY_REVOKED)
_KEYS: dict[str, tuple[str, bytes]] = {}
_KINDS: dict[str, str] = {}
_sha256 = hashlib.sha256
_fromisoformat = datetime.fromisoformat
_a2b, _b2a = binascii.a2b_base64, binascii.b2a_base64


def prepare(data: bytes) -> Ready | None:
    """Everything parse_entry checks, done without exceptions or objects; None when any
    check fails or cannot be settled here, and the caller then takes the slow path, which
    words the failure. Never returns a result for bytes parse_entry would refuse."""
    if len(data) > MAX_CANONICAL_BYTES:
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not dict or value.keys() != _ENTRY_KEYS:
        return None
    st = value["statement"]
    if type(st) is not dict or st.keys() != _STATEMENT_KEYS:
        return None
    index, prev, integrated = value["index"], value["prev_hash"], value["integrated_at"]
    body, kind, key_id = st["body"], st["kind"], st["key_id"]
    issued, sig = st["issued_at"], st["sig"]
    if type(index) is not int or not 0 <= index <= MAX_SAFE_INTEGER:
        return None
    # Entry and statement are depths 0 and 1 of the canonical walk; their keys are fixed.
    if type(body) is not dict or not is_plain(body, 2):
        return None
    if not (
        type(prev) is str
        and type(integrated) is str
        and type(kind) is str
        and type(key_id) is str
        and type(issued) is str
        and type(sig) is str
        and _FIELDS.fullmatch(f"{prev} {integrated} {issued}")
    ):
        return None
    # One string object per key and kind: pickling a worker's results then writes each
    # once, and the main process hashes each once.
    kind = _KINDS.get(kind) or _share(kind)
    if kind is None:
        return None
    try:
        signature = _a2b(sig)
    except ValueError:  # binascii.Error, and any character outside ASCII
        return None
    # Canonical base64 of 64 bytes exactly when it encodes back to the same text: the
    # decoder skips characters outside the alphabet and ignores the padding bits.
    if len(signature) != 64 or _b2a(signature, newline=False) != sig.encode():
        return None
    try:
        _fromisoformat(integrated[:19])
        _fromisoformat(issued[:19])
    except ValueError:
        return None
    if orjson.dumps(value, option=orjson.OPT_SORT_KEYS) != data:
        return None
    known = _KEYS.get(key_id) or _load_key(key_id)
    if known is None:
        return None
    key_id, public = known
    message = STATEMENT_DOMAIN + data[data.index(_STATEMENT_AT) + 13 : -_SIG_TAIL] + b"}"
    facts = (
        index,
        prev,
        _sha256(data).hexdigest(),
        _sha256(b"\x00" + data).digest(),
        key_id,
        kind,
        body if kind in _ROOT_KINDS else None,
    )
    return facts, public, signature, message


# A ledger has few keys and kinds; a hostile one with many only costs a lookup each.
_CACHED = 4096


def _load_key(key_id: str) -> tuple[str, bytes] | None:
    try:
        known = key_id, keys.public_key_from_id(key_id)
    except (LedgerError, ValueError):
        return None
    if not keys.acceptable_public_key(known[1]):
        return None  # the slow path words the refusal
    if len(_KEYS) < _CACHED:
        _KEYS[key_id] = known
    return known


def _share(kind: str) -> str | None:
    """The kind's one string object, or None when it is not a kind's name."""
    if len(kind) > MAX_KIND_CHARS or not KIND_PATTERN.fullmatch(kind):
        return None
    if len(_KINDS) < _CACHED:
        _KINDS[kind] = kind
    return kind


def signed(ready: Ready) -> bool:
    """True when the prepared entry's signature verifies."""
    _, public, signature, message = ready
    return keys.verify_by_acceptable_key(public, signature, message)
