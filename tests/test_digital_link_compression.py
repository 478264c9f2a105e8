"""ocop_trace.dl_compression against the examples published with GS1's compression
prototype, hand-built optimised sequences, and round trips of generated links."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocop_trace.digital_link import (
    DigitalLinkError,
    build_digital_link,
    gtin_check_digit,
    parse_digital_link,
)
from ocop_trace.dl_compression import (
    ALPHABET,
    _Bits,
    _put_value,
    compress_ais,
    compress_digital_link,
    decompress_ais,
    decompress_digital_link,
)
from ocop_trace.gs1_lint import CSET82

# (compressed, uncompressed) pairs published with GS1's Digital Link compression prototype.
PUBLISHED = [
    ("https://id.gs1.org/ARHKVAdpQg", "https://id.gs1.org/01/09780345418913"),
    (
        "https://id.gs1.org/AREjalurbiAUO-cgohCz45Z67b8A",
        "https://id.gs1.org/01/09421902960055/10/2010005828/21/xyz1234",
    ),
    (
        "http://example.org/AQnYUc1gmiERBhQ0ytiyZuAGOLc1TXgpNWCv1",
        "http://example.org/01/05412345000013/10/ABC%26%2B123?7003=1903061658&k1=v1",
    ),
    ("https://id.gs1.org/ABeRcNWtKMPA", "https://id.gs1.org/00/106141412345678908"),
]


@pytest.mark.parametrize(("compressed", "uncompressed"), PUBLISHED)
def test_published_examples_decompress(compressed: str, uncompressed: str) -> None:
    assert decompress_digital_link(compressed) == uncompressed


@pytest.mark.parametrize(("compressed", "uncompressed"), PUBLISHED)
def test_published_examples_compress(compressed: str, uncompressed: str) -> None:
    link = parse_digital_link(uncompressed)
    others = {"k1": "v1"} if "k1=" in uncompressed else None
    assert compress_ais(link.pairs(), others) == compressed.rpartition("/")[2]
    if others is None:
        assert compress_digital_link(uncompressed) == compressed


def optimised(code: str, *pairs: tuple[str, str]) -> str:
    bits = _Bits()
    bits.put(int(code, 16), 8)
    for ai, value in pairs:
        _put_value(bits, ai, value)
    padded = bits.bits + "0" * (-len(bits.bits) % 6)
    return "".join(ALPHABET[int(padded[i : i + 6], 2)] for i in range(0, len(padded), 6))


def test_optimised_sequences_decode_like_the_plain_ones() -> None:
    pairs = [("01", "09520123456788"), ("10", "L1"), ("21", "S-9"), ("17", "261231")]
    assert decompress_ais(optimised("1A", *pairs)) == (pairs, {})
    assert decompress_ais(optimised("9D", ("414", "9520123456788"), ("254", "X1")))[0] == [
        ("414", "9520123456788"),
        ("254", "X1"),
    ]
    uri = "https://a/" + optimised("0B", ("01", "09520123456788"), ("10", "L1"))
    assert decompress_digital_link(uri) == "https://a/01/09520123456788/10/L1"


def test_leading_zeros_and_every_text_encoding_survive() -> None:
    pairs = [("01", "09520123456788"), ("10", "007"), ("21", "0a9f"), ("17", "260100")]
    for lot in ("007", "0A9F", "Ab-_9", "A/B%C", "x"):
        pairs[1] = ("10", lot)
        assert decompress_ais(compress_ais(pairs)) == (pairs, {})
    assert decompress_ais(compress_ais([("30", "0042"), ("8008", "26010112")]))[0] == [
        ("30", "0042"),
        ("8008", "26010112"),
    ]


def test_the_tpx_path_is_chosen_when_the_data_holds_235() -> None:
    data = compress_ais([("01", "09520123456788"), ("235", "T1"), ("10", "L1")])
    assert decompress_digital_link(f"https://a/b/{data}/") == (
        "https://a/b/01/09520123456788/235/T1?10=L1"
    )


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://a/AR~", "uses only A-Z"),
        ("https://a/AR^", "must be percent-encoded"),
        ("https://a/AR*x", "uses only A-Z"),
        ("https://a/ARHKVAdp", "ends in the middle of a value"),
        ("https://a/ARHKVAdpQh", "stray bits"),
        ("https://a/ARHKVAdpQgA", "ends in the middle of a value"),
        ("https://a/sA", "code B0"),
        ("https://a/", "last path segment"),
        ("https://a/ARHKVAdpQg?17=261231", "not the query"),
        ("https://a/_w", "ends in the middle"),
        ("https://a/FFFF", "code 14"),
    ],
)
def test_refusals(uri: str, message: str) -> None:
    with pytest.raises(DigitalLinkError) as err:
        decompress_digital_link(uri)
    assert message in str(err.value)


def test_values_are_checked_after_decoding() -> None:
    data = compress_ais([("01", "09520123456789")])  # wrong check digit
    with pytest.raises(DigitalLinkError, match="check digit should be 8, found 9"):
        decompress_digital_link(f"https://a/{data}")
    data = compress_ais([("17", "261231")])
    with pytest.raises(DigitalLinkError, match="no GS1 primary key"):
        decompress_digital_link(f"https://a/{data}")


gtins = st.text(alphabet=string.digits, min_size=13, max_size=13).map(
    lambda body: body + str(gtin_check_digit(body))
)
x_values = st.text(alphabet="".join(sorted(CSET82)), min_size=1, max_size=20)
attributes = st.fixed_dictionaries(
    {},
    optional={
        "17": st.dates().map(lambda d: d.strftime("%y%m%d")),
        "3103": st.text(alphabet=string.digits, min_size=6, max_size=6),
        "30": st.text(alphabet=string.digits, min_size=1, max_size=8),
        "99": st.text(alphabet="".join(sorted(CSET82)), min_size=1, max_size=90),
        "8008": st.datetimes().map(lambda d: d.strftime("%y%m%d%H%M")),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    gtin=gtins,
    lot=st.none() | x_values,
    serial=st.none() | x_values,
    attrs=attributes,
    stem=st.sampled_from(["", "/s", "/a/01/b"]),
)
def test_round_trip(
    gtin: str, lot: str | None, serial: str | None, attrs: dict[str, str], stem: str
) -> None:
    uri = build_digital_link(f"https://id.example.vn{stem}", gtin, lot, serial, None, attrs)
    compressed = compress_digital_link(uri)
    assert len(compressed) < len(uri) + 8
    assert decompress_digital_link(compressed) == uri
