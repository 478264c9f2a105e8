"""What a scan shows about a product or batch, each fact checked against its signed entry.

The projection's rows say what to show; the ledger's own entries, found through its
subject index and proven against the latest signed checkpoint, say whether it is true.
Facts that change a verdict (a recall, a revoked rating) are taken from the entries both
ways: a recall entry the rows hide still recalls, a recall the rows invent is flagged.
Anything that differs is named as `part.problem` ("batch.quantity", "event.missing").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from ocop_trace import ocop
from ocop_trace.errors import NotFound, Voided
from ocop_trace.evidence import Evidence, Proof
from ocop_trace.kinds import KINDS
from ocop_trace.models import EVENT, LABEL_SERIAL, RATING
from ocop_trace.reads import batch_public, batch_row, producer_public
from ocop_trace.verdict import Findings

MAX_ANCESTORS = 200  # lineage walked for upstream recalls; a longer one is flagged
# What can be wrong with a part of a page besides a field that differs (named by its field).
PROBLEMS = (
    "kind",  # the entry is not the part's kind of statement
    "missing",  # the ledger has an entry the rows do not show
    "invented",  # the rows show what the ledger does not hold
    "hidden",  # a recall or revocation the ledger holds and the rows leave out
    "extra",  # an entry the rows give this batch that the ledger gives another
    "inputs",  # an input batch the lineage names is not as signed
    "lineage_too_long",
    "serial",  # a serial not in its signed label set
    "serials",  # a label set whose stored serials do not hash to its signed root
    "field",  # (the words for "<field> differs")
)


@dataclass(frozen=True, slots=True)
class Check:
    """One entry a page rests on: its proof, and what of the page disagrees with it."""

    part: str
    index: int | None
    short_hash: str
    proof: Proof
    problems: tuple[str, ...] = ()
    update: bool = False  # a later entry that set some of the part's fields

    @property
    def ok(self) -> bool:
        return self.proof.verified and not self.problems


@dataclass
class ScanView:
    """Everything a product's or batch's page shows, for one state of the ledger."""

    product: dict[str, Any]
    producer: dict[str, Any]
    batch: dict[str, Any] | None
    rating: dict[str, Any] | None  # the current one, or the latest with why it is not
    recall: dict[str, Any] | None  # {"state": "self"|"upstream", "batch_id", "reason"}
    events: list[dict[str, Any]]
    inspections: list[dict[str, Any]]
    checks: list[Check]
    checkpoint: dict[str, Any] | None  # {"size", "short_root", "at"}
    # The ledger subjects its facts were read from: an entry about any of them changes it.
    subjects: frozenset[str] = frozenset()
    mismatch: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mismatch = [f"{c.part}.{p}" for c in self.checks for p in c.problems]


@dataclass(frozen=True, slots=True)
class SerialCheck:
    """A label's serial, proven (or not) in the label set its batch's producer signed."""

    set_index: int
    proven: bool
    problems: tuple[str, ...]
    position: int = -1
    path_length: int = 0
    set_size: int = 0


class _Checker:
    def __init__(self, conn: Connection, evidence: Evidence) -> None:
        self.conn, self.evidence = conn, evidence
        self.pages = evidence.witnessing.checkpoint(conn)
        self.note = self.pages.note
        self.checks: list[Check] = []
        self.subjects: set[str] = set()  # every subject whose entries were asked for

    def check(
        self,
        part: str,
        index: int,
        shown: dict[str, Any] | None,
        *extra: str,
        names: Sequence[str] | None = None,
        read_as: str | None = None,
    ) -> dict[str, Any] | None:
        """Compare what the page shows of `part` (those `names` of it; all it shows by
        default) with the entry at `index`, read as `read_as`'s kind (an update of the
        part); returns what the entry says (None when it is not that kind of entry)."""
        facts = self.evidence.entry(self.conn, index)
        signed = self.evidence.signed(facts, read_as or part)
        problems = list(extra)
        if signed is None:
            problems.append("kind")
        elif shown is not None:
            if names is None:
                names = KINDS.for_part(part).shown.fields  # type: ignore[union-attr]
            problems += [n for n in names if shown.get(n) != signed.get(n)]
        proof = self.evidence.proof(self.conn, self.note, index)
        check = Check(part, index, facts.short_hash, proof, tuple(problems), read_as is not None)
        self.checks.append(check)
        return signed

    def check_updated(self, part: str, index: int, shown: dict[str, Any], key: str) -> None:
        """A producer or product: each field shown compared with the entry that last set
        it, its registration or a later update, as the ledger's own entries say (the
        rows' update history is for showing the history, not for deciding this)."""
        updater = KINDS.updater_of(part)
        names = list(KINDS.for_part(part).shown.fields)  # type: ignore[union-attr]
        setters = dict.fromkeys(names, index)
        if updater is not None and updater.shown is not None:
            for update in self.about(f"{part}:{key}", updater.name):
                said = self.evidence.signed(
                    self.evidence.entry(self.conn, update), updater.shown.part
                )
                setters.update((n, update) for n in (said or {}) if n in setters)
        groups: dict[int, list[str]] = {index: []}
        for name, setter in setters.items():
            groups.setdefault(setter, []).append(name)
        for setter, group in sorted(groups.items()):
            if setter == index:
                self.check(part, index, shown, names=group)
            elif updater is not None and updater.shown is not None:
                self.check(part, setter, shown, names=group, read_as=updater.shown.part)

    def absent(self, part: str, index: int | None, problem: str) -> None:
        """Something the page would show differently: the ledger has it and the rows do not,
        or the rows have it and the ledger does not."""
        self.checks.append(Check(part, index, "", Proof(False), (problem,)))

    def about(self, subject: str, kind: str) -> list[int]:
        self.subjects.add(subject)
        return self.evidence.about(self.conn, subject, [kind])

    def checkpoint(self) -> dict[str, Any] | None:
        cp = self.evidence.checkpoint(self.conn, self.note) if self.note else None
        if cp is None:
            return None
        at = self.evidence.store.checkpoint_time(cp.size, self.conn)
        return {
            "size": cp.size,
            "short_root": cp.root_hash.hex()[:16],
            "at": at,
            "witnessed": self.pages.policy,  # a witness policy is in force
            "confirmed_by": list(self.pages.confirmed_by),
        }


