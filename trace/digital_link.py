"""GS1 Digital Link URIs for (01) GTIN labels: a strict parser, a canonical builder, check digits.

Subset (docs/digital-link.md): http(s) in all lower or all upper case; a host name, IPv4 or
IPv6 (no zone id), optional port; an optional path stem; /01/{GTIN-14} then /22/, /10/, /21/ in
that order; query attributes from AI_TABLE; convenience alphas and zero-suppressed GTINs only
when asked for. Anything else, such as other primary keys, raises DigitalLinkError.
"""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import quote

from ocop_trace.errors import BadLink


class DigitalLinkError(BadLink, ValueError):
    """A URI or value outside the supported subset; the message says what is wrong."""


@dataclass(frozen=True)
class AISpec:
    title: str
    charset: str  # "N": digits; "X": the GS1 AI encodable character set 82
    min_len: int
    max_len: int
    check: str = ""  # "gtin": mod-10 check digit; "date": YYMMDD; "date0": YYMMDD, DD may be 00


def _ai_table() -> dict[str, AISpec]:
    table = {
        "01": AISpec("GTIN", "N", 14, 14, "gtin"),
        "22": AISpec("CPV", "X", 1, 20),
        "10": AISpec("BATCH/LOT", "X", 1, 20),
        "21": AISpec("SERIAL", "X", 1, 20),
        "11": AISpec("PROD DATE", "N", 6, 6, "date0"),
        "12": AISpec("DUE DATE", "N", 6, 6, "date0"),
        "13": AISpec("PACK DATE", "N", 6, 6, "date0"),
        "15": AISpec("BEST BEFORE", "N", 6, 6, "date0"),
        "16": AISpec("SELL BY", "N", 6, 6, "date0"),
        "17": AISpec("USE BY OR EXPIRY", "N", 6, 6, "date0"),
        "30": AISpec("VAR. COUNT", "N", 1, 8),
        "240": AISpec("ADDITIONAL ID", "X", 1, 30),
        "241": AISpec("CUST. PART No.", "X", 1, 30),
        "250": AISpec("SECONDARY SERIAL", "X", 1, 30),
        "422": AISpec("ORIGIN", "N", 3, 3),  # ISO 3166 numeric; the code list is not checked
        "7006": AISpec("FIRST FREEZE DATE", "N", 6, 6, "date"),
        "90": AISpec("INTERNAL", "X", 1, 30),
    }
    measures = ("NET WEIGHT kg", "LENGTH m", "WIDTH m", "HEIGHT m", "AREA m2", "NET VOLUME l")
    for offset, title in enumerate((*measures, "NET VOLUME m3")):
        for decimals in range(6):  # the last digit of 31nn is the decimal point position
            table[f"31{offset}{decimals}"] = AISpec(title, "N", 6, 6)
    for decimals in range(10):
        table[f"392{decimals}"] = AISpec("PRICE", "N", 1, 15)
    for ai in range(91, 100):
        table[str(ai)] = AISpec("INTERNAL", "X", 1, 90)
    return table


