"""Reports of suspected fakes from shoppers: stored for inspectors, limited per network.

What the report form calls (trace/site/report.py):
    network_key(secret, host)      the client key: a salted hash of the network alone
    issued_serial(engine, text)    the serial as stored, or NotFound if never issued
    submit(engine, secret, ...)    the whole use case: checks, limits and storage
Every limit is counted in the database, across server processes: REPORTS_PER_HOUR per
network, and a storage budget per Vietnam day (TRACE_REPORT_BYTES_PER_DAY).
"""

from __future__ import annotations

import hashlib
import threading
import time as clock
from collections import deque
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, Column, Engine, Index, LargeBinary, func, insert, select
from sqlmodel import Field, SQLModel

from ledger.statement import utc_now
from ledger.store import writing
from ocop_trace.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from ocop_trace.models import LABEL_SERIAL
from ocop_trace.ocop import VIETNAM_TIME, today_in_vietnam
from ocop_trace.scans import network_of
from ocop_trace.serials import SerialError, parse_canonical, parse_human

REPORTS_PER_HOUR = 5
MAX_NOTE_CHARS = 2000
MAX_WHERE_CHARS = 300
DEFAULT_BYTES_PER_DAY = 200 * 1024 * 1024  # TRACE_REPORT_BYTES_PER_DAY's default
REPORT_LOCK = 0x6F636F70_7265706F  # PostgreSQL advisory lock held while a report is stored


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


class RateLimiter:
    """Sliding one-hour window of attempts per client hash, in this process's memory: a
    cheap first gate. The stored reports are counted across processes in the database."""

    def __init__(self, limit: int, window: float = 3600.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = clock.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] > self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


class ReportBudgetExceeded(TooManyRequests):
    """Reports today already take the day's storage budget: refused until tomorrow."""


def network_key(secret: str, host: str | None) -> str:
    """Who sent a report, as stored: a hash of the coarse network (IPv4 /24, IPv6 /48) salted
    with the secret and the day. Not the browser string, which a sender changes at will."""
    day = today_in_vietnam().isoformat()
    salt = hashlib.sha256(f"ocop-trace/report-network/v1\n{secret}\n{day}".encode()).digest()
    return hashlib.sha256(salt + network_of(host)).hexdigest()[:32]


def issued_serial(engine: Engine, text: str) -> str:
    """The serial as stored, if the service issued it (link or printed form); else NotFound."""
    try:
        serial = parse_canonical(text.strip())
    except SerialError:
        try:
            serial = parse_human(text)
        except SerialError as exc:
            raise InvalidInput(f"this is not a label code: {exc.message}", field="serial") from None
    with engine.connect() as conn:
        found = conn.execute(
            select(LABEL_SERIAL.c.serial).where(LABEL_SERIAL.c.serial == serial.canonical)
        ).scalar()
    if found is None:
        raise NotFound(
            "this code was never issued: the scan page already warns that it may be fake",
            field="serial",
        )
    return str(found)


def _day_start_utc(now: datetime) -> str:
    """Midnight of today in Vietnam, as a UTC timestamp like the reports' created_at."""
    midnight = datetime.combine(today_in_vietnam(now), time(0), VIETNAM_TIME)
    return midnight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def store(
    engine: Engine, report: dict[str, Any], bytes_per_day: int = DEFAULT_BYTES_PER_DAY
) -> None:
    """Store a report unless the serial was never issued, its network sent the hourly limit
    already, or today's reports fill the storage budget, all counted over every server
    process; the checks and the insert hold the database's write lock together."""
    now = datetime.now(UTC)
    since = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    serial = issued_serial(engine, report["serial"])
    size = _size(report)
    with writing(engine) as conn:
        if conn.dialect.name == "postgresql":  # one report at a time: the budget is shared
            conn.execute(select(func.pg_advisory_xact_lock(REPORT_LOCK)))
        recent = conn.execute(
            select(func.count())
            .select_from(REPORT)
            .where(REPORT.c.client == report["client"], REPORT.c.created_at >= since)
        ).scalar_one()
        if recent >= REPORTS_PER_HOUR:
            raise TooManyRequests(
                f"at most {REPORTS_PER_HOUR} reports an hour from one network", retry_after=3600
            )
        used = conn.execute(
            select(
                func.coalesce(
                    func.sum(
                        REPORT.c.photo_size
                        + func.length(REPORT.c.note)
                        + func.length(REPORT.c.where_bought)
                    ),
                    0,
                )
            ).where(REPORT.c.created_at >= _day_start_utc(now))
        ).scalar_one()
        if int(used) + size > bytes_per_day:
            tomorrow = datetime.combine(
                today_in_vietnam(now) + timedelta(days=1), time(0), VIETNAM_TIME
            )
            raise ReportBudgetExceeded(
                "the service has stored as many reports as it can take today: please try "
                "again tomorrow, or tell the producer or an inspector directly",
                retry_after=max(1, int((tomorrow - now).total_seconds())),
            )
        conn.execute(insert(REPORT).values(**{**report, "serial": serial}, created_at=utc_now()))


def _size(report: dict[str, Any]) -> int:
    return (
        int(report.get("photo_size", 0))
        + len(report.get("note", ""))
        + len(report.get("where_bought", ""))
    )


def submit(
    engine: Engine,
    secret: str,
    *,
    serial: str,
    host: str | None,
    note: str = "",
    where_bought: str = "",
    photo: bytes = b"",
    photo_type: str = "",
    bytes_per_day: int = DEFAULT_BYTES_PER_DAY,
) -> None:
    """A shopper's report, from the form's fields: keyed on its network, stored under every
    limit. The photo is checked by the form (by content) before it comes here."""
    store(
        engine,
        {
            "serial": serial,
            "note": note,
            "where_bought": where_bought,
            "client": network_key(secret, host),
            "photo_type": photo_type if photo else "",
            "photo": photo or None,
            "photo_size": len(photo),
        },
        bytes_per_day,
    )


class ReportHandled(SQLModel, table=True):
    """An inspector's answer to a report: who marked it handled, when, and their note."""

    __tablename__ = "fake_report_handled"
    report_id: int = Field(primary_key=True)
    handled_by: str = Field(max_length=64)
    note: str = Field(default="", max_length=2000)
    handled_at: str = Field(max_length=32)


HANDLED = ReportHandled.__table__  # type: ignore[attr-defined]


def mark_handled(engine: Engine, report_id: int, username: str, note: str) -> None:
    """Mark a report handled (once: a second mark of the same report is refused)."""
    with writing(engine) as conn:
        if conn.execute(select(REPORT.c.id).where(REPORT.c.id == report_id)).first() is None:
            raise NotFound(f"no report {report_id}", field="report_id")
        if conn.execute(select(HANDLED).where(HANDLED.c.report_id == report_id)).first():
            raise Conflict(f"report {report_id} is already handled", field="note")
        conn.execute(
            insert(HANDLED).values(
                report_id=report_id, handled_by=username, note=note, handled_at=utc_now()
            )
        )
