"""The links printed on packages: the scan page for a browser, JSON for a program.

    /l/{serial}             a label's short link (its serial; the printed short code too)
    /01/{gtin}[/10/{lot}][/21/{serial}]   a GS1 Digital Link
    /b/{batch}              a batch's page (lineage links open it; no serial)
    /{data}                 a compressed GS1 Digital Link, read in place (added last)

The same URL answers a browser with the page and anything else through the JSON resolver
(api/resolver.py). A cached page costs no database and no thread: only the per-scan parts
(the verdict, the serial's proof, the form's token) are worked out on each scan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from markupsafe import escape
from sqlalchemy import Connection
from starlette.routing import Route

from ocop_trace import i18n, ocop
from ocop_trace.api.deps import get_principal
from ocop_trace.digital_link import (
    DigitalLink,
    DigitalLinkError,
    parse_digital_link,
    parse_raw_digital_link,
)
from ocop_trace.dl_compression import decompress_digital_link
from ocop_trace.errors import BadLink, NotFound, ServiceError
from ocop_trace.evidence import Evidence
from ocop_trace.links import Level, levels_of
from ocop_trace.scan_facts import (
    Check,
    ScanView,
    SerialCheck,
    Target,
    base_findings,
    batch_of_serial,
    per_scan,
    reproved,
    rows_for,
    serial_check,
    view,
)
from ocop_trace.serials import SerialError, parse_canonical, parse_human
from ocop_trace.site import resolver, scanning
from ocop_trace.site.cache import Claim, Generation, Page, ScanPages
from ocop_trace.site.pages import error_page, finish, language, render, verdict_box, wants_html
from ocop_trace.verdict import Findings, Verdict, decide

log = logging.getLogger("ocop_trace")
F = TypeVar("F", bound=Callable[..., Any])
# The pages a scan opens, added to the app itself by `add_pages` and without dependencies:
# every one costs time on the busiest path; each handler refuses a bad token itself.
_PAGES: list[tuple[str, str, str, str, Callable[..., Any]]] = []


def _page_route(path: str, summary: str, name: str, description: str) -> Callable[[F], F]:
    def register(handler: F) -> F:
        _PAGES.append((path, summary, name, description, handler))
        return handler

    return register


_PAGE_ANSWER = {
    "description": "The consumer page (HTML) for a browser, the facts (JSON) for a program, "
    "by content negotiation",
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "text/html": {"schema": {"type": "string"}},
    },
}


def add_pages(app: FastAPI) -> None:
    """Put the scan pages on the app, first, since they are most of its traffic.

    Requests are dispatched by plain Starlette routes in front of all others: FastAPI's
    per-request machinery is about a third of a cached page's cost, and these handlers take
    only the request. The FastAPI routes behind them describe the same URLs in OpenAPI.
    """
    app.router.routes[0:0] = [
        Route(path, handler, methods=["GET", "HEAD"]) for path, _, _, _, handler in _PAGES
    ]
    for path, summary, name, description, handler in _PAGES:
        parameter = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        app.add_api_route(
            path,
            handler,
            methods=["GET"],
            summary=summary,
            openapi_extra={
                "parameters": [{**parameter, "description": description}],
                "responses": {"200": _PAGE_ANSWER},
            },
            tags=["labels"],
        )
        app.add_api_route(path, handler, methods=["HEAD"], include_in_schema=False)
        app.add_api_route(path, resolver.options, methods=["OPTIONS"], include_in_schema=False)


def add_compressed(app: FastAPI) -> None:
    """The compressed links, behind every other route: any one-segment path no other route
    answers is tried as one (a path that is not a compressed link stays a 404)."""
    app.add_api_route(
        "/{data}",
        resolve_compressed,
        methods=["GET"],
        summary="Resolve a compressed GS1 Digital Link, in place (no redirect)",
        tags=["labels"],
        openapi_extra={
            "parameters": [
                {
                    "name": "data",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "The compressed link: GS1 DL compression, base64url",
                }
            ],
            "responses": {"200": _PAGE_ANSWER},
        },
    )
    app.add_api_route("/{data}", resolve_compressed, methods=["HEAD"], include_in_schema=False)
    app.add_api_route("/{data}", resolver.options, methods=["OPTIONS"], include_in_schema=False)


@_page_route("/l/{code}", "Resolve a label's short link", "code", "The serial, or the printed code")
async def resolve_short(request: Request) -> Response:
    code: str = request.path_params["code"]
    try:
        serial = parse_canonical(code).canonical
    except SerialError:
        try:  # the short code printed under the QR, typed in by hand
            serial = parse_human(code).canonical
        except SerialError as exc:
            return await _refused(request, exc)
    return await _answer(request, Target(serial=serial), _own(request, "l", serial))


@_page_route(
    "/01/{rest:path}",
    "Resolve a GS1 Digital Link printed on a label",
    "rest",
    "The rest of the link: GTIN, then /10/LOT/21/SERIAL",
)
async def resolve_digital_link(request: Request) -> Response:
    scope = request.scope
    try:
        # The path as it arrived, still percent-encoded: a lot may hold '/' or '%'.
        link = parse_raw_digital_link(
            scope["scheme"],
            request.headers.get("host", "localhost"),
            scope.get("raw_path") or scope["path"].encode(),
            scope.get("query_string", b""),
        )
    except DigitalLinkError as exc:
        return await _refused(request, exc)
    return await _resolve(request, link)


async def resolve_compressed(request: Request) -> Response:
    """A compressed Digital Link, answered as its uncompressed form is (GS1: not redirected
    on the same resolver), with that form in the Link header as owl:sameAs."""
    data: str = request.path_params["data"]
    root = request.app.state.settings.public_url.rstrip("/")
    try:
        uncompressed = decompress_digital_link(f"{root}/{data}")
        link = parse_digital_link(uncompressed)
    except DigitalLinkError:
        # Most such paths are simply not ours: answered as any unknown path is.
        nothing = NotFound(f"nothing at {request.url.path}; the API is described at /docs")
        return await _refused(request, nothing)
    return await _resolve(request, link, uncompressed)


@_page_route("/b/{batch_id}", "A batch's page, with no label", "batch_id", "The batch's id")
async def batch_page(request: Request) -> Response:
    batch_id: str = request.path_params["batch_id"]
    return await _answer(request, Target(batch_id=batch_id), _own(request, "b", batch_id))


async def _resolve(request: Request, link: DigitalLink, same_as: str | None = None) -> Response:
    if link.primary_key != "01":
        return await _refused(request, BadLink("only GTIN (01) links are resolved here"))
    root = request.app.state.settings.public_url.rstrip("/")
    address = resolver.Address(levels_of(root, link), same_as)
    return await _answer(request, Target(serial=link.serial, gtin=link.gtin, lot=link.lot), address)


def _own(request: Request, prefix: str, value: str) -> resolver.Address:
    """The address of one of the service's own links: one level, its canonical URI."""
    root = request.app.state.settings.public_url.rstrip("/")
    return resolver.Address([Level(prefix, f"{root}/{prefix}/{quote(value, safe='')}")])


