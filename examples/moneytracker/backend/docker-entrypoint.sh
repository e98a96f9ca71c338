#!/usr/bin/env bash
# MoneyTracker backend entrypoint.
#   DATABASE_URL   required (sqlite:////data/moneytracker.db); exit 64 when unset
#   AUTO_MIGRATE   true|false (default false): migrate under a lock before starting. The deploy
#                  keeps it false and runs `moneytracker-migrate upgrade` in a one-off container
#                  after a verified backup instead.
# Works with a read-only root filesystem: it writes nothing but the lock file in /data.
set -euo pipefail

say() { printf 'docker-entrypoint: %s\n' "$*" >&2; }

if [[ -z "${DATABASE_URL:-}" ]]; then
  say "DATABASE_URL is not set; set it to e.g. sqlite:////data/moneytracker.db"
  exit 64
fi

case "${AUTO_MIGRATE:-false}" in
  true)
    lock="${MIGRATE_LOCK_FILE:-/data/.migrate.lock}"
    say "AUTO_MIGRATE=true: moneytracker-migrate upgrade under $lock"
    flock --wait "${MIGRATE_LOCK_TIMEOUT:-300}" "$lock" moneytracker-migrate upgrade
    ;;
  false) ;;
  *)
    say "AUTO_MIGRATE must be true or false, not '${AUTO_MIGRATE}'"
    exit 64
    ;;
esac

exec "$@"
