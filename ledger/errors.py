"""Errors raised by the ledger core, each carrying what was expected and what was found.

LedgerError
├── EncodingError          input is not canonical, not allowed in signed data, or malformed
├── KeyFormatError         a key file or key string cannot be read
├── SignatureError         an Ed25519 signature does not verify
├── ProofError             a Merkle inclusion or consistency proof does not verify
├── NoteError              a C2SP signed note is malformed or not signed by a known key
│   ├── MalformedNoteError
│   ├── UnverifiedNoteError
│   └── InvalidNoteSignatureError
├── AuthorityError         a key signed a kind of statement it has no authority for
├── AppendError            the store refused an append (conflict, wrong chain state)
├── BundleError            an exported bundle file is malformed (names file, line, field)
└── VerifierError          the verifier itself failed (a bug, a dead worker): never a verdict
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class: `reason` is a short machine-readable tag, `expected`/`found` the facts."""

    reason: str = "ledger_error"

    def __init__(
        self,
        message: str,
        *,
        expected: object | None = None,
        found: object | None = None,
        index: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.found = found
        self.index = index
        if reason is not None:
            self.reason = reason

    def __str__(self) -> str:
        parts = [self.message]
        if self.index is not None:
            parts.insert(0, f"entry {self.index}:")
        if self.expected is not None or self.found is not None:
            parts.append(f"(expected {self.expected!s}, found {self.found!s})")
        return " ".join(parts)


class EncodingError(LedgerError):
    reason = "encoding"


class KeyFormatError(LedgerError):
    reason = "key_format"


class SignatureError(LedgerError):
    reason = "signature"


class ProofError(LedgerError):
    reason = "proof"


class NoteError(LedgerError):
    reason = "note"


class MalformedNoteError(NoteError):
    reason = "note_malformed"


class UnverifiedNoteError(NoteError):
    reason = "note_unverified"


class InvalidNoteSignatureError(NoteError):
    reason = "note_bad_signature"


class AuthorityError(LedgerError):
    reason = "authority"


class AppendError(LedgerError):
    reason = "append"


class BundleError(LedgerError):
    reason = "bundle"


class VerifierError(LedgerError):
    reason = "internal"
