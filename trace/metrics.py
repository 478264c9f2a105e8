"""/metrics in the Prometheus text format: requests and latency, and the ledger's figures.

Requests are counted by a pure ASGI middleware that only touches in-process counters (no
database work on the scan page's path). They are labelled by the matched route's path
template ("/l/{code}"), never the raw path, so serials never become label values. The
ledger's figures (size, checkpoint size and age, each witness's lag) are read from the
database when Prometheus scrapes, in a worker thread.

With several server processes (`ocop-trace serve --workers N`), `serve` gives them one
fresh PROMETHEUS_MULTIPROC_DIR, and a scrape answered by any worker sums every worker's
counters (prometheus_client's multiprocess mode): a scrape cannot choose its worker, so
per-process figures would jump between scrapes.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as exposition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ocop_trace.errors import NotAuthenticated, NotFound
from ocop_trace.witnessing import Witnessing

log = logging.getLogger("ocop_trace")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported
# Any other method string a client sends is counted as "other": labels stay a fixed set.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "other"
# Cached scan pages answer in a few milliseconds; imports and bundles take seconds.
# The classic text format (0.0.4), which every Prometheus version reads; our names and
# labels need nothing newer.
TEXT_FORMAT = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RequestMetrics:
    """The in-memory request counters; one per app (its own registry, no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ocop_trace_http_requests",
            "HTTP requests answered, by method, route template and status class",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ocop_trace_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # The labelled children, kept so a request costs two dict lookups, not labels().
        self._counts: dict[tuple[str, str, str], Any] = {}
        self._times: dict[str, Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else UNMATCHED, route, f"{status // 100}xx")
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = self.requests.labels(*key)
        count.inc()
        timer = self._times.get(route)
        if timer is None:
            timer = self._times[route] = self.latency.labels(route)
        timer.observe(seconds)


def route_template(scope: Scope) -> str:
    """The matched route's path template ("/l/{code}"), or "other" when none matched."""
    route = scope.get("route")
    if route is None and "endpoint" in scope:
        return _plain_route(scope)
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


def _plain_route(scope: Scope) -> str:
    """The template of the plain Starlette route or mount that answered (FastAPI's router
    names only its own routes in the scope). The scan pages' routes come first in the
    list, and most routes are skipped on an identity check, so this costs microseconds."""
    endpoint = scope["endpoint"]
    for route in getattr(scope.get("router"), "routes", ()):
        if type(route) is Route and route.endpoint is endpoint:
            if route.matches(scope)[0] is Match.FULL:
                return route.path
        elif type(route) is Mount and route.app is endpoint:
            return route.path + "/{path}"
    return UNMATCHED


class CountRequests:
    """ASGI middleware: counts and times every HTTP answer, after the router matched it."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes is answered 500 by the outer layer

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The router writes the matched route into the shared scope dict.
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope["method"], route_template(scope), status, elapsed)


class LedgerCollector(Collector):
    """The ledger's figures, read from the primary database when scraped."""

    def __init__(self, witnessing: Witnessing) -> None:
        self.witnessing = witnessing

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "ocop_trace_database_up", "1 if the scrape could read the ledger's database"
        )
        try:
            figures = list(self._figures())
        except SQLAlchemyError as exc:
            log.error("metrics: the database is not readable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from figures

    def _figures(self) -> Iterator[Metric]:
        store = self.witnessing.store
        with store.engine.connect() as conn:
            size, checkpoint_size = store.state(conn)
            signed_at = (
                store.checkpoint_time(checkpoint_size, conn) if checkpoint_size >= 0 else None
            )
            cosigned = self.witnessing.cosignatures.witness_sizes(conn)
        # The ledger's size is the count of entries ever appended (entries are never
        # removed): one figure for every server, whichever process is scraped.
        appended = CounterMetricFamily(
            "ocop_trace_ledger_appends", "Entries appended to the ledger since its genesis"
        )
        appended.add_metric([], size)
        yield appended
        yield GaugeMetricFamily("ocop_trace_ledger_size", "Entries in the ledger", value=size)
        yield GaugeMetricFamily(
            "ocop_trace_checkpoint_size",
            "Size of the latest signed checkpoint (-1: none yet)",
            value=checkpoint_size,
        )
        if signed_at is not None:
            yield GaugeMetricFamily(
                "ocop_trace_checkpoint_age_seconds",
                "Seconds since the latest checkpoint was signed",
                value=max(0.0, time.time() - parse_time(signed_at)),
            )
        yield from self._witnesses(size, cosigned)

    def _witnesses(self, size: int, cosigned: dict[str, int]) -> Iterator[Metric]:
        policy = self.witnessing.policy
        if policy is None:
            return
        largest = GaugeMetricFamily(
            "ocop_trace_witness_cosigned_size",
            "Largest checkpoint size each witness of the policy has cosigned (0: none)",
            labels=["witness"],
        )
        lag = GaugeMetricFamily(
            "ocop_trace_witness_lag_entries",
            "Ledger size minus the largest size each witness has cosigned",
            labels=["witness"],
        )
        for witness in policy.witnesses:
            done = cosigned.get(witness.key.public.hex(), 0)
            largest.add_metric([witness.name], done)
            lag.add_metric([witness.name], size - done)
        yield largest
        yield lag


def parse_time(stamp: str) -> float:
    """Seconds since the epoch of a ledger timestamp (RFC 3339, UTC, "…Z")."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Scrape:
    """What /metrics answers: the request counters (every worker's, in multiprocess mode)
    and the ledger's figures."""

    def __init__(self, requests: RequestMetrics, ledger: LedgerCollector) -> None:
        if os.environ.get(MULTIPROC_ENV):
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            self.registry = requests.registry
        self.registry.register(ledger)

    def text(self) -> bytes:
        return exposition(self.registry)


def install(app: FastAPI, token: str | None, witnessing: Witnessing) -> None:
    """Count requests on every route, and serve /metrics to holders of `token` only."""
    requests = RequestMetrics()
    if token:  # with nobody to read them, counting would only cost every scan a little
        app.add_middleware(CountRequests, metrics=requests)
    scrape = Scrape(requests, LedgerCollector(witnessing))

    async def metrics(request: Request) -> Response:
        # Not for the public internet: without a configured token there is nothing here.
        if not token:
            raise NotFound(f"nothing at {request.url.path}; the API is described at /docs")
        if not _bearer_matches(request.headers.get("authorization", ""), token):
            raise NotAuthenticated("/metrics needs the metrics token: Authorization: Bearer …")
        body = await anyio.to_thread.run_sync(scrape.text)
        return Response(body, media_type=TEXT_FORMAT)

    # No get_principal: the metrics token is not an API token. Left out of the OpenAPI
    # description (it is for the operator's Prometheus; docs/deploy.md describes it).
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    # compare_digest: the time taken says nothing about how much of the token matched.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8"), token.encode("utf-8")
    )
