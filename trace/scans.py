"""Counting the networks that scan each label serial, to warn when a code looks copied.

A copied code is scanned from many places; one phone or one shop is one place however
often it reloads, switches language or changes its browser string. So a scan is counted
under its coarse network (IPv4 /24, IPv6 /48) and nothing else, once a day: the stored
client is an HMAC of the serial and the network under the service secret, so the same
network is recognised on the same serial across days (and only there: the hashes of two
serials cannot be linked), and no address is ever stored. The page warns when
`copy_networks` distinct networks scanned a serial in the last `copy_days` days.

The page must not wait on the database's write lock, so scans are buffered in memory and
written in one transaction about once a second, by the app's background task (or by a
request that finds the buffer overdue); each process re-reads a serial's stored counts
after `known_for` seconds (each serial somewhat sooner, at random, so that the serials one
burst of scans read together are not all read again in the same second).

At a million scans a day nothing may become a hot row or grow without end: a network
scanning a serial again the same day writes nothing (the upsert updates only on a new day),
and once a network's last scan of a serial has left the window its row is folded into the
serial's one rollup row (`roll_up`, hourly), so scan_network holds only the window's rows.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

from sqlalchemy import BigInteger, Column, Connection, Engine, Integer, case, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from ledger.store import writing
from ocop_trace import ocop

_CLIENTS_KEPT = 64  # per serial in memory: past the warning threshold the count alone decides
_KNOWN_SERIALS = 100_000
_READ_AT_ONCE = 500  # serials per query when counts are read again in bulk
_WRITTEN_KEPT = 100_000  # (serial, network) pairs remembered as written today


class ScanNetwork(SQLModel, table=True):
    """One row per (serial, network): the days it first and last scanned the serial, and
    on how many days it did."""

    __tablename__ = "scan_network"
    serial: str = Field(primary_key=True, max_length=16)
    client: str = Field(primary_key=True, max_length=32)
    first_day: str = Field(max_length=10)
    last_day: str = Field(max_length=10, index=True)
    days: int = Field(sa_column=Column(Integer, nullable=False))


class ScanRollup(SQLModel, table=True):
    """One row per serial: the network-days and first day of the networks whose last scan
    of it left the window (their scan_network rows are gone)."""

    __tablename__ = "scan_rollup"
    serial: str = Field(primary_key=True, max_length=16)
    scans: int = Field(sa_column=Column(BigInteger, nullable=False))
    first_day: str = Field(max_length=10)


NETWORK = ScanNetwork.__table__  # type: ignore[attr-defined]
ROLLUP = ScanRollup.__table__  # type: ignore[attr-defined]


def client_hash(secret: str, serial: str, host: str | None) -> str:
    """The serial's pseudonym for a network: the same network, the same serial, any day."""
    key = _key(secret)
    return hmac.digest(key, serial.encode() + b"\n" + network_of(host), "sha256").hex()[:32]


@lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hashlib.sha256(f"ocop-trace/scan-network/v2\n{secret}".encode()).digest()


@lru_cache(maxsize=64)  # called on every scan, with one value a day
def _window_start(today: str, days: int) -> str:
    return (date.fromisoformat(today) - timedelta(days=days - 1)).isoformat()


@lru_cache(maxsize=4096)
def network_of(host: str | None) -> bytes:
    """The coarse network of an address: IPv4 /24, IPv6 /48."""
    try:
        address = ipaddress.ip_address(host or "")
        prefix = 24 if address.version == 4 else 48
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False)).encode()
    except ValueError:
        return b"unknown"


@dataclass(frozen=True)
class ScanStats:
    scans: int  # network-days: a network scanning on three days counts three
    networks: int  # distinct networks within the window
    first_day: str


@dataclass
class _Serial:
    """A serial's counts as this process knows them: read from the database, plus its own
    scans since (pending ones not yet written)."""

    clients: dict[str, str] = field(default_factory=dict)  # client -> last day seen
    scans: int = 0
    networks: int = 0  # in the window, as read (clients beyond those kept count here)
    first_day: str = ""
    stale_at: float = 0.0  # when to read the stored counts again


