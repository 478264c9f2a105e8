"""Builds the scan-page benchmark's ledgers: the demo, grown to N entries by real appends.

A ledger of 1,000,000 entries takes minutes to build, so each one is kept under
`.bench/` (git-ignored) and reused while its recipe version and size match.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ledger.statement import Statement, sign_statement
from ocop_trace.accounts import Principal
from ocop_trace.demo import run_demo
from ocop_trace.ledger_setup import init_ledger, open_service
from ocop_trace.models import LabelIssue
from ocop_trace.settings import Settings

RECIPE = 2  # bump when the ledger this builds changes, so cached copies are rebuilt
LABELLED_BATCHES = 50
LABELS_PER_BATCH = 20
EVENTS_PER_BATCH = 4
STEPS = ("harvesting", "processing", "packing", "shipping")


def bench_settings(folder: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{folder / 'trace.db'}",
        key_dir=folder / "keys",
        public_url="http://127.0.0.1",
    )


def environment_of(folder: Path) -> dict[str, str]:
    """The TRACE_* variables that make a server process open this ledger."""
    settings = bench_settings(folder)
    return {
        "TRACE_DATABASE_URL": settings.database_url,
        "TRACE_KEY_DIR": str(settings.key_dir),
        "TRACE_PUBLIC_URL": settings.public_url,
    }


def ensure_ledger(root: Path, entries: int) -> tuple[Path, list[str]]:
    """A ledger of at least `entries` entries and the scan paths of its labels."""
    folder = root / f"scan-{entries}"
    manifest = folder / "manifest.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text())
        if saved.get("recipe") == RECIPE and saved.get("entries") == entries:
            init_ledger(bench_settings(folder))  # brings a kept ledger's schema up to date
            return folder, list(saved["paths"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    paths = _build(folder, entries)
    manifest.write_text(json.dumps({"recipe": RECIPE, "entries": entries, "paths": paths}))
    print(
        f"  built a {entries:,}-entry ledger in {time.perf_counter() - started:.0f} s", flush=True
    )
    return folder, paths


def _build(folder: Path, entries: int) -> list[str]:
    settings = bench_settings(folder)
    run_demo(settings)
    service = open_service(settings)
    producer_id, product_id = _demo_producer_and_product(service)
    key = service.producer_key(producer_id)
    store = service.store
    labelled: list[str] = []
    batches = _padding_batches(product_id)
    pending: list[Statement] = []
    while store.size() + len(pending) < entries:
        batch_id, body = next(batches)
        pending.append(sign_statement("batch.registered", body, key))
        for n, step in enumerate(STEPS[:EVENTS_PER_BATCH]):
            event = {"batch_id": batch_id, "biz_step": step, "at": _at(body, n), "place": ""}
            pending.append(sign_statement("batch.event", event, key))
        if len(labelled) < LABELLED_BATCHES:
            labelled.append(batch_id)
        if len(pending) >= 500:
            # Signed just above by this process, so the store need not verify them again.
            store.append(pending, verified=True)
            pending = []
            _progress(store.size(), entries)
    if pending:
        store.append(pending, verified=True)
    producer = Principal(None, "bench", "producer", producer_id)
    paths = []
    for batch_id in labelled:
        issued = service.issue_labels(
            producer, batch_id, LabelIssue(count=LABELS_PER_BATCH), settings.public_url
        )
        paths.extend(f"/l/{s.canonical}" for s in issued.serials)
    store.publish_checkpoint()
    random.Random(7).shuffle(paths)
    return paths


def _demo_producer_and_product(service: Any) -> tuple[str, str]:
    from sqlalchemy import select

    from ocop_trace.models import PRODUCT

    with service.engine.connect() as conn:
        row = conn.execute(select(PRODUCT.c.producer_id, PRODUCT.c.id).limit(1)).one()
    return str(row.producer_id), str(row.id)


def _padding_batches(product_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    n = 0
    while True:
        n += 1
        produced = date(2025, 1, 1) + timedelta(days=n % 600)
        batch_id = f"bench-{n:07d}"
        yield (
            batch_id,
            {
                "id": batch_id,
                "product_id": product_id,
                "lot": f"BENCH-{n:07d}",
                "produced_on": produced.isoformat(),
                "expires_on": (produced + timedelta(days=540)).isoformat(),
                "quantity": 100 + n % 900,
                "unit": "gói",
                "origin": "thôn Nà Mò, xã Bằng Thành (benchmark)",
                "notes": "",
                "inputs": [],
            },
        )


def _at(body: dict[str, Any], step: int) -> str:
    return f"{body['produced_on']}T{8 + 2 * step:02d}:00:00Z"


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() and done % 50_000 < 500:
        print(f"  ... {done:,} / {total:,} entries", file=sys.stderr, flush=True)
