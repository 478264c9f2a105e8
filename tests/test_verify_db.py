"""verify --db: each worker reads its own index ranges from the database (SQLite and
PostgreSQL); the main process reads no entry, and the verdict is the bundle's."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from conftest import LedgerKit
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool
from support import ORIGIN
from test_store import batch

from ledger import bundle_export
from ledger.bundle import read_header, read_records
from ledger.bundle_export import export_bundle, store_records
from ledger.statement import Statement, parse_entry
from ledger.store import LedgerStore, StoreSlice, open_engine
from ledger.verifier import CheckpointRecord, EntryRecord, verify


def filled(kit: LedgerKit, monkeypatch: pytest.MonkeyPatch) -> int:
    # Slices of 8 entries, so 60 entries and 3 checkpoints make many pieces of work.
    monkeypatch.setattr(bundle_export, "SLICE_ENTRIES", 8)
    for round_ in range(3):
        kit.store.append(batch(kit, 20, f"R{round_}"))
        kit.store.publish_checkpoint()
    return kit.store.size()


def statement_of(data: bytes) -> Statement:
    return parse_entry(data).statement


def outcome(kit: LedgerKit, workers: int) -> dict[str, object]:
    size = kit.store.size()
    report = verify(
        store_records(kit.store, size),
        kit.root_key_id,
        workers=workers,
        expected_size=size,
        origin=kit.store.origin,
    ).to_json()
    del report["seconds"]
    return report


def test_workers_read_their_own_ranges(kit: LedgerKit, monkeypatch: pytest.MonkeyPatch) -> None:
    size = filled(kit, monkeypatch)
    records = list(store_records(kit.store, size))
    assert not any(isinstance(r, EntryRecord) for r in records)
    slices = [r for r in records if isinstance(r, StoreSlice)]
    assert pickle.loads(pickle.dumps(slices[0])) == slices[0]
    assert kit.url.split("@")[-1] in slices[0].url
    assert "url" not in repr(slices[0])  # a PostgreSQL password never shows in a message
    # Each checkpoint follows the slice that ends at its size.
    ends = [r.stop for r in records if isinstance(r, StoreSlice)]
    sizes = [size for size, _ in kit.store.checkpoints()]
    placed = [records[i - 1].stop for i, r in enumerate(records) if isinstance(r, CheckpointRecord)]
    assert placed == sizes
    assert ends[-1] == size
    assert [i for s in slices for i, _ in s.load()] == list(range(size))
    reports = [outcome(kit, workers) for workers in (1, 2, 4)]
    assert reports[0]["ok"]
    assert reports[0]["entries"] == size == 63
    assert reports[0]["checkpoints_verified"] == 4
    assert reports[0] == reports[1] == reports[2]


def test_an_entry_edited_in_the_database_is_found_with_any_worker_count(
    kit: LedgerKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled(kit, monkeypatch)
    with open_engine(kit.url).begin() as conn:
        conn.execute(
            text("UPDATE ledger_entry SET data = REPLACE(data, 'R1', 'R9') WHERE idx = 30")
            if kit.url.startswith("sqlite")
            else text(
                "UPDATE ledger_entry SET data = convert_to(replace(convert_from(data, 'UTF8'),"
                " 'R1', 'R9'), 'UTF8') WHERE idx = 30"
            )
        )
    reports = [outcome(kit, workers) for workers in (1, 2, 4)]
    assert reports[0]["failure"]["index"] == 30  # type: ignore[index]
    assert reports[0]["failure"]["reason"] == "signature"  # type: ignore[index]
    assert reports[0] == reports[1] == reports[2]


def test_a_missing_row_is_an_index_failure(kit: LedgerKit, monkeypatch: pytest.MonkeyPatch) -> None:
    filled(kit, monkeypatch)
    with open_engine(kit.url).begin() as conn:
        conn.execute(text("DELETE FROM ledger_entry WHERE idx = 17"))
    reports = [outcome(kit, workers) for workers in (1, 2)]
    assert reports[0]["failure"]["index"] == 17  # type: ignore[index]
    assert reports[0]["failure"]["reason"] == "index"  # type: ignore[index]
    assert reports[0] == reports[1]


def test_export_writes_what_the_slices_hold(
    kit: LedgerKit, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    size = filled(kit, monkeypatch)
    path = tmp_path / "b.jsonl"
    assert export_bundle(kit.store, path) == size
    header = read_header(path)
    report = verify(read_records(path), kit.root_key_id, workers=2, expected_size=header.size)
    assert report.ok, report.failure
    assert report.to_json()["root"] == outcome(kit, 1)["root"]


def test_sqlite_in_memory_is_forwarded_by_the_main_process(sqlite_kit: LedgerKit) -> None:
    # Another process cannot open an in-memory database: its entries travel from here.
    engine = create_engine("sqlite://", poolclass=StaticPool)
    store = LedgerStore(engine, origin=ORIGIN, root_key_id=sqlite_kit.root_key_id)
    store.create_schema()
    store.append([s for _, data in sqlite_kit.store.entries() for s in [statement_of(data)]])
    records = list(store_records(store))
    assert [r.position for r in records if isinstance(r, EntryRecord)] == [0, 1, 2]
    assert verify(iter(records), sqlite_kit.root_key_id, workers=2, expected_size=3).ok
