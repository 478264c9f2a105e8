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
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Connection

from ledger import merkle
from ledger.errors import LedgerError
from ledger.note import Checkpoint, NoteVerifier, note_key_id, open_checkpoint
from ledger.statement import parse_entry
from ledger.store import LedgerStore
from ocop_trace import ocop
from ocop_trace.models import (
    BatchCreate,
    EventCreate,
    ProducerCreate,
    ProductCreate,
    RatingCreate,
    RecallCreate,
)

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


def _batch(body: dict[str, Any]) -> dict[str, Any]:
    signed = BatchCreate.model_validate(body).model_dump()
    signed["inputs"] = sorted(signed["inputs"])  # the page lists them sorted
    return signed


def _recall(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "batch_id": body.get("batch_id"),
        "reason": RecallCreate.model_validate({"reason": body.get("reason")}).reason,
    }


def _event(body: dict[str, Any]) -> dict[str, Any]:
    fields = EventCreate.model_validate({k: v for k, v in body.items() if k != "batch_id"})
    return {"batch_id": body.get("batch_id"), **fields.model_dump()}


def _product(body: dict[str, Any]) -> dict[str, Any]:
    return ProductCreate.model_validate(body).model_dump()


def _producer(body: dict[str, Any]) -> dict[str, Any]:
    signed = ProducerCreate.model_validate(body).model_dump()
    signed["address_current"]["district"] = ""  # the reformed addresses have no district
    return signed


def _rating(body: dict[str, Any]) -> dict[str, Any]:
    data = RatingCreate.model_validate(body)
    band = ocop.stars_for_score(data.score_hundredths, data.level)
    expires = ocop.certificate_expiry(date.fromisoformat(data.issued_on))
    return {**data.model_dump(), "stars": band.stars, "expires_on": expires.isoformat()}


# Per part of the page: the statement kind that creates it, what that statement means once
# read the way the projection reads it, and the fields the page shows from it.
_SHOWN: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]], tuple[str, ...]]] = {
    "batch": (
        "batch.registered",
        _batch,
        (
            "id",
            "product_id",
            "lot",
            "produced_on",
            "expires_on",
            "quantity",
            "unit",
            "origin",
            "inputs",
        ),
    ),
    "recall": ("batch.recalled", _recall, ("batch_id", "reason")),
    "event": ("batch.event", _event, ("batch_id", "biz_step", "at", "place")),
    "product": ("product.registered", _product, ("id", "name_vi", "name_en", "gtin", "image_url")),
    "producer": (
        "producer.registered",
        _producer,
        (
            "id",
            "name",
            "type",
            "registration_no",
            "contact",
            "address_certified",
            "address_current",
        ),
    ),
    "rating": (
        "rating.recorded",
        _rating,
        (
            "product_id",
            "score_hundredths",
            "stars",
            "level",
            "issuing_body",
            "decision_no",
            "certificate_no",
            "issued_on",
            "expires_on",
        ),
    ),
}


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

    def _signed(
        self, facts: EntryFacts, kind: str, meaning: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """What the entry's statement says, read as the projection reads it; None if the
        entry is not that kind of statement or does not read as one."""
        if facts.kind != kind:
            return None

        def read() -> dict[str, Any] | None:
            try:
                return meaning(facts.body)
            except ValueError:  # pydantic's ValidationError is one
                return None

        return self._meanings.get(facts.index, read)

    def for_page(
        self, conn: Connection, note: str, shown: list[tuple[str, int, dict[str, Any]]]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The entries behind each shown part ((part, entry index, fields shown)), with
        their proofs, and the names of shown fields their statements do not say."""
        items, mismatch = [], []
        for part, index, fields in shown:
            facts = self.entry(conn, index)
            kind, meaning, names = _SHOWN[part]
            signed = self._signed(facts, kind, meaning)
            if signed is None:
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
                    "index": index,
                    "short_hash": facts.short_hash,
                    **self.proof(conn, note, index),
                }
            )
        return items, mismatch
