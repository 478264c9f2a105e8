"""the public site: product_search and its full-text index (FTS5 or tsvector), photos

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: an FTS5 table over product_search's rows, kept by triggers inside the same
# transaction as the rows. The text is folded already; the tokenizer folds again anyway.
_SQLITE = (
    "CREATE VIRTUAL TABLE product_fts USING fts5(body, content='product_search', "
    "content_rowid='rowid', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER product_search_ai AFTER INSERT ON product_search BEGIN "
    "INSERT INTO product_fts(rowid, body) VALUES (new.rowid, new.body); END",
    "CREATE TRIGGER product_search_ad AFTER DELETE ON product_search BEGIN "
    "INSERT INTO product_fts(product_fts, rowid, body) VALUES ('delete', old.rowid, old.body); "
    "END",
    "CREATE TRIGGER product_search_au AFTER UPDATE ON product_search BEGIN "
    "INSERT INTO product_fts(product_fts, rowid, body) VALUES ('delete', old.rowid, old.body); "
    "INSERT INTO product_fts(rowid, body) VALUES (new.rowid, new.body); END",
)
# PostgreSQL: the folded text's tsvector, in a GIN index the search's @@ uses.
_POSTGRES = (
    "CREATE INDEX ix_product_search_fts ON product_search USING gin (to_tsvector('simple', body))",
)


def upgrade() -> None:
    op.create_table(
        "product_search",
        sa.Column("product_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("product_id"),
    )
    with op.batch_alter_table("rating", schema=None) as batch_op:
        batch_op.create_index("ix_rating_product_id", ["product_id"], unique=False)
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.create_index("ix_product_name_vi", ["name_vi", "id"], unique=False)
    op.create_table(
        "photo",
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("stored_at", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    bind = op.get_bind()
    for statement in _POSTGRES if bind.dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)
    # Products registered before this revision: indexed now, by the projection's own rule.
    from ocop_trace import search

    for product_id in bind.execute(sa.text("SELECT id FROM product")).scalars().all():
        search.index_product(bind, product_id)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_product_search_fts")
    else:
        for name in ("product_search_ai", "product_search_ad", "product_search_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS product_fts")
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_index("ix_product_name_vi")
    with op.batch_alter_table("rating", schema=None) as batch_op:
        batch_op.drop_index("ix_rating_product_id")
    op.drop_table("photo")
    op.drop_table("product_search")
