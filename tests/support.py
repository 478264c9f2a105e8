"""Test helpers: build ledgers by hand (bypassing the store's checks) to feed the verifier."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import keys, merkle
from ledger.authority import KEY_REGISTERED
from ledger.note import Checkpoint, NoteSigner, format_checkpoint, sign_note
from ledger.statement import GENESIS_PREV_HASH, Statement, make_entry, sign_statement

ORIGIN = "test.ocop-trace.local/ledger"


def registration(
    signer: Ed25519PrivateKey,
    key: Ed25519PrivateKey,
    role: str,
    kinds: list[str],
    name: str = "key",
    may_grant: list[str] | None = None,
) -> Statement:
    return sign_statement(
        KEY_REGISTERED,
        {
            "key_id": keys.key_id(keys.public_bytes(key)),
            "role": role,
            "name": name,
            "kinds": kinds,
            "may_grant": may_grant or [],
            "subject": name,
        },
        signer,
    )


def entries_for(statements: Sequence[Statement]) -> list[bytes]:
    """Chain statements into entry bytes exactly as an honest ledger would, with no checks."""
    out, prev = [], GENESIS_PREV_HASH
    for index, statement in enumerate(statements):
        entry = make_entry(index, prev, "2026-01-01T00:00:00Z", statement)
        out.append(entry.data)
        prev = entry.hash.hex()
    return out


def checkpoint_note(
    entries: Sequence[bytes],
    ledger_key: Ed25519PrivateKey,
    size: int | None = None,
    root: bytes | None = None,
) -> str:
    size = len(entries) if size is None else size
    if root is None:
        root = merkle.root_from_leaf_hashes([merkle.leaf_hash(e) for e in entries[:size]])
    return sign_note(
        format_checkpoint(Checkpoint(ORIGIN, size, root)), [NoteSigner(ORIGIN, ledger_key)]
    )


def write_bundle(
    path: Path, root_key_id: str, lines: Sequence[bytes | str], size: int | None = None
) -> Path:
    """Write a bundle from entry bytes and checkpoint notes (str), in the order given."""
    entry_count = sum(1 for line in lines if isinstance(line, bytes))
    header = {
        "format": "ocop-trace-bundle/1",
        "origin": ORIGIN,
        "root_key_id": root_key_id,
        "size": entry_count if size is None else size,
        "exported_at": "2026-01-01T00:00:00Z",
    }
    with path.open("wb") as handle:
        handle.write(json.dumps(header).encode() + b"\n")
        for line in lines:
            if isinstance(line, bytes):
                handle.write(line + b"\n")
            else:
                handle.write(json.dumps({"checkpoint": line}).encode() + b"\n")
    return path
