"""Rendered scan pages, and serials' checks, kept until an entry about what they show arrives.

A page depends on the ledger through the subjects its facts were read from (its batch and
the batches it was made from, its product, producer and ratings; `ScanView.subjects`), on
the language and on the date (certificate status). So it is kept until the ledger gains an
entry about one of those subjects, not until the ledger gains any entry: nationally, entries
arrive every second, and a page rebuilt on each of them was never served from the cache.

    read_generation()  every `max_age` seconds (0: on every scan), off the event loop:
        the ledger's size, latest checkpoint and cosignatures; the (kind, subject) of
        each entry since the last read; drops what those touch (everything, for an entry
        with no subject, such as a key's registration, or for too many entries at once)
    keep(key, page)    refused when an entry the builder may not have seen touches it
    page(key)          on the event loop: a lookup, no database

A page names the checkpoint its proofs were checked against. When only the checkpoint or
its cosignatures move, the page is still true of that checkpoint (what it shows changes
only with an entry about its subjects, which drops it): it is renewed behind the scans,
its entries proven against the newer checkpoint, and meanwhile served as it is.

    claim(key, page, generation)
        SERVE   it names the newest checkpoint, or is young, or another page is being
                renewed in this process (one at a time: pages built together come due
                together)
        RENEW   served as it is; this scan has it renewed in the background (from half
                to three quarters of `checkpoint_age` after it was built, at random):
                its entries proven against the newer checkpoint, its rows read afresh
                only every `REREAD_SECONDS`
        BUILD   not renewed for `REREAD_SECONDS` (nobody scanned it), or `checkpoint_age`
                is 0 (as the tests set it): this scan builds it

So a page scanned at least every few minutes names a checkpoint at most about
`checkpoint_age` old, and no scan waits for its renewal: a scan that built it waited a
few hundred milliseconds under load, and those scans were the fleet benchmark's p99.

What differs per scan (the verdict, which a copy warning or the serial can change; the
serial's proof; the form's token) is filled into holes on every request.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Connection

from ocop_trace.evidence import Lru
from ocop_trace.scan_facts import ScanView, SerialCheck
from ocop_trace.site.pages import Rendered
from ocop_trace.verdict import Findings
from ocop_trace.witnessing import Witnessing

Generation = tuple[int, int, int]  # ledger size, latest checkpoint, cosignatures held
# Past this many new entries in one read, dropping everything is cheaper than reading them.
MAX_TOUCHED = 10_000
# Reads remembered to vet what a builder kept from an older snapshot (one read a second).
STEPS = 256
# Seconds one scan's claim to renew a page for a newer checkpoint holds (a build that
# failed leaves it, and the next scan after this long tries again).
REBUILD_CLAIM = 10.0
# A renewal proves the kept page's entries against the newer checkpoint and reads no rows
# (an entry about what the page shows drops it instead); rows changed under a running
# server without an entry, which no entry can announce, show after at most this long.
# A page not renewed for this long (not scanned meanwhile) is built by its next scan.
REREAD_SECONDS = 600.0


class Claim(enum.Enum):
    """What a scan does with a kept page that names an older checkpoint."""

    SERVE = "serve"
    RENEW = "renew"  # serve it, and renew it in the background
    BUILD = "build"  # build it afresh for this scan


@dataclass(frozen=True, slots=True)
class Page:
    """A rendered page, and what its verdict rests on besides the per-scan facts."""

    rendered: Rendered
    base: Findings  # the verdict's facts that are the same for every scan of it
    reason: str  # a recall's or revocation's reason, for the verdict box
    producer: str
    subjects: frozenset[str] = frozenset()  # what an entry must be about to change it
    named: tuple[int, int] = (-1, 0)  # the checkpoint it names, and its cosignatures
    # time.monotonic() after which a newer checkpoint renews it in the background, and
    # after which a scan builds it rather than be served it (ScanPages.deadlines)
    renew_at: float = 0.0
    stale_at: float = 0.0
    view: ScanView | None = None  # what it shows, for a renewal to prove again
    read_at: float = 0.0  # time.monotonic() when its rows were read


class Kept:
    """Values under keys, each with the subjects it was built from; least recently used
    first out; `drop` removes every value built from a subject an entry touched."""

    def __init__(self, maxsize: int) -> None:
        self._items: OrderedDict[Hashable, tuple[object, frozenset[str]]] = OrderedDict()
        self._by_subject: dict[str, set[Hashable]] = {}
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> object | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: Hashable, value: object, subjects: frozenset[str]) -> None:
        with self._lock:
            if self._maxsize <= 0:
                return
            self._forget(key)
            self._items[key] = (value, subjects)
            for subject in subjects:
                self._by_subject.setdefault(subject, set()).add(key)
            while len(self._items) > self._maxsize:
                self._forget(next(iter(self._items)))

    def drop(self, touched: Iterable[str]) -> None:
        with self._lock:
            for subject in touched:
                for key in self._by_subject.get(subject, set()).copy():
                    self._forget(key)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._by_subject.clear()

    def __len__(self) -> int:
        return len(self._items)

    def _forget(self, key: Hashable) -> None:
        found = self._items.pop(key, None)
        if found is None:
            return
        for subject in found[1]:
            keys = self._by_subject.get(subject)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_subject[subject]


def touches(kind: str, subject: str | None) -> frozenset[str] | None:
    """What an entry changes for the cache: its subject and its kind (a GTIN or lot page
    depends on every batch registration); None: anything (a key's entry has no subject)."""
    return None if subject is None else frozenset((subject, f"kind:{kind}"))


class ScanPages:
    def __init__(
        self,
        witnessing: Witnessing,
        max_age: float,
        maxsize: int = 2048,
        checkpoint_age: float = 60.0,
    ) -> None:
        self.witnessing = witnessing
        self.store = witnessing.store
        self.max_age = max_age
        self.checkpoint_age = checkpoint_age
        self._pages = Kept(maxsize)
        # The one page being rebuilt for a newer checkpoint, and until when the claim holds.
        self._rebuilding: tuple[Hashable, float] | None = None
        # Renewals run here, one at a time, off the scans' threads: a scan that renewed a
        # page itself waited for the build, and those builds were the fleet benchmark's
        # p99 (docs/performance.md). Started at the first renewal.
        self._renewer: ThreadPoolExecutor | None = None
        self._serials = Kept(65_536)  # serial -> its check
        # A serial is issued once for one batch and never moves.
        self._batches = Lru(65_536)
        self._generation: Generation | None = None
        self._read_at = 0.0
        self._reading = threading.Lock()  # one reader at a time: sizes only move forward
        # Held while a read drops what it touched, and while a builder's result is vetted
        # and kept, so nothing stale is kept between the two.
        self._state = threading.Lock()
        # (from size, to size, subjects touched or None for everything) of recent reads.
        self._steps: deque[tuple[int, int, frozenset[str] | None]] = deque(maxlen=STEPS)

    def generation(self) -> Generation | None:
        """The generation last read, if still young enough to trust; None: read it again."""
        if self._generation is None or time.monotonic() - self._read_at > self.max_age:
            return None
        return self._generation

    def read_generation(self, conn: Connection | None = None, *, again: bool = False) -> Generation:
        """The ledger's state now, dropping what the entries since the last read touch;
        `again`: read even when the last read is young (the app's task reads it ahead)."""
        with self._reading:
            fresh = self.generation()
            if fresh is not None and self.max_age > 0 and not again:
                return fresh  # read by another thread while this one waited
            read_at = time.monotonic()
            before = self._generation[0] if self._generation is not None else None
            touched: frozenset[str] | None = frozenset()
            with self.store.reading(conn) as c:
                size, checkpoint = self.store.state(c)
                cosignatures = self.witnessing.received(c)
                if before is not None and size > before:
                    touched = self._touched(c, before, size)
            with self._state:
                if before is not None and size > before:
                    if touched is None:
                        self._pages.clear()
                        self._serials.clear()
                    else:
                        self._pages.drop(touched)
                        self._serials.drop(touched)
                    self._steps.append((before, size, touched))
                self._generation = (size, checkpoint, cosignatures)
            self._read_at = read_at
            return self._generation

    def _touched(self, conn: Connection, before: int, size: int) -> frozenset[str] | None:
        if size - before > MAX_TOUCHED:
            return None
        touched: set[str] = set()
        for kind, subject in self.store.touched(before, size, conn):
            found = touches(kind, subject)
            if found is None:
                return None
            touched |= found
        return frozenset(touched)

    def deadlines(self) -> tuple[float, float]:
        """When a page built now is renewed in the background if a newer checkpoint has
        come (spread over the second and third quarters of `checkpoint_age`, so pages
        built together are not renewed together), and after which a scan builds it rather
        than be served it: one nobody scanned for `REREAD_SECONDS` (or `checkpoint_age`,
        if longer), or at once with `checkpoint_age` 0."""
        now = time.monotonic()
        age = self.checkpoint_age
        last = now + max(age, REREAD_SECONDS) if age > 0 else now
        return now + age * random.uniform(0.5, 0.75), last  # noqa: S311

    def claim(self, key: Hashable, page: Page, generation: Generation) -> Claim:
        """What this scan does with a kept page (the module's docstring). Only one page is
        claimed at a time in a process: the other due pages are served as they are, still
        true of the checkpoint they name, and nobody waits."""
        if page.named == generation[1:]:
            return Claim.SERVE
        now = time.monotonic()
        if now < page.renew_at:
            return Claim.SERVE
        with self._state:
            if self._rebuilding is not None and now < self._rebuilding[1]:
                return Claim.SERVE
            self._rebuilding = (key, now + REBUILD_CLAIM)
        return Claim.BUILD if now >= page.stale_at else Claim.RENEW

    def rereads(self, page: Page) -> bool:
        """Whether a renewal of the page reads its rows afresh (at least every
        `REREAD_SECONDS`), rather than only proving its entries against the newer checkpoint."""
        return page.view is None or time.monotonic() - page.read_at >= REREAD_SECONDS

    def renew(self, key: Hashable, build: Callable[[], None]) -> None:
        """Run a claimed renewal in the background: `build` keeps the page it builds (which
        ends the claim); should it fail, the claim ends and a later scan tries again."""

        def run() -> None:
            try:
                build()
            finally:
                self.release(key)

        with self._state:
            if self._renewer is None:
                self._renewer = ThreadPoolExecutor(1, thread_name_prefix="page-renewal")
            self._renewer.submit(run)

    def release(self, key: Hashable) -> None:
        """End a claim on `key`, if it holds one."""
        with self._state:
            if self._rebuilding is not None and self._rebuilding[0] == key:
                self._rebuilding = None

    def close(self, wait: bool = False) -> None:
        """Stop renewing (with the app); `wait`: finish the renewal under way first."""
        with self._state:
            renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.shutdown(wait=wait, cancel_futures=not wait)

    def page(self, key: Hashable) -> Page | None:
        found = self._pages.peek(key)
        return found if isinstance(found, Page) else None

    def keep(self, key: Hashable, page: Page, built: int) -> None:
        """Keep a page built from a snapshot of at least `built` entries, unless an entry
        read since then (which its builder may not have seen) touches it."""
        self.release(key)
        with self._state:
            if not self._missed(page.subjects, built):
                self._pages.put(key, page, page.subjects)

    def serial_check(self, serial: str) -> SerialCheck | None:
        found = self._serials.peek(serial)
        return found if isinstance(found, SerialCheck) else None

    def keep_serial_check(
        self, serial: str, check: SerialCheck, subjects: frozenset[str], built: int
    ) -> None:
        with self._state:
            if not self._missed(subjects, built):
                self._serials.put(serial, check, subjects)

    def _missed(self, subjects: frozenset[str], built: int) -> bool:
        """Whether an entry read since a snapshot of `built` entries touches these (called
        with `_state` held)."""
        known = self._generation[0] if self._generation is not None else built
        if built >= known:
            return False
        if not self._steps or self._steps[0][0] > built:
            return True  # older than anything remembered: not kept
        return any(
            touched is None or not subjects.isdisjoint(touched)
            for _, stop, touched in self._steps
            if stop > built
        )

    def batch_of(self, serial: str) -> str | None:
        batch_id: str | None = self._batches.peek(serial)
        return batch_id

    def remember(self, serial: str, batch_id: str) -> None:
        self._batches.put(serial, batch_id)