def view(
    conn: Connection, evidence: Evidence, product: Any, batch: Any | None, today: date
) -> ScanView:
    """The page of a product (`batch` None: a GTIN link) or of one of its batches."""
    from ocop_trace.models import PRODUCER

    c = _Checker(conn, evidence)
    producer_row = conn.execute(select(PRODUCER).where(PRODUCER.c.id == product.producer_id)).one()
    shown_product = {k: getattr(product, k) for k in KINDS["product.registered"].body.model_fields}
    producer = producer_public(producer_row).model_dump()
    batch_view = recall = None
    events: list[dict[str, Any]] = []
    inspections: list[dict[str, Any]] = []
    if batch is not None:
        batch_view = batch_public(conn, batch).model_dump()
        signed = c.check("batch", batch.entry_index, batch_view)
        recall = _recall(c, batch, signed)
        events = _events(c, batch.id)
        inspections = _inspections(c, batch.id)
    c.check_updated("product", product.entry_index, shown_product, product.id)
    c.check_updated("producer", producer_row.entry_index, producer, producer_row.id)
    rating = _rating(c, product.id, today)
    c.subjects |= {f"product:{product.id}", f"producer:{producer_row.id}"}
    if batch is not None:
        c.subjects.add(f"batch:{batch.id}")
    return ScanView(
        product=shown_product,
        producer=producer,
        batch=batch_view,
        rating=rating,
        recall=recall,
        events=events,
        inspections=inspections,
        checks=c.checks,
        checkpoint=c.checkpoint(),
        subjects=frozenset(c.subjects),
    )


