"""Rebuild the projection from the ledger alone, and check the live tables against it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, select
from sqlmodel import SQLModel

from ledger.authority import KeyRegistry
from ledger.statement import parse_entry
from ledger.store import LedgerStore, open_engine, writing
from ledger.verifier import Failure
from ocop_trace.kinds import KINDS
from ocop_trace.label_repair import UNHELD
from ocop_trace.models import LABEL_SERIAL, LABEL_SET, PROJECTION_TABLES
from ocop_trace.projection import Projector, clear
from ocop_trace.serials import parse_canonical, serial_set_commitment


def _replay(conn: Connection, store: LedgerStore) -> int:
    registry = KeyRegistry(store.root_key_id)
    projector = Projector(conn)
    count = 0
    for index, data in store.entries():
        statement = parse_entry(data).statement
        registry.check_and_apply(statement, index)
        projector.apply(index, statement, registry.grants.get(statement.key_id))
        count += 1
    return count


def rebuild(store: LedgerStore) -> int:
    """Recreate every projection table from the ledger, in one transaction; returns entries."""
    SQLModel.metadata.create_all(store.engine, tables=PROJECTION_TABLES)
    with writing(store.engine) as conn:
        clear(conn)
        return _replay(conn, store)


def _rows(conn: Connection, table: Any) -> Iterator[dict[str, Any]]:
    key = list(table.primary_key.columns)
    for row in conn.execute(select(table).order_by(*key)).mappings():
        yield dict(row)


def compare_projection(live: Engine, expected: Engine) -> Failure | None:
    """The first row where the live projection differs from the expected one, if any."""
    with live.connect() as a, expected.connect() as b:
        for table in PROJECTION_TABLES:
            keys = [c.name for c in table.primary_key.columns]
            live_rows, want_rows = _rows(a, table), _rows(b, table)
            while True:
                got, want = next(live_rows, None), next(want_rows, None)
                if got is None and want is None:
                    break
                if got != want:
                    return _difference(table.name, keys, got, want)
    return None


def _difference(
    table: str, keys: list[str], got: dict[str, Any] | None, want: dict[str, Any] | None
) -> Failure:
    row = got or want or {}
    where = f"{table} row {', '.join(str(row.get(k)) for k in keys)}"
    if got is None or want is None or [got[k] for k in keys] != [want[k] for k in keys]:
        return Failure(
            None,
            "projection",
            f"{where}: the table and the ledger disagree on which rows exist",
            str(want and {k: want[k] for k in keys}),
            str(got and {k: got[k] for k in keys}),
        )
    column = next(c for c in want if got.get(c) != want[c])
    return Failure(
        None,
        "projection",
        f"{where}, column {column}, was changed behind the ledger's back",
        str(want[column]),
        str(got[column]),
    )


def has_projection(engine: Engine) -> bool:
    return inspect(engine).has_table(PROJECTION_TABLES[0].name)


def check_label_serials(engine: Engine) -> Failure | None:
    """Every issued label set: the serials kept must be exactly those the ledger committed
    to. A set marked as not held here (`repair-labels`), with none kept, is information
    for `verify` to print, not a failure."""
    with engine.connect() as conn:
        sets = (
            select(
                LABEL_SET.c.id,
                LABEL_SET.c.batch_id,
                LABEL_SET.c.count.label("issued"),
                LABEL_SET.c.commitment,
                UNHELD.c.label_set_id.label("unheld"),
            )
            .outerjoin(UNHELD, UNHELD.c.label_set_id == LABEL_SET.c.id)
            .order_by(LABEL_SET.c.id)
        )
        for label_set in conn.execute(sets):
            serials = (
                conn.execute(
                    select(LABEL_SERIAL.c.serial).where(LABEL_SERIAL.c.label_set_id == label_set.id)
                )
                .scalars()
                .all()
            )
            if label_set.unheld is not None and not serials:
                continue
            root = serial_set_commitment([parse_canonical(s) for s in serials]).hex()
            if len(serials) != label_set.issued or root != label_set.commitment:
                return Failure(
                    label_set.id,
                    "label_serials",
                    f"the serials kept for label set {label_set.id} (batch "
                    f"{label_set.batch_id}) are not the ones the ledger committed to",
                    f"{label_set.issued} serials, root {label_set.commitment}",
                    f"{len(serials)} serials, root {root}",
                )
    return None


def check_subjects(store: LedgerStore) -> Failure | None:
    """Each entry's `subject` index column says what its own bytes say it is about."""
    size = store.size()  # entries appended while this runs are for the next check
    pairs = zip(islice(store.entries(), size), islice(store.subjects(), size), strict=True)
    for (index, data), (_, stored) in pairs:
        wanted = KINDS.subject_of(parse_entry(data).statement)
        if stored != wanted:
            return Failure(
                index,
                "projection",
                f"ledger_entry row {index}, column subject, was changed behind the ledger's back",
                str(wanted),
                str(stored),
            )
    return None


def check_projection(store: LedgerStore) -> Failure | None:
    """Rebuild into a scratch SQLite file and compare it with the live tables."""
    with tempfile.TemporaryDirectory(prefix="ocop-projection-") as tmp:
        scratch = open_engine(f"sqlite:///{Path(tmp) / 'expected.db'}")
        try:
            SQLModel.metadata.create_all(scratch, tables=PROJECTION_TABLES)
            with scratch.begin() as conn:
                _replay(conn, store)
            return (
                compare_projection(store.engine, scratch)
                or check_label_serials(store.engine)
                or check_subjects(store)
            )
        finally:
            scratch.dispose()
