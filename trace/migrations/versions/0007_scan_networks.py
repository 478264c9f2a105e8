"""scans counted per network and day (scan_network) instead of per browser string

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 22:30:00

The old counts hashed the browser string with the network under a daily salt, so they
cannot be carried over: counting starts again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scan_network",
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column("client", sa.String(length=32), nullable=False),
        sa.Column("first_day", sa.String(length=10), nullable=False),
        sa.Column("last_day", sa.String(length=10), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("serial", "client"),
    )
    op.create_index("ix_scan_network_last_day", "scan_network", ["last_day"])
    op.drop_table("scan_count")
    op.drop_table("scan_client")


def downgrade() -> None:
    op.create_table(
        "scan_client",
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column("client", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("serial", "client"),
    )
    op.create_table(
        "scan_count",
        sa.Column("serial", sa.String(length=16), nullable=False),
        sa.Column("scans", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("serial"),
    )
    op.drop_index("ix_scan_network_last_day", "scan_network")
    op.drop_table("scan_network")
