"""C2SP tlog-tiles: tile paths, tile contents from the store, and hashes recomputed from tiles.

A hash tile at level L, index n, holds the Merkle hashes at tree level 8·L of the complete
subtrees n·256 … n·256+W−1; the store keeps exactly those (`ledger_node`), so a tile is one
range query. An entry bundle holds the entries' bytes, each with a length prefix.
"""

from __future__ import annotations

import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger import merkle
from ledger.errors import LedgerError, ProofError

if TYPE_CHECKING:  # reading tiles (a monitor) needs no database library
    from sqlalchemy import Connection

    from ledger.store import LedgerStore

HEIGHT = 8  # tree levels per tile
WIDTH = 1 << HEIGHT  # hashes (or entries) in a full tile
MAX_LEVEL = 63
ENTRIES = -1  # the `level` of an entry bundle
# A bundle entry's length prefix is a big-endian uint16. Our entries may be longer (up to
# 262,144 bytes), so a longer entry is written as a zero uint16 followed by a big-endian
# uint32 length: no entry of ours is empty, so the zero is free. Shorter entries use the
# plain form only, so every bundle has one encoding (docs/witnesses.md: a departure).
_LONG = 0xFFFF
MAX_ENTRY_BYTES = 1 << 18  # ledger.canonical.MAX_CANONICAL_BYTES
_INDEX_PART = r"(?:x[0-9]{3}/)*[0-9]{3}"
_PATH = re.compile(
    rf"tile/(?:(?P<level>0|[1-9][0-9]?)|entries)/(?P<index>{_INDEX_PART})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


class TileError(LedgerError):
    """A tile path that names no tile, or a tile the tree does not have (yet)."""

    reason = "tile"


@dataclass(frozen=True, slots=True)
class Tile:
    """A hash tile (level >= 0) or an entry bundle (level == ENTRIES), `width` entries wide."""

    level: int
    index: int
    width: int = WIDTH

    def __post_init__(self) -> None:
        if not (
            ENTRIES <= self.level <= MAX_LEVEL and self.index >= 0 and 1 <= self.width <= WIDTH
        ):
            raise TileError(
                "not a tile",
                expected=f"level -1..{MAX_LEVEL}, index >= 0, width 1..{WIDTH}",
                found=(self.level, self.index, self.width),
            )

    @property
    def full(self) -> bool:
        """A full tile never changes; a partial one is replaced by the full one later."""
        return self.width == WIDTH

    @property
    def path(self) -> str:
        """`tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`."""
        level = "entries" if self.level == ENTRIES else str(self.level)
        suffix = "" if self.full else f".p/{self.width}"
        return f"tile/{level}/{encode_index(self.index)}{suffix}"

    @property
    def hash_level(self) -> int:
        """The Merkle tree level of the hashes in this tile (entries hash to level 0)."""
        return HEIGHT * max(self.level, 0)


def encode_index(index: int) -> str:
    """Zero-padded 3-digit path elements, all but the last prefixed by `x`: 1234067 ->
    `x001/x234/067`."""
    if index < 0:
        raise TileError("negative tile index", expected=">= 0", found=index)
    groups = []
    while True:
        index, rest = divmod(index, 1000)
        groups.append(f"{rest:03d}")
        if not index:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def parse_tile_path(path: str) -> Tile:
    """The tile a path names; its canonical spelling only (no extra zero groups)."""
    m = _PATH.fullmatch(path.removeprefix("/"))
    if m is None:
        raise TileError(
            "not a tile path", expected="tile/L/N[.p/W] or tile/entries/N[.p/W]", found=path[:80]
        )
    index = int(m.group("index").replace("x", "").replace("/", ""))
    level = ENTRIES if m.group("level") is None else int(m.group("level"))
    width = int(m.group("width") or WIDTH)
    if (m.group("width") and width >= WIDTH) or level > MAX_LEVEL:
        raise TileError("not a tile path", expected="W 1..255, L 0..63", found=path[:80])
    tile = Tile(level, index, width)
    if tile.path != path.removeprefix("/"):  # e.g. x000/001: the same index, spelt twice
        raise TileError("not the canonical tile path", expected=tile.path, found=path[:80])
    return tile


def tile_width(level: int, index: int, size: int) -> int:
    """How wide tile `index` of `level` is in a tree of `size` leaves (0: it does not exist).
    Entry bundles (level ENTRIES) have the level-0 widths."""
    level = max(level, 0)
    below = size >> (HEIGHT * level)  # complete hashes at this tile level's tree level
    if (index + 1) * WIDTH <= below:
        return WIDTH
    return below % WIDTH if index == below // WIDTH else 0


def tiles_of(size: int) -> list[Tile]:
    """Every hash tile of a tree of `size` leaves, each as wide as it is at that size."""
    tiles = []
    level = 0
    while level <= MAX_LEVEL and size >> (HEIGHT * level):
        count = size >> (HEIGHT * level)
        tiles += [Tile(level, n) for n in range(count // WIDTH)]
        if count % WIDTH:
            tiles.append(Tile(level, count // WIDTH, count % WIDTH))
        level += 1
    return tiles


# -- entry bundles -------------------------------------------------------------------------
def encode_bundle(entries: Sequence[bytes]) -> bytes:
    parts = []
    for entry in entries:
        if not entry or len(entry) > MAX_ENTRY_BYTES:
            raise TileError(
                "entry size out of range", expected=f"1..{MAX_ENTRY_BYTES}", found=len(entry)
            )
        if len(entry) <= _LONG:
            parts.append(struct.pack(">H", len(entry)))
        else:
            parts.append(struct.pack(">HI", 0, len(entry)))
        parts.append(entry)
    return b"".join(parts)


def decode_bundle(data: bytes, count: int) -> list[bytes]:
    """The `count` entries of a bundle; anything else in it, or missing, is an error."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(entries) == count:
            raise TileError("bytes after the last entry", expected=count, found=">")
        length, offset = _read_length(data, offset)
        if offset + length > len(data):
            raise TileError("entry cut short", expected=length, found=len(data) - offset)
        entries.append(data[offset : offset + length])
        offset += length
    if len(entries) != count:
        raise TileError("wrong number of entries in bundle", expected=count, found=len(entries))
    return entries


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    if offset + 2 > len(data):
        raise TileError("length prefix cut short", expected=2, found=len(data) - offset)
    (length,) = struct.unpack_from(">H", data, offset)
    if length:
        return length, offset + 2
    if offset + 6 > len(data):
        raise TileError("long length prefix cut short", expected=6, found=len(data) - offset)
    (length,) = struct.unpack_from(">I", data, offset + 2)
    if not _LONG < length <= MAX_ENTRY_BYTES:  # the long form only where the short cannot
        raise TileError(
            "bad long entry length", expected=f"{_LONG + 1}..{MAX_ENTRY_BYTES}", found=length
        )
    return length, offset + 6


# -- the server side: tiles from the store ---------------------------------------------------
_ENTRIES_SQL = "SELECT data FROM ledger_entry WHERE idx >= {0} AND idx < {0} ORDER BY idx"
_NODES_SQL = (
    "SELECT hash FROM ledger_node WHERE level = {0} AND idx >= {0} AND idx < {0} ORDER BY idx"
)


class TileReader:
    """Tiles and entry bundles of a LedgerStore, one indexed range query each, the most
    recently read kept in memory up to `cache_bytes`: the bytes behind a tile path never
    change, so a cached tile never goes stale."""

    def __init__(self, store: LedgerStore, cache_bytes: int = 32 << 20) -> None:
        self.store = store
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[Tile, bytes] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()

    def cached(self, tile: Tile) -> bytes | None:
        """The tile's bytes if they are in memory; None means read() must query. Never
        blocks on I/O, so a server can answer a hit without handing it to a thread."""
        with self._lock:
            if (data := self._cache.get(tile)) is not None:
                self._cache.move_to_end(tile)
            return data

    def read(self, tile: Tile, conn: Connection | None = None) -> bytes:
        """The tile's bytes; TileError if the tree does not have that tile yet."""
        if (data := self.cached(tile)) is not None:
            return data
        data = self._query(tile, conn)
        if len(data) <= self.cache_bytes // 8:  # one huge bundle must not empty the cache
            with self._lock:
                if tile not in self._cache:
                    self._cache[tile] = data
                    self._cached += len(data)
                while self._cached > self.cache_bytes:
                    self._cached -= len(self._cache.popitem(last=False)[1])
        return data

    def _query(self, tile: Tile, conn: Connection | None) -> bytes:
        """The rows of a tile exist exactly when the tree has it: an append writes its
        entries, the nodes it completes and the new size in one transaction. So the row
        count is the existence check, and a partial tile stays readable once full."""
        first = tile.index * WIDTH
        params: tuple[int, ...]
        # Literal SQL, as on the store's proof path: building the SQLAlchemy expression
        # costs more than the query. The values are bound parameters, never text.
        if tile.level == ENTRIES:
            sql, params = _ENTRIES_SQL, (first, first + tile.width)
        else:
            sql, params = _NODES_SQL, (tile.hash_level, first, first + tile.width)
        with self.store.reading(conn) as c:
            mark = "?" if c.dialect.paramstyle == "qmark" else "%s"  # SQLite or psycopg
            rows = c.exec_driver_sql(sql.format(mark), params).all()
        if len(rows) != tile.width:
            raise TileError(
                "the tree does not have that tile yet", expected=tile.width, found=len(rows)
            )
        if tile.level == ENTRIES:
            return encode_bundle([bytes(r[0]) for r in rows])
        return b"".join(bytes(r[0]) for r in rows)

    def read_path(self, path: str) -> bytes:
        return self.read(parse_tile_path(path))


# -- the client side: hashes and proofs from fetched tiles ----------------------------------
Fetch = Callable[[str], bytes]


class TileHashes:
    """The stored-node interface of `ledger.merkle` (level, index -> hash) for a tree of
    `size` leaves, computed from its tiles, fetched once each. With it, `merkle.root_at`,
    `merkle.inclusion_proof` and `merkle.consistency_proof` work from tiles alone."""

    def __init__(self, size: int, fetch: Fetch) -> None:
        self.size = size
        self.fetch = fetch
        self.tiles: dict[Tile, bytes] = {}

    def tile(self, level: int, index: int) -> bytes:
        width = tile_width(level, index, self.size)
        if not width:
            raise ProofError("no such tile in this tree", expected=self.size, found=(level, index))
        tile = Tile(level, index, width)
        data = self.tiles.get(tile)
        if data is None:
            data = self.fetch(tile.path)
            if len(data) != width * merkle.HASH_SIZE:
                raise ProofError(
                    "tile has the wrong length", expected=width * merkle.HASH_SIZE, found=len(data)
                )
            self.tiles[tile] = data
        return data

    def get_node(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree (level, index): a run of 2^(level mod 8) hashes
        in one tile at level // 8, hashed up."""
        tile_level, rise = divmod(level, HEIGHT)
        first = index << rise
        data = self.tile(tile_level, first // WIDTH)
        offset = first % WIDTH
        hashes = [
            data[i * merkle.HASH_SIZE : (i + 1) * merkle.HASH_SIZE]
            for i in range(offset, offset + (1 << rise))
        ]
        if len(hashes[-1]) != merkle.HASH_SIZE:
            raise ProofError("node outside the tree", expected=self.size, found=(level, index))
        return merkle.root_from_leaf_hashes(hashes)

    def root(self) -> bytes:
        return merkle.root_at(self.size, self.get_node)

    def inclusion_proof(self, index: int) -> list[bytes]:
        return merkle.inclusion_proof(index, self.size, self.get_node)

    def consistency_proof(self, old_size: int) -> list[bytes]:
        return merkle.consistency_proof(old_size, self.size, self.get_node)
