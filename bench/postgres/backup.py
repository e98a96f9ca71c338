"""bench/postgres/backup.py: backup and restore of the same amount of data with the host tool on
SQLite vs on PostgreSQL (pgBackRest), one run.

    python3 bench/postgres/backup.py [--size-gb 1] [--no-write] [--in-container moneytracker-sandbox]
    python3 bench/postgres/backup.py --size-gb 0.1 --no-write      # quick run (~3 min)

It needs `docker compose` (the tool's PostgreSQL restore runs pgBackRest in a one-off container of
the compose service): on a machine without it, --in-container NAME runs it inside a test host
that has it (the sandbox of scripts/sandbox.sh: `scripts/sandbox.sh up`, and the image loaded
there by a deploy with app_database=postgres) and writes BACKUP.md here from what it printed.

In ONE run (stdlib only; the local Docker engine; the image moneytracker/postgres:17 of
examples/moneytracker/build.sh --local-base; everything under one temp dir, one compose project
and its volumes, all removed at the end, also on errors and Ctrl-C):
  1. SQLite: a database shaped like the app's of --size-gb (bench/backup's builder: accounts,
     transactions, the (account_id, occurred_on) index), then `moneytracker-db backup` (online
     copy, integrity_check, compression, checksum: a backup counts once verified) and
     `moneytracker-db restore --yes` of that backup (decompress, checks, swap in), as cron and
     restore.yml run them;
  2. PostgreSQL: a compose project with the service as app_database: postgres deploys it (the same
     image, WAL archived by pgBackRest to a repository directory, zstd), the same tables filled by
     SQL to the same --size-gb (pg_database_size), then `moneytracker-db backup` with
     "engine": "postgres" (pgBackRest full backup + `pgbackrest verify`) and `moneytracker-db
     restore --yes` (to the end of the archived WAL: server stopped, `pgbackrest --delta restore`
     in a one-off container of the service, replay, promote, restart);
  3. prints each time and the PostgreSQL / SQLite ratios, and writes bench/postgres/BACKUP.md.
Both tools run on the same 2-CPU machine, one after the other: the absolute seconds are this
machine's; the ratios in one run are the figure.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOOL = os.path.join(ROOT, "roles", "moneytracker_db", "files", "moneytracker_db.py")
POSTGRES = "moneytracker/postgres:17"
PROJECT = f"mt-pgbackup-{os.getpid()}"
MiB = 1024 * 1024
GiB = 1024 * MiB

COMPOSE = """\
name: {project}
services:
  postgres:
    image: {image}
    read_only: true
    cap_drop: [ALL]
    cap_add: [CHOWN, DAC_OVERRIDE, FOWNER, SETGID, SETUID]
    security_opt: ["no-new-privileges:true"]
    mem_limit: 1g
    shm_size: 128m
    tmpfs: ["/tmp:size=16m", "/var/run/postgresql:size=1m"]
    environment:
      POSTGRES_USER: moneytracker
      POSTGRES_DB: moneytracker
      POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password
      PGBACKREST_STANZA: bench
      PGBACKREST_REPO1_PATH: /var/lib/pgbackrest
      PGBACKREST_REPO1_RETENTION_FULL: "2"
      PGBACKREST_PG1_PATH: /var/lib/postgresql/data
      PGBACKREST_PG1_SOCKET_PATH: /var/run/postgresql
      PGBACKREST_COMPRESS_TYPE: zst
      PGBACKREST_START_FAST: "y"
      PGBACKREST_LOG_LEVEL_CONSOLE: warn
      PGBACKREST_LOG_LEVEL_FILE: "off"
      PGBACKREST_LOCK_PATH: /tmp/pgbackrest
    command: [postgres, -c, shared_buffers=256MB, -c, maintenance_work_mem=128MB, -c, max_wal_size=2GB,
              -c, archive_mode=on, -c, "archive_command=pgbackrest archive-push %p", -c, archive_timeout=60]
    volumes:
      - data:/var/lib/postgresql/data
      - {repo}:/var/lib/pgbackrest
      - {secret}:/run/secrets/postgres_password:ro
volumes:
  data:
"""

PG_SCHEMA = """
CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);
CREATE TABLE accounts (id SERIAL PRIMARY KEY, name VARCHAR(100) NOT NULL UNIQUE,
                       created_at TIMESTAMP NOT NULL DEFAULT now());
CREATE TABLE transactions (id SERIAL PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts (id),
                           amount_cents BIGINT NOT NULL, description VARCHAR(200) NOT NULL DEFAULT '',
                           occurred_on DATE NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT now(),
                           category VARCHAR(40));
