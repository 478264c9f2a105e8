"""Bundles: a ledger exported as one JSON Lines file that verifies with no database or server.

Line 1 is a header object; then every entry's canonical bytes, one per line, in index
order; a checkpoint line `{"checkpoint":NOTE}` follows the entry that completes its size.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import BundleError
from ledger.statement import HEX64, utc_now
from ledger.store import LedgerStore
from ledger.verifier import CheckpointRecord, EntryRecord, Record

FORMAT = "ocop-trace-bundle/1"
MAX_LINE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class BundleHeader:
    origin: str
    root_key_id: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "origin": self.origin,
            "root_key_id": self.root_key_id,
            "size": self.size,
            "exported_at": utc_now(),
        }


def store_records(store: LedgerStore, size: int | None = None) -> Iterator[Record]:
    """The store's entries and checkpoints merged in bundle order, up to `size` entries."""
    checkpoints = store.checkpoints()
    pending = next(checkpoints, None)
    count = 0
    for index, data in store.entries():
        if size is not None and index >= size:
            break
        while pending is not None and pending[0] <= index:
            yield CheckpointRecord(pending[1])
            pending = next(checkpoints, None)
        yield EntryRecord(index, data)
        count = index + 1
    while pending is not None and (size is None or pending[0] <= count):
        yield CheckpointRecord(pending[1])
        pending = next(checkpoints, None)


def export_bundle(store: LedgerStore, out: Path) -> int:
    """Write the ledger to `out` atomically; returns the number of entries written."""
    size = store.size()
    header = BundleHeader(store.origin, store.root_key_id, size)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".bundle-", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(json.dumps(header.to_json(), sort_keys=True).encode() + b"\n")
            for record in store_records(store, size):
                if isinstance(record, EntryRecord):
                    handle.write(record.data + b"\n")
                else:
                    line = json.dumps({"checkpoint": record.note}, ensure_ascii=False)
                    handle.write(line.encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return size


def read_header(path: Path) -> BundleHeader:
    try:
        with path.open("rb") as handle:
            first = handle.readline(MAX_LINE_BYTES + 1)
    except OSError as exc:
        raise BundleError(
            f"{path}: cannot read bundle: {exc.strerror}",
            expected="a readable file",
            found=str(path),
        ) from None
    return _parse_header(path, first)


def _parse_header(path: Path, line: bytes) -> BundleHeader:
    where = f"{path}:1"
    if not line.endswith(b"\n") or len(line) > MAX_LINE_BYTES:
        raise BundleError(
            f"{where}: the header line is cut off or too long",
            expected=f"one line of at most {MAX_LINE_BYTES} bytes",
            found=len(line),
        )
    try:
        value = json.loads(line)
    except ValueError:
        raise BundleError(
            f"{where}: the first line is not a bundle header",
            expected=f'{{"format":"{FORMAT}",…}}',
            found=line[:60],
        ) from None
    if type(value) is not dict or value.get("format") != FORMAT:
        raise BundleError(
            f"{where}: field 'format' is wrong",
            expected=FORMAT,
            found=value.get("format") if type(value) is dict else type(value).__name__,
        )
    origin, root, size = value.get("origin"), value.get("root_key_id"), value.get("size")
    if type(origin) is not str or not origin:
        raise BundleError(
            f"{where}: field 'origin' must be a non-empty string", expected="origin", found=origin
        )
    if type(root) is not str or not HEX64.fullmatch(root):
        raise BundleError(
            f"{where}: field 'root_key_id' must be 64 hex digits",
            expected="hex public key",
            found=root,
        )
    if type(size) is not int or size < 0:
        raise BundleError(
            f"{where}: field 'size' must be a non-negative integer", expected="size", found=size
        )
    return BundleHeader(origin, root, size)


def read_records(path: Path) -> Iterator[Record]:
    """Stream a bundle's records; a line that is neither entry nor checkpoint is an error.

    Whether an entry line is valid is the verifier's business (it reports the index); this
    reader only refuses what is not a bundle: a bad header, an unknown or cut-off line.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise BundleError(
            f"{path}: cannot read bundle: {exc.strerror}",
            expected="a readable file",
            found=str(path),
        ) from None
    with handle:
        _parse_header(path, handle.readline(MAX_LINE_BYTES + 1))
        entries = 0
        for number, line in enumerate(handle, start=2):
            where = f"{path}:{number}"
            if not line.endswith(b"\n"):
                raise BundleError(
                    f"{where}: the file is cut off in the middle of a line",
                    expected="a line ending in a newline",
                    found=line[-40:],
                )
            if len(line) > MAX_LINE_BYTES:
                raise BundleError(
                    f"{where}: line too long",
                    expected=f"<= {MAX_LINE_BYTES} bytes",
                    found=len(line),
                )
            body = line[:-1]
            if body.startswith(b'{"index":'):
                yield EntryRecord(entries, body)
                entries += 1
            elif body.startswith(b'{"checkpoint":'):
                yield CheckpointRecord(
                    _checkpoint_note(where, body), f"checkpoint at line {number}"
                )
            else:
                raise BundleError(
                    f"{where}: neither an entry nor a checkpoint",
                    expected='{"index":… or {"checkpoint":…',
                    found=body[:40],
                )


def _checkpoint_note(where: str, body: bytes) -> str:
    try:
        value = json.loads(body)
    except ValueError:
        raise BundleError(
            f"{where}: checkpoint line is not JSON", expected="JSON object", found=body[:60]
        ) from None
    note = value.get("checkpoint") if type(value) is dict else None
    if type(note) is not str or len(value) != 1:
        raise BundleError(
            f"{where}: field 'checkpoint' must be the only field, a string",
            expected="signed note text",
            found=str(value)[:60],
        )
    return note
