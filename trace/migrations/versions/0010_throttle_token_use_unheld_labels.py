"""sign-in throttle, token last use, label sets whose serials are not held, report day index

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("blocked_until", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_used_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
    op.create_table(
        "label_set_unheld",
        sa.Column("label_set_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("marked_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.PrimaryKeyConstraint("label_set_id"),
    )
    with op.batch_alter_table("fake_report", schema=None) as batch_op:
        batch_op.create_index("ix_fake_report_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fake_report", schema=None) as batch_op:
        batch_op.drop_index("ix_fake_report_created_at")
    op.drop_table("label_set_unheld")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
    op.drop_table("login_throttle")
