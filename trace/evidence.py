"""What a scan page rests on: its entries, their proofs, and the shown fields compared with them.

Entries never change, so what is read from one is cached by index; a proof is cached per
(checkpoint, entry), so each new checkpoint gets proofs checked afresh. Every read goes
through the request's own connection.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection

from ledger import merkle
from ledger.errors import LedgerError
from ledger.note import Checkpoint, NoteVerifier, note_key_id, open_checkpoint
from ledger.statement import parse_entry
from ledger.store import LedgerStore
from ocop_trace.errors import ServiceError
from ocop_trace.kinds import KINDS
from ocop_trace.reads import field_entries

V = TypeVar("V")


class Lru:
    """A small thread-safe LRU map; values are computed outside the lock."""

    def __init__(self, maxsize: int) -> None:
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()

    def peek(self, key: Any) -> Any:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            if len(self._items) > self._maxsize:
                self._items.popitem(last=False)

    def get(self, key: Any, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                value: V = self._items[key]
                return value
        value = compute()
        self.put(key, value)
        return value


@dataclass(frozen=True, slots=True)
class EntryFacts:
    index: int
    short_hash: str
    kind: str
    body: dict[str, Any]
    leaf_hash: bytes


class Evidence:
    """Per-process caches of entries and checked proofs for the scan page."""

    def __init__(self, store: LedgerStore, maxsize: int = 8192) -> None:
        self.store = store
        self._entries = Lru(maxsize)
        self._proofs = Lru(maxsize)
        self._checkpoints = Lru(4)
        self._meanings = Lru(maxsize)

    def entry(self, conn: Connection, index: int) -> EntryFacts:
        return self._entries.get(index, lambda: self._read(conn, index))

    def _read(self, conn: Connection, index: int) -> EntryFacts:
        data = self.store.entry(index, conn)
        if data is None:
            raise LedgerError("the page's entry is missing from the ledger", found=index)
        entry = parse_entry(data)
        statement = entry.statement
        return EntryFacts(
            index, entry.hash.hex()[:16], statement.kind, statement.body, merkle.leaf_hash(data)
        )

    def checkpoint(self, conn: Connection, note: str) -> Checkpoint | None:
        """The latest checkpoint, opened with a ledger key the ledger itself registered."""
        return self._checkpoints.get(note, lambda: self._open(conn, note))

    def _open(self, conn: Connection, note: str) -> Checkpoint | None:
        for grant in self.store.grants(conn).values():
            if grant.role != "ledger" or grant.revoked_index is not None:
                continue
            public = bytes.fromhex(grant.key_id)
            try:
                return open_checkpoint(
                    note, NoteVerifier(grant.name, note_key_id(grant.name, public), public)
                )
            except LedgerError:
                continue
        return None

    def proof(self, conn: Connection, note: str, index: int) -> dict[str, Any]:
        """The entry's inclusion proof in the checkpoint, checked here before it is shown."""
        return self._proofs.get((note, index), lambda: self._prove(conn, note, index))

    def _prove(self, conn: Connection, note: str, index: int) -> dict[str, Any]:
        facts = self.entry(conn, index)
        checkpoint = self.checkpoint(conn, note) if note else None
        if checkpoint is None or index >= checkpoint.size:
            return {"verified": False}
        size, path = self.store.inclusion_proof(index, checkpoint.size, conn)
        merkle.verify_inclusion(facts.leaf_hash, index, size, path, checkpoint.root_hash)
        return {
            "verified": True,
            "tree_size": size,
            "short_root": checkpoint.root_hash.hex()[:16],
            "proof_length": len(path),
        }

    def _signed(self, facts: EntryFacts, part: str) -> dict[str, Any] | None:
        """What the entry's statement says, read as the projection reads it; None if the
        entry is not the kind of statement that part comes from, or does not read as one."""
        kind = KINDS.for_part(part)
        if facts.kind != kind.name or kind.shown is None:
            return None
        shown = kind.shown

        def read() -> dict[str, Any] | None:
            try:
                return shown.read(kind.validate(facts.body))
            except ServiceError:
                return None

        return self._meanings.get(facts.index, read)

    def for_page(
        self, conn: Connection, note: str, shown: list[tuple[str, int, dict[str, Any]]]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The entries behind each shown part ((part, entry index, fields shown)), with
        their proofs, and the names of shown fields their statements do not say. A part
        that updates can change (a producer, a product) is compared field by field with
        the entry that last set each field: its registration or a later update."""
        items: list[dict[str, Any]] = []
        mismatch: list[str] = []
        for part, index, fields in shown:
            for entry_index, kind_part, names in self._setters(conn, part, index, fields):
                facts = self.entry(conn, entry_index)
                signed = self._signed(facts, kind_part)
                if signed is None:
                    if f"{part}.kind" not in mismatch:
                        mismatch.append(f"{part}.kind")
                else:
                    mismatch.extend(
                        f"{part}.{name}"
                        for name in names
                        if fields.get(name) != signed.get(name) and f"{part}.{name}" not in mismatch
                    )
                items.append(
                    {
                        "part": part,
                        "index": entry_index,
                        "short_hash": facts.short_hash,
                        **({"update": True} if kind_part != part else {}),
                        **self.proof(conn, note, entry_index),
                    }
                )
        return items, mismatch

    @staticmethod
    def _setters(
        conn: Connection, part: str, index: int, fields: dict[str, Any]
    ) -> list[tuple[int, str, list[str]]]:
        """(entry index, the part its kind shows, the shown fields it set), registration
        first, then each update that set a shown field, oldest first."""
        names = list(KINDS.for_part(part).shown.fields)  # type: ignore[union-attr]
        updater = KINDS.updater_of(part)
        if updater is None or updater.shown is None or "id" not in fields:
            return [(index, part, names)]
        setters = field_entries(conn, part, str(fields["id"]), index, names)
        groups: dict[int, list[str]] = {}
        for name, entry_index in setters.items():
            groups.setdefault(entry_index, []).append(name)
        groups.setdefault(index, [])
        return [
            (entry_index, part if entry_index == index else updater.shown.part, group)
            for entry_index, group in sorted(groups.items())
        ]
