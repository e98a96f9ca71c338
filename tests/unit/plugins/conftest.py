"""Fixtures for the moneytracker_db_* module tests (tests/unit/plugins/modules, module_utils).

The modules run the REAL host tool against real SQLite files: the `env` fixture of
tests/unit/conftest.py builds the database, backup dir, state dir and config. The module's `tool`
option points at `tool_double`, a small wrapper standing in for the installed
/usr/local/sbin/moneytracker-db (it runs the role's source file with this Python).

`run_module` runs a module the way Ansible runs it on a host: a separate Python process
(`python -m ansible_collections.moneytracker.deploy.plugins.modules.<name> <args file>`), the args
file holding {"ANSIBLE_MODULE_ARGS": {...}}; the result is the JSON the module prints, exactly what
the controller would receive (no_log masking included). In those processes the collection is
importable as `ansible_collections.moneytracker.deploy` through a temporary tree whose
ansible_collections/moneytracker/deploy is a symlink to this checkout (the shared installed copy
under .build/ is neither used nor rebuilt).
"""
from __future__ import annotations

import atexit
import dataclasses
import hashlib
import os
import json
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import damage_database  # tests/unit/conftest.py, shared with the tool's tests

ROOT = Path(__file__).resolve().parents[3]
TOOL_SOURCE = ROOT / "roles" / "moneytracker_db" / "files" / "moneytracker_db.py"
MODULE_PACKAGE = "ansible_collections.moneytracker.deploy.plugins.modules"

COLLECTIONS_TREE = Path(tempfile.mkdtemp(prefix="mtdb-modules-"))
(COLLECTIONS_TREE / "ansible_collections" / "moneytracker").mkdir(parents=True)
(COLLECTIONS_TREE / "ansible_collections" / "moneytracker" / "deploy").symlink_to(ROOT)
atexit.register(shutil.rmtree, COLLECTIONS_TREE, True)
# Only the module processes get COLLECTIONS_TREE (PYTHONPATH): this pytest process's imports of
# ansible_collections stay as other tests set them up (some install Ansible's collection finder).

TOOL_DOUBLE = """#!/bin/sh
# TEST DOUBLE of the installed /usr/local/sbin/moneytracker-db (tests/unit/plugins/conftest.py):
# runs the tool's source in the role with the test's Python, exactly as installed it would run.
exec "{python}" "{source}" "$@"
"""


@pytest.fixture(scope="session")
def collections_tree() -> Path:
    """A directory whose ansible_collections/moneytracker/deploy is this checkout."""
    return COLLECTIONS_TREE


@pytest.fixture(scope="session")
def tool_double(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("bin") / "moneytracker-db"
    path.write_text(TOOL_DOUBLE.format(python=sys.executable, source=TOOL_SOURCE))
    path.chmod(0o755)
    return str(path)


@dataclasses.dataclass
class ModuleRun:
    rc: int
    stdout: str
    stderr: str
    args_file: Path

    @property
    def raw(self) -> dict:
        """The JSON the module printed, as is."""
        return json.loads(self.stdout)

    @property
    def result(self) -> dict:
        """The result as the controller reads it: a non-zero `rc` without a `failed` key makes the
        task failed (TaskExecutor), so the modules must say failed=false themselves."""
        data = self.raw
        if "failed" not in data and data.get("rc") not in (None, 0, "0"):
            data["failed"] = True
        return data


@pytest.fixture
def run_module(env, tool_double, tmp_path):
    """run_module(name, check_mode=False, **args) -> ModuleRun; name like 'lock' or 'backup'.
    `tool` and `config` default to the tool double and the env's config file."""
    counter = [0]

    def run(name: str, check_mode: bool = False, **args) -> ModuleRun:
        counter[0] += 1
        params = {"tool": tool_double, "config": str(env.config), **args}
        if check_mode:
            params["_ansible_check_mode"] = True
        args_file = tmp_path / f"module-args-{counter[0]}.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
        proc = subprocess.run(
            [sys.executable, "-m", f"{MODULE_PACKAGE}.moneytracker_db_{name}", str(args_file)],
            capture_output=True, text=True, timeout=180, cwd=str(tmp_path),
            env=env.env({"PYTHONPATH": str(COLLECTIONS_TREE)}), check=False)
        run_ = ModuleRun(proc.returncode, proc.stdout, proc.stderr, args_file)
        try:
            run_.result
        except ValueError:
            raise AssertionError(f"module {name} printed no JSON (rc {proc.returncode}):\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}") from None
        return run_

    return run


def file_sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def sha256():
    return file_sha256


@pytest.fixture
def corrupt_database(env):
    """Grow the env's transactions table to a multi-level b-tree, then damage its root page."""
    def corrupt() -> Path:
        con = sqlite3.connect(env.db)
        con.executemany("INSERT INTO transactions(account_id, amount_cents, memo) VALUES (1, ?, ?)",
                        [(i, "filler memo %d" % i) for i in range(3000)])
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        for side in ("-wal", "-shm"):
            Path(str(env.db) + side).unlink(missing_ok=True)
        damage_database(env.db)
        return env.db

    return corrupt


@pytest.fixture
def stop_start_double(env, tmp_path):
    """stop/start commands for restore: a TEST DOUBLE script that only appends its argument
    (stop|start) to a log, standing in for `docker compose stop/start backend`."""
    script = tmp_path / "writers-test-double.sh"
    log = tmp_path / "writers.log"
    script.write_text(f'#!/bin/sh\n# TEST DOUBLE for stop_command / start_command\necho "$1" >> "{log}"\n')
    script.chmod(0o755)

    def calls() -> list[str]:
        return log.read_text().split() if log.exists() else []

    return [str(script), "stop"], [str(script), "start"], calls


@pytest.fixture
def run_module_file(collections_tree, tmp_path):
    """run_module_file(name, env=None, **params) -> (process, result): plugins/modules/<name>.py run
    as Ansible runs a module on a host (a process, the args file holding ANSIBLE_MODULE_ARGS), in
    check mode, with the collection importable for its module_utils."""
    counter = [0]

    def run(name: str, env: dict | None = None, **params):
        counter[0] += 1
        args = tmp_path / f"{name}-args-{counter[0]}.json"
        args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(params, _ansible_check_mode=True)}))
        proc = subprocess.run(
            [sys.executable, "-m", f"{MODULE_PACKAGE}.{name}", str(args)], capture_output=True, text=True,
            timeout=120, cwd=str(tmp_path), check=False,
            env=dict(os.environ, PYTHONPATH=str(collections_tree), **(env or {})))
        return proc, json.loads(proc.stdout)

    return run
