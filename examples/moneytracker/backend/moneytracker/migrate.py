"""moneytracker-migrate: show and apply the schema migrations of this release.

  moneytracker-migrate status [--json]   {"current": "0001"|null, "head": "0002", "pending": true|false}
  moneytracker-migrate upgrade           migrate to this release's head; non-zero exit on failure
  moneytracker-migrate current           print the database's revision ("none" when unmigrated)

The deploy runs it in a one-off container: docker compose run --rm --no-deps backend moneytracker-migrate upgrade
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import OperationalError

from moneytracker.db import database_path, make_engine
from moneytracker.release import ConfigError, Release, get_release
from moneytracker.settings import database_url


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "moneytracker:migrations")
    return cfg


def current_revision(url: str) -> str | None:
    """The database's revision; None when the file or the version table does not exist yet.

    Read-only: never creates the database file.
    """
    path = database_path(url)
    if path is not None and not path.exists():
        return None
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def status(url: str, release: Release) -> dict:
    current = current_revision(url)
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    result = {
        "current": current,
        "head": release.head,
        "pending": current != release.head and (current is None or current in known),
        "release": release.version,
    }
    if current is not None and current not in known:
        result["error"] = (
            f"database revision {current} is unknown to release {release.version} "
            "(the database is newer than this image)"
        )
    return result


def upgrade(url: str, release: Release) -> int:
    before = status(url, release)
    if "error" in before:
        print(f"moneytracker-migrate: {before['error']}; refusing to migrate", file=sys.stderr)
        return 1
    if not before["pending"]:
        print(f"database is at {release.head} (head of release {release.version}); nothing to do")
        return 0
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, release.head)
    except Exception as exc:  # report any failure, with the revision it stopped at
        try:
            reached = current_revision(url)
        except Exception:  # the database may be unreadable after a failed migration
            reached = "unknown"
        print(
            f"moneytracker-migrate: upgrade {before['current'] or 'base'} -> {release.head} FAILED "
            f"(database now at {reached or 'base'}): {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    finally:
        engine.dispose()
    print(f"upgraded {before['current'] or 'base'} -> {release.head}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moneytracker-migrate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_status = sub.add_parser("status", help="compare the database's revision with this release's head")
    p_status.add_argument("--json", action="store_true", help="print one JSON object")
    sub.add_parser("upgrade", help="migrate the database to this release's head")
    sub.add_parser("current", help="print the database's revision")
    args = parser.parse_args(argv)
    level = logging.INFO if args.cmd == "upgrade" else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        url, release = database_url(), get_release()
        if args.cmd == "status":
            result = status(url, release)
            if args.json:
                print(json.dumps(result))
            else:
                state = "pending" if result["pending"] else "up to date"
                print(f"current: {result['current'] or 'none'}  head: {result['head']}  ({state})")
                if "error" in result:
                    print(f"error: {result['error']}")
            return 0
        if args.cmd == "current":
            print(current_revision(url) or "none")
            return 0
        return upgrade(url, release)
    except ConfigError as exc:
        print(f"moneytracker-migrate: {exc}", file=sys.stderr)
        return 64
    except OperationalError as exc:  # a database server that does not answer (never the password)
        print(f"moneytracker-migrate: the database does not answer: {exc.orig or exc}", file=sys.stderr)
        return 69


if __name__ == "__main__":
    sys.exit(main())
