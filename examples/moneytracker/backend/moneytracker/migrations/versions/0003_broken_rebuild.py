"""Release 2.1.0-broken: a DELIBERATELY BROKEN migration, for testing the deploy's failure path.

It pretends to rebuild ``transactions`` into a new table and fails half-way, after real damage:

1. ``CREATE TABLE transactions_v3 AS SELECT ...`` copies the rows (without constraints or indexes);
2. ``DROP TABLE transactions`` drops the original;
3. creating an index on a column that does not exist raises ``OperationalError``.

SQLite DDL is not transactional here: Python's sqlite3 driver opens an implicit transaction only
before INSERT/UPDATE/DELETE, so steps 1 and 2 are committed as they run and survive the failure,
while Alembic's version row (still ``0002``) is never updated. The database then claims revision
0002 but has no ``transactions`` table: release 2.0.0 reports not ready on it, no further
migration can repair it, and only a restore of the pre-migration backup does. The integration
test ``test_broken_release_damages_database`` proves this.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TABLE transactions_v3 AS SELECT id, account_id, amount_cents, description, "
        "occurred_on, created_at, category FROM transactions"
    )
    op.execute("DROP TABLE transactions")
    # The bug: the column is called amount_cents. This raises, leaving steps 1 and 2 in place.
    op.execute("CREATE INDEX ix_transactions_v3_amount ON transactions_v3 (amount)")
    op.execute("ALTER TABLE transactions_v3 RENAME TO transactions")  # never reached


def downgrade() -> None:
    raise RuntimeError("0003 cannot be downgraded: restore the backup taken before the migration")
