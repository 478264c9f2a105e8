"""ledger.tiles: paths, widths, bundles, and tiles against the Merkle tree around tile edges."""

from __future__ import annotations

import hashlib
import struct

import pytest
from conftest import LedgerKit
from starlette.testclient import TestClient

from ledger import merkle
from ledger.errors import ProofError
from ledger.store import ENTRY, HEAD, NODE, LedgerStore, open_engine
from ledger.tiles import (
    ENTRIES,
    Tile,
    TileError,
    TileHashes,
    TileReader,
    decode_bundle,
    encode_bundle,
    encode_index,
    parse_tile_path,
    tile_width,
    tiles_of,
)
from ocop_trace.witness.tile_routes import create_tiles_app

SIZES = [1, 255, 256, 257, 65_535, 65_536, 65_537]
BIG = {300: 70_000, 301: 65_535, 302: 65_536}  # entries long enough for the long length form


# -- paths ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("index", "encoded"),
    [
        (0, "000"),
        (7, "007"),
        (999, "999"),
        (1000, "x001/000"),
        (1_234_067, "x001/x234/067"),
        (2**64 - 1, "x018/x446/x744/x073/x709/x551/615"),
    ],
)
def test_index_encoding(index: int, encoded: str) -> None:
    assert encode_index(index) == encoded
    assert parse_tile_path(f"tile/3/{encoded}") == Tile(3, index)
    assert parse_tile_path(f"tile/entries/{encoded}.p/17") == Tile(ENTRIES, index, 17)


def test_paths_round_trip() -> None:
    for tile in [Tile(0, 0), Tile(0, 5, 1), Tile(63, 1000, 255), Tile(ENTRIES, 1234, 3)]:
        assert parse_tile_path(tile.path) == tile
    assert Tile(0, 1_234_067).path == "tile/0/x001/x234/067"
    assert Tile(ENTRIES, 2, 112).path == "tile/entries/002.p/112"


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1234",
        "tile/0/12",
        "tile/00/000",
        "tile/0/x001",
        "tile/0/x000/001",
        "tile/0/000.p/0",
        "tile/0/000.p/256",
        "tile/0/000.p/010",
        "tile/0/000.p/",
        "tile/64/000",
        "tile/-1/000",
        "tile/0/0001",
        "tile/entry/000",
        "tile/0/000/",
        "tile/0/x1/000",
        "tile/0/X001/000",
        "tile/0/000.p/1/2",
        "tile//000",
        "checkpoint",
        "tile/0/٠٠٠",
    ],
)
def test_bad_paths(path: str) -> None:
    with pytest.raises(TileError):
        parse_tile_path(path)


def test_the_spec_examples_of_which_tiles_a_tree_has() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level
    # 0 tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and
    # one partial level 2 tile of width 1"
    tiles = tiles_of(70_000)
    assert sum(1 for t in tiles if t.level == 0 and t.full) == 273
    assert [t for t in tiles if not t.full] == [Tile(0, 273, 112), Tile(1, 1, 17), Tile(2, 0, 1)]
    assert [t for t in tiles if t.level == 1] == [Tile(1, 0), Tile(1, 1, 17)]
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
    # tile of width 1"
    assert tiles_of(256) == [Tile(0, 0), Tile(1, 0, 1)]
    assert tiles_of(0) == []
    assert tile_width(0, 273, 70_000) == 112
    assert tile_width(0, 274, 70_000) == 0
    assert tile_width(ENTRIES, 273, 70_000) == 112


# -- entry bundles ----------------------------------------------------------------------------
def test_bundles_round_trip_with_the_long_form_only_where_needed() -> None:
    entries = [b"a", b"b" * 65_535, b"c" * 65_536, b"d" * 262_144, b"e" * 300]
    data = encode_bundle(entries)
    assert decode_bundle(data, 5) == entries
    assert data[:3] == b"\x00\x01a"  # the spec's uint16 prefix
    assert data[3:5] == b"\xff\xff"  # 65,535 still fits the short form
    assert data[5 + 65_535 : 5 + 65_535 + 6] == b"\x00\x00\x00\x01\x00\x00"  # long form


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01ab",  # a byte after the last entry
        b"\x00\x05abc",  # cut short
        b"\x00",  # half a prefix
        b"\x00\x00\x00\x01",  # half a long prefix
        b"\x00\x00\x00\x00\x00\x05abcde",  # the long form for a short entry
        b"\x00\x00\x00\x04\x00\x01" + b"x" * 262_145,  # longer than any entry
    ],
)
def test_bad_bundles(data: bytes) -> None:
    with pytest.raises(TileError):
        decode_bundle(data, 1)


