"""Release 2.0.0: an optional category on transactions (indexed; per-category totals).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column: SQLite adds it in place (no table rebuild); existing rows get NULL.
    op.add_column("transactions", sa.Column("category", sa.String(40), nullable=True))
    op.create_index("ix_transactions_category", "transactions", ["category"])


def downgrade() -> None:
    op.drop_index("ix_transactions_category", table_name="transactions")
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("category")
