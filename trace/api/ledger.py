"""Health, the signed checkpoint, entries with their proofs, and statements signed elsewhere."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from ledger.errors import LedgerError
from ledger.statement import parse_entry, statement_from_json
from ocop_trace.api import examples
from ocop_trace.api.deps import (
    PrincipalDep,
    ReceiptOut,
    ServiceDep,
    cached_json,
    idempotent,
    receipt_json,
)
from ocop_trace.api.examples import body
from ocop_trace.errors import InvalidInput, NotFound
from ocop_trace.service import require_role

router = APIRouter()


class Health(BaseModel):
    status: str
    ledger_size: int
    head_hash: str


class EntryProof(BaseModel):
    entry: dict[str, Any] = Field(description="The entry as stored (RFC 8785 JSON)")
    entry_hash: str
    tree_size: int
    inclusion_proof: list[str] = Field(description="Base64 hashes, leaf to root")


class Receipts(BaseModel):
    receipts: list[ReceiptOut]


@router.get(
    "/healthz",
    tags=["health"],
    summary="Database reachable and ledger head",
    response_model=Health,
)
def healthz(service: ServiceDep) -> JSONResponse:
    try:
        with service.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        size, head = service.store.head()
    except Exception as exc:  # any failure here means "not healthy", said plainly
        return JSONResponse(
            {"status": "unavailable", "reason": type(exc).__name__}, status_code=503
        )
    return JSONResponse({"status": "ok", "ledger_size": size, "head_hash": head})


@router.get(
    "/api/v1/checkpoint",
    tags=["ledger"],
    response_class=PlainTextResponse,
    summary="The latest signed checkpoint (C2SP signed note), with witness cosignatures",
)
def checkpoint(request: Request) -> PlainTextResponse:
    """The latest checkpoint with its witnesses' cosignatures (C2SP tlog-cosignature)."""
    note = request.app.state.public.witnessing.served()
    if note is None:
        raise NotFound("no checkpoint has been published yet")
    return PlainTextResponse(note, media_type="text/plain; charset=utf-8")


@router.post(
    "/api/v1/checkpoint",
    tags=["ledger"],
    response_class=PlainTextResponse,
    summary="Publish a checkpoint now (council only)",
)
def publish_checkpoint(service: ServiceDep, principal: PrincipalDep) -> PlainTextResponse:
    require_role(principal, "council")
    return PlainTextResponse(
        service.store.publish_checkpoint(), media_type="text/plain; charset=utf-8"
    )


@router.get(
    "/api/v1/entries/{index}",
    tags=["ledger"],
    summary="One entry, with its inclusion proof in the current tree",
    response_model=EntryProof,
)
def entry(index: int, request: Request) -> Response:
    if not 0 <= index < 2**53:
        raise NotFound(f"no entry {index}")
    public = request.app.state.public  # the replica, if any: the entry and proof in one snapshot
    with public.connection() as conn:
        data = public.store.entry(index, conn)
        if data is None:
            raise NotFound(f"no entry {index}")
        size, proof = public.store.inclusion_proof(index, conn=conn)
    payload = {
        "entry": json.loads(data),
        "entry_hash": parse_entry(data).hash.hex(),
        "tree_size": size,
        "inclusion_proof": [base64.b64encode(p).decode() for p in proof],
    }
    return cached_json(request, payload)


@router.get(
    "/api/v1/proofs/consistency",
    tags=["ledger"],
    summary="Consistency proof between two tree sizes (base64 hashes)",
)
def consistency(
    request: Request,
    first: Annotated[int, Query(ge=1, le=2**53)],
    second: Annotated[int, Query(ge=1, le=2**53)],
) -> dict[str, Any]:
    if first > second:
        raise InvalidInput("first must not be larger than second", field="first")
    proof = request.app.state.public.store.consistency_proof(first, second)
    return {
        "first": first,
        "second": second,
        "proof": [base64.b64encode(p).decode() for p in proof],
    }


class Submission(BaseModel):
    """Statements signed offline, with the serials of the label sets among them."""

    statements: list[dict[str, Any]] = Field(min_length=1, max_length=500)
    serials: list[list[str]] = Field(
        default_factory=list,
        max_length=500,
        description="The serials of each labels.issued statement sent: one list per label "
        "set, matched to its statement by their Merkle root (the statement's commitment)",
    )


@router.post(
    "/api/v1/statements",
    tags=["ledger"],
    status_code=201,
    summary="Append statements signed offline (all or none)",
    description="The body is a list of signed statements, or an object with `statements` "
    "and `serials`: a `labels.issued` statement is accepted only with its serials, which "
    "must have the Merkle root it commits to.",
    response_model=Receipts,
)
def submit(
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    sent: Annotated[
        Annotated[list[dict[str, Any]], Field(min_length=1, max_length=500)] | Submission,
        body(examples.STATEMENTS, "a batch signed offline (labels.issued needs serials)"),
    ],
) -> JSONResponse:
    submission = sent if isinstance(sent, Submission) else Submission(statements=sent)
    statements = submission.statements
    parsed = []
    for position, value in enumerate(statements):
        try:
            parsed.append(statement_from_json(value))
        except LedgerError as exc:
            exc.position = position  # type: ignore[attr-defined]
            raise

    def run() -> tuple[int, Any]:
        receipts = service.submit_signed(principal, [parsed], serials=submission.serials)
        return 201, {"receipts": [receipt_json(r) for r in receipts]}

    return idempotent(request, service, principal, submission.model_dump(), run)
