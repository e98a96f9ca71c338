"""Alembic environment: runs on the connection moneytracker-migrate passes in (pragmas applied),
or opens DATABASE_URL itself when invoked as plain ``alembic`` during development."""

from alembic import context

from moneytracker.db import make_engine
from moneytracker.settings import database_url


def run(connection) -> None:
    # render_as_batch: SQLite's ALTER TABLE is limited; autogenerate emits batch operations.
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=database_url(), literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
    else:
        engine = make_engine(database_url())
        try:
            with engine.connect() as conn:
                run(conn)
        finally:
            engine.dispose()
