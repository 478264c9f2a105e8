"""/checkpoint read at most every max_age seconds per process, and on every request at 0."""

from __future__ import annotations

import time

import pytest
from conftest import LedgerKit
from starlette.applications import Starlette
from starlette.testclient import TestClient
from support import registration

from ledger import keys
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
