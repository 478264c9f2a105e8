"""The scan URLs answered as a GS1 Digital Link resolver: JSON facts, a linkset, redirects.

A program (no `text/html` first in Accept) gets what the page shows as JSON, with the
same `verdict`; `?linkType=linkset` or `Accept: application/linkset+json` gives an RFC 9264
linkset; another `linkType` redirects to that link. docs/digital-link.md says what is
covered of the GS1 resolver standard.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from ocop_trace import ocop
from ocop_trace.errors import NotFound
from ocop_trace.scan_facts import Target, base_findings, per_scan, rows_for, serial_check, view
from ocop_trace.site import scanning
from ocop_trace.verdict import decide

router = APIRouter(tags=["labels"])
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


async def options() -> Response:
    return Response(
        status_code=204,
        headers={
            "Allow": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        },
    )


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


def answer(request: Request, target: Target) -> Response:
    """The JSON facts, a linkset, or a redirect to the link type asked for."""
    found = facts(request, target)
    url = str(request.url.remove_query_params("linkType"))
    links = _links(request.app.state.settings.public_url, found)
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
        target_url = links.get(LINK_TYPES.get(link_type, ""))
        if target_url is None:
            raise NotFound(
                f"no link of type {link_type!r} here; try linkset or {', '.join(LINK_TYPES)}",
                field="linkType",
            )
        return RedirectResponse(target_url, status_code=307, headers={"Link": link_header})
    return JSONResponse(found, headers={"Link": link_header})


def _links(base: str, found: dict[str, Any]) -> dict[str, str]:
    root = base.rstrip("/")
    product = quote(found["product"]["id"])
    links = {
        "pip": f"{root}/api/v1/products/{product}",
        "certificationInfo": f"{root}/api/v1/products/{product}/ratings",
    }
    if found["batch"] is not None:
        links["traceability"] = f"{root}/api/v1/batches/{quote(found['batch']['id'])}/events"
    return links
