"""The witness's state in its own SQLite file: one row per log, changed only by compare-and-set."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ledger.cosignature import Cosigner
from ledger.statement import utc_now
from ledger.store import open_engine
from ledger.witness import AddCheckpoint, Held, WitnessRefusal, witness

METADATA = MetaData()
# Sizes are decimal text: a checkpoint may claim any size below 2^64, beyond SQLite's
# signed 64-bit integers, and the witness only ever compares them for equality here.
HELD = Table(
    "witness_log",
    METADATA,
    Column("origin", Text, primary_key=True),
    Column("size", Text, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("timestamp", Integer, nullable=False),
    Column("log_note", Text, nullable=False),
    Column("cosignature", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)
# Validly signed checkpoints the witness refused as inconsistent: tlog-witness lets a
# witness keep them, as they may prove the log misbehaved.
EVIDENCE = Table(
    "witness_evidence",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("origin", Text, nullable=False, index=True),
    Column("received_at", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
)
MAX_EVIDENCE_PER_LOG = 1000


class WitnessStore:
    """Reads and atomically advances the held checkpoint of each log."""

    def __init__(self, path: Path) -> None:
        self.engine = open_engine(f"sqlite:///{path}")

    def create(self) -> None:
        METADATA.create_all(self.engine)

    def held(self, origin: str) -> Held | None:
        with self.engine.connect() as conn:
            return _held(conn, origin)

    def all_held(self) -> dict[str, Held]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(HELD)).all()
        return {str(r.origin): _row_to_held(r) for r in rows}

    def add_checkpoint(self, request: AddCheckpoint, log_signed: str, cosigner: Cosigner) -> Held:
        """Check, cosign and save in one transaction that holds SQLite's write lock from
        its first read (BEGIN IMMEDIATE): a concurrent request, in this process or another,
        waits and then sees the new state, so two forks can never both be cosigned. The
        UPDATE compares the old size and root as well, in case the lock is ever missing."""
        origin = request.checkpoint.origin
        with self.engine.connect().execution_options(ledger_write=True) as conn, conn.begin():
            held = _held(conn, origin)
            new = witness(request, log_signed, held, cosigner, int(time.time()))
            values = {
                "size": str(new.size),
                "root": new.root,
                "timestamp": new.timestamp,
                "log_note": new.log_note,
                "cosignature": new.cosignature,
                "updated_at": utc_now(),
            }
            if held is None:
                try:
                    conn.execute(insert(HELD).values(origin=origin, **values))
                except IntegrityError:
                    raise _lost_race(0) from None
            else:
                changed = conn.execute(
                    update(HELD)
                    .where(
                        HELD.c.origin == origin,
                        HELD.c.size == str(held.size),
                        HELD.c.root == held.root,
                    )
                    .values(**values)
                ).rowcount
                if changed != 1:
                    raise _lost_race(held.size)
        return new

    def save_evidence(self, origin: str, refusal: WitnessRefusal, body: bytes) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(EVIDENCE).values(
                    origin=origin, received_at=utc_now(), message=str(refusal), body=body
                )
            )
            count = conn.execute(
                select(func.count()).select_from(EVIDENCE).where(EVIDENCE.c.origin == origin)
            ).scalar_one()
            if count > MAX_EVIDENCE_PER_LOG:  # keep the latest; the first ones say it too
                oldest = (
                    select(EVIDENCE.c.id)
                    .where(EVIDENCE.c.origin == origin)
                    .order_by(EVIDENCE.c.id)
                    .limit(count - MAX_EVIDENCE_PER_LOG)
                )
                conn.execute(delete(EVIDENCE).where(EVIDENCE.c.id.in_(oldest.scalar_subquery())))

    def evidence(self, origin: str) -> list[tuple[str, bytes]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(EVIDENCE.c.message, EVIDENCE.c.body)
                .where(EVIDENCE.c.origin == origin)
                .order_by(EVIDENCE.c.id)
            ).all()
        return [(str(r.message), bytes(r.body)) for r in rows]


def _lost_race(size: int) -> WitnessRefusal:
    return WitnessRefusal(
        409,
        "the held checkpoint changed during this request",
        expected=size,
        found="another update",
        latest_size=size,
    )


def _held(conn: Connection, origin: str) -> Held | None:
    row = conn.execute(select(HELD).where(HELD.c.origin == origin)).one_or_none()
    return None if row is None else _row_to_held(row)


def _row_to_held(row: Row[Any]) -> Held:
    r = row._mapping
    return Held(
        int(r["size"]), bytes(r["root"]), int(r["timestamp"]), r["log_note"], r["cosignature"]
    )
