"""The docker role's preflight, run for real against the controller (connection=local).

The preflight entry point only reads (facts, getent): these runs change nothing on the
machine, and they prove that bad input fails with a message that names the variable to change.
The controller here is Debian 12, which is also the real platform for the check "Debian's own
packages cannot give Compose v2 on Debian 12". That nothing changes on a real test host when
deploy.yml gets bad input is proven by the Molecule scenario `default` (test_bad_input.py).
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAY = """
- hosts: localhost
  gather_facts: true
  tasks:
    - ansible.builtin.include_role:
        name: moneytracker.deploy.docker
        tasks_from: preflight
"""


def _debian_major():
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_ID="):
                return int(line.split("=", 1)[1].strip('"'))
    except (OSError, ValueError):
        pass
    return None


def run_preflight(tmp_path, **extra_vars):
    play = tmp_path / "preflight.yml"
    play.write_text(PLAY)
    args = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(play),
            "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"]
    for k, v in extra_vars.items():
        args += ["-e", f"{k}={v}" if not isinstance(v, (dict, list, int)) else f"{{\"{k}\": {v!r}}}".replace("'", '"')]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=180, check=False)


needs_debian = pytest.mark.skipif(_debian_major() not in (12, 13), reason="controller is not Debian 12/13")


@needs_debian
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"docker_source": "snap"}, "docker_source"),
        ({"docker_log_max_size": "10 megs"}, "docker_log_max_size"),
        ({"docker_log_max_size": "0m"}, "docker_log_max_size"),
        ({"docker_log_max_file": 0}, "docker_log_max_file"),
        ({"docker_log_max_file": "three"}, "docker_log_max_file"),
        ({"docker_users": ["no-such-user-mt"]}, "no-such-user-mt"),
        ({"docker_daemon_options": {"log-driver": "syslog"}}, "docker_log_driver"),
        ({"docker_compose_min_version": "1.29"}, "docker_compose_min_version"),
    ],
    ids=str,
)
def test_bad_input_fails_naming_the_variable(tmp_path, extra, needle):
    # docker_ce so that the platform check passes on a Debian 12 controller too.
    r = run_preflight(tmp_path, docker_source="docker_ce", **extra) if "docker_source" not in extra \
        else run_preflight(tmp_path, **extra)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert needle in out, out
    assert "changed=0" in out, out


@needs_debian
def test_good_input_passes(tmp_path):
    r = run_preflight(tmp_path, docker_source="docker_ce")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(_debian_major() != 12, reason="needs a Debian 12 controller")
def test_debian12_distribution_source_is_refused_before_any_change(tmp_path):
    r = run_preflight(tmp_path, docker_source="distribution")
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "docker_source=distribution cannot give Compose v2 on Debian 12" in out, out
    assert "docker_source: docker_ce" in out


@pytest.fixture
def read_only_sysctl(tmp_path):
    """A file on a read-only tmpfs: what /proc/sys/net/ipv4/conf/all/route_localnet is on a host
    that is an unprivileged container (the Molecule test host without its workaround)."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and mount rights)")
    try:
        (mnt / "route_localnet").write_text("0\n")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        yield mnt / "route_localnet"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@needs_debian
def test_userland_proxy_off_is_refused_where_dockerd_cannot_route_ports(tmp_path, read_only_sysctl):
    # _docker_route_localnet_sysctl is the role's internal path of that sysctl, pointed here at a
    # read-only file: dockerd would refuse to start there with userland-proxy false.
    r = run_preflight(tmp_path, docker_source="docker_ce", _docker_route_localnet_sysctl=str(read_only_sysctl))
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "read-only" in out and "docker_daemon_options: {userland-proxy: true}" in out, out
    assert "changed=0" in out, out

    # The operator's override (the proxy stays on) passes on such a host.
    r = run_preflight(tmp_path, docker_source="docker_ce", _docker_route_localnet_sysctl=str(read_only_sysctl),
                      docker_daemon_options={"userland-proxy": True})
    assert r.returncode == 0, r.stdout + r.stderr
