"""SQLModel tables that hold the ledger: entries, Merkle nodes, checkpoints, keys and head."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index, LargeBinary, SmallInteger, Text
from sqlmodel import Field, SQLModel


def insert_sql(table: Any, mark: str) -> str:
    """INSERT of one row of every column, in the table's column order, each value's
    placeholder `mark` ("?" or "%s"): the append's hot path hands the driver its rows as
    they are (SQLAlchemy's per-row processing cost more than the database's own work).
    Table and column names are ours; values travel as parameters."""
    columns = ", ".join(column.name for column in table.columns)
    marks = ", ".join([mark] * len(table.columns))
    return f"INSERT INTO {table.name} ({columns}) VALUES ({marks})"  # noqa: S608


class LedgerEntryRow(SQLModel, table=True):
    """An entry's canonical bytes, with the columns a query needs kept beside them."""

    __tablename__ = "ledger_entry"
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    entry_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    # Unique so that a retried submission of the same signed statement appends nothing.
    statement_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False, unique=True))
    kind: str = Field(max_length=64, index=True)
    key_id: str = Field(max_length=64, index=True)
    integrated_at: str = Field(max_length=32)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # What the statement is about, as the application names it ("batch:mien-2026-001"), so
    # a reader can find every entry about one thing without scanning the ledger.
    subject: str | None = Field(default=None, max_length=200)


class LedgerNodeRow(SQLModel, table=True):
    """Hash of the complete Merkle subtree over leaves [idx·2^level, (idx+1)·2^level)."""

    __tablename__ = "ledger_node"
    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class LedgerCheckpointRow(SQLModel, table=True):
    """A signed checkpoint note; one per tree size, so two processes cannot publish a fork."""

    __tablename__ = "ledger_checkpoint"
    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    created_at: str = Field(max_length=32)


class LedgerKeyRow(SQLModel, table=True):
    """Projection of key.registered / key.revoked entries, read when checking authority."""

    __tablename__ = "ledger_key"
    key_id: str = Field(primary_key=True, max_length=64)
    role: str = Field(max_length=16)
    name: str = Field(max_length=64)
    kinds: str = Field(sa_column=Column(Text, nullable=False))
    may_grant: str = Field(sa_column=Column(Text, nullable=False))
    subject: str = Field(default="", max_length=200)
    registered_index: int = Field(sa_column=Column(BigInteger, nullable=False))
    registered_by: str = Field(max_length=64)
    revoked_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class LedgerHeadRow(SQLModel, table=True):
    """The single row every append locks: the database, not a process, orders appends."""

    __tablename__ = "ledger_head"
    id: int = Field(default=1, primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    head_hash: str = Field(max_length=64)


Index("ix_ledger_checkpoint_created", LedgerCheckpointRow.__table__.c.created_at)  # type: ignore[attr-defined]
Index(
    "ix_ledger_entry_subject_kind",
    LedgerEntryRow.__table__.c.subject,  # type: ignore[attr-defined]
    LedgerEntryRow.__table__.c.kind,  # type: ignore[attr-defined]
)
