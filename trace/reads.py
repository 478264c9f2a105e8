"""Read models: the public view of projected rows, shared by the API, the pages and the app."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from ocop_trace import ocop
from ocop_trace.errors import NotFound
from ocop_trace.models import (
    BATCH,
    BATCH_INPUT,
    RATING,
    UPDATE_HISTORY,
    BatchPublic,
    HistoryItem,
    ProducerPublic,
    RatingPublic,
    addresses_of,
)


def producer_public(row: Any) -> ProducerPublic:
    certified, current = addresses_of(row)
    # Rows are read as stored, not validated again: a row edited behind the ledger's back
    # is for the pages to flag against its entry, not a reason to fail.
    return ProducerPublic.model_construct(
        id=row.id,
        name=row.name,
        type=row.type,
        registration_no=row.registration_no,
        contact=row.contact,
        entry_index=row.entry_index,
        address_certified=certified,
        address_current=current,
    )


def rating_public(row: Any, today: date) -> RatingPublic:
    status = ocop.rating_status(
        date.fromisoformat(row.issued_on),
        date.fromisoformat(row.expires_on),
        revoked=row.revoked_index is not None,
        today=today,
    )
    values = {k: v for k, v in row._mapping.items() if k in RatingPublic.model_fields}
    return RatingPublic.model_construct(**values, status=status.value)


def ratings_of(conn: Connection, product_id: str, today: date) -> list[RatingPublic]:
    """A product's ratings, newest first, each with its status on `today`."""
    rows = conn.execute(
        select(RATING).where(RATING.c.product_id == product_id).order_by(RATING.c.id.desc())
    ).all()
    return [rating_public(row, today) for row in rows]


def current_rating(conn: Connection, product_id: str, today: date) -> RatingPublic | None:
    """The latest rating that is neither revoked nor expired; if there is none, the latest
    one, whose status then says why it is not current. A mistaken rating the council
    revokes therefore no longer hides an earlier one that is still valid."""
    ratings = ratings_of(conn, product_id, today)
    return next((r for r in ratings if r.current), ratings[0] if ratings else None)


def batch_row(conn: Connection, batch_id: str) -> Any:
    row = conn.execute(select(BATCH).where(BATCH.c.id == batch_id)).first()
    if row is None:
        raise NotFound(f"no batch with id {batch_id!r}")
    return row


def batch_public(conn: Connection, row: Any) -> BatchPublic:
    inputs = conn.execute(
        select(BATCH_INPUT.c.input_id)
        .where(BATCH_INPUT.c.batch_id == row.id)
        .order_by(BATCH_INPUT.c.input_id)
    ).scalars()
    outputs = conn.execute(
        select(BATCH_INPUT.c.batch_id)
        .where(BATCH_INPUT.c.input_id == row.id)
        .order_by(BATCH_INPUT.c.batch_id)
    ).scalars()
    values = {k: v for k, v in row._mapping.items() if k in BatchPublic.model_fields}
    return BatchPublic.model_construct(
        **values,
        inputs=list(inputs),
        outputs=list(outputs),
        recalled=row.recalled_index is not None,
    )


def history(conn: Connection, subject: str, subject_id: str) -> list[HistoryItem]:
    """A producer's or product's changes, oldest first: when the council signed each, what
    it set and what those fields held before, and the entry that says so."""
    rows = conn.execute(
        select(UPDATE_HISTORY)
        .where(UPDATE_HISTORY.c.subject == subject, UPDATE_HISTORY.c.subject_id == subject_id)
        .order_by(UPDATE_HISTORY.c.entry_index)
    ).all()
    return [
        HistoryItem(
            entry_index=row.entry_index,
            issued_at=row.issued_at,
            changes=json.loads(row.changes),
            previous=json.loads(row.previous),
        )
        for row in rows
    ]


def field_entries(
    conn: Connection, subject: str, subject_id: str, registered_index: int, fields: list[str]
) -> dict[str, int]:
    """For each of these fields of a producer or product (`subject`), the index of the entry
    that last set it: the latest update that changed it, else the registration. The scan
    page compares each shown field with that entry (see `Evidence.for_page`)."""
    setters = dict.fromkeys(fields, registered_index)
    for item in history(conn, subject, subject_id):
        setters.update((name, item.entry_index) for name in item.changes if name in setters)
    return setters


def gtin_changes(conn: Connection, product_id: str) -> list[tuple[int, str, str]]:
    """A product's GTIN changes, oldest first: (entry index, GTIN before, GTIN after)."""
    return [
        (item.entry_index, item.previous["gtin"], item.changes["gtin"])
        for item in history(conn, "product", product_id)
        if "gtin" in item.changes
    ]


def gtin_at(conn: Connection, product_id: str, current: str, index: int) -> str:
    """The GTIN a product had at a ledger entry: what the first change after it replaced,
    or, if none came after, the one it has now."""
    later = [before for at, before, _ in gtin_changes(conn, product_id) if at > index]
    return later[0] if later else current