class ScanCounter:
    def __init__(
        self,
        engine: Engine,
        secret: str,
        window_days: int = 30,
        flush_every: float = 1.0,
        known_for: float = 30.0,
    ) -> None:
        self.engine = engine
        self._secret = secret
        self._window = window_days
        self._flush_every = flush_every
        self._known_for = known_for
        self._pending: dict[tuple[str, str], str] = {}  # (serial, client) -> day
        self._known: dict[str, _Serial] = {}
        # (serial, client) -> the last day written: a network scanning a serial again that
        # day writes nothing, so is not even sent (a reload, a language switch, a shelf
        # scanned over and over would otherwise be sent on every flush).
        self._written: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._last_flush = time.monotonic()
        # Serials scanned since their counts went stale, for `refresh` to read again.
        self._stale: set[str] = set()
        self._refreshed_at = -1e9

    def record(self, serial: str, host: str | None) -> None:
        """Count one scan, in memory only (see `overdue` and `flush`)."""
        client = client_hash(self._secret, serial, host)
        today = ocop.today_in_vietnam_cached().isoformat()
        with self._lock:
            if self._written.get((serial, client)) != today:
                self._pending[(serial, client)] = today
            known = self._known.get(serial)
            if known is not None:
                _count(known, client, today, self._since(today))

    def overdue(self) -> bool:
        """The app's background task writes the buffer every interval; a request writes it
        only when two intervals have gone by without (no task running, as in tests)."""
        return time.monotonic() - self._last_flush >= 2 * self._flush_every

    def flush(self, *, wait: bool = True) -> None:
        if not self._flushing.acquire(blocking=wait):
            return  # another thread is writing; this one carries on
        try:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._last_flush = time.monotonic()
            if batch:
                self._write(batch)
                with self._lock:
                    self._written.update(batch)
                    while len(self._written) > _WRITTEN_KEPT:
                        self._written.popitem(last=False)
        finally:
            self._flushing.release()

    def _write(self, batch: dict[tuple[str, str], str]) -> None:
        # One statement executed once with every row, whatever the batch's size: a new
        # network inserts, a known one on a new day counts that day (never twice a day),
        # and one seen again the same day writes nothing, so a busy serial is no hot row.
        rows = [
            {"serial": s, "client": c, "first_day": d, "last_day": d, "days": 1}
            for (s, c), d in batch.items()
        ]
        with writing(self.engine) as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            upsert = dialect.insert(NETWORK)
            new = upsert.excluded
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[NETWORK.c.serial, NETWORK.c.client],
                    set_={
                        "days": NETWORK.c.days
                        + case((NETWORK.c.last_day != new.last_day, 1), else_=0),
                        "last_day": func.max(NETWORK.c.last_day, new.last_day)
                        if dialect is sqlite
                        else func.greatest(NETWORK.c.last_day, new.last_day),
                    },
                    where=NETWORK.c.last_day != new.last_day,
                ),
                rows,
            )

    def roll_up(self, today: str | None = None) -> int:
        """Fold the rows of networks whose last scan left the window into their serials'
        rollup rows, in one transaction; returns how many rows were folded."""
        since = self._since(today or ocop.today_in_vietnam_cached().isoformat())
        with writing(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                # One statement: a row a flush moves back into the window meanwhile is
                # either deleted and counted here, or kept, never both.
                return int(conn.execute(_ROLL_UP_POSTGRESQL, {"since": since}).scalar_one())
            # SQLite: the write lock is held from BEGIN IMMEDIATE, so no flush interleaves.
            old = NETWORK.c.last_day < since
            moved = (
                select(NETWORK.c.serial, func.sum(NETWORK.c.days), func.min(NETWORK.c.first_day))
                .where(old)
                .group_by(NETWORK.c.serial)
            )
            upsert = sqlite.insert(ROLLUP).from_select(["serial", "scans", "first_day"], moved)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[ROLLUP.c.serial],
                    set_={
                        "scans": ROLLUP.c.scans + upsert.excluded.scans,
                        "first_day": func.min(ROLLUP.c.first_day, upsert.excluded.first_day),
                    },
                )
            )
            return int(conn.execute(NETWORK.delete().where(old)).rowcount)

    def stats(self, serial: str, conn: Connection | None = None) -> ScanStats:
        """Stored counts plus what this process saw since it read them."""
        cached = self.cached_stats(serial)
        if cached is not None:
            return cached
        if conn is None:
            with self.engine.connect() as own:
                return self._read(serial, own)
        return self._read(serial, conn)

    def cached_stats(self, serial: str) -> ScanStats | None:
        """The counts from memory, or None when the stored ones must be read first. Counts
        past their time are still answered while the app's task re-reads them (`refresh`):
        a scan never waits on that read, which under a steady write load queued scans
        behind appends for the few threads a process runs."""
        with self._lock:
            known = self._known.get(serial)
            if known is None:
                return None
            if time.monotonic() > known.stale_at:
                if not self._refreshing():
                    return None
                if len(self._stale) < _KNOWN_SERIALS:
                    self._stale.add(serial)
            return ScanStats(known.scans, known.networks, known.first_day)

    def refresh(self) -> None:
        """Read again the stored counts of the serials scanned since theirs went stale
        (the app's task, about once a second), all in one connection."""
        self._refreshed_at = time.monotonic()
        with self._lock:
            serials, self._stale = list(self._stale), set()
        if serials:
            with self.engine.connect() as conn:
                self._read_many(serials, conn)

    def _refreshing(self) -> bool:
        # Only while a task calls `refresh`: without one (tests, scripts) a scan reads itself.
        return time.monotonic() - self._refreshed_at < 2 * self._flush_every + 1

    def _since(self, today: str) -> str:
        return _window_start(today, self._window)

    def _read(self, serial: str, conn: Connection) -> ScanStats:
        known = self._read_many([serial], conn)[serial]
        return ScanStats(known.scans, known.networks, known.first_day)

    def _read_many(self, serials: list[str], conn: Connection) -> dict[str, _Serial]:
        """The stored counts of these serials, three queries for all of them (a refresh
        of thousands of serials one by one held the GIL for seconds in every worker)."""
        read_at = time.monotonic()
        today = ocop.today_in_vietnam_cached().isoformat()
        since = self._since(today)
        found = {s: _Serial(stale_at=read_at + self._known_for * _spread()) for s in serials}
        for start in range(0, len(serials), _READ_AT_ONCE):
            chunk = serials[start : start + _READ_AT_ONCE]
            for row in conn.execute(
                select(
                    NETWORK.c.serial,
                    func.coalesce(func.sum(NETWORK.c.days), 0),
                    func.count().filter(NETWORK.c.last_day >= since),
                    func.min(NETWORK.c.first_day),
                )
                .where(NETWORK.c.serial.in_(chunk))
                .group_by(NETWORK.c.serial)
            ):
                known = found[row[0]]
                known.scans, known.networks, known.first_day = int(row[1]), int(row[2]), row[3]
            for row in conn.execute(
                select(ROLLUP.c.serial, ROLLUP.c.scans, ROLLUP.c.first_day).where(
                    ROLLUP.c.serial.in_(chunk)
                )
            ):
                known = found[row.serial]
                known.scans += int(row.scans)
                days = [d for d in (known.first_day, row.first_day) if d]
                known.first_day = min(days, default="")
            # The networks seen in the window, at most _CLIENTS_KEPT of each serial.
            ranked = (
                select(
                    NETWORK.c.serial,
                    NETWORK.c.client,
                    NETWORK.c.last_day,
                    func.row_number().over(partition_by=NETWORK.c.serial).label("n"),
                )
                .where(NETWORK.c.serial.in_(chunk), NETWORK.c.last_day >= since)
                .subquery()
            )
            for row in conn.execute(
                select(ranked.c.serial, ranked.c.client, ranked.c.last_day).where(
                    ranked.c.n <= _CLIENTS_KEPT
                )
            ):
                found[row.serial].clients[row.client] = row.last_day
        with self._lock:
            # This process's scans not yet written count too.
            for (pending_serial, client), day in self._pending.items():
                known_ = found.get(pending_serial)
                if known_ is not None:
                    _count(known_, client, day, since)
            self._known.update(found)
            while len(self._known) > _KNOWN_SERIALS:
                self._known.pop(next(iter(self._known)))
        return found


