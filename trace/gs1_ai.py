"""Every GS1 Application Identifier: GS1's AI table (from biip) plus each AI's check rules.

The AI list, titles, formats, FNC1 flags and GS1's own regular expressions come from
biip's copy of GS1's AI data. biip carries no component "linters", so RULES names them per
AI, in the notation of the GS1 Barcode Syntax Dictionary, and LINTERS implements them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from biip.gs1_application_identifiers import _GS1_APPLICATION_IDENTIFIERS as _BIIP_AIS

from ocop_trace.gs1_lint import CHARSETS, LINTERS, AIValueError


@dataclass(frozen=True)
class Component:
    """One part of an AI's value: character set N, X, Y or Z, a length range, linters."""

    charset: str
    min_len: int
    max_len: int
    optional: bool = False
    linters: tuple[str, ...] = ()


@dataclass(frozen=True)
class AISpec:
    """An AI as GS1 defines it: title, GS1 format, components, FNC1 and DL flags."""

    ai: str
    title: str
    description: str
    gs1_format: str  # GS1's notation, e.g. "N4+N6[+N4]"; the first part is the AI itself
    components: tuple[Component, ...]
    fixed_length: bool  # GS1 "predefined length": no FNC1 separator after it
    dl_attribute: bool  # may be a GS1 Digital Link query attribute
    pattern: re.Pattern[str]  # GS1's regular expression for AI + value

    @property
    def min_len(self) -> int:
        return sum(c.min_len for c in self.components if not c.optional)

    @property
    def max_len(self) -> int:
        return sum(c.max_len for c in self.components)


# Component specs with linters, in the Barcode Syntax Dictionary's notation (release
# 2025-era, docs/digital-link.md): the AIs whose value has more than one part or a rule
# beyond its character set and length. Every other AI is read from biip's GS1 format.
RULES: Mapping[str, str] = MappingProxyType(
    {
        "00": "N18,csum,keyoff1",
        "01-03": "N14,csum,keyoff1",
        "11-13": "N6,yymmd0",
        "15-17": "N6,yymmd0",
        "253": "N13,csum,key [X..17]",
        "255": "N13,csum,key [N..12]",
        "401": "X..30,key",
        "402": "N17,csum,key",
        "410-417": "N13,csum,key",
        "3910-3919": "N3,iso4217 N..15",
        "3930-3939": "N3,iso4217 N..15",
        "421": "N3,iso3166 X..9",
        "422": "N3,iso3166",
        "423": "N3,iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166",
        "424": "N3,iso3166",
        "425": "N3,iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166 [N3],iso3166",
        "426": "N3,iso3166",
        "4300-4301": "X..35,pcenc",
        "4302-4306": "X..70,pcenc",
        "4307": "X2,iso3166alpha2",
        "4309": "N10,latitude N10,longitude",
        "4310-4311": "X..35,pcenc",
        "4312-4316": "X..70,pcenc",
        "4317": "X2,iso3166alpha2",
        "4320": "X..35,pcenc",
        "4321-4323": "N1,yesno",
        "4324-4325": "N6,yymmd0 N4,hhmi",
        "4326": "N6,yymmdd",
        "4330-4333": "N6 [X1],hyphen",
        "7003": "N6,yymmdd N4,hhmi",
        "7006": "N6,yymmdd",
        "7007": "N6,yymmdd [N6],yymmdd",
        "7011": "N6,yymmdd [N4],hhmi",
        "7023": "X..30,key",
        "7030-7039": "N3,iso3166999 X..27",
        "7040": "N1 X1 X1 X1,importeridx",
        "7230-7239": "X2 X..28",
        "7241": "N2,mediatype",
        "7250": "N8,yyyymmdd",
        "7251": "N8,yyyymmdd N4,hhmi",
        "7252": "N1,iso5218",
        "7253-7254": "X..40,pcenc",
        "7256": "X..90,pcenc",
        "7257": "X..70,pcenc",
        "7258": "X3,posinseqslash",
        "7259": "X..40,pcenc",
        "8001": "N4,nonzero N5,nonzero N3,nonzero N1,winding N1",
        "8003": "N1,zero N13,csum,key [X..16]",
        "8004": "X..30,key",
        "8006": "N14,csum,keyoff1 N4,pieceoftotal",
        "8007": "X..34,iban",
        "8008": "N6,yymmdd N2,hh [N2],mi [N2],ss",
        "8010": "Y..30,key",
        "8011": "N..12,nozeroprefix",
        "8013": "X..25,csumalpha,key",
        "8014": "X..25,csumalpha,key,hasnondigit",
        "8017-8018": "N18,csum,key",
        "8026": "N14,csum,keyoff1 N4,pieceoftotal",
    }
)

# Syntax Dictionary flag "?" is on every AI but these: they may not be DL query attributes
# (tests/test_gs1_dictionary.py compares the flags with the dictionary's own rows).
NOT_DL_ATTRIBUTES = frozenset(
    {"03", "21", "22", "235", "254", "7040", "7041", "8011", "8014", "8019", "8020", "8200"}
    | {"8040", "8041", "8042", "8043"}
)