def reproved(conn: Connection, evidence: Evidence, scan: ScanView) -> ScanView:
    """The same facts proven against the latest checkpoint. What a page shows changes only
    with an entry about its subjects (and then it is read again): a newer checkpoint
    changes only its entries' proofs and the checkpoint it names."""
    c = _Checker(conn, evidence)
    # Entries, not what the rows lack (those have no hash): proven together, one query.
    entries = [k.index for k in scan.checks if k.short_hash and k.index is not None]
    proofs = evidence.proofs(conn, c.note, entries)
    checks = [
        replace(k, proof=proofs[k.index]) if k.short_hash and k.index is not None else k
        for k in scan.checks
    ]
    return replace(scan, checks=checks, checkpoint=c.checkpoint())


@dataclass
class ProducerView:
    """A producer's public page: its facts, checked like a scan page's, and its products."""

    producer: dict[str, Any]
    checks: list[Check]
    checkpoint: dict[str, Any] | None

    @property
    def mismatch(self) -> list[str]:
        return [f"{c.part}.{p}" for c in self.checks for p in c.problems]


def producer_view(conn: Connection, evidence: Evidence, producer_row: Any) -> ProducerView:
    """The producer as its registration and later updates say, each field checked."""
    c = _Checker(conn, evidence)
    producer = producer_public(producer_row).model_dump()
    c.check_updated("producer", producer_row.entry_index, producer, producer_row.id)
    return ProducerView(producer, c.checks, c.checkpoint())


def rating_history(conn: Connection, evidence: Evidence, product_id: str) -> list[dict[str, Any]]:
    """Every rating the council recorded for the product, newest first, read from its
    entries (with whether each was later revoked), so the history is the ledger's own."""
    found = []
    for index in reversed(evidence.about(conn, f"product:{product_id}", ["rating.recorded"])):
        said = evidence.signed(evidence.entry(conn, index), "rating")
        if said is None:
            continue
        revoked = evidence.about(conn, f"rating:{index}", ["rating.revoked"])
        found.append({**said, "index": index, "revoked": bool(revoked)})
    return found


def _recall(c: _Checker, batch: Any, signed: dict[str, Any] | None) -> dict[str, Any] | None:
    """The batch's recall as its entries say, compared with its row both ways."""
    own = c.about(f"batch:{batch.id}", "batch.recalled")
    found = ("self", own[0]) if own else None
    if found is None:
        upstream = [
            i for a in _ancestors(c, batch, signed) for i in c.about(f"batch:{a}", "batch.recalled")
        ]
        found = ("upstream", min(upstream)) if upstream else None
    if found is None:
        if batch.recalled_index is not None:  # the rows recall what the ledger does not
            c.absent("recall", batch.recalled_index, "invented")
        return None
    state, index = found
    shown = {"batch_id": batch.recall_source, "reason": batch.recall_reason}
    hidden = () if batch.recalled_index is not None else ("hidden",)
    said = c.check("recall", index, shown, *hidden)
    if said is None:
        return None
    return {"state": state, "batch_id": said["batch_id"], "reason": said["reason"], "index": index}


def _ancestors(c: _Checker, batch: Any, signed: dict[str, Any] | None) -> list[str]:
    """Every batch this one was made from, walked through their signed registrations (the
    rows only say where each registration is; what it says is read from the entry)."""
    seen: set[str] = set()
    frontier = list(signed["inputs"]) if signed else []
    while frontier and len(seen) < MAX_ANCESTORS:
        batch_id = frontier.pop()
        if batch_id in seen:
            continue
        seen.add(batch_id)
        try:
            row = batch_row(c.conn, batch_id)
        except NotFound:
            c.absent("batch", None, "inputs")
            continue
        said = c.evidence.signed(c.evidence.entry(c.conn, row.entry_index), "batch")
        if said is None or said["id"] != batch_id:
            c.absent("batch", row.entry_index, "inputs")
            continue
        frontier.extend(said["inputs"])
    if frontier:
        c.absent("batch", batch.entry_index, "lineage_too_long")
    return sorted(seen)


