"""Test helpers for witnesses: synthetic logs (no entries, just leaves) and request bodies."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import uvicorn
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


@contextmanager
def serving(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app over real HTTP from a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port or free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers: a witness that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()
