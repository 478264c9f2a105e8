"""The one catalogue of words people read, in Vietnamese (the default) and English twins.

Messages live in gettext catalogues, `trace/locale/{vi,en}/LC_MESSAGES/messages.po`, read
with Babel. A message id is a stable key ("verdict.genuine.headline"), so both languages
are translations and a missing one is caught by `tests/test_i18n.py`. Python code asks for
a message with `t(lang, key, **params)` ({name} placeholders) and marks keys it builds
ahead of time with `N_`; templates call `_(key, **params)`. Numbers, dates and times are
written the Vietnamese way (91,14; 31/08/2028; 09:00 giờ Việt Nam) through Babel too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib.resources import files
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LANGUAGES = ("vi", "en")
DEFAULT = "vi"
# Vietnam keeps one zone all year (UTC+7); the tzdata package supplies it where the
# system has no zone files.
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
_DATE_FORMAT = {"vi": "dd/MM/yyyy", "en": "d MMM yyyy"}


@lru_cache(maxsize=len(LANGUAGES))
def catalogue(lang: str) -> Mapping[str, str]:
    """Every message of a language, key -> text (empty translations left out)."""
    path = files("ocop_trace") / "locale" / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        parsed = read_po(handle, locale=lang)
    return {str(m.id): str(m.string) for m in parsed if m.id and m.string}


def t(lang: str, key: str, **params: object) -> str:
    """The message in `lang`, its {placeholders} filled in."""
    text = catalogue(lang)[key]
    return text.format(**params) if params else text


def N_(key: str) -> str:  # gettext's name for "mark now, translate later"
    """Mark a key built ahead of time, so the catalogue test sees it is used."""
    return key


@lru_cache(maxsize=1024)
def pick_language(query: str | None, accept_language: str | None) -> str:
    """`?lang=` wins, then the first supported language in Accept-Language, then Vietnamese."""
    if query in LANGUAGES:
        return query
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT


# Cached: Babel parses the pattern and the locale on every call, and a cached scan page's
# fill formats its numbers on every scan.
@lru_cache(maxsize=8192, typed=True)
def number(value: int | float, lang: str, decimals: int = 0) -> str:
    """1.200.000 and 91,14 in Vietnamese; 1,200,000 and 91.14 in English."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return str(format_decimal(value, format=pattern, locale=lang))


def score(hundredths: int, lang: str) -> str:
    """An OCOP score kept as hundredths of a point: 9114 -> "91,14"."""
    return number(hundredths / 100, lang, decimals=2)


def day(value: date | datetime | str, lang: str) -> str:
    """31/08/2028 in Vietnamese, 31 Aug 2028 in English. A point in time (a ledger
    timestamp) is the day it was in Vietnam, not in UTC."""
    if isinstance(value, datetime) or (isinstance(value, str) and len(value) > 10):
        when = local(value).date()
    else:
        when = date.fromisoformat(value) if isinstance(value, str) else value
    return str(format_date(when, _DATE_FORMAT[lang], locale=lang))


def local(value: datetime | str) -> datetime:
    """A UTC time (a ledger timestamp "…Z" or an aware datetime) in Vietnam's zone."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(ZONE)


def moment(value: datetime | str, lang: str) -> str:
    """A point in time as Vietnam's clock shows it, with the zone said: "09:00, 05/01/2026
    (giờ Việt Nam)"."""
    when = local(value)
    clock = format_datetime(when, "HH:mm", tzinfo=ZONE, locale=lang)
    return t(lang, "time.local", clock=clock, day=day(when.date(), lang))
