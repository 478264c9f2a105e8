"""Reading a bundle in blocks: every entry and checkpoint in order, whatever the block size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger import bundle
from ledger.bundle import BundleSlice, read_records
from ledger.errors import BundleError
from ledger.verifier import CheckpointRecord

HEADER = json.dumps(
    {"format": bundle.FORMAT, "origin": "o", "root_key_id": "a" * 64, "size": 0}
).encode()


def entry(n: int, pad: int = 0) -> bytes:
    return b'{"index":%d,"x":"%s"}' % (n, b"y" * pad)


def checkpoint(n: int) -> bytes:
    return json.dumps({"checkpoint": f"note {n}\n\n— sig"}, ensure_ascii=False).encode()


def flatten(path: Path) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for record in read_records(path):
        if isinstance(record, CheckpointRecord):
            out.append(("checkpoint", record.note, record.source))
        else:
            assert isinstance(record, BundleSlice)
            out += [("entry", position, data) for position, data in record.load()]
    return out


def write(tmp_path: Path, lines: list[bytes], tail: bytes = b"") -> Path:
    path = tmp_path / "b.jsonl"
    path.write_bytes(b"\n".join([HEADER, *lines]) + b"\n" + tail)
    return path


LINES = [
    entry(0),
    entry(1, 40),
    checkpoint(2),
    entry(2, 3),
    checkpoint(3),
    checkpoint(3),
    *(entry(n, n * 7 % 50) for n in range(3, 30)),
    checkpoint(30),
]


def expected() -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    position = 0
    for number, line in enumerate(LINES, start=2):
        if line.startswith(b'{"checkpoint":'):
            out.append(
                ("checkpoint", json.loads(line)["checkpoint"], f"checkpoint at line {number}")
            )
        else:
            out.append(("entry", position, line))
            position += 1
    return out


@pytest.mark.parametrize("block", [16, 17, 64, 100, 1 << 20])
def test_every_record_in_order_at_any_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(bundle, "BLOCK_BYTES", block)
    assert flatten(write(tmp_path, LINES)) == expected()


@pytest.mark.parametrize("block", [16, 64, 1 << 20])
def test_a_stray_line_is_named_by_its_line_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(bundle, "BLOCK_BYTES", block)
    lines = list(LINES)
    lines[20] = b"hello"
    with pytest.raises(BundleError, match=r"b\.jsonl:22: neither an entry nor a checkpoint"):
        flatten(write(tmp_path, lines))


@pytest.mark.parametrize("block", [16, 64, 1 << 20])
def test_a_file_cut_mid_line_is_named_by_its_line_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(bundle, "BLOCK_BYTES", block)
    path = write(tmp_path, LINES, tail=b'{"index":30')
    with pytest.raises(BundleError, match=rf"b\.jsonl:{2 + len(LINES)}: the file is cut off"):
        flatten(path)


def test_a_line_longer_than_the_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle, "BLOCK_BYTES", 64)
    monkeypatch.setattr(bundle, "MAX_LINE_BYTES", 150)
    path = write(tmp_path, [entry(0), entry(1, 400), entry(2)])
    with pytest.raises(BundleError, match=r"b\.jsonl:3: line too long"):
        flatten(path)


def test_a_too_long_line_that_ends_in_a_later_block_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle, "BLOCK_BYTES", 100)
    monkeypatch.setattr(bundle, "MAX_LINE_BYTES", 150)
    fits = entry(1, 150 - len(entry(1)) - 1)  # 150 bytes with its LF
    assert len(flatten(write(tmp_path, [entry(0), fits, entry(2)]))) == 3
    with pytest.raises(BundleError, match=r"b\.jsonl:3: line too long"):
        flatten(write(tmp_path, [entry(0), fits + b"y", entry(2)]))
