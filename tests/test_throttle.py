"""Sign-in throttling: per account and per network, counted in the database, growing back-off."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support import PASSWORD, Api
from test_api import assert_error

from ocop_trace import throttle
from ocop_trace.app import create_app
from ocop_trace.throttle import FREE_FAILURES, SignIn


def sign_in(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def test_an_account_is_blocked_after_a_few_failures_even_for_the_right_password(api: Api) -> None:
    for _ in range(FREE_FAILURES["account"]):
        assert_error(sign_in(api.client, "producer", "wrong-password"), 401, "not_authenticated")
    blocked = sign_in(api.client, "producer", PASSWORD)
    error = assert_error(blocked, 429, "rate_limited")
    assert "this account" in error["message"]
    assert int(blocked.headers["Retry-After"]) >= 1
    # Another account from the same network is not blocked by it.
    assert sign_in(api.client, "inspector", PASSWORD).status_code == 201


def test_the_back_off_grows_with_each_failure(api: Api) -> None:
    secret = api.settings.secret_key.get_secret_value()
    key = throttle.keys_for(secret, "producer", "testclient")["account"]
    blocks = []
    for _ in range(FREE_FAILURES["account"]):
        sign_in(api.client, "producer", "wrong-password")
    for _ in range(3):
        with api.service.engine.connect() as conn:
            row = conn.execute(
                throttle.THROTTLE.select().where(throttle.THROTTLE.c.key == key)
            ).one()
        until = throttle._parse(row.blocked_until)
        blocks.append((until - throttle._parse(row.last_failure)).total_seconds())
        answer = sign_in(api.client, "producer", PASSWORD)  # even the right password waits
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) >= 1
        time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.2)
        sign_in(api.client, "producer", "wrong-password")  # a failure once unblocked
    assert blocks == [1, 2, 4], blocks
    assert throttle.block_seconds("account", 10_000) == throttle.MAX_SECONDS


def test_failures_are_counted_across_server_processes(api: Api) -> None:
    # Two apps on one database stand for two server processes: nothing is in memory.
    other = TestClient(create_app(api.settings))
    for number in range(FREE_FAILURES["account"]):
        client = api.client if number % 2 else other
        sign_in(client, "producer", "wrong-password")
    assert sign_in(api.client, "producer", PASSWORD).status_code == 429
    assert sign_in(other, "producer", PASSWORD).status_code == 429
    other.close()


def test_a_network_is_blocked_across_accounts(api: Api) -> None:
    attacker = TestClient(api.client.app, client=("203.0.113.7", 5000))
    for number in range(FREE_FAILURES["network"]):
        sign_in(attacker, f"guess-{number}", "wrong-password")
    error = assert_error(sign_in(attacker, "inspector", PASSWORD), 429, "rate_limited")
    assert "your network" in error["message"]
    neighbour = TestClient(api.client.app, client=("203.0.113.99", 5000))  # the same /24
    assert sign_in(neighbour, "inspector", PASSWORD).status_code == 429
    elsewhere = TestClient(api.client.app, client=("198.51.100.7", 5000))
    assert sign_in(elsewhere, "inspector", PASSWORD).status_code == 201


def test_a_successful_sign_in_forgets_the_accounts_failures(api: Api) -> None:
    for _ in range(FREE_FAILURES["account"] - 1):
        sign_in(api.client, "producer", "wrong-password")
    assert sign_in(api.client, "producer", PASSWORD).status_code == 201
    for _ in range(FREE_FAILURES["account"] - 1):
        sign_in(api.client, "producer", "wrong-password")
    assert sign_in(api.client, "producer", PASSWORD).status_code == 201


def test_no_raw_address_or_username_is_stored(api: Api) -> None:
    attacker = TestClient(api.client.app, client=("203.0.113.7", 5000))
    sign_in(attacker, "producer", "wrong-password")
    with api.service.engine.connect() as conn:
        keys = [row.key for row in conn.execute(throttle.THROTTLE.select())]
    assert len(keys) == 2
    assert not any("203.0.113" in k or "producer" in k for k in keys), keys


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_password_hashing_is_bounded_and_a_long_wait_is_a_429(api: Api) -> None:
    gate = SignIn(api.service.engine, "secret", slots=1)
    held = gate._slots.acquire(blocking=False)  # one sign-in is hashing
    assert held
    started = time.monotonic()
    throttle_wait = throttle.WAIT_SECONDS
    throttle.WAIT_SECONDS = 0.3
    try:
        with pytest.raises(throttle.TooManyRequests) as refused:
            asyncio.run(gate("producer", PASSWORD, "127.0.0.1", "api"))
    finally:
        throttle.WAIT_SECONDS = throttle_wait
        gate._slots.release()
    assert refused.value.retry_after is not None
    assert time.monotonic() - started < 5
    # With the slot free, the same sign-in goes through.
    assert asyncio.run(gate("producer", PASSWORD, "127.0.0.1", "api")).principal.role == "producer"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_four_lane_hash_is_redone_with_one_lane_at_sign_in(api: Api) -> None:
    from argon2 import PasswordHasher
    from sqlalchemy import select, update

    from ocop_trace.accounts import USER

    old = PasswordHasher(parallelism=4).hash(PASSWORD)
    with api.service.engine.begin() as conn:
        conn.execute(update(USER).where(USER.c.username == "producer").values(password_hash=old))
    assert sign_in(api.client, "producer", PASSWORD).status_code == 201
    with api.service.engine.connect() as conn:
        new = conn.execute(
            select(USER.c.password_hash).where(USER.c.username == "producer")
        ).scalar_one()
    assert ",p=4$" in old
    assert ",p=1$" in new
    assert sign_in(api.client, "producer", PASSWORD).status_code == 201


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_block_lasts_its_full_second_whatever_the_clock_reads(api: Api) -> None:
    # The failure that earns a 1-s block lands late in a second: whole-second stamps
    # ended that block 1 ms later (CI let the right password in straight after).
    keys = throttle.keys_for("secret", "producer", "127.0.0.1")
    late = datetime(2026, 11, 30, 10, 0, 0, 999_000, tzinfo=UTC)
    for _ in range(FREE_FAILURES["account"]):
        throttle.record_failure(api.service.engine, keys, now=late)
    for after in (0.002, 0.5, 0.99):
        with pytest.raises(throttle.TooManyRequests):
            throttle.check(api.service.engine, keys, now=late + timedelta(seconds=after))
    throttle.check(api.service.engine, keys, now=late + timedelta(seconds=1.001))


def test_rows_stamped_to_the_whole_second_are_still_read() -> None:
    assert throttle._parse("2026-11-30T10:00:01Z") == datetime(2026, 11, 30, 10, 0, 1, tzinfo=UTC)
    moment = datetime(2026, 11, 30, 10, 0, 0, 999_000, tzinfo=UTC)
    assert throttle._parse(throttle._stamp(moment)) == moment
