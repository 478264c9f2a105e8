"""The GS1 Barcode Syntax Dictionary's component checks ("linters"), by their names there."""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from types import MappingProxyType

import pycountry

from ocop_trace.errors import InvalidInput


class AIValueError(InvalidInput, ValueError):
    """A value an AI does not allow; the message names the AI, the fault and the fix."""


CSET82 = frozenset(string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_")
CSET39 = frozenset(string.ascii_uppercase + string.digits + "#-/")
CSET64 = frozenset(string.ascii_letters + string.digits + "-_")  # base64url, no padding
CHARSETS: Mapping[str, tuple[frozenset[str], str]] = MappingProxyType(
    {
        "N": (frozenset(string.digits), "digits"),
        "X": (CSET82, "letters, digits and !\"%&'()*+,-./:;<=>?_ (GS1 CSET 82)"),
        "Y": (CSET39, "upper-case letters, digits and #-/ (GS1 CSET 39)"),
        "Z": (CSET64, "letters, digits, '-' and '_' (base64url, GS1 CSET 64)"),
    }
)
_CSET32 = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_CSET82_ORDER = "".join(sorted(CSET82))  # GS1 orders CSET 82 by ASCII code
_HEX2 = re.compile("[0-9A-Fa-f]{2}")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_COUNTRIES = frozenset(c.numeric for c in pycountry.countries)
_ALPHA2 = frozenset(c.alpha_2 for c in pycountry.countries)
_CURRENCIES = frozenset(c.numeric for c in pycountry.currencies)

Linter = Callable[[str, str], None]  # (label, component) -> None, or AIValueError


def mod10_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit of `digits` (weights 3, 1, 3, ... from the right)."""
    return (10 - sum(int(d) * (3 - 2 * (i % 2)) for i, d in enumerate(reversed(digits)))) % 10


def csum(label: str, value: str) -> None:
    if (want := mod10_check_digit(value[:-1])) != int(value[-1]):
        name = label.partition(") ")[2]
        raise AIValueError(f"{name} check digit should be {want}, found {value[-1]}")


def csumalpha(label: str, value: str) -> None:
    # GS1 General Specifications 7.9.5: prime weights from the right, sum mod 1021, split
    # into two 5-bit CSET 32 characters.
    if len(value) < 2:
        raise AIValueError(f"{label} needs at least the two check characters")
    primes = _primes(len(value) - 2)
    total = sum(
        _CSET82_ORDER.index(c) * p for c, p in zip(value[:-2], reversed(primes), strict=True)
    )
    want = _CSET32[total % 1021 >> 5] + _CSET32[total % 1021 & 31]
    if value[-2:] != want:
        raise AIValueError(f"{label} check characters should be {want}, found {value[-2:]}")


def _primes(count: int) -> list[int]:
    found: list[int] = []
    candidate = 2
    while len(found) < count:
        if all(candidate % p for p in found if p * p <= candidate):
            found.append(candidate)
        candidate += 1
    return found


def key(label: str, value: str, offset: int = 0) -> None:
    # A GS1 key starts with a GS1 Company Prefix of at least 4 digits.
    prefix = value[offset : offset + 4]
    if len(prefix) < 4 or not prefix.isdigit():
        where = " after its first digit" if offset else ""
        msg = f"{label} must start{where} with a GS1 Company Prefix (4 or more digits)"
        raise AIValueError(msg)


def _date(label: str, value: str, year: int, day_zero: bool) -> None:
    mm, dd = int(value[-4:-2]), int(value[-2:])
    kind = "YYYYMMDD" if len(value) == 8 else "YYMMDD"
    if not 1 <= mm <= 12:
        raise AIValueError(f"{label} {value} is not a {kind} date: no month {mm:02}")
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = 28 if mm == 2 and not leap else _DAYS_IN_MONTH[mm - 1]
    if dd > days or (dd == 0 and not day_zero):
        zero = "; day 00 (end of month) only in (11)-(17), (4324), (4325)" if dd == 0 else ""
        raise AIValueError(f"{label} {value} is not a date: month {mm:02} has no day {dd:02}{zero}")


def yymmdd(label: str, value: str, day_zero: bool = False) -> None:
    # GS1 reads YY within 50 years of today, where every YY divisible by 4 is a leap year
    # until 2100 comes into that window in 2050; 2000 + YY keeps the check clock-free.
    _date(label, value, 2000 + int(value[:2]), day_zero)


def yymmd0(label: str, value: str) -> None:
    yymmdd(label, value, day_zero=True)


def yyyymmdd(label: str, value: str) -> None:
    _date(label, value, int(value[:4]), False)


def _below(limit: int, what: str) -> Linter:
    def check(label: str, value: str) -> None:
        if int(value) >= limit:
            raise AIValueError(f"{label}: {value} is not a valid {what} (00 to {limit - 1:02})")

    return check


def hhmi(label: str, value: str) -> None:
    _below(24, "hour")(label, value[:2])
    _below(60, "minute")(label, value[2:])


def _one_of(allowed: frozenset[str], what: str) -> Linter:
    def check(label: str, value: str) -> None:
        if value not in allowed:
            raise AIValueError(f"{label}: {value!r} is not {what}")

    return check


def pcenc(label: str, value: str) -> None:
    for index, char in enumerate(value):
        if char == "%" and not _HEX2.fullmatch(value[index + 1 : index + 3]):
            msg = f"{label}: '%' at position {index + 1} must start a %XX escape (write %25)"
            raise AIValueError(msg)


def nonzero(label: str, value: str) -> None:
    if not value.strip("0"):
        raise AIValueError(f"{label}: {value} must not be zero")


def nozeroprefix(label: str, value: str) -> None:
    if len(value) > 1 and value.startswith("0"):
        raise AIValueError(f"{label}: {value} must not start with 0 (write {value.lstrip('0')})")


def hasnondigit(label: str, value: str) -> None:
    if value.isdigit():
        raise AIValueError(f"{label}: {value} must contain at least one non-digit")


def pieceoftotal(label: str, value: str) -> None:
    piece, total = int(value[:2]), int(value[2:])
    if not 1 <= piece <= total:
        raise AIValueError(f"{label}: piece {piece:02} of {total:02} must be 01 to the total")


def posinseqslash(label: str, value: str) -> None:
    pos, slash, count = value.partition("/")
    if not (slash and pos.isdigit() and count.isdigit() and 1 <= int(pos) <= int(count)):
        raise AIValueError(f"{label}: {value!r} must be POSITION/COUNT, such as 1/2")


def latitude(label: str, value: str) -> None:
    if int(value) > 1800000000:
        raise AIValueError(f"{label}: latitude {value} is above 1800000000 (90 degrees north)")


def longitude(label: str, value: str) -> None:
    if int(value) > 3600000000:
        raise AIValueError(f"{label}: longitude {value} is above 3600000000 (180 degrees east)")


def mediatype(label: str, value: str) -> None:
    if not (1 <= int(value) <= 10 or 80 <= int(value) <= 99):
        raise AIValueError(f"{label}: media type {value} is not 01-10 (GS1) or 80-99 (internal)")


def iban(label: str, value: str) -> None:
    # ISO 13616: country code, two check digits, then the account; mod 97 of the rearranged
    # number is 1.
    if not (len(value) >= 5 and value[:2] in _ALPHA2 and value[2:4].isdigit()):
        raise AIValueError(f"{label}: {value!r} must start with a country code and two digits")
    if not all(c in string.ascii_uppercase + string.digits for c in value):
        raise AIValueError(f"{label}: an IBAN has only upper-case letters and digits")
    if int("".join(str(int(c, 36)) for c in value[4:] + value[:4])) % 97 != 1:
        raise AIValueError(f"{label}: {value} has wrong IBAN check digits")


LINTERS: Mapping[str, Linter] = MappingProxyType(
    {
        "csum": csum,
        "csumalpha": csumalpha,
        "key": key,
        "keyoff1": lambda label, value: key(label, value, 1),
        "yymmdd": yymmdd,
        "yymmd0": yymmd0,
        "yyyymmdd": yyyymmdd,
        "hh": _below(24, "hour"),
        "mi": _below(60, "minute"),
        "ss": _below(60, "second"),
        "hhmi": hhmi,
        "iso3166": _one_of(_COUNTRIES, "an ISO 3166 numeric country code"),
        "iso3166999": _one_of(_COUNTRIES | {"999"}, "an ISO 3166 numeric country code or 999"),
        "iso3166alpha2": _one_of(_ALPHA2, "an ISO 3166 two-letter country code"),
        "iso4217": _one_of(_CURRENCIES, "an ISO 4217 numeric currency code"),
        "iso5218": _one_of(frozenset("0129"), "an ISO 5218 sex code (0, 1, 2 or 9)"),
        "yesno": _one_of(frozenset("01"), "0 (no) or 1 (yes)"),
        "hyphen": _one_of(frozenset("-"), "'-' (the only character allowed here)"),
        "zero": _one_of(frozenset("0"), "0 (this digit must be 0)"),
        "winding": _one_of(frozenset("019"), "a winding direction: 0, 1 or 9"),
        "importeridx": _one_of(CSET64, "an importer index: one letter, digit, '-' or '_'"),
        "pcenc": pcenc,
        "nonzero": nonzero,
        "nozeroprefix": nozeroprefix,
        "hasnondigit": hasnondigit,
        "pieceoftotal": pieceoftotal,
        "posinseqslash": posinseqslash,
        "latitude": latitude,
        "longitude": longitude,
        "mediatype": mediatype,
        "iban": iban,
    }
)
