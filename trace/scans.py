"""Counting scans of each label serial, to warn when a code looks copied, without raw IPs.

A scan is counted under a salted hash of the client's coarse network (IPv4 /24, IPv6 /48)
and user agent; the salt is derived from the service secret and the Vietnam date, so it
rotates daily and is never stored. The page must not wait on the database's write lock,
so scans are buffered in memory and written in one transaction about once a second, by the
app's background task (or by a request that finds the buffer overdue).
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy import BigInteger, Column, Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from ledger.statement import utc_now
from ledger.store import writing
from ocop_trace import ocop


class ScanCount(SQLModel, table=True):
    __tablename__ = "scan_count"
    serial: str = Field(primary_key=True, max_length=16)
    scans: int = Field(sa_column=Column(BigInteger, nullable=False))
    first_seen: str = Field(max_length=32)


class ScanClient(SQLModel, table=True):
    """One row per (serial, salted client hash): distinct networks that scanned it."""

    __tablename__ = "scan_client"
    serial: str = Field(primary_key=True, max_length=16)
    client: str = Field(primary_key=True, max_length=32)


COUNT = ScanCount.__table__  # type: ignore[attr-defined]
CLIENT = ScanClient.__table__  # type: ignore[attr-defined]
_CLIENTS_KEPT = 256
_KNOWN_SERIALS = 100_000


def client_hash(secret: str, host: str | None, user_agent: str, day: str) -> str:
    salt = _daily_salt(secret, day)
    return hashlib.sha256(salt + _network(host) + b"\n" + user_agent.encode()).hexdigest()[:32]


@lru_cache(maxsize=4)
def _daily_salt(secret: str, day: str) -> bytes:
    return hashlib.sha256(f"ocop-trace/scan-salt/v1\n{secret}\n{day}".encode()).digest()


@lru_cache(maxsize=4096)
def _network(host: str | None) -> bytes:
    """The coarse network of an address: IPv4 /24, IPv6 /48."""
    try:
        address = ipaddress.ip_address(host or "")
        prefix = 24 if address.version == 4 else 48
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False)).encode()
    except ValueError:
        return b"unknown"


@dataclass
class _Pending:
    scans: int = 0
    first_seen: str = ""
    clients: set[str] = field(default_factory=set)


@dataclass
class _Known:
    """A serial's stored counts as this process last read or wrote them."""

    scans: int
    networks: int
    first_seen: str
    clients: set[str]
    read_at: float


@dataclass(frozen=True)
class ScanStats:
    scans: int
    networks: int
    first_seen: str


class ScanCounter:
    """Counts scans in memory and writes them in batches; answers counts mostly from memory.

    A serial's stored counts are read once and then kept up to date with this process's own
    writes; other processes' scans show up when they are read again, `known_for` seconds on.
    """

    def __init__(
        self, engine: Engine, secret: str, flush_every: float = 1.0, known_for: float = 30.0
    ) -> None:
        self.engine = engine
        self._secret = secret
        self._flush_every = flush_every
        self._known_for = known_for
        self._pending: dict[str, _Pending] = {}
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._last_flush = time.monotonic()

    def record(self, serial: str, host: str | None, user_agent: str) -> None:
        """Count one scan, in memory only (see `overdue` and `flush`)."""
        client = client_hash(
            self._secret, host, user_agent[:200], ocop.today_in_vietnam_cached().isoformat()
        )
        with self._lock:
            pending = self._pending.get(serial)
            if pending is None:
                pending = self._pending[serial] = _Pending(first_seen=utc_now())
            pending.scans += 1
            pending.clients.add(client)

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
                # Counted as stored from now on, so no reader sees them missing meanwhile.
                for serial, pending in batch.items():
                    known = self._known.get(serial)
                    if known is not None:
                        known.scans += pending.scans
                        new = pending.clients - known.clients
                        known.networks += len(new)
                        # Bounded like a read: past a few hundred networks the count may
                        # run high, and the copy warning is long on by then.
                        if len(known.clients) < _CLIENTS_KEPT:
                            known.clients |= new
                        known.first_seen = known.first_seen or pending.first_seen
            if batch:
                self._write(batch)
        finally:
            self._flushing.release()

    def _write(self, batch: dict[str, _Pending]) -> None:
        # Two statements, each executed once with every row, whatever the batch's size.
        with writing(self.engine) as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            upsert = dialect.insert(COUNT)
            upsert = upsert.on_conflict_do_update(
                index_elements=[COUNT.c.serial],
                set_={"scans": COUNT.c.scans + upsert.excluded.scans},
            )
            conn.execute(
                upsert,
                [
                    {"serial": serial, "scans": p.scans, "first_seen": p.first_seen}
                    for serial, p in batch.items()
                ],
            )
            conn.execute(
                dialect.insert(CLIENT).on_conflict_do_nothing(),
                [
                    {"serial": serial, "client": client}
                    for serial, p in batch.items()
                    for client in p.clients
                ],
            )

    def cached_stats(self, serial: str) -> ScanStats | None:
        """The counts from memory, or None when the stored ones must be read first."""
        with self._lock:
            known = self._known.get(serial)
            if known is None or time.monotonic() - known.read_at > self._known_for:
                return None
            pending = self._pending.get(serial)
            if pending is None:
                return ScanStats(known.scans, known.networks, known.first_seen)
            return ScanStats(
                known.scans + pending.scans,
                known.networks + len(pending.clients - known.clients),
                known.first_seen or pending.first_seen,
            )

    def stats(self, serial: str, conn: Connection | None = None) -> ScanStats:
        """Stored counts plus what is still buffered in this process."""
        cached = self.cached_stats(serial)
        if cached is not None:
            return cached
        if conn is None:
            with self.engine.connect() as own:
                self._read(serial, own)
        else:
            self._read(serial, conn)
        return self.cached_stats(serial) or ScanStats(0, 0, "")

    def _read(self, serial: str, conn: Connection) -> None:
        read_at = time.monotonic()
        row = conn.execute(
            select(COUNT.c.scans, COUNT.c.first_seen).where(COUNT.c.serial == serial)
        ).first()
        # Enough clients to tell the buffered ones apart while under the warning threshold;
        # past it, the count alone decides.
        clients = set(
            conn.execute(
                select(CLIENT.c.client).where(CLIENT.c.serial == serial).limit(_CLIENTS_KEPT)
            ).scalars()
        )
        networks = len(clients)
        if networks == _CLIENTS_KEPT:
            networks = conn.execute(
                select(func.count()).select_from(CLIENT).where(CLIENT.c.serial == serial)
            ).scalar_one()
        with self._lock:
            self._known[serial] = _Known(
                row.scans if row else 0,
                int(networks),
                row.first_seen if row else "",
                clients,
                read_at,
            )
            if len(self._known) > _KNOWN_SERIALS:
                self._known.pop(next(iter(self._known)))
