"""A checkpoint published while the client is talking to a witness is sent at once after."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import LedgerKit, make_kit
from test_witness_client import grow, make_witness, policy_of, wait_for
from witness_support import serving

from ocop_trace.witness.app import create_witness_app
from ocop_trace.witness.client import Cosignature, WitnessClient


class Slow:
    """The witness app, answering each add-checkpoint after a pause: a round takes time."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/add-checkpoint":
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


@pytest.fixture
def kit(tmp_path: Path) -> LedgerKit:
    return make_kit(f"sqlite:///{tmp_path / 'ledger.db'}")


def test_a_checkpoint_published_during_a_round_is_not_left_for_the_interval(
    tmp_path: Path, kit: LedgerKit
) -> None:
    settings = make_witness(tmp_path / "w", kit, "slow.example/w")
    with serving(Slow(create_witness_app(settings), 0.5)) as url:
        policy = policy_of((settings, url))
        got: list[Cosignature] = []
        # An interval far longer than the test: only a wake-up can send the second one.
        client = WitnessClient(policy, kit.store, got.append, interval=60.0)
        kit.store.on_checkpoint = client.notify
        loop = asyncio.new_event_loop()
        task = loop.create_task(client.run())

        def run() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            first = kit.store.size()
            wait_for(lambda: client._loop is not None, 2.0)
            time.sleep(0.2)  # the first round (the startup checkpoint) is under way
            grow(kit, 2)  # published, and notified, in the middle of that round
            wait_for(lambda: any(c.size == kit.store.size() for c in got), 3.0)
            assert [c.size for c in got] == [first, kit.store.size()]
        finally:
            loop.call_soon_threadsafe(task.cancel)
            thread.join(10)
            loop.close()
