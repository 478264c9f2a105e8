"""ocop_trace.digital_link against the GS1 Syntax Engine's Digital Link vectors and round trips."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocop_trace.digital_link import (
    AI_TABLE,
    DigitalLink,
    DigitalLinkError,
    build_digital_link,
    gtin_check_digit,
    is_valid_gtin,
    parse_digital_link,
)

VECTORS = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "vectors"
    / "gs1-digital-link"
    / "parse.json"
)
DATA: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = DATA["cases"]
CHECK_CASES: list[dict[str, Any]] = DATA["check_digits"]["cases"]

# The subset predicate (docs/digital-link.md, "Conformance"): every primary key and qualifier
# is read, so a case is out of the subset only when it needs an option the parser does not
# offer (permitUnknownAIs). For those the parser must refuse (DigitalLinkError).
OPTION_NAMES = {
    "permitConvenienceAlphas": "allow_convenience_alphas",
    "permitZeroSuppressedGTINinDLuris": "allow_zero_suppressed_gtin",
}
EXPECTED_IN_SUBSET = 119
EXPECTED_IN_SUBSET_OK = 73
X_CHARS = string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_"


def in_subset(case: dict[str, Any]) -> bool:
    options = {**DATA["default_options"], **case.get("options", {})}
    return all(
        options[name] == DATA["default_options"][name] for name in options.keys() - OPTION_NAMES
    )


def parse_case(case: dict[str, Any]) -> DigitalLink:
    options = case.get("options", {})
    kwargs = {ours: options.get(theirs, False) for theirs, ours in OPTION_NAMES.items()}
    return parse_digital_link(case["uri"], **kwargs)


def expected_element_string(case: dict[str, Any]) -> str:
    if case.get("output_checked_upstream") is False:
        # The 90-character boundary case: upstream checks success only; (01) needs no separator.
        value: str = case["uri"].partition("?99=")[2]
        assert value == "A" * 90
        return "^0112312312312333" + "99" + value
    result: str = case["element_string"]
    return result


def test_vector_file_is_complete() -> None:
    assert len(CASES) == 121
    assert sum(case["ok"] for case in CASES) == 74
    assert len(CHECK_CASES) == 14


def test_subset_size() -> None:
    subset = [case for case in CASES if in_subset(case)]
    assert len(subset) == EXPECTED_IN_SUBSET
    assert sum(case["ok"] for case in subset) == EXPECTED_IN_SUBSET_OK


@pytest.mark.parametrize("case", CASES, ids=[f"line{case['source_line']}" for case in CASES])
def test_vector(case: dict[str, Any]) -> None:
    if in_subset(case) and case["ok"]:
        assert parse_case(case).element_string() == expected_element_string(case)
    else:
        with pytest.raises(DigitalLinkError) as err:
            parse_case(case)
        assert str(err.value)


@pytest.mark.parametrize("case", CHECK_CASES, ids=[repr(c["digits"]) for c in CHECK_CASES])
def test_check_digit_vector(case: dict[str, Any]) -> None:
    digits: str = case["digits"]
    if len(digits) >= 2 and digits.isascii() and digits.isdigit():
        assert (gtin_check_digit(digits[:-1]) == int(digits[-1])) == case["valid"]
    else:
        assert not case["valid"]
        with pytest.raises(DigitalLinkError, match="digits 0-9 only"):
            gtin_check_digit(digits)
    assert is_valid_gtin(digits) == (case["valid"] and len(digits) in (8, 12, 13, 14))


WRONG_GTIN_CHECK_DIGITS = [
    case
    for case in CHECK_CASES
    if case.get("error") == "GS1_LINTER_INCORRECT_CHECK_DIGIT"
    and len(case["digits"]) in (8, 12, 13, 14)
]


@pytest.mark.parametrize("case", WRONG_GTIN_CHECK_DIGITS, ids=lambda c: c["digits"])
def test_wrong_check_digit_message(case: dict[str, Any]) -> None:
    digits: str = case["digits"]
    want = gtin_check_digit(digits[:-1])
    # error_markup wraps the offending digit: the message names the same one.
    assert case["error_markup"].endswith(f"*{digits[-1]}*")
    with pytest.raises(DigitalLinkError, match=f"should be {want}, found {digits[-1]}$"):
        parse_digital_link(f"https://a/01/{digits}", allow_zero_suppressed_gtin=True)


def test_check_digit_message_names_both_digits() -> None:
    with pytest.raises(DigitalLinkError, match=r"^GTIN check digit should be 8, found 3$"):
        parse_digital_link("https://example.com/01/09520123456783")


def test_parsed_fields() -> None:
    link = parse_digital_link(
        "HTTPS://Brand.Example.COM:8443/p/x/01/09520123456788/22/2A/10/AB%2F1+2/21/S1"
        "?17=251231&linkType=gs1:pip&exp=991231&99=a%2Bb#top"
    )
    assert link == DigitalLink(
        primary_key="01",
        key_value="09520123456788",
        qualifiers={"22": "2A", "10": "AB/1+2", "21": "S1"},
        attributes={"17": "251231", "99": "a+b"},  # "exp" is ignored without the option
        scheme="https",
        host="brand.example.com:8443",
        stem="/p/x",
    )
    assert (link.gtin, link.cpv, link.lot, link.serial) == ("09520123456788", "2A", "AB/1+2", "S1")
    assert link.element_string() == "^0109520123456788222A^10AB/1+2^21S1^1725123199a+b"


def test_space_in_query_value_is_refused_with_its_position() -> None:
    with pytest.raises(DigitalLinkError, match="' ' \\(position 2\\)"):
        parse_digital_link("https://a/01/09520123456788?99=a+b")


def test_convenience_alphas_in_the_query_when_allowed() -> None:
    link = parse_digital_link(
        "https://a/gtin/09520123456788/lot/L1?exp=991231", allow_convenience_alphas=True
    )
    assert (link.lot, link.attributes) == ("L1", {"17": "991231"})
    with pytest.raises(DigitalLinkError, match="belongs in the path"):
        parse_digital_link("https://a/01/09520123456788?lot=L1", allow_convenience_alphas=True)


def test_fixed_length_ai_outside_the_predefined_table_gets_a_separator() -> None:
    link = parse_digital_link("https://a/01/09520123456788?7006=250101&99=X&3103=000500")
    assert link.element_string() == "^01095201234567887006250101^99X^3103000500"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://a/01/09520123456788?17=251301", "no month 13"),
        ("https://a/01/09520123456788?17=250230", "month 02 has no day 30"),
        ("https://a/01/09520123456788?7006=250200", "month 02 has no day 00"),
        ("https://a/01/09520123456788?17=250431", "month 04 has no day 31"),
        ("https://a/01/09520123456788?17=2512", "should have 6 characters, found 4"),
        ("https://a/01/09520123456788/21/" + "S" * 21, "should have 1 to 20 characters"),
        ("https://a/01/09520123456788/10/L/22/C", "in that order"),
        ("https://a/01/09520123456788/21/S/21/T", "in that order"),
        ("https://a/01/09520123456788?17=251231&exp=251231", None),  # exp ignored: no error
        ("https://a/01/09520123456788?17=251231&17=251231", "appears twice"),
        ("https://a/01/09520123456788?21=S", "belongs in the path"),
        ("https://a/01/09520123456788?8200=x", "(8200) PRODUCT URL is not allowed as a GS1"),
        ("https://a/01/09520123456788?8999=x", "numeric but not a GS1 AI"),
        ("https://a/01/09520123456788?22=x", "belongs in the path"),
        ("https://a/01/09520123456788/235/T?21=x", "a key qualifier goes in the path"),
        ("https://a/01/09520123456788/10/L/235/T", "in that order"),
        ("https://a/414/9520123456788/254/X/7040/1ABC", "/254/ or /7040/"),
        ("https://a/00/006141411234567890/21/S", "not a key qualifier of (00)"),
        ("https://a/01/0952012345678%8", "%XX escape"),
        ("https://a/01/09520123456788?99=%C3", "not UTF-8"),
        ("https://a/01/09520123456788?99=%C3%A9", "allows only letters"),
        ("https://a/gtin/09520123456788", "convenience alphas"),
        ("https://a:65536/01/09520123456788", "port number"),
        ("https://a:/01/09520123456788", "port number"),
        ("https://u@a/01/09520123456788", "host 'u@a'"),
        ("https://[fe80::1%25eth0]/01/09520123456788", "zone"),
        ("https://[fe80::g]/01/09520123456788", "not an IPv6 address"),
        ("https://a/01/09520123456788/17/251231", "query string"),
        ("https://a/00/006141411234567891", "SSCC check digit should be 0, found 1"),
        ("https://a/01/095201234567é8", "must be percent-encoded"),
        ("https://a/01/09520123456788 ", "must be percent-encoded"),
    ],
)
def test_refusals_say_why(uri: str, message: str | None) -> None:
    if message is None:
        parse_digital_link(uri)
        return
    with pytest.raises(DigitalLinkError) as err:
        parse_digital_link(uri)
    assert message in str(err.value)


def test_leap_years() -> None:
    assert parse_digital_link("https://a/01/09520123456788?17=240229").attributes["17"] == "240229"
    assert parse_digital_link("https://a/01/09520123456788?17=250200").attributes["17"] == "250200"


def test_builder_canonical_form() -> None:
    uri = build_digital_link(
        "HTTPS://Example.COM/stem/",
        "9520123456788",
        lot="AB/1+2",
        serial="S-1.x_",
        cpv="2A",
        attributes={"99": "a&b=c", "17": "251231", "3103": "000500"},
    )
    assert uri == (
        "https://example.com/stem/01/09520123456788/22/2A/10/AB%2F1%2B2/21/S-1.x_"
        "?17=251231&3103=000500&99=a%26b%3Dc"
    )
    assert parse_digital_link(uri).canonical_uri() == uri


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gtin": "09520123456789"}, "should be 8, found 9"),
        ({"gtin": "0952012345"}, "should have 14 characters, found 10"),
        ({"gtin": "09520123456788", "lot": ""}, "empty value"),
        ({"gtin": "09520123456788", "lot": "L" * 21}, "1 to 20 characters"),
        ({"gtin": "09520123456788", "serial": "a b"}, "not ' '"),
        ({"gtin": "09520123456788", "attributes": {"10": "L"}}, "belongs in the path"),
        ({"gtin": "09520123456788", "attributes": {"8200": "x"}}, "not allowed as a GS1 Digital"),
        ({"gtin": "09520123456788", "attributes": {"8999": "x"}}, "not a GS1 AI"),
        ({"gtin": "09520123456788", "attributes": {"17": "251332"}}, "no month 13"),
    ],
)
def test_builder_refusals(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DigitalLinkError, match=message):
        build_digital_link("https://example.com", **kwargs)


@pytest.mark.parametrize(
    "base",
    ["ftp://a", "https://", "https://a/x?y=1", "https://a/x#f", "https://a b", "https://a//x"],
)
def test_builder_refuses_bad_base_urls(base: str) -> None:
    with pytest.raises(DigitalLinkError):
        build_digital_link(base, "09520123456788")


def test_table_entries_are_consistent() -> None:
    for ai, spec in AI_TABLE.items():
        assert 2 <= len(ai) <= 4
        assert ai.isdigit()
        assert all(part.charset in "NXYZ" for part in spec.components)
        assert 1 <= spec.min_len <= spec.max_len <= 90


gtin_bodies = st.text(alphabet=string.digits, min_size=13, max_size=13)
gtins = gtin_bodies.map(lambda body: body + str(gtin_check_digit(body)))
x_values = st.text(alphabet=X_CHARS, min_size=1, max_size=20)
dates = st.dates().map(lambda d: d.strftime("%y%m%d"))
attributes = st.fixed_dictionaries(
    {},
    optional={
        "17": dates,
        "15": dates,
        "3103": st.text(alphabet=string.digits, min_size=6, max_size=6),
        "99": st.text(alphabet=X_CHARS, min_size=1, max_size=90),
        "240": st.text(alphabet=X_CHARS, min_size=1, max_size=30),
    },
)


@settings(max_examples=400, deadline=None)
@given(
    gtin=gtins,
    lot=st.none() | x_values,
    serial=st.none() | x_values,
    cpv=st.none() | x_values,
    attrs=attributes,
    stem=st.sampled_from(["", "/s", "/a/01/b"]),
)
def test_build_parse_round_trip(
    gtin: str,
    lot: str | None,
    serial: str | None,
    cpv: str | None,
    attrs: dict[str, str],
    stem: str,
) -> None:
    uri = build_digital_link(f"https://id.example.vn{stem}", gtin, lot, serial, cpv, attrs)
    link = parse_digital_link(uri)
    assert (link.gtin, link.lot, link.serial, link.cpv) == (gtin, lot, serial, cpv)
    assert link.attributes == attrs
    assert list(link.attributes) == sorted(attrs)
    assert (link.host, link.stem) == ("id.example.vn", stem)
    assert link.canonical_uri() == uri


URI_ALPHABET = string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%"
near_links = st.tuples(
    st.sampled_from(["https://a/01/09520123456788", "http://[::1]:8/01/0952012345678", ""]),
    st.text(alphabet=URI_ALPHABET + "é\x00 ^", max_size=60),
).map("".join)


def parse_or_message(uri: str, options: bool) -> DigitalLink | str:
    try:
        return parse_digital_link(
            uri, allow_convenience_alphas=options, allow_zero_suppressed_gtin=options
        )
    except DigitalLinkError as err:
        return str(err)


@settings(max_examples=1500, deadline=None)
@given(uri=st.text(max_size=80) | near_links)
def test_parser_raises_only_digital_link_error(uri: str) -> None:
    for options in (False, True):
        result = parse_or_message(uri, options)
        if isinstance(result, str):
            assert result  # a message for a person, never empty
        else:
            assert is_valid_gtin(result.gtin)
            assert len(result.gtin) == 14
            assert parse_digital_link(result.canonical_uri()) == result
