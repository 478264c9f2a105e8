"""scan counts rolled up per serial once their network leaves the window (scan_rollup)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scan_rollup",
        sa.Column("serial", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("scans", sa.BigInteger(), nullable=False),
        sa.Column("first_day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.PrimaryKeyConstraint("serial"),
    )


def downgrade() -> None:
    op.drop_table("scan_rollup")
