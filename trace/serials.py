"""Unguessable label serials: 80 random bits, Crockford base32 forms, a Merkle set commitment."""

from __future__ import annotations

import base64
import re
import secrets
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from ledger.merkle import inclusion_proof, leaf_hash, node_hash, root_from_leaf_hashes
from ocop_trace.errors import BadLink
from ocop_trace.i18n import N_

SERIAL_BITS = 80  # guessing one live serial among a billion still takes ~2**50 tries
CANONICAL_LENGTH = SERIAL_BITS // 5  # 16 symbols of 5 bits: no padding bits to disagree on
HUMAN_GROUP = 4
_SYMBOLS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_CHECK_SYMBOLS = _SYMBOLS + "*~$=U"  # Crockford's extra symbols for check values 32-36
_VALUE_OF = {symbol: value for value, symbol in enumerate(_CHECK_SYMBOLS)}
_CONFUSABLES = str.maketrans({"I": "1", "L": "1", "O": "0"})
_CANONICAL = re.compile(f"[{_SYMBOLS}]{{{CANONICAL_LENGTH}}}")
# RFC 4648 base32 spells 5-bit groups most significant first, as Crockford's does, in its
# own alphabet: encoding the 10 bytes and renaming the symbols is the canonical form.
_FROM_BASE32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _SYMBOLS.encode("ascii"))


class SerialError(BadLink, ValueError):
    """Text that is not a label serial; the message says what to fix, `key` names the
    catalogue's words for it (the code entry page shows them)."""

    def __init__(self, message: str, key: str = N_("code.invalid")) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, order=True)
class Serial:
    value: int  # 0 <= value < 2**SERIAL_BITS

    def __post_init__(self) -> None:
        if not 0 <= self.value < 1 << SERIAL_BITS:
            raise SerialError(f"a serial is a {SERIAL_BITS}-bit number, got {self.value}")

    @property
    def canonical(self) -> str:
        """The form in URLs (GS1 AI 21): 16 upper-case Crockford base32 symbols, no check."""
        packed = self.value.to_bytes(SERIAL_BITS // 8, "big")
        return base64.b32encode(packed).translate(_FROM_BASE32).decode("ascii")

    @property
    def check_symbol(self) -> str:
        return _CHECK_SYMBOLS[self.value % 37]

    @property
    def human(self) -> str:
        """The form to read aloud or type: groups of four, then the check symbol."""
        text = self.canonical
        groups = [text[i : i + HUMAN_GROUP] for i in range(0, len(text), HUMAN_GROUP)]
        return "-".join([*groups, self.check_symbol])

    def __str__(self) -> str:
        return self.canonical


def new_serial() -> Serial:
    return Serial(secrets.randbits(SERIAL_BITS))


def _value(symbols: str) -> int:
    value = 0
    for symbol in symbols:
        value = value * 32 + _VALUE_OF[symbol]
    return value


def parse_canonical(text: str) -> Serial:
    """Read the URL form exactly, so that each serial has one spelling in links."""
    return Serial(_value(canonical_text(text)))


def canonical_text(text: str) -> str:
    """`text` when it is a serial's URL form, which is then parse_canonical(text).canonical
    (16 symbols of 5 bits spell 80 bits one way only); checked without building the number,
    for submissions of a million serials."""
    if not _CANONICAL.fullmatch(text):
        raise SerialError(
            f"a serial in a link is {CANONICAL_LENGTH} characters from {_SYMBOLS}, got {text!r}"
        )
    return text


def parse_human(text: str) -> Serial:
    """Read a typed code: any case, hyphens and spaces anywhere, I and L as 1, O as 0."""
    if not text.isascii():
        # Refused before upper() can turn, say, 'ı' into 'I' or 'ß' into 'SS'.
        raise SerialError(
            "the code has a character that is not on the label", N_("code.bad_character")
        )
    compact = "".join(text.replace("-", " ").split()).upper().translate(_CONFUSABLES)
    if len(compact) != CANONICAL_LENGTH + 1:
        raise SerialError(
            f"the code should have {CANONICAL_LENGTH + 1} letters and digits, found {len(compact)}",
            N_("code.length"),
        )
    data, check = compact[:-1], compact[-1]
    for position, char in enumerate(compact, 1):
        if char not in (_CHECK_SYMBOLS if position == len(compact) else _SYMBOLS):
            raise SerialError(
                f"{char!r} (character {position}) is not used in these codes",
                N_("code.bad_character"),
            )
    serial = Serial(_value(data))
    if serial.check_symbol != check:
        raise SerialError(
            "the code was mistyped: its last character does not match the rest",
            N_("code.mistyped"),
        )
    return serial


def serial_set_commitment(serials: Iterable[Serial]) -> bytes:
    """RFC 6962 Merkle root over the sorted canonical serials: commits to the set, reveals none.

    Sorting makes the root a function of the set alone, and lets a later inclusion proof for
    one serial be checked against it without publishing the others.
    """
    return canonical_set_commitment(serial.canonical for serial in serials)


def canonical_set_commitment(canonical: Iterable[str]) -> bytes:
    """serial_set_commitment of the serials with these URL forms (canonical_text's)."""
    texts = sorted(canonical)
    for earlier, later in pairwise(texts):
        if earlier == later:
            raise SerialError(f"serial {earlier} appears twice in the set")
    return root_from_leaf_hashes([leaf_hash(text.encode("ascii")) for text in texts])


class SerialSet:
    """A label set's serials as the RFC 6962 tree its commitment is the root of, kept in
    memory so a scan gets its serial's inclusion proof in O(log n) without hashing the set.

    Levels hold the complete subtrees (level L, index i covers the sorted serials
    [i·2^L, (i+1)·2^L)), which is all `ledger.merkle.inclusion_proof` reads.
    """

    def __init__(self, serials: Iterable[str]) -> None:
        self.serials = sorted(serials)
        level = [leaf_hash(text.encode("ascii")) for text in self.serials]
        self._levels = [level]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            self._levels.append(level)
        self.root = root_from_leaf_hashes(self._levels[0])

    def __len__(self) -> int:
        return len(self.serials)

    def proof(self, serial: str) -> tuple[int, list[bytes]] | None:
        """(position, audit path) of a serial in the set, or None if it is not in it."""
        position = bisect_left(self.serials, serial)
        if position == len(self.serials) or self.serials[position] != serial:
            return None
        path = inclusion_proof(position, len(self.serials), lambda lv, i: self._levels[lv][i])
        return position, path

    def leaf(self, position: int) -> bytes:
        return self._levels[0][position]
