"""An append's reads and writes on PostgreSQL, each set sent in one round trip.

Under the head lock every round trip holds up every other append, and on a busy host each
one waits to be scheduled twice (the server's backend, then the appending thread). psycopg's
pipeline mode sends a set of statements at once and reads their results together, so an
append takes the lock and reads what it needs in one round trip and writes in one more
(docs/performance.md, the fleet's appends). The SQL is the store's own queries, spelt for
PostgreSQL; `tests/test_store.py` checks both give the same ledger.

    locked_reads(conn, hashes, key_ids)  -> head, entries already in, grants, frontier
    write(conn, entries, nodes, size, head_hash)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from ledger.tables import LedgerEntryRow, LedgerKeyRow, LedgerNodeRow, insert_sql

_ENTRY = LedgerEntryRow.__table__  # type: ignore[attr-defined]
_NODE = LedgerNodeRow.__table__  # type: ignore[attr-defined]
_KEY = LedgerKeyRow.__table__  # type: ignore[attr-defined]

_LOCK = "SELECT size, head_hash FROM ledger_head WHERE id = 1 FOR UPDATE"
_ALREADY_IN = (
    "SELECT idx, entry_hash, statement_hash, integrated_at FROM ledger_entry"
    " WHERE statement_hash = ANY(%s)"
)
_GRANTS_OF = (
    f"SELECT {', '.join(c.name for c in _KEY.columns)} FROM ledger_key"  # noqa: S608
    " WHERE key_id = ANY(%s)"
)
# The tree's frontier at the size the lock just read: one stored node per set bit of the
# size, at level L the node (size >> L) - 1 (merkle.complete_nodes(0, size)). Asked of the
# head row itself, so it needs no round trip of its own; the statements of a pipeline run
# in order, so it reads the head after the lock is held.
_FRONTIER = (
    "SELECT n.level, n.idx, n.hash FROM ledger_head h"
    " CROSS JOIN generate_series(0, 62) AS l(level)"
    " JOIN ledger_node n ON n.level = l.level AND n.idx = (h.size >> l.level) - 1"
    " WHERE h.id = 1 AND ((h.size >> l.level) & 1) = 1"
)
_HEAD_MOVED = "UPDATE ledger_head SET size = %s, head_hash = %s WHERE id = 1"


_INSERT_ENTRY = insert_sql(_ENTRY, "%s")
_INSERT_NODE = insert_sql(_NODE, "%s")


@contextmanager
def _pipeline(conn: Connection) -> Iterator[Any]:
    """The driver's connection in pipeline mode; a database error comes out as SQLAlchemy's,
    as from any other statement (so the app maps it in its one place)."""
    import psycopg  # only PostgreSQL stores come here

    raw = conn.connection.driver_connection
    assert raw is not None  # a connection in a transaction is open
    try:
        with raw.pipeline():
            yield raw
    except psycopg.Error as exc:
        raise DBAPIError.instance(
            "append pipeline", None, exc, psycopg.Error, ismulti=None
        ) from exc


def locked_reads(
    conn: Connection, hashes: Sequence[bytes], key_ids: Sequence[str]
) -> tuple[Any, list[Any], list[Any], list[tuple[int, int, bytes]]]:
    """Lock the head and read it, the entries already holding these statement hashes, the
    grants of these key ids and the frontier: (head or None, entries, grants, nodes)."""
    from psycopg.rows import namedtuple_row

    with _pipeline(conn) as raw:
        cursors = [raw.cursor(row_factory=namedtuple_row) for _ in range(4)]
        cursors[0].execute(_LOCK)
        if hashes:
            cursors[1].execute(_ALREADY_IN, [list(hashes)])
        if key_ids:
            cursors[2].execute(_GRANTS_OF, [list(key_ids)])
        cursors[3].execute(_FRONTIER)
    try:
        head = cursors[0].fetchone()
        existing = cursors[1].fetchall() if hashes else []
        grants = cursors[2].fetchall() if key_ids else []
        nodes = [(int(r.level), int(r.idx), bytes(r.hash)) for r in cursors[3].fetchall()]
    finally:
        for cursor in cursors:
            cursor.close()
    return head, existing, grants, nodes


def write(
    conn: Connection,
    entries: Sequence[tuple[Any, ...]],
    nodes: Sequence[tuple[Any, ...]],
    size: int,
    head_hash: str,
) -> None:
    """Insert the entries and the tree's new nodes and move the head, in one round trip."""
    with _pipeline(conn) as raw:
        cursor = raw.cursor()
        cursor.executemany(_INSERT_ENTRY, entries)
        cursor.executemany(_INSERT_NODE, nodes)
        cursor.execute(_HEAD_MOVED, (size, head_hash))
    cursor.close()  # after the pipeline's sync: its results are in
