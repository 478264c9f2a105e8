"""a producer's batches newest first from one index (producer_id, entry_index)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 04:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_batch_producer_recent", "batch", ["producer_id", "entry_index"])
    op.drop_index("ix_batch_producer_id", table_name="batch")  # its leading column covers it


def downgrade() -> None:
    op.create_index("ix_batch_producer_id", "batch", ["producer_id"])
    op.drop_index("ix_batch_producer_recent", table_name="batch")
