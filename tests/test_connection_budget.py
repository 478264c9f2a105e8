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
from servers import seed, serving
from sqlalchemy import create_engine, make_url, text
from support import PRODUCT

from ocop_trace.ledger_setup import open_service
from ocop_trace.settings import Settings

pytestmark = pytest.mark.postgres


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
