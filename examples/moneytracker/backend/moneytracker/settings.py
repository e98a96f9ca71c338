"""Settings from the environment, validated once at start. The secret never appears in a repr or log;
it is read from MONEYTRACKER_SECRET_KEY_FILE when that is set (MONEYTRACKER_SECRET_KEY otherwise)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from moneytracker.release import ConfigError, Release, get_release

MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class Settings:
    database_url: str
    release: Release
    secret_key: str = field(repr=False, default="")


def database_url() -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise ConfigError("DATABASE_URL is not set (expected e.g. sqlite:////data/moneytracker.db)")
    if not url.startswith("sqlite:///"):
        raise ConfigError("DATABASE_URL must be a SQLite URL such as sqlite:////data/moneytracker.db")
    return url


def secret_key() -> str:
    """The secret from the file MONEYTRACKER_SECRET_KEY_FILE names (how the deploy gives it: a
    read-only file only the app's uid can read, so it is not in `docker inspect`), else from
    MONEYTRACKER_SECRET_KEY. Error messages name the variable and the path, never the value."""
    path = os.environ.get("MONEYTRACKER_SECRET_KEY_FILE", "")
    if path:
        source = f"MONEYTRACKER_SECRET_KEY_FILE ({path})"
        try:
            with open(path, encoding="utf-8") as secret_file:
                # One trailing line break is how editors end a file; it is not part of the secret.
                value = secret_file.read().rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise ConfigError(f"{source} cannot be read: {reason}") from None
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