_ROLL_UP_POSTGRESQL = text(
    """
    WITH moved AS (
        DELETE FROM scan_network WHERE last_day < :since
        RETURNING serial, days, first_day
    ), folded AS (
        INSERT INTO scan_rollup (serial, scans, first_day)
        SELECT serial, sum(days), min(first_day) FROM moved GROUP BY serial
        ON CONFLICT (serial) DO UPDATE SET
            scans = scan_rollup.scans + excluded.scans,
            first_day = least(scan_rollup.first_day, excluded.first_day)
    )
    SELECT count(*) FROM moved
    """
)


def _spread() -> float:
    # Each serial's counts go stale somewhat sooner than `known_for`, at random, so that
    # serials read together are not all read again together.
    return random.uniform(0.5, 1.0)  # noqa: S311


def _count(known: _Serial, client: str, day: str, since: str) -> None:
    """Add one scan to a serial's counts: a new day for a network, or a new network."""
    last = known.clients.get(client)
    if last == day:
        return  # the same network again today: a reload, a language switch
    known.scans += 1
    known.first_day = known.first_day or day
    if last is None or last < since:
        if last is None and len(known.clients) >= _CLIENTS_KEPT:
            known.networks += 1  # unknown beyond those kept: counted as new (already warned)
            return
        known.networks += 1
    known.clients[client] = day
