"""Alembic environment: migrations run on the connection the caller hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import ledger.tables  # noqa: F401  (registers the ledger tables on the metadata)
import ocop_trace.accounts
import ocop_trace.api.deps
import ocop_trace.custody
import ocop_trace.models  # noqa: F401

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
