"""The docker role on a real Debian 13 test host with its own Docker engine.

What this proves: the engine installed by the role runs and is enabled, Compose v2 is there,
daemon.json carries the rotation settings, and the engine really applies them (and memory/CPU
limits) to a container it starts. What it does not prove: the docker_ce source (Docker's
repository is unreachable from this test bed).
"""
import json
import re

import pytest

TEST_IMAGE = "moneytracker-test/busybox:latest"


def _docker_json(host, *args):
    out = host.check_output("docker " + " ".join(args))
    return json.loads(out)


@pytest.fixture(scope="module")
def busybox_image(host):
    """A tiny image made on the test host from busybox-static (no registry here)."""
    if host.run(f"docker image inspect {TEST_IMAGE}").rc != 0:
        host.check_output(
            "set -e; d=$(mktemp -d); mkdir -p $d/bin; cp /bin/busybox $d/bin/busybox; "
            "for a in sh sleep cat; do ln -s busybox $d/bin/$a; done; "
            f"tar -C $d -c . | docker import -c 'CMD [\"/bin/sleep\", \"3600\"]' - {TEST_IMAGE}; "
            "rm -rf $d"
        )
    return TEST_IMAGE


@pytest.fixture
def container(host, busybox_image, request):
    name = "mt-test-" + re.sub(r"[^a-zA-Z0-9_.-]", "-", request.node.originalname)[:50]
    created = []

    def run(*opts):
        host.check_output(f"docker rm -f {name} >/dev/null 2>&1 || true")
        host.check_output(f"docker run -d --name {name} {' '.join(opts)} {busybox_image}")
        created.append(name)
        return name

    yield run
    for c in created:
        host.run(f"docker rm -f {c}")


def test_engine_running_and_enabled(host):
    svc = host.service("docker")
    assert svc.is_running
    assert svc.is_enabled


def test_compose_is_v2_and_recent(host):
    version = host.check_output("docker compose version --short").strip().lstrip("v")
    major, minor = (int(x) for x in version.split(".")[:2])
    assert major == 2 and minor >= 18, version


def test_daemon_json_has_rotation_and_live_restore(host):
    f = host.file("/etc/docker/daemon.json")
    assert f.user == "root" and f.mode == 0o644
    cfg = json.loads(f.content_string)
    assert cfg["log-driver"] == "json-file"
    assert cfg["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert cfg["live-restore"] is True


def test_engine_reports_the_configured_defaults(host):
    info = _docker_json(host, "info", "--format", "'{{json .}}'")
    assert info["LoggingDriver"] == "json-file"
    assert info["LiveRestoreEnabled"] is True


def test_container_gets_rotated_json_file_logs(host, container):
    name = container()
    log_config = _docker_json(host, "inspect", "--format", "'{{json .HostConfig.LogConfig}}'", name)
    assert log_config == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}


def test_container_runs_with_memory_and_cpu_limits(host, container):
    name = container("--memory", "64m", "--memory-swap", "64m", "--cpus", "0.5", "--pids-limit", "50")
    hc = _docker_json(host, "inspect", "--format", "'{{json .HostConfig}}'", name)
    assert hc["Memory"] == 64 * 1024 * 1024
    assert hc["MemorySwap"] == 64 * 1024 * 1024
    assert hc["NanoCpus"] == 500_000_000
    assert hc["PidsLimit"] == 50
    state = _docker_json(host, "inspect", "--format", "'{{json .State}}'", name)
    assert state["Running"] is True, state
    # The limit is enforced by the kernel, not only recorded: the container's own cgroup says so.
    limit = host.check_output(
        f"docker exec {name} cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null"
        f" || docker exec {name} cat /sys/fs/cgroup/memory.max"
    ).strip()
    assert int(limit) == 64 * 1024 * 1024


def test_docker_group_has_no_unexpected_members(host):
    # docker_users defaults to []: nobody gets root-equivalent access by default.
    members = host.group("docker").members if host.group("docker").exists else []
    assert members == []
