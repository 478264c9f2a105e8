"""Test helpers: build ledgers by hand (bypassing the store's checks) to feed the verifier."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import text

from ledger import keys, merkle
from ledger.authority import KEY_REGISTERED
from ledger.note import Checkpoint, NoteSigner, format_checkpoint, sign_note
from ledger.statement import GENESIS_PREV_HASH, Statement, make_entry, sign_statement
from ocop_trace.accounts import Principal
from ocop_trace.api import examples
from ocop_trace.service import TraceService
from ocop_trace.settings import Settings

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


# -- the HTTP API, for the API and page tests --------------------------------------------
PASSWORD = "a-long-enough-password"
CLI = Principal(None, "cli", "council")

PRODUCER = {
    "id": "htx-tai-hoan",
    "name": "HTX Tài Hoan",
    "type": "cooperative",
    "registration_no": "DEMO-4700000001",
    "contact": "demo@example.invalid",
    "address_certified": {
        "province": "Bắc Kạn",
        "district": "Na Rì",
        "commune": "Côn Minh",
        "line": "thôn Chè Cọ",
    },
    "address_current": {"province": "Thái Nguyên", "commune": "Côn Minh", "line": "thôn Chè Cọ"},
}
OTHER_PRODUCER = {**PRODUCER, "id": "htx-tan-son", "name": "HTX nông nghiệp sạch Tân Sơn"}
# The API docs' examples (checked against their models there) are the tests' data too.
PRODUCT = {k: v for k, v in examples.PRODUCT.items() if k != "image_url"}
RATING = dict(examples.RATING)
BATCH = {k: v for k, v in examples.BATCH.items() if k != "inputs"}
EVENT = dict(examples.EVENT)


@dataclass
class Api:
    client: TestClient
    service: TraceService
    tokens: dict[str, str]
    settings: Settings

    def as_(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}

    def post(self, path: str, body: Any, role: str | None, **headers: str) -> Any:
        return self.client.post(path, json=body, headers={**self.as_(role), **headers})


def login(client: TestClient, username: str) -> str:
    answer = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def issue_labels(api: Api, count: int, fmt: str = "pdf") -> Any:
    api.post("/api/v1/products", PRODUCT, "council")
    api.post("/api/v1/ratings", RATING, "council")
    api.post("/api/v1/batches", BATCH, "producer")
    return api.post(
        "/api/v1/batches/mien-2026-001/labels", {"count": count, "format": fmt}, "producer"
    )


def issued_serials(api: Api) -> list[str]:
    with api.service.engine.connect() as conn:
        return list(conn.execute(text("SELECT serial FROM label_serial ORDER BY serial")).scalars())
