"""Cosignature storage and tiles on each database (SQLite file, PostgreSQL when configured)."""

from __future__ import annotations

import pytest
from conftest import LedgerKit
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import registration

from ledger import keys
from ledger.cosign_store import CosignatureStore
from ledger.cosignature import Cosigner
from ledger.note import split_note
from ledger.policy import Policy, PolicyWitness
from ledger.tiles import ENTRIES, Tile, TileError, TileHashes, TileReader, decode_bundle

W = [Cosigner(f"w{i}.example", Ed25519PrivateKey.generate()) for i in range(3)]
POLICY = Policy.k_of_n([PolicyWitness(w.name, w.public_key) for w in W], 2)


def cosign(store: CosignatureStore, witness: Cosigner, note: str, size: int, time: int) -> str:
    line = witness.cosign(split_note(note)[0], time)
    store.save(size, witness.public_key, line, time)
    return line


def test_cosignatures_and_the_latest_quorum(kit: LedgerKit) -> None:
    cosigns = CosignatureStore(kit.store)
    cosigns.create_schema()
    first = kit.store.latest_checkpoint()
    assert first is not None
    assert cosigns.latest_with_quorum(POLICY) is None
    lines = [cosign(cosigns, w, first, 3, 100 + i) for i, w in enumerate(W[:2])]
    cosign(cosigns, W[0], first, 3, 999)  # a second line by w0 for the same size: ignored
    assert cosigns.lines(3) == lines
    found = cosigns.latest_with_quorum(POLICY)
    assert found is not None
    assert found[0] == first + "".join(lines)
    assert found[1].cosigned == ("w0.example", "w1.example")
    # A newer checkpoint with one cosignature does not hide the older one with two.
    kit.store.append([registration(kit.council, keys.generate(), "producer", [], "p")])
    second = kit.store.publish_checkpoint()
    cosign(cosigns, W[2], second, 4, 300)
    assert cosigns.witness_sizes() == {
        W[0].public_key.public.hex(): 3,
        W[1].public_key.public.hex(): 3,
        W[2].public_key.public.hex(): 4,
    }
    assert cosigns.latest_with_quorum(POLICY) == found
    cosign(cosigns, W[1], second, 4, 301)
    newest = cosigns.latest_with_quorum(POLICY)
    assert newest is not None
    assert newest[0].startswith(second)
    assert newest[1].cosigned == ("w1.example", "w2.example")


def test_tiles_on_each_database(kit: LedgerKit) -> None:
    reader = TileReader(kit.store, cache_bytes=0)
    size = kit.store.size()
    entries = decode_bundle(reader.read(Tile(ENTRIES, 0, size)), size)
    assert entries == [data for _, data in kit.store.entries()]
    assert TileHashes(size, reader.read_path).root() == kit.store.root()
    with pytest.raises(TileError):
        reader.read(Tile(0, 0, size + 1))
