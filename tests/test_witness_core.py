"""ledger.witness: the add-checkpoint body and every decision of tlog-witness, without a web."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from witness_support import LOG, ORIGIN, Tree, add_checkpoint_body

from ledger import merkle
from ledger.cosignature import Cosigner
from ledger.note import Checkpoint, NoteSigner, format_checkpoint, sign_note
from ledger.witness import (
    MAX_BODY_BYTES,
    AddCheckpoint,
    Held,
    WitnessRefusal,
    authenticate,
    check_consistency,
    parse_add_checkpoint,
    witness,
)

LOGS = {ORIGIN: [LOG.verifier()]}
WITNESS = Cosigner("witness.example/w1", Ed25519PrivateKey.generate())
TREE = Tree.of(40)
FORK = Tree.of(40, salt=b"fork")


def body(old: int, proof: list[bytes], note: str) -> bytes:
    return add_checkpoint_body(old, proof, note)


def request(
    old: int, new: int, tree: Tree = TREE, proof: list[bytes] | None = None
) -> AddCheckpoint:
    return parse_add_checkpoint(tree.body(old, new, proof))


def held_at(size: int, tree: Tree = TREE) -> Held:
    req = request(0, size, tree)
    return witness(req, authenticate(req, LOGS), None, WITNESS, 1_000)


def refusal(old: int, new: int, held: Held | None, **kwargs: object) -> WitnessRefusal:
    req = request(old, new, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(WitnessRefusal) as info:
        witness(req, authenticate(req, LOGS), held, WITNESS, 2_000)
    return info.value


# -- parsing ----------------------------------------------------------------------------------
def test_a_well_formed_body_parses() -> None:
    note = TREE.note(20)
    req = parse_add_checkpoint(body(10, TREE.proof(10, 20), note))
    assert req.old_size == 10
    assert list(req.proof) == TREE.proof(10, 20)
    assert req.note == note
    assert req.text == format_checkpoint(Checkpoint(ORIGIN, 20, TREE.root(20)))
    assert (req.checkpoint.size, req.checkpoint.root_hash) == (20, TREE.root(20))


NOTE = TREE.note(20)
HASH = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        NOTE.encode(),  # no old line
        b"old 10\n" + NOTE.encode(),  # no empty line after the header
        b"old 010\n\n" + NOTE.encode(),
        b"old -1\n\n" + NOTE.encode(),
        b"old +1\n\n" + NOTE.encode(),
        b"old  10\n\n" + NOTE.encode(),
        b"old 10 \n\n" + NOTE.encode(),
        b"Old 10\n\n" + NOTE.encode(),
        b"old 18446744073709551616\n\n" + NOTE.encode(),  # 2^64
        b"old \xd9\xa1\n\n" + NOTE.encode(),  # an Arabic-Indic digit one
        b"old 10\r\n\r\n" + NOTE.encode(),
        f"old 10\n{HASH[:-1]}\n\n{NOTE}".encode(),  # 43 characters
        f"old 10\n{base64.b64encode(bytes(33)).decode()}\n\n{NOTE}".encode(),
        f"old 10\n{HASH.replace('A', '-', 1)}\n\n{NOTE}".encode(),
        f"old 10\n{HASH[:-2]}B=\n\n{NOTE}".encode(),  # non-canonical last character
        f"old 10\n{HASH} \n\n{NOTE}".encode(),
        ("old 10\n" + f"{HASH}\n" * 64 + "\n" + NOTE).encode(),  # 64 proof lines
        b"old 10\n\n" + b"\xff" + NOTE.encode(),
        b"old 10\n\n" + NOTE.encode()[:-1],  # note without its final newline
        b"old 10\n\nnot a checkpoint\n\n\xe2\x80\x94 x AAAA\n",
        b"old 10\n\n" + NOTE.replace("\n20\n", "\n020\n").encode(),
    ],
)
def test_malformed_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(WitnessRefusal) as info:
        parse_add_checkpoint(raw)
    assert info.value.status == 400


def test_63_proof_lines_parse_and_a_huge_body_is_refused() -> None:
    assert (
        len(parse_add_checkpoint(("old 10\n" + f"{HASH}\n" * 63 + "\n" + NOTE).encode()).proof)
        == 63
    )
    with pytest.raises(WitnessRefusal) as info:
        parse_add_checkpoint(b"old 0\n\n" + b"x" * MAX_BODY_BYTES)
    assert info.value.status == 413


# -- authentication ------------------------------------------------------------------------
def test_unknown_origin_is_404() -> None:
    other = NoteSigner("other.example/log", Ed25519PrivateKey.generate())
    req = parse_add_checkpoint(body(0, [], TREE.note(5, other, "other.example/log")))
    with pytest.raises(WitnessRefusal) as info:
        authenticate(req, LOGS)
    assert info.value.status == 404


def test_a_note_not_signed_by_the_log_is_403() -> None:
    impostor = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    req = parse_add_checkpoint(body(0, [], TREE.note(5, impostor)))
    with pytest.raises(WitnessRefusal) as info:
        authenticate(req, LOGS)
    assert info.value.status == 403


def test_a_bad_signature_by_the_log_key_is_403_even_beside_a_good_one() -> None:
    good = TREE.note(5)
    line = good.splitlines()[-1]
    raw = base64.b64decode(line.split(" ")[2])
    bad = line.split(" ")[0] + " " + line.split(" ")[1] + " "
    bad += base64.b64encode(raw[:4] + bytes([raw[4] ^ 1]) + raw[5:]).decode()
    with pytest.raises(WitnessRefusal) as info:
        authenticate(parse_add_checkpoint(body(0, [], good + bad + "\n")), LOGS)
    assert info.value.status == 403


def test_only_the_log_signatures_are_kept() -> None:
    other = Cosigner("someone.example/w", Ed25519PrivateKey.generate())
    note = TREE.note(5)
    req = parse_add_checkpoint(body(0, [], note + other.cosign(note.split("\n\n")[0] + "\n", 9)))
    assert authenticate(req, LOGS) == note


# -- decisions -------------------------------------------------------------------------------
def test_first_checkpoint_then_growth_are_cosigned() -> None:
    first = held_at(10)
    assert (first.size, first.root, first.timestamp) == (10, TREE.root(10), 1_000)
    assert (
        WITNESS.public_key.verify(
            format_checkpoint(Checkpoint(ORIGIN, 10, TREE.root(10))), first.cosignature
        )
        == 1_000
    )
    req = request(10, 25)
    second = witness(req, authenticate(req, LOGS), first, WITNESS, 5_000)
    assert (second.size, second.root, second.timestamp) == (25, TREE.root(25), 5_000)
    assert second.note == TREE.note(25) + second.cosignature


def test_the_time_never_goes_back() -> None:
    req = request(10, 25)
    later = witness(req, authenticate(req, LOGS), held_at(10), WITNESS, 10)
    assert later.timestamp == 1_000


def test_equal_size_same_root_is_cosigned_again() -> None:
    req = request(10, 10)
    again = witness(req, authenticate(req, LOGS), held_at(10), WITNESS, 3_000)
    assert (again.size, again.root, again.timestamp) == (10, TREE.root(10), 3_000)


def test_equal_size_other_root_is_422() -> None:
    error = refusal(10, 10, held_at(10), tree=FORK)
    assert (error.status, error.evidence) == (422, True)


def test_wrong_old_size_is_409_with_the_held_size() -> None:
    error = refusal(5, 20, held_at(10))
    assert (error.status, error.latest_size) == (409, 10)
    fresh = refusal(10, 20, None)
    assert (fresh.status, fresh.latest_size) == (409, 0)


def test_old_size_zero_when_something_is_held_is_409() -> None:
    assert refusal(0, 20, held_at(10)).latest_size == 10


def test_a_replayed_smaller_checkpoint_is_never_cosigned() -> None:
    held = held_at(20)
    assert refusal(20, 10, held).status == 400  # old > size
    assert refusal(10, 10, held).status == 409
    assert refusal(0, 10, held).status == 409


def test_a_fork_is_422() -> None:
    held = held_at(10)
    # The fork's own proof from 10 to 30, against the honest root of 10.
    error = refusal(10, 30, held, tree=FORK)
    assert (error.status, error.evidence) == (422, True)


@pytest.mark.parametrize("change", ["drop", "flip", "extra", "swap"])
def test_a_bad_proof_is_422(change: str) -> None:
    proof = TREE.proof(10, 30)
    if change == "drop":
        proof = proof[:-1]
    elif change == "flip":
        proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    elif change == "extra":
        proof = [*proof, bytes(32)]
    else:
        proof = proof[::-1]
    assert refusal(10, 30, held_at(10), proof=proof).status == 422


def test_proof_lines_from_size_zero_are_422() -> None:
    assert refusal(0, 10, None, proof=[bytes(32)]).status == 422


def test_the_empty_tree() -> None:
    empty = parse_add_checkpoint(body(0, [], TREE.note(0)))
    held = witness(empty, authenticate(empty, LOGS), None, WITNESS, 7)
    assert (held.size, held.root) == (0, merkle.EMPTY_ROOT)
    wrong = sign_note(format_checkpoint(Checkpoint(ORIGIN, 0, bytes(32))), [LOG])
    req = parse_add_checkpoint(body(0, [], wrong))
    with pytest.raises(WitnessRefusal) as info:
        check_consistency(req, None)
    assert info.value.status == 422
