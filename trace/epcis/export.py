"""Ledger entries as EPCIS 2.0 events, and documents of them: per batch, product, ledger.

Each event is computed from one signed entry and the ledger before it (never from state
that changes later), so an event's ID stays the same on every export:

    batch.registered     ObjectEvent ADD, commissioning, ILMD (lot, best-before, origin...),
                         certificationInfo: the OCOP certificates in force that day
                         + a TransformationEvent (inputs -> the batch) if it has inputs
    batch.event          ObjectEvent with the step's CBV word or our URI, place as readPoint
    batch.recalled       ObjectEvent OBSERVE, disposition recalled
    inspection.recorded  ObjectEvent OBSERVE, inspecting, conformant / non_conformant

Every event names its entry (`ocop:ledgerEntry`: index and hash) and carries the EPCIS
event hash as its eventID. docs/epcis.md describes the mapping.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import Connection, select

from ledger.statement import Statement, parse_entry
from ledger.store import LedgerStore
from ocop_trace.epcis import vocabulary as voc
from ocop_trace.epcis.event_hash import event_id, prefixes_of
from ocop_trace.errors import NotFound, PayloadTooLarge
from ocop_trace.kinds import KINDS
from ocop_trace.models import (
    BATCH,
    EVENT,
    INSPECTION,
    PRODUCT,
    RATING,
    BatchCreate,
    EventRecord,
    InspectionCreate,
    RecallRecord,
)
from ocop_trace.ocop import BIZ_STEPS
from ocop_trace.reads import gtin_at

PREFIXES = prefixes_of(voc.CONTEXT)
MAX_DOCUMENT_ENTRIES = 5000  # a larger document is the whole-ledger export's job


@dataclass(frozen=True, slots=True)
class BatchIdentity:
    """How a batch is named in events: its class-level identifier and its producer."""

    id: str
    product_id: str
    producer_id: str
    epc_class: str


class Exporter:
    """Turns entries into events, reading what they need through one connection."""

    def __init__(self, conn: Connection, base_url: str, cache_size: int = 4096) -> None:
        self.conn = conn
        self.base = base_url.rstrip("/")
        self._batches: OrderedDict[str, BatchIdentity] = OrderedDict()
        self._cache_size = cache_size  # bounded: the whole-ledger export streams

    def events(self, index: int, data: bytes) -> list[dict[str, Any]]:
        """The events one entry becomes (none for kinds that are not supply-chain events)."""
        entry = parse_entry(data)
        statement = entry.statement
        make = _MAKERS.get(statement.kind)
        if make is None:
            return []
        body = KINDS[statement.kind].validate(statement.body)
        events = make(self, index, body, statement)
        reference = {"ocop:index": index, "ocop:hash": entry.hash.hex()}
        return [_finish(event, reference) for event in events]

    def batch(self, batch_id: str) -> BatchIdentity:
        known = self._batches.get(batch_id)
        if known is not None:
            self._batches.move_to_end(batch_id)
            return known
        row = self.conn.execute(
            select(BATCH.c.product_id, BATCH.c.producer_id, BATCH.c.lot, BATCH.c.entry_index).where(
                BATCH.c.id == batch_id
            )
        ).first()
        if row is None:
            raise NotFound(f"no batch with id {batch_id!r}")
        current = self.conn.execute(
            select(PRODUCT.c.gtin).where(PRODUCT.c.id == row.product_id)
        ).scalar_one()
        # Named as it was when registered, so its events keep their IDs.
        gtin = gtin_at(self.conn, row.product_id, current, row.entry_index)
        identity = BatchIdentity(
            batch_id,
            row.product_id,
            row.producer_id,
            voc.batch_class(self.base, gtin, row.lot, batch_id),
        )
        self._batches[batch_id] = identity
        if len(self._batches) > self._cache_size:
            self._batches.popitem(last=False)
        return identity

    def certificates(self, product_id: str, index: int, day: str) -> list[str]:
        """The product's OCOP certificates in force on `day` as the ledger stood at
        `index`: recorded before it, valid that day, not revoked before it."""
        rows = self.conn.execute(
            select(RATING.c.certificate_no, RATING.c.revoked_index).where(
                RATING.c.product_id == product_id,
                RATING.c.id < index,
                RATING.c.stars >= 3,
                RATING.c.issued_on <= day,
                RATING.c.expires_on > day,
            )
        ).all()
        return sorted(
            voc.certification(self.base, product_id, row.certificate_no)
            for row in rows
            if row.revoked_index is None or row.revoked_index > index
        )

    def location(self, producer_id: str) -> dict[str, str]:
        return {"id": voc.producer_location(self.base, producer_id)}


def _registration(
    exporter: Exporter, index: int, data: BatchCreate, _: Statement
) -> list[dict[str, Any]]:
    batch = exporter.batch(data.id)
    quantity: dict[str, Any] = {"epcClass": batch.epc_class, "quantity": data.quantity}
    ilmd: dict[str, Any] = {
        "cbvmda:lotNumber": data.lot,
        "ocop:batchId": data.id,
        "ocop:productId": data.product_id,
    }
    if data.unit in voc.UNIT_CODES:
        quantity["uom"] = voc.UNIT_CODES[data.unit]
    else:
        ilmd["ocop:unit"] = data.unit
    optional = {
        "cbvmda:bestBeforeDate": data.expires_on,
        "ocop:origin": data.origin,
        "ocop:notes": data.notes,
    }
    ilmd.update((k, v) for k, v in optional.items() if v)
    when = voc.day_start(data.produced_on)
    added: dict[str, Any] = {"type": "ObjectEvent", "eventTime": when}
    certificates = exporter.certificates(data.product_id, index, data.produced_on)
    if certificates:
        added["certificationInfo"] = certificates
    added.update(
        quantityList=[quantity],
        action="ADD",
        bizStep=voc.REGISTRATION_STEP,
        disposition="active",
        bizLocation=exporter.location(batch.producer_id),
        ilmd=ilmd,
    )
    events = [added]
    inputs = sorted(set(data.inputs))
    if inputs:
        events.append(
            {
                "type": "TransformationEvent",
                "eventTime": when,
                "inputQuantityList": [{"epcClass": exporter.batch(i).epc_class} for i in inputs],
                "outputQuantityList": [{"epcClass": batch.epc_class}],
                "bizStep": voc.REGISTRATION_STEP,
                "bizLocation": exporter.location(batch.producer_id),
            }
        )
    return events


def _event(exporter: Exporter, _: int, data: EventRecord, __: Statement) -> list[dict[str, Any]]:
    batch = exporter.batch(data.batch_id)
    step = BIZ_STEPS[data.biz_step]
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": voc.local_time(data.at),
        "quantityList": [{"epcClass": batch.epc_class}],
        "action": step.action or "OBSERVE",
        "bizStep": step.biz_step,
    }
    if data.place:
        event["readPoint"] = {"id": voc.place_uri(data.place)}
    event["bizLocation"] = exporter.location(batch.producer_id)
    if data.note:
        event["ocop:note"] = data.note
    return [event]


def _recall(
    exporter: Exporter, _: int, data: RecallRecord, statement: Statement
) -> list[dict[str, Any]]:
    batch = exporter.batch(data.batch_id)
    return [
        {
            "type": "ObjectEvent",
            "eventTime": voc.local_time(statement.issued_at),
            "quantityList": [{"epcClass": batch.epc_class}],
            "action": "OBSERVE",
            "disposition": "recalled",
            "bizLocation": exporter.location(batch.producer_id),
            "ocop:reason": data.reason,
        }
    ]


def _inspection(
    exporter: Exporter, _: int, data: InspectionCreate, statement: Statement
) -> list[dict[str, Any]]:
    batch = exporter.batch(data.batch_id)
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": voc.local_time(statement.issued_at),
        "quantityList": [{"epcClass": batch.epc_class}],
        "action": "OBSERVE",
        "bizStep": "inspecting",
    }
    if data.result in voc.INSPECTION_DISPOSITIONS:
        event["disposition"] = voc.INSPECTION_DISPOSITIONS[data.result]
    event["ocop:inspectionResult"] = data.result
    if data.findings:
        event["ocop:findings"] = data.findings
    return [event]


_MAKERS: dict[str, Callable[[Exporter, int, Any, Statement], list[dict[str, Any]]]] = {
    "batch.registered": _registration,
    "batch.event": _event,
    "batch.recalled": _recall,
    "inspection.recorded": _inspection,
}


def _finish(event: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """The time zone, the ledger reference and, computed over all of it, the eventID."""
    done = {"type": event["type"], "eventTime": event["eventTime"]}
    done["eventTimeZoneOffset"] = voc.OFFSET
    done.update(event)
    done[voc.LEDGER_ENTRY] = reference
    return {"eventID": event_id(done, PREFIXES), **done}


def _header(creation: str) -> dict[str, Any]:
    return {
        "@context": voc.CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": creation,
    }


def document(exporter: Exporter, store: LedgerStore, indices: list[int]) -> dict[str, Any]:
    """An EPCIS document of these entries' events, dated by the newest entry."""
    if len(indices) > MAX_DOCUMENT_ENTRIES:
        raise PayloadTooLarge(
            f"more than {MAX_DOCUMENT_ENTRIES} entries: export the ledger with "
            "'ocop-trace export-epcis' instead"
        )
    events: list[dict[str, Any]] = []
    creation = ""
    for index in sorted(set(indices)):
        data = store.entry(index, exporter.conn)
        if data is None:
            raise NotFound(f"entry {index} is missing from the ledger")
        events.extend(exporter.events(index, data))
        creation = max(creation, parse_entry(data).integrated_at)
    return {**_header(creation or "1970-01-01T00:00:00Z"), "epcisBody": {"eventList": events}}


