"""The projection: statements applied, through the kind registry, to the tables pages read.

The same code runs inside each append (so a statement that breaks a rule is refused and
nothing is written) and when the tables are rebuilt from the ledger alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, delete, select

from ledger.authority import KeyGrant
from ledger.statement import Statement
from ocop_trace.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceError
from ocop_trace.kinds import KINDS, LEDGER_KINDS
from ocop_trace.models import BATCH_INPUT, PROJECTION_TABLES


class Projector:
    """Applies statements one at a time through a connection inside the caller's
    transaction; the kinds' handlers use its helpers to read and refuse."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

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


def clear(conn: Connection) -> None:
    """Empty every projection table (before a rebuild)."""
    for table in reversed(PROJECTION_TABLES):
        conn.execute(delete(table))


__all__ = ["Projector", "clear"]
