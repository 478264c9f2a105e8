"""Which key may sign which kind of statement, as recorded by key statements in the ledger.

The root key is pinned in configuration and may sign only `key.registered` and
`key.revoked`, granting anything; only it may register `ledger` and `council` keys. A
registered key may sign the kinds listed in its registration (`kinds`); a key that may
sign `key.registered` can hand out only what its own registration lets it delegate
(`may_grant`), both as kinds and as further grants, so authority never grows by
delegation. A council key can thus register producer keys for
batch statements without being able to sign batches itself. A key is revoked by the root
key or by the key that registered it; revocation takes effect from the next entry on. A
checkpoint of size N counts only when signed by a `ledger` key valid at N
(`checkpoint_verifiers`, `open_checkpoint_note`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ledger.errors import AuthorityError, EncodingError
from ledger.note import (
    Checkpoint,
    NoteVerifier,
    note_key_id,
    note_text,
    open_note,
    parse_checkpoint,
)
from ledger.statement import HEX64, Statement, is_kind

KEY_REGISTERED = "key.registered"
KEY_REVOKED = "key.revoked"
ROOT_KINDS = frozenset({KEY_REGISTERED, KEY_REVOKED})
ROLES = frozenset({"ledger", "council", "producer", "inspector"})
# Printable ASCII without space or '+': a ledger key's name is also its signed-note name.
NAME_PATTERN = re.compile(r"[!-*,-~]{1,64}")
MAX_SUBJECT_CHARS = 200
# Only the root key may create keys with these roles: a ledger key signs checkpoints and a
# council key registers others, so neither may be minted by delegation.
ROOT_ONLY_ROLES = frozenset({"ledger", "council"})


@dataclass(frozen=True, slots=True)
class KeyGrant:
    key_id: str
    role: str
    name: str
    kinds: frozenset[str]
    may_grant: frozenset[str]
    subject: str
    registered_index: int
    registered_by: str
    revoked_index: int | None = None


def grant_from_registration(statement: Statement, index: int) -> KeyGrant:
    """Read and check the body of a key.registered statement."""
    body: dict[str, Any] = statement.body
    key_id, role, name = body.get("key_id"), body.get("role"), body.get("name")
    kinds, may_grant = body.get("kinds"), body.get("may_grant", [])
    subject = body.get("subject", "")
    if type(key_id) is not str or not HEX64.fullmatch(key_id):
        raise EncodingError(
            "key.registered: key_id must be 64 hex digits",
            index=index,
            expected="hex public key",
            found=key_id,
        )
    if role not in ROLES:
        raise EncodingError(
            "key.registered: unknown role", index=index, expected=sorted(ROLES), found=role
        )
    if type(name) is not str or not NAME_PATTERN.fullmatch(name):
        raise EncodingError(
            "key.registered: name must be 1-64 characters without spaces or '+'",
            index=index,
            expected="key name",
            found=name,
        )
    if type(kinds) is not list or not all(is_kind(k) for k in kinds):
        raise EncodingError(
            "key.registered: kinds must be a list of statement kinds",
            index=index,
            expected="list of kinds",
            found=kinds,
        )
    if type(may_grant) is not list or not all(is_kind(k) for k in may_grant):
        raise EncodingError(
            "key.registered: may_grant must be a list of statement kinds",
            index=index,
            expected="list of kinds",
            found=may_grant,
        )
    if type(subject) is not str or len(subject) > MAX_SUBJECT_CHARS:
        raise EncodingError(
            "key.registered: subject must be a string",
            index=index,
            expected=f"string of at most {MAX_SUBJECT_CHARS} characters",
            found=str(subject)[:40],
        )
    return KeyGrant(
        key_id,
        str(role),
        name,
        frozenset(kinds),
        frozenset(may_grant),
        subject,
        index,
        statement.key_id,
    )


class KeyRegistry:
    """The authority state after some prefix of the ledger; `apply` advances it by one entry."""

    def __init__(self, root_key_id: str, grants: dict[str, KeyGrant] | None = None) -> None:
        self.root_key_id = root_key_id
        self.grants: dict[str, KeyGrant] = dict(grants or {})

    def check(self, statement: Statement, index: int) -> None:
        """Raise AuthorityError unless the signer may sign this kind at this index."""
        kinds = self._kinds_of(statement.key_id, statement.kind, index)
        if statement.kind not in kinds:
            raise AuthorityError(
                f"key {statement.key_id[:16]}… has no authority for {statement.kind}",
                index=index,
                expected=f"a key allowed to sign {statement.kind}",
                found=f"key allowed {sorted(kinds)}",
            )
        if statement.kind == KEY_REGISTERED:
            grant = grant_from_registration(statement, index)
            if grant.key_id in self.grants or grant.key_id == self.root_key_id:
                raise AuthorityError(
                    "key is already registered",
                    index=index,
                    expected="a new key",
                    found=grant.key_id[:16] + "…",
                )
            if statement.key_id != self.root_key_id:
                if grant.role in ROOT_ONLY_ROLES:
                    raise AuthorityError(
                        f"only the root key may register a {grant.role} key",
                        index=index,
                        expected="a key registered by the root key",
                        found=f"registration signed by {statement.key_id[:16]}…",
                    )
                may_grant = self.grants[statement.key_id].may_grant
                asked = grant.kinds | grant.may_grant
                if not asked <= may_grant:
                    raise AuthorityError(
                        "a key cannot hand out kinds its own registration does not let it grant",
                        index=index,
                        expected=f"a subset of {sorted(may_grant)}",
                        found=sorted(asked - may_grant),
                    )
        elif statement.kind == KEY_REVOKED:
            target = statement.body.get("key_id")
            existing = self.grants.get(target) if type(target) is str else None
            if existing is None or existing.revoked_index is not None:
                raise AuthorityError(
                    "only a registered, unrevoked key can be revoked",
                    index=index,
                    expected="a registered key",
                    found=target,
                )
            if statement.key_id not in (self.root_key_id, existing.registered_by):
                raise AuthorityError(
                    "a key can be revoked only by the root key or the key that registered it",
                    index=index,
                    expected=f"the root key or {existing.registered_by[:16]}…",
                    found=f"{statement.key_id[:16]}…",
                )

    def _kinds_of(self, key_id: str, kind: str, index: int) -> frozenset[str]:
        if key_id == self.root_key_id:
            return ROOT_KINDS
        grant = self.grants.get(key_id)
        if grant is None:
            raise AuthorityError(
                f"{kind} signed by an unregistered key",
                index=index,
                expected="a key registered earlier in the ledger",
                found=key_id[:16] + "…",
            )
        if grant.revoked_index is not None:
            raise AuthorityError(
                f"{kind} signed by a revoked key",
                index=index,
                expected=f"a key valid at entry {index}",
                found=f"key revoked at entry {grant.revoked_index}",
            )
        return grant.kinds

    def apply(self, statement: Statement, index: int) -> KeyGrant | None:
        """Record the effect of an already-checked statement; returns the changed grant."""
        if statement.kind == KEY_REGISTERED:
            grant = grant_from_registration(statement, index)
        elif statement.kind == KEY_REVOKED:
            old = self.grants[statement.body["key_id"]]
            grant = dataclasses.replace(old, revoked_index=index)
        else:
            return None
        self.grants[grant.key_id] = grant
        return grant

    def check_and_apply(self, statement: Statement, index: int) -> KeyGrant | None:
        self.check(statement, index)
        return self.apply(statement, index)


def checkpoint_verifiers(grants: Iterable[KeyGrant], size: int) -> list[NoteVerifier]:
    """The note verifiers of the ledger keys valid for a checkpoint of `size` entries.

    A key counts when its registration lies inside the checkpointed tree (index < size) and
    it was not revoked there (no revocation at an index < size): a checkpoint signed before
    its key was revoked stays valid, one signed after does not.
    """
    return [
        NoteVerifier(g.name, note_key_id(g.name, bytes.fromhex(g.key_id)), bytes.fromhex(g.key_id))
        for g in grants
        if g.role == "ledger"
        and g.registered_index < size
        and (g.revoked_index is None or g.revoked_index >= size)
    ]


def open_checkpoint_note(note: str, grants: Iterable[KeyGrant]) -> Checkpoint:
    """The checkpoint in `note`, once signed by a ledger key valid at its size.

    `grants` is the registry (every key, revoked ones included, e.g. LedgerStore.grants());
    raises a LedgerError (NoteError, or KeyFormatError for two valid keys whose note ids
    collide) when the note is malformed, has no signature by such a key, or has a bad one.
    """
    cp = parse_checkpoint(note_text(note))
    open_note(note, checkpoint_verifiers(grants, cp.size))
    return cp
