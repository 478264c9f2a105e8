"""What a page rests on: its entries, their proofs, and what each entry says, read once.

Entries never change, so what is read from one is cached by index; a proof is cached per
(checkpoint, entry), so each new checkpoint gets proofs checked afresh; a label set's tree
is cached by its entry index. Every read goes through the caller's connection.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from ledger import merkle
from ledger.authority import open_checkpoint_note
from ledger.errors import LedgerError
from ledger.note import Checkpoint
from ledger.statement import parse_entry
from ledger.store import LedgerStore
from ocop_trace.errors import ServiceError
from ocop_trace.kinds import KINDS
from ocop_trace.models import LABEL_SERIAL
from ocop_trace.serials import SerialSet
from ocop_trace.witnessing import Witnessing

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
    key_id: str
    issued_at: str
    body: dict[str, Any]
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class Proof:
    """An entry's inclusion in the latest signed checkpoint, checked before it is shown."""

    verified: bool
    tree_size: int = 0
    short_root: str = ""
    length: int = 0


@dataclass(frozen=True, slots=True)
class LabelSet:
    """A labels.issued entry's serials as stored, and whether they are the ones it signed."""

    tree: SerialSet
    matches: bool  # the stored serials' root is the entry's commitment


class Evidence:
    """Per-process caches of entries, checked proofs and label-set trees."""

    def __init__(self, store: LedgerStore, witnessing: Witnessing, maxsize: int = 8192) -> None:
        self.store = store
        self.witnessing = witnessing
        self._entries = Lru(maxsize)
        self._proofs = Lru(maxsize)
        self._checkpoints = Lru(4)
        self._meanings = Lru(maxsize)
        self._sets = Lru(32)  # a 10,000-label set's tree is about 2 MB

    def entry(self, conn: Connection, index: int) -> EntryFacts:
        return self._entries.get(index, lambda: self._read(conn, index))

    def _read(self, conn: Connection, index: int) -> EntryFacts:
        data = self.store.entry(index, conn)
        if data is None:
            raise LedgerError("the page's entry is missing from the ledger", found=index)
        entry = parse_entry(data)
        st = entry.statement
        return EntryFacts(
            index,
            entry.hash.hex()[:16],
            st.kind,
            st.key_id,
            st.issued_at,
            st.body,
            merkle.leaf_hash(data),
        )

    def about(self, conn: Connection, subject: str, kinds: Sequence[str]) -> list[int]:
        """Indices of the entries about `subject` of these kinds, as the ledger indexes them."""
        return [index for index, _ in self.store.entries_about(subject, kinds, conn)]

    def checkpoint(self, conn: Connection, note: str) -> Checkpoint | None:
        """The latest checkpoint, opened with a ledger key the ledger itself registered."""
        return self._checkpoints.get(note, lambda: self._open(conn, note))

    def _open(self, conn: Connection, note: str) -> Checkpoint | None:
        # The verifier's rule: a ledger key valid at the checkpoint's size (one owner).
        try:
            return open_checkpoint_note(note, self.store.grants(conn).values())
        except LedgerError:
            return None

    def proof(self, conn: Connection, note: str, index: int) -> Proof:
        """The entry's inclusion proof in the checkpoint, checked here before it is shown."""
        return self.proofs(conn, note, [index])[index]

    def proofs(self, conn: Connection, note: str, indices: Sequence[int]) -> dict[int, Proof]:
        """`proof` of each entry; those not cached are read together, in one query."""
        found: dict[int, Proof] = {}
        for index in indices:
            cached = self._proofs.peek((note, index))
            if cached is not None:
                found[index] = cached
        missing = [i for i in dict.fromkeys(indices) if i not in found]
        if missing:
            for index, proof in self._prove(conn, note, missing).items():
                self._proofs.put((note, index), proof)
                found[index] = proof
        return found

    def _prove(self, conn: Connection, note: str, indices: list[int]) -> dict[int, Proof]:
        checkpoint = self.checkpoint(conn, note) if note else None
        size = checkpoint.size if checkpoint is not None else 0
        proven = {i: Proof(False) for i in indices if i >= size}
        inside = [i for i in indices if i < size]
        if checkpoint is None or not inside:
            return proven
        paths = self.store.inclusion_proofs(inside, size, conn)
        for index in inside:
            path = paths[index]
            try:
                merkle.verify_inclusion(
                    self.entry(conn, index).leaf_hash, index, size, path, checkpoint.root_hash
                )
            except LedgerError:
                # The entry shown is not the one the checkpoint holds (the database was
                # rolled back or rewritten under a running server): the page must say it
                # is unproven.
                proven[index] = Proof(False)
                continue
            proven[index] = Proof(True, size, checkpoint.root_hash.hex()[:16], len(path))
        return proven

    def signed(self, facts: EntryFacts, part: str) -> dict[str, Any] | None:
        """What the entry's statement says, read as the projection reads it; None if the
        entry is not the kind of statement that part comes from, or does not read as one."""
        kind = KINDS.for_part(part)
        shown = kind.shown
        if facts.kind != kind.name or shown is None:
            return None

        def read() -> dict[str, Any] | None:
            try:
                return shown.read(kind.validate(facts.body))
            except ServiceError:
                return None

        return self._meanings.get(facts.index, read)

    def label_set(self, conn: Connection, set_index: int, commitment: str) -> LabelSet:
        """The stored serials of the label set recorded at `set_index`, as a tree."""

        def build() -> LabelSet:
            serials = conn.execute(
                select(LABEL_SERIAL.c.serial).where(LABEL_SERIAL.c.label_set_id == set_index)
            ).scalars()
            tree = SerialSet(serials)
            return LabelSet(tree, tree.root.hex() == commitment)

        return self._sets.get((set_index, commitment), build)
