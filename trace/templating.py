"""Jinja2 environments, one per language, with the catalogue and the local number forms.

Shared by the public site and the staff app: a template calls `_(key, **params)` for words
and the filters `num`, `score`, `day` and `moment` for numbers, dates and times.
"""

from __future__ import annotations

from functools import lru_cache, partial
from importlib.resources import files

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ocop_trace import i18n


@lru_cache(maxsize=len(i18n.LANGUAGES))
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(files("ocop_trace.templates"))),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=StrictUndefined,  # a misspelt variable fails a test, not a shopper's page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(_=partial(i18n.t, lang), lang=lang, N_=i18n.N_)
    env.filters.update(
        num=partial(_number, lang=lang),
        score=partial(_score, lang=lang),
        day=partial(_day, lang=lang),
        moment=partial(_moment, lang=lang),
    )
    return env


def _number(value: int | float, decimals: int = 0, *, lang: str) -> str:
    return i18n.number(value, lang, decimals)


def _score(value: int, *, lang: str) -> str:
    return i18n.score(value, lang)


def _day(value: str, *, lang: str) -> str:
    return i18n.day(value, lang)


def _moment(value: str, *, lang: str) -> str:
    return i18n.moment(value, lang)
