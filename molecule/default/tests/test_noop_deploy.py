"""A deploy with nothing to change starts nothing, and a deploy still puts right what drifted.

The app role reads the host once (moneytracker_stack_info) and skips `docker compose up` when
every container runs the active compose file, healthy, and nothing in the run changed what they
run; it skips the schema container when the release record and the live database say the schema
is at this release's head. These run real deploys (converge.yml) on the deployed test host with
its real engine and Compose, and look at what ran."""
import json
import os
import re
import subprocess
from pathlib import Path

CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"
CONTAINERS = ("docker ps --filter label=com.docker.compose.project=moneytracker"
              " --format '{{.Names}} {{.ID}}' | sort")


def deploy(host):
    run = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(CONVERGE)],
                         capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, check=False,
                         env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    recap = re.search(rf"^{re.escape(host.backend.host)}\s+:\s+ok=\d+\s+changed=(\d+)", run.stdout, re.M)
    assert recap, out[-4000:]
    return int(recap.group(1)), run.stdout


def task_status(stdout: str, name: str) -> str:
    """'ok', 'changed' or 'skipping' of the task whose title contains name."""
    for block in stdout.split("\nTASK [")[1:]:
        title, body = (block.split("\n", 1) + [""])[:2]
        if name in title:
            found = re.search(r"^(ok|changed|skipping):", body, re.M)
            return found.group(1) if found else "?"
    raise AssertionError(f"no task {name!r} ran")


def started_nothing(stdout: str) -> bool:
    """The start (tasks/up_start.yml: the rollout and its rescue) was skipped as a whole, so no
    rollout task ran."""
    return (task_status(stdout, "Up | Start the stack, or put the previous one back") == "skipping"
            and "TASK [moneytracker.deploy.app : Up | Roll the stack out behind the edge" not in stdout)


def test_a_noop_deploy_starts_nothing_and_runs_no_schema_container(host):
    before = host.check_output(CONTAINERS)
    changed, out = deploy(host)
    assert changed == 0
    assert started_nothing(out), out[-3000:]
    assert task_status(out, "Schema | Ask the new backend image what is pending") == "skipping"
    assert host.check_output(CONTAINERS) == before
    assert json.loads(host.check_output(
        "curl -fsS http://127.0.0.1:8080/health/ready"))["status"] == "ready"


def test_a_stopped_container_is_replaced_and_routed(host):
    frontend = "docker ps -aq --filter label=com.docker.compose.project=moneytracker --filter label=com.docker.compose.service=frontend"
    host.check_output(f"docker stop $({frontend})")
    changed, out = deploy(host)
    assert changed >= 1
    assert task_status(out, "Up | Roll the stack out behind the edge") == "changed"
    assert "removed moneytracker-frontend-" in out and "(a stopped frontend container)" in out, out[-3000:]
    ids = host.check_output(frontend).split()
    assert len(ids) == 1, ids
    state = host.check_output(f"docker inspect -f '{{{{.Name}}}} {{{{.State.Status}}}} {{{{.State.Health.Status}}}}' {ids[0]}")
    name, status, health = state.split()
    assert (status, health) == ("running", "healthy")
    assert f'set $mt_route_frontend "{name.lstrip("/")}:8080";' in host.check_output("cat /opt/moneytracker/edge/routes.inc")
    assert host.run("curl -fsS -o /dev/null http://127.0.0.1:8080/").rc == 0
    # And the next deploy is a no-op again.
    changed, out = deploy(host)
    assert changed == 0 and started_nothing(out), out[-3000:]
