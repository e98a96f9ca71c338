"""Which release this build is, and which schema revision it expects.

One source tree serves every release below. The Docker build passes ``RELEASE``; it is baked into the
image as ``APP_RELEASE`` and the build removes every migration above that release's head
(``python -m moneytracker.release prune RELEASE``), so an image can never migrate further than
the release it claims to be.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """A configuration problem the operator must fix; its message says what to change."""


@dataclass(frozen=True)
class Release:
    version: str
    head: str  # the Alembic revision this release's code needs
    categories: bool  # v2 feature: transaction categories and per-category totals
    never_ready: bool = False  # a test double: /health/ready always answers 503


RELEASES = {
    "1.0.0": Release("1.0.0", head="0001", categories=False),
    "2.0.0": Release("2.0.0", head="0002", categories=True),
    # A patch release: the same schema as 2.0.0, so deploying it needs no migration (the deploy
    # rolls it out beside 2.0.0 with no failed request).
    "2.0.1": Release("2.0.1", head="0002", categories=True),
    # A TEST DOUBLE of a bad patch release: the schema of 2.0.0, but its readiness check never
    # passes, so the deploy's rollout must keep the old backend serving and fail naming the check.
    "2.0.1-unready": Release("2.0.1-unready", head="0002", categories=True, never_ready=True),
    # 0003 is deliberately broken half-way (see migrations/versions/0003_*.py): it exists so the
    # deploy's failed-migration path (restore the backup, start the previous image) can be tested.
    "2.1.0-broken": Release("2.1.0-broken", head="0003", categories=True),
}
DEFAULT_RELEASE = "2.0.0"


def get_release(version: str | None = None) -> Release:
    version = version or os.environ.get("APP_RELEASE") or DEFAULT_RELEASE
    try:
        return RELEASES[version]
    except KeyError:
        raise ConfigError(
            f"APP_RELEASE={version!r} is not a known release (known: {', '.join(RELEASES)})"
        ) from None


def versions_dir() -> Path:
    return Path(__file__).resolve().parent / "migrations" / "versions"


def prune(version: str) -> list[str]:
    """Delete the migration scripts above ``version``'s head; verify what remains. Build time only."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    release = get_release(version)
    cfg = Config()
    cfg.set_main_option("script_location", "moneytracker:migrations")
    script = ScriptDirectory.from_config(cfg)
    keep = {rev.revision for rev in script.iterate_revisions(release.head, "base")}
    dropped = []
    for rev in script.walk_revisions():
        if rev.revision not in keep:
            Path(rev.path).unlink()
            dropped.append(rev.revision)
    shutil.rmtree(versions_dir() / "__pycache__", ignore_errors=True)
    heads = ScriptDirectory.from_config(cfg).get_heads()
    if heads != [release.head]:
        raise SystemExit(f"release {version}: expected single head {release.head}, found {heads}")
    print(f"release {version}: migrations up to {release.head}; dropped: {' '.join(sorted(dropped)) or 'none'}")
    return dropped


if __name__ == "__main__":  # python -m moneytracker.release prune RELEASE
    if len(sys.argv) != 3 or sys.argv[1] != "prune":
        raise SystemExit("usage: python -m moneytracker.release prune RELEASE")
    try:
        prune(sys.argv[2])
    except ConfigError as exc:
        raise SystemExit(f"moneytracker.release: {exc}") from None
