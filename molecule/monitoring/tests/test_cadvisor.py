"""The cAdvisor container the role runs, as `docker inspect` and the test host see it.

The image is a TEST DOUBLE (moneytracker-test/cadvisor-standin, examples/monitoring): no registry
is reachable here, so the real ghcr.io/google/cadvisor cannot be pulled. What this file proves is
what the role controls: the pinned image it was given runs, with the documented read-only mounts,
/dev/kmsg mapped, not privileged (CAP_SYSLOG added instead), the flags as its command line, its
memory/CPU/process limits, json-file rotation, restart policy and a /healthz health check that
passes, published on 127.0.0.1 only. From inside the container it also proves the mounts are
readable, the Docker API answers through the read-only /var/run mount, and /dev/kmsg can be read
(and cannot without CAP_SYSLOG on this kernel, kernel.dmesg_restrict=1).

What it does NOT prove: that real cAdvisor v0.55.1 accepts these flags (the stand-in only checks
them against cAdvisor v0.49.1's --help), that it finds the containers, counts OOM kills or what it
costs in CPU and memory with these settings. Those need the real image on a real host
(docs/monitoring.md, "Checking on a real host").
"""
import re
import shlex

import pytest

from conftest import PROJECT_DIR, curl, mem_bytes, setting

MOUNTS = {"/": "/rootfs", "/var/run": "/var/run", "/sys": "/sys", "/var/lib/docker": "/var/lib/docker",
          "/dev/disk": "/dev/disk"}


def expected_flags() -> dict:
    labels = ",".join(setting("monitoring_cadvisor_whitelisted_container_labels"))
    return {
        "port": "8080",
        "housekeeping_interval": setting("monitoring_cadvisor_housekeeping_interval"),
        "max_housekeeping_interval": setting("monitoring_cadvisor_max_housekeeping_interval"),
        "docker_only": "true",
        "enable_metrics": ",".join(setting("monitoring_cadvisor_enable_metrics")),
        "store_container_labels": "false",
        "whitelisted_container_labels": labels,
        "event_storage_event_limit": "default=0",
        "event_storage_age_limit": "default=0",
        "max_procs": "1",
    }


def test_runs_the_pinned_image_healthy(cadvisor):
    assert cadvisor["Config"]["Image"] == setting("monitoring_cadvisor_image")
    assert cadvisor["State"]["Running"] is True
    assert cadvisor["State"]["Health"]["Status"] == "healthy"
    assert cadvisor["Config"]["Labels"]["com.docker.compose.project.working_dir"] == PROJECT_DIR


def test_host_mounts_are_read_only(cadvisor):
    mounts = {m["Source"]: m for m in cadvisor["Mounts"]}
    assert set(mounts) == set(MOUNTS), mounts
    for source, dest in MOUNTS.items():
        assert mounts[source]["Destination"] == dest
        assert mounts[source]["RW"] is False, source
        assert mounts[source]["Type"] == "bind"


def test_kmsg_device_and_no_privileged_mode(cadvisor):
    hc = cadvisor["HostConfig"]
    assert hc["Privileged"] is False
    assert hc["Devices"] == [{"PathOnHost": "/dev/kmsg", "PathInContainer": "/dev/kmsg", "CgroupPermissions": "rwm"}]
    assert [c.removeprefix("CAP_") for c in hc["CapAdd"]] == ["SYSLOG"]
    assert hc["SecurityOpt"] == ["no-new-privileges:true"]


def test_flags_are_the_command_line(cadvisor):
    args = cadvisor["Config"]["Cmd"]
    parsed = dict(a.removeprefix("--").split("=", 1) for a in args)
    assert parsed == expected_flags()
    assert len(parsed) == len(args), "a flag given twice"


def test_limits_logs_and_restart_policy(cadvisor):
    hc = cadvisor["HostConfig"]
    assert hc["Memory"] == mem_bytes(setting("monitoring_cadvisor_mem_limit"))
    assert hc["MemorySwap"] == hc["Memory"], "no swap: memswap_limit = mem_limit"
    assert hc["NanoCpus"] == int(float(setting("monitoring_cadvisor_cpus")) * 1e9)
    assert hc["PidsLimit"] == setting("monitoring_cadvisor_pids_limit")
    assert hc["RestartPolicy"]["Name"] == "unless-stopped"
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    assert f"GOMEMLIMIT={int(hc['Memory'] * 0.8)}" in cadvisor["Config"]["Env"]


def test_health_check_is_wget_on_healthz(cadvisor):
    check = cadvisor["Config"]["Healthcheck"]
    assert check["Test"] == ["CMD", "wget", "--quiet", "--tries=1", "--spider", "http://127.0.0.1:8080/healthz"]
    assert check["Interval"] == 10 * 10 ** 9 and check["Retries"] == 3


def test_published_on_loopback_only(host, cadvisor):
    assert cadvisor["HostConfig"]["PortBindings"] == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8081"}]}
    rc, body = curl(host, "http://127.0.0.1:8081/healthz")
    assert (rc, body) == (0, "ok")
    # The test host's own address on its network: nothing listens there (curl 7 = refused).
    eth0 = host.check_output("ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1").strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", eth0), eth0
    rc, _ = curl(host, f"http://{eth0}:8081/healthz")
    assert rc == 7, f"cAdvisor answers on {eth0}:8081 (curl exit {rc})"


@pytest.fixture(scope="module")
def standin_metrics(host):
    rc, body = curl(host, "http://127.0.0.1:8081/metrics")
    assert rc == 0, body
    return body


def test_standin_accepted_the_flags(standin_metrics):
    """The stand-in exits at start on a flag or metric kind cAdvisor's --help does not know; it
    runs, and reports the flags as it parsed them."""
    seen = dict(re.findall(r'^cadvisor_standin_flag_info\{flag="([^"]+)",value="([^"]*)"\} 1$', standin_metrics, re.M))
    assert seen == expected_flags()


def test_container_sees_what_cadvisor_reads(standin_metrics):
    for dest in MOUNTS.values():
        assert f'cadvisor_standin_path_readable{{path="{dest}"}} 1' in standin_metrics, dest
    assert "cadvisor_standin_docker_api_up 1" in standin_metrics
    assert 'cadvisor_standin_kmsg_readable{reason="ok"} 1' in standin_metrics


def test_kmsg_needs_cap_syslog_here(host):
    """Why monitoring_cadvisor_cap_add is [SYSLOG]: with kernel.dmesg_restrict=1 (Debian's default) a
    container gets EPERM reading /dev/kmsg without it, so cAdvisor would log 'Could not configure
    a source for OOM detection' and never count an OOM kill."""
    if host.file("/proc/sys/kernel/dmesg_restrict").content_string.strip() != "1":
        pytest.skip("kernel.dmesg_restrict is 0 on this kernel: any container may read /dev/kmsg")
    probe = ("import os\ntry:\n os.close(os.open('/dev/kmsg', os.O_RDONLY | os.O_NONBLOCK)); print('readable')\n"
             "except OSError as e:\n print(e.strerror)")
    image = setting("monitoring_cadvisor_image")
    cmd = f"docker run --rm --network none --device /dev/kmsg {{caps}} --entrypoint python3 {image} -c {shlex.quote(probe)}"
    assert host.check_output(cmd.format(caps="")).strip() == "Operation not permitted"
    assert host.check_output(cmd.format(caps="--cap-add SYSLOG")).strip() == "readable"
