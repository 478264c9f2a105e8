"""The scan URLs answered as a GS1-Conformant resolver: JSON facts, a linkset, redirects.

A program (no `text/html` first in Accept) gets what the page shows as JSON, with the
same `verdict`; `?linkType=linkset` (or the older `all`) or `Accept: application/linkset+json`
gives the RFC 9264 linkset of every level of the link (trace/links.py); another `linkType`
redirects to that link, passing the query on, or answers 404 when there is none.
docs/digital-link.md says what is covered of the GS1-Conformant Resolver standard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ocop_trace import links, ocop
from ocop_trace.errors import NotFound
from ocop_trace.link_types import GS1_VOCABULARY, normalise_link_type
from ocop_trace.scan_facts import (
    Target,
    base_findings,
    per_scan,
    refuse_voided_serial,
    rows_for,
    serial_check,
    view,
)
from ocop_trace.site import scanning
from ocop_trace.site.pages import language
from ocop_trace.verdict import decide

router = APIRouter(tags=["labels"])
LINKSET = "application/linkset+json"
# What an answer at a scanned link depends on besides the link: for caches.
VARY = "Accept, Accept-Language"
_METHODS = "GET, HEAD, OPTIONS"
_CONTEXT = (
    f'<{links.LINKSET_CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; '
    'type="application/ld+json"'
)


@dataclass(frozen=True, slots=True)
class Address:
    """Where a scan landed: the canonical URI of each level of the link, and the compressed
    link's uncompressed form when it came compressed."""

    levels: list[links.Level]
    same_as: str | None = None

    @property
    def anchor(self) -> str:
        return self.levels[-1].anchor


