"""Work the running app does besides answering requests: checkpoints and scan counts.

Each task runs its blocking part in a worker thread, logs a failed round and tries again
on the next, and stops with the app (buffered scan counts are written on the way out).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from ledger.store import refresh_statistics
from ocop_trace.witness.client import WitnessClient

log = logging.getLogger("ocop_trace")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state
    # Within the connection budget (Settings.request_threads); the tasks below run their
    # blocking part through the same limiter, so they count against it too.
    anyio.to_thread.current_default_thread_limiter().total_tokens = state.settings.request_threads
    engine = state.service.engine
    rounds = [
        # Sign a checkpoint every few seconds while the ledger grows (DESIGN.md), so the
        # scan page's proofs never wait for the next append.
        (
            "publishing a checkpoint",
            state.settings.checkpoint_interval,
            state.service.store.checkpoint_if_behind,
        ),
        # Scan counts are buffered in memory; written about once a second.
        ("writing scan counts", 1.0, lambda: state.scans.flush(wait=False)),
        # Counts past their time are re-read here, so no scan waits for them.
        ("re-reading scan counts", 1.0, state.scans.refresh),
        # Rows whose network left the copy window fold into one row per serial.
        ("rolling up scan counts", 3600.0, state.scans.roll_up),
        # The query planner's statistics follow the tables' growth (SQLite; a no-op else).
        ("refreshing the planner's statistics", 3600.0, lambda: refresh_statistics(engine)),
    ]
    tasks = [asyncio.create_task(_every(what, seconds, work)) for what, seconds, work in rounds]
    pages, lag = state.pages, state.settings.page_cache_seconds
    if lag > 0:
        # The ledger's state read ahead, on a thread of its own: scans of kept pages then
        # need no thread at all, not even once a second behind page builds and appends
        # (the fleet benchmark's slow rounds). One thread holding one connection and
        # waiting for no other stays within the connection budget (docs/deploy.md).
        tasks.append(
            asyncio.create_task(
                _every(
                    "reading the ledger's state for the pages",
                    lag / 2,
                    lambda: pages.read_generation(again=True),
                    anyio.CapacityLimiter(1),
                )
            )
        )
    client = _witness_client(app)
    if client is not None:
        # Each published checkpoint wakes the witnesses' tasks; one that is down or slow
        # delays only its own cosignature, never an append.
        state.service.store.on_checkpoint = client.notify
        tasks.append(asyncio.create_task(client.run()))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        pages.close()  # a page renewal under way is left: the next worker builds it anew
        state.scans.flush()  # buffered scan counts are written before the worker exits


def _witness_client(app: FastAPI) -> WitnessClient | None:
    witnessing = app.state.witnessing
    policy = witnessing.policy
    if policy is None or not any(w.url for w in policy.witnesses):
        return None
    cosignatures = witnessing.cosignatures
    return WitnessClient(
        policy,
        witnessing.store,
        lambda c: cosignatures.save(c.size, c.witness.key, c.line, c.timestamp),
        interval=app.state.settings.witness_interval,
        known_sizes=cosignatures.witness_sizes(),
    )


async def _every(
    what: str,
    seconds: float,
    work: Callable[[], object],
    limiter: anyio.CapacityLimiter | None = None,
) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await anyio.to_thread.run_sync(work, limiter=limiter)
        except Exception:  # logged; the next round tries again
            log.exception("%s failed", what)
