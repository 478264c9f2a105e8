"""Signing in under attack: failures counted per account and per network in the database
(so every server process sees them), a growing back-off, and a bound on password hashing.

    a sign-in
    ├── blocked account or network?   429 with Retry-After, before any hashing
    ├── wait for a hashing slot       (Argon2 takes 64 MiB and the cores: a few at a time,
    │                                  on threads at the lowest CPU priority)
    │                                  429 "busy" if none frees up within WAIT_SECONDS
    ├── wrong password                 one more failure for the account and the network;
    │                                  past FREE_FAILURES each failure doubles the block
    └── right password                 the account's failures are forgotten; a token is issued

Network keys are salted hashes of the coarse network (scans.network_of), never an address.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, delete, select
from sqlmodel import Field, SQLModel

from ledger.statement import utc_now
from ledger.store import writing
from ocop_trace import accounts
from ocop_trace.accounts import Principal
from ocop_trace.errors import NotAuthenticated, TooManyRequests
from ocop_trace.scans import network_of

FREE_FAILURES = {"account": 5, "network": 20}  # before the first block
BASE_SECONDS = 1  # the first block; each further failure doubles it
MAX_SECONDS = 15 * 60
FORGET_SECONDS = 60 * 60  # failures older than this (and no block running) start afresh
WAIT_SECONDS = 10.0  # longest a sign-in waits for a hashing slot


class LoginThrottle(SQLModel, table=True):
    """Recent failed sign-ins of one account or one network (by salted hash)."""

    __tablename__ = "login_throttle"
    key: str = Field(primary_key=True, max_length=80)
    failures: int
    last_failure: str = Field(max_length=32)
    blocked_until: str = Field(default="", max_length=32, description="'' when not blocked")


THROTTLE = LoginThrottle.__table__  # type: ignore[attr-defined]


def _stamp(moment: datetime) -> str:
    # Microseconds, not whole seconds: a 1-s block stamped to the second could end a few
    # milliseconds after it began (CI saw the right password let in straight after).
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(stamp: str) -> datetime:
    """Either form: rows written before microseconds have whole seconds."""
    return datetime.fromisoformat(stamp).astimezone(UTC)


def keys_for(secret: str, username: str, host: str | None) -> dict[str, str]:
    """The throttle keys of a sign-in: its account and its network, salted with the secret."""
    salt = hashlib.sha256(b"ocop-trace/login-throttle/v1\n" + secret.encode()).digest()

    def key(kind: str, value: bytes) -> str:
        digest = hmac.new(salt, kind.encode() + b"\n" + value, "sha256").hexdigest()
        return f"{kind}:{digest}"

    return {
        "account": key("account", username.casefold().encode()),
        "network": key("network", network_of(host)),
    }


def block_seconds(kind: str, failures: int) -> int:
    """How long `failures` recent failures block an account or a network: nothing up to
    the free allowance, then 1 s, 2 s, 4 s... up to MAX_SECONDS."""
    over = failures - FREE_FAILURES[kind]
    return 0 if over < 0 else min(MAX_SECONDS, BASE_SECONDS << min(over, 20))


def check(engine: Engine, keys: dict[str, str], now: datetime | None = None) -> None:
    """Refuse (429 with Retry-After) while the account or the network is blocked."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        rows = conn.execute(
            select(THROTTLE.c.key, THROTTLE.c.blocked_until).where(
                THROTTLE.c.key.in_(keys.values())
            )
        ).all()
    waits = {
        row.key.split(":")[0]: (_parse(row.blocked_until) - now).total_seconds()
        for row in rows
        if row.blocked_until
    }
    for kind, seconds in sorted(waits.items()):
        if seconds > 0:
            whose = "this account" if kind == "account" else "your network"
            raise TooManyRequests(
                f"too many failed sign-ins from {whose}: try again in {int(seconds) + 1} s",
                retry_after=int(seconds) + 1,
            )


def record_failure(engine: Engine, keys: dict[str, str], now: datetime | None = None) -> None:
    """One more failure for the account and the network, and the block it earns."""
    now = now or datetime.now(UTC)
    with writing(engine) as conn:
        for kind, key in keys.items():
            row = conn.execute(select(THROTTLE).where(THROTTLE.c.key == key)).first()
            recent = row is not None and (
                (now - _parse(row.last_failure)).total_seconds() < FORGET_SECONDS
                or (row.blocked_until and _parse(row.blocked_until) > now)
            )
            failures = row.failures + 1 if row is not None and recent else 1
            seconds = block_seconds(kind, failures)
            values = {
                "failures": failures,
                "last_failure": _stamp(now),
                "blocked_until": _stamp(now + timedelta(seconds=seconds)) if seconds else "",
            }
            if row is None:
                conn.execute(THROTTLE.insert().values(key=key, **values))
            else:
                conn.execute(THROTTLE.update().where(THROTTLE.c.key == key).values(**values))
        # Old rows are of no use: drop them as we go, so the table stays small.
        cutoff = _stamp(now - timedelta(seconds=FORGET_SECONDS + MAX_SECONDS))
        conn.execute(delete(THROTTLE).where(THROTTLE.c.last_failure < cutoff))


def _lowest_priority() -> None:
    """Nice the calling thread to 19 (Linux schedules threads one by one; elsewhere this
    is a no-op): lowering one's own priority needs no privilege."""
    with suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    token_id: int
    token: str


class SignIn:
    """The sign-in use case of one server process, with its bound on password hashing."""

    def __init__(self, engine: Engine, secret: str, slots: int = 1) -> None:
        self.engine = engine
        self._secret = secret
        # A thread semaphore polled from the event loop: waiting sign-ins hold no worker
        # thread (public reads need those) and it works whichever loop runs the app.
        self._slots = threading.BoundedSemaphore(slots)
        # Hashes run on threads of their own at the lowest CPU priority (Argon2's lane
        # threads inherit it): under a flood of sign-ins, reads still get the cores.
        self._hashers = ThreadPoolExecutor(
            max_workers=slots, thread_name_prefix="argon2", initializer=_lowest_priority
        )

    @asynccontextmanager
    async def _hashing_slot(self) -> AsyncIterator[None]:
        deadline = time.monotonic() + WAIT_SECONDS
        while not self._slots.acquire(blocking=False):
            if time.monotonic() > deadline:
                raise TooManyRequests(
                    "the server is busy signing others in: try again in a few seconds",
                    retry_after=2,
                )
            await asyncio.sleep(0.05)  # a waiting sign-in costs the loop little
        try:
            yield
        finally:
            self._slots.release()

    async def __call__(
        self, username: str, password: str, host: str | None, token_name: str
    ) -> SignedIn:
        keys = keys_for(self._secret, username, host)
        await run_in_threadpool(check, self.engine, keys)
        async with self._hashing_slot():
            principal = await asyncio.get_running_loop().run_in_executor(
                self._hashers, accounts.check_password, self.engine, username, password
            )
        if principal is None:
            await run_in_threadpool(record_failure, self.engine, keys)
            raise NotAuthenticated("wrong username or password")
        return await run_in_threadpool(self._issue, principal, keys["account"], token_name)

    def _issue(self, principal: Principal, account_key: str, token_name: str) -> SignedIn:
        assert principal.user_id is not None
        with writing(self.engine) as conn:
            conn.execute(delete(THROTTLE).where(THROTTLE.c.key == account_key))
            token_id, token = accounts.issue_token(conn, principal.user_id, token_name, utc_now())
        return SignedIn(principal, token_id, token)
