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


def test_a_noop_deploy_starts_nothing_and_runs_no_schema_container(host):
    before = host.check_output(CONTAINERS)
    changed, out = deploy(host)
    assert changed == 0
    assert task_status(out, "Up | Start the backend and wait") == "skipping"
    assert task_status(out, "Up | Start the stack and wait") == "skipping"
    assert task_status(out, "Schema | Ask the new backend image what is pending") == "skipping"
    assert host.check_output(CONTAINERS) == before
    assert json.loads(host.check_output(
        "curl -fsS http://127.0.0.1:8080/health/ready"))["status"] == "ready"


def test_a_stopped_container_is_started_again(host):
    host.check_output("docker stop moneytracker-frontend-1")
    changed, out = deploy(host)
    assert changed >= 1
    assert task_status(out, "Up | Restart services that run this configuration but are not healthy") == "changed"
    assert task_status(out, "Up | Start the stack and wait") == "ok"
    state = host.check_output("docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' moneytracker-frontend-1")
    assert state == "running healthy"
    # And the next deploy is a no-op again.
    changed, out = deploy(host)
    assert changed == 0 and task_status(out, "Up | Start the stack and wait") == "skipping"
