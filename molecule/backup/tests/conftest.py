"""Helpers for the backup scenario: cron lines as cron runs them, the app's API through nginx on
the test host, and the collection's playbooks run from the controller as an operator would.

Each test file sets up what it needs on the converged host, so the files pass in any order
(test_role.py takes a first backup again when another file's prune removed the deploy's).
MOLECULE_VERIFY_REVERSE=1 runs the files in reverse order (a check).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from verify_order import pytest_collection_modifyitems  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

CRON_FILE = "/etc/cron.d/moneytracker-db"
TOOL = "/usr/local/sbin/moneytracker-db"
BACKUP_DIR = "/var/backups/moneytracker"
STATE_DIR = "/var/lib/moneytracker-db"
TEXTFILE = "/var/lib/prometheus/node-exporter/moneytracker_db.prom"
BASE_URL = "http://127.0.0.1:8080"
SCENARIO = Path(__file__).resolve().parents[1]
# What Debian's cron gives a job of a /etc/cron.d file run as root before the file's own
# NAME=value lines (cron(8)): no login shell, no profile, a short PATH.
CRON_BASE_ENV = {"SHELL": "/bin/sh", "PATH": "/usr/bin:/bin", "HOME": "/root", "LOGNAME": "root"}


def scenario_group_vars() -> dict:
    """The group_vars molecule.yml gives the test host (the source of the expected schedules)."""
    config = yaml.safe_load((SCENARIO / "molecule.yml").read_text())
    return config["provisioner"]["inventory"]["group_vars"]["moneytracker"]


def parse_cron_file(text: str) -> tuple[dict, list[dict]]:
    """(environment lines, jobs) of a /etc/cron.d file, the way cron reads it."""
    env, jobs, name = {}, [], None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#Ansible: "):
            name = line[len("#Ansible: "):]
            continue
        if not line or line.startswith("#"):
            continue
        if line[0] in "0123456789*@":
            fields = line.split(None, 6)
            assert len(fields) == 7, f"not a cron.d job line (5 schedule fields, user, command): {line!r}"
            jobs.append({"name": name, "schedule": " ".join(fields[:5]), "user": fields[5], "command": fields[6]})
            name = None
            continue
        m = re.match(r'^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$', line)
        assert m, f"neither a job nor an environment line: {line!r}"
        value = m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[m.group(1)] = value
    return env, jobs


@pytest.fixture(scope="module")
def cron(host):
    env, jobs = parse_cron_file(host.file(CRON_FILE).content_string)
    return {"env": env, "jobs": jobs}


def find_job(cron, word: str) -> dict:
    matches = [j for j in cron["jobs"] if re.search(rf"moneytracker-db-cron {word}\b", j["command"])]
    assert len(matches) == 1, f"exactly one cron job running '{word}' expected, got {matches}"
    return matches[0]


def run_as_cron(host, cron, job: dict):
    """Run a cron line's command exactly as cron would: `sh -c COMMAND` as root, from HOME,
    with only cron's minimal environment plus the file's NAME=value lines."""
    assert job["user"] == "root"
    assert "%" not in job["command"], "cron turns % into a newline"
    env = {**CRON_BASE_ENV, **cron["env"]}
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return host.run(f"cd /root && env -i {assignments} /bin/sh -c {shlex.quote(job['command'])}")


def tool_json(host, *args, expect=(0,)) -> dict:
    r = host.run(" ".join([TOOL, *map(shlex.quote, args), "--json"]))
    assert r.rc in expect, (r.rc, r.stdout, r.stderr)
    return json.loads(r.stdout)


def journal_since(host, since: float, *tags: str) -> str:
    """Journal lines of the given syslog identifiers since an epoch (journald may lag a little)."""
    idents = " ".join(f"-t {t}" for t in tags)
    return host.check_output(f"journalctl --no-pager -o cat --since @{int(since) - 1} {idents}")


def wait_for_journal(host, since: float, needle: str, *tags: str, timeout: float = 10) -> str:
    deadline = time.time() + timeout
    while True:
        text = journal_since(host, since, *tags)
        if needle in text or time.time() > deadline:
            return text
        time.sleep(0.5)


# ---- the app's API through nginx on the test host ---------------------------------------------

def api(host, method: str, path: str, body: dict | None = None):
    url = BASE_URL + path
    if method == "GET":
        return json.loads(host.check_output(f"curl -sS -f -m 10 {shlex.quote(url)}"))
    token = json.loads(host.check_output(f"curl -sS -f -m 10 {BASE_URL}/api/csrf"))["token"]
    out = host.check_output(
        f"curl -sS -f -m 10 -X {method} -H 'Content-Type: application/json' "
        f"-H {shlex.quote('X-CSRF-Token: ' + token)} --data {shlex.quote(json.dumps(body or {}))} {shlex.quote(url)}")
    return json.loads(out)


# ---- the collection's playbooks from the controller -------------------------------------------

def run_playbook(name: str, *extra: str, callback: str = "ansible.builtin.default") -> subprocess.CompletedProcess:
    """ansible-playbook moneytracker.deploy.<name> against Molecule's inventory, stdin not a TTY."""
    args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], f"moneytracker.deploy.{name}", *extra]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK=callback)
    return subprocess.run(args, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, env=env)


def task_results(json_output: str, host_name: str) -> dict:
    """{task name: result on host_name} from the json stdout callback (other callbacks enabled
    in ansible.cfg, e.g. profile_tasks, may print around the JSON document)."""
    start = re.search(r"^\{$", json_output, re.M)
    assert start, json_output[-3000:]
    data, _ = json.JSONDecoder().raw_decode(json_output, start.start())
    results = {}
    for play in data["plays"]:
        for task in play["tasks"]:
            if host_name in task["hosts"]:
                results[task["task"]["name"]] = task["hosts"][host_name]
    return results
