"""a label set voided by its producer (labels.voided): the entry, reason and time (label_void)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 04:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Sets issued before this version are not voided: empty reason and time, no entry.
    with op.batch_alter_table("labelset", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voided_index", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "voided_reason",
                sqlmodel.sql.sqltypes.AutoString(length=200),
                nullable=False,
                server_default="",
            )
        )
        batch_op.add_column(
            sa.Column(
                "voided_at",
                sqlmodel.sql.sqltypes.AutoString(length=32),
                nullable=False,
                server_default="",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("labelset", schema=None) as batch_op:
        batch_op.drop_column("voided_at")
        batch_op.drop_column("voided_reason")
        batch_op.drop_column("voided_index")
