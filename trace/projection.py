"""The projection: statements applied to the tables pages read, with OCOP's domain rules.

The same code runs inside each append (so a statement that breaks a rule is refused and
nothing is written) and when the tables are rebuilt from the ledger alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, delete, insert, select, update

from ledger.authority import KEY_REGISTERED, KEY_REVOKED, KeyGrant
from ledger.statement import Statement
from ocop_trace import ocop
from ocop_trace.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from ocop_trace.models import (
    PROJECTION_TABLES,
    Batch,
    BatchCreate,
    BatchEvent,
    BatchInput,
    EventCreate,
    Inspection,
    InspectionCreate,
    LabelSet,
    Producer,
    ProducerCreate,
    Product,
    ProductCreate,
    Rating,
    RatingCreate,
    RatingRevoke,
    RecallCreate,
)

PRODUCER = Producer.__table__  # type: ignore[attr-defined]
PRODUCT = Product.__table__  # type: ignore[attr-defined]
RATING = Rating.__table__  # type: ignore[attr-defined]
BATCH = Batch.__table__  # type: ignore[attr-defined]
BATCH_INPUT = BatchInput.__table__  # type: ignore[attr-defined]
EVENT = BatchEvent.__table__  # type: ignore[attr-defined]
INSPECTION = Inspection.__table__  # type: ignore[attr-defined]
LABEL_SET = LabelSet.__table__  # type: ignore[attr-defined]

# Which role's key signs each kind; the ledger's key registry says which key may sign it.
KIND_ROLES: dict[str, str] = {
    "producer.registered": "council",
    "product.registered": "council",
    "rating.recorded": "council",
    "rating.revoked": "council",
    "batch.registered": "producer",
    "batch.event": "producer",
    "batch.recalled": "producer",
    "inspection.recorded": "inspector",
    "labels.issued": "producer",
}


def body_model(model: type[BaseModel], body: dict[str, Any]) -> Any:
    """Validate a statement body against the API model for its kind."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{field}: {message}" if field else message, field=field) from None


