"""Test helpers for witnesses: synthetic logs (no entries, just leaves) and request bodies."""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle
from ledger.note import Checkpoint, NoteSigner, format_checkpoint, sign_note

ORIGIN = "example.com/log"
LOG = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())


class Tree:
    """A synthetic log over the given leaf data, its Merkle nodes kept in a dict."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = list(leaves)
        self.nodes: dict[tuple[int, int], bytes] = {}
        compact = merkle.CompactRange()
        for data in self.leaves:
            for level, index, value in compact.append_with_nodes(merkle.leaf_hash(data)):
                self.nodes[(level, index)] = value

    @classmethod
    def of(cls, size: int, salt: bytes = b"") -> Tree:
        return cls([salt + b"%d" % i for i in range(size)])

    def grown(self, count: int, salt: bytes) -> Tree:
        """This tree with `count` more leaves: two different salts give two forks."""
        start = len(self.leaves)
        return Tree(self.leaves + [salt + b"%d" % i for i in range(start, start + count)])

    def get_node(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]

    def root(self, size: int) -> bytes:
        return merkle.root_at(size, self.get_node)

    def proof(self, old: int, new: int) -> list[bytes]:
        return merkle.consistency_proof(old, new, self.get_node) if 0 < old < new else []

    def text(self, size: int, origin: str = ORIGIN) -> str:
        return format_checkpoint(Checkpoint(origin, size, self.root(size)))

    def note(self, size: int, signer: NoteSigner = LOG, origin: str = ORIGIN) -> str:
        return sign_note(self.text(size, origin), [signer])

    def body(self, old: int, new: int, proof: list[bytes] | None = None) -> bytes:
        return add_checkpoint_body(
            old, self.proof(old, new) if proof is None else proof, self.note(new)
        )


def add_checkpoint_body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + note).encode()
