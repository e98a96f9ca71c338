"""Engine, connection settings and table definitions (SQLAlchemy Core), for SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    make_url,
)
from sqlalchemy.engine import URL

from moneytracker.release import ConfigError

# Applied on every new DBAPI connection. busy_timeout first, so that switching to WAL waits for
# a concurrent writer instead of failing; foreign_keys is per connection and off by default.
PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def _apply_pragmas(dbapi_connection, _connection_record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def make_engine(url: str | URL) -> Engine:
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _apply_pragmas)
        return engine
    # PostgreSQL: a fixed pool per worker process of DATABASE_POOL_SIZE connections (the deploy
    # sizes the server's max_connections for 2 x workers x that: old and new backend during a
    # rollout), connections checked before use (a restarted server drops them), and bounded waits,
    # so a database that does not answer makes /health/ready say so within seconds, not hang.
    pool_size = os.environ.get("DATABASE_POOL_SIZE", "5")
    if not pool_size.isdigit() or not 1 <= int(pool_size) <= 100:
        raise ConfigError(f"DATABASE_POOL_SIZE must be a whole number from 1 to 100, not {pool_size!r}")
    return create_engine(
        url,
        pool_size=int(pool_size),
        max_overflow=0,
        pool_timeout=5,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5, "application_name": "moneytracker"},
    )


def database_path(url: str | URL) -> Path | None:
    """The database file of a sqlite URL, or None for an in-memory database or a server."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False, server_default=func.current_timestamp()),
)

transactions = Table(
    "transactions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "account_id",
        Integer,
        ForeignKey("accounts.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("amount_cents", BigInteger, nullable=False),
    Column("description", String(200), nullable=False, server_default=""),
    Column("occurred_on", Date, nullable=False),
    Column("created_at", DateTime, nullable=False, server_default=func.current_timestamp()),
    # Added by revision 0002 (release 2.x). Release 1.x never selects or writes it.
    Column("category", String(40), nullable=True),
)