class Projector:
    """Applies one statement at a time through a connection inside the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def apply_all(self, appended: Iterable[tuple[int, Statement, KeyGrant | None]]) -> None:
        for index, statement, grant in appended:
            self.apply(index, statement, grant)

    def apply(self, index: int, statement: Statement, signer: KeyGrant | None) -> None:
        if statement.kind in (KEY_REGISTERED, KEY_REVOKED):
            return  # the ledger keeps its own key table
        role = KIND_ROLES.get(statement.kind)
        if role is None:
            raise InvalidInput(f"unknown statement kind {statement.kind!r}", field="kind")
        if signer is None or signer.role != role:
            raise Forbidden(f"{statement.kind} must be signed by a {role} key")
        handler = getattr(self, "_" + statement.kind.replace(".", "_"))
        handler(index, statement.body, signer)

    # -- council ------------------------------------------------------------------------
    def _producer_registered(self, index: int, body: dict[str, Any], _: KeyGrant) -> None:
        data: ProducerCreate = body_model(ProducerCreate, body)
        self._refuse_existing(PRODUCER, data.id, "producer")
        certified, current = data.address_certified, data.address_current
        self.conn.execute(
            insert(PRODUCER).values(
                id=data.id,
                name=data.name,
                type=data.type,
                registration_no=data.registration_no,
                contact=data.contact,
                certified_province=certified.province,
                certified_district=certified.district,
                certified_commune=certified.commune,
                certified_line=certified.line,
                current_province=current.province,
                current_commune=current.commune,
                current_line=current.line,
                entry_index=index,
            )
        )

    def _product_registered(self, index: int, body: dict[str, Any], _: KeyGrant) -> None:
        data: ProductCreate = body_model(ProductCreate, body)
        self._refuse_existing(PRODUCT, data.id, "product")
        self._require(PRODUCER, data.producer_id, "producer")
        values = data.model_dump()
        values.update(sector=ocop.sector_of(data.product_set), entry_index=index)
        self.conn.execute(insert(PRODUCT).values(**values))

    def _rating_recorded(self, index: int, body: dict[str, Any], _: KeyGrant) -> None:
        data: RatingCreate = body_model(RatingCreate, body)
        self._require(PRODUCT, data.product_id, "product")
        band = ocop.stars_for_score(data.score_hundredths, data.level)
        expires = ocop.certificate_expiry(date.fromisoformat(data.issued_on))
        self.conn.execute(
            insert(RATING).values(
                id=index,
                stars=band.stars,
                potential_five=band.potential_five,
                expires_on=expires.isoformat(),
                revoked_index=None,
                revoked_reason="",
                **data.model_dump(),
            )
        )

    def _rating_revoked(self, index: int, body: dict[str, Any], _: KeyGrant) -> None:
        rating_id = body.get("rating_id")
        data: RatingRevoke = body_model(RatingRevoke, {"reason": body.get("reason")})
        row = self.conn.execute(
            select(RATING.c.revoked_index).where(RATING.c.id == rating_id)
        ).first()
        if row is None:
            raise NotFound(f"no rating {rating_id}", field="rating_id")
        if row.revoked_index is not None:
            raise Conflict(f"rating {rating_id} is already revoked")
        self.conn.execute(
            update(RATING)
            .where(RATING.c.id == rating_id)
            .values(revoked_index=index, revoked_reason=data.reason)
        )

    # -- producers ----------------------------------------------------------------------
    def _batch_registered(self, index: int, body: dict[str, Any], signer: KeyGrant) -> None:
        data: BatchCreate = body_model(BatchCreate, body)
        self._refuse_existing(BATCH, data.id, "batch")
        product = self._require(PRODUCT, data.product_id, "product")
        self._own(signer, product.producer_id, f"product {data.product_id}")
        lot_taken = self.conn.execute(
            select(BATCH.c.id).where(BATCH.c.product_id == data.product_id, BATCH.c.lot == data.lot)
        ).first()
        if lot_taken is not None:
            raise Conflict(
                f"lot {data.lot} is already used for product {data.product_id}", field="lot"
            )
        recall_source, recall_reason, recalled_index = "", "", None
        for input_id in data.inputs:
            parent = self._require(BATCH, input_id, "input batch")
            if parent.recalled_index is not None and not recall_source:
                recall_source = parent.recall_source or parent.id
                recall_reason, recalled_index = parent.recall_reason, index
        values = data.model_dump(exclude={"inputs"})
        self.conn.execute(
            insert(BATCH).values(
                producer_id=product.producer_id,
                entry_index=index,
                recalled_index=recalled_index,
                recall_reason=recall_reason,
                recall_source=recall_source,
                **values,
            )
        )
        if data.inputs:
            self.conn.execute(
                insert(BATCH_INPUT),
                [{"batch_id": data.id, "input_id": i} for i in dict.fromkeys(data.inputs)],
            )

    def _batch_event(self, index: int, body: dict[str, Any], signer: KeyGrant) -> None:
        batch = self._require(BATCH, body.get("batch_id"), "batch")
        self._own(signer, batch.producer_id, f"batch {batch.id}")
        data: EventCreate = body_model(
            EventCreate, {k: v for k, v in body.items() if k != "batch_id"}
        )
        self.conn.execute(
            insert(EVENT).values(
                id=index, batch_id=batch.id, actor_key_id=signer.key_id, **data.model_dump()
            )
        )

    def _batch_recalled(self, index: int, body: dict[str, Any], signer: KeyGrant) -> None:
        batch = self._require(BATCH, body.get("batch_id"), "batch")
        self._own(signer, batch.producer_id, f"batch {batch.id}")
        data: RecallCreate = body_model(RecallCreate, {"reason": body.get("reason")})
        if batch.recalled_index is not None and batch.recall_source == batch.id:
            raise Conflict(f"batch {batch.id} is already recalled")
        # Everything made from this batch, at any depth, is flagged as recalled upstream.
        frontier, seen = [batch.id], {batch.id}
        while frontier:
            children = (
                self.conn.execute(
                    select(BATCH_INPUT.c.batch_id).where(BATCH_INPUT.c.input_id.in_(frontier))
                )
                .scalars()
                .all()
            )
            frontier = [c for c in children if c not in seen]
            seen.update(frontier)
        downstream = seen - {batch.id}
        self.conn.execute(
            update(BATCH)
            .where(BATCH.c.id == batch.id)
            .values(recalled_index=index, recall_reason=data.reason, recall_source=batch.id)
        )
        if downstream:
            self.conn.execute(
                update(BATCH)
                .where(BATCH.c.id.in_(downstream), BATCH.c.recalled_index.is_(None))
                .values(recalled_index=index, recall_reason=data.reason, recall_source=batch.id)
            )

    def _labels_issued(self, index: int, body: dict[str, Any], signer: KeyGrant) -> None:
        batch = self._require(BATCH, body.get("batch_id"), "batch")
        self._own(signer, batch.producer_id, f"batch {batch.id}")
        count, commitment = body.get("count"), body.get("commitment")
        if type(count) is not int or not 1 <= count <= 10_000:
            raise InvalidInput("count must be 1 to 10000", field="count")
        if type(commitment) is not str or len(commitment) != 64:
            raise InvalidInput("commitment must be a 64-hex Merkle root", field="commitment")
        self.conn.execute(
            insert(LABEL_SET).values(
                id=index, batch_id=batch.id, count=count, commitment=commitment
            )
        )

    # -- inspectors ---------------------------------------------------------------------
    def _inspection_recorded(self, index: int, body: dict[str, Any], signer: KeyGrant) -> None:
        data: InspectionCreate = body_model(InspectionCreate, body)
        self._require(BATCH, data.batch_id, "batch")
        self.conn.execute(
            insert(INSPECTION).values(id=index, inspector_key_id=signer.key_id, **data.model_dump())
        )

    # -- helpers ------------------------------------------------------------------------
    def _require(self, table: Any, key: object, what: str) -> Any:
        row = (
            self.conn.execute(select(table).where(table.c.id == key)).first()
            if type(key) is str
            else None
        )
        if row is None:
            raise NotFound(f"no {what} with id {key!r}", field=f"{what.split()[-1]}_id")
        return row

    def _refuse_existing(self, table: Any, key: str, what: str) -> None:
        if self.conn.execute(select(table.c.id).where(table.c.id == key)).first() is not None:
            raise Conflict(f"a {what} with id {key!r} already exists", field="id")

    @staticmethod
    def _own(signer: KeyGrant, producer_id: str, what: str) -> None:
        if signer.subject != producer_id:
            raise Forbidden(
                f"{what} belongs to another producer",
                details={"expected": producer_id, "found": signer.subject},
            )


def clear(conn: Connection) -> None:
    """Empty every projection table (before a rebuild)."""
    for table in reversed(PROJECTION_TABLES):
        conn.execute(delete(table))


__all__ = ["KIND_ROLES", "Projector", "ServiceError", "body_model", "clear"]
