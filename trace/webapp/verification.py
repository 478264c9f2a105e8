"""A whole-ledger verification started from the audit page, run on a thread of its own.

One at a time per server process: the page starts it, then shows its progress (refreshing
itself, no script) and its report. The check is the command line's `verify --db`: every
entry, signature and checkpoint, then the projection rebuilt and compared.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from ledger.bundle_export import store_records
from ledger.store import LedgerStore
from ledger.verifier import Report, verify
from ocop_trace.rebuild import check_projection


@dataclass
class Run:
    started_by: str
    size: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    report: Report | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return self.report is None and not self.error

    @property
    def percent(self) -> int:
        return 100 if not self.running else int(100 * self.done / max(self.size, 1))


class Verifications:
    """The latest verification of this process's ledger, and a way to start another."""

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self.latest: Run | None = None

    def start(self, username: str) -> Run:
        """Start one unless one is running (then that one is the answer)."""
        with self._lock:
            if self.latest is not None and self.latest.running:
                return self.latest
            run = Run(username, self._store.size())
            self.latest = run
        threading.Thread(target=self._run, args=(run,), daemon=True, name="verify").start()
        return run

    def _run(self, run: Run) -> None:
        def progress(done: int) -> None:
            run.done = done

        store = self._store
        try:
            run.report = verify(
                store_records(store, run.size),
                store.root_key_id,
                workers=1,
                on_progress=progress,
                expected_size=run.size,
                origin=store.origin,
                extra_checks=lambda: check_projection(store),
            )
        except Exception as exc:  # a verdict could not be reached: said on the page
            run.error = f"{type(exc).__name__}: {exc}"
