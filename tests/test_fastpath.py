"""The verifier's fast path refuses exactly what parse_entry refuses, and agrees on the rest."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import keys
from ledger.canonical import MAX_SAFE_INTEGER, MAX_STRING_CHARS, is_plain, validate
from ledger.errors import LedgerError
from ledger.fastpath import prepare, signed
from ledger.statement import make_entry, parse_entry, sign_statement
from ledger.verifier import _check_slowly, check_entries

KEY = keys.generate()
GOOD = make_entry(
    7,
    "ab" * 32,
    "2026-01-05T09:00:01.250000Z",
    sign_statement(
        "batch.registered",
        {"lot": "L1", "origin": "thôn Chè Cọ", "qty": 1200, "tags": ["a", {"b": [1, 2]}]},
        KEY,
        "2026-01-05T09:00:00Z",
    ),
)


def parses(data: bytes) -> bool:
    try:
        parse_entry(data)
    except LedgerError:
        return False
    return True


def assert_agrees(data: bytes) -> None:
    """prepare settles an entry exactly when parse_entry accepts it."""
    assert (prepare(data) is not None) == parses(data), data[:300]


def entry_with(change: dict[str, Any], statement_change: dict[str, Any] | None = None) -> bytes:
    """GOOD's entry with fields replaced, encoded the way orjson encodes (sorted keys)."""
    value = orjson.loads(GOOD.data)
    value["statement"].update(statement_change or {})
    value.update(change)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def test_honest_entry_takes_the_fast_path_with_the_slow_path_facts() -> None:
    ready = prepare(GOOD.data)
    assert ready is not None
    assert signed(ready)
    assert ready[0] == _check_slowly(0, GOOD.data)
    assert ready[3] == GOOD.signing_input()


# Each hides what `validate` refuses where a filter over the raw bytes could miss it.
AMBIGUOUS_BODIES: list[Any] = [
    {"tags": ["a", 1.5]},
    {"tags": [[[1e5]]]},
    {"n": -0.0},
    {"n": MAX_SAFE_INTEGER + 1},
    {"n": [-MAX_SAFE_INTEGER - 1]},
    {"n": 18446744073709551615},
    {"ok": True},
    {"list": [1, None]},
    {"s": "x" * (MAX_STRING_CHARS + 1)},
    {"deep": {"ké": 1}},
    {"deep": [{"": 1}]},
    {"deep": [{"a\nb": 1}]},
    {"deep": [{"\x7f": 1}]},
    {"k" * 129: 1},
    {"a": 1, "k" * 129: 2},
    {"d": [[[[[[[[[[[[[[1]]]]]]]]]]]]]]},  # the body is at depth 2: 14 more is too deep
]
# Each looks suspicious to a byte filter but is a plain value.
PLAIN_BODIES: list[Any] = [
    {"s": '"x":1.5,"y":true,"z":null'},
    {"s": ":1.5", "t": "[1e5]", "u": "9007199254740993"},
    {"n": MAX_SAFE_INTEGER, "m": -MAX_SAFE_INTEGER},
    {"k" * 128: "x" * MAX_STRING_CHARS},
    {"d": [[[[[[[[[[[[[1]]]]]]]]]]]]]},  # 13 more levels: the deepest allowed
    {" ~!": "ké\n\u2028\U0001f600"},
    {},
]


@pytest.mark.parametrize("body", AMBIGUOUS_BODIES + PLAIN_BODIES)
def test_body_values(body: Any) -> None:
    assert_agrees(entry_with({}, {"body": body}))


@pytest.mark.parametrize("body", AMBIGUOUS_BODIES)
def test_ambiguous_bodies_are_refused(body: Any) -> None:
    assert prepare(entry_with({}, {"body": body})) is None


@pytest.mark.parametrize("body", PLAIN_BODIES)
def test_signed_plain_bodies_take_the_fast_path(body: Any) -> None:
    statement = sign_statement("batch.registered", body, KEY, "2026-01-05T09:00:00Z")
    data = make_entry(0, "00" * 32, "2026-01-05T09:00:01Z", statement).data
    ready = prepare(data)
    assert ready is not None
    assert signed(ready)
    assert ready[0] == _check_slowly(0, data)


@pytest.mark.parametrize(
    "change",
    [
        {"index": -1},
        {"index": MAX_SAFE_INTEGER},
        {"index": MAX_SAFE_INTEGER + 1},
        {"index": True},
        {"index": 1.0},
        {"index": "1"},
        {"prev_hash": "AB" * 32},
        {"prev_hash": "ab" * 31},
        {"prev_hash": "ab" * 32 + "\n"},
        {"prev_hash": None},
        {"integrated_at": "2026-02-30T00:00:00Z"},
        {"integrated_at": "2026-01-01T24:00:00Z"},
        {"integrated_at": "2026-01-01T00:60:00Z"},
        {"integrated_at": "0000-01-01T00:00:00Z"},
        {"integrated_at": "2026-01-01T00:00:00.1234567Z"},
        {"integrated_at": "2026-01-01T00:00:00.123456Z"},
        {"integrated_at": "2026-01-01 00:00:00Z"},
        {"integrated_at": "٢٠٢٦-01-01T00:00:00Z"},
        {"integrated_at": "2026-01-01T00:00:00Z "},
        {"extra": 1},
        {"statement": []},
    ],
)
def test_entry_fields(change: dict[str, Any]) -> None:
    assert_agrees(entry_with(change))


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "a" * 64},
        {"kind": "a" * 65},
        {"kind": "Batch.registered"},
        {"kind": "batch..registered"},
        {"kind": "batch.registered."},
        {"kind": "batch registered"},
        {"kind": "ba_t9.r"},
        {"kind": ""},
        {"key_id": "AB" * 32},
        {"key_id": "ab" * 33},
        {"key_id": 5},
        {"issued_at": "2026-02-29T00:00:00Z"},
        {"issued_at": "2028-02-29T00:00:00Z"},
        {"issued_at": "2026-01-01T00:00:00"},
        {"sig": "A" * 86 + "=="},
        {"sig": "A" * 85 + "B=="},
        {"sig": "A" * 85 + "Q=="},
        {"sig": "A" * 84 + "===="},
        {"sig": "A" * 88},
        {"sig": "A" * 85 + "w= "},
        {"sig": "_" * 85 + "A=="},
        # The decoder skips characters outside the alphabet; the text must encode back.
        {"sig": "A" * 84 + "!" + "A=="},
        {"sig": "A" * 84 + "\n" + "A=="},
        {"sig": "A" * 84 + "é" + "A=="},
        {"sig": "A" * 86 + "=" + "="},
        {"sig": "AAAA" * 22},
        {"sig": "A" * 85 + "A="},
        {"body": [1]},
        {"body": "x"},
        {"extra": "x"},
    ],
)
def test_statement_fields(change: dict[str, Any]) -> None:
    assert_agrees(entry_with({}, change))


