"""Test helpers shared by the scenarios' verifiers: run ansible-playbook against Molecule's
inventory, several runs side by side (each case only reads the host until its preflight fails);
kill one at a given task; call the app's API through nginx on the test host."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time


def deploy(*extra, timeout=900, playbook="deploy"):
    """ansible-playbook moneytracker.deploy.<playbook> on Molecule's inventory, each extra as `-e`;
    (exit code, output with stderr)."""
    args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], f"moneytracker.deploy.{playbook}"]
    for e in extra:
        args += ["-e", e]
    proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout, check=False, env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    return proc.returncode, proc.stdout


def recap(out):
    """The play recap's counters of the last host line: {'ok': N, 'changed': N, ...}."""
    line = [x for x in out.splitlines() if "ok=" in x and "changed=" in x][-1]
    return dict((k, int(v)) for k, v in (kv.split("=") for kv in line.split(":", 1)[1].split()))


def run_side_by_side(playbook: str, extra_vars_list: list[list[str]], timeout: int = 600) -> list[tuple[int, str]]:
    """One ansible-playbook per entry of extra_vars_list (each a list of `-e` values), started
    together; returns (exit code, output) per entry, in order."""
    procs = []
    for extra_vars in extra_vars_list:
        args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook]
        for value in extra_vars:
            args += ["-e", value]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      stdin=subprocess.DEVNULL,
                                      env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")))
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=timeout)
        results.append((proc.returncode, out))
    return results


def killed_at_task(args: list[str], task: str, delay: float, env: dict, timeout: int = 900) -> tuple[int, str]:
    """Start `args` (an ansible-playbook command line) in a session of its own and SIGKILL its
    whole process group `delay` seconds after the banner of the task named `task` appears (the
    controller killed mid-run). Returns (its pid, its output up to then); fails the test when the
    task never started."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, env=env, start_new_session=True)
    seen = []
    deadline = time.time() + timeout
    for line in proc.stdout:
        seen.append(line)
        # "TASK [<task>" in a play, "TASK [<role> : <task>" in a role
        if line.startswith(f"TASK [{task}") or (line.startswith("TASK [") and f": {task}" in line):
            time.sleep(delay)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return proc.pid, "".join(seen)
        if time.time() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    raise AssertionError(f"the task {task!r} never started:\n" + "".join(seen)[-3000:])


def api(host, method: str, path: str, payload=None, base: str = "http://127.0.0.1:8080", cafile: str = ""):
    """The app's JSON API through nginx, from the test host (curl); a POST gets a CSRF token first.
    HTTPS is verified against `cafile` when given."""
    curl = "curl -sS --max-time 10" + (f" --cacert '{cafile}'" if cafile else "")
    cmd = f"{curl} '{base}{path}'"
    if method == "POST":
        token = json.loads(host.check_output(f"{curl} '{base}/api/csrf'"))["token"]
        cmd = (f"{curl} -X POST -H 'Content-Type: application/json' -H 'X-CSRF-Token: {token}'"
               f" --data '{json.dumps(payload)}' '{base}{path}'")
    return json.loads(host.check_output(cmd))


def redeploy_from_scratch(host, *extra: str, timeout: int = 900) -> str:
    """A test fixture, not an operator procedure: the app's state removed from the test host (the
    stack and its data volume, the project directory with the release history, the backups, the
    host tool's state: lock and journal), then deploy.yml as the scenario's converge runs it. The
    host is as right after converge (the images stay loaded); `extra` are -e values for that deploy
    (app_database=sqlite, say). Returns the play's output."""
    host.check_output(
        "set -e; if [ -f /opt/moneytracker/compose.yaml ]; then"
        " docker compose -f /opt/moneytracker/compose.yaml down --remove-orphans --timeout 10; fi;"
        " docker volume rm -f moneytracker_data moneytracker_postgres >/dev/null;"
        " rm -rf /opt/moneytracker /var/backups/moneytracker /var/backups/moneytracker-postgres /var/lib/moneytracker-db")
    proc = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "moneytracker.deploy.deploy"]
                          + [arg for value in extra for arg in ("-e", value)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout
