"""Changes to producers and products, each a signed update statement, and their history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from ledger.store import Receipt
from ocop_trace.accounts import Principal
from ocop_trace.api import examples
from ocop_trace.api.deps import (
    ConnDep,
    Created,
    Items,
    PrincipalDep,
    ServiceDep,
    cached_json,
    created,
)
from ocop_trace.api.examples import body
from ocop_trace.errors import NotFound
from ocop_trace.models import PRODUCER, PRODUCT, HistoryItem, ProducerChanges, ProductChanges
from ocop_trace.reads import history
from ocop_trace.service import TraceService

router = APIRouter(prefix="/api/v1", tags=["catalog"])
_TABLES = {"producer": PRODUCER, "product": PRODUCT}


@router.post(
    "/producers/{producer_id}/updates",
    status_code=201,
    summary="Change a producer's name, addresses, contact, description or photo (council)",
    response_model=Created,
)
def update_producer(
    producer_id: str,
    data: Annotated[ProducerChanges, body(examples.PRODUCER_CHANGES)],
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return _update(request, service, principal, data, service.update_producer, producer_id)


@router.post(
    "/products/{product_id}/updates",
    status_code=201,
    summary="Change a product's names, description, photo or GTIN (council)",
    response_model=Created,
)
def update_product(
    product_id: str,
    data: Annotated[ProductChanges, body(examples.PRODUCT_CHANGES)],
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return _update(request, service, principal, data, service.update_product, product_id)


def _update(
    request: Request,
    service: TraceService,
    principal: Principal,
    data: Any,
    use_case: Callable[[Principal, str, Any], Receipt],
    subject_id: str,
) -> JSONResponse:
    payload = data.model_dump(exclude_none=True)
    return created(
        request, service, principal, payload, lambda: use_case(principal, subject_id, data)
    )


def _history(subject: str, subject_id: str, request: Request, conn: ConnDep) -> Response:
    table = _TABLES[subject]
    if conn.execute(select(table.c.id).where(table.c.id == subject_id)).first() is None:
        raise NotFound(f"no {subject} with id {subject_id!r}")
    items = [item.model_dump() for item in history(conn, subject, subject_id)]
    return cached_json(request, {"items": items})


@router.get(
    "/producers/{producer_id}/history",
    summary="A producer's changes, oldest first",
    response_model=Items[HistoryItem],
)
def producer_history(producer_id: str, request: Request, conn: ConnDep) -> Response:
    return _history("producer", producer_id, request, conn)


@router.get(
    "/products/{product_id}/history",
    summary="A product's changes, oldest first",
    response_model=Items[HistoryItem],
)
def product_history(product_id: str, request: Request, conn: ConnDep) -> Response:
    return _history("product", product_id, request, conn)
