"""Resolving the links printed on packages: the scan page for a browser, JSON otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import Connection, select
from starlette.routing import Route

from ocop_trace import ocop
from ocop_trace.api.deps import get_principal
from ocop_trace.digital_link import DigitalLinkError, parse_digital_link
from ocop_trace.errors import InvalidInput, NotFound, error_body
from ocop_trace.models import LABEL_SERIAL, PRODUCER, PRODUCT
from ocop_trace.offline import LabelSignatureError, verify_label_url
from ocop_trace.reads import batch_public, batch_row, current_rating, producer_public
from ocop_trace.scans import ScanCounter, ScanStats
from ocop_trace.serials import SerialError, parse_canonical
from ocop_trace.site.cache import ScanPages
from ocop_trace.site.pages import error_page, finish, language, render_scan_page, wants_html

router = APIRouter(tags=["labels"])
F = TypeVar("F", bound=Callable[..., Any])
# The pages a scan opens, added to the app itself by `add_pages` (a route of an included
# router costs more to find) and without dependencies, because every one costs time on the
# busiest path; each handler refuses a bad token itself (`_refuse_bad_token`).
_PAGES: list[tuple[str, str, dict[str, Any], Callable[..., Any]]] = []
LINK_TYPES = {
    "gs1:pip": "pip",
    "gs1:certificationInfo": "certificationInfo",
    "gs1:traceability": "traceability",
}
LINKSET = "application/linkset+json"


@router.get("/.well-known/gs1resolver", summary="What this GS1 Digital Link resolver serves")
def well_known(request: Request) -> dict[str, Any]:
    base = request.app.state.settings.public_url.rstrip("/")
    return {
        "name": "OCOP trace",
        "resolverRoot": base,
        "supportedPrimaryKeys": ["gtin"],
        "supportedLinkType": [
            {"namespace": "https://gs1.org/voc/", "prefix": "gs1:", "types": sorted(LINK_TYPES)}
        ],
        "linkTypeDefaultCanBeLinkset": True,
        "shortLinks": f"{base}/l/{{serial}} for products without a GTIN",
    }


def _resolve(
    request: Request,
    conn: Connection,
    link_serial: str | None,
    gtin: str | None,
    lot: str | None,
    batch_id: str | None = None,
) -> Response:
    cache: ScanPages = request.app.state.pages
    # Read before the page is built, so a page is never filed under a newer generation
    # than the data it shows.
    generation = cache.generation()
    if generation is None:
        generation = cache.read_generation(conn)
    facts = _facts(conn, link_serial, gtin, lot, batch_id)
    if link_serial is not None:
        facts["serial"] = link_serial
        facts["scans"] = _count_scan(request, conn, link_serial)
    if "s" in request.query_params:
        facts["label_signature"] = _label_signature(request, conn, facts["producer"]["id"])
    if wants_html(request) and "linkType" not in request.query_params:
        lang = language(request)
        body = render_scan_page(conn, request.app.state.evidence, facts, lang)
        if _cacheable(request) and facts["batch"] is not None:
            if link_serial is not None:
                cache.remember(link_serial, facts["batch"]["id"])
            key = cache.key(
                generation,
                facts["batch"]["id"],
                link_serial is not None,
                gtin,
                lot,
                lang,
                ocop.today_in_vietnam_cached(),
            )
            cache.keep(key, body)
        return finish(request, body, lang, link_serial, facts.get("scans"))
    url = str(request.url.remove_query_params("linkType"))
    links = _links(request.app.state.settings.public_url, facts)
    link_header = f'<{url}?linkType=linkset>; rel="linkset"; type="{LINKSET}"'
    link_type = request.query_params.get("linkType")
    if link_type == "linkset" or LINKSET in request.headers.get("accept", ""):
        linkset = {
            "linkset": [
                {
                    "anchor": url,
                    **{f"https://gs1.org/voc/{k}": [{"href": v}] for k, v in links.items()},
                }
            ]
        }
        return JSONResponse(linkset, media_type=LINKSET, headers={"Link": link_header})
    if link_type is not None:
        target = links.get(LINK_TYPES.get(link_type, ""))
        if target is None:
            raise InvalidInput(
                f"linkType must be linkset or one of {', '.join(LINK_TYPES)}", field="linkType"
            )
        return RedirectResponse(target, status_code=307, headers={"Link": link_header})
    return JSONResponse(facts, headers={"Link": link_header})


def _facts(
    conn: Connection,
    serial: str | None,
    gtin: str | None,
    lot: str | None,
    batch_id: str | None = None,
) -> Any:
    if batch_id is not None:
        batch = batch_row(conn, batch_id)
    elif serial is not None:
        row = conn.execute(select(LABEL_SERIAL).where(LABEL_SERIAL.c.serial == serial)).first()
        if row is None:
            raise NotFound(
                "this code is not registered: the product may be counterfeit. "
                "Report it to the seller or the provincial OCOP council."
            )
        batch = batch_row(conn, row.batch_id)
    else:
        batch = None
    product_row = conn.execute(
        select(PRODUCT).where(
            PRODUCT.c.id == batch.product_id if batch is not None else PRODUCT.c.gtin == gtin
        )
    ).first()
    if (
        product_row is None
        or (gtin is not None and product_row.gtin != gtin)
        or (batch is not None and lot is not None and batch.lot != lot)
    ):
        raise NotFound("no registered product matches this code: it may be counterfeit")
    producer = conn.execute(select(PRODUCER).where(PRODUCER.c.id == product_row.producer_id)).one()
    rating = current_rating(conn, product_row.id, ocop.today_in_vietnam_cached())
    facts: dict[str, Any] = {
        "verdict": "registered" if batch is None or batch.recalled_index is None else "recalled",
        "product": {
            "id": product_row.id,
            "name_vi": product_row.name_vi,
            "name_en": product_row.name_en,
            "gtin": product_row.gtin,
            "image_url": product_row.image_url,
        },
        "product_entry_index": product_row.entry_index,
        "producer": producer_public(producer).model_dump(),
        "rating": rating.model_dump() if rating else None,
        "batch": batch_public(conn, batch).model_dump() if batch is not None else None,
        "recall_entry_index": batch.recalled_index if batch is not None else None,
    }
    return facts


def _count_scan(request: Request, conn: Connection | None, serial: str) -> dict[str, Any]:
    scans = _record_scan(request, serial) if request.method == "GET" else request.app.state.scans
    if scans.overdue():
        scans.flush(wait=False)
    return _scan_view(request, scans.stats(serial, conn))


def _record_scan(request: Request, serial: str) -> ScanCounter:
    scans: ScanCounter = request.app.state.scans
    scans.record(
        serial,
        request.client.host if request.client else None,
        request.headers.get("user-agent", ""),
    )
    return scans


def _scan_view(request: Request, stats: ScanStats) -> dict[str, Any]:
    settings = request.app.state.settings
    copied = (
        stats.scans > settings.copy_scan_threshold
        or stats.networks > settings.copy_network_threshold
    )
    return {
        "count": stats.scans,
        "networks": stats.networks,
        "first_seen": stats.first_seen,
        "may_be_copied": copied,
    }


def _label_signature(request: Request, conn: Connection, producer_id: str) -> str:
    grants = request.app.state.service.store.grants(conn).values()
    producer_keys = {
        g.key_id: bytes.fromhex(g.key_id)
        for g in grants
        if g.role == "producer" and g.subject == producer_id and g.revoked_index is None
    }
    try:
        check = verify_label_url(str(request.url), producer_keys)
    except LabelSignatureError:
        return "unreadable"
    return "valid" if check.valid else "invalid"


def _links(base: str, facts: dict[str, Any]) -> dict[str, str]:
    root = base.rstrip("/")
    product = quote(facts["product"]["id"])
    links = {
        "pip": f"{root}/api/v1/products/{product}",
        "certificationInfo": f"{root}/api/v1/products/{product}/ratings",
    }
    if facts["batch"] is not None:
        links["traceability"] = f"{root}/api/v1/batches/{quote(facts['batch']['id'])}/events"
    return links


def _page_route(path: str, summary: str, name: str, description: str) -> Callable[[F], F]:
    """GET and HEAD on a scan page. The path parameter is described for OpenAPI and read by
    the handler itself: declared as an argument, FastAPI would validate it on every scan."""
    extra = {
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": description,
            }
        ]
    }

    def register(handler: F) -> F:
        _PAGES.append((path, summary, extra, handler))
        return handler

    return register


def add_pages(app: FastAPI) -> None:
    """Put the scan pages on the app, first, since they are most of its traffic.

    Requests are dispatched by plain Starlette routes in front of all others: FastAPI's
    per-request machinery (parameter solving, telemetry, its response wrapper) is about a
    third of a cached page's cost, and these handlers take only the request. The FastAPI
    routes behind them describe the same URLs in the OpenAPI schema.
    """
    app.router.routes[0:0] = [
        Route(path, handler, methods=["GET", "HEAD"]) for path, _, _, handler in _PAGES
    ]
    for path, summary, extra, handler in _PAGES:
        app.add_api_route(
            path, handler, methods=["GET"], summary=summary, openapi_extra=extra, tags=["labels"]
        )
        app.add_api_route(path, handler, methods=["HEAD"], include_in_schema=False)
        if not path.startswith("/b/"):
            app.add_api_route(path, _resolver_options, methods=["OPTIONS"], include_in_schema=False)


@_page_route(
    "/l/{serial}",
    "Resolve a short label link",
    "serial",
    "The label's serial, 16 Crockford base-32 digits",
)
async def resolve_short(request: Request) -> Response:
    serial: str = request.path_params["serial"]
    await _refuse_bad_token(request)
    try:
        canonical = parse_canonical(serial).canonical
    except SerialError as exc:
        return _bad_link(request, str(exc))
    return await _answer(request, canonical, None, None)


@_page_route(
    "/01/{rest:path}",
    "Resolve a GS1 Digital Link printed on a label",
    "rest",
    "The rest of the link: GTIN, then /10/LOT/21/SERIAL",
)
async def resolve_digital_link(request: Request) -> Response:
    await _refuse_bad_token(request)
    try:
        link = parse_digital_link(str(request.url))
    except DigitalLinkError as exc:
        return _bad_link(request, f"not a GS1 Digital Link we can read: {exc}")
    return await _answer(request, link.serial, link.gtin, link.lot)


def _bad_link(request: Request, message: str) -> Response:
    if wants_html(request):
        return error_page(request, 400, "bad_link", message)
    return JSONResponse(error_body("bad_link", message), status_code=400)


async def _refuse_bad_token(request: Request) -> None:
    """As on every other route: a bad or revoked token is refused, not taken as anonymous."""
    if "authorization" in request.headers:
        await get_principal(request, request.app.state.service)


def _cacheable(request: Request) -> bool:
    """A plain page view: no JSON, no link type, no offline signature to check."""
    params = request.query_params
    return (
        request.method == "GET"
        and wants_html(request)
        and "linkType" not in params
        and "s" not in params
    )


async def _answer(
    request: Request,
    serial: str | None,
    gtin: str | None,
    lot: str | None,
    batch_id: str | None = None,
) -> Response:
    """A cached page when there is one (no database, no thread), else the full answer."""
    if _cacheable(request):
        cache: ScanPages = request.app.state.pages
        generation = cache.generation()
        if generation is None:
            generation = await run_in_threadpool(cache.read_generation)
        batch = batch_id if batch_id is not None else cache.batch_of(serial) if serial else None
        lang = language(request)
        body = (
            cache.page(
                cache.key(
                    generation,
                    batch,
                    serial is not None,
                    gtin,
                    lot,
                    lang,
                    ocop.today_in_vietnam_cached(),
                )
            )
            if batch is not None
            else None
        )
        if body is not None:
            scans = None
            if serial is not None:
                scans = await _count_scan_cached(request, serial)
            return finish(request, body, lang, serial, scans)
    return await run_in_threadpool(_answer_from_database, request, serial, gtin, lot, batch_id)


async def _count_scan_cached(request: Request, serial: str) -> dict[str, Any]:
    scans = _record_scan(request, serial)
    if scans.overdue():
        await run_in_threadpool(scans.flush, wait=False)
    stats = scans.cached_stats(serial)
    if stats is None:
        stats = await run_in_threadpool(scans.stats, serial)
    return _scan_view(request, stats)


def _answer_from_database(
    request: Request,
    serial: str | None,
    gtin: str | None,
    lot: str | None,
    batch_id: str | None = None,
) -> Response:
    with request.app.state.service.engine.connect() as conn:
        try:
            return _resolve(request, conn, serial, gtin, lot, batch_id)
        except NotFound as exc:
            if wants_html(request):
                return error_page(request, 404, "unknown", exc.message, serial)
            raise


@_page_route(
    "/b/{batch_id}",
    "A batch's page, with no label (lineage links open it)",
    "batch_id",
    "The batch's id",
)
async def batch_page(request: Request) -> Response:
    batch_id: str = request.path_params["batch_id"]
    await _refuse_bad_token(request)
    return await _answer(request, None, None, None, batch_id)


async def _resolver_options() -> Response:
    return Response(
        status_code=204,
        headers={
            "Allow": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        },
    )
