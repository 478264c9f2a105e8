"""Alembic environment: migrations run on the connection the caller hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

# Each import registers its tables on SQLModel's metadata, which autogenerate compares.
from ledger import tables  # noqa: F401
from ocop_trace import (  # noqa: F401
    accounts,
    custody,
    label_repair,
    models,
    reports,
    scans,
    throttle,
)
from ocop_trace.api import deps  # noqa: F401

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
