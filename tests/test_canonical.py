"""Canonical JSON: byte-for-byte equal to the rfc8785 reference, and strict about input."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import (
    MAX_SAFE_INTEGER,
    MAX_STRING_CHARS,
    canonical_bytes,
    parse_canonical,
    parse_json,
)
from ledger.errors import EncodingError
from ledger.statement import entry_bytes

keys_st = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=12)
# Every Unicode scalar value except surrogates, including controls that need escaping.
text_st = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
ints_st = st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
values_st = st.recursive(
    ints_st | text_st,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(keys_st, children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=600, deadline=None)
@given(values_st)
def test_matches_rfc8785_reference(value: Any) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys_st, values_st, max_size=6))
def test_round_trip_through_parse_canonical(value: dict[str, Any]) -> None:
    data = canonical_bytes(value)
    assert parse_canonical(data) == value


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_SAFE_INTEGER), st.dictionaries(keys_st, values_st))
def test_entry_fast_path_equals_canonical_encoding(index: int, body: dict[str, Any]) -> None:
    statement = {"body": body, "kind": "x"}
    fast = entry_bytes(index, "ab" * 32, "2026-01-01T00:00:00Z", canonical_bytes(statement))
    reference = rfc8785.dumps(
        {
            "index": index,
            "integrated_at": "2026-01-01T00:00:00Z",
            "prev_hash": "ab" * 32,
            "statement": statement,
        }
    )
    assert fast == reference


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "only integers"),
        (True, "only integers"),
        (None, "only integers"),
        (MAX_SAFE_INTEGER + 1, "integer out of range"),
        ({"ké": 1}, "printable ASCII"),
        ({"": 1}, "printable ASCII"),
        ("x" * (MAX_STRING_CHARS + 1), "string too long"),
        ("\ud800", "lone surrogate"),
        ({"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}, "nested too deeply"),
    ],
)
def test_refuses_ambiguous_values(value: Any, message: str) -> None:
    with pytest.raises(EncodingError, match=message) as info:
        canonical_bytes(value)
    assert info.value.expected is not None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a":1,"a":2}', "not in canonical"),
        (b'{"a":true}', "only integers"),
        (b'{"\xc3\xa9":1}', "printable ASCII"),
        (b'{"a":9007199254740992}', "integer out of range"),
        (b'{"a":1.0}', "integers"),
        (b'{"a":NaN}', "not valid JSON"),
        (b'{"a":', "not valid JSON"),
        (b'{"b":1,"a":2}', "not in canonical"),
        (b'{"a": 1}', "not in canonical"),
        (b'{"a":"\\u00e9"}', "not in canonical"),
    ],
)
def test_parse_canonical_refuses(data: bytes, message: str) -> None:
    with pytest.raises(EncodingError, match=message):
        parse_canonical(data)


def test_not_canonical_error_points_at_the_byte() -> None:
    with pytest.raises(EncodingError) as info:
        parse_canonical(b'{"a":1, "b":2}')
    assert "byte 7" in str(info.value)
    assert info.value.found is not None
    assert info.value.found.startswith(" ")


def test_parse_json_names_duplicate_keys() -> None:
    with pytest.raises(EncodingError, match="duplicate object key"):
        parse_json(b'{"a":1,"a":2}')


def test_parse_json_accepts_any_layout() -> None:
    value = parse_json(json.dumps({"b": [1, "é"], "a": 2}, indent=2))
    assert canonical_bytes(value) == '{"a":2,"b":[1,"é"]}'.encode()
