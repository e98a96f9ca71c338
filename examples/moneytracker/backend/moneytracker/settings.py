"""Settings from the environment, validated once at start. The secret never appears in a repr or log."""

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
    value = os.environ.get("MONEYTRACKER_SECRET_KEY", "")
    if len(value) < MIN_SECRET_LENGTH:
        state = "is not set" if not value else f"is too short ({len(value)} characters)"
        raise ConfigError(
            f"MONEYTRACKER_SECRET_KEY {state}: it must be at least {MIN_SECRET_LENGTH} characters "
            "(generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    return value


def load_settings(require_secret: bool = True) -> Settings:
    return Settings(
        database_url=database_url(),
        release=get_release(),
        secret_key=secret_key() if require_secret else "",
    )
