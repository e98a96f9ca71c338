"""bench/postgres: the reference backend on SQLite vs on PostgreSQL, same limits, same load, one run.

    python3 bench/postgres/run.py [--duration 15] [--rounds 3] [--concurrency 16] [--workers 1 4] [--no-write]

In ONE run (stdlib only; the local Docker engine; the images of examples/moneytracker/build.sh
--local-base, moneytracker/backend:2.0.0 and moneytracker/postgres:17):
  1. per engine and worker count, a backend container with the deploy's limits and hardening
     (512m, 1.0 CPU, pids 256, read-only root, no capabilities); PostgreSQL beside it with ITS
     deploy settings (512m, 1.0 CPU, settings from the collection's postgres_sizing filter, WAL
     archived to a pgBackRest repository volume, as app_database: postgres runs it) on a network of
     their own; the schema made by moneytracker-migrate upgrade; the same rows seeded;
  2. the SAME bounded closed-loop load against each (bench/footprint's load(): 9 GET
     /api/transactions?account_id=..&limit=100 : 1 POST /api/transactions, keep-alive clients),
     the order of the configurations rotated each round;
  3. prints requests per second and p50/p99 per configuration and the PostgreSQL / SQLite ratios,
     and writes bench/postgres/RESULTS.md.
The load generator runs on the same 2-CPU machine as the servers (and, for PostgreSQL, as the
database server): the absolute numbers are this machine's; the ratios in one run are the figure.
Every container, volume and network it creates is removed at the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
import benchlib  # noqa: E402  pylint: disable=wrong-import-position


def _footprint():
    spec = importlib.util.spec_from_file_location("footprint_run", os.path.join(ROOT, "bench", "footprint", "run.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


fp = _footprint()
BACKEND = "moneytracker/backend:2.0.0"
POSTGRES = "moneytracker/postgres:17"
MEM_LIMIT, CPUS, PIDS = "512m", 1.0, 256
PREFIX = f"mt-pgbench-{os.getpid()}"
LABEL = "org.moneytracker.bench=postgres"
HARDENED = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
            "--memory", MEM_LIMIT, "--memory-swap", MEM_LIMIT, "--cpus", str(CPUS), "--pids-limit", str(PIDS),
            "--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3"]
created: dict[str, list[str]] = {"containers": [], "volumes": [], "networks": [], "dirs": []}


def log(msg: str) -> None:
    print(f"[pgbench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*args: str, timeout: float = 300, env: dict | None = None) -> str:
    return fp.sh(*args, timeout=timeout, env=env)


def sizing(workers: int, pool: int = 5) -> dict:
    """PostgreSQL's settings from the collection's own filter (plugins/filter/sizing.py)."""
    spec = importlib.util.spec_from_file_location("sizing", os.path.join(ROOT, "plugins", "filter", "sizing.py"))
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except ImportError:  # no Ansible here: the filter only needs AnsibleFilterError
        import types
        sys.modules.setdefault("ansible", types.ModuleType("ansible"))
        errors = types.ModuleType("ansible.errors")
        errors.AnsibleFilterError = ValueError
        sys.modules["ansible.errors"] = errors
        spec.loader.exec_module(mod)
    return mod.postgres_sizing(MEM_LIMIT, 2 * workers * pool + 10)


def start_postgres(name: str, workers: int, password_file: str, network: str) -> str:
    s = sizing(workers)
    vol, repo = f"{PREFIX}-{name}-pg", f"{PREFIX}-{name}-repo"
    for v in (vol, repo):
        sh("docker", "volume", "create", "--label", LABEL, v)
        created["volumes"].append(v)
    cid = sh("docker", "run", "-d", "--name", f"{PREFIX}-{name}-pg", "--label", LABEL, "--network", network,
             "--network-alias", "postgres", *HARDENED,
             "--cap-add", "CHOWN", "--cap-add", "DAC_OVERRIDE", "--cap-add", "FOWNER", "--cap-add", "SETGID",
             "--cap-add", "SETUID", "--tmpfs", "/tmp:size=16m", "--tmpfs", "/var/run/postgresql:size=1m",
             "--shm-size", "64m", "-v", f"{vol}:/var/lib/postgresql/data", "-v", f"{repo}:/var/lib/pgbackrest",
             "-v", f"{password_file}:/run/secrets/postgres_password:ro",
             "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/postgres_password", "-e", "PGBACKREST_STANZA=bench",
             "-e", "PGBACKREST_REPO1_PATH=/var/lib/pgbackrest", "-e", "PGBACKREST_PG1_PATH=/var/lib/postgresql/data",
             "-e", "PGBACKREST_LOG_LEVEL_FILE=off", "-e", "PGBACKREST_LOCK_PATH=/tmp/pgbackrest",
             "-e", "PGBACKREST_COMPRESS_TYPE=zst",
             POSTGRES, "postgres", "-c", "listen_addresses=*", "-c", f"max_connections={s['max_connections']}",
             "-c", f"shared_buffers={s['shared_buffers_mb']}MB", "-c", f"effective_cache_size={s['effective_cache_size_mb']}MB",
             "-c", f"maintenance_work_mem={s['maintenance_work_mem_mb']}MB", "-c", "work_mem=4MB",
             "-c", "archive_mode=on", "-c", "archive_command=pgbackrest archive-push %p", "-c", "archive_timeout=60")
    created["containers"].append(cid)
    deadline = time.monotonic() + 120
    while sh("docker", "inspect", "-f", "{{.State.Health.Status}}", cid) != "healthy":
        if time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL did not get healthy: " + subprocess.run(
                ["docker", "logs", "--tail", "20", cid], capture_output=True, text=True, check=False).stderr)
        time.sleep(1)
    sh("docker", "exec", "-u", "postgres", cid, "pgbackrest", "stanza-create")
    return cid


def start(engine: str, workers: int, secret: str, secrets_dir: str) -> dict:
    name = f"{engine}-{workers}"
    env = dict(os.environ, MONEYTRACKER_SECRET_KEY=secret)
    run = ["--label", LABEL, *HARDENED, "--tmpfs", "/tmp:size=64m", "-e", "MONEYTRACKER_SECRET_KEY"]
    if engine == "postgres":
        network = f"{PREFIX}-{name}"
        sh("docker", "network", "create", "--label", LABEL, network)
        created["networks"].append(network)
        start_postgres(name, workers, os.path.join(secrets_dir, "postgres_password"), network)
        run += ["--network", network, "-v", f"{secrets_dir}:/run/secrets:ro",
                "-e", "DATABASE_URL=postgresql://moneytracker@postgres:5432/moneytracker",
                "-e", "DATABASE_PASSWORD_FILE=/run/secrets/postgres_password", "-e", "DATABASE_POOL_SIZE=5"]
    else:
        vol = f"{PREFIX}-{name}"
        sh("docker", "volume", "create", "--label", LABEL, vol)
        created["volumes"].append(vol)
        run += ["-v", f"{vol}:/data", "-e", "DATABASE_URL=sqlite:////data/moneytracker.db"]
    sh("docker", "run", "--rm", *run, "--user", "10001:10001", BACKEND, "moneytracker-migrate", "upgrade", env=env)
    cid = sh("docker", "run", "-d", "--name", f"{PREFIX}-{name}", "--user", "10001:10001", "--no-healthcheck",
             "-e", f"WEB_CONCURRENCY={workers}", *run, BACKEND, env=env)
    created["containers"].append(cid)
    ip = sh("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid)
    if engine == "postgres":  # the bench reaches the backend on the network it shares with PostgreSQL
        ip = sh("docker", "inspect", "-f", "{{(index .NetworkSettings.Networks \"" + network + "\").IPAddress}}", cid)
    fp.wait_ready(cid, ip)
    return {"name": name, "engine": engine, "workers": workers, "id": cid, "ip": ip}


def cleanup() -> None:
    for cid in reversed(created["containers"]):
        subprocess.run(["docker", "rm", "-f", "-v", cid], capture_output=True, timeout=60, check=False)
    for vol in created["volumes"]:
        subprocess.run(["docker", "volume", "rm", "-f", vol], capture_output=True, timeout=60, check=False)
    for net in created["networks"]:
        subprocess.run(["docker", "network", "rm", net], capture_output=True, timeout=60, check=False)
    for d in created["dirs"]:
        subprocess.run(["rm", "-rf", d], capture_output=True, timeout=60, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--seed-rows", type=int, default=300)
    ap.add_argument("--no-write", action="store_true", help="do not rewrite RESULTS.md")
    args = ap.parse_args()
    benchlib.interrupt_on_term()
    for image in (BACKEND, POSTGRES):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode:
            log(f"{image} missing: run examples/moneytracker/build.sh --local-base")
            return 2
    secret = secrets.token_urlsafe(48)
    secrets_dir = sh("mktemp", "-d", "/tmp/mt-pgbench-secrets.XXXXXX")
    created["dirs"].append(secrets_dir)
    with open(os.path.join(secrets_dir, "postgres_password"), "w", encoding="utf-8") as fh:
        fh.write(secrets.token_urlsafe(24))
    os.chown(os.path.join(secrets_dir, "postgres_password"), 10001, 10001)
    os.chmod(os.path.join(secrets_dir, "postgres_password"), 0o400)
    os.chown(secrets_dir, 0, 10001)
    os.chmod(secrets_dir, 0o750)
    results: dict[str, list[dict]] = {}
    try:
        configs = []
        for workers in args.workers:
            for engine in ("sqlite", "postgres"):
                c = start(engine, workers, secret, secrets_dir)
                c["account"] = fp.seed(c["ip"], args.seed_rows)
                fp.load(c, c["account"], 3, args.concurrency)  # warm-up
                configs.append(c)
                log(f"ready: {c['name']}")
        for r in range(args.rounds):
            order = configs[r % len(configs):] + configs[:r % len(configs)]
            for c in order:
                res = fp.load(c, c["account"], args.duration, args.concurrency)
                results.setdefault(c["name"], []).append(res)
                log(f"round {r + 1} {c['name']}: {res['rps']:.0f} req/s p99 {res['p99_ms']:.1f} ms errors {res['errors']}")
    finally:
        cleanup()

    def med(name, key):
        return statistics.median(x[key] for x in results[name])

    lines = [f"# bench/postgres results ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"`python3 bench/postgres/run.py --duration {args.duration:g} --rounds {args.rounds} --concurrency "
             f"{args.concurrency} --workers {' '.join(map(str, args.workers))}`; {os.cpu_count()} CPUs, "
             f"kernel {platform.release()}; each backend 512m / 1.0 CPU, PostgreSQL 512m / 1.0 CPU beside it "
             f"(sized by postgres_sizing, WAL archived by pgBackRest); load 9 GET : 1 POST, {args.concurrency} "
             f"keep-alive clients on the same machine; medians of {args.rounds} rounds, order rotated.", "",
             "| workers | engine | req/s | p50 ms | p99 ms | errors | PostgreSQL / SQLite req/s | p99 ratio |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for workers in args.workers:
        s, p = f"sqlite-{workers}", f"postgres-{workers}"
        for name in (s, p):
            lines.append(f"| {workers} | {name.split('-', maxsplit=1)[0]} | {med(name, 'rps'):.0f} | {med(name, 'p50_ms'):.1f} | "
                         f"{med(name, 'p99_ms'):.1f} | {sum(x['errors'] for x in results[name])} | "
                         + (f"{med(p, 'rps') / med(s, 'rps'):.2f}x | {med(p, 'p99_ms') / med(s, 'p99_ms'):.2f}x |"
                            if name == p else " | |"))
    rounds = "; ".join(n + ": " + ", ".join(f"{x['rps']:.0f}" for x in v) for n, v in results.items())
    lines += ["", f"All rounds (req/s): {rounds}", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        with open(os.path.join(HERE, "RESULTS.md"), "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        cleanup()
        sys.exit(130)
