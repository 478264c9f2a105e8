"""Producers, products and OCOP ratings: public reads, council writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from ocop_trace import ocop
from ocop_trace.api.deps import (
    ConnDep,
    IdPath,
    PageDep,
    PrincipalDep,
    ServiceDep,
    cached_json,
    created,
    page_of,
)
from ocop_trace.errors import NotFound
from ocop_trace.models import (
    PRODUCER,
    PRODUCT,
    SLUG,
    ProducerCreate,
    ProducerPublic,
    ProductCreate,
    ProductPublic,
    RatingCreate,
    RatingRevoke,
)
from ocop_trace.reads import producer_public, ratings_of

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.get("/producers", summary="All producers, a page at a time")
def list_producers(request: Request, conn: ConnDep, page: PageDep) -> Response:
    listing = page_of(conn, PRODUCER, page, item=lambda r: producer_public(r).model_dump())
    return cached_json(request, listing)


@router.get("/producers/{producer_id}", response_model=ProducerPublic)
def get_producer(producer_id: str, request: Request, conn: ConnDep) -> Response:
    row = conn.execute(select(PRODUCER).where(PRODUCER.c.id == producer_id)).first()
    if row is None:
        raise NotFound(f"no producer with id {producer_id!r}")
    return cached_json(request, producer_public(row).model_dump())


@router.post("/producers", status_code=201, summary="Register a producer (council)")
def create_producer(
    request: Request, data: ProducerCreate, service: ServiceDep, principal: PrincipalDep
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.register_producer(principal, data),
        data.id,
    )


@router.post(
    "/producers/{producer_id}/keys",
    status_code=201,
    summary="Register a public key the producer holds itself (council)",
)
def register_producer_key(
    producer_id: str,
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    key_id: Annotated[str, Body(pattern=r"^[0-9a-f]{64}$", description="Public key, hex")],
    name: Annotated[str, Body(pattern=r"^[!-*,-~]{1,64}$")],
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        {"key_id": key_id, "name": name},
        lambda: service.register_producer_key(principal, producer_id, key_id, name),
    )


@router.get("/products", summary="All products, optionally of one producer")
def list_products(
    request: Request,
    conn: ConnDep,
    page: PageDep,
    producer_id: Annotated[str | None, Query(pattern=SLUG)] = None,
) -> Response:
    where = [PRODUCT.c.producer_id == producer_id] if producer_id else []
    listing = page_of(
        conn,
        PRODUCT,
        page,
        *where,
        item=lambda r: ProductPublic.model_validate(dict(r._mapping)).model_dump(),
    )
    return cached_json(request, listing)


@router.get("/products/{product_id}", response_model=ProductPublic)
def get_product(product_id: str, request: Request, conn: ConnDep) -> Response:
    row = conn.execute(select(PRODUCT).where(PRODUCT.c.id == product_id)).first()
    if row is None:
        raise NotFound(f"no product with id {product_id!r}")
    return cached_json(request, ProductPublic.model_validate(dict(row._mapping)).model_dump())


@router.post("/products", status_code=201, summary="Register a product (council)")
def create_product(
    request: Request, data: ProductCreate, service: ServiceDep, principal: PrincipalDep
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.register_product(principal, data),
        data.id,
    )


@router.get("/products/{product_id}/ratings", summary="A product's OCOP ratings, newest first")
def product_ratings(product_id: str, request: Request, conn: ConnDep) -> Response:
    ratings = ratings_of(conn, product_id, ocop.today_in_vietnam())
    return cached_json(request, {"items": [r.model_dump() for r in ratings]})


@router.post("/ratings", status_code=201, summary="Record an OCOP rating (council)")
def create_rating(
    request: Request, data: RatingCreate, service: ServiceDep, principal: PrincipalDep
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.record_rating(principal, data),
    )


@router.post("/ratings/{rating_id}/revoke", status_code=201, summary="Revoke a rating (council)")
def revoke_rating(
    rating_id: IdPath,
    data: RatingRevoke,
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.revoke_rating(principal, rating_id, data.reason),
    )
