"""Time tile reads from a SQLite ledger of 65,537 synthetic entries (~700 bytes each).

Run: .venv/bin/python tests/bench/tiles_bench.py   (prints medians; takes about 20 s)
"""

from __future__ import annotations

import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from ledger import merkle
from ledger.store import ENTRY, HEAD, NODE, LedgerStore, open_engine
from ledger.tiles import ENTRIES, Tile, TileHashes, TileReader

SIZE = 65_537


def synthetic_store(path: Path) -> LedgerStore:
    store = LedgerStore(open_engine(f"sqlite:///{path}"), origin="x", root_key_id="0" * 64)
    store.create_schema()
    entries = [b'{"index":%d,"statement":{}}' % i + b" " * 670 for i in range(SIZE)]
    compact = merkle.CompactRange()
    nodes = [n for data in entries for n in compact.append_with_nodes(merkle.leaf_hash(data))]
    with store.engine.begin() as conn:
        conn.execute(
            ENTRY.insert(),
            [
                {
                    "idx": i,
                    "entry_hash": hashlib.sha256(data).digest(),
                    "statement_hash": hashlib.sha256(b"%d" % i).digest(),
                    "kind": "bench",
                    "key_id": "0" * 64,
                    "integrated_at": "2026-01-01T00:00:00Z",
                    "data": data,
                }
                for i, data in enumerate(entries)
            ],
        )
        conn.execute(NODE.insert(), [{"level": lv, "idx": i, "hash": h} for lv, i, h in nodes])
        conn.execute(HEAD.update().values(size=SIZE))
    return store


def median_us(reader: TileReader, tiles: list[Tile]) -> float:
    times = []
    for tile in tiles:
        started = time.perf_counter()
        reader.read(tile)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = synthetic_store(Path(folder) / "ledger.db")
        cold, warm = TileReader(store, cache_bytes=0), TileReader(store)
        cases = {
            "full level-0 tile (256 hashes)": [Tile(0, n) for n in range(256)],
            "full level-1 tile": [Tile(1, 0)] * 50,
            "full entry bundle (256 entries, 179 KB)": [Tile(ENTRIES, n) for n in range(256)],
            "partial level-0 tile, width 1": [Tile(0, 256, 1)] * 200,
        }
        for name, tiles in cases.items():
            print(f"{name}: {median_us(cold, tiles):.0f} us from the database")
        for tile in cases["full level-0 tile (256 hashes)"]:
            warm.read(tile)
        print(f"full level-0 tile, cached: {median_us(warm, [Tile(0, 7)] * 200):.1f} us")
        started = time.perf_counter()
        for _ in range(20):
            TileHashes(SIZE, TileReader(store, cache_bytes=0).read_path).root()
        each = (time.perf_counter() - started) / 20
        print(f"root of {SIZE:,} leaves from tiles: {each * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