AI_TABLE: Mapping[str, AISpec] = MappingProxyType(_ai_table())
KEY_QUALIFIERS = ("22", "10", "21")  # the only path order the DL spec allows after (01)
_PATH_AIS = frozenset({"01", *KEY_QUALIFIERS})
_ALPHAS = MappingProxyType({"gtin": "01", "cpv": "22", "lot": "10", "ser": "21", "exp": "17"})
# GS1 primary keys other than (01), named only to refuse them clearly.
_OTHER_KEYS = frozenset(
    {"00", "253", "255", "401", "402", "414", "417"}
    | {"8003", "8004", "8006", "8010", "8013", "8017", "8018"}
)
# GS1 General Specifications figure 7.8.5-2: only AIs starting with these digits have a
# predefined length, so only they go without an FNC1 separator; (7006) is fixed yet needs one.
_PREDEFINED_LENGTH = frozenset(
    {"00", "01", "02", "03", "04", "31", "32", "33", "34", "35", "36", "41"}
    | {str(n) for n in range(11, 21)}
)
_X_CHARS = frozenset(string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_")  # CSET 82
_X_NAME = "letters, digits and !\"%&'()*+,-./:;<=>?_"
# RFC 3986 unreserved, reserved and '%': anything else must be percent-encoded to be in a URI.
_URI_CHARS = frozenset(string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%")
_DIGITS = re.compile(r"[0-9]+")
_HOST = re.compile(r"[A-Za-z0-9.-]+")
_PORT = re.compile(r":[0-9]{1,5}")
_HEX2 = re.compile(r"[0-9A-Fa-f]{2}")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def gtin_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit for `digits` (the number without its check digit)."""
    if not _DIGITS.fullmatch(digits):
        raise DigitalLinkError(f"a check digit is computed over digits 0-9 only, got {digits!r}")
    # Weights 3, 1, 3, ... from the right, so leading zeros (GTIN-8/12/13 in 14) change nothing.
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def is_valid_gtin(s: str) -> bool:
    """True for a GTIN-8, -12, -13 or -14 of digits 0-9 with a correct check digit."""
    ok = len(s) in (8, 12, 13, 14) and _DIGITS.fullmatch(s)
    return bool(ok) and gtin_check_digit(s[:-1]) == int(s[-1])


def _check_date(label: str, value: str, day_zero_ok: bool) -> None:
    yy, mm, dd = int(value[:2]), int(value[2:4]), int(value[4:])
    if not 1 <= mm <= 12:
        raise DigitalLinkError(f"{label} {value} is not a YYMMDD date: no month {mm:02}")
    # GS1 reads YY within 50 years of today, where every YY divisible by 4 is a leap year
    # until 2100 comes into that window in 2050.
    days = 28 if mm == 2 and yy % 4 else _DAYS_IN_MONTH[mm - 1]
    if dd > days or (dd == 0 and not day_zero_ok):
        raise DigitalLinkError(f"{label} {value} is not a date: month {mm:02} has no day {dd:02}")


def _check_value(ai: str, value: str) -> str:
    spec = AI_TABLE[ai]
    label = f"({ai}) {spec.title}"
    if not value:
        raise DigitalLinkError(f"{label} has an empty value")
    allowed = frozenset("0123456789") if spec.charset == "N" else _X_CHARS
    for position, char in enumerate(value, 1):
        if char not in allowed:
            kind = "digits" if spec.charset == "N" else _X_NAME
            msg = f"{label} allows only {kind}, not {char!r} (position {position})"
            raise DigitalLinkError(msg)
    if not spec.min_len <= len(value) <= spec.max_len:
        size = f"{spec.min_len} to {spec.max_len}" if spec.min_len < spec.max_len else spec.max_len
        hint = " (pad a GTIN-8, -12 or -13 with leading zeros)" if ai == "01" else ""
        raise DigitalLinkError(f"{label} should have {size} characters, found {len(value)}{hint}")
    if spec.check == "gtin" and (want := gtin_check_digit(value[:-1])) != int(value[-1]):
        raise DigitalLinkError(f"GTIN check digit should be {want}, found {value[-1]}")
    if spec.check.startswith("date"):
        _check_date(label, value, spec.check == "date0")
    return value


def _decode(raw: str, where: str, *, plus_is_space: bool = False) -> str:
    if plus_is_space:  # form encoding, used in query strings only; '%2B' stays a '+'
        raw = raw.replace("+", " ")
    first, *rest = raw.split("%")
    data = bytearray(first.encode("ascii"))
    for part in rest:
        if not _HEX2.fullmatch(part[:2]):
            raise DigitalLinkError(f"{where}: '%' must start a %XX escape (a literal % is %25)")
        data.append(int(part[:2], 16))
        data += part[2:].encode("ascii")
    if 0 in data:
        raise DigitalLinkError(f"{where}: %00 (NUL) is not allowed")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DigitalLinkError(f"{where}: the percent-escapes are not UTF-8") from None


@dataclass(frozen=True)
class DigitalLink:
    """A parsed (01) Digital Link: percent-decoded values; `stem` is the raw path before /01/."""

    gtin: str
    cpv: str | None = None
    lot: str | None = None
    serial: str | None = None
    attributes: dict[str, str] = field(default_factory=dict, hash=False)  # AI -> value
    scheme: str = "https"
    host: str = ""  # lower case, with the port if any
    stem: str = ""

    def element_string(self) -> str:
        """The GS1 element string, '^' for FNC1, AIs in URI order (path, then query)."""
        path = [("01", self.gtin), ("22", self.cpv), ("10", self.lot), ("21", self.serial)]
        pairs = [(ai, v) for ai, v in path if v is not None] + list(self.attributes.items())
        out = ["^"]
        for index, (ai, value) in enumerate(pairs):
            out.append(ai + value)
            if index < len(pairs) - 1 and ai[:2] not in _PREDEFINED_LENGTH:
                out.append("^")
        return "".join(out)

    def canonical_uri(self) -> str:
        base = f"{self.scheme}://{self.host}{self.stem}"
        return build_digital_link(base, self.gtin, self.lot, self.serial, self.cpv, self.attributes)


def _split_scheme(uri: str) -> tuple[str, str]:
    for scheme in ("https", "http", "HTTPS", "HTTP"):
        if uri.startswith(scheme + "://"):
            return scheme.lower(), uri[len(scheme) + 3 :]
    raise DigitalLinkError("a Digital Link starts with http:// or https:// (or HTTP, HTTPS)")


def _check_host(host: str) -> str:
    if not host:
        raise DigitalLinkError("the URI has no host name after the scheme")
    if host.startswith("["):
        literal, bracket, port = host[1:].partition("]")
        if "%" in literal:
            raise DigitalLinkError("IPv6 zone identifiers (the %25... part) are not allowed")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise DigitalLinkError(f"[{literal}] is not an IPv6 address") from None
        if not bracket:
            raise DigitalLinkError("an IPv6 host needs its closing ']'")
    else:
        name, colon, port = host.partition(":")
        port = colon + port
        if not _HOST.fullmatch(name):
            raise DigitalLinkError(f"host {name!r} may use only letters, digits, '.' and '-'")
    if port and not (_PORT.fullmatch(port) and int(port[1:]) <= 65535):
        raise DigitalLinkError(f"{port!r} after the host is not a port number 0-65535")
    return host.lower()


def _split_path(path: str) -> list[str]:
    segments = path.split("/")[1:]  # path is "" or starts with "/"
    if len(segments) > 1 and segments[-1] == "":
        raise DigitalLinkError("the path must not end with '/'")
    if "" in segments[:-1]:
        raise DigitalLinkError("the path has an empty segment ('//')")
    if any(c in "?#[]" for c in path):
        raise DigitalLinkError("the path cannot contain '?', '#', '[' or ']' unencoded")
    return [s for s in segments if s]


def _stem(segments: list[str]) -> str:
    for segment in segments:
        _decode(segment, f"path segment {segment!r}")  # refuse malformed escapes here too
    return "".join("/" + s for s in segments)


def _path_ai(name: str, alphas: bool) -> str | None:
    if _DIGITS.fullmatch(name):
        return name
    if name in _ALPHAS and not alphas:
        raise DigitalLinkError(f"convenience alphas such as /{name}/ are off: write the AI number")
    return _ALPHAS.get(name) if alphas else None


def _parse_path(segments: list[str], alphas: bool, zero_gtin: bool) -> tuple[int, dict[str, str]]:
    """Walk (AI, value) pairs back from the end to the rightmost /01/; return where it starts."""
    pairs: list[tuple[str, str]] = []
    end = len(segments)
    while end >= 2:
        name, raw = segments[end - 2], segments[end - 1]
        ai = _path_ai(name, alphas)
        if ai in _OTHER_KEYS:
            raise DigitalLinkError(f"({ai}) is a GS1 key this service does not read; use (01)")
        if ai not in _PATH_AIS:
            hint = " (data attributes go in the query string)" if ai in AI_TABLE else ""
            raise DigitalLinkError(
                "the path must end in /01/{GTIN} followed only by /22/, /10/, /21/ pairs; "
                f"found /{name}/{raw}{hint}"
            )
        pairs.insert(0, (ai, raw))
        end -= 2
        if ai == "01":
            return end, _path_values(pairs, zero_gtin)
    raise DigitalLinkError("the path has no /01/{GTIN}")


def _path_values(pairs: list[tuple[str, str]], zero_gtin: bool) -> dict[str, str]:
    order = [KEY_QUALIFIERS.index(ai) for ai, _ in pairs[1:]]
    if order != sorted(set(order)):
        raise DigitalLinkError("after /01/ come only /22/, /10/, /21/, in that order, once")
    values: dict[str, str] = {}
    for ai, raw in pairs:
        value = _decode(raw, f"({ai}) in the path")
        if ai == "01" and zero_gtin and len(value) in (8, 12, 13) and _DIGITS.fullmatch(value):
            value = value.zfill(14)
        values[ai] = _check_value(ai, value)
    return values


def _parse_query(query: str, alphas: bool, seen: set[str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for item in query.split("&"):
        raw_name, eq, raw_value = item.partition("=")
        if not eq:
            continue  # empty items and singletons carry no AI
        name = _decode(raw_name, f"query parameter {raw_name!r}", plus_is_space=True)
        ai = _ALPHAS.get(name) if alphas else None
        if ai is None and not _DIGITS.fullmatch(name):
            continue  # other parameters, such as linkType, are for the resolver
        ai = ai or name
        if ai in seen:
            raise DigitalLinkError(f"({ai}) appears twice in the link")
        if ai in _PATH_AIS:
            raise DigitalLinkError(f"({ai}) belongs in the path after the GTIN, not in the query")
        if ai not in AI_TABLE:
            raise DigitalLinkError(f"query parameter {name}= is numeric but not an AI read here")
        seen.add(ai)
        value = _decode(raw_value, f"({ai}) in the query", plus_is_space=True)
        attributes[ai] = _check_value(ai, value)
    return attributes


def parse_digital_link(
    uri: str, *, allow_convenience_alphas: bool = False, allow_zero_suppressed_gtin: bool = False
) -> DigitalLink:
    """Parse a Digital Link in the supported subset, or raise DigitalLinkError saying why not."""
    for position, char in enumerate(uri, 1):
        if char not in _URI_CHARS:
            raise DigitalLinkError(f"{char!r} at position {position} must be percent-encoded")
    scheme, rest = _split_scheme(uri)
    rest = rest.partition("#")[0]  # the fragment is for the browser, not part of the link
    rest, _, query = rest.partition("?")
    host, slash, path = rest.partition("/")
    host = _check_host(host)
    segments = _split_path(slash + path)
    key_index, values = _parse_path(segments, allow_convenience_alphas, allow_zero_suppressed_gtin)
    attributes = _parse_query(query, allow_convenience_alphas, set(values))
    return DigitalLink(
        gtin=values["01"],
        cpv=values.get("22"),
        lot=values.get("10"),
        serial=values.get("21"),
        attributes=attributes,
        scheme=scheme,
        host=host,
        stem=_stem(segments[:key_index]),
    )


def build_digital_link(
    base_url: str,
    gtin: str,
    lot: str | None = None,
    serial: str | None = None,
    cpv: str | None = None,
    attributes: Mapping[str, str] | None = None,
) -> str:
    """The canonical link: base, /01/ GTIN-14, /22/, /10/, /21/, then attributes sorted by AI."""
    if any(c not in _URI_CHARS for c in base_url):
        raise DigitalLinkError("the base URL has characters that must be percent-encoded")
    scheme, rest = _split_scheme(base_url)
    host, slash, stem = rest.partition("/")
    host = _check_host(host)
    if len(gtin) in (8, 12, 13) and _DIGITS.fullmatch(gtin):
        gtin = gtin.zfill(14)  # the canonical form always carries a GTIN-14
    parts = [f"{scheme}://{host}", _stem(_split_path(slash + stem.rstrip("/")))]
    path = [("01", gtin), ("22", cpv), ("10", lot), ("21", serial)]
    parts += [f"/{ai}/{_encode(_check_value(ai, v))}" for ai, v in path if v is not None]
    given = dict(attributes or {})
    query = []
    for ai in sorted(given):
        if ai in _PATH_AIS or ai not in AI_TABLE:
            raise DigitalLinkError(f"({ai}) is not a query data attribute read here")
        query.append(f"{ai}={_encode(_check_value(ai, given[ai]))}")
    return "".join(parts) + ("?" + "&".join(query) if query else "")


def _encode(value: str) -> str:
    # Only the unreserved "-._" of CSET 82 stay as they are, as the DL spec requires.
    return quote(value, safe="")
