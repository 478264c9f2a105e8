"""Cosignatures beside the ledger's checkpoints: save them, serve cosigned notes, find quorums."""

from __future__ import annotations

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from ledger.cosignature import CosignerKey
from ledger.note import split_note
from ledger.policy import Policy, QuorumResult, check_quorum
from ledger.statement import utc_now
from ledger.store import CHECKPOINT, COSIGNATURE, LedgerStore, unsynced_writing

MAX_SIGNATURE_LINES = 100  # what ledger.note accepts in one note
# How many of the newest cosigned checkpoints to try when looking for one with a quorum.
QUORUM_SEARCH = 32


class CosignatureStore:
    """Reads and writes ledger_cosignature, in the ledger's own database (the store's engine)."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self.engine = store.engine

    def create_schema(self) -> None:
        SQLModel.metadata.create_all(self.engine, tables=[COSIGNATURE])

    def save(self, size: int, key: CosignerKey, line: str, timestamp: int) -> None:
        """Keep a cosignature the caller has verified against the checkpoint of `size`;
        a second one by the same witness for the same size is ignored. Not waited onto
        the disk: one lost in a power cut is asked for again (see unsynced_writing)."""
        with unsynced_writing(self.engine) as conn:
            module = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(
                module.insert(COSIGNATURE)
                .values(
                    size=size,
                    witness_key=key.public.hex(),
                    witness_name=key.name,
                    timestamp=timestamp,
                    line=line if line.endswith("\n") else line + "\n",
                    received_at=utc_now(),
                )
                .on_conflict_do_nothing()
            )

    def lines(self, size: int, conn: Connection | None = None) -> list[str]:
        with self.store.reading(conn) as c:
            rows = c.execute(
                select(COSIGNATURE.c.line)
                .where(COSIGNATURE.c.size == size)
                .order_by(COSIGNATURE.c.received_at, COSIGNATURE.c.witness_key)
            ).all()
        return [str(r.line) for r in rows]

    def cosigned(self, note: str, size: int, conn: Connection | None = None) -> str:
        """The checkpoint note with the stored cosignatures of its size appended: what
        /checkpoint serves and bundles carry. Lines already in the note are not repeated."""
        _, present = split_note(note)
        extra = [line for line in self.lines(size, conn) if line[:-1] not in present]
        room = MAX_SIGNATURE_LINES - len(present)
        return note + "".join(extra[: max(room, 0)])

    def witness_sizes(self, conn: Connection | None = None) -> dict[str, int]:
        """{witness public key hex: largest size it cosigned}: where a client starts."""
        with self.store.reading(conn) as c:
            rows = c.execute(
                select(COSIGNATURE.c.witness_key, func.max(COSIGNATURE.c.size)).group_by(
                    COSIGNATURE.c.witness_key
                )
            ).all()
        return {str(r[0]): int(r[1]) for r in rows}

    def latest_with_quorum(
        self, policy: Policy, conn: Connection | None = None
    ) -> tuple[str, QuorumResult] | None:
        """The newest stored checkpoint whose cosignatures meet the policy's quorum, as a
        cosigned note with the check's result; None if none of the newest few does. The
        log signature is not checked here: the note comes from the ledger's own table."""
        with self.store.reading(conn) as c:
            sizes = c.execute(
                select(COSIGNATURE.c.size)
                .group_by(COSIGNATURE.c.size)
                .order_by(COSIGNATURE.c.size.desc())
                .limit(QUORUM_SEARCH)
            ).all()
            for (size,) in sizes:
                note = c.execute(
                    select(CHECKPOINT.c.note).where(CHECKPOINT.c.size == size)
                ).scalar()
                if note is None:
                    continue
                cosigned = self.cosigned(str(note), int(size), c)
                result = check_quorum(cosigned, policy)
                if result.met:
                    return cosigned, result
        return None