def _events(c: _Checker, batch_id: str) -> list[dict[str, Any]]:
    """The batch's events as its rows show them, the set compared with the ledger's."""
    rows = c.conn.execute(
        select(EVENT).where(EVENT.c.batch_id == batch_id).order_by(EVENT.c.at, EVENT.c.id)
    ).all()
    signed = set(c.about(f"batch:{batch_id}", "batch.event"))
    events = []
    for row in rows:
        shown = {k: getattr(row, k) for k in ("batch_id", "biz_step", "at", "place", "note")}
        c.check("event", int(row.id), shown, *(() if row.id in signed else ("extra",)))
        events.append({**shown, "index": int(row.id)})
    for index in sorted(signed - {int(r.id) for r in rows}):
        c.absent("event", index, "missing")  # an event the rows no longer show
    return events


def _inspections(c: _Checker, batch_id: str) -> list[dict[str, Any]]:
    """Inspections recorded for the batch, read from their entries (the rows add nothing)."""
    names = {g.key_id: g.name for g in c.evidence.store.grants(c.conn).values()}
    found = []
    for index in c.about(f"batch:{batch_id}", "inspection.recorded"):
        said = c.check("inspection", index, None)
        if said is not None:
            facts = c.evidence.entry(c.conn, index)
            found.append(
                {**said, "at": facts.issued_at, "by": names.get(facts.key_id, ""), "index": index}
            )
    return found


def _rating(c: _Checker, product_id: str, today: date) -> dict[str, Any] | None:
    """The product's current rating, worked out from its entries: the latest neither
    revoked nor expired, else the latest. Its row and revocation are compared both ways."""
    ledger = c.about(f"product:{product_id}", "rating.recorded")
    rows = {
        int(r.id): r
        for r in c.conn.execute(select(RATING).where(RATING.c.product_id == product_id)).all()
    }
    for index in sorted(set(ledger) - set(rows)):
        c.absent("rating", index, "missing")
    for index in sorted(set(rows) - set(ledger)):
        c.absent("rating", index, "invented")
    ratings = []
    for index in reversed(ledger):  # newest first
        said = c.evidence.signed(c.evidence.entry(c.conn, index), "rating")
        if said is None:
            continue
        revocations = c.about(f"rating:{index}", "rating.revoked")
        revoked = revocations[0] if revocations else None
        status = ocop.rating_status(
            date.fromisoformat(said["issued_on"]),
            date.fromisoformat(said["expires_on"]),
            revoked=revoked is not None,
            today=today,
        )
        ratings.append((index, said, revoked, status))
    if not ratings:
        return None
    current = next(
        (r for r in ratings if r[3] in (ocop.RatingStatus.VALID, ocop.RatingStatus.EXPIRING)),
        ratings[0],
    )
    index, said, revoked, status = current
    row = rows.get(index)
    shown = {k: getattr(row, k) for k in said} if row is not None else None
    c.check("rating", index, shown)
    reason = ""
    if revoked is not None:
        revocation = c.check(
            "rating_revocation",
            revoked,
            {"rating_id": index, "reason": row.revoked_reason if row is not None else ""},
            *(() if row is not None and row.revoked_index is not None else ("hidden",)),
        )
        reason = revocation["reason"] if revocation else ""
    elif row is not None and row.revoked_index is not None:
        c.absent("rating_revocation", row.revoked_index, "invented")
    return {**said, "id": index, "status": str(status), "revoked_reason": reason}


def serial_check(conn: Connection, evidence: Evidence, serial: str, batch_id: str) -> SerialCheck:
    """Is this serial one of those the batch's producer committed to in a signed label set?"""
    set_index = conn.execute(
        select(LABEL_SERIAL.c.label_set_id).where(LABEL_SERIAL.c.serial == serial)
    ).scalar()
    if set_index is None:
        raise NotFound("this code is not registered: the product may be counterfeit")
    refuse_voided(conn, evidence, int(set_index))
    said = evidence.signed(evidence.entry(conn, int(set_index)), "labels")
    if said is None or said["batch_id"] != batch_id:
        return SerialCheck(int(set_index), False, ("kind",))
    labels = evidence.label_set(conn, int(set_index), said["commitment"])
    found = labels.tree.proof(serial)
    problems = () if labels.matches else ("serials",)
    if found is None:
        return SerialCheck(int(set_index), False, (*problems, "serial"))
    position, path = found
    return SerialCheck(
        int(set_index), labels.matches, problems, position, len(path), len(labels.tree)
    )


