"""The application factory: settings in, a wired FastAPI app out. No import-time state.

surfaces                         over the domain
├── site/   the scan pages, the public pages and their forms   (HTML)
├── api/    /api/v1: JSON for programs                         (OpenAPI at /docs)
├── webapp/ /app/: the staff app for producers, council, inspectors (HTML)
└── (cli/   the command line, not part of the app)
"""

from __future__ import annotations

import gc

from fastapi import Depends, FastAPI

from ocop_trace import __version__, docs_offline, metrics, reports, webapp
from ocop_trace.api import (
    auth,
    batches,
    catalog,
    epcis,
    exports,
    imports,
    labels,
    ledger,
    photos,
    updates,
)
from ocop_trace.api import reports as report_list
from ocop_trace.api.deps import get_principal, writes_take_turns
from ocop_trace.background import lifespan
from ocop_trace.errors import ERROR_RESPONSES, install_error_handlers
from ocop_trace.evidence import Evidence
from ocop_trace.headers import SecurityHeaders
from ocop_trace.ledger_setup import open_service
from ocop_trace.limits import BodyLimit
from ocop_trace.public_reads import public_reads
from ocop_trace.scans import ScanCounter
from ocop_trace.schema import require_current_schema
from ocop_trace.settings import Settings, warn_if_development
from ocop_trace.site import catalogue, ledger_page, product, report, resolver, scan, sharing
from ocop_trace.site.cache import ScanPages
from ocop_trace.site.pages import html_errors
from ocop_trace.throttle import SignIn
from ocop_trace.witness.tile_routes import tile_routes
from ocop_trace.witnessing import Witnessing, load_policy


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = open_service(settings)
    require_current_schema(service.engine)
    app = FastAPI(
        title="OCOP trace",
        version=__version__,
        summary="Traceability for OCOP products on a signed, verifiable ledger.",
        responses=ERROR_RESPONSES,
        lifespan=lifespan,
        openapi_tags=docs_offline.TAGS,
        docs_url=None,  # served offline by docs_offline
        redoc_url=None,  # ReDoc loads from a CDN
    )
    app.state.settings = settings  # pages read settings.is_development for their banner
    warn_if_development(settings)
    app.state.service = service
    app.state.scans = ScanCounter(service.engine, settings.secret_key.get_secret_value())
    # The witnesses' cosignatures are written through the primary; pages, proofs, tiles and
    # /checkpoint read through `public` (the replica when TRACE_READ_DATABASE_URL is set).
    app.state.witnessing = Witnessing(service.store, load_policy(settings))
    app.state.public = public = public_reads(settings, app.state.witnessing)
    app.state.evidence = Evidence(public.store, public.witnessing)
    app.state.pages = ScanPages(
        public.witnessing,
        settings.page_cache_seconds,
        settings.page_cache_size,
        settings.page_checkpoint_seconds,
    )
    app.state.report_limiter = reports.RateLimiter(reports.REPORTS_PER_HOUR)
    app.state.sign_in = SignIn(
        service.engine, settings.secret_key.get_secret_value(), settings.login_concurrency
    )
    install_error_handlers(app, html_errors)
    app.add_middleware(BodyLimit, html=html_errors)  # a browser's 413 is a page
    app.add_middleware(SecurityHeaders, public_url=settings.public_url)  # every answer
    # Outermost: counts every answer, a 413 too; /metrics for the operator's Prometheus.
    metrics.install(app, settings.metrics_secret, app.state.witnessing)
    # The scan pages first: they are most of the traffic, and routes are matched in order.
    scan.add_pages(app)
    # The log as C2SP tiles (/checkpoint, /tile/…), for monitors, mirrors and witnesses;
    # /checkpoint lags the ledger as the pages do, at most page_cache_seconds.
    app.router.routes.extend(
        tile_routes(public.store, public.witnessing.served, settings.page_cache_seconds)
    )
    # A bad or revoked token is refused on every route, public ones included, so a script
    # never mistakes an expired token for anonymous access (the pages check it themselves).
    for router in (
        resolver.router,
        labels.router,
        ledger.router,
        catalog.router,
        updates.router,
        epcis.router,
        imports.router,
        exports.router,
        batches.router,
        auth.router,
        report_list.router,
        report.router,
        catalogue.router,  # the public site: /, /code
        product.router,  # /p/{id}, /producers/{id}
        ledger_page.router,  # /ledger, /ledger/bundle.jsonl
        sharing.router,  # /photos/…, /sitemap.xml, /robots.txt, /favicon
        photos.router,  # POST /api/v1/photos
    ):
        app.include_router(
            router, dependencies=[Depends(get_principal), Depends(writes_take_turns)]
        )
    webapp.install(app)  # the staff app under /app/, on the same use cases
    docs_offline.install(app)
    scan.add_compressed(app)  # last: any one-segment path no route above answers
    return app


def app_from_environment() -> FastAPI:
    """For `uvicorn --factory ocop_trace.app:app_from_environment` (each worker builds one).

    What the worker holds once its app is built (its modules and the app, some 150,000
    objects) lives as long as the process, so it is frozen out of the garbage collector's
    full passes: each pass walked all of it, and under load held the event loop for 150 to
    800 ms, the fleet benchmark's slowest scans (docs/performance.md). Only here, in a
    server's own process: tests build many apps in one process and let them go."""
    app = create_app(Settings())
    gc.freeze()
    return app