def test_a_bundle_must_have_its_count() -> None:
    with pytest.raises(TileError):
        decode_bundle(encode_bundle([b"a", b"b"]), 3)
    with pytest.raises(TileError):
        encode_bundle([b""])


# -- a synthetic ledger of 65,537 entries, tiles checked against the tree -----------------------
def entry_data(index: int) -> bytes:
    return b"e" * BIG[index] if index in BIG else b"entry %d" % index


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> LedgerStore:
    """Entries and nodes written straight into a real SQLite ledger: no signatures needed,
    since tiles only read the bytes and the hashes."""
    path = tmp_path_factory.mktemp("tiles") / "ledger.db"
    store = LedgerStore(open_engine(f"sqlite:///{path}"), origin="x", root_key_id="0" * 64)
    store.create_schema()
    size = SIZES[-1]
    compact = merkle.CompactRange()
    nodes = []
    for i in range(size):
        nodes += compact.append_with_nodes(merkle.leaf_hash(entry_data(i)))
    with store.engine.begin() as conn:
        conn.execute(
            ENTRY.insert(),
            [
                {
                    "idx": i,
                    "entry_hash": hashlib.sha256(entry_data(i)).digest(),
                    "statement_hash": hashlib.sha256(b"%d" % i).digest(),
                    "kind": "test.synthetic",
                    "key_id": "0" * 64,
                    "integrated_at": "2026-01-01T00:00:00Z",
                    "data": entry_data(i),
                }
                for i in range(size)
            ],
        )
        conn.execute(NODE.insert(), [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes])
        conn.execute(HEAD.update().values(size=size))
    return store


@pytest.fixture(scope="module")
def leaves() -> list[bytes]:
    return [merkle.leaf_hash(entry_data(i)) for i in range(SIZES[-1])]


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 MTH, written out (not ledger.merkle): the largest power of two below n."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:])).digest()


@pytest.mark.parametrize("size", SIZES)
def test_tiles_hold_the_tree_hashes(size: int, synthetic: LedgerStore, leaves: list[bytes]) -> None:
    reader = TileReader(synthetic)
    for tile in tiles_of(size):
        if tile.level == 1 and tile.full:
            continue  # checked once below: 256 roots of 256 leaves each
        span = 256**tile.level
        first = tile.index * 256
        want = b"".join(
            mth(leaves[(first + i) * span : (first + i + 1) * span]) for i in range(tile.width)
        )
        assert reader.read(tile) == want, tile.path
        bundle = reader.read(Tile(ENTRIES, tile.index, tile.width)) if tile.level == 0 else None
        if bundle is not None:
            got = decode_bundle(bundle, tile.width)
            assert got == [entry_data(first + i) for i in range(tile.width)]


def test_the_full_level_1_tile(synthetic: LedgerStore, leaves: list[bytes]) -> None:
    data = TileReader(synthetic).read(Tile(1, 0))
    assert len(data) == 8192
    for i in (0, 1, 128, 255):
        assert data[32 * i : 32 * (i + 1)] == merkle.root_from_leaf_hashes(
            leaves[256 * i : 256 * (i + 1)]
        )


@pytest.mark.parametrize("size", SIZES)
def test_roots_and_proofs_from_tiles(
    size: int, synthetic: LedgerStore, leaves: list[bytes]
) -> None:
    reader = TileReader(synthetic)
    fetched: list[str] = []

    def fetch(path: str) -> bytes:
        fetched.append(path)
        return reader.read_path(path)

    tiles = TileHashes(size, fetch)
    root = tiles.root()
    assert root == synthetic.root(size)
    if size <= 257:
        assert root == mth(leaves[:size])
    for index in sorted({0, 1, 254, 255, 256, size - 2, size - 1} & set(range(size))):
        proof = tiles.inclusion_proof(index)
        assert proof == synthetic.inclusion_proof(index, size)[1]
        merkle.verify_inclusion(leaves[index], index, size, proof, root)
    for old in sorted({1, 2, 255, 256, 257, 65_535, 65_536} & set(range(1, size + 1))):
        proof = tiles.consistency_proof(old)
        assert proof == synthetic.consistency_proof(old, size)
        merkle.verify_consistency(old, size, proof, synthetic.root(old), root)
    # A root needs at most one tile per level (the right edge), fetched once each.
    assert len(fetched) == len(set(fetched))
    assert all(
        parse_tile_path(p).width
        == tile_width(parse_tile_path(p).level, parse_tile_path(p).index, size)
        for p in fetched
    )