@pytest.mark.parametrize(
    "data",
    [
        GOOD.data.replace(b'{"index":7,', b'{"index": 7,'),
        GOOD.data.replace(b'"index":7,', b'"index":7,"index":7,'),
        GOOD.data.replace("thôn".encode(), b"th\\u00f4n"),
        GOOD.data.replace(b'"qty":1200', b'"qty":1.2e3'),
        GOOD.data.replace(b'"qty":1200', b'"qty":1200.0'),
        GOOD.data.replace(b'"qty":1200', b'"qty":9007199254740993'),
        GOOD.data + b"\n",
        b"[" + GOOD.data + b"]",
        b"7",
        b"",
        GOOD.data[:-1],
    ],
)
def test_non_canonical_bytes(data: bytes) -> None:
    assert_agrees(data)
    assert prepare(data) is None


# orjson parses no lone surrogates, so neither path ever sees one.
chars_st = st.characters(blacklist_categories=("Cs",))
ascii_st = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
keys_st = (
    st.text(ascii_st, min_size=1, max_size=6)
    | st.text(chars_st, max_size=4)
    | st.sampled_from(["", "k" * 128, "k" * 129])
)
leaves_st = (
    st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.text(chars_st, max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)
json_st = st.recursive(
    leaves_st,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(keys_st, children, max_size=3)
    ),
    max_leaves=12,
)

plain_keys_st = st.text(ascii_st, min_size=1, max_size=6)
plain_st = st.recursive(
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER) | st.text(chars_st),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(plain_keys_st, children, max_size=3)
    ),
    max_leaves=12,
)
# Bodies both paths accept, to compare their facts, then anything JSON can hold.
bodies_st = st.dictionaries(plain_keys_st, plain_st, max_size=4) | st.dictionaries(
    keys_st, json_st, max_size=4
)


def validates(value: Any, depth: int = 0) -> bool:
    try:
        validate(value, depth=depth)
    except LedgerError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(json_st, st.integers(min_value=0, max_value=17))
def test_is_plain_equals_validate(value: Any, depth: int) -> None:
    value = orjson.loads(json.dumps(value))  # the types orjson parses to
    assert is_plain(value, depth) == validates(value, depth)


@settings(max_examples=400, deadline=None)
@given(bodies_st | json_st)
def test_any_body_in_any_layout(body: Any) -> None:
    value = orjson.loads(GOOD.data)
    value["statement"]["body"] = body
    compact = {"ensure_ascii": False, "separators": (",", ":")}
    assert_agrees(json.dumps(value, sort_keys=True, **compact).encode())  # type: ignore[arg-type]
    assert_agrees(json.dumps(value, **compact).encode())  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(GOOD.data) - 1), st.binary(min_size=0, max_size=3))
def test_any_byte_change(at: int, new: bytes) -> None:
    data = GOOD.data[:at] + new + GOOD.data[at + 1 :]
    assert_agrees(data)
    # Where the signature still holds (the entry's own members are not signed), both
    # paths report the same facts.
    ready = prepare(data)
    if ready is not None and signed(ready):
        assert ready[0] == _check_slowly(0, data)


def test_check_entries_reports_what_the_slow_path_reports() -> None:
    tampered = GOOD.data.replace(b'"L1"', b'"L2"')
    bad_float = entry_with({}, {"body": {"x": [1.5]}})
    records = [(0, GOOD.data), (1, tampered), (2, bad_float), (3, b"{}")]
    assert check_entries(records) == [_check_slowly(p, d) for p, d in records]


@pytest.mark.parametrize(
    "key_id",
    ["01" + "00" * 31, "ec" + "ff" * 30 + "7f", "ed" + "ff" * 30 + "7f", "00" * 32],
    ids=["identity", "minus-one", "not-canonical", "zero"],
)
def test_a_key_of_small_order_or_not_canonical_is_left_to_the_slow_path(key_id: str) -> None:
    # Such a key parses (it is 64 lowercase hex) but no signature by it is acceptable; the
    # fast path vets each key once and leaves these to the slow path, which words it.
    data = entry_with({}, {"key_id": key_id})
    assert parses(data)
    assert prepare(data) is None
    [failure] = check_entries([(0, data)])
    assert failure == _check_slowly(0, data)
    assert getattr(failure, "reason", None) == "signature"
