"""Fixtures for the moneytracker-db host tool tests (tests/unit/test_moneytracker_db*.py).

The tool is one file, roles/moneytracker_db/files/moneytracker_db.py. Tests load it with
importlib (for its pure functions and for in-process calls of main()) and also run it as a
subprocess, the way cron and Ansible run it. Everything uses real SQLite files under tmp_path.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL_PATH = ROOT / "roles" / "moneytracker_db" / "files" / "moneytracker_db.py"


def _load_tool():
    spec = importlib.util.spec_from_file_location("moneytracker_db", TOOL_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["moneytracker_db"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tool():
    """The tool loaded as a module (importlib, from its path in the role)."""
    return _load_tool()


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_db(path, accounts: int = 20, transactions: int = 500, wal: bool = True, blob_bytes: int = 0) -> Path:
    """A small MoneyTracker-like database: accounts, transactions (FK), alembic_version."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    if wal:
        con.execute("PRAGMA journal_mode=WAL")
    con.executescript(
        """
        PRAGMA user_version = 3;
        CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);
        INSERT INTO alembic_version VALUES ('a1b2c3d4');
        CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE transactions (
            id INTEGER PRIMARY KEY,
            account_id INTEGER NOT NULL REFERENCES accounts(id),
            amount_cents INTEGER NOT NULL,
            memo TEXT,
            blob BLOB
        );
        CREATE INDEX ix_tx_account ON transactions(account_id);
        """
    )
    con.executemany("INSERT INTO accounts(id, name) VALUES (?, ?)", [(i, f"account {i}") for i in range(1, accounts + 1)])
    con.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO transactions(account_id, amount_cents, memo, blob) "
        "SELECT 1 + (i % ?), (i * 37) % 100000 - 50000, 'memo ' || i, "
        "CASE WHEN ? > 0 THEN randomblob(?) END FROM n",
        (transactions, accounts, blob_bytes, blob_bytes),
    )
    con.commit()
    con.close()
    return path


def damage_database(path, table: str = "transactions") -> None:
    """Overwrite the root page of a multi-level table b-tree with garbage: quick_check then fails."""
    con = sqlite3.connect(path)
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(bytes([0xA5]) * page_size)


# The preflight of one role in a local play (tests/unit/test_preflight_*.py).
PREFLIGHT_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: moneytracker.deploy.{role}
        tasks_from: preflight
"""


def flat(text):
    """Whitespace runs as one space: the YAML result callback folds long messages over lines."""
    return " ".join(text.split())


def dump(path) -> list[str]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(con.iterdump())
    finally:
        con.close()


@dataclasses.dataclass
class Run:
    rc: int
    out: str
    err: str

    @property
    def data(self) -> dict:
        return json.loads(self.out)


@dataclasses.dataclass
class Env:
    """A host layout in tmp_path: db in its own 'volume' dir, backups, state and textfile dirs."""

    root: Path
    db: Path
    backups: Path
    state: Path
    prom: Path
    config: Path
    syslog_path: str | None
    tool: object

    def write_config(self, **overrides) -> dict:
        cfg = {
            "database": str(self.db),
            "backup_dir": str(self.backups),
            "state_dir": str(self.state),
            "textfile_dir": str(self.prom),
            "retention": {"daily": 7, "weekly": 4, "monthly": 6},
        }
        cfg.update(overrides)
        cfg = {k: v for k, v in cfg.items() if v is not None}
        self.config.write_text(json.dumps(cfg))
        return cfg

    def env(self, extra: dict | None = None) -> dict:
        env = dict(os.environ)
        env.pop("MONEYTRACKER_DB_CONFIG", None)
        env["MONEYTRACKER_DB_SYSLOG"] = self.syslog_path or "none"
        env.update(extra or {})
        return env

    def run(self, *args, timeout: float = 120, extra_env: dict | None = None, use_shebang: bool = False,
            config: bool = True) -> Run:
        """Run the tool as a subprocess (as cron / Ansible do); adds --config unless config=False."""
        argv = ([str(TOOL_PATH)] if use_shebang else [sys.executable, str(TOOL_PATH)])
        argv += [*map(str, args), *(["--config", str(self.config)] if config else [])]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env(extra_env), check=False)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        argv = [sys.executable, str(TOOL_PATH), *map(str, args), "--config", str(self.config)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(), **kwargs)

    def call(self, *args, config: bool = True) -> Run:
        """Call main() in-process (fast; same code path as the command line)."""
        out, err = io.StringIO(), io.StringIO()
        old = os.environ.get("MONEYTRACKER_DB_SYSLOG")
        os.environ["MONEYTRACKER_DB_SYSLOG"] = self.syslog_path or "none"
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = self.tool.main([*map(str, args), *(["--config", str(self.config)] if config else [])])
        finally:
            if old is None:
                os.environ.pop("MONEYTRACKER_DB_SYSLOG", None)
            else:
                os.environ["MONEYTRACKER_DB_SYSLOG"] = old
        return Run(rc, out.getvalue(), err.getvalue())

    def backups_with_manifest(self) -> list[Path]:
        return sorted(p for p in self.backups.glob("moneytracker-*.db.*")
                      if not p.name.endswith(".manifest.json") and Path(str(p) + ".manifest.json").exists())


class SyslogCatcher:
    """A unix datagram socket standing in for /dev/log (MONEYTRACKER_DB_SYSLOG points the tool at it).
    A thread drains it all the time: a full datagram queue would block the sender."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mtdb-log-", dir="/tmp")
        self.path = os.path.join(self.dir, "log")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        while not self._stop.is_set():
            try:
                self.lines.append(self.sock.recv(65536).decode(errors="replace").rstrip("\x00\n"))
            except TimeoutError:
                continue
            except OSError:
                return

    def messages(self) -> list[str]:
        time.sleep(0.05)  # let the drain thread pick up what was just sent
        return list(self.lines)

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(self.dir)


@pytest.fixture
def syslog():
    catcher = SyslogCatcher()
    yield catcher
    catcher.close()


@pytest.fixture
def env(tmp_path, tool, syslog, monkeypatch) -> Env:
    # in-process calls must not renice the pytest process
    monkeypatch.setattr(tool, "lower_priority", lambda: None)
    e = Env(root=tmp_path, db=tmp_path / "volume" / "moneytracker.db", backups=tmp_path / "backups",
            state=tmp_path / "state", prom=tmp_path / "textfile", config=tmp_path / "db.json",
            syslog_path=syslog.path, tool=tool)
    make_db(e.db)
    e.write_config()
    return e


@pytest.fixture
def tmpfs(tmp_path):
    """Mount small tmpfs filesystems (we run as root); skip with the reason when impossible."""
    mounted: list[Path] = []

    def mount(name: str, size: str) -> Path:
        target = tmp_path / name
        target.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(target)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {proc.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


# A TEST DOUBLE of the new image's migration, run on the copy by `moneytracker-db migration run`
# (argv: copy, schema to set, seconds to sleep first; schema "fail" exits 3 after changing it): it
# proves what the tool and the module do around a migration, not anything about alembic.
MIGRATE_PY = (
    "import sqlite3, sys, time\n"
    "time.sleep(float(sys.argv[3]))\n"
    "con = sqlite3.connect(sys.argv[1])\n"
    "con.execute(\"ALTER TABLE accounts ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR'\")\n"
    "con.execute('UPDATE alembic_version SET version_num = ?', (sys.argv[2],))\n"
    "con.commit()\n"
    "print('upgraded on the copy')\n"
    "sys.exit(0 if sys.argv[2] != 'fail' else 3)\n"
)
