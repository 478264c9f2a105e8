"""GS1 Digital Link compression: a link's AI values as bits, written in URI-safe base64.

The algorithm of GS1 Digital Link's compressed URI form (docs/digital-link.md): each entry
is an AI as 4-bit digits (or an 8-bit code from TABLE_OPT for a common AI sequence, or
0xF for a non-GS1 key=value pair), then the value part by part as GS1's format cuts it.
Pure: no I/O.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from ocop_trace.digital_link import PRIMARY_KEYS, build_link, parse_digital_link
from ocop_trace.dl_uri import DigitalLinkError, encode, join_stem, split_path, split_uri
from ocop_trace.gs1_ai import AI_TABLE, Component, parse_gs1_format

ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
_HEX = "0123456789ABCDEF"
# The standard's table of optimised AI sequences: one 8-bit code instead of the AIs.
TABLE_OPT: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "0A": ("01", "22"),
        "0B": ("01", "10"),
        "0C": ("01", "21"),
        "0D": ("01", "17"),
        "0E": ("01", "7003"),
        "0F": ("01", "30"),
        "1A": ("01", "10", "21", "17"),
        "1B": ("01", "15"),
        "1C": ("01", "11"),
        "1D": ("01", "16"),
        "1E": ("01", "91"),
        "1F": ("01", "10", "15"),
        **{f"2{'ABCDEF'[n]}": ("01", f"310{n}") for n in range(6)},
        **{f"3{'ABCDEF'[n]}": ("01", f"320{n}") for n in range(6)},
        "9A": ("8010", "8011"),
        "9B": ("8017", "8019"),
        "9C": ("8018", "8019"),
        "9D": ("414", "254"),
        **{f"A{n}": ("01", f"392{n}") for n in range(10)},
        **{f"C{n}": ("255", f"390{n}") for n in range(10)},
        **{f"C{'ABCD'[n]}": ("255", f"394{n}") for n in range(4)},
    }
)
_AI_LENGTH = MappingProxyType({ai[:2]: len(ai) for ai in AI_TABLE})  # GS1: fixed per prefix
_ENCODINGS = (string.digits, "0123456789abcdef", _HEX, ALPHABET)  # 0-3; 4 is 7-bit ASCII


def _value_bits(digits: int) -> int:
    return int(10**digits - 1).bit_length()  # enough bits for any number of that many digits


def _parts(ai: str) -> tuple[Component, ...]:
    # GS1's format (not the Syntax Dictionary's finer split) decides the bits, as in the
    # standard; an optional part is coded like a variable-length one.
    return parse_gs1_format(AI_TABLE[ai].gs1_format)


def _variable(part: Component) -> bool:
    return part.optional or part.min_len < part.max_len


class _Bits:
    """A bit string being written or read, with reads that refuse to run past the end."""

    def __init__(self, bits: str = "") -> None:
        self.bits, self.pos = bits, 0

    def put(self, number: int, width: int) -> None:
        self.bits += format(number, f"0{width}b") if width else ""

    def take(self, width: int) -> int:
        if self.pos + width > len(self.bits):
            raise DigitalLinkError("the compressed link ends in the middle of a value")
        chunk = self.bits[self.pos : self.pos + width]
        self.pos += width
        return int(chunk, 2) if chunk else 0

    def left(self) -> int:
        return len(self.bits) - self.pos


def _put_text(out: _Bits, text: str, length_width: int | None) -> None:
    enc = next((i for i, cs in enumerate(_ENCODINGS) if all(c in cs for c in text)), 4)
    out.put(enc, 3)
    if length_width is not None:
        out.put(len(text), length_width)
    if enc == 0:
        out.put(int(text or "0"), _value_bits(len(text)))
    else:
        width, alphabet = {1: (4, _HEX), 2: (4, _HEX), 3: (6, ALPHABET), 4: (7, "")}[enc]
        for char in text.upper() if enc == 1 else text:
            out.put(alphabet.index(char) if alphabet else ord(char), width)


def _take_text(bits: _Bits, length_width: int | None, fixed: int = 0) -> str:
    enc = bits.take(3)
    count = bits.take(length_width) if length_width is not None else fixed
    if enc == 0:
        return _digits(bits, count)
    if enc > 4:
        raise DigitalLinkError(
            f"the compressed link uses encoding {enc}, which GS1 does not define"
        )
    width, alphabet = {1: (4, _HEX.lower()), 2: (4, _HEX), 3: (6, ALPHABET), 4: (7, "")}[enc]
    codes = [bits.take(width) for _ in range(count)]
    return "".join(alphabet[c] if alphabet else chr(c) for c in codes)


def _digits(bits: _Bits, count: int) -> str:
    number = bits.take(_value_bits(count))
    if number >= 10**count:
        raise DigitalLinkError(f"the compressed link holds {number}, more than {count} digits")
    return str(number).zfill(count) if count else ""


def _put_value(out: _Bits, ai: str, value: str) -> None:
    parts, start = _parts(ai), 0
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        text = value[start:] if last else value[start : start + part.max_len]
        start += len(text)
        length_width = part.max_len.bit_length() if _variable(part) else None
        if part.charset != "N":
            _put_text(out, text, length_width)
            continue
        if length_width is not None:
            out.put(len(text), length_width)
        out.put(int(text or "0"), _value_bits(len(text)))


def _take_value(bits: _Bits, ai: str) -> str:
    out = []
    for part in _parts(ai):
        length_width = part.max_len.bit_length() if _variable(part) else None
        if part.charset != "N":
            out.append(_take_text(bits, length_width, part.max_len))
        else:
            count = bits.take(length_width) if length_width is not None else part.max_len
            out.append(_digits(bits, count))
    return "".join(out)


def compress_ais(pairs: Iterable[tuple[str, str]], others: Mapping[str, str] | None = None) -> str:
    """The base64 text for (AI, value) pairs, in order, and non-GS1 key=value pairs."""
    out = _Bits()
    for ai, value in pairs:
        for digit in ai:
            out.put(int(digit), 4)
        _put_value(out, ai, value)
    for key, value in (others or {}).items():
        if not key or len(key) > 127 or any(c not in ALPHABET for c in key) or len(value) > 127:
            raise DigitalLinkError(
                f"the parameter {key!r} cannot be compressed: keep it uncompressed"
            )
        out.put(0xF, 4)
        out.put(len(key), 7)
        for char in key:
            out.put(ALPHABET.index(char), 6)
        _put_text(out, value, 7)
    padded = out.bits + "0" * (-len(out.bits) % 6)
    return "".join(ALPHABET[int(padded[i : i + 6], 2)] for i in range(0, len(padded), 6))


def decompress_ais(data: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(AI, value) pairs in order and the non-GS1 key=value pairs of compressed text."""
    if not data or any(c not in ALPHABET for c in data):
        raise DigitalLinkError("a compressed Digital Link uses only A-Z, a-z, 0-9, '-' and '_'")
    bits = _Bits("".join(format(ALPHABET.index(c), "06b") for c in data))
    pairs: list[tuple[str, str]] = []
    others: dict[str, str] = {}
    while bits.left() >= 6:  # a shorter rest is the padding to whole base64 characters
        high, low = bits.take(4), bits.take(4)
        code = _HEX[high] + _HEX[low]
        if high == 0xF:
            size = low << 3 | bits.take(3)
            name = "".join(ALPHABET[bits.take(6)] for _ in range(size))
            others[name] = _take_text(bits, 7)
        elif code in TABLE_OPT:
            pairs += [(ai, _take_value(bits, ai)) for ai in TABLE_OPT[code]]
        elif code in _AI_LENGTH:
            ai = code + "".join(str(bits.take(4)) for _ in range(_AI_LENGTH[code] - 2))
            if ai not in AI_TABLE:
                raise DigitalLinkError(f"the compressed link names ({ai}), which is not a GS1 AI")
            pairs.append((ai, _take_value(bits, ai)))
        else:
            raise DigitalLinkError(
                f"the compressed link has code {code}, which GS1 does not define"
            )
    if bits.left() and bits.take(bits.left()):
        raise DigitalLinkError("the compressed link ends with stray bits: it was cut or altered")
    return pairs, others


