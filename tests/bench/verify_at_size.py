"""`verify --db` at national size on PostgreSQL: memory flat, the rate against `verify --bundle`.

    TRACE_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python tests/bench/verify_at_size.py                    # 10,000,000 entries
    … verify_at_size.py --entries 300000                                  # in make bench

Issue 16's "verification at size". An honest ledger (run.py's: a registration chain, then
signed `batch.registered` statements, a checkpoint every 10,000 entries) is written as a
bundle under `.bench/verify-size/` and loaded, as the store keeps it, into a PostgreSQL
database beside the test one (`ocop_verify_size`). Both are kept and reused while their
size matches: 10,000,000 signed entries take a quarter of an hour to write and load. Then
`verify --bundle` and `verify --db` run alternately, each in a child process with 2
workers, and the report gives the database's rate against the bundle's (target ≥ 80 %)
and each one's peak memory (largest process; target < 200 MB, the same as at 200,000
entries in run.py). The database side is `verify --db` short of the projection check,
which needs the service's tables (run.py's VERIFY_CHILD).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from run import Actors, bundle_to_database, median_index, verify_in_child, write_bundle
from sqlalchemy import create_engine, make_url, text

FOLDER = Path(".bench/verify-size")
DATABASE = "ocop_verify_size"
RECIPE = 1  # bump when the ledger written here changes, so kept copies are rebuilt
TARGETS = {"ratio": 0.8, "memory_mb": 200}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    server = os.environ.get("TRACE_TEST_POSTGRES_URL")
    if not server:
        print("set TRACE_TEST_POSTGRES_URL to a PostgreSQL server for this benchmark")
        return 2
    url = _database(server)
    root = _ensure(args.entries, url)
    bundle = str(FOLDER / "ledger.jsonl")
    rates: dict[str, list[float]] = {"bundle": [], "db": []}
    peaks: dict[str, float] = {"bundle": 0.0, "db": 0.0}
    for round_no in range(args.rounds):
        for name, source in (("bundle", bundle), ("db", url)):
            started = time.perf_counter()
            result = verify_in_child(source, args.workers, root)
            rates[name].append(result["entries"] / result["seconds"])
            peaks[name] = max(peaks[name], result["self_kb"] / 1024, result["children_kb"] / 1024)
            print(
                f"  round {round_no + 1}, verify --{name}: {rates[name][-1]:,.0f} entries/s "
                f"({time.perf_counter() - started:,.0f} s), peak {peaks[name]:.0f} MB",
                flush=True,
            )
    ratios = [db / bundle for db, bundle in zip(rates["db"], rates["bundle"], strict=True)]
    middle = median_index(ratios)
    ok = ratios[middle] >= TARGETS["ratio"]
    print(
        f"{'PASS' if ok else 'FAIL'}  verify --db (PostgreSQL) against verify --bundle, "
        f"{args.entries:,} entries, {args.workers} workers: {rates['db'][middle]:,.0f} against "
        f"{rates['bundle'][middle]:,.0f} entries/s = {ratios[middle]:.0%} (rounds: "
        + ", ".join(f"{r:.0%}" for r in ratios)
        + f"; target >= {TARGETS['ratio']:.0%})"
    )
    flat = max(peaks.values()) < TARGETS["memory_mb"]
    print(
        f"{'PASS' if flat else 'FAIL'}  verify peak memory at {args.entries:,} entries "
        f"(largest process): --bundle {peaks['bundle']:.0f} MB, --db {peaks['db']:.0f} MB "
        f"(target < {TARGETS['memory_mb']} MB; median rate {statistics.median(rates['db']):,.0f}/s)"
    )
    return 0 if ok and flat else 1


def _database(server: str) -> str:
    admin = make_url(server).set(drivername="postgresql+psycopg")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": DATABASE}
        ).first()
        if exists is None:
            conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    engine.dispose()
    return admin.set(database=DATABASE).render_as_string(hide_password=False)


def _write(entries: int) -> str:
    actors = Actors()
    write_bundle(actors, entries, FOLDER / "ledger.jsonl")
    return actors.root_id


def _ensure(entries: int, url: str) -> str:
    """The kept bundle and database for `entries`, written first where they do not match;
    the root key's id."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    marker = FOLDER / "recipe.json"
    wanted = {"recipe": RECIPE, "entries": entries}
    kept = json.loads(marker.read_text()) if marker.exists() else {}
    if {k: kept.get(k) for k in wanted} != wanted:
        marker.unlink(missing_ok=True)
        started = time.perf_counter()
        root = _write(entries)
        print(f"  wrote {entries:,} signed entries in {time.perf_counter() - started:,.0f} s")
        kept = {**wanted, "root": root, "loaded": False}
        marker.write_text(json.dumps(kept))
    if not kept["loaded"]:
        started = time.perf_counter()
        engine = create_engine(make_url(url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:  # a load cut off half-way starts again
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        bundle_to_database(FOLDER / "ledger.jsonl", url, kept["root"])
        print(f"  loaded them into PostgreSQL in {time.perf_counter() - started:,.0f} s")
        kept["loaded"] = True
        marker.write_text(json.dumps(kept))
    return str(kept["root"])


if __name__ == "__main__":
    sys.exit(main())
