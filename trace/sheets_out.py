"""Spreadsheets out: every batch's key data, its events, and the national portal's fields.

Three lists, as sheets of one XLSX or one CSV each: `batches` (lot, product, producer, dates,
quantity and unit, inputs and outputs, recall), `events` (each with time and place) and
`portal` (what Circular 02/2024 has a consumer see: product name and image, producer name
and address, production date, brand, code and lot, expiry, the link). Label serials are not
listed: they are unguessable so that a label cannot be copied, and a list would undo that.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import IO, Any

from sqlalchemy import Connection, select

from ocop_trace.epcis.vocabulary import batch_class
from ocop_trace.i18n import t
from ocop_trace.models import BATCH, BATCH_INPUT, EVENT, PRODUCER, PRODUCT
from ocop_trace.sheets import write_csv, write_xlsx

COLUMNS: dict[str, tuple[str, ...]] = {
    "batches": (
        "batch_id",
        "lot",
        "product_id",
        "product_name",
        "producer_id",
        "producer_name",
        "produced_on",
        "expires_on",
        "quantity",
        "unit",
        "origin",
        "inputs",
        "outputs",
        "recalled",
        "recall_reason",
        "entry_index",
    ),
    "events": ("batch_id", "lot", "product_name", "step", "at", "place", "note", "entry_index"),
    "portal": (
        "product_name",
        "product_image",
        "producer_name",
        "producer_address",
        "production_date",
        "brand",
        "code",
        "lot",
        "expiry",
        "link",
    ),
}
SHEETS = tuple(COLUMNS)


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _batches(conn: Connection) -> Iterator[Any]:
    query = (
        select(
            BATCH,
            PRODUCT.c.name_vi,
            PRODUCT.c.gtin,
            PRODUCT.c.image_url,
            PRODUCER.c.name,
            PRODUCER.c.current_line,
            PRODUCER.c.current_commune,
            PRODUCER.c.current_province,
        )
        .join(PRODUCT, PRODUCT.c.id == BATCH.c.product_id)
        .join(PRODUCER, PRODUCER.c.id == BATCH.c.producer_id)
        .order_by(BATCH.c.id)
    )
    yield from conn.execution_options(yield_per=500).execute(query)


def _links(conn: Connection, batch_id: str, column: Any, other: Any) -> str:
    found = conn.execute(select(other).where(column == batch_id).order_by(other)).scalars()
    return ", ".join(found)


def rows(conn: Connection, sheet: str, base_url: str) -> Iterator[list[Any]]:
    """One sheet's rows, read as they are written (memory stays flat)."""
    if sheet == "events":
        query = (
            select(EVENT, BATCH.c.lot, PRODUCT.c.name_vi)
            .join(BATCH, BATCH.c.id == EVENT.c.batch_id)
            .join(PRODUCT, PRODUCT.c.id == BATCH.c.product_id)
            .order_by(EVENT.c.batch_id, EVENT.c.at, EVENT.c.id)
        )
        for e in conn.execution_options(yield_per=500).execute(query):
            step = t("vi", f"step.{e.biz_step}")  # the council's sheets are Vietnamese
            yield [e.batch_id, e.lot, e.name_vi, step, e.at, e.place, e.note, e.id]
        return
    reader = conn.engine.connect()  # the batch query streams; links are read beside it
    try:
        for b in _batches(reader):
            if sheet == "batches":
                yield [
                    b.id,
                    b.lot,
                    b.product_id,
                    b.name_vi,
                    b.producer_id,
                    b.name,
                    _day(b.produced_on),
                    _day(b.expires_on),
                    b.quantity,
                    b.unit,
                    b.origin,
                    _links(conn, b.id, BATCH_INPUT.c.batch_id, BATCH_INPUT.c.input_id),
                    _links(conn, b.id, BATCH_INPUT.c.input_id, BATCH_INPUT.c.batch_id),
                    "yes" if b.recalled_index is not None else "",
                    b.recall_reason,
                    b.entry_index,
                ]
            else:
                parts = (b.current_line, b.current_commune, b.current_province)
                address = ", ".join(p for p in parts if p)
                yield [
                    b.name_vi,
                    b.image_url,
                    b.name,
                    address,
                    _day(b.produced_on),
                    b.name,
                    b.gtin or b.product_id,
                    b.lot,
                    _day(b.expires_on),
                    batch_class(base_url, b.gtin, b.lot, b.id),
                ]
    finally:
        reader.close()


def write_workbook(conn: Connection, base_url: str, out: IO[bytes]) -> None:
    write_xlsx(((s, COLUMNS[s], rows(conn, s, base_url)) for s in SHEETS), out)


def write_sheet_csv(conn: Connection, sheet: str, base_url: str, out: IO[str]) -> None:
    write_csv(COLUMNS[sheet], rows(conn, sheet, base_url), out)
