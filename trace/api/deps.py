"""Typed dependencies shared by the routers: the service, the caller, a connection, paging."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Connection, func, insert, select
from sqlmodel import Field, SQLModel

from ledger.statement import utc_now
from ledger.store import Receipt
from ocop_trace.accounts import PUBLIC, Principal, principal_for_token
from ocop_trace.errors import Conflict, NotAuthenticated
from ocop_trace.service import TraceService

T = TypeVar("T")


async def get_service(request: Request) -> TraceService:
    service: TraceService = request.app.state.service
    return service


ServiceDep = Annotated[TraceService, Depends(get_service)]


def get_connection(service: ServiceDep) -> Iterator[Connection]:
    with service.engine.connect() as conn:
        yield conn


ConnDep = Annotated[Connection, Depends(get_connection)]


async def get_principal(request: Request, service: ServiceDep) -> Principal:
    # Async so that an anonymous request (every scan) costs no thread hop; a token is
    # looked up in the database off the event loop.
    header = request.headers.get("authorization")
    if not header:
        return PUBLIC
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("use 'Authorization: Bearer <token>'")
    return await run_in_threadpool(_principal_for, service, token.strip())


def _principal_for(service: TraceService, token: str) -> Principal:
    with service.engine.connect() as conn:
        return principal_for_token(conn, token)


PrincipalDep = Annotated[Principal, Depends(get_principal)]

# Ids in paths are database integers: a larger number is refused as input (422), not
# passed on to overflow the driver.
MAX_ID = 2**53 - 1
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


class PageParams(BaseModel):
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Items to skip")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


def cached_json(request: Request, payload: Any, status: int = 200) -> Response:
    """A JSON answer with a strong ETag; `If-None-Match` with the same tag gets 304."""
    body = json.dumps(
        payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str
    ).encode("utf-8")
    tag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "public, max-age=0, must-revalidate"}
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class IdempotencyRecord(SQLModel, table=True):
    """The answer to a write sent with an Idempotency-Key, replayed if the write is retried."""

    __tablename__ = "idempotency_record"
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    status: int
    body: str
    created_at: str = Field(max_length=32)


IDEMPOTENCY = IdempotencyRecord.__table__  # type: ignore[attr-defined]


async def idempotent(
    request: Request,
    service: TraceService,
    principal: Principal,
    run: Callable[[], tuple[int, Any]],
) -> JSONResponse:
    """Run a write once per Idempotency-Key (per user); a retry gets the first answer."""
    key = request.headers.get("idempotency-key")
    if not key:
        status, payload = await run_in_threadpool(run)
        return JSONResponse(payload, status_code=status)
    if not 1 <= len(key) <= 100:
        raise Conflict("Idempotency-Key must be 1 to 100 characters", field="Idempotency-Key")
    scoped = f"{principal.user_id}:{request.method}:{request.url.path}:{key}"
    request_hash = hashlib.sha256(await request.body()).hexdigest()
    with service.engine.connect() as conn:
        row = conn.execute(select(IDEMPOTENCY).where(IDEMPOTENCY.c.key == scoped)).first()
    if row is not None:
        if row.request_hash != request_hash:
            raise Conflict(
                "this Idempotency-Key was used with a different request body",
                field="Idempotency-Key",
            )
        return JSONResponse(
            json.loads(row.body), status_code=row.status, headers={"Idempotent-Replayed": "true"}
        )
    # Appending signs, verifies and fsyncs: off the event loop, so reads keep flowing.
    status, payload = await run_in_threadpool(run)
    with service.engine.begin() as conn:
        conn.execute(
            insert(IDEMPOTENCY).values(
                key=scoped,
                request_hash=request_hash,
                status=status,
                body=json.dumps(payload),
                created_at=utc_now(),
            )
        )
    return JSONResponse(payload, status_code=status)


async def created(
    request: Request,
    service: TraceService,
    principal: Principal,
    append: Callable[[], Receipt],
    created_id: str | None = None,
) -> JSONResponse:
    """201 with the new thing's id (its own, or the entry index) and the ledger receipt."""

    def run() -> tuple[int, Any]:
        receipt = append()
        return 201, {
            "id": created_id if created_id is not None else receipt.index,
            "receipt": receipt_json(receipt),
        }

    return await idempotent(request, service, principal, run)


def page_of(
    conn: Connection,
    table: Any,
    page: PageParams,
    *where: Any,
    item: Callable[[Any], Any] = lambda row: dict(row._mapping),
) -> dict[str, Any]:
    """One page of a table, in primary-key order, with the total count."""
    total = conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
    rows = conn.execute(
        select(table)
        .where(*where)
        .order_by(*table.primary_key.columns)
        .limit(page.limit)
        .offset(page.offset)
    ).all()
    return {
        "items": [item(row) for row in rows],
        "total": int(total),
        "limit": page.limit,
        "offset": page.offset,
    }


def receipt_json(receipt: Any) -> dict[str, Any]:
    return {
        "index": receipt.index,
        "entry_hash": receipt.entry_hash,
        "statement_hash": receipt.statement_hash,
        "integrated_at": receipt.integrated_at,
        "duplicate": receipt.duplicate,
    }
