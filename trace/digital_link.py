"""GS1 Digital Link URIs for every GS1 primary key: a strict parser, a canonical builder.

docs/digital-link.md says what is read: http(s) in all lower or all upper case; a host name,
IPv4 or IPv6 (no zone id), optional port; an optional path stem; /{primary key}/{value} and
its key qualifiers in GS1's order; query attributes that GS1 allows in a Digital Link; every
value checked against its AI's rules (ocop_trace.gs1_ai). Anything else raises
DigitalLinkError with a message that says what to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ocop_trace.dl_uri import (
    DigitalLinkError,
    decode,
    encode,
    join_stem,
    split_base,
    split_path,
    split_uri,
)
from ocop_trace.gs1_ai import AI_TABLE, check_ai_value, check_lot, check_serial
from ocop_trace.gs1_lint import AIValueError, mod10_check_digit

__all__ = [
    "AI_TABLE",
    "PRIMARY_KEYS",
    "DigitalLink",
    "DigitalLinkError",
    "build_digital_link",
    "build_link",
    "check_ai_value",
    "check_lot",
    "check_serial",
    "gtin_check_digit",
    "is_valid_gtin",
    "parse_digital_link",
    "parse_raw_digital_link",
]

# GS1 Digital Link primary keys and their key-qualifier sequences: each alternative is an
# ordered list of optional qualifiers, and alternatives do not mix (Barcode Syntax
# Dictionary attribute "dlpkey"; (01) -> 22, 10, 21 or 235 since GS1 Digital Link 1.2).
PRIMARY_KEYS: Mapping[str, tuple[tuple[str, ...], ...]] = MappingProxyType(
    {
        "00": ((),),
        "01": (("22", "10", "21"), ("235",)),
        "253": ((),),
        "255": ((),),
        "401": ((),),
        "402": ((),),
        "414": (("254",), ("7040",)),
        "415": (("8020",),),
        "417": (("7040",),),
        "8003": ((),),
        "8004": (("7040",),),
        "8006": (("22", "10", "21"),),
        "8010": (("8011",),),
        "8013": ((),),
        "8017": (("8019",),),
        "8018": (("8019",),),
    }
)
_QUALIFIERS = frozenset(q for alts in PRIMARY_KEYS.values() for alt in alts for q in alt)
# GS1 Digital Link convenience alphas ("short names"), read only when asked for.
_ALPHAS = MappingProxyType(
    {
        "sscc": "00",
        "gtin": "01",
        "gdti": "253",
        "gcn": "255",
        "ginc": "401",
        "gsin": "402",
        "gln": "414",
        "payTo": "415",
        "party": "417",
        "grai": "8003",
        "giai": "8004",
        "itip": "8006",
        "cpid": "8010",
        "gmn": "8013",
        "gsrnp": "8017",
        "gsrn": "8018",
        "cpv": "22",
        "lot": "10",
        "ser": "21",
        "glnx": "254",
        "cpsn": "8011",
        "srin": "8019",
        "refno": "8020",
        "exp": "17",
    }
)


def gtin_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit for `digits` (the number without its check digit)."""
    if not (digits.isascii() and digits.isdigit()):
        raise DigitalLinkError(f"a check digit is computed over digits 0-9 only, got {digits!r}")
    return mod10_check_digit(digits)


def is_valid_gtin(s: str) -> bool:
    """True for a GTIN-8, -12, -13 or -14 of digits 0-9 with a correct check digit."""
    ok = len(s) in (8, 12, 13, 14) and s.isascii() and s.isdigit()
    return bool(ok) and gtin_check_digit(s[:-1]) == int(s[-1])


def _check_value(ai: str, value: str) -> str:
    try:
        return check_ai_value(ai, value)
    except AIValueError as exc:
        raise DigitalLinkError(str(exc)) from None