@router.head("/.well-known/gs1resolver", include_in_schema=False)
@router.get(
    "/.well-known/gs1resolver",
    summary="What this GS1 Digital Link resolver serves (GS1's resolver description file)",
    responses={
        200: {
            "description": "GS1's resolver description file",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def well_known(request: Request) -> Response:
    base = request.app.state.settings.public_url.rstrip("/")
    description = {
        "name": "OCOP trace",
        "resolverRoot": base,
        "supportedPrimaryKeys": ["01"],
        "supportedLinkType": [{"namespace": GS1_VOCABULARY, "prefix": "gs1:"}],
        "linkTypeDefaultCanBeLinkset": False,
        "jsonLdContextLocation": links.LINKSET_CONTEXT,
    }
    answer = JSONResponse(description)
    if request.method == "HEAD":
        return Response(status_code=200, headers=dict(answer.headers))
    return answer


@router.options("/.well-known/gs1resolver", include_in_schema=False)
async def options() -> Response:
    return Response(
        status_code=204,
        headers={
            "Allow": _METHODS,
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": _METHODS,
            "Access-Control-Allow-Headers": "Accept, Accept-Language",
            "Access-Control-Max-Age": "86400",
        },
    )


def annotate(response: Response, address: Address | None) -> Response:
    """Vary on every answer at a scanned link; the linkset's Link header on each found."""
    response.headers.setdefault("Vary", VARY)
    if address is not None and response.status_code < 400:
        response.headers.setdefault("Link", link_header(address))
    return response


def link_header(address: Address, *, context: bool = False) -> str:
    parts = [f'<{address.anchor}?linkType=linkset>; rel="linkset"; type="{LINKSET}"']
    if context:
        parts.append(_CONTEXT)
    if address.same_as:
        parts.append(f'<{address.same_as}>; rel="owl:sameAs"')
    return ", ".join(parts)


def facts(request: Request, target: Target) -> dict[str, Any]:
    """What the scan page shows, as data, with its verdict (runs in a worker thread)."""
    state = request.app.state
    with state.public.connection() as conn:  # one snapshot: see public_reads
        product, batch = rows_for(conn, target)
        scan = view(conn, state.evidence, product, batch, ocop.today_in_vietnam_cached())
        check = (
            serial_check(conn, state.evidence, target.serial, batch.id) if target.serial else None
        )
        signature = scanning.signature(request, conn, product.producer_id)
    copied = scanning.copied_now(request, target.serial)  # a known serial: counted
    verdict = decide(
        per_scan(base_findings(scan), check, bool(copied and copied["copied"]), signature)
    )
    return {
        "verdict": str(verdict),
        "product": scan.product,
        "producer": scan.producer,
        "batch": scan.batch,
        "rating": scan.rating,
        "recall": scan.recall,
        "events": scan.events,
        "inspections": scan.inspections,
        "checks": {
            "checked": sum(1 for c in scan.checks if c.ok),
            "total": len(scan.checks),
            "mismatch": scan.mismatch,
            "checkpoint": scan.checkpoint,
            "entries": [
                {
                    "part": c.part,
                    "index": c.index,
                    "verified": c.proof.verified,
                    "problems": list(c.problems),
                }
                for c in scan.checks
            ],
        },
        "serial": None
        if check is None
        else {
            "serial": target.serial,
            "label_set": check.set_index,
            "proven": check.proven,
            "problems": list(check.problems),
        },
        "scans": copied,
        "label_signature": signature,
    }


def answer(request: Request, target: Target, address: Address) -> Response:
    """The JSON facts, the linkset, or a redirect to the link type asked for (runs in a
    worker thread). Only the facts count as a scan: a linkset or a redirect reads the
    product and batch and nothing else."""
    link_type = request.query_params.get("linkType")
    wanted = link_type in ("linkset", "all") or (
        link_type is None and LINKSET in request.headers.get("accept", "")
    )
    if not wanted and link_type is None:
        found = facts(request, target)
        return annotate(JSONResponse(found), address)
    root = request.app.state.settings.public_url.rstrip("/")
    subject, lang = _subject(request, target), language(request)
    if wanted:
        body = links.linkset(root, address.levels, subject, lang)
        headers = {"Link": link_header(address, context=True), "Vary": VARY}
        return JSONResponse(body, media_type=LINKSET, headers=headers)
    term = _term(link_type or "")
    offered = links.links_of_type(root, address.levels, subject, lang, term) if term else []
    if not offered:
        names = ", ".join(f"gs1:{t}" for t in links.TYPES)
        raise NotFound(
            f"no link of type {link_type!r} for this code; try linkType=linkset, or {names}",
            field="linkType",
        )
    accept = request.headers.get("accept", "")
    chosen = next((x for x in offered if x.get("type", "") in accept), offered[0])
    target_url = _with_query(chosen["href"], _passed_on(request))
    return annotate(RedirectResponse(target_url, status_code=307), address)


def _subject(request: Request, target: Target) -> links.Subject:
    with request.app.state.public.connection() as conn:  # a public read: see public_reads
        product, batch = rows_for(conn, target)
        if target.serial is not None:  # a voided code offers no links either
            refuse_voided_serial(conn, request.app.state.evidence, target.serial)
    return links.Subject(
        product.id,
        product.name_vi,
        product.name_en,
        batch.id if batch is not None else None,
        batch.lot if batch is not None else None,
        target.serial,
    )


def _term(link_type: str) -> str | None:
    """The GS1 term of a linkType (pip for gs1:pip or https://gs1.org/voc/pip), else None."""
    try:
        curie = normalise_link_type(link_type)
    except ValueError:
        return None
    return curie[4:] if curie.startswith("gs1:") else None


def _passed_on(request: Request) -> str:
    """The request's query as it came, without linkType: passed on when redirecting."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    kept = [p for p in raw.split("&") if p and unquote_plus(p.partition("=")[0]) != "linkType"]
    return "&".join(kept)


def _with_query(href: str, query: str) -> str:
    if not query:
        return href
    return f"{href}{'&' if '?' in href else '?'}{query}"
