"""ledger entries indexed by what they are about (batch:ID, rating:N...)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 22:00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject", sa.String(length=200), nullable=True))
        batch_op.create_index("ix_ledger_entry_subject_kind", ["subject", "kind"], unique=False)
    # Entries appended before this revision get their subject from their own bytes.
    from ledger.statement import statement_from_json
    from ocop_trace.kinds import KINDS

    conn = op.get_bind()
    entry = sa.table("ledger_entry", sa.column("idx"), sa.column("data"), sa.column("subject"))
    after = -1
    while True:
        rows = conn.execute(
            sa.select(entry.c.idx, entry.c.data)
            .where(entry.c.idx > after)
            .order_by(entry.c.idx)
            .limit(5000)
        ).all()
        if not rows:
            break
        updates = []
        for idx, data in rows:
            statement = statement_from_json(json.loads(bytes(data))["statement"])
            subject = KINDS.subject_of(statement)
            if subject is not None:
                updates.append({"row": idx, "subject": subject})
        if updates:
            conn.execute(
                entry.update()
                .where(entry.c.idx == sa.bindparam("row"))
                .values(subject=sa.bindparam("subject")),
                updates,
            )
        after = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entry_subject_kind")
        batch_op.drop_column("subject")
