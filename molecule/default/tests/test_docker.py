"""The docker role on a real Debian 13 test host with its own Docker engine.

What this proves: the engine installed by the role runs and is enabled, Compose v2 is there,
daemon.json carries the rotation settings and the hardening (no-new-privileges, icc false,
userland-proxy false), and the engine really applies them (and memory/CPU limits) to containers
it starts. What it does not prove: the docker_ce source (Docker's repository is unreachable from
this test bed). The test host's /proc/sys/net is made writable by molecule/shared/prepare.yml
(as it is on a real server); without that, dockerd could not run with userland-proxy false.
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

    def run(*opts, command=""):
        host.check_output(f"docker rm -f {name} >/dev/null 2>&1 || true")
        host.check_output(f"docker run -d --name {name} {' '.join(opts)} {busybox_image} {command}")
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
    assert "name=no-new-privileges" in info["SecurityOptions"], info["SecurityOptions"]


def test_daemon_json_has_the_hardening(host):
    cfg = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert cfg["no-new-privileges"] is True
    assert cfg["icc"] is False
    assert cfg["userland-proxy"] is False


def test_container_gets_no_new_privileges_without_asking(host, container):
    name = container()  # no --security-opt at all
    assert re.search(r"^NoNewPrivs:\s+1$", host.check_output(f"docker exec {name} cat /proc/1/status"), re.M)


def test_default_bridge_has_no_inter_container_traffic(host, container):
    assert _docker_json(host, "network", "inspect", "bridge")[0]["Options"][
        "com.docker.network.bridge.enable_icc"] == "false"
    server = container(command="/bin/busybox httpd -f -p 8000 -h /")
    ip = host.check_output(f"docker inspect -f '{{{{.NetworkSettings.IPAddress}}}}' {server}").strip()
    fetch = f"/bin/busybox wget -q --spider -T 3 http://{ip}:8000/bin/cat"
    # The host reaches it (so the check works); another container on the default bridge does not.
    assert host.run(fetch).rc == 0, host.run(fetch).stderr
    peer = host.run(f"docker run --rm {TEST_IMAGE} {fetch}")
    assert peer.rc != 0, peer.stdout + peer.stderr


def test_published_ports_need_no_userland_proxy(host):
    # The app's edge publishes 8080 (test_app.py); it answers, and no docker-proxy runs.
    assert host.run("curl -fsS -o /dev/null --max-time 10 http://127.0.0.1:8080/nginx-health").rc == 0
    assert host.run("pgrep -x docker-proxy").rc == 1, host.check_output("ps -eo pid,args")


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
