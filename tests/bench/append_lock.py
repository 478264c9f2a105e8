"""How long one append holds the ledger's head row, and how much of that is CPU.

    PYTHONPATH=tests .venv/bin/python tests/bench/append_lock.py [--appends 300]

Appends are taken one at a time (the head row is locked from its `SELECT … FOR UPDATE` to
the commit), so what an append does inside the lock bounds the appends a second of the
whole fleet. On an idle machine the lock is held for the database's round trips and the
Python in between; when the cores are shared with the scans, that Python runs a few times
slower, and the appends of `fleet_bench.py` queue behind it. Reported per append, median
over `--appends` batch registrations through the service (after 50 to warm up): the time
from the lock to the commit, the thread's CPU time in it, and its round trips to the
database (on PostgreSQL a pipeline of several statements is one).
Information only (no target); SQLite, and PostgreSQL with TRACE_TEST_POSTGRES_URL set.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from servers import seed
from serving import database, kinds
from sqlalchemy import event
from support import BATCH, PRODUCER

from ledger import pg_append
from ocop_trace.accounts import Principal
from ocop_trace.ledger_setup import open_service
from ocop_trace.models import BatchCreate

WARM_UP = 50


def measure(url: str, folder: Any, appends: int) -> tuple[float, float, float]:
    """(median ms held, median CPU ms in it, median round trips while held)."""
    service = open_service(seed(url, folder / "keys"))
    who = Principal(None, "bench", "producer", PRODUCER["id"])
    held: list[tuple[float, float, int]] = []
    start: list[float] = []  # [perf_counter, thread_time, round trips] while held

    def take() -> None:
        start[:] = [time.perf_counter(), time.thread_time(), 1]

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # SQLite's lock is its BEGIN IMMEDIATE; PostgreSQL's, the head row's, is taken
        # by the store's locked reads (below), in a pipeline SQLAlchemy does not see.
        if not start and "BEGIN IMMEDIATE" in statement:
            take()
        elif start:
            start[2] += 1

    def commit(_conn: Any) -> None:
        if start:
            held.append((time.perf_counter() - start[0], time.thread_time() - start[1], start[2]))
            start.clear()

    def counted(pipeline: Callable[..., Any], first: bool) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            if first and not start:
                take()
            else:
                start[2] += 1
            return pipeline(*args, **kwargs)

        return run

    event.listen(service.engine, "before_cursor_execute", before)
    event.listen(service.engine, "commit", commit)
    originals = pg_append.locked_reads, pg_append.write
    pg_append.locked_reads = counted(pg_append.locked_reads, first=True)  # type: ignore[assignment]
    pg_append.write = counted(pg_append.write, first=False)  # type: ignore[assignment]
    try:
        for n in range(WARM_UP + appends):
            body = {**BATCH, "id": f"lock-{n}", "lot": f"LOCK{n}"}
            service.register_batch(who, BatchCreate.model_validate(body))
    finally:
        pg_append.locked_reads, pg_append.write = originals  # type: ignore[assignment]
    service.engine.dispose()
    rows = held[WARM_UP:]
    return (
        statistics.median(r[0] for r in rows) * 1e3,
        statistics.median(r[1] for r in rows) * 1e3,
        statistics.median(r[2] for r in rows),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=300)
    args = parser.parse_args()
    for kind in kinds():
        with database(kind) as (url, folder):
            ms, cpu, statements = measure(url, folder, args.appends)
        print(
            f"INFO  append under the head lock ({kind}): held {ms:.2f} ms, "
            f"{cpu:.2f} ms of it CPU, {statements:.0f} round trips to the database "
            f"(the lock's own counted, the commit not; median of {args.appends})",
            flush=True,
        )


if __name__ == "__main__":
    main()
