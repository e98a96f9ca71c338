"""Helpers for the monitoring scenario: the settings the role was given (molecule.yml over the
role's defaults), `docker inspect` of the project's containers, and Prometheus's HTTP API, all
read on the test host.

Each test file starts from the converged state (cadvisor, Prometheus and node_exporter up, as
molecule.yml sets them): the autouse fixture `monitoring_on` converges monitoring-only.yml again
when a file before it left something off (test_off.py turns Prometheus, then everything, off), so
the files pass in any order. MOLECULE_VERIFY_REVERSE=1 runs the files in reverse order (a check).
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from verify_order import pytest_collection_modifyitems  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

SCENARIO = Path(__file__).resolve().parents[1]
ROOT = SCENARIO.parents[1]
PROJECT = "moneytracker-monitoring"
PROJECT_DIR = "/opt/moneytracker-monitoring"
PROMETHEUS = "http://127.0.0.1:9090"
SERVICES_ON = ["cadvisor", "node-exporter", "prometheus"]


def scenario_group_vars() -> dict:
    config = yaml.safe_load((SCENARIO / "molecule.yml").read_text())
    return config["provisioner"]["inventory"]["group_vars"]["moneytracker"]


def role_defaults() -> dict:
    return yaml.safe_load((ROOT / "roles/monitoring/defaults/main.yml").read_text())


def setting(name: str):
    """The value the role ran with: the scenario's group_vars, else the role's default."""
    return scenario_group_vars().get(name, role_defaults()[name])


def container(host, service: str) -> dict:
    cid = host.check_output(f"docker compose -p {PROJECT} ps -q {service}").strip()
    assert cid, f"no running container for {service}"
    return json.loads(host.check_output(f"docker inspect {cid}"))[0]


def project_containers(host) -> list[str]:
    out = host.check_output(f"docker ps -a -q --filter label=com.docker.compose.project={PROJECT}")
    return sorted(out.split())


def curl(host, url: str, *opts: str):
    """(exit code of curl, body) of a GET made on the test host."""
    r = host.run("curl -sS --max-time 5 " + " ".join(opts) + " " + shlex.quote(url))
    return r.rc, r.stdout


def prom(host, path: str) -> dict:
    rc, body = curl(host, PROMETHEUS + path)
    assert rc == 0, body
    data = json.loads(body)
    assert data["status"] == "success", data
    return data["data"]


def wait_for(check, timeout: float = 60, step: float = 2):
    """Call check() until it returns something true or the time is up; return its last value."""
    deadline = time.time() + timeout
    while True:
        value = check()
        if value or time.time() > deadline:
            return value
        time.sleep(step)


def mem_bytes(size: str) -> int:
    units = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
    return int(size[:-1]) * units[size[-1].lower()]


@pytest.fixture(scope="module")
def cadvisor(host) -> dict:
    return container(host, "cadvisor")


def converge(*extra: str) -> subprocess.CompletedProcess:
    """monitoring-only.yml (the monitoring role alone) with -e values, as an operator reruns it."""
    args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(SCENARIO / "monitoring-only.yml")]
    for e in extra:
        args += ["-e", e]
    return subprocess.run(args, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"), check=False)


def running_services(host) -> list[str]:
    out = host.check_output(f"docker compose -p {PROJECT} ps --status running --format '{{{{.Service}}}}'")
    return sorted(out.split())


@pytest.fixture(scope="module", autouse=True)
def monitoring_on(host):
    """The converged state at the start of each test file, whatever ran before it."""
    if running_services(host) != SERVICES_ON:
        run = converge()
        assert run.returncode == 0, run.stdout[-3000:]
        assert running_services(host) == SERVICES_ON
