"""EPCIS capture: a document's events as statements signed with the caller's key, all or none.

    ObjectEvent ADD with ILMD             batch.registered (a TransformationEvent whose one
                                          output is that batch gives its inputs)
    ObjectEvent, disposition recalled     batch.recalled
    ObjectEvent with a step we record     batch.event (CBV word or our URI; place = readPoint)
    ObjectEvent with ocop:inspectionResult  inspection.recorded (inspectors)
    anything else                         refused, with the event's index, field and reason

Each statement is signed at the event's own time, so the same document signs to the same
statements and is appended once; an event that names an entry of this very ledger
(`ocop:ledgerEntry` with its hash) is already here and is not appended again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, select

from ledger.statement import parse_entry
from ocop_trace.accounts import Principal
from ocop_trace.digital_link import parse_digital_link
from ocop_trace.epcis import vocabulary as voc
from ocop_trace.epcis.event_hash import STANDARD_PREFIXES, prefixes_of
from ocop_trace.errors import InvalidInput, ServiceError, as_service_error
from ocop_trace.kinds import KINDS
from ocop_trace.models import BATCH, PRODUCT, SLUG_RE
from ocop_trace.service import TraceService, require_role

MAX_DOCUMENT_BYTES = 5_000_000
MAX_EVENTS = 1000
SUPPORTED = ("ObjectEvent", "TransformationEvent")
DEFAULT_RECALL_REASON = "thu hồi (EPCIS)"
_CBV_STEP = re.compile(r"^(https://ref\.gs1\.org/cbv/BizStep-|urn:epcglobal:cbv:bizstep:)")


class _Quantity(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epcClass: str = Field(max_length=500)
    quantity: float | None = None
    uom: str | None = Field(default=None, pattern=r"^[A-Z0-9]{2,3}$")


class _Where(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(max_length=500)


class _Event(BaseModel):
    """The parts of an EPCIS 2.0 event capture reads; extension fields stay in `extra`."""

    model_config = ConfigDict(extra="allow")
    type: str
    eventTime: AwareDatetime
    eventTimeZoneOffset: str = Field(pattern=r"^[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)$")
    action: Literal["ADD", "OBSERVE", "DELETE"] | None = None
    bizStep: str | None = Field(default=None, max_length=500)
    disposition: str | None = Field(default=None, max_length=500)
    epcList: list[str] = Field(default_factory=list, max_length=100)
    quantityList: list[_Quantity] = Field(default_factory=list, max_length=100)
    inputEPCList: list[str] = Field(default_factory=list, max_length=50)
    inputQuantityList: list[_Quantity] = Field(default_factory=list, max_length=50)
    outputEPCList: list[str] = Field(default_factory=list, max_length=50)
    outputQuantityList: list[_Quantity] = Field(default_factory=list, max_length=50)
    readPoint: _Where | None = None
    bizLocation: _Where | None = None
    ilmd: dict[str, Any] | None = None


@dataclass
class _Statement:
    """One statement to sign, and the events (by index in the document) it comes from."""

    events: list[int]
    kind: str
    body: dict[str, Any]
    issued_at: str


@dataclass
class _Capture:
    conn: Connection
    public_url: str
    prefixes: dict[str, str]
    role: str
    problems: list[dict[str, Any]] = field(default_factory=list)
    statements: list[_Statement] = field(default_factory=list)
    registered: dict[tuple[str, ...], _Statement] = field(default_factory=dict)

    def refuse(self, event: int, where: str, reason: str) -> None:
        self.problems.append({"event": event, "field": where, "reason": reason})

    # -- names ---------------------------------------------------------------------------
    def ours(self, values: Mapping[str, Any], name: str, namespace: str = voc.OCOP_NS) -> Any:
        """An extension field or ILMD entry by its full name, whatever prefix it uses."""
        for key, value in values.items():
            prefix, _, local = key.partition(":")
            expanded = self.prefixes.get(prefix, prefix + ":") + local if local else key
            if expanded == namespace + name:
                return value
        return None

    def identity(self, uri: str) -> tuple[str, ...]:
        """A batch as an identifier names it: ("gtin", GTIN, lot) or ("id", batch id)."""
        own = f"{self.public_url.rstrip('/')}/b/"
        if uri.startswith(own) and SLUG_RE.fullmatch(uri.removeprefix(own)):
            return ("id", uri.removeprefix(own))
        try:
            link = parse_digital_link(uri)
        except (ServiceError, ValueError):
            link = None
        if link is None or link.gtin is None or link.lot is None:
            raise ValueError(
                "not a batch of this service: a GS1 Digital Link with a GTIN and a lot "
                f"(/01/.../10/...), or {own}<batch id>"
            )
        return ("gtin", link.gtin, link.lot)

    def batch_id(self, key: tuple[str, ...]) -> str:
        """The batch an identity names: registered here already, or earlier in this document."""
        if key in self.registered:
            return str(self.registered[key].body["id"])
        if key[0] == "id":
            where = BATCH.c.id == key[1]
        else:
            where = (PRODUCT.c.gtin == key[1]) & (BATCH.c.lot == key[2])
        found = self.conn.execute(
            select(BATCH.c.id).join(PRODUCT, PRODUCT.c.id == BATCH.c.product_id).where(where)
        ).scalar()
        if found is None:
            raise ValueError(f"no batch {'/'.join(key[1:])} is registered")
        return str(found)

    def one_batch(self, event: _Event) -> str:
        uris = [q.epcClass for q in event.quantityList] + event.epcList
        keys = {self.identity(uri) for uri in uris}
        if len(keys) != 1:
            raise ValueError("an event we record names exactly one batch")
        return self.batch_id(keys.pop())

    # -- events --------------------------------------------------------------------------
    def take(self, index: int, raw: Any) -> None:
        if not isinstance(raw, dict):
            self.refuse(index, "", "an event is a JSON object")
            return
        kind = raw.get("type")
        if kind not in SUPPORTED:
            self.refuse(index, "type", f"{kind!r} is not captured: only {', '.join(SUPPORTED)}")
            return
        try:
            event = _Event.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors()[:5]:
                where = ".".join(str(p) for p in error["loc"])
                self.refuse(index, where, str(error["msg"]).removeprefix("Value error, "))
            return
        extra = event.model_extra or {}
        try:
            if event.type == "TransformationEvent":
                self.lineage(index, event)
            elif self.ours(extra, "inspectionResult") is not None:
                self.inspection(index, event, extra)
            elif event.disposition == "recalled":
                self.recall(index, event, extra)
            elif event.action == "ADD" and event.ilmd is not None:
                self.registration(index, event, extra)
            else:
                self.step(index, event, extra)
        except (ValueError, ServiceError) as exc:
            reason = exc.message if isinstance(exc, ServiceError) else str(exc)
            self.refuse(index, getattr(exc, "field", None) or "epcClass", reason)

    def add(self, index: int, kind: str, body: dict[str, Any], when: datetime) -> _Statement:
        if KINDS[kind].signer != self.role:
            raise _Refused("type", f"a {self.role} cannot record {kind}")
        try:
            KINDS[kind].validate(body)
        except InvalidInput as exc:
            raise _Refused(exc.field or "", exc.message) from None
        statement = _Statement([index], kind, body, voc.ledger_time(when))
        self.statements.append(statement)
        return statement

    def registration(self, index: int, event: _Event, extra: Mapping[str, Any]) -> None:
        ilmd = event.ilmd or {}
        if len(event.quantityList) != 1:
            raise _Refused("quantityList", "a registration names one batch with its quantity")
        element = event.quantityList[0]
        key = self.identity(element.epcClass)
        lot = self.ours(ilmd, "lotNumber", voc.CBVMDA_NS) or (key[2] if key[0] == "gtin" else None)
        product_id = self.ours(ilmd, "productId")
        if key[0] == "gtin":
            product_id = self._product_of(key[1], product_id)
            if lot != key[2]:
                raise _Refused("ilmd", "the lot in the ILMD and in the identifier differ")
        batch_id = key[1] if key[0] == "id" else self.ours(ilmd, "batchId")
        if batch_id is None and product_id and lot:
            batch_id = re.sub(r"[^a-z0-9]+", "-", f"{product_id}-{lot}".lower()).strip("-")[:64]
        quantity = element.quantity
        if quantity is None or quantity != int(quantity) or quantity < 0:
            raise _Refused("quantityList.0.quantity", "a whole, non-negative quantity is needed")
        unit = voc.UNIT_NAMES.get(element.uom or "") or self.ours(ilmd, "unit")
        if element.uom and element.uom not in voc.UNIT_NAMES:
            raise _Refused("quantityList.0.uom", f"we record {', '.join(voc.UNIT_NAMES)}")
        body: dict[str, Any] = {
            "id": batch_id,
            "product_id": product_id,
            "lot": lot,
            "produced_on": voc.vietnam_day(event.eventTime),
            "quantity": int(quantity),
            "unit": unit or voc.COUNT_UNIT,
            "origin": self.ours(ilmd, "origin") or "",
            "notes": self.ours(ilmd, "notes") or "",
            "inputs": [],
        }
        expires = self.ours(ilmd, "bestBeforeDate", voc.CBVMDA_NS) or self.ours(
            ilmd, "itemExpirationDate", voc.CBVMDA_NS
        )
        if expires is not None:
            body["expires_on"] = expires
        statement = self.add(index, "batch.registered", body, event.eventTime)
        self.registered[key] = statement
        self.registered[("id", str(batch_id))] = statement

    def _product_of(self, gtin: str, named: Any) -> str:
        found = self.conn.execute(select(PRODUCT.c.id).where(PRODUCT.c.gtin == gtin)).scalar()
        if found is None:
            raise _Refused("quantityList.0.epcClass", f"no product has GTIN {gtin}")
        if named is not None and named != found:
            raise _Refused("ilmd", f"GTIN {gtin} is product {found}, not {named}")
        return str(found)

    def lineage(self, index: int, event: _Event) -> None:
        outputs = [q.epcClass for q in event.outputQuantityList] + event.outputEPCList
        if len({self.identity(u) for u in outputs}) != 1:
            raise _Refused("outputQuantityList", "a transformation we record has one output")
        target = self.registered.get(self.identity(outputs[0]))
        if target is None:
            raise _Refused(
                "outputQuantityList",
                "lineage is recorded with the batch it makes: send this TransformationEvent "
                "after the ObjectEvent ADD that registers its output",
            )
        inputs = [q.epcClass for q in event.inputQuantityList] + event.inputEPCList
        target.body["inputs"] = sorted({self.batch_id(self.identity(u)) for u in inputs})
        target.events.append(index)
        KINDS["batch.registered"].validate(target.body)

    def step(self, index: int, event: _Event, extra: Mapping[str, Any]) -> None:
        step = _CBV_STEP.sub("", event.bizStep or "")
        code = voc.STEP_CODES.get(step)
        if code is None:
            known = ", ".join(voc.STEP_URIS.values())
            raise _Refused("bizStep", f"{event.bizStep!r} is not a step we record: {known}")
        place = ""
        if event.readPoint is not None:
            place = voc.place_of(event.readPoint.id) or event.readPoint.id
        body = {
            "batch_id": self.one_batch(event),
            "biz_step": code,
            "at": voc.utc_time(event.eventTime),
            "place": place,
            "note": self.ours(extra, "note") or "",
        }
        self.add(index, "batch.event", body, event.eventTime)

    def recall(self, index: int, event: _Event, extra: Mapping[str, Any]) -> None:
        reason = self.ours(extra, "reason") or DEFAULT_RECALL_REASON
        body = {"batch_id": self.one_batch(event), "reason": reason}
        self.add(index, "batch.recalled", body, event.eventTime)

    def inspection(self, index: int, event: _Event, extra: Mapping[str, Any]) -> None:
        body = {
            "batch_id": self.one_batch(event),
            "result": self.ours(extra, "inspectionResult"),
            "findings": self.ours(extra, "findings") or "",
        }
        self.add(index, "inspection.recorded", body, event.eventTime)


class _Refused(ValueError):
    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.field = where


def _event_list(document: Any) -> list[Any]:
    if not isinstance(document, dict) or document.get("type") != "EPCISDocument":
        raise InvalidInput("send an EPCIS 2.0 document: an object with type EPCISDocument")
    body = document.get("epcisBody")
    events = body.get("eventList") if isinstance(body, dict) else None
    if not isinstance(events, list) or not events:
        raise InvalidInput("epcisBody.eventList must hold at least one event", field="eventList")
    if len(events) > MAX_EVENTS:
        raise InvalidInput(f"at most {MAX_EVENTS} events a document", field="eventList")
    return events


def _already_here(conn: Connection, service: TraceService, capture: _Capture, raw: Any) -> bool:
    """An event exported from this very ledger: its entry (index and hash) is here."""
    reference = capture.ours(raw, "ledgerEntry") if isinstance(raw, dict) else None
    if not isinstance(reference, dict):
        return False
    index = capture.ours(reference, "index")
    digest = capture.ours(reference, "hash")
    if type(index) is not int or not 0 <= index < 2**53 or not isinstance(digest, str):
        return False
    data = service.store.entry(index, conn)
    return data is not None and parse_entry(data).hash.hex() == digest


def capture(
    service: TraceService, principal: Principal, document: Any, public_url: str
) -> dict[str, Any]:
    """Append the document's events as statements under the caller's key, all or none."""
    require_role(principal, "producer", "inspector")
    events = _event_list(document)
    prefixes = prefixes_of(document.get("@context", []))
    prefixes.update(STANDARD_PREFIXES)
    skipped: list[int] = []
    with service.engine.connect() as conn:
        work = _Capture(conn, public_url, prefixes, principal.role)
        for index, raw in enumerate(events):
            if _already_here(conn, service, work, raw):
                skipped.append(index)
            else:
                work.take(index, raw)
    if work.problems:
        raise InvalidInput(
            f"{len({p['event'] for p in work.problems})} of the {len(events)} events cannot be "
            "captured; nothing was appended",
            field="eventList",
            details={"errors": work.problems},
        )
    items = [(s.kind, s.body, s.issued_at) for s in work.statements]
    try:
        receipts = service.sign_own(principal, items) if items else []
    except Exception as exc:
        error = as_service_error(exc)
        if error is None or error.position is None:
            raise
        refused = work.statements[error.position]
        raise type(error)(
            f"event {refused.events[0]}: {error.message}; nothing was appended",
            field="eventList",
            details={
                "errors": [
                    {"event": i, "field": error.field or "", "reason": error.message}
                    for i in refused.events
                ]
            },
        ) from None
    return {
        "events": len(events),
        "appended": sum(1 for r in receipts if not r.duplicate),
        "duplicates": sum(1 for r in receipts if r.duplicate),
        "already_in_ledger": skipped,
        "statements": [
            {"events": s.events, "kind": s.kind, "index": r.index, "duplicate": r.duplicate}
            for s, r in zip(work.statements, receipts, strict=True)
        ],
    }
