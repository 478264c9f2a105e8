"""Rendered scan pages kept per product or batch and language, for one state of the ledger.

A page depends only on the ledger (through its projection), the language and the date
(certificate status), so it is cached under the ledger's generation: its size, the size
of its latest checkpoint and the number of cosignatures held. A new entry, checkpoint or
cosignature starts a new generation. The generation
is read at most every `max_age` seconds (0: on every scan), so a page lags the ledger by
at most that long. What differs per scan (the verdict, which a copy warning or the serial
can change; the serial's proof; the form's token) is filled into holes on every request.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass

from sqlalchemy import Connection

from ocop_trace.evidence import Lru
from ocop_trace.scan_facts import SerialCheck
from ocop_trace.site.pages import Rendered
from ocop_trace.verdict import Findings
from ocop_trace.witnessing import Witnessing

Generation = tuple[int, int, int]  # ledger size, latest checkpoint, cosignatures held


@dataclass(frozen=True, slots=True)
class Page:
    """A rendered page, and what its verdict rests on besides the per-scan facts."""

    rendered: Rendered
    base: Findings  # the verdict's facts that are the same for every scan of it
    reason: str  # a recall's or revocation's reason, for the verdict box
    producer: str


class ScanPages:
    def __init__(self, witnessing: Witnessing, max_age: float, maxsize: int = 2048) -> None:
        self.witnessing = witnessing
        self.store = witnessing.store
        self.max_age = max_age
        self._pages = Lru(maxsize)
        # A serial is issued once for one batch and never moves.
        self._batches = Lru(65_536)
        self._serials = Lru(65_536)  # (generation, serial) -> its check
        self._generation: Generation | None = None
        self._read_at = 0.0

    def generation(self) -> Generation | None:
        """The generation last read, if still young enough to trust; None: read it again."""
        if self._generation is None or time.monotonic() - self._read_at > self.max_age:
            return None
        return self._generation

    def read_generation(self, conn: Connection | None = None) -> Generation:
        read_at = time.monotonic()
        with self.store.reading(conn) as c:
            size, checkpoint = self.store.state(c)
            self._generation = (size, checkpoint, self.witnessing.received(c))
        self._read_at = read_at
        return self._generation

    def page(self, key: Hashable) -> Page | None:
        found: Page | None = self._pages.peek(key)
        return found

    def keep(self, key: Hashable, page: Page) -> None:
        self._pages.put(key, page)

    def batch_of(self, serial: str) -> str | None:
        batch_id: str | None = self._batches.peek(serial)
        return batch_id

    def remember(self, serial: str, batch_id: str) -> None:
        self._batches.put(serial, batch_id)

    def serial_check(self, generation: Generation, serial: str) -> SerialCheck | None:
        found: SerialCheck | None = self._serials.peek((generation, serial))
        return found

    def keep_serial_check(self, generation: Generation, serial: str, check: SerialCheck) -> None:
        self._serials.put((generation, serial), check)
