"""Rendering the public pages: language, holes filled per scan, error pages a browser can reach.

A cached page is cut at its holes (the verdict box, the serial's proof, the report form's
token and serial) and filled per request by joining bytes. Text from the ledger is escaped
on the way in, so it can never contain a hole's marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from ocop_trace import csrf, i18n
from ocop_trace.errors import ServiceError, Voided
from ocop_trace.templating import environment
from ocop_trace.verdict import Verdict

HTML_TYPE = "text/html; charset=utf-8"
# Markers of our own making (fixed names), never text from a request or the ledger.
HOLES = {n: Markup(f"<!--@{n}-->") for n in ("verdict", "serial_proof", "csrf", "serial")}  # noqa: S704
_HOLE = re.compile("<!--@(verdict|serial_proof|csrf|serial)-->")


def wants_html(request: Request) -> bool:
    """A browser asks for HTML first; API clients ask for JSON or send no preference."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


def language(request: Request) -> str:
    """The reader's language, worked out once per request (a scan asks for it twice)."""
    scope = request.scope
    found: str | None = scope.get(_LANGUAGE)
    if found is None:
        asked = request.query_params.get("lang") if scope.get("query_string") else None
        found = scope[_LANGUAGE] = i18n.pick_language(asked, request.headers.get("accept-language"))
    return found


_LANGUAGE = "ocop_trace.language"  # the scope key `language` keeps its answer under


def common(request: Request, lang: str) -> dict[str, Any]:
    """What every page's layout needs: the language, its switch, the development banner."""
    other = "en" if lang == "vi" else "vi"
    # Relative (query only): a cached scan page serves every serial of its batch.
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    switch = "?" + urlencode([*params, ("lang", other)])
    return {
        "other_lang": other,
        "switch_url": switch,
        "development": request.app.state.settings.is_development,
        "site_url": request.app.state.settings.public_url.rstrip("/"),  # for shared links
        "holes": HOLES,
    }


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered page cut at its holes: encoded once, filled per request by joining bytes."""

    parts: tuple[bytes, ...]
    holes: tuple[str, ...]

    @classmethod
    def of(cls, html: str) -> Rendered:
        pieces = _HOLE.split(html)
        return cls(tuple(p.encode() for p in pieces[::2]), tuple(pieces[1::2]))

    def fill(self, values: dict[str, bytes]) -> bytes:
        out = [self.parts[0]]
        for hole, part in zip(self.holes, self.parts[1:], strict=True):
            out.append(values.get(hole, b""))
            out.append(part)
        return b"".join(out)


def render(request: Request, lang: str, template: str, **values: Any) -> Rendered:
    html = environment(lang).get_template(template).render(**common(request, lang), **values)
    return Rendered.of(html)


@lru_cache(maxsize=4096)
def verdict_box(
    lang: str, verdict: Verdict, params: tuple[tuple[str, str], ...], reason: str
) -> bytes:
    """The verdict's box: one plain headline and what to do (and a reason, if any)."""
    html = (
        environment(lang)
        .get_template("site/verdict.html")
        .render(verdict=verdict, params=dict(params), reason=reason)
    )
    return html.encode()


def finish(
    request: Request,
    page: Rendered,
    serial: str | None,
    fill: dict[str, bytes],
    status: int = 200,
) -> Response:
    """Fill in the per-request parts; a page with the report form gets its CSRF token (also
    set as a cookie) and serial."""
    headers = None
    values = dict(fill)
    if serial:
        token = csrf.new_token(request.app.state.settings.secret_key.get_secret_value())
        values["csrf"] = token.encode()
        values["serial"] = escape(serial).encode()
        # Written out rather than through set_cookie: the token is URL-safe text of our
        # own, and this runs on every scan.
        secure = "; Secure" if request.scope.get("scheme") == "https" else ""
        headers = {
            "Set-Cookie": f"{csrf.COOKIE}={token}; HttpOnly; Max-Age=3600; Path=/; "
            f"SameSite=strict{secure}"
        }
    return Response(page.fill(values), status_code=status, headers=headers, media_type=HTML_TYPE)


# The verdict a browser's error page shows, per status; the rest say what went wrong.
_ERROR_VERDICTS = {400: Verdict.BAD_LINK, 404: Verdict.NOT_REGISTERED}
# Statuses with words of their own on a page; any other says error.other.
ERROR_STATUSES = (400, 404, 405, 413, 422, 429)


def error_page(
    request: Request,
    status: int,
    error: ServiceError | None = None,
    serial: str | None = None,
    back_url: str = "/",
) -> Response:
    """An error as a page in the reader's language, with a way back. On a scan's own link,
    400 and 404 are verdicts (bad_link, not_registered); elsewhere, what went wrong."""
    lang = language(request)
    verdict = _ERROR_VERDICTS.get(status) if _is_scan(request) else None
    if verdict is not None:
        box = verdict_box(lang, verdict, (), "")
        detail = i18n.t(lang, "verdict.bad_link.detail") if verdict is Verdict.BAD_LINK else ""
    else:
        key = f"error.{status}" if status in ERROR_STATUSES else "error.other"
        box = _problem_box(lang, key, status)
        detail = ""
    # No report form here: reports are taken for codes the service issued, so an invented
    # code cannot be used to fill the inspectors' inbox; the verdict says whom to tell.
    voided = _voided_note(lang, error) if verdict is not None else ""
    page = render(request, lang, "site/error.html", detail=detail, voided=voided, back_url=back_url)
    return finish(request, page, None, {"verdict": box}, status)


def _voided_note(lang: str, error: ServiceError | None) -> str:
    """Why a code its producer voided is not registered: the reason and when, as signed."""
    if not isinstance(error, Voided):
        return ""
    return i18n.t(
        lang, "verdict.not_registered.voided", reason=error.reason, at=i18n.moment(error.at, lang)
    )


def _problem_box(lang: str, key: str, status: int) -> bytes:
    headline, advice = i18n.t(lang, key), i18n.t(lang, f"{key}.advice")
    return (
        f'<div class="verdict bad" role="status" data-verdict="error_{status}">'
        f"<h1>{escape(headline)}</h1><p>{escape(advice)}</p></div>"
    ).encode()


def _is_scan(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/l/", "/01/", "/b/")) or path.rstrip("/") == "/01"


async def html_errors(request: Request, status: int, error: ServiceError) -> Response | None:
    """A browser outside the JSON API gets an error as a page; anything else, JSON."""
    if request.url.path.startswith("/api/") or not wants_html(request):
        return None
    return error_page(request, status, error)
