"""The projection: statements applied, through the kind registry, to the tables pages read.

The same code runs inside each append (so a statement that breaks a rule is refused and
nothing is written) and when the tables are rebuilt from the ledger alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from ledger.authority import KeyGrant
from ledger.statement import Statement
from ocop_trace.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from ocop_trace.kinds import KINDS, LEDGER_KINDS
from ocop_trace.models import (
    BATCH,
    BATCH_INPUT,
    LABEL_SET,
    PROJECTION_TABLES,
    UPDATE_HISTORY,
)
from ocop_trace.reads import gtin_changes


class Projector:
    """Applies statements one at a time through a connection inside the caller's
    transaction; the kinds' handlers use its helpers to read and refuse."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.issued_at = ""  # of the statement being applied (update history keeps it)

    def apply_all(self, appended: Iterable[tuple[int, Statement, KeyGrant | None]]) -> None:
        for index, statement, grant in appended:
            self.apply(index, statement, grant)

    def apply(self, index: int, statement: Statement, signer: KeyGrant | None) -> None:
        if statement.kind in LEDGER_KINDS:
            return  # the ledger keeps its own key table
        try:
            kind = KINDS.get(statement.kind)
            if kind is None:
                raise InvalidInput(f"unknown statement kind {statement.kind!r}", field="kind")
            if signer is None or signer.role != kind.signer:
                raise Forbidden(f"{statement.kind} must be signed by a {kind.signer} key")
            self.issued_at = statement.issued_at
            kind.project(self, index, kind.validate(statement.body), signer)
        except ServiceError as exc:
            exc.entry_index = index  # the store names the statement it came from
            raise

    # -- helpers for the kinds' handlers -------------------------------------------------
    def require(self, table: Any, key: object, what: str) -> Any:
        """The row with this id, or NotFound naming the field that pointed at it."""
        row = (
            self.conn.execute(select(table).where(table.c.id == key)).first()
            if type(key) is str
            else None
        )
        if row is None:
            raise NotFound(f"no {what} with id {key!r}", field=f"{what.split()[-1]}_id")
        return row

    def refuse_existing(self, table: Any, key: str, what: str) -> None:
        if self.conn.execute(select(table.c.id).where(table.c.id == key)).first() is not None:
            raise Conflict(f"a {what} with id {key!r} already exists", field="id")

    @staticmethod
    def own(signer: KeyGrant, producer_id: str, what: str) -> None:
        """The one ownership rule: a producer's key acts only on its own products and
        batches (the key's registration names the producer as its subject)."""
        if signer.subject != producer_id:
            raise Forbidden(
                f"{what} belongs to another producer: you can act only for your own",
                details={"expected": producer_id, "found": signer.subject},
            )

    def record_update(
        self,
        index: int,
        subject: str,
        subject_id: str,
        changes: dict[str, Any],
        previous: dict[str, Any],
    ) -> None:
        """Keep what an update entry changed; an update that changes nothing is refused."""
        if not changes:
            raise InvalidInput(f"this update changes nothing: the {subject} already says so")
        self.conn.execute(
            insert(UPDATE_HISTORY).values(
                entry_index=index,
                subject=subject,
                subject_id=subject_id,
                issued_at=self.issued_at,
                changes=_json(changes),
                previous=_json(previous),
            )
        )

    def check_gtin_change(self, product: Any) -> None:
        """A product's GTIN may change only while no label carries it: a label issued since
        the entry that set the current GTIN prints it, and would stop resolving."""
        if not product.gtin:
            return  # labels without a GTIN carry the service's own link, which still works
        changes = gtin_changes(self.conn, product.id)
        since = changes[-1][0] if changes else product.entry_index
        labelled = self.conn.execute(
            select(LABEL_SET.c.id)
            .join(BATCH, BATCH.c.id == LABEL_SET.c.batch_id)
            .where(BATCH.c.product_id == product.id, LABEL_SET.c.id > since)
            .limit(1)
        ).first()
        if labelled is not None:
            raise Conflict(
                f"labels printed with GTIN {product.gtin} exist (entry {labelled.id}): "
                "the GTIN cannot change; register a new product instead",
                field="gtin",
            )

    def downstream(self, batch_id: str) -> set[str]:
        """Every batch made from this one, at any depth."""
        frontier, seen = [batch_id], {batch_id}
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
        return seen - {batch_id}


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def clear(conn: Connection) -> None:
    """Empty every projection table (before a rebuild)."""
    for table in reversed(PROJECTION_TABLES):
        conn.execute(delete(table))


__all__ = ["Projector", "clear"]
