"""National scale on PostgreSQL: grow a ledger to N entries and M label serials, then time
the scan's serial -> batch look-up and size the indexes per million serials.

    .venv/bin/python tests/bench/scale.py --small     # CI size: a few minutes
    .venv/bin/python tests/bench/scale.py     # 10,000,000 entries, 100,000,000 serials
    .venv/bin/python tests/bench/scale.py --entries 200000 --serials 2000000 --db postgresql://…

The ledger grows through the real use case for work signed elsewhere
(`TraceService.submit_signed`): the producer's statements are signed with its key and
appended through the store's checks and the projection, label sets with their serials,
500 statements a transaction. Each batch is registered, gets three events and one label
set sized so that serials and entries reach their targets together. Every transaction is
whole, so a run stopped at any point resumes where the database is (keys are kept under
`.bench/scale/`). The database is `--db`, else a database `ocop_scale` created beside
TRACE_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import make_url

from ledger.statement import Statement, sign_statement
from ocop_trace.accounts import Principal
from ocop_trace.api import examples
from ocop_trace.ledger_setup import init_ledger, open_service
from ocop_trace.models import (
    BATCH,
    LABEL_SERIAL,
    PRODUCER,
    BatchCreate,
    ProducerCreate,
    ProductCreate,
    RatingCreate,
)
from ocop_trace.reads import batch_row
from ocop_trace.scan_facts import batch_of_serial
from ocop_trace.serials import new_serial, parse_canonical, serial_set_commitment
from ocop_trace.service import TraceService
from ocop_trace.settings import Settings

FULL = (10_000_000, 100_000_000)
SMALL = (10_000, 100_000)
PER_BATCH = 5  # batch.registered, three events, labels.issued
STATEMENTS_PER_CALL = 500
COUNCIL = Principal(None, "bench", "council")
STEPS = ("harvesting", "processing", "packing")
LOOKUP_TARGET_MS = 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="PostgreSQL URL (default: ocop_scale beside the tests')")
    parser.add_argument("--entries", type=int, default=FULL[0])
    parser.add_argument("--serials", type=int, default=FULL[1])
    parser.add_argument("--small", action="store_true", help=f"{SMALL[0]:,} / {SMALL[1]:,}")
    parser.add_argument("--lookups", type=int, default=20_000, help="serials to look up")
    parser.add_argument("--folder", type=Path, default=Path(".bench/scale"))
    args = parser.parse_args()
    entries, serials = SMALL if args.small else (args.entries, args.serials)
    url = args.db or _default_database()
    settings = Settings(
        database_url=url,
        key_dir=args.folder / "keys",
        public_url="http://127.0.0.1",
        checkpoint_interval=3600,
    )
    service, producer = _prepare(settings)
    print(f"growing {_where(url)} to {entries:,} entries and {serials:,} serials", flush=True)
    rate = grow(service, producer, entries, serials)
    print(f"appended at {rate:,.0f} entries/s (this run's part)", flush=True)
    service.store.publish_checkpoint()
    ok = report(service, args.lookups)
    return 0 if ok else 1


def _default_database() -> str:
    admin = os.environ.get("TRACE_TEST_POSTGRES_URL")
    if not admin:
        sys.exit("pass --db postgresql://… or set TRACE_TEST_POSTGRES_URL")
    engine = create_engine(
        make_url(admin).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = 'ocop_scale'"))
        if exists.first() is None:
            conn.execute(text("CREATE DATABASE ocop_scale"))
    engine.dispose()
    return make_url(admin).set(database="ocop_scale").render_as_string(hide_password=False)


def _where(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _prepare(settings: Settings) -> tuple[TraceService, Principal]:
    """The ledger, its council, one producer with a rated product: made once, then reused."""
    init_ledger(settings)
    service = open_service(settings)
    producer_id = examples.PRODUCER["id"]
    with service.engine.connect() as conn:
        known = conn.execute(select(PRODUCER.c.id).where(PRODUCER.c.id == producer_id)).first()
    if known is None:
        service.register_producer(COUNCIL, ProducerCreate.model_validate(examples.PRODUCER))
        product = {k: v for k, v in examples.PRODUCT.items() if k != "image_url"}
        service.register_product(COUNCIL, ProductCreate.model_validate(product))
        service.record_rating(COUNCIL, RatingCreate.model_validate(examples.RATING))
    return service, Principal(None, "bench", "producer", producer_id)


def _counts(service: TraceService) -> tuple[int, int, int]:
    """(entries, serials, bench batches) as the database holds them now."""
    with service.engine.connect() as conn:
        serials = conn.execute(select(func.count()).select_from(LABEL_SERIAL)).scalar_one()
        batches = conn.execute(
            select(func.count()).select_from(BATCH).where(BATCH.c.id.like("scale-%"))
        ).scalar_one()
    return service.store.size(), int(serials), int(batches)


def grow(service: TraceService, producer: Principal, entries: int, serials: int) -> float:
    size, held, batches = _counts(service)
    key = service.producer_key(str(producer.producer_id))
    started, start_size = time.perf_counter(), size
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns) as progress:
        entry_bar = progress.add_task("entries", total=entries, completed=size)
        serial_bar = progress.add_task("serials", total=serials, completed=held)
        while size < entries or held < serials:
            statements: list[Statement] = []
            sets: list[list[str]] = []
            while len(statements) < STATEMENTS_PER_CALL and (
                size + len(statements) < entries or held + sum(map(len, sets)) < serials
            ):
                batches += 1
                left_entries = max(entries - size - len(statements), PER_BATCH)
                left_serials = serials - held - sum(map(len, sets))
                count = min(10_000, math.ceil(left_serials * PER_BATCH / left_entries))
                made, label_set = _batch(batches, count, key)
                statements += made
                if label_set:
                    sets.append(label_set)
            service.submit_signed(producer, [statements], serials=sets)
            size += len(statements)
            held += sum(map(len, sets))
            progress.update(entry_bar, completed=size)
            progress.update(serial_bar, completed=held)
    seconds = time.perf_counter() - started
    return (size - start_size) / seconds if seconds > 0 else 0.0


def _batch(n: int, count: int, key: Any) -> tuple[list[Statement], list[str]]:
    produced = date(2025, 1, 1) + timedelta(days=n % 600)
    batch_id = f"scale-{n:09d}"
    body = BatchCreate.model_validate(
        {
            "id": batch_id,
            "product_id": examples.PRODUCT["id"],
            "lot": f"S{n:09d}",
            "produced_on": produced.isoformat(),
            "quantity": 100 + n % 900,
            "unit": "g",
            "origin": "thôn Chè Cọ, xã Côn Minh (benchmark)",
        }
    ).model_dump(exclude_none=True)
    made = [sign_statement("batch.registered", body, key)]
    for step, hour in zip(STEPS, (8, 10, 12), strict=True):
        at = f"{produced.isoformat()}T{hour:02d}:00:00Z"
        event = {"batch_id": batch_id, "biz_step": step, "at": at, "place": "xã Côn Minh"}
        made.append(sign_statement("batch.event", event, key))
    if count <= 0:
        return made, []
    serials = [new_serial() for _ in range(count)]
    commitment = serial_set_commitment(serials).hex()
    label = {"batch_id": batch_id, "count": count, "commitment": commitment}
    made.append(sign_statement("labels.issued", label, key))
    return made, [s.canonical for s in serials]


def serial_set_commitment_of(serials: list[str]) -> str:
    """The commitment a labels.issued statement makes to these canonical serials."""
    return serial_set_commitment(parse_canonical(s) for s in serials).hex()


def report(service: TraceService, samples: int) -> bool:
    size, held, _ = _counts(service)
    with service.engine.connect() as conn:
        known = _sample(conn, held, samples)
        misses = [new_serial().canonical for _ in range(samples // 4)]
        hits = _time_lookups(conn, known)
        with_rows = _time_lookups(conn, known, with_row=True)
        missed = _time_lookups(conn, misses)
        server = _server_times(conn, known[:1000])
        indexes = conn.execute(
            text(
                "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
                "WHERE relname = 'label_serial' ORDER BY indexrelname"
            )
        ).all()
        table = conn.execute(text("SELECT pg_relation_size('label_serial')")).scalar_one()
    p99 = _percentile(hits, 99)
    print(f"\nledger: {size:,} entries, {held:,} label serials")
    print(f"serial -> batch look-up, {len(hits):,} issued serials in random order (ms):")
    print(
        f"  p50 {_percentile(hits, 50):.3f}  p99 {p99:.3f}  max {max(hits):.3f}"
        f"  mean {statistics.fmean(hits):.3f}"
    )
    print(
        f"  then the batch's row too: p50 {_percentile(with_rows, 50):.3f}"
        f"  p99 {_percentile(with_rows, 99):.3f}"
    )
    print(
        f"  unknown serials ({len(missed):,}): p50 {_percentile(missed, 50):.3f}"
        f"  p99 {_percentile(missed, 99):.3f}"
    )
    print(
        f"  in the server alone (EXPLAIN ANALYZE of the serial's probe, {len(server):,}):"
        f" p50 {_percentile(server, 50):.3f}  p99 {_percentile(server, 99):.3f}"
    )
    millions = held / 1e6
    print("label_serial per million serials (MB):")
    print(f"  table {table / millions / 2**20:.1f}")
    for name, bytes_ in indexes:
        print(f"  index {name} {bytes_ / millions / 2**20:.1f}")
    ok = p99 <= LOOKUP_TARGET_MS
    print(f"{'PASS' if ok else 'FAIL'}  look-up p99 {p99:.3f} ms (target <= {LOOKUP_TARGET_MS} ms)")
    return ok


def _sample(conn: Connection, held: int, samples: int) -> list[str]:
    # Issued serials spread over the whole table (block sampling), in random order.
    percent = min(100.0, 100.0 * samples * 4 / max(held, 1))
    found = list(
        conn.execute(
            text(f"SELECT serial FROM label_serial TABLESAMPLE SYSTEM ({percent:.6f})")
        ).scalars()
    )
    random.shuffle(found)
    return found[:samples]


def _time_lookups(conn: Connection, serials: list[str], with_row: bool = False) -> list[float]:
    """Milliseconds for each scan's serial -> batch look-up (a query by the serial's index,
    as the scan page makes for a serial it has not seen); `with_row` adds the batch's row,
    which a scan usually finds in its page cache."""
    took = []
    for serial in serials:
        started = time.perf_counter()
        batch_id = batch_of_serial(conn, serial)
        if with_row and batch_id is not None:
            batch_row(conn, batch_id)
        took.append((time.perf_counter() - started) * 1000)
    return took


def _server_times(conn: Connection, serials: list[str]) -> list[float]:
    """Planning plus execution of the serial's index probe, as PostgreSQL measures it: what
    the look-up costs without the round trip and this machine's scheduling."""
    took = []
    for serial in serials:
        plan = conn.execute(
            text(
                "EXPLAIN (ANALYZE, FORMAT JSON) "
                "SELECT batch_id FROM label_serial WHERE serial = :serial"
            ),
            {"serial": serial},
        ).scalar_one()
        took.append(float(plan[0]["Planning Time"]) + float(plan[0]["Execution Time"]))
    return took


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


if __name__ == "__main__":
    sys.exit(main())
