"""EPCIS 2.0 out (a batch's or a product's events, JSON-LD) and in (capture)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ocop_trace.api.deps import ConnDep, PrincipalDep, ServiceDep, cached_json
from ocop_trace.api.examples import EPCIS_CAPTURE
from ocop_trace.epcis.capture import MAX_DOCUMENT_BYTES, capture
from ocop_trace.epcis.export import Exporter, batch_entries, document, product_entries
from ocop_trace.errors import InvalidInput, PayloadTooLarge

router = APIRouter(prefix="/api/v1", tags=["epcis"])
JSON_LD = "application/ld+json"
_DOCUMENT = {
    "200": {
        "content": {JSON_LD: {"schema": {"type": "object", "title": "EPCISDocument"}}},
        "description": "An EPCIS 2.0 document (JSON-LD, the standard's context)",
    }
}
_CAPTURED = {
    "201": {
        "content": {"application/json": {"schema": {"type": "object", "title": "Captured"}}},
        "description": "How many events became statements, and their ledger indices",
    }
}


def _answer(request: Request, payload: dict[str, Any]) -> Response:
    answer = cached_json(request, payload)
    answer.headers["content-type"] = JSON_LD
    return answer


@router.get(
    "/batches/{batch_id}/epcis",
    summary="A batch's events as an EPCIS 2.0 document",
    responses=_DOCUMENT,  # type: ignore[arg-type]
)
def batch_epcis(batch_id: str, request: Request, service: ServiceDep, conn: ConnDep) -> Response:
    exporter = Exporter(conn, request.app.state.settings.public_url)
    return _answer(request, document(exporter, service.store, batch_entries(conn, batch_id)))


@router.get(
    "/products/{product_id}/epcis",
    summary="The events of all a product's batches as an EPCIS 2.0 document",
    responses=_DOCUMENT,  # type: ignore[arg-type]
)
def product_epcis(
    product_id: str, request: Request, service: ServiceDep, conn: ConnDep
) -> Response:
    exporter = Exporter(conn, request.app.state.settings.public_url)
    return _answer(request, document(exporter, service.store, product_entries(conn, product_id)))


@router.post(
    "/epcis/capture",
    status_code=201,
    summary="Capture an EPCIS 2.0 document: each event a statement signed with your key",
    responses=_CAPTURED,  # type: ignore[arg-type]
    openapi_extra={
        "requestBody": {
            "content": {JSON_LD: {"schema": {"type": "object"}, "example": EPCIS_CAPTURE}},
            "required": True,
        }
    },
)
async def capture_document(
    request: Request, service: ServiceDep, principal: PrincipalDep
) -> JSONResponse:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_DOCUMENT_BYTES:
            raise PayloadTooLarge(f"an EPCIS document may be at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidInput("the body is not JSON: send an EPCIS 2.0 JSON-LD document") from None
    public_url = request.app.state.settings.public_url
    result = await run_in_threadpool(capture, service, principal, parsed, public_url)
    return JSONResponse(result, status_code=201)
