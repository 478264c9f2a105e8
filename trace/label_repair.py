"""Label sets whose serials the service does not hold: found, filled in, or marked as such.

A `labels.issued` entry commits to its serials by their Merkle root only. Ledgers written
before serials were stored in the entry's own transaction (or fed an offline label set
without its serials) can hold a set whose serials are missing. `ocop-trace repair-labels`
fills a set in from its serials (checked against the root), or marks it as not held here:
`verify` then reports it as information, and its serials scan as not registered.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    String,
    any_,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel

from ledger.statement import Statement, utc_now
from ledger.store import ENTRY, writing
from ocop_trace.errors import Conflict, InvalidInput
from ocop_trace.models import LABEL_SERIAL, LABEL_SET
from ocop_trace.serials import SerialError, canonical_set_commitment, canonical_text, parse_human


class LabelSetUnheld(SQLModel, table=True):
    """A label set whose serials this service does not hold (marked by repair-labels)."""

    __tablename__ = "label_set_unheld"
    label_set_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    marked_at: str = Field(max_length=32)
    reason: str = Field(max_length=500)


UNHELD = LabelSetUnheld.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LabelSetState:
    id: int
    batch_id: str
    count: int
    commitment: str
    held: int  # serials stored for it
    unheld: bool  # marked as not held here


def serial_text(text: str) -> str:
    """A serial as stored (canonical), from its link form or its printed form."""
    try:
        return canonical_text(text)
    except SerialError:
        try:
            return parse_human(text).canonical
        except SerialError as exc:
            raise InvalidInput(f"{text!r} is not a label serial: {exc}", field="serials") from None


def by_root(given: Iterable[Sequence[str]]) -> dict[str, list[str]]:
    """Serial sets as stored (canonical), under the Merkle root each commits to."""
    sets = {}
    for serials in given:
        texts = [serial_text(s) for s in serials]
        sets[canonical_set_commitment(texts).hex()] = texts
    return sets


def keep_serials(
    conn: Connection,
    label_sets: Sequence[tuple[int, str, str, int]],
    given: dict[str, list[str]],
) -> None:
    """Store the serials of label sets (id, batch, commitment, count), matching each set of
    `given` serials (by_root's) to the one whose signed root it has; every set needs its
    serials and every serial set a label set. Runs in the caller's transaction."""
    by_root = dict(given)
    rows: list[tuple[str, str, int]] = []
    for set_id, batch_id, commitment, count in label_sets:
        texts = by_root.pop(commitment, None)
        if texts is None or len(texts) != count:
            raise InvalidInput(
                f"label set {set_id} (batch {batch_id}) needs its {count} serials: send them "
                "with the statement; their Merkle root must be its commitment",
                field="serials",
            )
        rows += [(t, batch_id, set_id) for t in texts]
    if by_root:
        raise InvalidInput(
            "a set of serials matches no labels.issued statement sent with it (its Merkle "
            "root is none of their commitments)",
            field="serials",
        )
    taken = _issued_before(conn, [row[0] for row in rows])
    if taken is not None:
        raise Conflict(f"serial {taken} was issued before", field="serials")
    insert_serials(conn, rows)


def _issued_before(conn: Connection, serials: list[str]) -> str | None:
    """One of these serials that is stored already, if any."""
    if conn.dialect.name == "postgresql":
        # One array parameter: psycopg would parse a query of 10,000 placeholders each time.
        wanted = bindparam("serials", serials, type_=postgresql.ARRAY(String))
        query = select(LABEL_SERIAL.c.serial).where(LABEL_SERIAL.c.serial == any_(wanted))
        return conn.execute(query.limit(1)).scalar()
    # A submission may carry 500 sets of 10,000 serials: asked about in slices, since one
    # query holds at most 32,766 parameters on SQLite.
    for start in range(0, len(serials), _SERIALS_PER_QUERY):
        chunk = serials[start : start + _SERIALS_PER_QUERY]
        taken = conn.execute(
            select(LABEL_SERIAL.c.serial).where(LABEL_SERIAL.c.serial.in_(chunk)).limit(1)
        ).scalar()
        if taken is not None:
            return str(taken)
    return None


def insert_serials(conn: Connection, rows: Sequence[tuple[str, str, int]]) -> None:
    """Store (serial, batch id, label set id) rows in the caller's transaction: by COPY on
    PostgreSQL (a million serials in seconds, against a minute as INSERTs)."""
    if not rows:
        return
    names = ("serial", "batch_id", "label_set_id")
    if conn.dialect.name == "postgresql":
        statement = f"COPY {LABEL_SERIAL.name} ({', '.join(names)}) FROM STDIN"
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        return
    conn.execute(insert(LABEL_SERIAL), [dict(zip(names, row, strict=True)) for row in rows])


_SERIALS_PER_QUERY = 10_000


def keep_offline_sets(
    conn: Connection, statements: Sequence[Statement], given: Sequence[Sequence[str]]
) -> None:
    """Store the serials of `labels.issued` statements submitted from elsewhere, in the
    append's transaction. A statement already in the ledger with its serials (sent again)
    needs none; any other needs its own, matched by root (`keep_serials`)."""
    if not statements and not given:
        return
    hashes = [s.hash() for s in statements]
    indices = {
        bytes(row.statement_hash): int(row.idx)
        for row in conn.execute(
            select(ENTRY.c.statement_hash, ENTRY.c.idx).where(ENTRY.c.statement_hash.in_(hashes))
        )
    }
    held = {s.id for s in states(conn, indices.values()) if s.held}
    needed, known_roots = [], set()
    for statement, digest in zip(statements, hashes, strict=True):
        index = indices[digest]
        body = statement.body
        if index in held:
            known_roots.add(body["commitment"])
            continue
        needed.append((index, body["batch_id"], body["commitment"], body["count"]))
    sets = by_root(given)
    keep_serials(conn, needed, {r: t for r, t in sets.items() if r not in known_roots})


def states(conn: Connection, ids: Collection[int] | None = None) -> list[LabelSetState]:
    """Every label set (or those with these ids) with how many serials are held for it."""
    counted = select(LABEL_SERIAL.c.label_set_id, func.count().label("n"))
    if ids is not None:
        # An append asks about its own few sets: counting every serial held (a national
        # ledger holds a hundred million) would cost each submission a full scan.
        counted = counted.where(LABEL_SERIAL.c.label_set_id.in_(list(ids)))
    held = counted.group_by(LABEL_SERIAL.c.label_set_id).subquery()
    query = (
        select(
            LABEL_SET.c.id,
            LABEL_SET.c.batch_id,
            LABEL_SET.c.count.label("issued"),
            LABEL_SET.c.commitment,
            func.coalesce(held.c.n, 0).label("held"),
            UNHELD.c.label_set_id.is_not(None).label("unheld"),
        )
        .outerjoin(held, held.c.label_set_id == LABEL_SET.c.id)
        .outerjoin(UNHELD, UNHELD.c.label_set_id == LABEL_SET.c.id)
        .order_by(LABEL_SET.c.id)
    )
    if ids is not None:
        query = query.where(LABEL_SET.c.id.in_(list(ids)))
    rows = conn.execute(query).all()
    return [
        LabelSetState(r.id, r.batch_id, r.issued, r.commitment, int(r.held), bool(r.unheld))
        for r in rows
    ]


def missing(engine: Engine) -> list[LabelSetState]:
    """Label sets with no serial held and not marked: what repair-labels repairs."""
    with engine.connect() as conn:
        return [s for s in states(conn) if s.held == 0 and not s.unheld]


def unheld(engine: Engine) -> list[LabelSetState]:
    with engine.connect() as conn:
        return [s for s in states(conn) if s.unheld and s.held == 0]


def fill_in(engine: Engine, given: Iterable[Sequence[str]]) -> list[int]:
    """Store serials for the sets that lack them, each matched by its root; returns the
    sets filled in. Serial sets matching no such set are refused, all or none."""
    sets = {s.commitment: s for s in missing(engine)}
    given_sets = by_root(given)
    chosen = []
    for root in given_sets:
        found = sets.get(root)
        if found is None:
            raise InvalidInput(
                "a set of serials matches no label set that lacks its serials", field="serials"
            )
        chosen.append((found.id, found.batch_id, found.commitment, found.count))
    with writing(engine) as conn:
        keep_serials(conn, chosen, given_sets)
    return [c[0] for c in chosen]


def mark_unheld(engine: Engine, reason: str) -> list[int]:
    """Mark every set with no serial held as not held here; returns their ids."""
    with writing(engine) as conn:
        ids = [s.id for s in states(conn) if s.held == 0 and not s.unheld]
        if ids:
            now = utc_now()
            conn.execute(
                insert(UNHELD),
                [{"label_set_id": i, "marked_at": now, "reason": reason} for i in ids],
            )
    return ids


def notes(engine: Engine) -> list[str]:
    """What `verify` says of the label sets marked as not held (information, not failure)."""
    return [
        f"label set {s.id} (batch {s.batch_id}): its {s.count} serials are not held by this "
        "service (marked by repair-labels); they scan as not registered"
        for s in unheld(engine)
    ]
