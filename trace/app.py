"""The application factory: settings in, a wired FastAPI app out. No import-time state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI

from ocop_trace import __version__, reports
from ocop_trace.api import (
    auth_routes,
    batches,
    catalog,
    label_routes,
    ledger_routes,
    resolver,
)
from ocop_trace.api.deps import get_principal
from ocop_trace.errors import ERROR_RESPONSES, install_error_handlers
from ocop_trace.evidence import Evidence
from ocop_trace.ledger_setup import open_service
from ocop_trace.scan_cache import ScanPages
from ocop_trace.scans import ScanCounter
from ocop_trace.schema import require_current_schema
from ocop_trace.settings import Settings

log = logging.getLogger("ocop_trace")
THREADS = 24


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Fewer worker threads than pooled database connections (see ledger.store.open_engine).
    anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
    tasks = [asyncio.create_task(_checkpoints(app)), asyncio.create_task(_scan_counts(app))]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        app.state.scans.flush()  # buffered scan counts are written before the worker exits


async def _scan_counts(app: FastAPI) -> None:
    """Write buffered scan counts about once a second, off the requests' path."""
    scans = app.state.scans
    while True:
        await asyncio.sleep(1.0)
        try:
            await asyncio.to_thread(scans.flush, wait=False)
        except Exception:  # the counts stay buffered and go with the next round
            log.exception("writing scan counts failed")


async def _checkpoints(app: FastAPI) -> None:
    """Sign a checkpoint every few seconds while the ledger grows (DESIGN.md), so the scan
    page's proofs never wait for the next append."""
    store = app.state.service.store
    while True:
        await asyncio.sleep(app.state.settings.checkpoint_interval)
        try:
            await asyncio.to_thread(store.checkpoint_if_behind)
        except Exception:  # a failed round is logged and retried on the next one
            log.exception("publishing a checkpoint failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = open_service(settings)
    require_current_schema(service.engine)
    app = FastAPI(
        title="OCOP trace",
        version=__version__,
        summary="Traceability for OCOP products on a signed, verifiable ledger.",
        responses=ERROR_RESPONSES,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.scans = ScanCounter(service.engine, settings.secret_key.get_secret_value())
    app.state.evidence = Evidence(service.store)
    app.state.pages = ScanPages(
        service.store, settings.page_cache_seconds, settings.page_cache_size
    )
    app.state.report_limiter = reports.RateLimiter(reports.REPORTS_PER_HOUR)
    install_error_handlers(app)
    # The scan pages first: they are most of the traffic, and routes are matched in order.
    resolver.add_pages(app)
    # A bad or revoked token is refused on every route, public ones included, so a script
    # never mistakes an expired token for anonymous access (the pages check it themselves).
    for router in (
        resolver.router,
        label_routes.router,
        ledger_routes.router,
        catalog.router,
        batches.router,
        auth_routes.router,
        reports.router,
    ):
        app.include_router(router, dependencies=[Depends(get_principal)])
    return app


def app_from_environment() -> FastAPI:
    """For `uvicorn --factory ocop_trace.app:app_from_environment` (each worker builds one)."""
    return create_app(Settings())
