"""Integration tests of the reference app images (examples/moneytracker) on the local Docker engine.

They run the images that `examples/moneytracker/build.sh --local-base` builds, the way the deploy
runs them: hardened containers (read-only root, tmpfs /tmp, no capabilities, no-new-privileges,
non-root user, memory limit), one-off `moneytracker-migrate` containers on the data volume, and
nginx in front of the backend on a user network. Only the `docker` CLI and the standard library
are used; ports are published on 127.0.0.1 only; every container, volume and network a test
creates has a unique name and is removed by a finalizer.

What they do not prove: the public base images (python:3.13-slim-trixie, nginx:1.27-bookworm),
which no registry here can serve; nor anything about the Ansible roles that deploy these images.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import pytest

RELEASES = ("1.0.0", "2.0.0", "2.1.0-broken")
BACKEND = {release: f"moneytracker/backend:{release}" for release in RELEASES}
FRONTEND = "moneytracker/frontend:1.0.0"
BUILD_HINT = "run examples/moneytracker/build.sh --local-base (the Makefile's `images` target does)"

DB_URL = "sqlite:////data/moneytracker.db"
SECRET = secrets.token_urlsafe(48)
MEMORY = 256 * 1024 * 1024
# The runtime settings the deploy uses for the backend (the frontend runs as its image's uid 101).
HARDENED = [
    "--read-only",
    "--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=16m",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--memory", str(MEMORY),
    "--pids-limit", "128",
]
BACKEND_USER = ["--user", "10001:10001"]
# The secret reaches the backend as the deploy gives it: a file in a read-only bind-mounted
# directory (root:10001 0750), the file 10001 0400; only its path is in the environment.
SECRET_DIR_IN_CONTAINER = "/run/secrets"
SECRET_FILE_ENV = f"MONEYTRACKER_SECRET_KEY_FILE={SECRET_DIR_IN_CONTAINER}/secret_key"


def secret_dir(value: str, owner: int = 10001, mode: int = 0o400) -> str:
    """A host directory holding `value` as secret_key, laid out like the app role's secrets dir.
    The caller removes it (Resources does)."""
    path = tempfile.mkdtemp(prefix="mt-it-secret-")
    os.chown(path, 0, 10001)
    os.chmod(path, 0o750)
    key = os.path.join(path, "secret_key")
    with open(key, "w", encoding="utf-8") as f:
        f.write(value)
    os.chown(key, owner, owner)
    os.chmod(key, mode)
    return path


# ---- helpers ----------------------------------------------------------------------------------
def docker(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


class Http:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<HTTP {self.status} {self.body[:300]!r}>"


def http(method: str, url: str, headers: dict | None = None, payload=None, timeout: float = 10) -> Http:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Http(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Http(error.code, error.headers, error.read())


def wait_for(url: str, status: int = 200, timeout: float = 30) -> Http:
    deadline = time.monotonic() + timeout
    last: Http | Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = http("GET", url, timeout=3)
            if last.status == status:
                return last
        except (OSError, urllib.error.URLError) as error:  # not listening yet
            last = error
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s; last: {last!r}")


class Resources:
    """Creates uniquely named containers, volumes and networks; removes them all at the end."""

    def __init__(self) -> None:
        self.prefix = f"mt-it-{uuid.uuid4().hex[:8]}"
        self.containers: list[str] = []
        self.volumes: list[str] = []
        self.networks: list[str] = []
        self.dirs: list[str] = []
        self._n = 0

    def name(self, kind: str) -> str:
        self._n += 1
        return f"{self.prefix}-{kind}{self._n}"

    def volume(self) -> str:
        name = self.name("vol")
        docker("volume", "create", name)
        self.volumes.append(name)
        return name

    def secret_mount(self, value: str = SECRET, **kwargs) -> list[str]:
        """docker run options that give the backend `value` as its secret file."""
        path = secret_dir(value, **kwargs)
        self.dirs.append(path)
        return ["-v", f"{path}:{SECRET_DIR_IN_CONTAINER}:ro", "-e", SECRET_FILE_ENV]

    def network(self) -> str:
        name = self.name("net")
        docker("network", "create", name)
        self.networks.append(name)
        return name

    def cleanup(self) -> None:
        for name in reversed(self.containers):
            docker("rm", "-f", "-v", name, check=False)
        for name in self.volumes:
            docker("volume", "rm", "-f", name, check=False)
        for name in self.networks:
            docker("network", "rm", name, check=False)
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)

    # -- the backend ---------------------------------------------------------------------------
    def backend(self, release: str, volume: str, *, network: str | None = None, env: dict | None = None,
                wait_live: bool = True) -> tuple[str, str]:
        """Start a hardened backend (its secret as a file); return (container name, base URL on 127.0.0.1)."""
        name = self.name("backend")
        self.containers.append(name)
        args = ["run", "-d", "--name", name, *HARDENED, *BACKEND_USER,
                "-e", f"DATABASE_URL={DB_URL}", *self.secret_mount(),
                "-v", f"{volume}:/data", "-p", "127.0.0.1::8000"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        if network:
            args += ["--network", network, "--network-alias", "backend"]
        docker(*args, BACKEND[release])
        url = f"http://{docker('port', name, '8000/tcp').stdout.split()[0]}"
        if wait_live:
            try:
                wait_for(f"{url}/health/live")
            except AssertionError as error:
                raise AssertionError(f"{error}\nlogs:\n{docker('logs', name, check=False).stderr[-3000:]}") from None
        return name, url

    def run_once(self, release: str, volume: str, *command: str, entrypoint: str | None = None,
                 env: dict | None = None) -> subprocess.CompletedProcess:
        """A one-off hardened container on the data volume, like `docker compose run --rm`."""
        name = self.name("oneoff")
        self.containers.append(name)
        args = ["run", "--rm", "--name", name, *HARDENED, *BACKEND_USER, "-e", f"DATABASE_URL={DB_URL}",
                "-v", f"{volume}:/data"]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        if entrypoint:
            args += ["--entrypoint", entrypoint]
        return docker(*args, BACKEND[release], *command, check=False)

    def migrate(self, release: str, volume: str, *args: str) -> subprocess.CompletedProcess:
        return self.run_once(release, volume, "moneytracker-migrate", *args)

    def status(self, release: str, volume: str) -> dict:
        proc = self.migrate(release, volume, "status", "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def sql(self, volume: str, script: str, query: str | None = None):
        """Run SQL with Python's sqlite3 in a one-off container; return the query's rows."""
        code = (
            "import json, sqlite3, sys\n"
            "db = sqlite3.connect('/data/moneytracker.db')\n"
            "db.executescript(sys.argv[1]); db.commit()\n"
            "print(json.dumps(db.execute(sys.argv[2]).fetchall() if sys.argv[2] else None))\n"
        )
        proc = self.run_once("2.0.0", volume, "-c", code, script, query or "", entrypoint="python3")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


def csrf_headers(base_url: str) -> dict:
    response = http("GET", f"{base_url}/api/csrf")
    assert response.status == 200, response
    assert response.headers["Cache-Control"] == "no-store"
    return {"X-CSRF-Token": response.json()["token"]}


def tables(res: Resources, volume: str) -> set[str]:
    rows = res.sql(volume, "", "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {name for (name,) in rows}


# ---- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def images():
    try:
        docker("info", timeout=30)
    except (AssertionError, FileNotFoundError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"no Docker engine answers ({error}); start dockerd, then {BUILD_HINT}")
    missing = [image for image in (*BACKEND.values(), FRONTEND)
               if docker("image", "inspect", image, check=False).returncode != 0]
    if missing:
        pytest.fail(f"images missing: {', '.join(missing)}; {BUILD_HINT}")


@pytest.fixture
def res():
    resources = Resources()
    yield resources
    resources.cleanup()


@pytest.fixture(scope="module")
def stack():
    """backend 2.0.0 (migrated) + frontend on one user network, both published on 127.0.0.1."""
    resources = Resources()
    try:
        network, volume = resources.network(), resources.volume()
        assert resources.migrate("2.0.0", volume, "upgrade").returncode == 0
        backend, backend_url = resources.backend("2.0.0", volume, network=network)
        wait_for(f"{backend_url}/health/ready")
        frontend = resources.name("frontend")
        resources.containers.append(frontend)
        docker("run", "-d", "--name", frontend, *HARDENED, "--network", network,
               "-p", "127.0.0.1::8080", FRONTEND)
        frontend_url = f"http://{docker('port', frontend, '8080/tcp').stdout.split()[0]}"
        try:
            wait_for(f"{frontend_url}/nginx-health")
        except AssertionError as error:
            raise AssertionError(f"{error}\nlogs:\n{docker('logs', frontend, check=False).stderr[-3000:]}") from None
        yield {"backend": backend, "backend_url": backend_url, "frontend": frontend,
               "frontend_url": frontend_url, "volume": volume}
    finally:
        resources.cleanup()


# ---- backend ----------------------------------------------------------------------------------
def test_backend_runs_hardened_and_is_ready_only_after_migration(res):
    volume = res.volume()
    name, url = res.backend("2.0.0", volume, env={"WEB_CONCURRENCY": "3"})

    host_config = json.loads(docker("inspect", name).stdout)[0]["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host_config["SecurityOpt"]
    assert host_config["Memory"] == MEMORY
    assert "/tmp" in host_config["Tmpfs"]

    # What the processes really run with, not only what was asked for.
    status = docker("exec", name, "cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+10001\s+10001", status, re.M), status
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status
    assert docker("exec", name, "touch", "/opt/venv/x", check=False).returncode != 0  # read-only root
    assert docker("exec", name, "touch", "/tmp/x", check=False).returncode == 0  # tmpfs /tmp
    gunicorns = docker("exec", name, "sh", "-c",
                       "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done").stdout
    assert sum("bin/gunicorn" in line for line in gunicorns.splitlines()) == 1 + 3, gunicorns  # master + WEB_CONCURRENCY

    live = http("GET", f"{url}/health/live")
    assert live.status == 200 and live.json() == {"status": "alive"}

    not_ready = http("GET", f"{url}/health/ready")
    assert not_ready.status == 503, not_ready
    assert "moneytracker-migrate upgrade" in not_ready.json()["reason"]

    migrated = res.migrate("2.0.0", volume, "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    assert "upgraded base -> 0002" in migrated.stdout

    ready = wait_for(f"{url}/health/ready", 200, timeout=10)
    assert ready.json()["schema"] == "0002"
    version = http("GET", f"{url}/api/version").json()
    assert version == {"release": "2.0.0", "schema": "0002", "head": "0002", "features": ["categories"]}

    # The pragmas: WAL is a property of the file; the files belong to the app user.
    assert res.sql(volume, "", "PRAGMA journal_mode") == [["wal"]]
    owner = docker("exec", name, "stat", "-c", "%u", "/data/moneytracker.db").stdout.strip()
    assert owner == "10001"
    # No secret in the logs.
    logs = docker("logs", name)
    assert SECRET not in logs.stdout + logs.stderr


def test_entrypoint_fails_fast_without_database_url():
    proc = docker("run", "--rm", *HARDENED, BACKEND["2.0.0"], check=False, timeout=60)
    assert proc.returncode == 64, proc
    assert "DATABASE_URL is not set" in proc.stderr

    proc = docker("run", "--rm", *HARDENED, "-e", f"DATABASE_URL={DB_URL}", "-e", "AUTO_MIGRATE=yes",
                  BACKEND["2.0.0"], check=False, timeout=60)
    assert proc.returncode == 64, proc
    assert "AUTO_MIGRATE must be true or false" in proc.stderr


@pytest.mark.parametrize("secret", [None, "short-but-secret-Qz9Xw"])
def test_app_refuses_to_start_without_a_valid_secret(secret):
    args = ["run", "--rm", *HARDENED, "-e", f"DATABASE_URL={DB_URL}"]
    if secret:
        args += ["-e", f"MONEYTRACKER_SECRET_KEY={secret}"]
    proc = docker(*args, BACKEND["2.0.0"], check=False, timeout=60)
    assert proc.returncode == 78, proc
    assert "refusing to start: MONEYTRACKER_SECRET_KEY" in proc.stderr
    assert ("too short" if secret else "is not set") in proc.stderr
    if secret:
        assert secret not in proc.stdout + proc.stderr


def test_secret_file_keeps_the_secret_out_of_docker_inspect(res):
    name, _ = res.backend("2.0.0", res.volume())  # started: the server accepted the file's secret
    inspected = docker("inspect", name).stdout
    assert SECRET not in inspected
    env = json.loads(inspected)[0]["Config"]["Env"]
    assert SECRET_FILE_ENV in env
    assert not [e for e in env if e.startswith("MONEYTRACKER_SECRET_KEY=")]
    # Only the app's uid reads it; the read-only mount cannot be changed from inside.
    assert docker("exec", name, "stat", "-c", "%u %a", f"{SECRET_DIR_IN_CONTAINER}/secret_key").stdout.split() == \
        ["10001", "400"]
    assert docker("exec", name, "sh", "-c", f"echo x > {SECRET_DIR_IN_CONTAINER}/secret_key",
                  check=False).returncode != 0
    assert docker("exec", "--user", "101:101", name, "cat", f"{SECRET_DIR_IN_CONTAINER}/secret_key",
                  check=False).returncode != 0
    logs = docker("logs", name)
    assert SECRET not in logs.stdout + logs.stderr


def test_secret_file_wins_over_the_variable(res):
    # A valid file beside a short variable: the server starts (it used the file).
    res.backend("2.0.0", res.volume(), env={"MONEYTRACKER_SECRET_KEY": "short-variable-Qz9Xw"})
    # A short file beside a valid variable: it refuses, naming the file (no silent fallback).
    short = "short-file-secret-Qz9Xw"
    proc = docker("run", "--rm", *HARDENED, *BACKEND_USER, "-e", f"DATABASE_URL={DB_URL}",
                  *res.secret_mount(short), "-e", f"MONEYTRACKER_SECRET_KEY={SECRET}",
                  BACKEND["2.0.0"], check=False, timeout=60)
    assert proc.returncode == 78, proc
    assert "refusing to start: MONEYTRACKER_SECRET_KEY_FILE (/run/secrets/secret_key) is too short" in proc.stderr
    assert short not in proc.stdout + proc.stderr and SECRET not in proc.stdout + proc.stderr


def test_unreadable_secret_file_is_refused_by_name(res):
    # Owned by root, 0400: the app's uid 10001 cannot read it.
    proc = docker("run", "--rm", *HARDENED, *BACKEND_USER, "-e", f"DATABASE_URL={DB_URL}",
                  *res.secret_mount(owner=0), BACKEND["2.0.0"], check=False, timeout=60)
    assert proc.returncode == 78, proc
    assert ("refusing to start: MONEYTRACKER_SECRET_KEY_FILE (/run/secrets/secret_key) cannot be read: "
            "Permission denied") in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


def test_auto_migrate_runs_under_the_lock_before_start(res):
    volume = res.volume()
    name, url = res.backend("2.0.0", volume, env={"AUTO_MIGRATE": "true"})
    assert wait_for(f"{url}/health/ready").json()["schema"] == "0002"
    assert docker("exec", name, "test", "-f", "/data/.migrate.lock").returncode == 0
    assert "moneytracker-migrate upgrade under /data/.migrate.lock" in docker("logs", name).stderr


def test_csrf_token_is_required_and_rows_are_listed_and_summed(stack):
    url = stack["backend_url"]
    name = f"csrf-{uuid.uuid4().hex[:6]}"

    refused = http("POST", f"{url}/api/accounts", payload={"name": name})
    assert refused.status == 403 and "CSRF" in refused.json()["detail"]
    token = csrf_headers(url)["X-CSRF-Token"]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert http("POST", f"{url}/api/accounts", {"X-CSRF-Token": tampered}, {"name": name}).status == 403
    assert http("POST", f"{url}/api/accounts", {"X-CSRF-Token": "1.2.3"}, {"name": name}).status == 403
    assert name not in [a["name"] for a in http("GET", f"{url}/api/accounts").json()]

    headers = csrf_headers(url)
    created = http("POST", f"{url}/api/accounts", headers, {"name": name})
    assert created.status == 201, created
    account_id = created.json()["id"]
    assert http("POST", f"{url}/api/accounts", headers, {"name": name}).status == 409

    rows = [
        {"account_id": account_id, "amount_cents": 250000, "description": "salary", "occurred_on": "2025-03-01"},
        {"account_id": account_id, "amount_cents": -1999, "description": "books", "occurred_on": "2025-03-02",
         "category": "Education"},
    ]
    ids = []
    for row in rows:
        response = http("POST", f"{url}/api/transactions", headers, row)
        assert response.status == 201, response
        ids.append(response.json()["id"])

    listed = http("GET", f"{url}/api/transactions?account_id={account_id}").json()
    assert [t["id"] for t in listed] == ids[::-1]  # newest first
    assert listed[0]["category"] == "education" and listed[1]["category"] is None
    assert listed[0]["amount_cents"] == -1999

    balance = http("GET", f"{url}/api/accounts/{account_id}/balance").json()
    assert balance == {"account_id": account_id, "balance_cents": 248001, "transactions": 2}
    summary = http("GET", f"{url}/api/summary").json()
    mine = [a for a in summary["accounts"] if a["id"] == account_id]
    assert mine == [{"id": account_id, "name": name, "balance_cents": 248001, "transactions": 2}]
    assert summary["total_cents"] == sum(a["balance_cents"] for a in summary["accounts"])
    assert {"category": "education", "total_cents": -1999, "transactions": 1} in summary["categories"]
    by_category = http("GET", f"{url}/api/transactions?category=education").json()
    assert ids[1] in [t["id"] for t in by_category]

    # Validation and the foreign key (PRAGMA foreign_keys=ON on every connection).
    bad = dict(rows[0], account_id=987654)
    assert http("POST", f"{url}/api/transactions", headers, bad).status == 422
    assert http("POST", f"{url}/api/transactions", headers, dict(rows[0], amount_cents=12.5)).status == 422
    assert http("GET", f"{url}/api/accounts/987654/balance").status == 404


# ---- migrations across releases ---------------------------------------------------------------
def test_upgrade_from_v1_to_v2_keeps_rows(res):
    volume = res.volume()
    assert res.status("1.0.0", volume) == {"current": None, "head": "0001", "pending": True, "release": "1.0.0"}
    assert res.migrate("1.0.0", volume, "upgrade").returncode == 0

    name, url = res.backend("1.0.0", volume)
    wait_for(f"{url}/health/ready")
    assert http("GET", f"{url}/api/version").json()["features"] == []
    headers = csrf_headers(url)
    account = http("POST", f"{url}/api/accounts", headers, {"name": "Checking"}).json()
    tx = {"account_id": account["id"], "amount_cents": 4200, "description": "v1 row", "occurred_on": "2024-12-31"}
    assert http("POST", f"{url}/api/transactions", headers, tx).status == 201
    assert http("POST", f"{url}/api/transactions", headers, dict(tx, category="food")).status == 422  # no v2 in v1
    assert "category" not in http("GET", f"{url}/api/transactions").json()[0]

    # SIGTERM reaches gunicorn (the entrypoint execs it): a graceful stop, exit code 0.
    started = time.monotonic()
    docker("stop", "-t", "20", name)
    assert time.monotonic() - started < 15
    assert json.loads(docker("inspect", name).stdout)[0]["State"]["ExitCode"] == 0

    assert res.status("2.0.0", volume) == {"current": "0001", "head": "0002", "pending": True, "release": "2.0.0"}
    upgraded = res.migrate("2.0.0", volume, "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert res.status("2.0.0", volume) == {"current": "0002", "head": "0002", "pending": False, "release": "2.0.0"}
    assert res.migrate("2.0.0", volume, "current").stdout.strip() == "0002"

    _, url = res.backend("2.0.0", volume)
    wait_for(f"{url}/health/ready")
    rows = http("GET", f"{url}/api/transactions").json()
    assert [(r["description"], r["amount_cents"], r["category"]) for r in rows] == [("v1 row", 4200, None)]
    assert http("GET", f"{url}/api/accounts/{account['id']}/balance").json()["balance_cents"] == 4200


def test_broken_release_damages_the_database_until_restored(res):
    volume = res.volume()
    assert res.migrate("2.0.0", volume, "upgrade").returncode == 0
    res.sql(volume, "INSERT INTO accounts (name) VALUES ('Cash');"
                    "INSERT INTO transactions (account_id, amount_cents, description, occurred_on, category) "
                    "VALUES (1, 1234, 'before 2.1', '2025-05-01', 'misc');")
    # The deploy's pre-migration backup (the backup API, as the host tool does it).
    backup = res.run_once("2.0.0", volume, "-c",
                          "import sqlite3; s = sqlite3.connect('/data/moneytracker.db'); "
                          "d = sqlite3.connect('/data/backup.db'); s.backup(d); d.close()",
                          entrypoint="python3")
    assert backup.returncode == 0, backup.stderr

    assert res.status("2.1.0-broken", volume)["pending"] is True
    failed = res.migrate("2.1.0-broken", volume, "upgrade")
    assert failed.returncode != 0
    assert "upgrade 0002 -> 0003 FAILED" in failed.stderr and "OperationalError" in failed.stderr

    # The damage persisted: the original table is gone, its rows sit in a half-built copy, and
    # the version row still says 0002.
    assert {"accounts", "transactions_v3", "alembic_version"} <= tables(res, volume)
    assert "transactions" not in tables(res, volume)
    assert res.sql(volume, "", "SELECT description FROM transactions_v3") == [["before 2.1"]]
    assert res.sql(volume, "", "SELECT version_num FROM alembic_version") == [["0002"]]

    # The previous release cannot repair it: nothing is pending, and it is not ready.
    assert res.status("2.0.0", volume)["pending"] is False
    assert res.migrate("2.0.0", volume, "upgrade").returncode == 0
    assert "transactions" not in tables(res, volume)
    name, url = res.backend("2.0.0", volume)
    not_ready = wait_for(f"{url}/health/ready", 503, timeout=10)
    assert "missing table(s) transactions" in not_ready.json()["reason"]

    # Only the backup repairs it: stop the writer, drop the stale WAL, swap the file, start.
    docker("stop", name)
    restore = res.run_once("2.0.0", volume, "-c",
                           "rm -f /data/moneytracker.db-wal /data/moneytracker.db-shm && "
                           "cp /data/backup.db /data/moneytracker.db.tmp && "
                           "mv /data/moneytracker.db.tmp /data/moneytracker.db",
                           entrypoint="sh")
    assert restore.returncode == 0, restore.stderr
    _, url = res.backend("2.0.0", volume)
    assert wait_for(f"{url}/health/ready").json()["schema"] == "0002"
    assert [r["description"] for r in http("GET", f"{url}/api/transactions").json()] == ["before 2.1"]


def test_each_release_image_carries_only_its_migrations_and_no_compiler():
    expected = {"1.0.0": ["0001"], "2.0.0": ["0001", "0002"], "2.1.0-broken": ["0001", "0002", "0003"]}
    for release, revisions in expected.items():
        image = BACKEND[release]
        config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
        assert config["Labels"]["org.opencontainers.image.version"] == release
        assert f"APP_RELEASE={release}" in config["Env"]
        assert config["User"] == "10001:10001"
        assert "8000/tcp" in config["ExposedPorts"]
        listing = docker(
            "run", "--rm", "--entrypoint", "sh", image, "-c",
            "ls /opt/venv/lib/python3*/site-packages/moneytracker/migrations/versions/; "
            "for tool in gcc cc c++ g++ make pip pip3; do command -v $tool; done; true",
        ).stdout.split()
        assert sorted(f.split("_")[0] for f in listing if f.endswith(".py") and f[0].isdigit()) == revisions
        assert [f for f in listing if f.startswith("/")] == [], f"{image} has build tools: {listing}"


# ---- frontend ---------------------------------------------------------------------------------
def test_frontend_serves_fingerprinted_precompressed_assets_and_proxies_the_api(stack):
    url = stack["frontend_url"]

    index = http("GET", f"{url}/")
    assert index.status == 200
    assert index.headers["Cache-Control"] == "no-cache"
    assert index.headers["X-Content-Type-Options"] == "nosniff"
    assert index.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in index.headers["Content-Security-Policy"]
    assert "script-src 'self'" in index.headers["Content-Security-Policy"]
    assert index.headers["Referrer-Policy"]
    assert index.headers["Server"] == "nginx"  # server_tokens off: no version
    assert http("GET", f"{url}/index.html").headers["Cache-Control"] == "no-cache"

    assets = re.findall(r'"/assets/(app\.([0-9a-f]{12})\.(js|css))"', index.body.decode())
    assert {ext for _, _, ext in assets} == {"js", "css"}, index.body[:500]
    for filename, digest, ext in assets:
        plain = http("GET", f"{url}/assets/{filename}")
        assert plain.status == 200 and "Content-Encoding" not in plain.headers
        assert hashlib.sha256(plain.body).hexdigest()[:12] == digest  # a real content fingerprint
        assert plain.headers["Cache-Control"] == "public, max-age=31536000, immutable"

        gz = http("GET", f"{url}/assets/{filename}", {"Accept-Encoding": "gzip"})
        assert gz.headers["Content-Encoding"] == "gzip"
        assert gz.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert "Accept-Encoding" in gz.headers["Vary"]
        assert gzip.decompress(gz.body) == plain.body

    brotli = docker("exec", stack["frontend"], "cat", "/etc/nginx/snippets/brotli.conf").stdout
    if "brotli_static on" in brotli:  # Debian's module (local base); the public nginx image has none
        br = http("GET", f"{url}/assets/{assets[0][0]}", {"Accept-Encoding": "br"})
        assert br.headers["Content-Encoding"] == "br" and len(br.body) < len(plain.body)

    health = http("GET", f"{url}/nginx-health")
    assert health.status == 200 and health.body == b"ok\n"
    assert http("GET", f"{url}/does-not-exist").status == 404

    # /api/ and /health/ reach the backend through nginx (Docker DNS name "backend").
    assert http("GET", f"{url}/api/version").json()["release"] == "2.0.0"
    assert http("GET", f"{url}/health/ready").json()["status"] == "ready"
    headers = csrf_headers(url)
    created = http("POST", f"{url}/api/accounts", headers, {"name": f"via-nginx-{uuid.uuid4().hex[:6]}"})
    assert created.status == 201, created
    assert http("POST", f"{url}/api/accounts", {}, {"name": "no token"}).status == 403


def test_nginx_runs_as_non_root_on_a_read_only_root(stack):
    name = stack["frontend"]
    host_config = json.loads(docker("inspect", name).stdout)[0]["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True and host_config["CapDrop"] == ["ALL"]
    processes = docker("exec", name, "sh", "-c",
                       "for p in /proc/[0-9]*; do echo \"$(cat $p/comm) $(grep ^Uid: $p/status)\"; done").stdout
    nginx = [line for line in processes.splitlines() if line.startswith("nginx")]
    assert len(nginx) >= 2, processes  # master + at least one worker
    assert all(re.search(r"Uid:\s+101\s+101\s+101\s+101$", line) for line in nginx), processes
    assert docker("exec", name, "touch", "/etc/nginx/x", check=False).returncode != 0
    assert docker("exec", name, "test", "-f", "/tmp/nginx.pid").returncode == 0
