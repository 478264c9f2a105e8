"""The tlog-witness add-checkpoint rules as pure functions: parse, authenticate, decide, cosign.

A service runs them in this order: `parse_add_checkpoint` (400), `authenticate` (404, 403),
then, holding its write lock on the origin's state, `witness` (400, 409, 422), saves the new
state and only then answers with the cosignature line.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledger import merkle
from ledger.cosignature import Cosigner
from ledger.errors import LedgerError, MalformedNoteError, NoteError, ProofError
from ledger.note import (
    Checkpoint,
    NoteVerifier,
    open_note,
    parse_checkpoint,
    parse_signature_line,
    split_note,
)

# A checkpoint with the 100 signatures a note may carry is about 10 KiB; 63 proof lines are
# under 3 KiB. Anything near this limit is not a request an honest log sends.
MAX_BODY_BYTES = 64 * 1024
MAX_PROOF_LINES = 63  # the spec's own limit: a client MUST NOT send more
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]{0,19})")
_HASH_B64 = re.compile(r"[A-Za-z0-9+/]{43}=")


class WitnessRefusal(LedgerError):
    """A request the witness answers without a cosignature; `status` is the HTTP status."""

    reason = "witness_refused"

    def __init__(
        self,
        status: int,
        message: str,
        *,
        expected: object = None,
        found: object = None,
        latest_size: int | None = None,
        evidence: bool = False,
    ) -> None:
        super().__init__(message, expected=expected, found=found)
        self.status = status
        self.latest_size = latest_size  # for 409: the size the witness holds
        # True when the log's signature verified but the tree is inconsistent with what the
        # witness holds: signed proof of misbehaviour, worth keeping.
        self.evidence = evidence


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed add-checkpoint body: nothing in it is verified yet."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str
    text: str  # the note's signed text: the checkpoint body a cosignature covers
    checkpoint: Checkpoint


@dataclass(frozen=True)
class Held:
    """What the witness keeps per log: the latest tree it cosigned, when, the checkpoint
    with the log signatures it verified, and its own cosignature line of it."""

    size: int
    root: bytes
    timestamp: int
    log_note: str
    cosignature: str

    @property
    def note(self) -> str:
        """The cosigned checkpoint, as tlog-witness serves it to monitors."""
        return self.log_note + self.cosignature


def _bad(message: str, expected: object, found: object) -> WitnessRefusal:
    return WitnessRefusal(400, message, expected=expected, found=found)


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Split the body into old size, proof and checkpoint; 400 for anything malformed."""
    if len(body) > MAX_BODY_BYTES:
        raise WitnessRefusal(
            413, "request body too large", expected=MAX_BODY_BYTES, found=len(body)
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad("request body is not UTF-8", "UTF-8", f"offset {exc.start}") from None
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise _bad("no empty line before the checkpoint", "old line, proof lines, LF", "none")
    lines = head.split("\n")
    if not (m := _OLD_LINE.fullmatch(lines[0])) or int(m.group(1)) >= 2**64:
        raise _bad(
            "bad old size line", "'old N' with N in decimal, no leading zeros", lines[0][:40]
        )
    proof = lines[1:]
    if len(proof) > MAX_PROOF_LINES:
        raise _bad("too many consistency proof lines", f"<= {MAX_PROOF_LINES}", len(proof))
    hashes = []
    for number, line in enumerate(proof, 2):
        try:
            # A 32-byte hash is exactly 43 characters and '=': anything else is not canonical.
            if not _HASH_B64.fullmatch(line):
                raise ValueError
            value = base64.b64decode(line, validate=True)
        except (ValueError, binascii.Error):
            raise _bad(f"line {number} is not a base64 hash", "44 characters", line[:60]) from None
        if base64.b64encode(value).decode() != line:
            raise _bad(f"line {number} is not canonical base64", "canonical base64", line[:60])
        hashes.append(value)
    try:
        signed_text, _ = split_note(note)
        checkpoint = parse_checkpoint(signed_text)
    except NoteError as exc:
        raise _bad(f"not a checkpoint note: {exc.message}", exc.expected, exc.found) from None
    return AddCheckpoint(int(m.group(1)), tuple(hashes), note, signed_text, checkpoint)


def authenticate(request: AddCheckpoint, logs: Mapping[str, Sequence[NoteVerifier]]) -> str:
    """404 for an origin the witness does not witness; 403 unless a key it trusts for that
    origin signed the note and no such key's signature fails. Returns the checkpoint with
    only the log signatures that verified: what a monitor may fetch from the witness."""
    origin = request.checkpoint.origin
    verifiers = logs.get(origin)
    if not verifiers:
        raise WitnessRefusal(404, "unknown log origin", expected="a configured log", found=origin)
    try:
        opened = open_note(request.note, verifiers)
    except MalformedNoteError as exc:
        raise _bad(f"malformed note: {exc.message}", exc.expected, exc.found) from None
    except NoteError as exc:
        raise WitnessRefusal(
            403,
            f"checkpoint not signed by the log: {exc.message}",
            expected=exc.expected,
            found=exc.found,
        ) from None
    trusted = {(v.name, v.key_id) for v in verifiers}
    _, lines = split_note(request.note)
    kept = [line for line in lines if parse_signature_line(line)[:2] in trusted]
    return opened.text + "\n" + "".join(f"{line}\n" for line in dict.fromkeys(kept))


def check_consistency(request: AddCheckpoint, held: Held | None) -> None:
    """The checks that need the held state, in the spec's order: 400, 409, then 422.

    Together they make it impossible to cosign a smaller tree (the old size must equal the
    held size and may not exceed the new one) or a fork (same size: same root; larger: a
    consistency proof from the held root)."""
    cp, old = request.checkpoint, request.old_size
    held_size = held.size if held else 0
    if old > cp.size:
        raise _bad("old size is larger than the checkpoint", f"<= {cp.size}", old)
    if old != held_size:
        raise WitnessRefusal(
            409,
            "old size is not the size this witness last cosigned",
            expected=held_size,
            found=old,
            latest_size=held_size,
        )
    if cp.size == 0 and cp.root_hash != merkle.EMPTY_ROOT:
        raise WitnessRefusal(
            422,
            "an empty tree must have the empty root",
            expected=merkle.EMPTY_ROOT.hex(),
            found=cp.root_hash.hex(),
            evidence=True,
        )
    if old == 0:
        if request.proof:
            raise WitnessRefusal(
                422,
                "a proof from size 0 must be empty",
                expected=0,
                found=len(request.proof),
                evidence=True,
            )
        return
    assert held is not None  # old == held_size > 0
    try:
        merkle.verify_consistency(old, cp.size, request.proof, held.root, cp.root_hash)
    except ProofError as exc:
        what = "same size, different root" if old == cp.size else "consistency proof fails"
        raise WitnessRefusal(
            422, f"{what}: {exc.message}", expected=exc.expected, found=exc.found, evidence=True
        ) from None


def witness(
    request: AddCheckpoint, log_signed: str, held: Held | None, cosigner: Cosigner, now: int
) -> Held:
    """Check against the held state and cosign; returns the state to save, whose note ends
    in the new cosignature line. The timestamp never goes back, even if the clock does: a
    later cosignature of a larger tree must not carry an earlier time."""
    check_consistency(request, held)
    timestamp = max(now, held.timestamp if held else 1, 1)
    line = cosigner.cosign(request.text, timestamp)
    cp = request.checkpoint
    return Held(cp.size, cp.root_hash, timestamp, log_signed, line)