INSERT INTO alembic_version VALUES ('0002');
INSERT INTO accounts (name) SELECT 'Account ' || to_char(i, 'FM00000') FROM generate_series(1, 2000) i;
"""
# The same shape as bench/backup's rows: a merchant-like description, a date over eight years.
PG_FILL = """
INSERT INTO transactions (account_id, amount_cents, description, occurred_on, created_at, category)
SELECT 1 + (random() * 1999)::int,
       CASE WHEN random() < 0.1 THEN (random() * 500000)::int ELSE -(random() * 25000)::int END,
       (ARRAY['Rewe', 'Aldi', 'Lidl', 'Edeka', 'Shell', 'Aral', 'Amazon', 'Zalando', 'Ikea', 'Bahn'])[1 + (random() * 9)::int]
         || ' ' || (ARRAY['Markt', 'GmbH', 'Online', 'Filiale', 'Station'])[1 + (random() * 4)::int]
         || ' ' || to_char((random() * 999999)::int, 'FM000000'),
       date '2018-01-01' + (random() * 2900)::int,
       timestamp '2018-01-01' + random() * interval '2900 days',
       (ARRAY['groceries', 'fuel', 'rent', 'travel', 'salary', 'shopping'])[1 + (random() * 5)::int]
FROM generate_series(1, {n})
"""


def log(msg: str) -> None:
    print(f"[pgbackup {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*args: str, timeout: float = 3600, stdin: str | None = None) -> str:
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])}... exit {proc.returncode}: {(proc.stderr or proc.stdout)[-800:]}")
    return proc.stdout.strip()


def tool(config: str, *args: str) -> tuple[float, dict]:
    """moneytracker-db as cron and the playbooks run it; (seconds, its JSON)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, TOOL, *args, "--json", "--config", config], capture_output=True, text=True,
                          timeout=7200, check=False, env=dict(os.environ, MONEYTRACKER_DB_SYSLOG="none"))
    seconds = time.perf_counter() - t0
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        data = {}
    if proc.returncode != 0:
        raise RuntimeError(f"moneytracker-db {' '.join(args)}: exit {proc.returncode}: {proc.stdout[-600:]} {proc.stderr[-600:]}")
    return seconds, data