@dataclass(frozen=True)
class DigitalLink:
    """A parsed Digital Link: percent-decoded values; `stem` is the raw path before the key."""

    primary_key: str  # the AI of the primary key, such as "01"; the resolver reads only "01"
    key_value: str
    qualifiers: dict[str, str] = field(default_factory=dict, hash=False)  # path order
    attributes: dict[str, str] = field(default_factory=dict, hash=False)  # query order
    scheme: str = "https"
    host: str = ""  # lower case, with the port if any
    stem: str = ""

    @property
    def gtin(self) -> str | None:
        return self.key_value if self.primary_key == "01" else None

    @property
    def cpv(self) -> str | None:
        return self.qualifiers.get("22")

    @property
    def lot(self) -> str | None:
        return self.qualifiers.get("10")

    @property
    def serial(self) -> str | None:
        return self.qualifiers.get("21")

    @property
    def tpx(self) -> str | None:
        return self.qualifiers.get("235")

    def pairs(self) -> list[tuple[str, str]]:
        """Every (AI, value) in URI order: the key, its qualifiers, then the attributes."""
        key = [(self.primary_key, self.key_value)]
        return key + list(self.qualifiers.items()) + list(self.attributes.items())

    def element_string(self) -> str:
        """The GS1 element string, '^' for FNC1, AIs in URI order (path, then query)."""
        pairs = self.pairs()
        out = ["^"]
        for index, (ai, value) in enumerate(pairs):
            out.append(ai + value)
            if index < len(pairs) - 1 and not AI_TABLE[ai].fixed_length:
                out.append("^")
        return "".join(out)

    def canonical_uri(self) -> str:
        base = f"{self.scheme}://{self.host}{self.stem}"
        return build_link(base, self.primary_key, self.key_value, self.qualifiers, self.attributes)


def _fits(qualifiers: Sequence[str], alternative: Sequence[str]) -> bool:
    """True when qualifiers is an ordered selection, each once, of the alternative."""
    positions = [alternative.index(q) for q in qualifiers if q in alternative]
    return len(positions) == len(qualifiers) and positions == sorted(set(positions))


def _check_qualifiers(key: str, qualifiers: Sequence[str]) -> frozenset[str]:
    """Refuse a qualifier sequence GS1 does not allow; return the qualifiers still allowed."""
    alternatives = [alt for alt in PRIMARY_KEYS[key] if _fits(qualifiers, alt)]
    if not alternatives:
        for ai in qualifiers:
            if not any(ai in alt for alt in PRIMARY_KEYS[key]):
                hint = " (data attributes go in the query string)" if ai in AI_TABLE else ""
                raise DigitalLinkError(f"/{ai}/ is not a key qualifier of ({key}){hint}")
        orders = " or ".join("/" + "/, /".join(alt) + "/" for alt in PRIMARY_KEYS[key])
        raise DigitalLinkError(f"after /{key}/ come only {orders}, in that order, once")
    return frozenset(q for alt in alternatives for q in alt)


def _path_ai(name: str, alphas: bool) -> str | None:
    if name.isascii() and name.isdigit():
        return name
    if name in _ALPHAS and not alphas:
        raise DigitalLinkError(f"convenience alphas such as /{name}/ are off: write the AI number")
    return _ALPHAS.get(name) if alphas else None


def _parse_path(segments: list[str], alphas: bool) -> tuple[int, list[tuple[str, str]]]:
    """Walk (AI, raw value) pairs back from the end to the rightmost primary key."""
    pairs: list[tuple[str, str]] = []
    end = len(segments)
    while end >= 2:
        name, raw = segments[end - 2], segments[end - 1]
        ai = _path_ai(name, alphas)
        pairs.insert(0, (ai or name, raw))
        end -= 2
        if ai in PRIMARY_KEYS:
            return end, pairs
        if ai not in AI_TABLE:
            raise DigitalLinkError(
                "the path must end in /{primary key}/{value}, such as /01/{GTIN}, followed "
                f"only by its key qualifiers; found /{name}/{raw}"
            )
    raise DigitalLinkError("the path has no GS1 primary key such as /01/{GTIN}")


def _read_value(ai: str, raw: str, where: str, zero_gtin: bool) -> str:
    value = decode(raw, f"({ai}) in the {where}", plus_is_space=where == "query")
    if ai == "01" and zero_gtin and len(value) in (8, 12, 13) and value.isdigit():
        value = value.zfill(14)
    return _check_value(ai, value)


def _check_attribute(ai: str, in_path: frozenset[str], name: str) -> None:
    if ai in in_path:
        raise DigitalLinkError(f"({ai}) belongs in the path after the key, not in the query")
    spec = AI_TABLE.get(ai)
    if spec is None:
        raise DigitalLinkError(f"query parameter {name}= is numeric but not a GS1 AI")
    if not spec.dl_attribute:
        where = " (a key qualifier goes in the path)" if ai in _QUALIFIERS else ""
        msg = f"({ai}) {spec.title} is not allowed as a GS1 Digital Link attribute{where}"
        raise DigitalLinkError(msg)


