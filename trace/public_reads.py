"""Where public reads go: a read replica when TRACE_READ_DATABASE_URL is set, else the primary.

Scan pages, their proofs, the tiles and /checkpoint read through `PublicReads`; every write
(appends, accounts, scan counts, cosignatures) stays on the primary engine. Each connection
reads one snapshot (`one_snapshot`), and a page takes the checkpoint it names and the entries
that checkpoint proves from that one connection: a replica that lags shows an older ledger,
never a checkpoint newer than the entries it holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection

from ledger.store import LedgerStore, one_snapshot, open_engine
from ocop_trace.settings import Settings
from ocop_trace.witnessing import Witnessing


@dataclass(frozen=True)
class PublicReads:
    store: LedgerStore  # on the read engine: never signs, never appends
    witnessing: Witnessing  # the pages' checkpoint and its cosignatures, read there too
    replica: bool  # reads go to TRACE_READ_DATABASE_URL

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """One connection, one snapshot, for everything one page or proof shows."""
        with self.store.reading() as conn:
            yield conn


def public_reads(settings: Settings, primary: Witnessing) -> PublicReads:
    """The read side of the app: the replica's engine if there is one, else the primary's
    pool, each read in one snapshot."""
    store = primary.store
    url = settings.read_database_url
    engine = open_engine(url, settings.database_connections) if url else store.engine
    reader = LedgerStore(one_snapshot(engine), origin=store.origin, root_key_id=store.root_key_id)
    return PublicReads(reader, Witnessing(reader, primary.policy), url is not None)