async def _refused(request: Request, error: ServiceError) -> Response:
    await _refuse_bad_token(request)
    if wants_html(request):
        return resolver.annotate(error_page(request, error.status, error), None)
    raise error


async def _refuse_bad_token(request: Request) -> None:
    """As on every other route: a bad or revoked token is refused, not taken as anonymous."""
    if "authorization" in request.headers:
        await get_principal(request, request.app.state.service)


def _page_wanted(request: Request) -> bool:
    if not wants_html(request):
        return False
    return not request.scope.get("query_string") or "linkType" not in request.query_params


async def _answer(request: Request, target: Target, address: resolver.Address) -> Response:
    """The page, or the resolver's answer for a program, with the resolver's headers."""
    await _refuse_bad_token(request)
    if not _page_wanted(request):
        return await run_in_threadpool(resolver.answer, request, target, address)
    return resolver.annotate(await _page(request, target), address)


async def _page(request: Request, target: Target) -> Response:
    """A cached page when there is one (no database, no thread), else one built afresh."""
    cache: ScanPages = request.app.state.pages
    generation = cache.generation()
    if generation is None:
        generation = await run_in_threadpool(cache.read_generation)
    signed = "s" in request.query_params  # an offline signature: checked on every scan
    if not signed and request.method in ("GET", "HEAD"):
        key = _key(cache, target, language(request))
        page = _kept(request, target, key, generation)
        if page is not None:
            check = cache.serial_check(target.serial) if target.serial else None
            if target.serial is None or check is not None:
                copied = await scanning.copied(request, target.serial)
                return _fill(request, page, target, check, copied, None)
        if target.serial is not None and (page is not None or key is None):
            # A serial this process has not checked yet: its batch's page is usually cached
            # already, so only the serial's part is read (a full build costs ten times more).
            filled = await run_in_threadpool(_serial_only, request, target, generation)
            if filled is not None:
                return filled
    return await run_in_threadpool(_build, request, target, generation)


