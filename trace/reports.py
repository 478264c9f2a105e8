"""Reports of suspected fakes from shoppers: stored for inspectors, limited per network."""

from __future__ import annotations

import hmac
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, Engine, Index, LargeBinary, func, insert, select
from sqlmodel import Field, SQLModel

from ledger.statement import utc_now
from ledger.store import writing
from ocop_trace.errors import TooManyRequests
from ocop_trace.scans import coarse_network

REPORTS_PER_HOUR = 5
MAX_NOTE_CHARS = 2000
MAX_WHERE_CHARS = 300


class FakeReport(SQLModel, table=True):
    __tablename__ = "fake_report"
    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(index=True, max_length=200)
    note: str = Field(default="", max_length=2000)
    where_bought: str = Field(default="", max_length=300)
    client: str = Field(max_length=32, description="Salted network hash, never an address")
    created_at: str = Field(max_length=32)
    photo_type: str = Field(default="", max_length=32)
    photo: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    photo_size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))


REPORT = FakeReport.__table__  # type: ignore[attr-defined]
# The hourly limit counts one network's recent reports.
Index("ix_fake_report_client_created_at", REPORT.c.client, REPORT.c.created_at)


def network_client(secret: str, host: str | None) -> str:
    """The report limit's key for a sender: its coarse network alone (a browser string is
    free to change), keyed with the service secret so no address is stored."""
    return hmac.digest(
        secret.encode(), b"ocop-trace/report-network/v1\n" + coarse_network(host), "sha256"
    ).hex()[:32]


class RateLimiter:
    """Sliding one-hour window of attempts per client hash, in this process's memory: a
    cheap first gate. The stored reports are counted across processes in the database."""

    def __init__(self, limit: int, window: float = 3600.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] > self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


def store(engine: Engine, report: dict[str, Any]) -> None:
    """Store a report unless its network sent the hourly limit already, counted over every
    server process; the check and the insert hold the database's write lock together."""
    now = datetime.now(UTC)
    since = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with writing(engine) as conn:
        if conn.dialect.name == "postgresql":
            key = int(report["client"][:15], 16)
            conn.execute(select(func.pg_advisory_xact_lock(key)))
        recent = conn.execute(
            select(func.count())
            .select_from(REPORT)
            .where(REPORT.c.client == report["client"], REPORT.c.created_at >= since)
        ).scalar_one()
        if recent >= REPORTS_PER_HOUR:
            raise TooManyRequests(f"at most {REPORTS_PER_HOUR} reports an hour from one network")
        conn.execute(insert(REPORT).values(**report, created_at=utc_now()))
