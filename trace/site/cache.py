"""Rendered scan pages kept per batch and language for one state of the ledger.

A page depends only on the ledger (through its projection), the language and the date
(certificate status), so it is cached under the ledger's generation: its size and the size
of its latest checkpoint. A new entry or checkpoint starts a new generation. The generation
is read at most every `max_age` seconds (0: on every scan), so a page lags the ledger by
at most that long; the per-scan parts (copy warning, form token) are never cached.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from datetime import date

from sqlalchemy import Connection

from ledger.store import LedgerStore
from ocop_trace.evidence import Lru
from ocop_trace.site.pages import Rendered

Generation = tuple[int, int]


class ScanPages:
    def __init__(self, store: LedgerStore, max_age: float, maxsize: int = 2048) -> None:
        self.store = store
        self.max_age = max_age
        self._pages: Lru = Lru(maxsize)
        # A serial is issued once for one batch and never moves.
        self._batches: Lru = Lru(65_536)
        self._generation: Generation | None = None
        self._read_at = 0.0

    def generation(self) -> Generation | None:
        """The generation last read, if still young enough to trust; None: read it again."""
        if self._generation is None or time.monotonic() - self._read_at > self.max_age:
            return None
        return self._generation

    def read_generation(self, conn: Connection | None = None) -> Generation:
        read_at = time.monotonic()
        self._generation = self.store.state(conn)
        self._read_at = read_at
        return self._generation

    @staticmethod
    def key(
        generation: Generation,
        batch_id: str,
        serial_page: bool,
        gtin: str | None,
        lot: str | None,
        lang: str,
        today: date,
    ) -> Hashable:
        return (generation, batch_id, serial_page, gtin, lot, lang, today)

    def page(self, key: Hashable) -> Rendered | None:
        body: Rendered | None = self._pages.peek(key)
        return body

    def keep(self, key: Hashable, body: Rendered) -> None:
        self._pages.put(key, body)

    def batch_of(self, serial: str) -> str | None:
        batch_id: str | None = self._batches.peek(serial)
        return batch_id

    def remember(self, serial: str, batch_id: str) -> None:
        self._batches.put(serial, batch_id)