def batch_entries(conn: Connection, batch_id: str) -> list[int]:
    """The entries about one batch: registration, events, its own recall, inspections."""
    row = conn.execute(
        select(BATCH.c.entry_index, BATCH.c.recalled_index, BATCH.c.recall_source).where(
            BATCH.c.id == batch_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no batch with id {batch_id!r}")
    found = [row.entry_index]
    if row.recall_source == batch_id and row.recalled_index is not None:
        found.append(row.recalled_index)
    for table in (EVENT, INSPECTION):
        found += conn.execute(select(table.c.id).where(table.c.batch_id == batch_id)).scalars()
    return found


def product_entries(conn: Connection, product_id: str) -> list[int]:
    if conn.execute(select(PRODUCT.c.id).where(PRODUCT.c.id == product_id)).first() is None:
        raise NotFound(f"no product with id {product_id!r}")
    found: list[int] = []
    batches = conn.execute(select(BATCH.c.id).where(BATCH.c.product_id == product_id)).scalars()
    for batch_id in batches:
        found += batch_entries(conn, batch_id)
    return found


def write_ledger(store: LedgerStore, base_url: str, out: IO[str]) -> int:
    """The whole ledger's events as one EPCIS document, written as they are read (memory
    stays flat however long the ledger is). Returns how many events were written."""
    size = store.size()
    if size == 0:
        last = "1970-01-01T00:00:00Z"
    else:
        last_entry = store.entry(size - 1)
        assert last_entry is not None
        last = parse_entry(last_entry).integrated_at
    head = json.dumps(_header(last), ensure_ascii=False)
    out.write(head[:-1] + ', "epcisBody": {"eventList": [\n')
    count = 0
    with store.engine.connect() as conn:
        exporter = Exporter(conn, base_url)
        for event in _ledger_events(exporter, store, size):
            out.write((",\n" if count else "") + json.dumps(event, ensure_ascii=False))
            count += 1
    out.write("\n]}}\n")
    return count


def _ledger_events(exporter: Exporter, store: LedgerStore, size: int) -> Iterator[dict[str, Any]]:
    for index, data in store.entries():
        if index >= size:
            return
        yield from exporter.events(index, data)
