"""deploy.yml with bad input on a converged test host: it fails at preflight, names the
variable, and changes nothing (recap changed=0; daemon.json, the compose file, the secret file,
the cron file and the running containers the same).

Runs ansible-playbook from the controller against Molecule's inventory, as an operator would;
the cases run side by side (each only reads the host until its preflight fails).
"""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from playbook_runs import run_side_by_side  # noqa: E402  pylint: disable=wrong-import-position

CASES = [
    ({"docker_log_max_size": "10 megs"}, "docker_log_max_size"),
    ({"docker_log_max_file": 0}, "docker_log_max_file"),
    ({"docker_source": "snap"}, "docker_source"),
    ({"app_backend_mem_limit": "512x"}, "app_backend_mem_limit"),
    ({"app_backend_cpus": 0}, "app_backend_cpus"),
    ({"app_frontend_cpus": -1}, "app_frontend_cpus"),
    ({"app_secret_key": "too-short"}, "app_secret_key"),
    ({"app_backend_debug_port": 8080}, "app_backend_debug_port"),
    ({"app_backend_image": "moneytracker/backend"}, "app_backend_image"),
    ({"app_image_archive_dir": "/nonexistent"}, "moneytracker-backend-2.0.0.tar"),
    # The example vault's placeholder (44 characters: only the list of published values refuses it).
    ({"app_secret_key": "CHANGE-ME-at-least-32-characters-long-random"},
     "app_secret_key is a value published in this collection"),
    ({"app_backend_env": {"X: 1\n    privileged": "true"}}, "app_backend_env names must match"),
    ({"app_backend_env": {"MONEYTRACKER_SECRET_KEY": "x" * 40}}, "MONEYTRACKER_SECRET_KEY*"),
    ({"moneytracker_db_cron_mailto": "ops@example.com\n* * * * * root touch /tmp/injected"},
     "moneytracker_db_cron_mailto"),
]
STATE = ("sha256sum /etc/docker/daemon.json /opt/moneytracker/compose.yaml /opt/moneytracker/secrets/secret_key"
         " /etc/cron.d/moneytracker-db; test ! -e /tmp/injected;"
         " systemctl show -p ActiveEnterTimestamp docker; docker ps -q --no-trunc | sort")


def extra_vars(extra):
    """-e values: key=value, or JSON where a value is not a plain string (a dict, a line break)."""
    return [json.dumps({k: v}) if not isinstance(v, (str, int)) or "\n" in str(v) else f"{k}={v}"
            for k, v in extra.items()]


@pytest.fixture(scope="module")
def runs(host):
    before = host.check_output(STATE)
    outs = run_side_by_side("moneytracker.deploy.deploy", [extra_vars(extra) for extra, _ in CASES])
    results = {needle: out for (_, needle), out in zip(CASES, outs)}
    return before, host.check_output(STATE), results


@pytest.mark.parametrize("needle", [c[1] for c in CASES])
def test_bad_input_fails_at_preflight_naming_it(runs, needle):
    _, _, results = runs
    rc, out = results[needle]
    assert rc != 0, out
    assert " ".join(needle.split()) in " ".join(out.split()), out  # the YAML callback folds long lines
    assert "changed=0" in out and "failed=1" in out, out
    assert "Preflight" in out, out


def test_bad_input_changed_nothing_on_the_host(runs):
    before, after, _ = runs
    assert before == after
