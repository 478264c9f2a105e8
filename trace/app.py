"""The application factory: settings in, a wired FastAPI app out. No import-time state."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from ocop_trace import __version__, reports
from ocop_trace.api import auth_routes, batches, catalog, ledger_routes, resolver
from ocop_trace.api.deps import get_principal
from ocop_trace.errors import ERROR_RESPONSES, install_error_handlers
from ocop_trace.ledger_setup import open_service
from ocop_trace.scans import ScanCounter
from ocop_trace.schema import require_current_schema
from ocop_trace.settings import Settings

log = logging.getLogger("ocop_trace")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_checkpoints(app))
    try:
        yield
    finally:
        task.cancel()
        app.state.scans.flush()  # buffered scan counts are written before the worker exits


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
        # A bad or revoked token is refused on every route, public ones included, so a
        # script never mistakes an expired token for anonymous access.
        dependencies=[Depends(get_principal)],
        responses=ERROR_RESPONSES,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.scans = ScanCounter(service.engine, settings.secret_key.get_secret_value())
    app.state.report_limiter = reports.RateLimiter(reports.REPORTS_PER_HOUR)
    install_error_handlers(app)
    for router in (
        ledger_routes.router,
        catalog.router,
        batches.router,
        auth_routes.router,
        resolver.router,
        reports.router,
    ):
        app.include_router(router)
    return app


def app_from_environment() -> FastAPI:
    """For `uvicorn --factory ocop_trace.app:app_from_environment` (each worker builds one)."""
    return create_app(Settings())