def _parse_query(
    query: str, alphas: bool, zero_gtin: bool, path_ais: frozenset[str]
) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for item in query.split("&"):
        raw_name, eq, raw_value = item.partition("=")
        if not eq:
            continue  # empty items and singletons carry no AI
        name = decode(raw_name, f"query parameter {raw_name!r}", plus_is_space=True)
        ai = _ALPHAS.get(name) if alphas else None
        if ai is None and not (name.isascii() and name.isdigit()):
            continue  # other parameters, such as linkType, are for the resolver
        ai = ai or name
        if ai in attributes:
            raise DigitalLinkError(f"({ai}) appears twice in the link")
        _check_attribute(ai, path_ais, name)
        attributes[ai] = _read_value(ai, raw_value, "query", zero_gtin)
    return attributes


def parse_digital_link(
    uri: str,
    *,
    allow_convenience_alphas: bool = False,
    allow_zero_suppressed_gtin: bool = False,
    allow_trailing_slash: bool = False,
) -> DigitalLink:
    """Parse a GS1 Digital Link URI, or raise DigitalLinkError saying why not.

    A resolver reading what a server received should call parse_raw_digital_link instead.
    """
    scheme, host, path, query = split_uri(uri)
    segments = split_path(path, trailing_slash=allow_trailing_slash)
    key_index, raw_pairs = _parse_path(segments, allow_convenience_alphas)
    key, *qualifiers = [ai for ai, _ in raw_pairs]
    allowed = _check_qualifiers(key, qualifiers)
    zero_gtin = allow_zero_suppressed_gtin
    values = {ai: _read_value(ai, raw, "path", zero_gtin) for ai, raw in raw_pairs}
    attributes = _parse_query(query, allow_convenience_alphas, zero_gtin, allowed | {key})
    return DigitalLink(
        primary_key=key,
        key_value=values[key],
        qualifiers={ai: values[ai] for ai in qualifiers},
        attributes=attributes,
        scheme=scheme,
        host=host,
        stem=join_stem(segments[:key_index]),
    )


def parse_raw_digital_link(
    scheme: str,
    host: str,
    raw_path: bytes | str,
    query_string: bytes | str = "",
    *,
    allow_trailing_slash: bool = True,
    allow_convenience_alphas: bool = False,
    allow_zero_suppressed_gtin: bool = False,
) -> DigitalLink:
    """Parse a request as it arrived: the ASGI `raw_path` and `query_string`, still
    percent-encoded, so a value holding '/', '%' or '?' reads back exactly. A trailing '/'
    is tolerated, as GS1's resolver test suite expects."""
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else raw_path
    query = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    return parse_digital_link(
        f"{scheme}://{host}{path}" + (f"?{query}" if query else ""),
        allow_convenience_alphas=allow_convenience_alphas,
        allow_zero_suppressed_gtin=allow_zero_suppressed_gtin,
        allow_trailing_slash=allow_trailing_slash,
    )


def build_link(
    base_url: str,
    primary_key: str,
    key_value: str,
    qualifiers: Mapping[str, str] | None = None,
    attributes: Mapping[str, str] | None = None,
) -> str:
    """The canonical link: base, /key/value, the qualifiers in order, attributes by AI."""
    origin, stem = split_base(base_url)
    if primary_key not in PRIMARY_KEYS:
        raise DigitalLinkError(f"({primary_key}) is not a GS1 Digital Link primary key")
    path = [(primary_key, key_value), *(qualifiers or {}).items()]
    allowed = _check_qualifiers(primary_key, [ai for ai, _ in path[1:]]) | {primary_key}
    parts = [origin, stem] + [f"/{ai}/{encode(_check_value(ai, v))}" for ai, v in path]
    given = dict(attributes or {})
    query = []
    for ai in sorted(given):
        _check_attribute(ai, allowed, ai)
        query.append(f"{ai}={encode(_check_value(ai, given[ai]))}")
    return "".join(parts) + ("?" + "&".join(query) if query else "")


def build_digital_link(
    base_url: str,
    gtin: str,
    lot: str | None = None,
    serial: str | None = None,
    cpv: str | None = None,
    attributes: Mapping[str, str] | None = None,
) -> str:
    """The canonical (01) link: base, /01/ GTIN-14, /22/, /10/, /21/, then attributes."""
    if len(gtin) in (8, 12, 13) and gtin.isascii() and gtin.isdigit():
        gtin = gtin.zfill(14)  # the canonical form always carries a GTIN-14
    path = {"22": cpv, "10": lot, "21": serial}
    qualifiers = {ai: value for ai, value in path.items() if value is not None}
    return build_link(base_url, "01", gtin, qualifiers, attributes)
