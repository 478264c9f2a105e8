"""Canonical JSON (RFC 8785) for signed data: integers, strings, arrays and objects only."""

from __future__ import annotations

import json
from typing import Any

import orjson

from ledger.errors import EncodingError

# JCS writes numbers as IEEE doubles, so only integers a double holds exactly are unambiguous.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_STRING_CHARS = 16_384
MAX_KEY_CHARS = 128
MAX_DEPTH = 16
MAX_CANONICAL_BYTES = 262_144

# A value that passed `validate` holds only what RFC 8785 and orjson encode identically
# (asserted against the rfc8785 reference in the tests); orjson is several times faster.
_SORTED = orjson.OPT_SORT_KEYS


def validate(value: Any, path: str = "$", depth: int = 0) -> None:
    """Refuse anything whose canonical form could be ambiguous or is too large.

    Object keys are limited to printable ASCII: within it, Python's sort order equals the
    UTF-16 code-unit order RFC 8785 prescribes. This walk runs on every entry the verifier
    reads, so strings and integers are checked in place rather than by a call each.
    """
    kind = type(value)
    if kind is str or kind is int:
        _check_leaf(value, path)
        return
    if depth >= MAX_DEPTH:
        raise EncodingError(f"{path}: nested too deeply", expected=f"<= {MAX_DEPTH}", found=depth)
    if kind is dict:
        names = "".join(value) if all(type(k) is str for k in value) else None
        if (
            names is None
            or not (names.isascii() and names.isprintable())
            or not all(0 < len(k) <= MAX_KEY_CHARS for k in value)
        ):
            _refuse_keys(value, path)
        items: Any = value.items()
    elif kind is list:
        items = enumerate(value)
    else:
        raise EncodingError(
            f"{path}: only integers, strings, arrays and objects may be signed",
            expected="int, str, list or dict",
            found=kind.__name__,
        )
    for key, item in items:
        item_kind = type(item)
        if item_kind is str:
            if len(item) > MAX_STRING_CHARS:
                _check_leaf(item, _child(path, key))
        elif item_kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                _check_leaf(item, _child(path, key))
        else:
            validate(item, _child(path, key), depth + 1)


def is_plain(value: Any, depth: int = 0) -> bool:
    """True exactly when `validate` accepts `value`, for a value orjson parsed (exact types,
    string keys), without building error paths; the verifier runs it on every entry."""
    kind = type(value)
    if kind is str:
        return len(value) <= MAX_STRING_CHARS
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        names = "".join(value)
        if not (names.isascii() and names.isprintable()) or "" in value:
            return False
        # Only when the keys together exceed the limit can one of them.
        if len(names) > MAX_KEY_CHARS and max(map(len, value)) > MAX_KEY_CHARS:
            return False
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return False
    for item in items:
        item_kind = type(item)
        if item_kind is str:
            if len(item) > MAX_STRING_CHARS:
                return False
        elif item_kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
        elif not is_plain(item, depth + 1):
            return False
    return True


def _child(path: str, key: object) -> str:
    return f"{path}[{key}]" if type(key) is int else f"{path}.{key}"


def _check_leaf(value: Any, path: str) -> None:
    if type(value) is str:
        if len(value) > MAX_STRING_CHARS:
            raise EncodingError(
                f"{path}: string too long",
                expected=f"<= {MAX_STRING_CHARS} chars",
                found=len(value),
            )
    elif not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise EncodingError(
            f"{path}: integer out of range", expected=f"|n| <= {MAX_SAFE_INTEGER}", found=value
        )


def _refuse_keys(value: dict[Any, Any], path: str) -> None:
    for key in value:
        if type(key) is not str or not _is_plain_key(key):
            raise EncodingError(
                f"{path}: object key must be 1-{MAX_KEY_CHARS} printable ASCII characters",
                expected="printable ASCII key",
                found=repr(key)[:80],
            )


def _is_plain_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_CHARS and key.isascii() and key.isprintable()


def canonical_bytes(value: Any, *, depth: int = 0, limit: int = MAX_CANONICAL_BYTES) -> bytes:
    """RFC 8785 bytes of `value` after `validate`; raises EncodingError.

    `depth` and `limit` let a part be checked against the limits of the whole it will be
    embedded in (a statement inside an entry).
    """
    validate(value, depth=depth)
    data = _encode(value)
    if len(data) > limit:
        raise EncodingError(
            "canonical form too large", expected=f"<= {limit} bytes", found=len(data)
        )
    return data


def _encode(value: Any) -> bytes:
    try:
        data = orjson.dumps(value, option=_SORTED)
    except TypeError:
        raise EncodingError(
            "string holds a lone surrogate, which is not valid Unicode",
            expected="valid Unicode text",
            found="an unpaired surrogate code point",
        ) from None
    if len(data) > MAX_CANONICAL_BYTES:
        raise EncodingError(
            "canonical form too large", expected=f"<= {MAX_CANONICAL_BYTES} bytes", found=len(data)
        )
    return data


def _reject_float(text: str) -> Any:
    raise EncodingError("numbers must be integers", expected="integer", found=text)


def _reject_constant(text: str) -> Any:
    raise EncodingError("NaN and Infinity are not JSON", expected="integer", found=text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise EncodingError("duplicate object key", expected="unique keys", found=key)
            seen.add(key)
    return result


def _safe_int(text: str) -> int:
    value = int(text)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise EncodingError(
            "integer out of range", expected=f"|n| <= {MAX_SAFE_INTEGER}", found=text[:40]
        )
    return value


def _loads(data: bytes | str, pairs_hook: Any) -> Any:
    if len(data) > MAX_CANONICAL_BYTES:
        raise EncodingError(
            "document too large", expected=f"<= {MAX_CANONICAL_BYTES} bytes", found=len(data)
        )
    try:
        return json.loads(
            data,
            parse_float=_reject_float,
            parse_int=_safe_int,
            parse_constant=_reject_constant,
            object_pairs_hook=pairs_hook,
        )
    except EncodingError:
        raise
    except (ValueError, RecursionError) as exc:
        raise EncodingError("not valid JSON", expected="JSON text", found=str(exc)[:200]) from None


def parse_json(data: bytes | str) -> Any:
    """Parse JSON strictly (no floats, NaN or duplicate keys) and `validate` the result."""
    value = _loads(data, _unique_keys)
    validate(value)
    return value


def parse_canonical(data: bytes) -> Any:
    """Parse bytes that must already be canonical; compute the canonical form, then compare.

    Comparing with our own encoding rejects duplicate keys and any other spacing, order or
    escaping; `validate` rejects what has no unambiguous canonical form. This runs once per
    entry in the verifier, hence orjson for parsing and encoding.
    """
    if len(data) > MAX_CANONICAL_BYTES:
        raise EncodingError(
            "document too large", expected=f"<= {MAX_CANONICAL_BYTES} bytes", found=len(data)
        )
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EncodingError("not valid JSON", expected="JSON text", found=str(exc)[:200]) from None
    if not is_plain(value):
        validate(value)  # raises, naming the path
    expected = _encode(value)
    if expected != data:
        position = next(
            (i for i, (a, b) in enumerate(zip(expected, data, strict=False)) if a != b),
            min(len(expected), len(data)),
        )
        raise EncodingError(
            f"not in canonical (RFC 8785) form at byte {position}",
            expected=expected[position : position + 24].decode("utf-8", "replace"),
            found=data[position : position + 24].decode("utf-8", "replace"),
        )
    return value
