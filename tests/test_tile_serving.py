"""Serving tiles fast: /checkpoint read at most every max_age seconds per process (on every
request at 0), and a tile in memory answered without a query."""

from __future__ import annotations

import time

import pytest
from conftest import LedgerKit
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import registration

from ledger import keys
from ledger.tiles import ENTRIES, Tile, TileReader, decode_bundle
from ocop_trace.witness.tile_routes import tile_routes


def grow(kit: LedgerKit) -> str:
    producer = registration(kit.council, keys.generate(), "producer", ["batch.registered"], "p")
    kit.store.append([producer])
    return kit.store.publish_checkpoint()


@pytest.mark.parametrize("max_age", [0.0, 0.5])
def test_checkpoint_lags_at_most_max_age(sqlite_kit: LedgerKit, max_age: float) -> None:
    store = sqlite_kit.store
    first = store.latest_checkpoint()
    app = Starlette(routes=tile_routes(store, store.latest_checkpoint, max_age))
    with TestClient(app) as client:
        assert client.get("/checkpoint").text == first
        read_at = time.monotonic()
        second = grow(sqlite_kit)
        assert second != first
        served = client.get("/checkpoint").text
        if max_age == 0:
            assert served == second
        elif time.monotonic() - read_at < max_age:
            assert served == first  # kept: no query
        time.sleep(max_age)
        assert client.get("/checkpoint").text == second


def test_a_tile_in_memory_is_answered_as_read(sqlite_kit: LedgerKit) -> None:
    store = sqlite_kit.store
    size = store.size()
    reader = TileReader(store)
    bundle, hashes = Tile(ENTRIES, 0, size), Tile(0, 0, size)
    assert reader.cached(bundle) is None  # never read: the caller must query
    data = reader.read(bundle)
    assert reader.cached(bundle) == data
    assert decode_bundle(data, size) == [entry for _, entry in store.entries()]
    app = Starlette(routes=tile_routes(store, store.latest_checkpoint))
    with TestClient(app) as client:
        first = client.get(f"/{hashes.path}")  # a miss: read in a worker thread, then kept
        assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
        store.engine.dispose()
        with store.engine.begin() as conn:  # the rows gone: only memory can answer now
            conn.exec_driver_sql("DELETE FROM ledger_node")
        again = client.get(f"/{hashes.path}")
        assert (again.status_code, again.content) == (200, first.content)
        assert again.headers == first.headers
        assert client.get(f"/tile/0/000.p/{size + 1}").status_code == 404
