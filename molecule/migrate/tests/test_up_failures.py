"""A deploy whose start of the new containers fails or whose Docker engine dies under it, on
release 2.0.0 (where test_settle_after_a_kill.py leaves the host; from 1.0.0, e.g. before it, the
fixture deploys 2.0.0):
- the new backend cannot start (a port the new configuration publishes is taken by another
  container; a published port means the backend is recreated in place, not beside): the play
  fails naming the cause, the previous compose file is back, and the previous configuration serves;
- dockerd killed (SIGKILL on the test host) while the deploy rolls the backend out (a new backend
  starting beside the old one): the play fails, and the first rerun of deploy.yml converges (the
  second backend container, or a container Compose had renamed to <id>_<name>, is removed), with
  nothing lost from writers running throughout.
"""
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import writer_load  # noqa: E402  pylint: disable=wrong-import-position

PROJECT = "/opt/moneytracker"
V2 = "moneytracker/backend:2.0.0"


def playbook(name, *extra, **popen):
    args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], f"moneytracker.deploy.{name}"]
    for e in extra:
        args += ["-e", e]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"), **popen)


def run(name, *extra):
    proc = playbook(name, *extra)
    out, _ = proc.communicate(timeout=900)
    return proc.returncode, " ".join(out.split())


def ids(host):
    return host.check_output("docker ps -q --no-trunc | sort").split()


def backend(host):
    """The backend's container ID (its name changes with each release)."""
    found = host.check_output("docker ps -q --filter label=com.docker.compose.project=moneytracker"
                              " --filter label=com.docker.compose.service=backend").split()
    assert len(found) == 1, found
    return found[0]


def version(host):
    return json.loads(host.check_output("curl -sS --max-time 10 http://127.0.0.1:8080/api/version"))


@pytest.fixture(scope="module")
def on_v2(host):
    """Release 2.0.0 running (deploy.yml migrates to it when another state is found)."""
    if version(host).get("release") != "2.0.0":
        rc, out = run("deploy", f"app_backend_image={V2}")
        assert rc == 0, out[-3000:]
    assert version(host)["release"] == "2.0.0"


@pytest.mark.usefixtures("on_v2")
def test_a_port_taken_by_another_container_puts_the_previous_stack_back(host):
    """`compose up` fails (the backend's debug port is already allocated): the previous compose
    file is back, the previous containers serve, and the play names the cause."""
    compose_before = host.check_output(f"sha256sum {PROJECT}/compose.yaml")
    host.check_output("docker rm -f porthog >/dev/null 2>&1; docker run -d --name porthog -p 127.0.0.1:8099:8080"
                      " --entrypoint sleep moneytracker/frontend:1.0.0 600")
    try:
        rc, out = run("deploy", f"app_backend_image={V2}", "app_backend_debug_port=8099")
    finally:
        host.run("docker rm -f porthog")
    assert rc != 0
    assert "The stack did not come up" in out and "8099" in out, out[-3000:]
    assert "The previous compose file is back in place and its containers serve" in out, out[-3000:]
    assert host.check_output(f"sha256sum {PROJECT}/compose.yaml") == compose_before
    assert version(host)["release"] == "2.0.0"
    assert "8099" not in host.check_output(f"docker port {backend(host)} || true")


@pytest.mark.usefixtures("on_v2")
def test_dockerd_killed_during_a_deploy_then_the_first_rerun_converges(host):
    tag = "d" + uuid.uuid4().hex[:6]
    writer_load.start(host, tag)
    try:
        proc = playbook("deploy", f"app_backend_image={V2}", "app_backend_mem_limit=448m")
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "Up | Roll the stack out behind the edge" in line:
                time.sleep(1.5)
                host.check_output("kill -9 $(pidof dockerd)")
                break
        out, _ = proc.communicate(timeout=600)
        killed_rc = proc.returncode
        # systemd starts docker.service again (Restart=always); wait for it.
        for _ in range(60):
            if host.run("docker info >/dev/null 2>&1").rc == 0:
                break
            time.sleep(1)
        rc, rerun = run("deploy", f"app_backend_image={V2}", "app_backend_mem_limit=448m")
    finally:
        records = writer_load.stop(host, tag)
    assert killed_rc != 0 or "Up | Roll the stack out" in "".join(seen), "".join(seen)[-2000:] + out[-2000:]
    assert rc == 0, rerun[-4000:]
    assert host.check_output(f"docker inspect -f '{{{{.HostConfig.Memory}}}}' {backend(host)}") == str(448 << 20)
    names = host.check_output("docker ps -a --format '{{.Names}}'").split()
    assert not [n for n in names if "_moneytracker-backend-" in n], names
    assert len([n for n in names if n.startswith("moneytracker-backend-")]) == 1, names
    assert version(host)["release"] == "2.0.0"
    figures = writer_load.check(host, tag, records)
    writer_load.record(f"crash: dockerd killed during a deploy, then deploy.yml: {figures}", "crash")

    # And the run after it changes nothing and restarts nothing.
    before = ids(host)
    rc, again = run("deploy", f"app_backend_image={V2}", "app_backend_mem_limit=448m")
    assert rc == 0 and " changed=0 " in again, again[-2000:]
    assert ids(host) == before
