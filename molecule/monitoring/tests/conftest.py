"""Helpers for the monitoring scenario: the settings the role was given (molecule.yml over the
role's defaults), `docker inspect` of the project's containers, and Prometheus's HTTP API, all
read on the test host.

The test files are numbered: they run in that order on one converged host (the last one turns
Prometheus and then the whole project off).
"""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest
import yaml

SCENARIO = Path(__file__).resolve().parents[1]
ROOT = SCENARIO.parents[1]
PROJECT = "moneytracker-monitoring"
PROJECT_DIR = "/opt/moneytracker-monitoring"
PROMETHEUS = "http://127.0.0.1:9090"


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
