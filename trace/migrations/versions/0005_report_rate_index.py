"""an index for counting one network's recent fake reports

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 03:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fake_report", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fake_report_client_created_at", ["client", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("fake_report", schema=None) as batch_op:
        batch_op.drop_index("ix_fake_report_client_created_at")
