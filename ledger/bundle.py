"""Bundles: a ledger exported as one JSON Lines file that verifies with no database or server.

Line 1 is a header object; then every entry's canonical bytes, one per line, in index
order; a checkpoint line `{"checkpoint":NOTE}` follows the entry that completes its size.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import BundleError
from ledger.statement import HEX64, utc_now
from ledger.verifier import CheckpointRecord, Record

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


def read_header(path: Path) -> BundleHeader:
    try:
        with path.open("rb") as handle:
            first = handle.readline(MAX_LINE_BYTES + 1)
    except OSError as exc:
        raise _unreadable(path, "bundle", exc) from None
    return _parse_header(path, first)


def _unreadable(path: Path, what: str, exc: OSError) -> BundleError:
    return BundleError(
        f"{path}: cannot read {what}: {exc.strerror}", expected="a readable file", found=str(path)
    )


def _parse_header(path: Path, line: bytes) -> BundleHeader:
    where = f"{path}:1"
    if not line.endswith(b"\n") or len(line) > MAX_LINE_BYTES:
        raise BundleError(
            f"{where}: the header line is cut off or too long",
            expected=f"one line of at most {MAX_LINE_BYTES} bytes",
            found=len(line),
        )
    if line.startswith(codecs.BOM_UTF8):
        raise BundleError(
            f"{where}: the header starts with a byte-order mark",
            expected="'{' as the first byte",
            found="EF BB BF",
        )
    try:
        # Strict UTF-8 first: json.loads(bytes) would let encoded surrogates through.
        value = json.loads(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
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


def read_checkpoint_file(path: Path) -> str:
    """A saved checkpoint note (`--trusted-checkpoint`), exactly as its bytes say.

    No newline translation: a CRLF file is not the note that was signed. Bytes that are not
    UTF-8 become lone surrogates, which the verifier refuses as `checkpoint_malformed`.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _unreadable(path, "checkpoint", exc) from None
    return data.decode("utf-8", "surrogateescape")


BLOCK_BYTES = 1 << 20
_CHECKPOINT_LINE = b'\n{"checkpoint":'
_ENTRY_START = b'{"index":'
_ENTRY_LINE = b'\n{"index":'


@dataclass(frozen=True, slots=True)
class BundleSlice:
    """Whole entry lines of a bundle, read by the worker that checks them."""

    path: str
    offset: int
    length: int
    first_position: int
    first_line: int
    count: int

    def load(self) -> list[tuple[int, bytes]]:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(self.length)
        return list(enumerate(chunk.split(b"\n")[:-1], start=self.first_position))


def read_records(path: Path) -> Iterator[Record]:
    """Stream a bundle as slices of entry lines (for the workers to read) and checkpoints.

    The main process only finds line boundaries and checkpoint lines, a megabyte at a time;
    a line that is neither entry nor checkpoint, or a file cut off mid-line, is refused.
    Whether an entry is valid is the verifier's business (it reports the index).
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise _unreadable(path, "bundle", exc) from None
    with handle:
        _parse_header(path, handle.readline(MAX_LINE_BYTES + 1))
        offset, position, line = handle.tell(), 0, 2
        pending = 0  # bytes after the last newline, read again with the next block
        while True:
            # Re-reading the unfinished line from the file is cheaper than concatenating
            # it to each block; string methods then take bounds instead of slices.
            handle.seek(offset)
            data = handle.read(pending + BLOCK_BYTES)
            if not data:
                return
            at_end = len(data) == pending
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                if at_end or len(data) > MAX_LINE_BYTES:
                    reason = (
                        "the file is cut off in the middle of a line" if at_end else "line too long"
                    )
                    raise BundleError(
                        f"{path}:{line}: {reason}",
                        expected="lines ending in a newline",
                        found=data[-40:],
                    )
                pending = len(data)
                continue
            # Lines after the first lie inside the block just read, so only the first (which
            # holds the unfinished line carried over) can be longer than a block.
            if data.find(b"\n") >= MAX_LINE_BYTES:
                raise BundleError(
                    f"{path}:{line}: line too long",
                    expected=f"at most {MAX_LINE_BYTES} bytes",
                    found=data.find(b"\n") + 1,
                )
            for item in _split(path, data, cut, offset, position, line):
                yield item
                if isinstance(item, BundleSlice):
                    position, line = item.first_position + item.count, item.first_line + item.count
                else:
                    line += 1
            offset += cut
            pending = len(data) - cut


def _split(
    path: Path, data: bytes, end: int, offset: int, position: int, line: int
) -> Iterator[Record]:
    """Entry runs and checkpoint lines of the whole lines in data[:end], in order."""
    start = 0
    while start < end:
        if data.startswith(b'{"checkpoint":', start, end):
            stop = data.index(b"\n", start, end)
            yield CheckpointRecord(
                _checkpoint_note(f"{path}:{line}", data[start:stop]), f"checkpoint at line {line}"
            )
            start, line = stop + 1, line + 1
            continue
        found = data.find(_CHECKPOINT_LINE, start, end)
        stop = end if found < 0 else found + 1
        count = data.count(b"\n", start, stop)
        # Every line of the run starts an entry when the count of entry starts says so;
        # only otherwise is each line looked at, to name the first that does not.
        if not data.startswith(_ENTRY_START, start) or (
            data.count(_ENTRY_LINE, start, stop) != count - 1
        ):
            _refuse_line(path, data[start:stop], line)
        yield BundleSlice(str(path), offset + start, stop - start, position, line, count)
        start, position, line = stop, position + count, line + count


def _refuse_line(path: Path, run: bytes, first_line: int) -> None:
    for number, text in enumerate(run.split(b"\n")[:-1], start=first_line):
        if not text.startswith(_ENTRY_START):
            raise BundleError(
                f"{path}:{number}: neither an entry nor a checkpoint",
                expected='{"index":… or {"checkpoint":…',
                found=text[:40],
            )


def _checkpoint_note(where: str, body: bytes) -> str:
    try:
        # Strict UTF-8 first: json.loads(bytes) would let encoded surrogates through.
        value = json.loads(body.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        raise BundleError(
            f"{where}: checkpoint line is not JSON in UTF-8",
            expected="JSON object",
            found=body[:60],
        ) from None
    note = value.get("checkpoint") if type(value) is dict else None
    if type(note) is not str or len(value) != 1:
        raise BundleError(
            f"{where}: field 'checkpoint' must be the only field, a string",
            expected="signed note text",
            found=str(value)[:60],
        )
    return note
