"""HTTP for tlog-tiles over a LedgerStore: /checkpoint, /tile/… and /tile/entries/… routes."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ledger.store import LedgerStore
from ledger.tiles import TileError, TileReader, parse_tile_path

# Tiles never change once served, partial ones included (a wider tile has another path).
IMMUTABLE = "public, max-age=31536000, immutable"
CHECKPOINT_CACHE = "public, max-age=2"  # tlog-tiles: no caching beyond a few seconds
OCTETS = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"


def tile_response(reader: TileReader, path: str) -> Response:
    """The answer to GET <prefix>/<path> for a path starting `tile/`: the tile with long-lived
    caching, or 404 (not cached) for a malformed path or a tile the tree does not have yet."""
    try:
        body = reader.read_path(path)
    except TileError as exc:
        return PlainTextResponse(
            f"{exc}\n", 404, media_type=TEXT, headers={"Cache-Control": "no-store"}
        )
    return Response(body, media_type=OCTETS, headers={"Cache-Control": IMMUTABLE})


def checkpoint_response(note: str | None) -> Response:
    if note is None:
        return PlainTextResponse("no checkpoint yet\n", 404, media_type=TEXT)
    return PlainTextResponse(note, media_type=TEXT, headers={"Cache-Control": CHECKPOINT_CACHE})


def tile_routes(
    store: LedgerStore, checkpoint: Callable[[], str | None], max_age: float = 0.0
) -> list[Route]:
    """Routes to mount at the log's prefix. `checkpoint` gives the note to serve at
    /checkpoint: the latest one with its cosignatures (CosignatureStore.cosigned). It is
    read at most every `max_age` seconds (0: on every request)."""
    reader = TileReader(store)
    # (note, monotonic time it was read): reading it costs two queries, ten times the cost
    # of the rest of the answer, and a client may already hold it for CHECKPOINT_CACHE.
    kept: list[tuple[str | None, float]] = []

    async def get_tile(request: Request) -> Response:
        path = "tile/" + request.path_params["rest"]
        try:
            data = reader.cached(parse_tile_path(path))
        except TileError:
            data = None  # tile_response answers it
        if data is not None:
            # A hit answers here: the hand-off to a worker thread would cost more than the rest.
            return Response(data, media_type=OCTETS, headers={"Cache-Control": IMMUTABLE})
        return await run_in_threadpool(tile_response, reader, path)

    async def get_checkpoint(_: Request) -> Response:
        if kept and time.monotonic() - kept[0][1] < max_age:
            return checkpoint_response(kept[0][0])
        read_at = time.monotonic()
        note = await run_in_threadpool(checkpoint)
        kept[:] = [(note, read_at)]
        return checkpoint_response(note)

    return [
        Route("/checkpoint", get_checkpoint, methods=["GET"]),
        Route("/tile/{rest:path}", get_tile, methods=["GET"]),
    ]


def create_tiles_app(store: LedgerStore, checkpoint: Callable[[], str | None]) -> Starlette:
    """A log served as tiles and nothing else, entry bundles gzip-compressed as the spec
    asks: for tests and for a read-only mirror of a ledger database."""
    return Starlette(
        routes=tile_routes(store, checkpoint),
        middleware=[Middleware(GZipMiddleware, minimum_size=1024)],
    )