def refuse_voided(conn: Connection, evidence: Evidence, set_index: int) -> None:
    """Voided if its producer signed a labels.voided entry for the set: read from the
    ledger's own index (as a recall is), so rows that hide a void cannot revive a code."""
    for index in evidence.about(conn, f"label_set:{set_index}", ["labels.voided"]):
        facts = evidence.entry(conn, index)
        said = evidence.signed(facts, "labels_void")
        if said is not None and said["label_set"] == set_index:
            raise Voided(
                f"this code was voided by its producer and is not registered: {said['reason']}",
                set_index=set_index,
                index=index,
                reason=said["reason"],
                at=facts.issued_at,
            )


def refuse_voided_serial(conn: Connection, evidence: Evidence, serial: str) -> None:
    """Voided if the serial's label set is (for what reads a serial without checking it)."""
    set_index = conn.execute(
        select(LABEL_SERIAL.c.label_set_id).where(LABEL_SERIAL.c.serial == serial)
    ).scalar()
    if set_index is not None:
        refuse_voided(conn, evidence, int(set_index))


def batch_of_serial(conn: Connection, serial: str) -> str | None:
    return conn.execute(
        select(LABEL_SERIAL.c.batch_id).where(LABEL_SERIAL.c.serial == serial)
    ).scalar()


@dataclass(frozen=True, slots=True)
class Target:
    """What a scanned link names: a label's serial, a GTIN (and lot), or a batch."""

    serial: str | None = None
    gtin: str | None = None
    lot: str | None = None
    batch_id: str | None = None


def rows_for(conn: Connection, target: Target) -> tuple[Any, Any]:
    """(product row, batch row or None) for a link, or NotFound: an unknown serial, GTIN or
    lot, or a serial whose batch is not the product or lot the link names."""
    from ocop_trace.models import BATCH, PRODUCT

    unknown = NotFound("no registered product matches this code: it may be counterfeit")
    batch: Any = None
    product: Any
    if target.serial is not None:
        batch_id = batch_of_serial(conn, target.serial)
        if batch_id is None:
            raise unknown
        batch = batch_row(conn, batch_id)
    elif target.batch_id is not None:
        batch = batch_row(conn, target.batch_id)
    if batch is not None:
        product = conn.execute(select(PRODUCT).where(PRODUCT.c.id == batch.product_id)).one()
    else:
        product = conn.execute(select(PRODUCT).where(PRODUCT.c.gtin == target.gtin)).first()
        if product is None:
            raise unknown
        if target.lot is not None:
            batch = conn.execute(
                select(BATCH).where(BATCH.c.product_id == product.id, BATCH.c.lot == target.lot)
            ).first()
            if batch is None:
                raise unknown  # an invented lot of a real product
    if (target.gtin is not None and product.gtin != target.gtin) or (
        target.lot is not None and batch is not None and batch.lot != target.lot
    ):
        raise unknown
    return product, batch


def base_findings(scan: ScanView) -> Findings:
    """What the verdict rests on that is the same for every scan of this page."""
    return Findings(
        has_serial=False,
        serial_proven=False,
        signature=None,
        recall=(scan.recall or {}).get("state"),
        copied=False,
        rating=scan.rating["status"] if scan.rating else None,
        mismatched=bool(scan.mismatch),
    )


def per_scan(
    base: Findings, check: SerialCheck | None, copied: bool, signature: str | None
) -> Findings:
    """The findings for one scan: its serial's check, the copy count, a label signature."""
    return replace(
        base,
        has_serial=check is not None,
        serial_proven=check is not None and check.proven,
        copied=copied,
        signature=signature,
        mismatched=base.mismatched or bool(check and check.problems),
    )
