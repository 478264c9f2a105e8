"""Counting scans of each label serial, to warn when a code looks copied, without raw IPs.

A scan is counted under a salted hash of the client's coarse network (IPv4 /24, IPv6 /48)
and user agent; the salt is derived from the service secret and the Vietnam date, so it
rotates daily and is never stored. The page must not wait on the database's write lock,
so scans are buffered in memory and written in one transaction at most once a second, by
whichever request finds the buffer due (the others do not wait for it).
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import BigInteger, Column, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from ledger.statement import utc_now
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


def client_hash(secret: str, host: str | None, user_agent: str, day: str) -> str:
    try:
        address = ipaddress.ip_address(host or "")
        prefix = 24 if address.version == 4 else 48
        network = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
    except ValueError:
        network = "unknown"
    salt = hashlib.sha256(f"ocop-trace/scan-salt/v1\n{secret}\n{day}".encode()).digest()
    return hashlib.sha256(salt + network.encode() + b"\n" + user_agent.encode()).hexdigest()[:32]


@dataclass
class _Pending:
    scans: int = 0
    first_seen: str = ""
    clients: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ScanStats:
    scans: int
    networks: int
    first_seen: str


class ScanCounter:
    def __init__(self, engine: Engine, secret: str, flush_every: float = 1.0) -> None:
        self.engine = engine
        self._secret = secret
        self._flush_every = flush_every
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._last_flush = time.monotonic()

    def record(self, serial: str, host: str | None, user_agent: str) -> None:
        client = client_hash(
            self._secret, host, user_agent[:200], ocop.today_in_vietnam().isoformat()
        )
        with self._lock:
            pending = self._pending.setdefault(serial, _Pending(first_seen=utc_now()))
            pending.scans += 1
            pending.clients.add(client)
        if time.monotonic() - self._last_flush >= self._flush_every:
            self.flush(wait=False)

    def flush(self, *, wait: bool = True) -> None:
        if not self._flushing.acquire(blocking=wait):
            return  # another request is writing; this one carries on
        try:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._last_flush = time.monotonic()
            if batch:
                self._write(batch)
        finally:
            self._flushing.release()

    def _write(self, batch: dict[str, _Pending]) -> None:
        with self.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            for serial, pending in batch.items():
                upsert = dialect.insert(COUNT).values(
                    serial=serial, scans=pending.scans, first_seen=pending.first_seen
                )
                conn.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[COUNT.c.serial],
                        set_={"scans": COUNT.c.scans + pending.scans},
                    )
                )
                conn.execute(
                    dialect.insert(CLIENT).on_conflict_do_nothing(),
                    [{"serial": serial, "client": c} for c in pending.clients],
                )

    def stats(self, serial: str) -> ScanStats:
        """Persisted counts plus what is still buffered in this process."""
        with self._lock:
            pending = self._pending.get(serial)
            extra = pending.scans if pending else 0
            fresh = set(pending.clients) if pending else set()
            first = pending.first_seen if pending else ""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(COUNT.c.scans, COUNT.c.first_seen).where(COUNT.c.serial == serial)
            ).first()
            networks = conn.execute(
                select(func.count()).select_from(CLIENT).where(CLIENT.c.serial == serial)
            ).scalar_one()
            if fresh:
                fresh -= set(
                    conn.execute(
                        select(CLIENT.c.client).where(
                            CLIENT.c.serial == serial, CLIENT.c.client.in_(fresh)
                        )
                    ).scalars()
                )
        scans = (row.scans if row else 0) + extra
        return ScanStats(scans, int(networks) + len(fresh), row.first_seen if row else first)
