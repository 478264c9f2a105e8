"""Custodial signing keys: kept encrypted at rest under the service secret, used to sign."""

from __future__ import annotations

import functools
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, Text, insert, select
from sqlmodel import Column, Field, SQLModel

from ledger import keys


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
        """The newest key held for `owner` (keys are rotated by adding a new one)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CUSTODIAL.c.key_id, CUSTODIAL.c.encrypted_pem)
                .where(CUSTODIAL.c.owner == owner)
                .order_by(CUSTODIAL.c.created_at.desc())
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

    def _decrypt(self, key_id: str, pem: str) -> Ed25519PrivateKey:
        return keys.private_key_from_pem(pem.encode("ascii"), _passphrase(self._secret, key_id))
