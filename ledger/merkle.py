"""RFC 6962 Merkle tree core: hashing, streaming roots, proof generation and verification."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ledger.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

# (level, index) -> the stored hash of the complete subtree over leaves
# [index * 2**level, (index + 1) * 2**level); level 0 is the leaf hashes.
GetNode = Callable[[int, int], bytes]

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(_NODE_PREFIX + left + right).digest()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} has the wrong length", expected=HASH_SIZE, found=len(value))


def _check_proof(proof: Sequence[bytes], want: int) -> None:
    if len(proof) != want:
        raise ProofError("wrong proof length", expected=want, found=len(proof))
    for position, entry in enumerate(proof):
        _check_hash(entry, f"proof[{position}]")


def _check_index(index: int, size: int) -> None:
    if not 0 <= index < size:
        raise ProofError(
            "leaf index outside the tree", expected=f"0 <= index < {size}", found=index
        )


def _check_sizes(size1: int, size2: int) -> None:
    # A proof from the empty tree proves nothing, so size1 == 0 is refused even for 0 -> 0, as
    # the reference verifier (transparency-dev/merkle) does.
    if not 0 < size1 <= size2:
        raise ProofError("bad tree sizes", expected="0 < size1 <= size2", found=(size1, size2))


def _check_root(root: bytes, computed: bytes, what: str = "root") -> None:
    if root != computed:
        raise ProofError(
            f"{what} does not match the proof", expected=root.hex(), found=computed.hex()
        )


def _mth(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 section 2.1 as written, for short lists of one or more hashes."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 section 2.1, given the leaf hashes (trusted to be 32 bytes)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    sha, p = _sha256, _NODE_PREFIX
    level: Sequence[bytes] = leaf_hashes
    # Level by level, three levels per pass: one SHA-256 per node is unavoidable, so the cost
    # left to cut is Python's per-node work (list appends, tuple unpacking, loop steps). Checking
    # every leaf hash's length here would add about 8%, so that is left to the callers.
    while (n := len(level)) > 1:
        it = iter(level)
        upper = [
            sha(
                p
                + sha(p + sha(p + a + b).digest() + sha(p + c + d).digest()).digest()
                + sha(p + sha(p + e + f).digest() + sha(p + g + h).digest()).digest()
            ).digest()
            for a, b, c, d, e, f, g, h in zip(it, it, it, it, it, it, it, it, strict=False)
        ]
        # The last group of fewer than 8 is an aligned subtree of its own, so its MTH is what
        # three rounds of pairing, with the odd node carried up, would give.
        if rest := n & 7:
            upper.append(_mth(level[n - rest :]))
        level = upper
    return level[0]


def complete_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The stored complete subtrees covering [start, end), left to right, each as large as fits.

    From 0 this is the tree's frontier: one subtree per set bit of `end`, largest first, the
    nodes a root or a CompactRange of that size is built from.
    """
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def range_hashes(start: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The hashes of complete_nodes(start, start + n) for the n leaf hashes that follow
    leaf `start`: what CompactRange.extend needs to take the whole run at once (a verifier
    worker computes them, so the process that keeps the tree hashes log n nodes, not n)."""
    hashes = []
    for level, index in complete_nodes(start, start + len(leaf_hashes)):
        first = (index << level) - start
        hashes.append(root_from_leaf_hashes(leaf_hashes[first : first + (1 << level)]))
    return hashes


def _check_subtree(start: int, end: int) -> None:
    if not 0 <= start < end:
        raise ProofError(
            "empty or negative leaf range", expected="0 <= start < end", found=(start, end)
        )
    # RFC 6962 only ever splits at a power of two, so a subtree of m leaves starts at a multiple
    # of the smallest power of two >= m; anything else has no RFC 6962 root of its own.
    align = 1 << (end - start - 1).bit_length()
    if start % align:
        raise ProofError(
            "leaf range is not an RFC 6962 subtree", expected=f"start % {align} == 0", found=start
        )


def _fold(hashes: Sequence[bytes]) -> bytes:
    # Right to left, because RFC 6962 nests an incomplete tree's smaller subtrees on the right.
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def subtree_root(start: int, end: int, get_node: GetNode) -> bytes:
    """MTH of leaves [start, end), from the complete subtrees of its binary decomposition."""
    _check_subtree(start, end)
    return _fold([get_node(level, index) for level, index in complete_nodes(start, end)])


def root_at(size: int, get_node: GetNode) -> bytes:
    if size < 0:
        raise ProofError("negative tree size", expected="size >= 0", found=size)
    return EMPTY_ROOT if size == 0 else subtree_root(0, size, get_node)


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots form PATH(index, D[size]) of RFC 6962 section 2.1.1, leaf-up."""
    _check_index(index, size)
    ranges = []
    low, high = 0, size
    while high - low > 1:
        k = 1 << ((high - low - 1).bit_length() - 1)
        if index < low + k:
            ranges.append((low + k, high))
            high = low + k
        else:
            ranges.append((low, low + k))
            low += k
    ranges.reverse()
    return ranges


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots form PROOF(size1, D[size2]) of RFC 6962 section 2.1.2."""
    _check_sizes(size1, size2)
    ranges = []
    low, high, old_root_known = 0, size2, True
    while size1 != high:
        k = 1 << ((high - low - 1).bit_length() - 1)
        if size1 - low <= k:
            ranges.append((low + k, high))
            high = low + k
        else:
            ranges.append((low, low + k))
            low += k
            old_root_known = False
    if not old_root_known:
        ranges.append((low, high))
    ranges.reverse()
    return ranges


def nodes_needed_for_inclusion(index: int, size: int) -> list[tuple[int, int]]:
    return [node for r in _inclusion_ranges(index, size) for node in complete_nodes(*r)]


def nodes_needed_for_consistency(size1: int, size2: int) -> list[tuple[int, int]]:
    return [node for r in _consistency_ranges(size1, size2) for node in complete_nodes(*r)]


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[bytes]:
    # At most one range is an incomplete right edge, so this reads O(log n) stored nodes.
    return [subtree_root(start, end, get_node) for start, end in _inclusion_ranges(index, size)]


def consistency_proof(size1: int, size2: int, get_node: GetNode) -> list[bytes]:
    return [subtree_root(start, end, get_node) for start, end in _consistency_ranges(size1, size2)]


def _decompose_inclusion(index: int, size: int) -> tuple[int, int]:
    """(inner, border): proof entries below the point where the path meets the right edge, and
    on that edge. Only the left siblings above that point appear in the proof."""
    inner = (index ^ (size - 1)).bit_length()
    return inner, (index >> inner).bit_count()


def _chain(seed: bytes, inner: Sequence[bytes], border: Sequence[bytes], index: int) -> bytes:
    # Below the right edge the index bits say which side the sibling is on; on the edge every
    # sibling that appears in the proof is a left one.
    for level, sibling in enumerate(inner):
        seed = node_hash(sibling, seed) if index >> level & 1 else node_hash(seed, sibling)
    for sibling in border:
        seed = node_hash(sibling, seed)
    return seed


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    _check_index(index, size)
    _check_hash(leaf_hash, "leaf hash")
    inner, border = _decompose_inclusion(index, size)
    _check_proof(proof, inner + border)
    return _chain(leaf_hash, proof[:inner], proof[inner:], index)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    _check_hash(root, "root")
    _check_root(root, computed)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    _check_sizes(size1, size2)
    if size1 == size2:
        # Nothing to hash: accept iff the proof is empty and the roots are byte-equal. Lengths are
        # deliberately not checked, to agree with the reference verifier, whose vectors accept
        # two equal 12-byte roots; such a root can never match a real checkpoint's root anyway.
        _check_proof(proof, 0)
        _check_root(root1, root2, "root2")
        return
    _check_hash(root1, "root1")
    _check_hash(root2, "root2")
    # The proof is the inclusion proof of leaf size1 - 1 in the new tree, cut below level
    # `shift`, where the old tree's rightmost complete subtree (size1's lowest set bit) sits.
    inner, border = _decompose_inclusion(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    # That subtree's root is root1 itself when size1 is a power of two, else the first entry.
    first = 0 if size1 == 1 << shift else 1
    _check_proof(proof, first + inner + border)
    seed = root1 if first == 0 else proof[0]
    path, edge = proof[first : first + inner], proof[first + inner :]
    mask = (size1 - 1) >> shift
    # Both roots chain up from the same seed; the old tree ends at size1, so it has no right
    # siblings on the path and skips them.
    hash1 = hash2 = seed
    for level, sibling in enumerate(path):
        if mask >> level & 1:
            hash1 = node_hash(sibling, hash1)
            hash2 = node_hash(sibling, hash2)
        else:
            hash2 = node_hash(hash2, sibling)
    for sibling in edge:
        hash1 = node_hash(sibling, hash1)
        hash2 = node_hash(sibling, hash2)
    _check_root(root1, hash1, "root1")
    _check_root(root2, hash2, "root2")


class CompactRange:
    """The right edge of an append-only tree: one complete-subtree hash per set bit of size."""

    __slots__ = ("_frontier", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._frontier: list[bytes] = []

    @classmethod
    def from_store(cls, size: int, get_node: GetNode) -> CompactRange:
        if size < 0:
            raise ProofError("negative tree size", expected="size >= 0", found=size)
        compact = cls()
        compact._frontier = [get_node(level, index) for level, index in complete_nodes(0, size)]
        compact._size = size
        return compact

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """The complete-subtree hashes covering [0, size), largest first: with the size, all
        that from_store needs to rebuild this range (a monitor keeps them between runs)."""
        return tuple(self._frontier)

    def append(self, leaf_hash: bytes) -> None:
        """append_with_nodes without the list of nodes: the verifier appends every entry."""
        if len(leaf_hash) != HASH_SIZE:
            _check_hash(leaf_hash, "leaf hash")
        index, current, frontier = self._size, leaf_hash, self._frontier
        while index & 1:
            current = _sha256(_NODE_PREFIX + frontier.pop() + current).digest()
            index >>= 1
        frontier.append(current)
        self._size += 1

    def extend(self, count: int, hashes: Sequence[bytes]) -> None:
        """Append `count` leaves given as range_hashes(size, their leaf hashes)."""
        nodes = complete_nodes(self._size, self._size + count)
        if len(hashes) != len(nodes):
            raise ProofError(
                f"{count} leaves after {self._size} are covered by {len(nodes)} subtrees",
                expected=len(nodes),
                found=len(hashes),
            )
        frontier = self._frontier
        for (_, index), current in zip(nodes, hashes, strict=True):
            if len(current) != HASH_SIZE:
                _check_hash(current, "subtree hash")
            # As append does for a leaf: a subtree with an odd index is a right child.
            while index & 1:
                current = _sha256(_NODE_PREFIX + frontier.pop() + current).digest()
                index >>= 1
            frontier.append(current)
        self._size += count

    def append_with_nodes(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash; return every (level, index, hash) node it completes."""
        _check_hash(leaf_hash, "leaf hash")
        index, level, current = self._size, 0, leaf_hash
        completed = [(0, index, current)]
        frontier = self._frontier
        # An odd index is a right child whose left sibling is the last frontier entry.
        while index & 1:
            current = node_hash(frontier.pop(), current)
            index >>= 1
            level += 1
            completed.append((level, index, current))
        frontier.append(current)
        self._size += 1
        return completed

    def root(self) -> bytes:
        return _fold(self._frontier) if self._frontier else EMPTY_ROOT
