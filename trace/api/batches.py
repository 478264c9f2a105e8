"""Batches with their lineage, events and recalls; inspections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection, select

from ocop_trace.api.deps import (
    ConnDep,
    PageDep,
    PrincipalDep,
    ServiceDep,
    cached_json,
    created,
    page_of,
)
from ocop_trace.errors import NotFound
from ocop_trace.models import (
    SLUG,
    BatchCreate,
    BatchPublic,
    EventCreate,
    EventPublic,
    InspectionCreate,
    RecallCreate,
)
from ocop_trace.projection import BATCH, BATCH_INPUT, EVENT, INSPECTION, PRODUCT
from ocop_trace.service import require_role

router = APIRouter(prefix="/api/v1", tags=["batches"])


def batch_public(conn: Connection, row: Any) -> BatchPublic:
    inputs = (
        conn.execute(
            select(BATCH_INPUT.c.input_id)
            .where(BATCH_INPUT.c.batch_id == row.id)
            .order_by(BATCH_INPUT.c.input_id)
        )
        .scalars()
        .all()
    )
    outputs = (
        conn.execute(
            select(BATCH_INPUT.c.batch_id)
            .where(BATCH_INPUT.c.input_id == row.id)
            .order_by(BATCH_INPUT.c.batch_id)
        )
        .scalars()
        .all()
    )
    values = {k: v for k, v in row._mapping.items() if k in BatchPublic.model_fields}
    return BatchPublic(
        **values,
        inputs=list(inputs),
        outputs=list(outputs),
        recalled=row.recalled_index is not None,
    )


def _batch_row(conn: Connection, batch_id: str) -> Any:
    row = conn.execute(select(BATCH).where(BATCH.c.id == batch_id)).first()
    if row is None:
        raise NotFound(f"no batch with id {batch_id!r}")
    return row


@router.get("/batches", summary="Batches, optionally of one product or producer")
def list_batches(
    request: Request,
    conn: ConnDep,
    page: PageDep,
    product_id: Annotated[str | None, Query(pattern=SLUG)] = None,
    producer_id: Annotated[str | None, Query(pattern=SLUG)] = None,
) -> Response:
    where = []
    if product_id:
        where.append(BATCH.c.product_id == product_id)
    if producer_id:
        where.append(BATCH.c.producer_id == producer_id)
    listing = page_of(conn, BATCH, page, *where, item=lambda r: batch_public(conn, r).model_dump())
    return cached_json(request, listing)


@router.get("/batches/{batch_id}", response_model=BatchPublic)
def get_batch(batch_id: str, request: Request, conn: ConnDep) -> Response:
    return cached_json(request, batch_public(conn, _batch_row(conn, batch_id)).model_dump())


@router.get("/batches/{batch_id}/events", summary="A batch's events in time order")
def batch_events(batch_id: str, request: Request, conn: ConnDep) -> Response:
    _batch_row(conn, batch_id)
    rows = conn.execute(
        select(EVENT).where(EVENT.c.batch_id == batch_id).order_by(EVENT.c.at, EVENT.c.id)
    ).all()
    items = [EventPublic.model_validate(dict(r._mapping)).model_dump() for r in rows]
    return cached_json(request, {"items": items})


@router.post("/batches", status_code=201, summary="Register a batch (its producer)")
async def create_batch(
    request: Request, data: BatchCreate, service: ServiceDep, principal: PrincipalDep, conn: ConnDep
) -> JSONResponse:
    require_role(principal, "producer")
    product = conn.execute(
        select(PRODUCT.c.producer_id).where(PRODUCT.c.id == data.product_id)
    ).first()
    if product is None:
        raise NotFound(f"no product with id {data.product_id!r}", field="product_id")
    return await created(
        request,
        service,
        principal,
        lambda: service.register_batch(principal, data, product.producer_id),
        data.id,
    )


@router.post(
    "/batches/{batch_id}/events",
    status_code=201,
    summary="Record harvesting, processing, packing, shipping... (its producer)",
)
async def create_event(
    batch_id: str,
    data: EventCreate,
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    conn: ConnDep,
) -> JSONResponse:
    require_role(principal, "producer")
    batch = _batch_row(conn, batch_id)

    return await created(
        request,
        service,
        principal,
        lambda: service.add_event(principal, batch_id, batch.producer_id, data),
    )


@router.post(
    "/batches/{batch_id}/recall",
    status_code=201,
    summary="Recall a batch and everything made from it (its producer)",
)
async def recall_batch(
    batch_id: str,
    data: RecallCreate,
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    conn: ConnDep,
) -> JSONResponse:
    require_role(principal, "producer")
    batch = _batch_row(conn, batch_id)
    return await created(
        request,
        service,
        principal,
        lambda: service.recall(principal, batch_id, batch.producer_id, data.reason),
    )


@router.post("/inspections", status_code=201, summary="Record an inspection (inspector)")
async def create_inspection(
    data: InspectionCreate, request: Request, service: ServiceDep, principal: PrincipalDep
) -> JSONResponse:
    return await created(
        request, service, principal, lambda: service.record_inspection(principal, data)
    )


@router.get("/inspections", summary="Inspections (inspectors and the council)")
def list_inspections(
    conn: ConnDep,
    principal: PrincipalDep,
    page: PageDep,
    batch_id: Annotated[str | None, Query(pattern=SLUG)] = None,
) -> dict[str, Any]:
    require_role(principal, "inspector", "council")
    where = [INSPECTION.c.batch_id == batch_id] if batch_id else []
    return page_of(conn, INSPECTION, page, *where)
