"""Custodial signing keys: kept encrypted at rest under the service secret, used to sign.

The key an owner signs with is its newest one the ledger registered and has not revoked;
a revoked key's private half is deleted in the transaction of the entry that revokes it.
"""

from __future__ import annotations

import functools
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, Text, delete, insert, select, update
from sqlmodel import Column, Field, SQLModel

from ledger import keys
from ledger.errors import LedgerError
from ledger.store import KEY, one_read, writing
from ocop_trace.errors import Unavailable


class CustodialKey(SQLModel, table=True):
    """A private key the server holds for an owner (the council, a producer, an inspector)."""

    __tablename__ = "custodial_key"
    key_id: str = Field(primary_key=True, max_length=64)
    owner: str = Field(
        index=True, max_length=100, description="council, producer:ID or inspector:USERNAME"
    )
    encrypted_pem: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(max_length=32)


CUSTODIAL = CustodialKey.__table__  # type: ignore[attr-defined]


def _passphrase(secret: str, key_id: str) -> bytes:
    # A per-key passphrase, so equal secrets never yield equal ciphertexts across keys.
    return hashlib.sha256(b"ocop-trace/custody/v1\n" + secret.encode() + key_id.encode()).digest()


class Custody:
    """Creates and opens custodial keys; decrypted keys are cached (decrypting costs ~0.1 s)."""

    def __init__(self, engine: Engine, secret: str) -> None:
        self.engine = engine
        self._secret = secret
        self._open = functools.lru_cache(maxsize=256)(self._decrypt)

    def keep(self, conn: Connection, owner: str, key: Ed25519PrivateKey, created_at: str) -> None:
        """Store a key for `owner`, encrypted, in the caller's transaction (the one that
        appends the statement registering it)."""
        key_id = keys.key_id(keys.public_bytes(key))
        pem = keys.private_key_to_pem(key, _passphrase(self._secret, key_id))
        conn.execute(
            insert(CUSTODIAL).values(
                key_id=key_id, owner=owner, encrypted_pem=pem.decode("ascii"), created_at=created_at
            )
        )

    def key_for(self, owner: str) -> Ed25519PrivateKey | None:
        """The key `owner` signs with: its newest registered, unrevoked one."""
        with one_read(self.engine) as conn:
            row = conn.execute(
                select(CUSTODIAL.c.key_id, CUSTODIAL.c.encrypted_pem)
                .join(KEY, KEY.c.key_id == CUSTODIAL.c.key_id)
                .where(CUSTODIAL.c.owner == owner, KEY.c.revoked_index.is_(None))
                .order_by(KEY.c.registered_index.desc())
                .limit(1)
            ).first()
        return None if row is None else self._open(row.key_id, row.encrypted_pem)

    def key_with_id(self, owner: str, key_id: str) -> Ed25519PrivateKey | None:
        """One of `owner`'s keys by its id (an older key, after a rotation)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CUSTODIAL.c.key_id, CUSTODIAL.c.encrypted_pem).where(
                    CUSTODIAL.c.owner == owner, CUSTODIAL.c.key_id == key_id
                )
            ).first()
        return None if row is None else self._open(row.key_id, row.encrypted_pem)

    @staticmethod
    def forget(conn: Connection, key_id: str) -> None:
        """Delete a revoked key's private half, in the revoking entry's transaction."""
        conn.execute(delete(CUSTODIAL).where(CUSTODIAL.c.key_id == key_id))

    def _decrypt(self, key_id: str, pem: str) -> Ed25519PrivateKey:
        return _open_with(self._secret, key_id, pem)

    def rotate_secret(self, new_secret: str) -> int:
        """Re-encrypt every custodial key under `new_secret`, in one transaction: all are
        re-encrypted or, if any does not open with the current secret, none."""
        with writing(self.engine) as conn:
            rows = conn.execute(select(CUSTODIAL.c.key_id, CUSTODIAL.c.encrypted_pem)).all()
            for row in rows:
                key = _open_with(self._secret, row.key_id, row.encrypted_pem)
                pem = keys.private_key_to_pem(key, _passphrase(new_secret, row.key_id))
                conn.execute(
                    update(CUSTODIAL)
                    .where(CUSTODIAL.c.key_id == row.key_id)
                    .values(encrypted_pem=pem.decode("ascii"))
                )
        return len(rows)


def _open_with(secret: str, key_id: str, pem: str) -> Ed25519PrivateKey:
    try:
        return keys.private_key_from_pem(pem.encode("ascii"), _passphrase(secret, key_id))
    except LedgerError:
        # A configuration fault, not the caller's: say which setting to fix.
        raise Unavailable(
            f"the service cannot open its signing key {key_id[:16]}: TRACE_SECRET_KEY is "
            "not the secret the keys were encrypted with. Set it back, or re-encrypt the "
            "keys with 'ocop-trace rotate-secret'"
        ) from None
