"""Canonical JSON (RFC 8785) for signed data: integers, strings, arrays and objects only."""

from __future__ import annotations

import json
import re
from typing import Any

from ledger.errors import EncodingError

# JCS writes numbers as IEEE doubles, so only integers a double holds exactly are unambiguous.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_STRING_CHARS = 16_384
MAX_KEY_CHARS = 128
MAX_DEPTH = 16
MAX_CANONICAL_BYTES = 262_144

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def validate(value: Any, path: str = "$", depth: int = 0) -> None:
    """Refuse anything whose canonical form could be ambiguous or is too large.

    Object keys are limited to printable ASCII: within it, Python's sort order equals the
    UTF-16 code-unit order RFC 8785 prescribes, which lets `canonical_bytes` use the C JSON
    encoder (tested byte-for-byte against the rfc8785 reference).
    """
    kind = type(value)
    if kind is str:
        if len(value) > MAX_STRING_CHARS:
            raise EncodingError(
                f"{path}: string too long",
                expected=f"<= {MAX_STRING_CHARS} chars",
                found=len(value),
            )
        return
    if kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise EncodingError(
                f"{path}: integer out of range", expected=f"|n| <= {MAX_SAFE_INTEGER}", found=value
            )
        return
    if depth >= MAX_DEPTH:
        raise EncodingError(f"{path}: nested too deeply", expected=f"<= {MAX_DEPTH}", found=depth)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _is_plain_key(key):
                raise EncodingError(
                    f"{path}: object key must be 1-{MAX_KEY_CHARS} printable ASCII characters",
                    expected="printable ASCII key",
                    found=repr(key)[:80],
                )
            validate(item, f"{path}.{key}", depth + 1)
        return
    if kind is list:
        for position, item in enumerate(value):
            validate(item, f"{path}[{position}]", depth + 1)
        return
    raise EncodingError(
        f"{path}: only integers, strings, arrays and objects may be signed",
        expected="int, str, list or dict",
        found=kind.__name__,
    )


def _is_plain_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_CHARS and key.isascii() and key.isprintable()


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of `value` after `validate`; raises EncodingError."""
    validate(value)
    return _encode(value)


def _encode(value: Any) -> bytes:
    try:
        data = _encoder.encode(value).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodingError(
            "string holds a lone surrogate, which is not valid Unicode",
            expected="valid Unicode text",
            found=f"code point at position {exc.start}",
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


# In canonical bytes an object key is the only string followed by a colon; inside string
# values quotes are escaped, so this finds every key and nothing else.
_KEY_BYTES = re.compile(rb'[{,]"((?:[^"\\]|\\.)*)":')


def parse_canonical(data: bytes) -> Any:
    """Parse bytes that must already be canonical; compute the canonical form, then compare.

    This is the verifier's per-entry path, so it avoids walking the value: the comparison
    with our own encoding rejects duplicate keys, other spacing and escaping; hooks reject
    floats and out-of-range integers; object keys are checked on the bytes; the full
    `validate` walk runs only when the bytes could hold something those checks do not
    cover (true/false/null, a long string, deep nesting, an unusual key).
    """
    value = _loads(data, None)
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
    if (
        b"true" in data
        or b"false" in data
        or b"null" in data
        or len(data) > MAX_STRING_CHARS
        or data.count(b"{") + data.count(b"[") > MAX_DEPTH
        or not all(
            0 < len(key) <= MAX_KEY_CHARS and key.isascii() and b"\\" not in key
            for key in _KEY_BYTES.findall(data)
        )
    ):
        validate(value)
    return value