def _key(cache: ScanPages, target: Target, lang: str) -> Any:
    batch = target.batch_id or (cache.batch_of(target.serial) if target.serial else None)
    if target.serial is not None and batch is None:
        return None  # not seen by this process yet: built (and remembered) the long way
    return (batch, target.serial is not None, target.gtin, target.lot, lang, _today())


def _kept(request: Request, target: Target, key: Any, generation: Generation) -> Page | None:
    """The kept page to serve, if any; one due for a newer checkpoint is renewed after."""
    cache: ScanPages = request.app.state.pages
    page = cache.page(key) if key is not None else None
    if page is None:
        return None
    claim = cache.claim(key, page, generation)
    if claim is Claim.BUILD:
        return None
    if claim is Claim.RENEW:
        cache.renew(key, lambda: _renew(request, target, key))
    return page


def _today() -> date:
    return ocop.today_in_vietnam_cached()


def _serial_only(request: Request, target: Target, generation: Generation) -> Response | None:
    """A cached page filled for a serial not seen before: its batch and check read alone;
    None when the page is not cached for it (then the page is built)."""
    cache: ScanPages = request.app.state.pages
    serial = target.serial
    assert serial is not None
    with request.app.state.public.connection() as conn:  # one snapshot: see public_reads
        batch_id = cache.batch_of(serial) or batch_of_serial(conn, serial)
        if batch_id is None:
            return None  # unknown: the build answers with its 404 page
        cache.remember(serial, batch_id)
        page = _kept(request, target, _key(cache, target, language(request)), generation)
        if page is None:
            return None
        try:
            check = serial_check(conn, request.app.state.evidence, serial, batch_id)
        except NotFound as exc:  # voided: its batch's page is cached, the code is not valid
            return error_page(request, 404, exc, serial)
    _keep_check(cache, serial, check, generation)
    copied = scanning.copied_now(request, serial)  # a known serial: counted
    return _fill(request, page, target, check, copied, None)


def _keep_check(cache: ScanPages, serial: str, check: SerialCheck, generation: Generation) -> None:
    # A serial's check changes only when its label set is voided.
    cache.keep_serial_check(
        serial, check, frozenset({f"label_set:{check.set_index}"}), generation[0]
    )


def _build(request: Request, target: Target, generation: Generation) -> Response:
    """The page from the database, kept until an entry about what it shows arrives."""
    cache: ScanPages = request.app.state.pages
    lang = language(request)
    evidence: Evidence = request.app.state.evidence
    key = _key(cache, target, lang)
    kept = cache.page(key) if key is not None else None  # one past its last moment, say
    with request.app.state.public.connection() as conn:  # one snapshot: see public_reads
        try:
            product, batch = rows_for(conn, target)
            # Before the page: a serial of a voided set is not registered (never kept).
            check = (
                serial_check(conn, evidence, target.serial, batch.id)
                if target.serial is not None and batch is not None
                else None
            )
        except NotFound as exc:
            return error_page(request, 404, exc, target.serial)
        scan, read_at = _facts(request, conn, kept, lambda: (product, batch))
        signature = scanning.signature(request, conn, product.producer_id)
    copied = scanning.copied_now(request, target.serial)  # a known serial: counted
    page = _render(request, lang, scan, target, signature, generation, read_at)
    if target.serial is not None and batch is not None:
        cache.remember(target.serial, batch.id)
        if check is not None:
            _keep_check(cache, target.serial, check, generation)
    key = _key(cache, target, lang)
    if key is not None and signature is None:
        # The snapshot holds at least the generation's entries: vetted against those since.
        cache.keep(key, page, generation[0])
    return _fill(request, page, target, check, copied, signature)


