"""Print the worked example of docs/ledger-format.md from fixed keys and times."""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
import textwrap
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import keys, merkle
from ledger.bundle import read_records
from ledger.canonical import canonical_bytes
from ledger.note import (
    Checkpoint,
    NoteSigner,
    format_checkpoint,
    format_verifier_key,
    note_key_id,
    sign_note,
)
from ledger.statement import GENESIS_PREV_HASH, STATEMENT_DOMAIN, make_entry, sign_statement
from ledger.verifier import verify

ORIGIN = "ocop-trace.local/ledger"
ISSUED_AT = "2026-01-05T08:00:00Z"
INTEGRATED_AT = "2026-01-05T08:00:01.250000Z"
EXPORTED_AT = "2026-01-05T08:00:05.000000Z"

ROOT = Ed25519PrivateKey.from_private_bytes(bytes([0x01]) * 32)
LEDGER = Ed25519PrivateKey.from_private_bytes(bytes([0x02]) * 32)
COUNCIL = Ed25519PrivateKey.from_private_bytes(bytes([0x03]) * 32)


def key_hex(key: Ed25519PrivateKey) -> str:
    return keys.key_id(keys.public_bytes(key))


def show(label: str, value: str | bytes) -> None:
    """One labelled value; long hex is wrapped at 64 characters (32 bytes) a line."""
    text = value.hex() if isinstance(value, bytes) else value
    print(f"{label}:")
    if isinstance(value, bytes) and len(text) > 64:
        text = "\n".join(textwrap.wrap(text, 64))
    print(textwrap.indent(text, "  "))


def main() -> None:
    root_id, ledger_id, council_id = key_hex(ROOT), key_hex(LEDGER), key_hex(COUNCIL)
    print("== Keys (seed = 32 copies of one byte) ==")
    show("root key_id (seed 0x01)", root_id)
    show("ledger key_id (seed 0x02)", ledger_id)
    show("council key_id (seed 0x03)", council_id)

    print("\n== Entry 0: the root registers the ledger key ==")
    # The same body as the genesis registration of `ocop-trace init` (no "may_grant").
    genesis = sign_statement(
        "key.registered",
        {
            "key_id": ledger_id,
            "role": "ledger",
            "name": ORIGIN,
            "kinds": [],
            "subject": ORIGIN,
        },
        ROOT,
        ISSUED_AT,
    )
    signing_input = genesis.signing_input()
    show("signing input (text)", signing_input.decode("utf-8"))
    show("signing input (hex)", signing_input)
    show("signature (hex)", genesis.signature())
    show("sig (base64)", genesis.sig)
    entry0 = make_entry(0, GENESIS_PREV_HASH, INTEGRATED_AT, genesis)
    show("entry 0 canonical bytes (UTF-8 text)", entry0.data.decode("utf-8"))
    show("entry 0 hash = SHA-256(entry bytes)", entry0.hash)
    leaf0 = merkle.leaf_hash(entry0.data)
    show("entry 0 leaf hash = SHA-256(0x00 || entry bytes)", leaf0)

    print("\n== Entry 1: the root registers a council key ==")
    council = sign_statement(
        "key.registered",
        {
            "key_id": council_id,
            "role": "council",
            "name": "council",
            "kinds": ["key.registered", "rating.recorded"],
            "may_grant": ["batch.registered"],
            "subject": "OCOP council",
        },
        ROOT,
        ISSUED_AT,
    )
    show("signing input (hex)", council.signing_input())
    show("sig (base64)", council.sig)
    entry1 = make_entry(1, entry0.hash.hex(), INTEGRATED_AT, council)
    show("entry 1 canonical bytes (UTF-8 text)", entry1.data.decode("utf-8"))
    show("entry 1 hash", entry1.hash)
    leaf1 = merkle.leaf_hash(entry1.data)
    show("entry 1 leaf hash", leaf1)

    print("\n== Merkle tree of size 2 ==")
    root = merkle.root_from_leaf_hashes([leaf0, leaf1])
    show("root = SHA-256(0x01 || leaf0 || leaf1)", root)
    show("root (base64)", base64.b64encode(root).decode("ascii"))
    show("root of size 1 (= leaf0)", merkle.root_from_leaf_hashes([leaf0]))

    print("\n== Checkpoint of size 2, signed by the ledger key ==")
    signer = NoteSigner(ORIGIN, LEDGER)
    public = keys.public_bytes(LEDGER)
    show("note key id = SHA-256(name || 0x0a || 0x01 || public)[:4]", f"{signer.key_id:08x}")
    show("verifier key", format_verifier_key(ORIGIN, public))
    body = format_checkpoint(Checkpoint(ORIGIN, 2, root))
    note = sign_note(body, [signer])
    show("checkpoint body (the signed message)", body)
    signature_line = note.rsplit("\n", 2)[-2]
    raw = base64.b64decode(signature_line.split(" ")[-1])
    show("signature line base64 decoded: key id || signature (hex)", raw)
    print("signed note (exact text; the last line ends in a newline):")
    print(textwrap.indent(note, "  "), end="")

    print("\n== Bundle file holding both entries and the checkpoint ==")
    header = {
        "exported_at": EXPORTED_AT,
        "format": "ocop-trace-bundle/1",
        "origin": ORIGIN,
        "root_key_id": root_id,
        "size": 2,
    }
    lines = [
        json.dumps(header, sort_keys=True).encode("utf-8"),
        entry0.data,
        entry1.data,
        json.dumps({"checkpoint": note}, ensure_ascii=False).encode("utf-8"),
    ]
    bundle = b"".join(line + b"\n" for line in lines)
    print(textwrap.indent(bundle.decode("utf-8"), "  "), end="")

    # Self-checks: the same values from first principles, and the library verifier agrees.
    assert hashlib.sha256(entry0.data).digest() == entry0.hash
    assert hashlib.sha256(b"\x00" + entry1.data).digest() == leaf1
    assert hashlib.sha256(b"\x01" + leaf0 + leaf1).digest() == root
    assert json.loads(entry1.data)["prev_hash"] == entry0.hash.hex()
    for statement, entry in ((genesis, entry0), (council, entry1)):
        # The signing input cut from the canonical bytes equals a fresh encoding without sig.
        fresh = STATEMENT_DOMAIN + canonical_bytes(statement.unsigned())
        assert statement.signing_input() == entry.signing_input() == fresh
        assert canonical_bytes(json.loads(entry.data)) == entry.data
    assert note_key_id(ORIGIN, public) == signer.key_id
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "example.bundle"
        path.write_bytes(bundle)
        report = verify(read_records(path), root_id, workers=1, expected_size=2, origin=ORIGIN)
    assert report.ok, report.failure
    assert report.checkpoints == 1
    assert report.root == root.hex()
    print("\nverifier: ok, 2 entries, 1 checkpoint verified")


if __name__ == "__main__":
    main()
