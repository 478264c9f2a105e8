"""Human text at the edge: no invisible or control characters, stored NFC; https links only."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import urlsplit

# Unicode categories that draw nothing or reorder what follows: controls (Cc), format
# characters (Cf: bidirectional overrides and isolates, zero-width spaces and joiners,
# the byte-order mark), surrogates, private use and unassigned code points.
_REFUSED = {"Cc", "Cf", "Cs", "Co", "Cn"}
_PROSE_CONTROLS = {"\n", "\t"}  # multi-line fields keep their line breaks and tabs


def _clean(value: str, allowed: set[str]) -> str:
    for position, char in enumerate(value, 1):
        if char not in allowed and unicodedata.category(char) in _REFUSED:
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            raise ValueError(
                f"character {position} is an invisible or control character ({name}): "
                "remove it and type the text again"
            )
    return unicodedata.normalize("NFC", value)


def line(value: str) -> str:
    """One line of text (a name, a place): refused if it hides characters; NFC."""
    return _clean(value, set())


def prose(value: str) -> str:
    """Free text that may have several lines: the same rule, line breaks and tabs allowed."""
    return _clean(value, _PROSE_CONTROLS)


def https_url(value: str) -> str:
    """An image or page link: https with a host, no credentials; "" for none."""
    if not value:
        return value
    line(value)
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise ValueError("must be an https:// link (https://host/path), without a user or password")
    if any(c.isspace() for c in value):
        raise ValueError("must be an https:// link without spaces")
    return value


_SPACES = re.compile(r"[\s\W_]+")


def _folded(name: str) -> str:
    """A name as a reader skims it: without diacritics, case, spacing or punctuation."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub("", bare.replace("đ", "d").replace("Đ", "D").casefold())


@lru_cache(maxsize=1)
def _is_confusable() -> object:
    # The confusables package reads Unicode's TR39 table (2.7 MB) when imported: only when
    # a producer is registered, not at every start.
    import confusables

    return confusables.is_confusable


def confusable(first: str, second: str) -> bool:
    """True when two names could pass for each other: equal once diacritics, case and
    spacing are dropped, or made of Unicode look-alikes (TR39 confusables: Cyrillic 'а'
    for Latin 'a', digit zero for 'O'...)."""
    a, b = _folded(first), _folded(second)
    if a == b:
        return True
    check = _is_confusable()
    return bool(check(a, b))  # type: ignore[operator]


def slug(text: str) -> str:
    """An id from a Vietnamese name: "Miến dong Tài Hoan" -> "mien-dong-tai-hoan"."""
    plain = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:60]