def _renew(request: Request, target: Target, key: Any) -> None:
    """A kept page renewed for a newer checkpoint, after the scan that found it due was
    served it as it was (in the background: counts no scan, fills nothing)."""
    cache: ScanPages = request.app.state.pages
    try:
        # The generation first: a page still kept after it was read is true of its entries.
        generation = cache.generation() or cache.read_generation()
        kept = cache.page(key)
        if kept is None:
            return  # dropped by an entry about it meanwhile: its next scan builds it
        with request.app.state.public.connection() as conn:  # one snapshot: see public_reads
            scan, read_at = _facts(request, conn, kept, lambda: rows_for(conn, target))
        page = _render(request, language(request), scan, target, None, generation, read_at)
    except Exception:  # kept as it was; a later scan tries again
        log.exception("renewing the scan page %r failed", key)
        return
    cache.keep(key, page, generation[0])


def _facts(
    request: Request, conn: Connection, kept: Page | None, rows: Callable[[], tuple[Any, Any]]
) -> tuple[ScanView, float]:
    """What a page shows, and when its rows were read: a kept page's facts proven again
    against the latest checkpoint (what it shows changes only with an entry about its
    subjects, which drops it), or read afresh from `rows` (none kept, or every
    `REREAD_SECONDS`: rows changed without an entry show then)."""
    cache: ScanPages = request.app.state.pages
    evidence: Evidence = request.app.state.evidence
    if kept is not None and kept.view is not None and not cache.rereads(kept):
        return reproved(conn, evidence, kept.view), kept.read_at
    read_at = time.monotonic()
    product, batch = rows()
    return view(conn, evidence, product, batch, _today()), read_at


def _render(
    request: Request,
    lang: str,
    scan: ScanView,
    target: Target,
    signature: str | None,
    generation: Generation,
    read_at: float,
) -> Page:
    product, producer, batch, rating = scan.product, scan.producer, scan.batch, scan.rating
    certified, current = producer["address_certified"], producer["address_current"]
    before = ocop.address_before_reform(
        ocop.CertifiedAddress(**{**certified, "district": certified["district"] or None}),
        ocop.CurrentAddress(**{k: current[k] for k in ("province", "commune", "line")}),
    )
    name = product["name_vi"] if lang == "vi" or not product["name_en"] else product["name_en"]
    current_rating = rating is not None and rating["status"] in ("valid", "expiring")
    summary = checks_summary(lang, scan.checks, scan.checkpoint)
    rendered = render(
        request,
        lang,
        "site/scan.html",
        product=product,
        product_name=name,
        producer=producer,
        current_address=", ".join(
            p for p in (current["line"], current["commune"], current["province"]) if p
        ),
        before_reform=before,
        reform_day=ocop.REFORM_DATE.isoformat(),
        batch=batch,
        unit=_unit(lang, batch["unit"]) if batch else "",
        rating=rating,
        rating_current=current_rating,
        valid_until=(date.fromisoformat(rating["expires_on"]) - timedelta(days=1)).isoformat()
        if rating
        else "",
        events=scan.events,
        inspections=scan.inspections,
        checks=scan.checks,
        checkpoint=scan.checkpoint,
        summary=summary,
        mismatch=scan.mismatch,
        mismatch_words=[mismatch_words(lang, m) for m in scan.mismatch],
        serial_page=target.serial is not None,
        report={"values": {"note": "", "where_bought": ""}, "errors": {}},
        label_signature=signature,
        demo=product["gtin"].startswith("DEMO")
        or "DEMO" in (rating or {}).get("certificate_no", ""),
    )
    reason = (scan.recall or {}).get("reason") or (rating or {}).get("revoked_reason") or ""
    # A GTIN or lot link shows whichever batch matches: any batch registration may change it.
    product_link = target.serial is None and target.batch_id is None
    subjects = scan.subjects | ({"kind:batch.registered"} if product_link else set())
    renew_at, stale_at = request.app.state.pages.deadlines()
    return Page(
        rendered,
        base_findings(scan),
        reason,
        producer["name"],
        frozenset(subjects),
        (generation[1], generation[2]),
        renew_at,
        stale_at,
        scan,
        read_at,
    )


