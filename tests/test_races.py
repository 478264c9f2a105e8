"""Races between server processes, on SQLite and PostgreSQL: idempotency keys, producer
registration, logins while others write. Real uvicorn workers, real client processes."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from clients import call
from servers import seed, serving, token
from sqlalchemy import func, select
from support import BATCH, OTHER_PRODUCER, PASSWORD

from ledger.store import ENTRY, open_engine
from ocop_trace.custody import CUSTODIAL

pytestmark = pytest.mark.slow


def together(requests: list[tuple[str, str, str, Any, dict[str, str]]]) -> list[tuple[int, Any]]:
    """Send every request from its own process, all at the same moment."""
    at = time.time() + 2.0
    with multiprocessing.get_context("spawn").Pool(len(requests)) as pool:
        return pool.map(call, [(*r, at) for r in requests])


def kinds_in(db_url: str, kind: str) -> int:
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(ENTRY).where(ENTRY.c.kind == kind)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_one_idempotency_key_sent_eight_times_at_once_writes_once(
    db_url: str, tmp_path: Path
) -> None:
    settings = seed(db_url, tmp_path / "keys")
    with serving(settings) as base:
        headers = {
            "Authorization": f"Bearer {token(base, 'producer')}",
            "Idempotency-Key": "batch-once",
        }
        answers = together([("POST", base, "/api/v1/batches", BATCH, headers)] * 8)
        statuses = sorted(status for status, _ in answers)
        assert all(s in (201, 409) for s in statuses), answers
        created = [body for status, body in answers if status == 201]
        assert created, answers
        # Every 201 is the one answer, replayed; a 409 says the first is still running.
        assert all(body == created[0] for body in created), created
        for status, body in answers:
            if status == 409:
                assert "still being processed" in body["error"]["message"], body
        # A retry after the rush gets the first answer.
        retry = call(("POST", base, "/api/v1/batches", BATCH, headers, 0))
        assert retry == (201, created[0])
    assert kinds_in(db_url, "batch.registered") == 1


def test_four_registrations_of_one_producer_leave_one_key_that_signs(
    db_url: str, tmp_path: Path
) -> None:
    settings = seed(db_url, tmp_path / "keys", producer=False)
    with serving(settings) as base:
        council = {"Authorization": f"Bearer {token(base, 'council')}"}
        answers = together([("POST", base, "/api/v1/producers", OTHER_PRODUCER, council)] * 4)
        assert sorted(status for status, _ in answers) == [201, 409, 409, 409], answers
        engine = open_engine(db_url)
        with engine.connect() as conn:
            keys_kept = conn.execute(
                select(func.count())
                .select_from(CUSTODIAL)
                .where(CUSTODIAL.c.owner == f"producer:{OTHER_PRODUCER['id']}")
            ).scalar_one()
        engine.dispose()
        assert keys_kept == 1, "a refused registration left a custodial key behind"
        # The producer can sign: a product, a user and a batch of its own.
        product = {
            "id": "gao-tan-son",
            "producer_id": OTHER_PRODUCER["id"],
            "name_vi": "Gạo nếp Tân Sơn",
            "product_set": "food.rice_cereals",
        }
        assert call(("POST", base, "/api/v1/products", product, council, 0))[0] == 201
        user = {
            "username": "tan-son",
            "password": PASSWORD,
            "role": "producer",
            "producer_id": OTHER_PRODUCER["id"],
        }
        assert call(("POST", base, "/api/v1/users", user, council, 0))[0] == 201
        producer = {"Authorization": f"Bearer {token(base, 'tan-son')}"}
        batch = {**BATCH, "id": "gao-2026-001", "product_id": "gao-tan-son"}
        status, body = call(("POST", base, "/api/v1/batches", batch, producer, 0))
        assert status == 201, body


def test_logins_while_four_processes_write_get_no_server_error(db_url: str, tmp_path: Path) -> None:
    settings = seed(db_url, tmp_path / "keys")
    with serving(settings) as base:
        producer = {"Authorization": f"Bearer {token(base, 'producer')}"}
        writes = [
            ("POST", base, "/api/v1/batches", {**BATCH, "id": f"b-{n}", "lot": f"L-{n}"}, producer)
            for n in range(4)
        ]
        login = {"username": "producer", "password": PASSWORD}
        logins = [("POST", base, "/api/v1/auth/token", login, {})] * 40
        answers = together(writes + logins)
    statuses = [status for status, _ in answers]
    assert all(status < 500 for status in statuses), answers
    assert statuses[:4] == [201] * 4, answers[:4]
    # Every login either succeeds or, when the hashing slots stay busy too long on a
    # loaded machine, is asked to come back (429 with Retry-After).
    assert set(statuses[4:]) <= {201, 429}, statuses
    assert 201 in statuses[4:], statuses
