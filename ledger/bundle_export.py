"""A ledger in a database, exported as a bundle or streamed to the verifier as one.

Kept apart from ledger.bundle, which reads and writes bundle files and needs no database
library: verifying a bundle imports nothing of SQLAlchemy. Checkpoints go out with every
cosignature the ledger holds for them (tlog-cosignature lines; readers skip lines of keys
they do not know).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ledger.bundle import BundleHeader
from ledger.cosign_store import CosignatureStore
from ledger.store import LedgerStore, StoreSlice, reopenable_url
from ledger.verifier import CheckpointRecord, EntryRecord, Record

# Entries a verifier worker reads at a time (a slice also ends at each checkpoint's size).
SLICE_ENTRIES = 2048


def store_records(store: LedgerStore, size: int | None = None) -> Iterator[Record]:
    """The store's entries and checkpoints in bundle order, up to `size` entries (default:
    the head's size when the first record is asked for).

    Entries come as slices of index ranges that the verifier's workers read from the
    database themselves; a slice ends where a checkpoint's size falls, and the checkpoint
    follows it. SQLite in memory cannot be opened by another process, so its entries are
    read here and forwarded.
    """
    size = store.size() if size is None else size
    url = reopenable_url(store.engine)
    cosignatures = CosignatureStore(store)
    start = 0
    for cp_size, note in store.checkpoints():
        if cp_size > size:
            break
        yield from _entry_slices(store, url, start, cp_size)
        start = max(start, cp_size)
        yield CheckpointRecord(cosignatures.cosigned(note, cp_size))
    yield from _entry_slices(store, url, start, size)


def _entry_slices(
    store: LedgerStore, url: str | None, start: int, stop: int
) -> Iterator[StoreSlice | EntryRecord]:
    for first in range(start, stop, SLICE_ENTRIES):
        last = min(stop, first + SLICE_ENTRIES)
        if url is not None:
            yield StoreSlice(url, first, last)
        else:
            for index, data in store.entries(first, last - first):
                if index >= last:
                    break
                yield EntryRecord(index, data)


def bundle_chunks(store: LedgerStore, size: int) -> Iterator[bytes]:
    """The bundle of the first `size` entries, a header line then a slice of lines at a
    time: memory stays flat at any size (the site streams it, export writes it)."""
    header = BundleHeader(store.origin, store.root_key_id, size)
    yield json.dumps(header.to_json(), sort_keys=True).encode() + b"\n"
    for record in store_records(store, size):
        if isinstance(record, CheckpointRecord):
            line = json.dumps({"checkpoint": record.note}, ensure_ascii=False)
            yield line.encode("utf-8") + b"\n"
        elif isinstance(record, EntryRecord):
            yield record.data + b"\n"
        else:
            yield b"".join(data + b"\n" for _, data in record.load())


def export_bundle(store: LedgerStore, out: Path) -> int:
    """Write the ledger to `out` atomically; returns the number of entries written."""
    size = store.size()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".bundle-", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in bundle_chunks(store, size):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return size
