"""The home page (the province's OCOP catalogue, its search and filters) and code entry.

/        the products and services, searched and filtered; a box for a label's code
/code    the short code printed under a QR, typed in by hand: its label page, or what
         is wrong with what was typed (kept in the box)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from ocop_trace import i18n, ocop, search
from ocop_trace.serials import SerialError, parse_human
from ocop_trace.site.pages import finish, language, render

router = APIRouter(include_in_schema=False)
MAX_CODE = 64  # characters of a typed code kept for the page


@router.get("/")
async def home(request: Request) -> Response:
    lang = language(request)
    filters = search.Filters.read(request.query_params)
    found, places = await run_in_threadpool(_read, request, filters)
    items = [_card(lang, item) for item in found.items]
    page = render(
        request,
        lang,
        "site/home.html",
        filters=filters,
        items=items,
        total=found.total,
        pages=found.pages,
        previous_url=_page_url(filters, lang, filters.page - 1) if filters.page > 1 else "",
        next_url=_page_url(filters, lang, filters.page + 1) if filters.page < found.pages else "",
        sectors=[(code, ocop.SECTORS[code].label_key) for code in ocop.SECTORS],
        places=places,
        code="",
        code_error="",
        canonical="/",
        share={
            "title": i18n.t(lang, "catalogue.title"),
            "description": i18n.t(lang, "catalogue.intro"),
            "image": "",
        },
    )
    return finish(request, page, None, {})


def _read(request: Request, filters: search.Filters) -> tuple[search.Found, dict[str, list[str]]]:
    with request.app.state.service.engine.connect() as conn:
        return search.find(conn, filters, ocop.today_in_vietnam()), search.places(conn)


def _card(lang: str, item: dict[str, Any]) -> dict[str, Any]:
    name = item["name_en"] if lang == "en" and item["name_en"] else item["name_vi"]
    sha = item["image_sha256"]
    # A photo held here is served from here, small; the product page checks it against
    # its statement and says so.
    held = sha and item["image_url"].endswith(f"/photos/{sha}.jpg")
    return {
        **item,
        "image_url": f"/photos/{sha}-thumb.jpg" if held else item["image_url"],
        "name": name,
        "service": ocop.SECTORS[item["sector"]].is_service,
        "place": ", ".join(p for p in (item["commune"], item["province"]) if p),
    }


def _page_url(filters: search.Filters, lang: str, page: int) -> str:
    params = {
        "q": filters.query,
        "stars": str(filters.stars or ""),
        "sector": filters.sector,
        "province": filters.province,
        "commune": filters.commune,
    }
    kept = [(k, v) for k, v in params.items() if v]
    return "/?" + urlencode([*kept, ("page", str(page)), ("lang", lang)])


@router.get("/code")
def code_entry(request: Request) -> Response:
    """A typed code: any case, hyphens and spaces anywhere; the check character catches a
    mistyped one. A good code goes to its label page; a bad one is shown again, with why."""
    lang = language(request)
    typed = request.query_params.get("code", "")[:MAX_CODE]
    error = ""
    if typed.strip():
        try:
            serial = parse_human(typed)
        except SerialError as exc:
            error = i18n.t(lang, exc.key)
        else:
            return RedirectResponse(f"/l/{serial.canonical}?lang={lang}", status_code=303)
    page = render(request, lang, "site/code.html", code=typed, code_error=error, canonical="/code")
    return finish(request, page, None, {}, 422 if error else 200)
