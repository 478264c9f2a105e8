"""ledger.merkle against the RFC 6962 reference vectors and a direct recursive reference."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.errors import ProofError

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors" / "rfc6962"
INCLUSION_FILES = sorted((VECTORS / "inclusion").rglob("*.json"))
CONSISTENCY_FILES = sorted((VECTORS / "consistency").rglob("*.json"))
TREE8 = json.loads((VECTORS / "tree-8.json").read_text()) if VECTORS.is_dir() else {}

Node = tuple[int, int]


# -- an independent reference: RFC 6962 section 2.1's recursive definitions, over a leaf list --
def ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return ref_node(ref_mth(leaves[:k]), ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = split(len(leaves))
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [ref_mth(leaves)]
    k = split(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], complete), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


# -- stores built the way the ledger builds them: from CompactRange.append_with_nodes ---------
def build_store(leaves: list[bytes]) -> dict[Node, bytes]:
    compact = merkle.CompactRange()
    store: dict[Node, bytes] = {}
    for leaf in leaves:
        for level, index, node in compact.append_with_nodes(leaf):
            assert (level, index) not in store
            store[level, index] = node
    return store


class Reader:
    """A get_node over a store that records its calls and refuses nodes beyond `size`."""

    def __init__(self, store: dict[Node, bytes], size: int) -> None:
        self.store, self.size, self.calls = store, size, list[Node]()

    def __call__(self, level: int, index: int) -> bytes:
        assert (index + 1) << level <= self.size, f"node {(level, index)} is outside the tree"
        self.calls.append((level, index))
        return self.store[level, index]


MAX = 300
_rng = random.Random(6962)
LEAVES = [merkle.leaf_hash(i.to_bytes(2, "big") + _rng.randbytes(i % 40)) for i in range(MAX)]
STORE = build_store(LEAVES)

SETTINGS = settings(deadline=None, max_examples=200)
index_and_size = st.integers(1, MAX).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n)))
two_sizes = st.integers(1, MAX).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n)))


def rejected(call: Callable[..., object], *args: Any) -> ProofError:
    with pytest.raises(ProofError) as info:
        call(*args)
    assert info.value.expected is not None, info.value
    assert info.value.found is not None, info.value
    return info.value


def flip(value: bytes, bit: int) -> bytes:
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


# -- 1. every reference vector ---------------------------------------------------------------
def load(path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(path.read_text())
    for key in ("root", "leafHash", "root1", "root2"):
        if key in raw:
            raw[key] = base64.b64decode(raw[key])
    raw["proof"] = [base64.b64decode(entry) for entry in raw["proof"] or []]
    return raw


def test_all_vector_files_are_found() -> None:
    assert len(INCLUSION_FILES) == 98
    assert len(CONSISTENCY_FILES) == 98


def vector_id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


@pytest.mark.parametrize("path", INCLUSION_FILES, ids=vector_id)
def test_inclusion_vector(path: Path) -> None:
    v = load(path)
    args = (v["leafHash"], v["leafIdx"], v["treeSize"], v["proof"], v["root"])
    if v["wantErr"]:
        rejected(merkle.verify_inclusion, *args)
    else:
        merkle.verify_inclusion(*args)
        assert merkle.root_from_inclusion_proof(*args[:4]) == v["root"]


@pytest.mark.parametrize("path", CONSISTENCY_FILES, ids=vector_id)
def test_consistency_vector(path: Path) -> None:
    v = load(path)
    args = (v["size1"], v["size2"], v["proof"], v["root1"], v["root2"])
    if v["wantErr"]:
        rejected(merkle.verify_consistency, *args)
    else:
        merkle.verify_consistency(*args)


# -- 2. tree-8.json --------------------------------------------------------------------------
def tree8_leaves() -> list[bytes]:
    return [bytes.fromhex(h) for h in TREE8["leaf_hashes_hex"]]


def test_tree8_leaf_hashes() -> None:
    inputs = [bytes.fromhex(h) for h in TREE8["leaf_inputs_hex"]]
    assert [merkle.leaf_hash(data) for data in inputs] == tree8_leaves()


def test_tree8_roots_by_size() -> None:
    leaves, store = tree8_leaves(), build_store(tree8_leaves())
    compact = merkle.CompactRange()
    for size, want_hex in enumerate(TREE8["root_hashes_by_size_hex"]):
        want = bytes.fromhex(want_hex)
        assert merkle.root_from_leaf_hashes(leaves[:size]) == want
        assert merkle.root_at(size, Reader(store, size)) == want
        assert compact.size == size
        assert compact.root() == want
        if size < len(leaves):
            compact.append(leaves[size])


def test_tree8_stored_nodes_by_level() -> None:
    want = {
        (int(level), index): bytes.fromhex(h)
        for level, hashes in TREE8["node_hashes_by_level_hex"].items()
        if level != "comment"
        for index, h in enumerate(hashes)
    }
    assert build_store(tree8_leaves()) == want


@pytest.mark.parametrize("case", TREE8.get("single_values", []), ids=lambda c: c["desc"])
def test_tree8_single_values(case: dict[str, str]) -> None:
    want = bytes.fromhex(case["want_hex"])
    if case["op"] == "empty_root":
        assert want == merkle.EMPTY_ROOT
        assert merkle.root_from_leaf_hashes([]) == want
        assert merkle.CompactRange().root() == want
    elif case["op"] == "hash_leaf":
        assert merkle.leaf_hash(bytes.fromhex(case["input_hex"])) == want
    else:
        left, right = bytes.fromhex(case["left_hex"]), bytes.fromhex(case["right_hex"])
        assert merkle.node_hash(left, right) == want


def test_happy_path_vectors_are_what_the_generator_produces() -> None:
    store = build_store(tree8_leaves())
    for path in INCLUSION_FILES:
        v = load(path)
        if path.name == "happy-path.json" and v["treeSize"] <= 8:
            reader = Reader(store, v["treeSize"])
            assert merkle.inclusion_proof(v["leafIdx"], v["treeSize"], reader) == v["proof"]
    for path in CONSISTENCY_FILES:
        v = load(path)
        if path.name == "happy-path.json":
            proof = merkle.consistency_proof(v["size1"], v["size2"], Reader(store, v["size2"]))
            assert proof == v["proof"]


# -- 3. generated proofs against the reference -----------------------------------------------
def test_store_holds_exactly_the_complete_subtrees() -> None:
    want = {
        (level, index): ref_mth(LEAVES[index << level : (index + 1) << level])
        for level in range(MAX.bit_length())
        for index in range(MAX >> level)
    }
    assert want == STORE


def test_roots_agree_at_every_size() -> None:
    compact = merkle.CompactRange()
    for size in range(MAX + 1):
        want = ref_mth(LEAVES[:size])
        assert merkle.root_from_leaf_hashes(LEAVES[:size]) == want
        assert merkle.root_from_leaf_hashes(tuple(LEAVES[:size])) == want
        assert compact.root() == want
        reader = Reader(STORE, size)
        assert merkle.root_at(size, reader) == want
        assert len(reader.calls) == size.bit_count()
        if size < MAX:
            compact.append(LEAVES[size])


@pytest.mark.parametrize("size", [*range(MAX + 1), 2**40 - 1, 2**40, 2**53 - 1])
def test_frontier_is_one_complete_subtree_per_set_bit(size: int) -> None:
    # complete_nodes(0, size) is what the store reads to continue or root the tree.
    nodes = merkle.complete_nodes(0, size)
    levels = [level for level, _ in nodes]
    assert levels == sorted((b for b in range(size.bit_length()) if size >> b & 1), reverse=True)
    start = 0
    for level, index in nodes:
        assert index << level == start  # left to right, no gap, no overlap
        start += 1 << level
    assert start == size


@pytest.mark.parametrize("size", [511, 512, 513, 4095, 4097, 6 * 512 + 7 * 64 + 5 * 8 + 3])
def test_root_of_larger_trees_matches_the_streaming_root(size: int) -> None:
    # Several passes of root_from_leaf_hashes, each leaving a partial group at the right edge.
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    compact = merkle.CompactRange()
    for leaf in leaves:
        compact.append(leaf)
    assert merkle.root_from_leaf_hashes(leaves) == compact.root() == ref_mth(leaves)


@pytest.mark.parametrize("size", range(MAX + 1))
def test_from_store_continues_the_tree(size: int) -> None:
    reader = Reader(STORE, size)
    compact = merkle.CompactRange.from_store(size, reader)
    assert len(reader.calls) == size.bit_count()
    assert compact.size == size
    assert compact.root() == ref_mth(LEAVES[:size])
    for leaf in LEAVES[size:]:
        for level, index, node in compact.append_with_nodes(leaf):
            assert STORE[level, index] == node
    assert compact.size == MAX
    assert compact.root() == ref_mth(LEAVES)


@SETTINGS
@given(index_and_size)
def test_inclusion_proof_matches_reference_and_verifies(case: tuple[int, int]) -> None:
    index, size = case
    reader = Reader(STORE, size)
    proof = merkle.inclusion_proof(index, size, reader)
    assert proof == ref_path(index, LEAVES[:size])
    assert reader.calls == merkle.nodes_needed_for_inclusion(index, size)
    root = ref_mth(LEAVES[:size])
    merkle.verify_inclusion(LEAVES[index], index, size, proof, root)
    assert merkle.root_from_inclusion_proof(LEAVES[index], index, size, proof) == root
    # One batched fetch then a dict: what the database layer does.
    fetched = {node: STORE[node] for node in merkle.nodes_needed_for_inclusion(index, size)}
    assert merkle.inclusion_proof(index, size, lambda lv, i: fetched[lv, i]) == proof


@SETTINGS
@given(two_sizes)
def test_consistency_proof_matches_reference_and_verifies(case: tuple[int, int]) -> None:
    size1, size2 = case
    reader = Reader(STORE, size2)
    proof = merkle.consistency_proof(size1, size2, reader)
    assert proof == ref_subproof(size1, LEAVES[:size2], True)
    assert reader.calls == merkle.nodes_needed_for_consistency(size1, size2)
    root1, root2 = ref_mth(LEAVES[:size1]), ref_mth(LEAVES[:size2])
    merkle.verify_consistency(size1, size2, proof, root1, root2)


@SETTINGS
@given(st.integers(1, MAX), st.data())
def test_subtree_root_matches_reference(count: int, data: st.DataObject) -> None:
    align = 1 << (count - 1).bit_length()
    start = align * data.draw(st.integers(0, (MAX - count) // align))
    reader = Reader(STORE, start + count)
    got = merkle.subtree_root(start, start + count, reader)
    assert got == ref_mth(LEAVES[start : start + count])
    assert len(reader.calls) == count.bit_count()


@pytest.mark.parametrize(("start", "end"), [(1, 3), (2, 5), (4, 9), (0, 0), (3, 2), (-1, 1)])
def test_subtree_root_refuses_ranges_that_are_not_subtrees(start: int, end: int) -> None:
    rejected(merkle.subtree_root, start, end, Reader(STORE, MAX))


@pytest.mark.parametrize(
    "call",
    [
        lambda: merkle.inclusion_proof(5, 5, Reader(STORE, 5)),
        lambda: merkle.inclusion_proof(-1, 5, Reader(STORE, 5)),
        lambda: merkle.inclusion_proof(0, 0, Reader(STORE, 0)),
        lambda: merkle.nodes_needed_for_inclusion(2**64 - 1, 8),
        lambda: merkle.consistency_proof(0, 5, Reader(STORE, 5)),
        lambda: merkle.consistency_proof(6, 5, Reader(STORE, 5)),
        lambda: merkle.nodes_needed_for_consistency(0, 0),
        lambda: merkle.root_at(-1, Reader(STORE, 0)),
        lambda: merkle.CompactRange.from_store(-1, Reader(STORE, 0)),
        lambda: merkle.CompactRange().append(b"short"),
    ],
)
def test_bad_requests_raise_proof_error(call: Callable[[], object]) -> None:
    rejected(call)


def test_equal_sizes_have_an_empty_consistency_proof() -> None:
    assert merkle.consistency_proof(7, 7, Reader(STORE, 7)) == []
    assert merkle.nodes_needed_for_consistency(7, 7) == []
    merkle.verify_consistency(7, 7, [], ref_mth(LEAVES[:7]), ref_mth(LEAVES[:7]))


@pytest.fixture(scope="module")
def big_store() -> dict[Node, bytes]:
    return build_store([merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(100_000)])


BIG_SIZES = [100_000, 99_999, 65_536, 65_537, 65_535, 43_691, 2]


@pytest.mark.parametrize("size", BIG_SIZES)
def test_proofs_read_logarithmically_many_nodes(big_store: dict[Node, bytes], size: int) -> None:
    bound = 2 * size.bit_length()
    root_reader = Reader(big_store, size)
    root = merkle.root_at(size, root_reader)
    assert len(root_reader.calls) == size.bit_count()
    rng = random.Random(size)
    for index in {0, 1, size // 2, size - 2, size - 1, rng.randrange(size)}:
        reader = Reader(big_store, size)
        proof = merkle.inclusion_proof(index, size, reader)
        assert len(reader.calls) < 200
        assert len(reader.calls) <= bound
        merkle.verify_inclusion(big_store[0, index], index, size, proof, root)
    for size1 in {1, 2, size // 2, size - 1, size, rng.randrange(1, size + 1)} - {0}:
        reader = Reader(big_store, size)
        proof = merkle.consistency_proof(size1, size, reader)
        assert len(reader.calls) < 200
        assert len(reader.calls) <= bound
        old_root = merkle.root_at(size1, Reader(big_store, size1))
        merkle.verify_consistency(size1, size, proof, old_root, root)


# -- 4. tampering ----------------------------------------------------------------------------
def inclusion_case(index: int, size: int) -> tuple[bytes, int, int, list[bytes], bytes]:
    proof = merkle.inclusion_proof(index, size, Reader(STORE, size))
    return LEAVES[index], index, size, proof, ref_mth(LEAVES[:size])


def consistency_case(size1: int, size2: int) -> tuple[int, int, list[bytes], bytes, bytes]:
    proof = merkle.consistency_proof(size1, size2, Reader(STORE, size2))
    return size1, size2, proof, ref_mth(LEAVES[:size1]), ref_mth(LEAVES[:size2])


@pytest.mark.parametrize(("index", "size"), [(0, 1), (5, 8), (123, 300), (298, 299), (255, 257)])
def test_every_bit_flip_in_an_inclusion_proof_is_rejected(index: int, size: int) -> None:
    leaf, _, _, proof, root = inclusion_case(index, size)
    for bit in range(8 * merkle.HASH_SIZE):
        rejected(merkle.verify_inclusion, flip(leaf, bit), index, size, proof, root)
        rejected(merkle.verify_inclusion, leaf, index, size, proof, flip(root, bit))
        for position in range(len(proof)):
            bad = [*proof[:position], flip(proof[position], bit), *proof[position + 1 :]]
            error = rejected(merkle.verify_inclusion, leaf, index, size, bad, root)
            assert error.expected == root.hex()


@pytest.mark.parametrize(("size1", "size2"), [(1, 8), (6, 8), (2, 5), (100, 300), (256, 257)])
def test_every_bit_flip_in_a_consistency_proof_is_rejected(size1: int, size2: int) -> None:
    _, _, proof, root1, root2 = consistency_case(size1, size2)
    for bit in range(8 * merkle.HASH_SIZE):
        for r1, r2 in ((flip(root1, bit), root2), (root1, flip(root2, bit))):
            rejected(merkle.verify_consistency, size1, size2, proof, r1, r2)
        for position in range(len(proof)):
            bad = [*proof[:position], flip(proof[position], bit), *proof[position + 1 :]]
            rejected(merkle.verify_consistency, size1, size2, bad, root1, root2)


@SETTINGS
@given(index_and_size)
def test_malformed_inclusion_proofs_are_rejected(case: tuple[int, int]) -> None:
    leaf, index, size, proof, root = inclusion_case(*case)
    for bad in (proof[:-1], [*proof, root], [root, *proof], [*proof, b""]):
        if bad != proof:
            rejected(merkle.verify_inclusion, leaf, index, size, bad, root)
    for position in range(len(proof)):
        short = [*proof[:position], proof[position][:-1], *proof[position + 1 :]]
        error = rejected(merkle.verify_inclusion, leaf, index, size, short, root)
        assert (error.expected, error.found) == (32, 31)
    rejected(merkle.verify_inclusion, leaf[:-1], index, size, proof, root)
    rejected(merkle.verify_inclusion, leaf, index, size, proof, root + b"\x00")
    for index2 in {index - 1, index + 1, index ^ 2, index + 2**64, 2**64 - 1} - {index}:
        rejected(merkle.verify_inclusion, leaf, index2, size, proof, root)


@SETTINGS
@given(index_and_size, index_and_size)
def test_inclusion_proof_only_verifies_for_its_own_index_and_size(
    case: tuple[int, int], claim: tuple[int, int]
) -> None:
    # The claimed position comes with the honest root of the claimed size, so the proof is
    # accepted only where it really is that position's proof.
    leaf, _, _, proof, _ = inclusion_case(*case)
    index2, size2 = claim
    root2 = ref_mth(LEAVES[:size2])
    if leaf == LEAVES[index2] and proof == ref_path(index2, LEAVES[:size2]):
        merkle.verify_inclusion(leaf, index2, size2, proof, root2)
    else:
        rejected(merkle.verify_inclusion, leaf, index2, size2, proof, root2)


def test_a_proof_does_not_bind_the_tree_size_by_itself() -> None:
    # RFC 6962 as specified: leaf 0 of a 3-leaf tree and of a 4-leaf tree have proofs of the same
    # shape, so the 3-leaf proof and root also pass as "size 4". The signed checkpoint is what
    # ties a root to its size; callers must take both from it.
    leaf, index, _, proof, root = inclusion_case(0, 3)
    merkle.verify_inclusion(leaf, index, 4, proof, root)
    rejected(merkle.verify_inclusion, leaf, index, 6, proof, root)


@SETTINGS
@given(two_sizes, two_sizes)
def test_consistency_proof_only_verifies_for_its_own_sizes(
    case: tuple[int, int], claim: tuple[int, int]
) -> None:
    proof = consistency_case(*case)[2]
    size1, size2 = claim
    honest1, honest2 = ref_mth(LEAVES[:size1]), ref_mth(LEAVES[:size2])
    if proof == ref_subproof(size1, LEAVES[:size2], True):
        merkle.verify_consistency(size1, size2, proof, honest1, honest2)
    else:
        rejected(merkle.verify_consistency, size1, size2, proof, honest1, honest2)


@SETTINGS
@given(two_sizes)
def test_malformed_consistency_proofs_are_rejected(case: tuple[int, int]) -> None:
    size1, size2, proof, root1, root2 = consistency_case(*case)
    variants = [proof[:-1], [*proof, root1], [root2, *proof], [*proof[:1], *proof]]
    for bad in variants:
        if bad != proof:
            rejected(merkle.verify_consistency, size1, size2, bad, root1, root2)
    for position in range(len(proof)):
        short = [*proof[:position], proof[position][:-1], *proof[position + 1 :]]
        rejected(merkle.verify_consistency, size1, size2, short, root1, root2)
    if size1 != size2:
        rejected(merkle.verify_consistency, size1, size2, proof, root2, root1)
        rejected(merkle.verify_consistency, size1, size2, proof, root1[:-1], root2)
        rejected(merkle.verify_consistency, size1, size2, proof, root1, root2[:-1])
        rejected(merkle.verify_consistency, size1, size2, [], root1, root2)
    rejected(merkle.verify_consistency, 0, size2, proof, merkle.EMPTY_ROOT, root2)
    rejected(merkle.verify_consistency, size2 + 1, size2, proof, root1, root2)


def test_append_matches_append_with_nodes_and_the_root() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(70)]
    plain, with_nodes = merkle.CompactRange(), merkle.CompactRange()
    for size, leaf in enumerate(leaves, start=1):
        plain.append(leaf)
        with_nodes.append_with_nodes(leaf)
        assert plain.size == with_nodes.size == size
        assert plain.root() == with_nodes.root() == merkle.root_from_leaf_hashes(leaves[:size])