def checks_summary(lang: str, checks: list[Check], checkpoint: dict[str, Any] | None) -> str:
    """The evidence box's one line: how many facts were checked, against what, and who
    confirmed that checkpoint (the public pages say it the same way)."""
    checked = sum(1 for c in checks if c.ok)
    summary = i18n.t(lang, "check.summary", checked=checked, total=len(checks))
    if checkpoint and checkpoint["at"]:
        summary += i18n.t(lang, "check.confirmed", at=i18n.moment(checkpoint["at"], lang))
    if checkpoint and checkpoint["witnessed"]:
        names = checkpoint["confirmed_by"]
        summary += (
            i18n.t(lang, "check.witnessed", names=", ".join(names))
            if names
            else i18n.t(lang, "check.not_witnessed")
        )
    return summary


def _unit(lang: str, unit: str) -> str:
    key = f"unit.{unit}"
    return i18n.t(lang, key) if key in i18n.catalogue(lang) else unit


def mismatch_words(lang: str, item: str) -> str:
    part, _, problem = item.partition(".")
    what = i18n.t(lang, f"part.{part}")
    key = f"problem.{problem}"
    detail = (
        i18n.t(lang, key)
        if key in i18n.catalogue(lang)
        else i18n.t(lang, "problem.field", field=problem)
    )
    return f"{what}: {detail}"


def _fill(
    request: Request,
    page: Page,
    target: Target,
    check: SerialCheck | None,
    copied: dict[str, Any] | None,
    signature: str | None,
) -> Response:
    counted = (copied["networks"], copied["days"], bool(copied["copied"])) if copied else None
    lang = language(request)
    fill = _holes(lang, page.base, page.producer, page.reason, check, counted, signature)
    return finish(request, page.rendered, target.serial, fill)


@lru_cache(maxsize=16_384)  # a serial's scans differ only when its network count moves
def _holes(
    lang: str,
    base: Findings,
    producer: str,
    reason: str,
    check: SerialCheck | None,
    counted: tuple[int, int, bool] | None,
    signature: str | None,
) -> dict[str, bytes]:
    """The verdict box and the serial's proof line of one scan (never mutated: shared)."""
    verdict = decide(per_scan(base, check, bool(counted and counted[2]), signature))
    params: dict[str, str] = {"producer": producer}
    if counted is not None:
        params.update(networks=i18n.number(counted[0], lang), days=str(counted[1]))
    shown = reason if verdict in _REASONED else ""
    box = verdict_box(lang, verdict, tuple(sorted(params.items())), shown)
    return {"verdict": box, "serial_proof": _serial_line(lang, check)}


_REASONED = (Verdict.RECALLED, Verdict.RECALLED_UPSTREAM, Verdict.RATING_REVOKED)


def _serial_line(lang: str, check: SerialCheck | None) -> bytes:
    if check is None:
        return b""
    if check.proven:
        text = i18n.t(
            lang,
            "check.serial_ok",
            index=check.set_index,
            hashes=check.path_length,
            size=i18n.number(check.set_size, lang),
        )
        state = "verified"
    else:
        text, state = i18n.t(lang, "check.serial_bad", index=check.set_index), "failed"
    return (
        f'<li data-entry="serial" data-index="{check.set_index}" data-proof="{state}">'
        f"{_escape(i18n.t(lang, 'part.labels'))}: {_escape(text)}</li>"
    ).encode()


def _escape(text: str) -> str:
    return str(escape(text))
