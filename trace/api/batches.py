"""Batches with their lineage, events and recalls; inspections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from ocop_trace.api import examples
from ocop_trace.api.deps import (
    ConnDep,
    Created,
    Items,
    Page,
    PageDep,
    PrincipalDep,
    ServiceDep,
    SlugPath,
    cached_json,
    created,
    page_of,
)
from ocop_trace.api.examples import body
from ocop_trace.models import (
    BATCH,
    EVENT,
    INSPECTION,
    SLUG,
    BatchCreate,
    BatchPublic,
    EventCreate,
    EventPublic,
    InspectionCreate,
    RecallCreate,
)
from ocop_trace.reads import batch_public, batch_row
from ocop_trace.service import require_role

router = APIRouter(prefix="/api/v1", tags=["batches"])


@router.get(
    "/batches",
    summary="Batches, optionally of one product or producer",
    response_model=Page[BatchPublic],
)
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
def get_batch(batch_id: SlugPath, request: Request, conn: ConnDep) -> Response:
    return cached_json(request, batch_public(conn, batch_row(conn, batch_id)).model_dump())


@router.get(
    "/batches/{batch_id}/events",
    summary="A batch's events in time order",
    response_model=Items[EventPublic],
)
def batch_events(batch_id: SlugPath, request: Request, conn: ConnDep) -> Response:
    batch_row(conn, batch_id)
    rows = conn.execute(
        select(EVENT).where(EVENT.c.batch_id == batch_id).order_by(EVENT.c.at, EVENT.c.id)
    ).all()
    items = [EventPublic.model_validate(dict(r._mapping)).model_dump() for r in rows]
    return cached_json(request, {"items": items})


@router.post(
    "/batches", status_code=201, summary="Register a batch (its producer)", response_model=Created
)
def create_batch(
    request: Request,
    data: Annotated[BatchCreate, body(examples.BATCH)],
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.register_batch(principal, data),
        data.id,
    )


@router.post(
    "/batches/{batch_id}/events",
    status_code=201,
    summary="Record harvesting, processing, packing, shipping... (its producer)",
    response_model=Created,
)
def create_event(
    batch_id: SlugPath,
    data: Annotated[EventCreate, body(examples.EVENT)],
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.add_event(principal, batch_id, data),
    )


@router.post(
    "/batches/{batch_id}/recall",
    status_code=201,
    summary="Recall a batch and everything made from it (its producer)",
    response_model=Created,
)
def recall_batch(
    batch_id: SlugPath,
    data: Annotated[RecallCreate, body(examples.RECALL)],
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.recall(principal, batch_id, data.reason),
    )


@router.post(
    "/inspections",
    status_code=201,
    summary="Record an inspection (inspector)",
    response_model=Created,
)
def create_inspection(
    data: Annotated[InspectionCreate, body(examples.INSPECTION)],
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.record_inspection(principal, data),
    )


@router.get(
    "/inspections",
    summary="Inspections (inspectors and the council)",
    response_model=Page[InspectionCreate],
)
def list_inspections(
    conn: ConnDep,
    principal: PrincipalDep,
    page: PageDep,
    batch_id: Annotated[str | None, Query(pattern=SLUG)] = None,
) -> dict[str, Any]:
    require_role(principal, "inspector", "council")
    where = [INSPECTION.c.batch_id == batch_id] if batch_id else []
    return page_of(conn, INSPECTION, page, *where)
