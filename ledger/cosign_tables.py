"""SQLModel table of the witnesses' cosignatures of the ledger's checkpoints."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel


class LedgerCosignatureRow(SQLModel, table=True):
    """One witness's cosignature line (tlog-cosignature) of the stored checkpoint of `size`.

    Keyed by size and the witness's Ed25519 public key, so a witness asked twice keeps one
    line per checkpoint; the line alone, appended to that checkpoint's note, verifies.
    """

    __tablename__ = "ledger_cosignature"
    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    witness_key: str = Field(primary_key=True, max_length=64)  # hex of the public key
    witness_name: str = Field(max_length=255)  # the key name in the line
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    line: str = Field(sa_column=Column(Text, nullable=False))  # ends in a newline
    received_at: str = Field(max_length=32)
