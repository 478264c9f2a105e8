"""a batch's quantity as a 64-bit integer: up to 10**12 base units, as its form allows

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 01:30:00

PostgreSQL's INTEGER stops at 2,147,483,647, so a registration of 3,000 tonnes in grams
was a 500 there; SQLite's INTEGER is already 64-bit, so only PostgreSQL changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("batch", "quantity", type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("batch", "quantity", type_=sa.Integer(), existing_nullable=False)