def test_tiles_the_tree_does_not_have_yet(synthetic: LedgerStore) -> None:
    reader = TileReader(synthetic)  # 65,537 leaves: 256 full level-0 tiles, then 1 leaf
    assert len(reader.read(Tile(0, 256, 1))) == 32
    assert len(reader.read(Tile(2, 0, 1))) == 32
    assert len(reader.read(Tile(0, 255, 7))) == 7 * 32  # a partial tile stays servable
    for tile in (
        Tile(0, 256),
        Tile(0, 256, 2),
        Tile(1, 1, 1),
        Tile(3, 0, 1),
        Tile(ENTRIES, 257, 1),
    ):
        with pytest.raises(TileError):
            reader.read(tile)
    with pytest.raises(ProofError):  # a client never asks for a tile its tree lacks
        TileHashes(300, reader.read_path).get_node(9, 0)


def test_a_tile_of_the_wrong_length_is_refused(synthetic: LedgerStore) -> None:
    reader = TileReader(synthetic)
    with pytest.raises(ProofError):
        TileHashes(300, lambda path: reader.read_path(path)[:-1]).root()


# -- a real ledger over HTTP ---------------------------------------------------------------
def test_tiles_over_http_of_a_real_ledger(sqlite_kit: LedgerKit) -> None:
    store = sqlite_kit.store
    note = store.latest_checkpoint()
    size = store.size()
    with TestClient(create_tiles_app(store, store.latest_checkpoint)) as client:
        checkpoint = client.get("/checkpoint")
        assert checkpoint.text == note
        assert checkpoint.headers["content-type"] == "text/plain; charset=utf-8"
        assert checkpoint.headers["cache-control"] == "public, max-age=2"
        bundle = client.get(f"/tile/entries/000.p/{size}", headers={"Accept-Encoding": "gzip"})
        assert bundle.headers["content-type"] == "application/octet-stream"
        assert "immutable" in bundle.headers["cache-control"]
        assert decode_bundle(bundle.content, size) == [data for _, data in store.entries()]
        tiles = TileHashes(size, lambda path: client.get(f"/{path}").content)
        assert tiles.root() == store.root()
        missing = client.get(f"/tile/0/000.p/{size + 1}")
        assert (missing.status_code, missing.headers["cache-control"]) == (404, "no-store")
        assert client.get("/tile/0/0000").status_code == 404


def test_a_large_bundle_is_compressed(synthetic: LedgerStore) -> None:
    with TestClient(create_tiles_app(synthetic, lambda: None)) as client:
        answer = client.get("/tile/entries/000", headers={"Accept-Encoding": "gzip"})
        assert answer.headers["content-encoding"] == "gzip"
        assert len(decode_bundle(answer.content, 256)) == 256
        assert client.get("/checkpoint").status_code == 404


def test_bundle_bytes_are_framed_as_the_spec_says(synthetic: LedgerStore) -> None:
    data = TileReader(synthetic).read(Tile(ENTRIES, 0, 2))
    assert data == struct.pack(">H", 7) + b"entry 0" + struct.pack(">H", 7) + b"entry 1"


def test_the_cache_is_bounded_and_answers_repeats(synthetic: LedgerStore) -> None:
    reader = TileReader(synthetic, cache_bytes=10 * 8192)
    first = [reader.read(Tile(0, n)) for n in range(40)]
    assert reader._cached <= 10 * 8192
    assert len(reader._cache) == 10
    assert [reader.read(Tile(0, n)) for n in range(40)] == first
    assert reader.read(Tile(0, 39)) is reader.read(Tile(0, 39))  # the second from memory