_COMPONENT = re.compile(r"(\[)?([NXYZ])(\.\.)?(\d+)\]?((?:,[a-z0-9]+)*)")
_GS1_PART = re.compile(r"([NXYZ])(\d*)(?:\.\.[NXYZ]?(\d+))?")


def parse_spec(spec: str) -> tuple[Component, ...]:
    """Components from Syntax Dictionary notation, such as "N6,yymmdd [N4],hhmi"."""
    parts = []
    for token in spec.split():
        match = _COMPONENT.fullmatch(token)
        if not match:
            raise ValueError(f"bad component {token!r} in {spec!r}")
        bracket, charset, dots, size, linters = match.groups()
        low = 1 if dots else int(size)
        names = tuple(n for n in linters.split(",") if n)
        parts.append(Component(charset, low, int(size), bool(bracket), names))
    return tuple(parts)


def parse_gs1_format(gs1_format: str) -> tuple[Component, ...]:
    """Components from GS1's format notation, such as "N4+N6[+N4]" (the AI part dropped)."""
    parts = []
    for part_text in gs1_format.replace("[+", "+[").split("+")[1:]:
        optional = part_text.startswith("[")
        part_text = part_text.strip("[]")
        if part_text == "-":  # the optional minus sign of (4330)-(4333)
            parts.append(Component("X", 1, 1, optional, ("hyphen",)))
            continue
        match = _GS1_PART.fullmatch(part_text)
        if not match:
            raise ValueError(f"bad GS1 format part {part_text!r} in {gs1_format!r}")
        charset, low, high = match.groups()
        if high is None:
            parts.append(Component(charset, int(low), int(low), optional))
        else:
            parts.append(Component(charset, int(low or 1), int(high), optional))
    return tuple(parts)


def _expand(key: str) -> list[str]:
    first, _, last = key.partition("-")
    if not last:
        return [first]
    return [str(n).zfill(len(first)) for n in range(int(first), int(last) + 1)]


def _table() -> dict[str, AISpec]:
    rules = {ai: spec for key, spec in RULES.items() for ai in _expand(key)}
    table = {}
    for ai, entry in _BIIP_AIS.items():
        spec = rules.get(ai)
        components = parse_spec(spec) if spec else parse_gs1_format(entry.format)
        table[ai] = AISpec(
            ai=ai,
            title=entry.data_title or entry.description,
            description=entry.description,
            gs1_format=entry.format,
            components=components,
            fixed_length=not entry.separator_required,
            dl_attribute=ai not in NOT_DL_ATTRIBUTES,
            pattern=re.compile(entry.pattern),
        )
    return table


AI_TABLE: Mapping[str, AISpec] = MappingProxyType(_table())


def _label(spec: AISpec) -> str:
    return f"({spec.ai}) {spec.title}"


def _split(spec: AISpec, value: str) -> list[tuple[Component, str, int]]:
    """Cut value into its components (the Syntax Dictionary's rule: each takes its length)."""
    label, out, start = _label(spec), [], 0
    if not spec.min_len <= len(value) <= spec.max_len:
        low, high = spec.min_len, spec.max_len
        size = f"{low} to {high}" if low < high else str(high)
        hint = " (pad a GTIN-8, -12 or -13 with leading zeros)" if spec.ai == "01" else ""
        raise AIValueError(f"{label} should have {size} characters, found {len(value)}{hint}")
    for index, part in enumerate(spec.components):
        rest = len(value) - start
        if rest == 0 and part.optional:
            break
        take = min(rest, part.max_len)  # only the last part may be of variable length
        if take < part.min_len:
            raise AIValueError(
                f"{label} {value!r}: part {index + 1} needs {part.min_len} characters, "
                f"found {take} (GS1 format {spec.gs1_format})"
            )
        out.append((part, value[start : start + take], start))
        start += take
    if start != len(value):
        raise AIValueError(f"{label} {value!r} is longer than GS1 format {spec.gs1_format}")
    return out


def check_ai_value(ai: str, value: str) -> str:
    """Return value if it is a valid value of AI `ai`, else raise AIValueError saying why.

    Checks the character set, the length and every component rule (check digits, dates,
    code lists, ...), then GS1's own regular expression for the AI.
    """
    spec = AI_TABLE.get(ai)
    if spec is None:
        raise AIValueError(f"({ai}) is not a GS1 Application Identifier")
    label = _label(spec)
    if not value:
        raise AIValueError(f"{label} has an empty value")
    for part, text, start in _split(spec, value):
        allowed, name = CHARSETS[part.charset]
        for position, char in enumerate(text, start + 1):
            if char not in allowed:
                msg = f"{label} allows only {name}, not {char!r} (position {position})"
                raise AIValueError(msg)
        for linter in part.linters:
            LINTERS[linter](label, text)
    if not spec.pattern.fullmatch(ai + value):
        raise AIValueError(f"{label} {value!r} does not fit GS1 format {spec.gs1_format}")
    return value


def check_lot(lot: str) -> str:
    """A batch/lot number as AI (10) allows: 1-20 characters of GS1 CSET 82."""
    return check_ai_value("10", lot)


def check_serial(serial: str) -> str:
    """A serial number as AI (21) allows: 1-20 characters of GS1 CSET 82."""
    return check_ai_value("21", serial)
