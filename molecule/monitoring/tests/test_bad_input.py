"""The monitoring role with bad input on the converged host (monitoring-only.yml): it fails at its
preflight, names the variable, and changes nothing (recap changed=0; the compose file, the
Prometheus configuration and the running containers the same).

Runs ansible-playbook from the controller against Molecule's inventory, as an operator would; the
cases run side by side (each only reads the host until its preflight fails).
"""
import json
import sys
from pathlib import Path

import pytest

from conftest import PROJECT, PROJECT_DIR, SCENARIO

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from playbook_runs import run_side_by_side  # noqa: E402  pylint: disable=wrong-import-position

CASES = [
    ({"monitoring_cadvisor_listen_address": "localhost"}, "monitoring_cadvisor_listen_address must be an IP address"),
    ({"monitoring_cadvisor_listen_address": "0.0.0.0"}, "monitoring_allow_unauthenticated_exposure"),
    ({"monitoring_cadvisor_housekeeping_interval": "10"}, "monitoring_cadvisor_housekeeping_interval must be a duration"),
    ({"monitoring_cadvisor_max_housekeeping_interval": "5s"}, "monitoring_cadvisor_max_housekeeping_interval (5s) must not be shorter"),
    ({"monitoring_cadvisor_port": 8080}, "no port may be used by two services"),
    ({"monitoring_cadvisor_enable_metrics": ["cpu", "gpu"]}, "monitoring_cadvisor_enable_metrics may only name"),
    ({"monitoring_cadvisor_image": "ghcr.io/google/cadvisor:latest"}, "monitoring_cadvisor_image must name an image pinned"),
    ({"monitoring_prometheus_retention_size": "1G"}, "monitoring_prometheus_retention_size must be a size"),
]
STATE = (f"sha256sum {PROJECT_DIR}/compose.yaml {PROJECT_DIR}/prometheus/prometheus.yml"
         f" {PROJECT_DIR}/prometheus/rules/moneytracker.yml;"
         f" docker ps -q --no-trunc --filter label=com.docker.compose.project={PROJECT} | sort")


@pytest.fixture(scope="module")
def runs(host):
    before = host.check_output(STATE)
    outs = run_side_by_side(str(Path(SCENARIO) / "monitoring-only.yml"), [[json.dumps(extra)] for extra, _ in CASES])
    results = {needle: out for (_, needle), out in zip(CASES, outs)}
    return before, host.check_output(STATE), results


@pytest.mark.parametrize("needle", [c[1] for c in CASES])
def test_bad_input_fails_at_preflight_naming_it(runs, needle):
    _, _, results = runs
    rc, out = results[needle]
    assert rc != 0, out
    assert needle in out, out[-3000:]
    assert "changed=0" in out and "failed=1" in out, out[-3000:]
    assert "moneytracker.deploy.monitoring : Preflight" in out, out[-3000:]


def test_bad_input_changed_nothing_on_the_host(runs):
    before, after, _ = runs
    assert before == after