def builder():
    spec = importlib.util.spec_from_file_location("backup_run", os.path.join(ROOT, "bench", "backup", "run.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bench_sqlite(work: str, size: int) -> dict:
    db = os.path.join(work, "sqlite", "moneytracker.db")
    os.makedirs(os.path.dirname(db))
    built = builder().build_database(db, size)
    log(f"SQLite: built {built['size'] / MiB:.0f} MiB, {built['rows']} rows in {built['seconds']:.0f} s")
    config = os.path.join(work, "sqlite.json")
    with open(config, "w", encoding="utf-8") as fh:
        json.dump({"database": db, "backup_dir": os.path.join(work, "sqlite-backups"),
                   "state_dir": os.path.join(work, "sqlite-state"), "stop_command": ["true"],
                   "start_command": ["true"]}, fh)
    os.sync()
    backup_s, backup = tool(config, "backup")
    log(f"SQLite: backup {backup_s:.1f} s ({backup.get('backup')})")
    restore_s = tool(config, "restore", "--yes")[0]
    log(f"SQLite: restore {restore_s:.1f} s")
    return {"size": built["size"], "rows": built["rows"], "backup_s": backup_s, "restore_s": restore_s,
            "stored": os.path.getsize(backup["backup"])}


def psql(project_dir: str, sql: str) -> str:
    return sh("docker", "compose", "--project-directory", project_dir, "exec", "-T", "-u", "postgres", "postgres",
              "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "moneytracker", stdin=sql)


def bench_postgres(work: str, size: int) -> dict:
    project_dir = os.path.join(work, "compose")
    repo = os.path.join(work, "pgbackrest")
    secret = os.path.join(work, "postgres_password")
    os.makedirs(project_dir)
    os.makedirs(repo)
    os.chown(repo, 10002, 10002)
    with open(secret, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(24))
    os.chmod(secret, 0o444)
    with open(os.path.join(project_dir, "compose.yaml"), "w", encoding="utf-8") as fh:
        fh.write(COMPOSE.format(project=PROJECT, image=POSTGRES, repo=repo, secret=secret))
    sh("docker", "compose", "--project-directory", project_dir, "up", "-d", "--wait", "--wait-timeout", "180")
    sh("docker", "compose", "--project-directory", project_dir, "exec", "-T", "-u", "postgres", "postgres",
       "pgbackrest", "stanza-create")
    t0 = time.perf_counter()
    psql(project_dir, PG_SCHEMA)
    while int(psql(project_dir, "SELECT pg_database_size('moneytracker')")) < 0.8 * size:
        psql(project_dir, PG_FILL.format(n=400_000))
    psql(project_dir, "CREATE INDEX ix_transactions_account_occurred ON transactions (account_id, occurred_on)")
    while int(psql(project_dir, "SELECT pg_database_size('moneytracker')")) < size:
        psql(project_dir, PG_FILL.format(n=100_000))
    psql(project_dir, "CHECKPOINT")
    db_size = int(psql(project_dir, "SELECT pg_database_size('moneytracker')"))
    rows = int(psql(project_dir, "SELECT count(*) FROM transactions"))
    log(f"PostgreSQL: filled {db_size / MiB:.0f} MiB, {rows} rows in {time.perf_counter() - t0:.0f} s")
    config = os.path.join(work, "postgres.json")
    with open(config, "w", encoding="utf-8") as fh:
        json.dump({"engine": "postgres", "backup_dir": os.path.join(work, "pg-backups"),
                   "state_dir": os.path.join(work, "pg-state"), "stop_command": ["true"], "start_command": ["true"],
                   "postgres": {"project": PROJECT, "project_dir": project_dir, "service": "postgres",
                                "stanza": "bench", "repo_dir": repo}}, fh)
    backup_s, backup = tool(config, "backup")
    log(f"PostgreSQL: backup {backup_s:.1f} s ({backup.get('backup')})")
    restore_s, restored = tool(config, "restore", "--yes")
    log(f"PostgreSQL: restore {restore_s:.1f} s")
    after = int(psql(project_dir, "SELECT count(*) FROM transactions"))
    if after != rows:
        raise RuntimeError(f"PostgreSQL restore: {after} rows, {rows} before")
    stored = sum(os.path.getsize(os.path.join(d, f)) for d, _dirs, files in os.walk(os.path.join(repo, "backup"))
                 for f in files)
    return {"size": db_size, "rows": rows, "backup_s": backup_s, "restore_s": restore_s, "stored": stored,
            "restore_phase_s": restored.get("restore_seconds"), "replay_s": restored.get("replay_seconds")}


def cleanup(work: str) -> None:
    project_dir = os.path.join(work, "compose")
    if os.path.exists(os.path.join(project_dir, "compose.yaml")):
        subprocess.run(["docker", "compose", "--project-directory", project_dir, "down", "-v", "--timeout", "10"],
                       capture_output=True, timeout=300, check=False)
    shutil.rmtree(work, ignore_errors=True)


def in_container(args) -> int:
    """This script, bench/backup's builder and the host tool copied into a test host, run there."""
    name, base = args.in_container, "/var/tmp/mt-pgbackup-bench"  # not /tmp: a tmpfs there
    files = ["bench/postgres/backup.py", "bench/backup/run.py", "bench/benchlib.py",
             "roles/moneytracker_db/files/moneytracker_db.py"]
    sh("docker", "exec", name, "sh", "-c", f"rm -rf {base} && mkdir -p " + " ".join(
        f"{base}/{os.path.dirname(f)}" for f in files))
    for f in files:
        sh("docker", "cp", os.path.join(ROOT, f), f"{name}:{base}/{f}")
    proc = subprocess.run(["docker", "exec", name, "python3", f"{base}/bench/postgres/backup.py", "--size-gb",
                           str(args.size_gb), "--workdir", args.workdir, "--no-write"],
                          stdout=subprocess.PIPE, text=True, timeout=4 * 3600, check=False)
    subprocess.run(["docker", "exec", name, "rm", "-rf", base], capture_output=True, check=False)
    print(proc.stdout, end="")
    if proc.returncode == 0 and not args.no_write:
        with open(os.path.join(HERE, "BACKUP.md"), "w", encoding="utf-8") as fh:
            fh.write(proc.stdout.replace("`; ", f" --in-container {name}`; ", 1))
    return proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.0)
    ap.add_argument("--workdir", default="/var/tmp")
    ap.add_argument("--no-write", action="store_true", help="do not rewrite bench/postgres/BACKUP.md")
    ap.add_argument("--in-container", metavar="NAME", help="run inside this test host (it has docker compose)")
    args = ap.parse_args()
    if args.in_container:
        return in_container(args)
    if subprocess.run(["docker", "image", "inspect", POSTGRES], capture_output=True, check=False).returncode:
        log(f"{POSTGRES} missing: run examples/moneytracker/build.sh --local-base")
        return 2
    size = int(args.size_gb * GiB)
    work = tempfile.mkdtemp(prefix="mt-pgbackup-", dir=args.workdir)
    try:
        sqlite = bench_sqlite(work, size)
        postgres = bench_postgres(work, size)
    finally:
        cleanup(work)
    lines = [f"# bench/postgres backup and restore ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"`python3 bench/postgres/backup.py --size-gb {args.size_gb:g}`; {os.cpu_count()} CPUs, kernel "
             f"{platform.release()}; the host tool (moneytracker-db) as cron and the playbooks run it; one run.", "",
             "| engine | database | rows | backup (verified) | restore | stored | backup PG / SQLite | restore PG / SQLite |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in (("SQLite (copy, integrity_check, zstd)", sqlite), ("PostgreSQL (pgBackRest full + verify)", postgres)):
        ratios = (f"{postgres['backup_s'] / sqlite['backup_s']:.2f}x | {postgres['restore_s'] / sqlite['restore_s']:.2f}x |"
                  if r is postgres else " | |")
        lines.append(f"| {name} | {r['size'] / MiB:.0f} MiB | {r['rows']} | {r['backup_s']:.1f} s | {r['restore_s']:.1f} s | "
                     f"{r['stored'] / MiB:.0f} MiB | {ratios}")
    lines += ["", f"PostgreSQL's restore: `pgbackrest restore` {postgres['restore_phase_s']} s, replay, promote and "
              f"restart {postgres['replay_s']} s (the rest: the WAL archived first, the server stopped).", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        with open(os.path.join(HERE, "BACKUP.md"), "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
