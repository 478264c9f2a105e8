"""Which checkpoint the pages rest on, and who confirmed it: the witness policy in use.

With a policy (TRACE_WITNESS_POLICY, C2SP tlog-policy), pages prove their entries against
the newest checkpoint whose cosignatures meet the quorum, and name the witnesses; until
one does, against the log's own latest checkpoint, saying it is not yet confirmed by
independent witnesses (which is not a failure). Without a policy, the latest checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from ledger.cosign_store import CosignatureStore
from ledger.policy import Policy, parse_policy
from ledger.store import COSIGNATURE, LedgerStore
from ocop_trace.settings import Settings


@dataclass(frozen=True, slots=True)
class PagesCheckpoint:
    note: str  # "" when the ledger has none yet
    confirmed_by: tuple[str, ...]  # the witnesses (policy names) whose quorum it meets
    policy: bool  # a witness policy is configured


def load_policy(settings: Settings) -> Policy | None:
    if settings.witness_policy is None:
        return None
    return parse_policy(settings.witness_policy.read_bytes())


class Witnessing:
    def __init__(self, store: LedgerStore, policy: Policy | None) -> None:
        self.store = store
        self.policy = policy
        self.cosignatures = CosignatureStore(store)

    def checkpoint(self, conn: Connection) -> PagesCheckpoint:
        if self.policy is not None:
            found = self.cosignatures.latest_with_quorum(self.policy, conn)
            if found is not None:
                note, result = found
                return PagesCheckpoint(note, result.cosigned, True)
        note = self.store.latest_checkpoint(conn) or ""
        return PagesCheckpoint(note, (), self.policy is not None)

    def served(self, conn: Connection | None = None) -> str | None:
        """The latest checkpoint with every cosignature the ledger holds for it: what
        /checkpoint and /api/v1/checkpoint serve (note readers skip lines they do not know)."""
        with self.store.reading(conn) as c:
            note = self.store.latest_checkpoint(c)
            if note is None:
                return None
            size = int(note.split("\n")[1])
            return self.cosignatures.cosigned(note, size, c)

    def received(self, conn: Connection) -> int:
        """How many cosignatures the ledger holds: a new one changes what pages say."""
        return int(conn.execute(select(func.count()).select_from(COSIGNATURE)).scalar_one())