def compress_digital_link(uri: str) -> str:
    """The compressed form of a Digital Link: same scheme, host and stem, then the data.

    Query parameters that are not AIs (such as linkType) are not carried over."""
    link = parse_digital_link(uri)
    return f"{link.scheme}://{link.host}{link.stem}/{compress_ais(link.pairs())}"


def decompress_digital_link(uri: str) -> str:
    """The canonical uncompressed URI of a compressed Digital Link (the last path segment).

    Every value is checked as the parser checks it; non-GS1 pairs and non-AI query
    parameters follow the AIs in the query. Raises DigitalLinkError when it does not decode."""
    scheme, host, path, query = split_uri(uri)
    segments = split_path(path, trailing_slash=True)
    if not segments:
        raise DigitalLinkError("a compressed Digital Link has its data as the last path segment")
    pairs, others = decompress_ais(segments[-1])
    key = next((ai for ai, _ in pairs if ai in PRIMARY_KEYS), None)
    if key is None:
        raise DigitalLinkError("the compressed link has no GS1 primary key such as (01)")
    values = dict(pairs)
    if len(values) < len(pairs):
        raise DigitalLinkError("the compressed link gives an AI twice")
    in_path = _qualifiers(key, values)
    attributes = {ai: v for ai, v in pairs if ai != key and ai not in in_path}
    base = f"{scheme}://{host}{join_stem(segments[:-1])}"
    uncompressed = build_link(
        base, key, values[key], {ai: values[ai] for ai in in_path}, attributes
    )
    extra = [f"{encode(k)}={encode(v)}" for k, v in others.items()]
    for item in filter(None, query.split("&")):
        if item.partition("=")[0].isdigit():
            raise DigitalLinkError("a compressed link carries its AIs in the data, not the query")
        extra.append(item)
    if not extra:
        return uncompressed
    return uncompressed + ("&" if "?" in uncompressed else "?") + "&".join(extra)


def _qualifiers(key: str, values: Mapping[str, str]) -> list[str]:
    """The key's qualifiers to put in the path: the alternative that leaves only attributes."""
    best: list[str] = []
    for alternative in PRIMARY_KEYS[key]:
        chosen = [ai for ai in alternative if ai in values]
        rest = [ai for ai in values if ai != key and ai not in chosen]
        if all(AI_TABLE[ai].dl_attribute for ai in rest) and len(chosen) >= len(best):
            best = chosen
    return best
