"""`make bench`: write throughput through the API, as a ratio to the store's own append rate.

For SQLite (and PostgreSQL when TRACE_TEST_POSTGRES_URL is set): 4 client processes
register batches through POST /api/v1/batches on 2 uvicorn workers, each request one signed,
durable append; every answer must be 201. The baseline, measured in the same run on a
database of the same kind, is the store appending the same statements (signed beforehand)
one per transaction, with the projection, from one process: what the ledger itself does
per durable append, without HTTP, sign-in, JSON or signing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

import httpx
from servers import seed, serving, token
from serving import database, kinds, load, result
from support import BATCH, PRODUCER

from ledger.statement import sign_statement
from ocop_trace.ledger_setup import open_service

CLIENTS = 4
STARTUP_SECONDS = 5  # for the client processes to start and import, on a busy host too


def _batch(tag: str, number: int) -> dict[str, object]:
    return {**BATCH, "id": f"{tag}-{number}", "lot": f"{tag.upper()}-{number}"}


def store_rate(url: str, count: int, settings: object, tag: str = "s") -> float:
    """Durable appends per second of the store alone (one statement per transaction)."""
    service = open_service(settings)  # type: ignore[arg-type]
    key = service.producer_key(PRODUCER["id"])
    statements = [sign_statement("batch.registered", _batch(tag, n), key) for n in range(count)]
    started = time.perf_counter()
    for statement in statements:
        service.store.append([statement])
    rate = count / (time.perf_counter() - started)
    service.engine.dispose()
    return rate


def _client(args: tuple[str, str, str, int, float]) -> tuple[float, float, list[int]]:
    """(when its first request went, when its last answer came, the statuses)."""
    base, bearer, tag, count, start_at = args
    statuses = []
    with httpx.Client(base_url=base, timeout=120, headers={"Authorization": bearer}) as client:
        time.sleep(max(0.0, start_at - time.time()))
        started = time.time()
        for number in range(count):
            statuses.append(client.post("/api/v1/batches", json=_batch(tag, number)).status_code)
    return started, time.time(), statuses


def api_rate(base: str, per_client: int, clients: int = CLIENTS) -> tuple[float, list[int]]:
    """Requests a second from the first request to the last answer. The clients start
    together once all have imported their modules (a spawned process takes a second or
    two, counted as request time before 2026-12-01, which cut the figure by up to half)."""
    bearer = f"Bearer {token(base, 'producer')}"
    start_at = time.time() + STARTUP_SECONDS
    jobs = [(base, bearer, f"c{n}", per_client, start_at) for n in range(clients)]
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        runs = pool.map(_client, jobs)
    statuses = [s for _, _, done in runs for s in done]
    seconds = max(end for _, end, _ in runs) - min(start for start, _, _ in runs)
    return len(statuses) / seconds, statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-client", type=int, default=150)
    parser.add_argument("--baseline", type=int, default=400)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    args = parser.parse_args()
    print(f"API write throughput benchmark ({load()})", flush=True)
    failed = False
    for kind in kinds():
        with database(kind) as (url, folder):
            settings = seed(url, folder / "keys")
            before = store_rate(url, args.baseline, settings)
            with serving(settings, workers=2) as base:
                rate, statuses = api_rate(base, args.per_client, args.clients)
            errors = sum(1 for s in statuses if s != 201)
            failed |= not result(
                errors == 0,
                f"{kind}: {len(statuses)} batches from {args.clients} client processes on 2 "
                f"workers: {rate:.0f}/s = {rate / before:.0%} of the store's own durable "
                f"append rate {before:.0f}/s (one statement per transaction), {errors} errors",
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
