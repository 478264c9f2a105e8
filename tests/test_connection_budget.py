"""TRACE_DATABASE_CONNECTIONS: a server process never holds more PostgreSQL connections.

A fleet shares one server's max_connections; a process that opened connections past its
budget under a burst once exhausted it for everyone (docs/performance.md, the fleet run).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from pages import GTIN
from pydantic import ValidationError
from servers import seed, serving, token
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from support import BATCH, PRODUCT

from ledger.store import open_engine
from ocop_trace.ledger_setup import open_service
from ocop_trace.settings import Settings


@pytest.mark.postgres
def test_a_burst_waits_for_the_budget_instead_of_opening_more(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = seed(postgres_url, tmp_path / "keys")
    database = make_url(postgres_url).database
    watcher = create_engine(
        make_url(postgres_url).set(drivername="postgresql+psycopg", database="postgres")
    )
    peak, done = [0], threading.Event()

    def watch() -> None:
        with watcher.connect() as conn:
            while not done.is_set():
                held = conn.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d"),
                    {"d": database},
                ).scalar_one()
                peak[0] = max(peak[0], int(held))
                time.sleep(0.01)

    paths = [f"/01/{GTIN}?lang={lang}" for lang in ("vi", "en") * 30]
    paths += [f"/api/v1/products/{PRODUCT['id']}" for _ in range(60)]
    with serving(settings, workers=1, TRACE_DATABASE_CONNECTIONS="4") as base:
        sampler = threading.Thread(target=watch)
        sampler.start()
        try:
            html = {"Accept": "text/html"}
            with (
                httpx.Client(base_url=base, timeout=60, headers=html) as client,
                ThreadPoolExecutor(max_workers=24) as pool,
            ):
                statuses = list(pool.map(lambda p: client.get(p).status_code, paths))
        finally:
            done.set()
            sampler.join()
    watcher.dispose()
    assert set(statuses) == {200}, statuses  # every request waited its turn, none failed
    assert 1 <= peak[0] <= 4, peak[0]


@pytest.mark.postgres
def test_the_pool_is_the_budget(postgres_url: str, tmp_path: Path) -> None:
    settings = seed(postgres_url, tmp_path / "keys").model_copy(update={"database_connections": 6})
    service = open_service(settings)
    pool = service.engine.pool
    try:
        assert (pool.size(), pool._max_overflow) == (6, 0)  # type: ignore[attr-defined]
        assert settings.request_threads == 2  # and as many holding requests: 2 + 2 + 1 <= 6
    finally:
        service.engine.dispose()


def test_a_budget_too_small_for_two_threads_is_refused() -> None:
    with pytest.raises(ValidationError, match="database_connections"):
        Settings(database_connections=3)


def test_writes_waiting_for_the_ledger_leave_threads_for_reads(tmp_path: Path) -> None:
    # The ledger takes one append at a time. Writes that waited for it in worker threads
    # held all of them, and every read behind them waited too (the fleet benchmark's
    # 1.5 s scans). Here the database's write lock is held from outside while six writes
    # arrive: a read is still answered at once, and every write lands once it is free.
    settings = seed(f"sqlite:///{tmp_path / 'trace.db'}", tmp_path / "keys")
    with serving(settings, workers=1, TRACE_DATABASE_CONNECTIONS="7") as base:
        bearer = {"Authorization": f"Bearer {token(base, 'producer')}"}
        blocker = create_engine(settings.database_url, connect_args={"timeout": 60})
        with blocker.connect() as lock, httpx.Client(base_url=base, timeout=90) as client:
            lock.exec_driver_sql("BEGIN IMMEDIATE")  # no append can be written meanwhile
            batches = [{**BATCH, "id": f"lo-{n}", "lot": f"LO{n}"} for n in range(6)]
            with ThreadPoolExecutor(max_workers=6) as pool:
                writes = [
                    pool.submit(client.post, "/api/v1/batches", json=b, headers=bearer)
                    for b in batches
                ]
                time.sleep(1.0)  # the writes are in: one waits in a thread, five queue
                started = time.monotonic()
                read = client.get(f"/api/v1/products/{PRODUCT['id']}")
                waited = time.monotonic() - started
                lock.exec_driver_sql("ROLLBACK")
                statuses = [w.result().status_code for w in writes]
        blocker.dispose()
    assert read.status_code == 200
    assert waited < 5, waited  # three threads, one of them writing: a read finds one
    assert statuses == [201] * 6


@pytest.mark.postgres
def test_a_pooled_connection_is_checked_only_when_it_sat_unused(postgres_url: str) -> None:
    # A check-out pinged the server every time: three of a signed-in request's ten round
    # trips. Now only a connection unused for `ping_after` seconds is checked; one broken
    # while in use is found by its next statement, once, and the pool starts afresh.
    admin = create_engine(
        make_url(postgres_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    engine = open_engine(postgres_url, connections=1, ping_after=0.5)

    def backend() -> int:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def kill(pid: int) -> None:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    first = backend()
    assert backend() == first  # the one connection, lent again
    kill(first)
    with pytest.raises(OperationalError):  # in use moments ago: not checked, so it fails
        backend()
    second = backend()  # and the pool started afresh
    assert second != first
    kill(second)
    time.sleep(0.7)  # unused past ping_after: checked, found broken, replaced unseen
    third = backend()
    assert third not in (first, second)
    engine.dispose()
    admin.dispose()
