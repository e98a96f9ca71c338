#!/usr/bin/env bash
# PostgreSQL entrypoint for the MoneyTracker deploy.
#   POSTGRES_USER           the app's role (default moneytracker); it owns POSTGRES_DB
#   POSTGRES_DB             the app's database (default moneytracker)
#   POSTGRES_PASSWORD_FILE  required: the file holding the app role's password (never an env value)
#   PGDATA                  the data directory (the volume)
# Started as root: prepares PGDATA and /var/run/postgresql, reads the password file, then runs
# everything else as `postgres` (setpriv; no capability survives it). First start (empty PGDATA):
# initdb (UTF-8, data checksums, scram-sha-256 for every TCP client), the role and its database.
# Every start: the role's password is set from the file (so a new password in the vault takes
# effect with a restart), through a single-user session on standard input: the password is in no
# command line, environment or log. Any other command (psql, pgbackrest ...) runs as postgres.
set -euo pipefail

say() { printf 'docker-entrypoint: %s\n' "$*" >&2; }
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

: "${PGDATA:=/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-moneytracker}"
POSTGRES_DB="${POSTGRES_DB:-moneytracker}"

if [[ "$(id -u)" != 0 ]]; then
  exec "$@"  # run as a chosen user: nothing to prepare
fi
if [[ "${1:-}" != postgres ]]; then
  exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
fi

for name in POSTGRES_USER POSTGRES_DB; do
  if [[ ! "${!name}" =~ ^[a-z_][a-z0-9_]{0,62}$ ]]; then
    say "$name must be a lower-case SQL identifier (letters, digits, _), not '${!name}'"
    exit 64
  fi
done
if [[ -z "${POSTGRES_PASSWORD_FILE:-}" ]]; then
  say "POSTGRES_PASSWORD_FILE is not set: the app role's password comes from a file, never the environment"
  exit 64
fi
if ! password="$(cat -- "$POSTGRES_PASSWORD_FILE" 2>/dev/null)"; then
  say "POSTGRES_PASSWORD_FILE ($POSTGRES_PASSWORD_FILE) cannot be read"
  exit 64
fi
password="${password%$'\n'}"; password="${password%$'\r'}"
if [[ -z "$password" ]]; then
  say "POSTGRES_PASSWORD_FILE ($POSTGRES_PASSWORD_FILE) is empty"
  exit 64
fi
sql_password="${password//\'/\'\'}"
unset password

install -d -o postgres -g postgres -m 2775 /var/run/postgresql
mkdir -p "$PGDATA"
# Owned by postgres, all of it (a volume first used by an image whose postgres had another uid);
# the same for pgBackRest's repository when it is mounted (PGBACKREST_REPO1_PATH).
for dir in "$PGDATA" ${PGBACKREST_REPO1_PATH:+"$PGBACKREST_REPO1_PATH"}; do
  if [[ -d "$dir" && -n "$(find "$dir" \( ! -user postgres -o ! -group postgres \) -print -quit)" ]]; then
    say "$dir is not owned by postgres ($(id -u postgres)): chown -R"
    chown -R postgres:postgres "$dir"
  fi
done
chmod 0700 "$PGDATA"

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  if [[ -n "$(ls -A "$PGDATA")" ]]; then
    say "$PGDATA is not empty but holds no database cluster (no PG_VERSION): refusing to initialise over it"
    exit 65
  fi
  say "initialising a new database cluster in $PGDATA"
  as_postgres initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
    --data-checksums --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  # Every TCP client authenticates with a scram-sha-256 password (the compose network is the only
  # way in; no port is published). Local (socket) connections: peer, for postgres itself.
  cat > "$PGDATA/pg_hba.conf" <<HBA
# moneytracker: written by the image's entrypoint at initdb
local   all   postgres                 peer
local   all   all                      scram-sha-256
host    all   all       0.0.0.0/0      scram-sha-256
host    all   all       ::/0           scram-sha-256
HBA
  chown postgres:postgres "$PGDATA/pg_hba.conf"
  chmod 0600 "$PGDATA/pg_hba.conf"
  init_sql="CREATE ROLE $POSTGRES_USER LOGIN;
CREATE DATABASE $POSTGRES_DB OWNER $POSTGRES_USER;
"
else
  init_sql=""
fi

# Single-user mode reads one statement per line from standard input; nothing echoes the input.
# Not while a restored data directory waits for its recovery (recovery.signal: single-user mode
# cannot run then); the start after the recovery sets the password (moneytracker-db restore restarts
# the server once recovered for that).
if [[ -e "$PGDATA/recovery.signal" || -e "$PGDATA/standby.signal" ]]; then
  say "a recovery is pending (recovery.signal): the password is set at the start after it"
else
  printf "%sALTER ROLE %s WITH LOGIN PASSWORD '%s';\n" "$init_sql" "$POSTGRES_USER" "$sql_password" \
    | as_postgres postgres --single -D "$PGDATA" -c log_min_messages=fatal -c log_min_error_statement=panic \
        -c exit_on_error=on postgres >/dev/null
  say "role $POSTGRES_USER and database $POSTGRES_DB ready; starting PostgreSQL"
fi
unset sql_password init_sql

exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$@" -D "$PGDATA"
