"""ocop_trace.gs1_ai: every GS1 AI from biip's table, with the Syntax Dictionary's rules."""

from __future__ import annotations

import pytest

from ocop_trace.digital_link import DigitalLinkError, parse_digital_link
from ocop_trace.gs1_ai import (
    AI_TABLE,
    RULES,
    Component,
    _expand,
    check_ai_value,
    check_lot,
    check_serial,
    parse_gs1_format,
    parse_spec,
)
from ocop_trace.gs1_lint import CSET82, LINTERS, AIValueError

GTIN = "09520123456788"


def bounds(spec: str, gs1_format: str) -> tuple[tuple[int, int], tuple[int, int]]:
    ours, theirs = parse_spec(spec), parse_gs1_format(gs1_format)

    def span(parts: tuple[Component, ...]) -> tuple[int, int]:
        low = sum(p.min_len for p in parts if not p.optional)
        return low, sum(p.max_len for p in parts)

    return span(ours), span(theirs)


def test_the_table_is_gs1s_whole_list() -> None:
    assert len(AI_TABLE) >= 500
    for ai in ("00", "01", "10", "21", "235", "4321", "7003", "8008", "8030", "8200", "99"):
        assert ai in AI_TABLE
    assert AI_TABLE["01"].fixed_length
    assert not AI_TABLE["10"].fixed_length
    assert not AI_TABLE["7006"].fixed_length  # fixed size, yet GS1 wants an FNC1 after it


@pytest.mark.parametrize("key", sorted(RULES))
def test_rules_agree_with_gs1s_format_and_regex(key: str) -> None:
    """Two sources: our Syntax Dictionary specs and biip's GS1 formats must agree."""
    for ai in _expand(key):
        spec = AI_TABLE[ai]
        ours, theirs = bounds(RULES[key], spec.gs1_format)
        if ai in ("423", "425"):  # GS1 writes N3+N..12 yet its regex allows one code: N3
            assert (ours, theirs) == ((3, 15), (4, 15))
            assert spec.pattern.fullmatch(ai + "704")
        else:
            assert ours == theirs, (ai, RULES[key], spec.gs1_format)
        for part in spec.components:
            assert all(name in LINTERS for name in part.linters)


@pytest.mark.parametrize(
    ("ai", "value"),
    [
        ("8008", "2601011230"),  # retailers' production date and time
        ("8008", "26010112"),
        ("7003", "2612312359"),
        ("4321", "1"),
        ("235", "TPX-1"),
        ("8013", "1987654Ad4X4bL5ttr2310c2K"),  # GS1 General Specifications' GMN example
        ("422", "704"),
        ("3910", "704123"),
        ("4307", "VN"),
        ("4309", "17999999993599999999"),
        ("7007", "260101260131"),
        ("7040", "1AB_"),
        ("7250", "20000229"),
        ("8003", "09520123456788TYPE"),
        ("8006", "095201234567880102"),
        ("8007", "GB82WEST12345698765432"),
        ("8030", "YWJj-_"),
        ("8011", "0"),
        ("4330", "001234-"),
        ("7258", "1/2"),
        ("17", "261200"),
        ("4300", "Nguy%E1%BB%85n"),
    ],
)
def test_valid_values(ai: str, value: str) -> None:
    assert check_ai_value(ai, value) == value


