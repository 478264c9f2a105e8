"""The staff app's producer screens: p50/p95 of the dashboard and the batch form.

    .venv/bin/python tests/bench/webapp_bench.py [--requests 200] [--batches 2000]
    .venv/bin/python tests/bench/webapp_bench.py --entries 1000000

Seeds the demo, adds `--batches` batches with a label each to the demo producer (so its
lists and its scan chart have rows to read), signs in as that producer and times the two
pages in-process (no network), SQLite. With `--entries N` it opens the scan benchmark's
N-entry ledger instead (tests/bench/scan_ledger.py, built once under .bench/): there the
demo producer owns every padding batch, a fifth of the entries. Target from issue 12: p95
at most 100 ms, on the 1,000,000-entry ledger.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from ocop_trace.accounts import Principal
from ocop_trace.app import create_app
from ocop_trace.demo import run_demo
from ocop_trace.models import BatchCreate, LabelIssue
from ocop_trace.scans import ScanCounter
from ocop_trace.settings import Settings

TARGET_MS = 100.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=0, help="the scan bench's ledger")
    args = parser.parse_args()
    if args.entries:
        return measure(*large_ledger(args.entries), args.requests)
    folder = Path(tempfile.mkdtemp(prefix="webapp-bench-"))
    settings = Settings(
        database_url=f"sqlite:///{folder / 'trace.db'}",
        key_dir=folder / "keys",
        public_url="http://127.0.0.1:8000",
        checkpoint_interval=3600,
    )
    result = run_demo(settings)
    password = _passwords(result.credentials)["htx-tai-hoan"]
    app = create_app(settings)
    service = app.state.service
    producer = Principal(None, "bench", "producer", "htx-tai-hoan")
    counter = ScanCounter(service.engine, settings.secret_key.get_secret_value())
    for n in range(args.batches):
        batch = BatchCreate(
            id=f"bench-{n}",
            product_id="mien-dong-tai-hoan",
            lot=f"B{n}",
            produced_on="2026-01-01",
            quantity=1,
            unit="kg",
        )
        service.register_batch(producer, batch)
        issued = service.issue_labels(producer, batch.id, LabelIssue(count=1), settings.public_url)
        counter.record(issued.serials[0].canonical, f"198.51.{n % 250}.{n // 250}")
    counter.flush()
    label = f"SQLite, demo + {args.batches} batches with labels and scans"
    return measure(app, password, label, args.requests)


def large_ledger(entries: int) -> tuple[FastAPI, str, str]:
    """The app on the scan benchmark's ledger, and the demo producer's password."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from scan_ledger import bench_settings, ensure_ledger

    folder, _ = ensure_ledger(Path(__file__).resolve().parents[2] / ".bench", entries)
    settings = bench_settings(folder).model_copy(update={"checkpoint_interval": 3600})
    password = _passwords(folder / "credentials.txt")["htx-tai-hoan"]
    with create_app(settings).state.service.engine.connect() as conn:
        batches = conn.execute(
            text("SELECT count(*) FROM batch WHERE producer_id = 'htx-tai-hoan'")
        ).scalar_one()
    label = f"SQLite, the {entries:,}-entry ledger; the producer has {batches:,} batches"
    return create_app(settings), password, label


def _passwords(credentials: Path) -> dict[str, str]:
    return {
        line.split("\t")[0]: line.split("\t")[2]
        for line in credentials.read_text("utf-8").splitlines()[1:]
        if line.strip()
    }


def measure(app: FastAPI, password: str, label: str, requests: int) -> int:
    client = TestClient(app, follow_redirects=False)
    page = client.get("/app/login")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    signed = client.post(
        "/app/login", data={"csrf": csrf, "username": "htx-tai-hoan", "password": password}
    )
    assert signed.status_code == 303, signed.text
    failed = False
    print(f"webapp ({label}):")
    for path in ("/app/", "/app/batches/new"):
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            answer = client.get(path)
            times.append((time.perf_counter() - start) * 1000)
            assert answer.status_code == 200
        times.sort()
        p95 = times[int(len(times) * 0.95) - 1]
        ok = p95 <= TARGET_MS
        failed |= not ok
        print(
            f"  {path:18} p50 {statistics.median(times):6.1f} ms  p95 {p95:6.1f} ms  "
            f"{'ok' if ok else 'OVER'} (target {TARGET_MS:.0f} ms)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
