"""Print the worked example of docs/witnesses.md from fixed keys and times."""

from __future__ import annotations

import base64
import hashlib
import textwrap

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle
from ledger.cosignature import Cosigner, cosigned_message
from ledger.note import NoteSigner, open_note, sign_note
from ledger.policy import check_quorum, parse_policy
from ledger.tiles import Tile, TileHashes
from ledger.witness import Held, authenticate, parse_add_checkpoint, witness

# The ledger of docs/ledger-format.md, section 9: two entries, a checkpoint of size 2.
ORIGIN = "ocop-trace.local/ledger"
LEDGER = NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes([0x02]) * 32))
LEAF0 = bytes.fromhex("cb69e14a111ebb81e95854fbe3df11ff61d436107cc6ea291571078c22745f91")
LEAF1 = bytes.fromhex("9a331b534fb7d3bb996c9b04733d59144d5f9250dc30881987c7e5bc87d6b327")
TEXT = f"{ORIGIN}\n2\ntR8iW8NYpXskdYFyhc/eoWhdw7rm/ruVsZ58nYDBv7U=\n"
TIME = 1767600005  # 2026-01-05T08:00:05Z
W1 = Cosigner("witness.example/demo", Ed25519PrivateKey.from_private_bytes(bytes([0x04]) * 32))
W2 = Cosigner("witness2.example/demo", Ed25519PrivateKey.from_private_bytes(bytes([0x05]) * 32))


def show(label: str, value: str | bytes) -> None:
    text = value.hex() if isinstance(value, bytes) else value.rstrip("\n")
    if isinstance(value, bytes):
        text = "\n".join(textwrap.wrap(text, 64))
    print(f"{label}:")
    print(textwrap.indent(text, "  ", lambda _: True))


def main() -> None:
    assert merkle.node_hash(LEAF0, LEAF1) == base64.b64decode(TEXT.split("\n")[2])
    print("== The witness key (seed 0x04) ==")
    public = W1.public_key.public
    show("public key", public)
    show("key id = SHA-256(name || 0x0a || 0x04 || public)[:4]", f"{W1.key_id:08x}")
    assert hashlib.sha256(W1.name.encode() + b"\n\x04" + public).digest()[:4].hex() == (
        f"{W1.key_id:08x}"
    )
    show("vkey", W1.public_key.vkey)

    print("\n== The cosignature ==")
    message = cosigned_message(TEXT, TIME)
    show("signed message (text)", message.decode())
    show("signed message (hex)", message)
    line = W1.cosign(TEXT, TIME)
    show("signature line", line)
    show(
        "base64 decoded: key id || u64 time || Ed25519 signature", base64.b64decode(line.split()[2])
    )

    print("\n== add-checkpoint, from size 1 to size 2 ==")
    note = sign_note(TEXT, [LEDGER])
    body = f"old 1\n{base64.b64encode(LEAF1).decode()}\n\n{note}"
    show("request body", body)
    request = parse_add_checkpoint(body.encode())
    log_signed = authenticate(request, {ORIGIN: [LEDGER.verifier()]})
    # The witness holds the tree of size 1, whose root is leaf hash 0.
    held = witness(request, log_signed, Held(1, LEAF0, TIME - 5, "", ""), W1, TIME)
    assert held.cosignature == line
    show("response body (200)", held.cosignature)

    print("\n== A policy: both witnesses, quorum 1 of 2 ==")
    policy = (
        f"witness w1 {W1.public_key.vkey} https://witness.example/demo\n"
        f"witness w2 {W2.public_key.vkey} https://witness2.example/demo\n"
        "group any-one 1 w1 w2\nquorum any-one\n"
    )
    show("policy file", policy)
    cosigned = note + line
    result = check_quorum(cosigned, parse_policy(policy))
    assert result.met
    assert result.cosigned == ("w1",)
    assert open_note(cosigned, [LEDGER.verifier()]).text == TEXT
    show("cosigned checkpoint", cosigned)

    print("\n== Tiles of the tree of size 2 ==")
    tile = Tile(0, 0, 2)
    show("path", tile.path)
    show("contents (leaf hash 0 || leaf hash 1)", LEAF0 + LEAF1)
    tiles = TileHashes(2, lambda path: LEAF0 + LEAF1)
    assert tiles.root() == merkle.node_hash(LEAF0, LEAF1)
    show("index 1234067 at level 3, partial, width 5", Tile(3, 1234067, 5).path)


if __name__ == "__main__":
    main()
