"""Typed dependencies shared by the routers: the service, the caller, a connection, paging."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel
from sqlalchemy import Connection, func, select

from ledger.store import Receipt
from ocop_trace import idempotency
from ocop_trace.accounts import PUBLIC, Principal, principal_for_token
from ocop_trace.docs_offline import bearer
from ocop_trace.errors import NotAuthenticated
from ocop_trace.models import MAX_INDEX, SLUG
from ocop_trace.service import TraceService


async def get_service(request: Request) -> TraceService:
    service: TraceService = request.app.state.service
    return service


ServiceDep = Annotated[TraceService, Depends(get_service)]


async def get_connection(request: Request, service: ServiceDep) -> AsyncIterator[Connection]:
    """A connection held for the whole request, across its awaits. At most as many requests
    hold one as the process runs threads, so a thread waiting for a connection always finds
    one free (the budget's arithmetic: Settings.request_threads)."""
    async with _loop_semaphore(request, "holders", request.app.state.settings.request_threads):
        conn = await run_in_threadpool(service.engine.connect)
        try:
            yield conn
        finally:
            await run_in_threadpool(conn.close)


async def writes_take_turns(request: Request) -> AsyncIterator[None]:
    """Writes wait their turn here, on the event loop, instead of in a thread: the ledger
    takes one append at a time, and writes queued for it in the database held every thread
    a process runs, so its scans waited behind them (1.5 s in the fleet benchmark). A third
    of the threads, at least one, may be writing at once."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        yield
        return
    writers = max(1, request.app.state.settings.request_threads // 3)
    async with _loop_semaphore(request, "writers", writers):
        yield


def _loop_semaphore(request: Request, name: str, size: int) -> asyncio.Semaphore:
    # One per event loop: a semaphore is bound to the loop that first waits on it, and
    # in-process test clients run each request in a loop of its own.
    loop, state = asyncio.get_running_loop(), request.app.state
    found: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = getattr(state, name, None)
    if found is None or found[0] is not loop:
        found = (loop, asyncio.Semaphore(size))
        setattr(state, name, found)
    return found[1]


ConnDep = Annotated[Connection, Depends(get_connection)]


async def get_principal(
    request: Request,
    service: ServiceDep,
    declared: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
) -> Principal:
    # `declared` puts the bearer scheme in OpenAPI; the header is read here, so that a
    # scheme other than Bearer is refused rather than taken for anonymous access.
    # Async so that an anonymous request (every scan) costs no thread hop; a token is
    # looked up in the database off the event loop.
    header = request.headers.get("authorization")
    if not header:
        return PUBLIC
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthenticated("use 'Authorization: Bearer <token>'")
    ttl = timedelta(days=request.app.state.settings.token_days)
    return await run_in_threadpool(principal_for_token, service.engine, token.strip(), ttl)


PrincipalDep = Annotated[Principal, Depends(get_principal)]

# Ids in paths are database integers: a larger number is refused as input (422), not
# passed on to overflow the driver.
IdPath = Annotated[int, Path(ge=1, le=MAX_INDEX)]
# Producer, product and batch ids in paths: refused at the edge unless they are slugs, so
# no id that could not have been registered reaches a use case.
SlugPath = Annotated[str, Path(pattern=SLUG, max_length=64, description="A lower-case id")]


T = TypeVar("T")


class ReceiptOut(BaseModel):
    """Where a statement now lives in the ledger."""

    index: int
    entry_hash: str
    statement_hash: str
    integrated_at: str
    duplicate: bool


class Warning(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class Created(BaseModel):
    """A write's answer: the new thing's id (its own, or its entry index) and its receipt."""

    id: str | int
    receipt: ReceiptOut
    warnings: list[Warning] | None = None


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class Items(BaseModel, Generic[T]):
    items: list[T]


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


def idempotent(
    request: Request,
    service: TraceService,
    principal: Principal,
    payload: Any,
    run: Callable[[], tuple[int, Any]],
) -> JSONResponse:
    """Run a write once per Idempotency-Key (per user, method and path); a retry gets the
    first answer. Called from sync routes, which run in a worker thread."""
    key = request.headers.get("idempotency-key")
    if key is None:
        status, body = run()
        return JSONResponse(body, status_code=status)
    idempotency.check_key(key)
    scope = f"{principal.user_id}:{request.method}:{request.url.path}:{key}"
    answer = idempotency.once(service.engine, scope, idempotency.request_hash(payload), run)
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


def created(
    request: Request,
    service: TraceService,
    principal: Principal,
    payload: Any,
    append: Callable[[], Receipt],
    created_id: str | None = None,
    warnings: Callable[[], list[dict[str, Any]]] | None = None,
) -> JSONResponse:
    """201 with the new thing's id (its own, or the entry index) and the ledger receipt,
    and the `warnings` found before it was written when the route looks for some."""

    def run() -> tuple[int, Any]:
        found = warnings() if warnings is not None else None
        receipt = append()
        body = {
            "id": created_id if created_id is not None else receipt.index,
            "receipt": receipt_json(receipt),
        }
        return 201, body if found is None else {**body, "warnings": found}

    return idempotent(request, service, principal, payload, run)


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


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {
        "index": receipt.index,
        "entry_hash": receipt.entry_hash,
        "statement_hash": receipt.statement_hash,
        "integrated_at": receipt.integrated_at,
        "duplicate": receipt.duplicate,
    }
