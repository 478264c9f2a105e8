"""Producers, products and OCOP ratings: public reads, council writes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from ocop_trace import ocop, text
from ocop_trace.api import examples
from ocop_trace.api.deps import (
    ConnDep,
    Created,
    IdPath,
    Items,
    Page,
    PageDep,
    PrincipalDep,
    ServiceDep,
    SlugPath,
    cached_json,
    created,
    idempotent,
    page_of,
    receipt_json,
)
from ocop_trace.api.examples import body
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
    RatingPublic,
    RatingRevoke,
)
from ocop_trace.reads import producer_public, ratings_of

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.get(
    "/producers", summary="All producers, a page at a time", response_model=Page[ProducerPublic]
)
def list_producers(request: Request, conn: ConnDep, page: PageDep) -> Response:
    listing = page_of(conn, PRODUCER, page, item=lambda r: producer_public(r).model_dump())
    return cached_json(request, listing)


@router.get("/producers/{producer_id}", response_model=ProducerPublic)
def get_producer(producer_id: SlugPath, request: Request, conn: ConnDep) -> Response:
    row = conn.execute(select(PRODUCER).where(PRODUCER.c.id == producer_id)).first()
    if row is None:
        raise NotFound(f"no producer with id {producer_id!r}")
    return cached_json(request, producer_public(row).model_dump())


@router.post(
    "/producers",
    status_code=201,
    summary="Register a producer (council)",
    response_model=Created,
    description="The answer warns (`warnings`) when the name could pass for another producer's.",
)
def create_producer(
    request: Request,
    data: Annotated[ProducerCreate, body(examples.PRODUCER)],
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.register_producer(principal, data),
        data.id,
        warnings=lambda: service.look_alike_producers(data.name),
    )


@router.post(
    "/producers/{producer_id}/keys",
    status_code=201,
    summary="Register a public key the producer holds itself (council)",
    response_model=Created,
)
def register_producer_key(
    producer_id: SlugPath,
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    data: Annotated[ProducerKey, body(examples.PRODUCER_KEY)],
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.register_producer_key(principal, producer_id, data.key_id, data.name),
    )


class KeyChange(BaseModel):
    reason: str = Field(min_length=3, max_length=500, description="Why, kept in the ledger")

    _prose = field_validator("reason")(text.prose)


class ProducerKey(BaseModel):
    key_id: str = Field(pattern=r"^[0-9a-f]{64}$", description="The public key, 64 hex digits")
    name: str = Field(pattern=r"^[!-*,-~]{1,64}$", description="Its name in signed notes")


class Rotated(BaseModel):
    key_id: str = Field(description="The producer's new key, registered")
    revoked_key_id: str = Field(description="Its old key, revoked in the same append")
    receipts: list[dict[str, Any]]


@router.post(
    "/producers/{producer_id}/keys/rotate",
    status_code=201,
    summary="Give a producer a new custodial key and revoke its old one, in one append (council)",
    response_model=Rotated,
)
def rotate_producer_key(
    producer_id: SlugPath,
    data: Annotated[KeyChange, body(examples.KEY_CHANGE)],
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    def run() -> tuple[int, Any]:
        receipts, new, old = service.rotate_producer_key(principal, producer_id, data.reason)
        return 201, {
            "key_id": new,
            "revoked_key_id": old,
            "receipts": [receipt_json(r) for r in receipts],
        }

    return idempotent(request, service, principal, data.model_dump(), run)


@router.post(
    "/keys/{key_id}/revoke",
    status_code=201,
    summary="Revoke a key: it signs nothing from now on (council)",
    response_model=Created,
)
def revoke_key(
    key_id: Annotated[str, FastApiPath(pattern=r"^[0-9a-f]{64}$")],
    data: Annotated[KeyChange, body(examples.KEY_CHANGE)],
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.revoke_key(principal, key_id, data.reason),
    )


@router.get(
    "/products",
    summary="All products, optionally of one producer",
    response_model=Page[ProductPublic],
)
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
def get_product(product_id: SlugPath, request: Request, conn: ConnDep) -> Response:
    row = conn.execute(select(PRODUCT).where(PRODUCT.c.id == product_id)).first()
    if row is None:
        raise NotFound(f"no product with id {product_id!r}")
    return cached_json(request, ProductPublic.model_validate(dict(row._mapping)).model_dump())


@router.post(
    "/products", status_code=201, summary="Register a product (council)", response_model=Created
)
def create_product(
    request: Request,
    data: Annotated[ProductCreate, body(examples.PRODUCT)],
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.register_product(principal, data),
        data.id,
    )


@router.get(
    "/products/{product_id}/ratings",
    summary="A product's OCOP ratings, newest first",
    response_model=Items[RatingPublic],
)
def product_ratings(product_id: SlugPath, request: Request, conn: ConnDep) -> Response:
    ratings = ratings_of(conn, product_id, ocop.today_in_vietnam())
    return cached_json(request, {"items": [r.model_dump() for r in ratings]})


@router.post(
    "/ratings", status_code=201, summary="Record an OCOP rating (council)", response_model=Created
)
def create_rating(
    request: Request,
    data: Annotated[RatingCreate, body(examples.RATING)],
    service: ServiceDep,
    principal: PrincipalDep,
) -> JSONResponse:
    return created(
        request,
        service,
        principal,
        data.model_dump(),
        lambda: service.record_rating(principal, data),
    )


@router.post(
    "/ratings/{rating_id}/revoke",
    status_code=201,
    summary="Revoke a rating (council)",
    response_model=Created,
)
def revoke_rating(
    rating_id: IdPath,
    data: Annotated[RatingRevoke, body(examples.REVOKE)],
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
