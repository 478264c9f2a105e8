"""A write done once per idempotency key: a retry, or a form sent twice, gets the first answer.

The key is claimed in its own short transaction before the write runs, so of several
requests racing with one key exactly one runs; the others replay its answer, or are told
it is still running (409 with Retry-After). A claim whose process died is taken over once
it is older than `STALE_SECONDS`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from ledger.statement import utc_now
from ledger.store import writing
from ocop_trace.errors import Conflict, InvalidInput

IN_PROGRESS = 0  # the status column while the write runs
STALE_SECONDS = 300
MAX_KEY_CHARS = 100


class IdempotencyRecord(SQLModel, table=True):
    """The answer to a write sent with an idempotency key, replayed if it is retried."""

    __tablename__ = "idempotency_record"
    key: str = Field(primary_key=True, max_length=200)
    request_hash: str = Field(max_length=64)
    status: int
    body: str
    created_at: str = Field(max_length=32)


IDEMPOTENCY = IdempotencyRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    replayed: bool = False


def request_hash(payload: Any) -> str:
    """What makes two requests the same: their parsed content, in one spelling."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def check_key(key: str) -> None:
    if not (1 <= len(key) <= MAX_KEY_CHARS and key.isascii() and key.isprintable()):
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters",
            field="Idempotency-Key",
        )


def once(engine: Engine, scope: str, digest: str, run: Callable[[], tuple[int, Any]]) -> Answer:
    """Run `run` once for this scoped key; every later call with it gets the same answer."""
    claimed = _claim(engine, scope, digest)
    if claimed is not None:
        return claimed
    try:
        status, body = run()
    except BaseException:
        # Nothing was written (the write is all or none), so a retry may run it again.
        with writing(engine) as conn:
            conn.execute(delete(IDEMPOTENCY).where(IDEMPOTENCY.c.key == scope))
        raise
    with writing(engine) as conn:
        conn.execute(
            update(IDEMPOTENCY)
            .where(IDEMPOTENCY.c.key == scope)
            .values(status=status, body=json.dumps(body, default=str))
        )
    return Answer(status, body)


def _claim(engine: Engine, scope: str, digest: str) -> Answer | None:
    """None when this request now owns the key; else the answer it must give instead."""
    now = utc_now()
    with writing(engine) as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        # RETURNING says whether this insert won (rowcount is not reliable for it).
        inserted = conn.execute(
            dialect.insert(IDEMPOTENCY)
            .values(key=scope, request_hash=digest, status=IN_PROGRESS, body="", created_at=now)
            .on_conflict_do_nothing()
            .returning(IDEMPOTENCY.c.key)
        ).first()
        if inserted is not None:
            return None
        row = conn.execute(select(IDEMPOTENCY).where(IDEMPOTENCY.c.key == scope)).one()
        if row.request_hash != digest:
            raise Conflict(
                "this Idempotency-Key was used with a different request",
                field="Idempotency-Key",
            )
        if row.status != IN_PROGRESS:
            return Answer(row.status, json.loads(row.body), replayed=True)
        if _age(row.created_at) > STALE_SECONDS:  # its process died: take the key over
            conn.execute(
                update(IDEMPOTENCY).where(IDEMPOTENCY.c.key == scope).values(created_at=now)
            )
            return None
    raise Conflict(
        "a request with this Idempotency-Key is still being processed; retry in a moment",
        field="Idempotency-Key",
        retry_after=1,
    )


def _age(timestamp: str) -> float:
    then = datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return (datetime.now(UTC) - then) / timedelta(seconds=1)
