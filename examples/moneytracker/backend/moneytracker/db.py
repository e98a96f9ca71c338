"""Engine, connection pragmas and table definitions (SQLAlchemy Core)."""

from __future__ import annotations

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


def make_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _apply_pragmas)
    return engine


def database_path(url: str) -> Path | None:
    """The database file of a sqlite URL, or None for an in-memory database."""
    database = make_url(url).database
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