@pytest.mark.parametrize(
    ("ai", "value", "message"),
    [
        ("10", "L~1", "not '~' (position 2)"),
        ("10", "L" * 21, "should have 1 to 20 characters, found 21"),
        ("21", "", "empty value"),
        ("8008", "2601012430", "24 is not a valid hour"),
        ("8008", "2613011230", "no month 13"),
        ("7003", "2612312360", "60 is not a valid minute"),
        ("7006", "260200", "has no day 00; day 00 (end of month) only in (11)-(17)"),
        ("7250", "19000229", "month 02 has no day 29"),
        ("4321", "2", "'2' is not 0 (no) or 1 (yes)"),
        ("422", "999", "not an ISO 3166 numeric country code"),
        ("4307", "XX", "not an ISO 3166 two-letter country code"),
        ("3910", "000123", "not an ISO 4217 numeric currency code"),
        ("00", "006141411234567891", "SSCC check digit should be 0, found 1"),
        ("414", "9520123456781", "check digit should be 8, found 1"),
        ("8013", "1987654Ad4X4bL5ttr2310cXK", "check characters should be 2K, found XK"),
        ("8004", "ABCD123", "must start with a GS1 Company Prefix"),
        ("8003", "10952012345678", "0 (this digit must be 0)"),
        ("8006", "095201234567880302", "piece 03 of 02"),
        ("8011", "012", "must not start with 0 (write 12)"),
        ("8007", "GB83WEST12345698765432", "wrong IBAN check digits"),
        ("4300", "50%", "must start a %XX escape"),
        ("4309", "18000000013599999999", "latitude 1800000001 is above"),
        ("8010", "1234abc", "upper-case letters, digits and #-/ (GS1 CSET 39)"),
        ("8030", "ab=", "base64url"),
        ("7258", "2/1", "POSITION/COUNT"),
        ("7241", "50", "media type 50"),
        ("4330", "001234+", "'+' is not '-'"),
        ("7007", "2601012601", "part 2 needs 6 characters, found 4"),
        ("8001", "00001000010011", "must not be zero"),
        ("9999", "x", "not a GS1 Application Identifier"),
    ],
)
def test_refusals_name_the_fault(ai: str, value: str, message: str) -> None:
    with pytest.raises(AIValueError) as err:
        check_ai_value(ai, value)
    assert message in str(err.value)
    assert str(err.value).startswith(f"({ai})") or "check digit" in str(err.value)


def test_a_mudi_needs_a_non_digit() -> None:
    with pytest.raises(AIValueError, match="must contain at least one non-digit"):
        LINTERS["hasnondigit"]("(8014) MUDI", "1234567890")


def test_lot_and_serial_checks_for_registration() -> None:
    assert check_lot("L/7.A-1") == "L/7.A-1"
    assert check_serial("QAVZGAXAZ3B0BWDB") == "QAVZGAXAZ3B0BWDB"
    with pytest.raises(AIValueError, match=r"^\(10\) BATCH/LOT allows only .* not '~'"):
        check_lot("L~1")
    with pytest.raises(AIValueError, match="not 'é'"):
        check_lot("Lé")
    with pytest.raises(AIValueError, match=r"^\(21\) SERIAL should have 1 to 20 characters"):
        check_serial("S" * 21)
    for char in sorted(CSET82):
        assert check_lot(char * 20) == char * 20


@pytest.mark.parametrize(
    ("uri", "pairs"),
    [
        (f"https://a/01/{GTIN}?8008=2601011230&7003=2612312359&4321=0", None),
        (f"https://a/01/{GTIN}/235/TPX1?10=L1", [("01", GTIN), ("235", "TPX1"), ("10", "L1")]),
        ("https://a/414/9520123456788/254/EXT", [("414", "9520123456788"), ("254", "EXT")]),
        ("https://a/414/9520123456788/7040/1ABC", None),
        ("https://a/8004/9520614141234567/7040/1ABC", None),
        ("https://a/8006/095201234567880102/10/L1/21/S", None),
        ("https://a/00/006141411234567890?02=09520123456788&37=25&10=L1", None),
        ("https://a/8010/9520ABC/8011/12", None),
        ("https://a/8017/095201234567890122/8019/77", None),
        ("https://a/8013/1987654Ad4X4bL5ttr2310c2K", None),
    ],
)
def test_every_primary_key_parses(uri: str, pairs: list[tuple[str, str]] | None) -> None:
    link = parse_digital_link(uri)
    assert link.primary_key == uri.split("/")[3]
    if pairs is not None:
        assert link.pairs() == pairs
    assert parse_digital_link(link.canonical_uri()) == link
    assert (link.gtin is None) == (link.primary_key != "01")


def test_retailer_attributes_need_valid_values() -> None:
    with pytest.raises(DigitalLinkError, match="24 is not a valid hour"):
        parse_digital_link(f"https://a/01/{GTIN}?8008=2601012430")
    with pytest.raises(DigitalLinkError, match=r"\(8200\) PRODUCT URL is not allowed"):
        parse_digital_link(f"https://a/01/{GTIN}?8200=x")
