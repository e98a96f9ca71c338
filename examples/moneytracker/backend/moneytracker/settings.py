"""Settings from the environment, validated once at start. The secret never appears in a repr or log;
it is read from MONEYTRACKER_SECRET_KEY_FILE when that is set (MONEYTRACKER_SECRET_KEY otherwise).

The database: DATABASE_URL is a SQLite URL (sqlite:////data/moneytracker.db) or a PostgreSQL one
without a password (postgresql://moneytracker@postgres:5432/moneytracker); the password comes from
the file DATABASE_PASSWORD_FILE names, so it is in no environment (`docker inspect`) either. The
URL object masks the password wherever it is printed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from moneytracker.release import ConfigError, Release, get_release

MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class Settings:
    database_url: URL
    release: Release
    secret_key: str = field(repr=False, default="")


# The engines the app runs on, by the URL's scheme, and the driver each uses.
DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "postgresql+psycopg": "postgresql+psycopg"}


def read_secret_file(variable: str, path: str) -> str:
    """The content of a secret file, one trailing line break removed (how editors end a file).
    Errors name the variable and the path, never the content."""
    try:
        with open(path, encoding="utf-8") as secret_file:
            return secret_file.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{variable} ({path}) cannot be read: {reason}") from None


def database_url() -> URL:
    """DATABASE_URL as a SQLAlchemy URL, with the password of DATABASE_PASSWORD_FILE for PostgreSQL."""
    raw = os.environ.get("DATABASE_URL", "").strip()
    if not raw:
        raise ConfigError(
            "DATABASE_URL is not set (expected e.g. sqlite:////data/moneytracker.db "
            "or postgresql://moneytracker@postgres:5432/moneytracker)"
        )
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError("DATABASE_URL is not a database URL (expected e.g. sqlite:////data/moneytracker.db)") from None
    if url.drivername not in DRIVERS:
        raise ConfigError(
            f"DATABASE_URL must be a SQLite or PostgreSQL URL (sqlite:///..., postgresql://...), not {url.drivername}://"
        )
    url = url.set(drivername=DRIVERS[url.drivername])
    if url.get_backend_name() == "sqlite":
        if not raw.startswith("sqlite:///"):
            raise ConfigError("DATABASE_URL must be a SQLite URL such as sqlite:////data/moneytracker.db")
        return url
    if url.password is not None:
        raise ConfigError(
            "DATABASE_URL must not carry the password (it would be visible in `docker inspect`): "
            "put it in a file and name it in DATABASE_PASSWORD_FILE"
        )
    if not url.host or not url.database or not url.username:
        raise ConfigError("DATABASE_URL must name the user, host and database: postgresql://USER@HOST:PORT/DATABASE")
    path = os.environ.get("DATABASE_PASSWORD_FILE", "")
    if not path:
        raise ConfigError("DATABASE_PASSWORD_FILE is not set: PostgreSQL needs the password file's path")
    password = read_secret_file("DATABASE_PASSWORD_FILE", path)
    if not password:
        raise ConfigError(f"DATABASE_PASSWORD_FILE ({path}) is empty")
    return url.set(password=password)


def secret_key() -> str:
    """The secret from the file MONEYTRACKER_SECRET_KEY_FILE names (how the deploy gives it: a
    read-only file only the app's uid can read, so it is not in `docker inspect`), else from
    MONEYTRACKER_SECRET_KEY. Error messages name the variable and the path, never the value."""
    path = os.environ.get("MONEYTRACKER_SECRET_KEY_FILE", "")
    if path:
        source = f"MONEYTRACKER_SECRET_KEY_FILE ({path})"
        value = read_secret_file("MONEYTRACKER_SECRET_KEY_FILE", path)
    else:
        source = "MONEYTRACKER_SECRET_KEY"
        value = os.environ.get("MONEYTRACKER_SECRET_KEY", "")
    if len(value) < MIN_SECRET_LENGTH:
        state = f"is too short ({len(value)} characters)" if value else ("is empty" if path else "is not set")
        raise ConfigError(
            f"{source} {state}: it must be at least {MIN_SECRET_LENGTH} characters "
            "(generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return value


def load_settings(require_secret: bool = True) -> Settings:
    return Settings(
        database_url=database_url(),
        release=get_release(),
        secret_key=secret_key() if require_secret else "",
    )
