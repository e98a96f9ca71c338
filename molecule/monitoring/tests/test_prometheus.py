"""Prometheus and node_exporter as the role runs them (monitoring_prometheus_enabled: true).

Real Prometheus 2.53 and node_exporter 1.9 (Debian 13's packages, built into local images; the
role's default pins are upstream 3.13 / 1.9.1). Proves: both containers have their limits,
read-only root filesystems, non-root user and health checks; only Prometheus is published, on
127.0.0.1; every scrape target is up; the alert rules the role wrote are the ones loaded; and the
whole path from the host tool's metrics file to an alert works: a file rendered by the
moneytracker_db tool's own renderer (a failed check_quick, a 30-hour-old backup) is read by
node_exporter's textfile collector, keeps its `job` label through honor_labels, and fires
MoneyTrackerIntegrityCheckFailed and puts MoneyTrackerBackupTooOld in pending (15m `for`).
The stand-in cAdvisor's fixed sample (working set at 95% of its limit) puts
ContainerMemoryNearLimit in pending: the rule matches the series names cAdvisor exports. A real
OOM kill in a throwaway container fires HostOomKill through node_exporter's vmstat collector.
The rule logic itself is unit-tested with promtool: tests/prometheus/.
"""
import importlib.util
import shlex
import sys
import time

import pytest
import yaml

from conftest import PROJECT_DIR, ROOT, container, curl, mem_bytes, prom, setting, wait_for

TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"


@pytest.fixture(scope="module")
def prometheus(host):
    return container(host, "prometheus")


@pytest.fixture(scope="module")
def node_exporter(host):
    return container(host, "node-exporter")


def test_prometheus_container(prometheus):
    hc, cfg = prometheus["HostConfig"], prometheus["Config"]
    assert cfg["Image"] == setting("monitoring_prometheus_image")
    assert prometheus["State"]["Health"]["Status"] == "healthy"
    assert cfg["User"] == "65534:65534" and hc["ReadonlyRootfs"] is True
    assert hc["CapDrop"] == ["ALL"] and hc["SecurityOpt"] == ["no-new-privileges:true"]
    assert hc["Memory"] == hc["MemorySwap"] == mem_bytes(setting("monitoring_prometheus_mem_limit"))
    assert hc["NanoCpus"] == int(float(setting("monitoring_prometheus_cpus")) * 1e9)
    assert hc["PidsLimit"] == setting("monitoring_prometheus_pids_limit")
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    assert hc["PortBindings"] == {"9090/tcp": [{"HostIp": "127.0.0.1", "HostPort": "9090"}]}
    assert f"--storage.tsdb.retention.time={setting('monitoring_prometheus_retention_time')}" in cfg["Cmd"]
    assert f"--storage.tsdb.retention.size={setting('monitoring_prometheus_retention_size')}" in cfg["Cmd"]
    assert f"GOMEMLIMIT={int(hc['Memory'] * 0.8)}" in cfg["Env"]
    mounts = {m["Destination"]: m for m in prometheus["Mounts"]}
    assert mounts["/etc/prometheus"]["Source"] == f"{PROJECT_DIR}/prometheus" and not mounts["/etc/prometheus"]["RW"]
    assert mounts["/prometheus"]["Type"] == "volume" and mounts["/prometheus"]["Name"].endswith("_prometheus-data")


def test_node_exporter_container(node_exporter):
    hc, cfg = node_exporter["HostConfig"], node_exporter["Config"]
    assert cfg["Image"] == setting("monitoring_node_exporter_image")
    assert node_exporter["State"]["Health"]["Status"] == "healthy"
    assert cfg["User"] == "65534:65534" and hc["ReadonlyRootfs"] is True and hc["CapDrop"] == ["ALL"]
    assert hc["Memory"] == mem_bytes(setting("monitoring_node_exporter_mem_limit"))
    assert not hc["PortBindings"], "node_exporter is scraped on the project network, not published"
    assert cfg["Cmd"] == ["--collector.disable-defaults", "--collector.vmstat", "--collector.textfile",
                          "--collector.textfile.directory=/textfile", "--web.listen-address=:9100"]
    [mount] = node_exporter["Mounts"]
    assert (mount["Source"], mount["Destination"], mount["RW"]) == (TEXTFILE_DIR, "/textfile", False)


def test_prometheus_not_reachable_beyond_loopback(host):
    eth0 = host.check_output("ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1").strip()
    assert curl(host, f"http://{eth0}:9090/-/ready")[0] == 7


def test_every_target_is_up(host):
    def targets():
        active = prom(host, "/api/v1/targets")["activeTargets"]
        health = {t["labels"]["job"]: t["health"] for t in active}
        return health if set(health.values()) == {"up"} else None

    health = wait_for(targets, timeout=60)
    assert health == {"cadvisor": "up", "node": "up", "prometheus": "up"}, prom(host, "/api/v1/targets")


def test_the_rules_written_are_the_rules_loaded(host):
    written = yaml.safe_load(host.file(f"{PROJECT_DIR}/prometheus/rules/moneytracker.yml").content_string)
    want = {g["name"]: sorted(r["alert"] for r in g["rules"]) for g in written["groups"]}
    loaded = {g["name"]: sorted(r["name"] for r in g["rules"]) for g in prom(host, "/api/v1/rules")["groups"]}
    assert loaded == want
    assert want["containers"] == ["ContainerMemoryNearLimit", "ContainerOomKilled", "ContainerRestarting"]
    assert want["moneytracker-db"] == ["MoneyTrackerBackupTooOld", "MoneyTrackerDbMetricsMissing",
                                       "MoneyTrackerIntegrityCheckFailed", "MoneyTrackerMaintenanceLockStale"]
    for group in prom(host, "/api/v1/rules")["groups"]:
        for rule in group["rules"]:
            assert rule["health"] == "ok", rule


def load_host_tool():
    path = ROOT / "roles/moneytracker_db/files/moneytracker_db.py"
    spec = importlib.util.spec_from_file_location("moneytracker_db", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["moneytracker_db"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def db_metrics_file(host):
    """moneytracker_db.prom as the host tool writes it (its own render_metrics): the last
    check_quick failed a minute ago, and the newest verified backup is 30 hours old."""
    now = time.time()
    old = now - 30 * 3600
    snapshot = {
        "jobs": {
            "backup": {"result": "ok", "last_run_epoch": old, "last_success_epoch": old},
            "prune": None,
            "check_quick": {"result": "failed", "last_run_epoch": now - 60, "last_success_epoch": now - 86400},
            "check_full": {"result": "ok", "last_run_epoch": now - 3600, "last_success_epoch": now - 3600},
            "restore": None,
            "offsite": None,
        },
        "newest_backup": {"epoch": old, "size": 123456},
        "backups_count": 3,
        "backup_fs": {"free_bytes": 10 ** 10},
        "maintenance_lock": {"state": "free"},
    }
    text = load_host_tool().render_metrics(snapshot)
    tmp = f"{TEXTFILE_DIR}/.moneytracker_db.prom.tmp"
    host.check_output(f"printf %s {shlex.quote(text)} > {tmp} && chmod 0644 {tmp} && "
                      f"mv {tmp} {TEXTFILE_DIR}/moneytracker_db.prom")
    yield text
    host.run(f"rm -f {TEXTFILE_DIR}/moneytracker_db.prom")


def alerts(host) -> dict:
    """{(alertname, the container's name or the host tool's job or ""): state}"""
    return {(a["labels"]["alertname"], a["labels"].get("name", a["labels"].get("job", ""))): a["state"]
            for a in prom(host, "/api/v1/alerts")["alerts"]}


def test_host_tool_metrics_keep_their_job_label(host, db_metrics_file):
    def value():
        result = prom(host, "/api/v1/query?query=moneytracker_db_last_run_success")["result"]
        return {r["metric"]["job"]: r["value"][1] for r in result} or None

    assert wait_for(value, timeout=30) == {"backup": "1", "check_quick": "0", "check_full": "1"}


def test_failed_check_fires_and_old_backup_is_pending(host, db_metrics_file):
    def state():
        got = alerts(host)
        return got if got.get(("MoneyTrackerIntegrityCheckFailed", "check_quick")) == "firing" else None

    got = wait_for(state, timeout=30)
    assert got, alerts(host)
    assert ("MoneyTrackerIntegrityCheckFailed", "check_full") not in got
    assert got[("MoneyTrackerBackupTooOld", "")] == "pending"
    assert ("MoneyTrackerDbMetricsMissing", "") not in got


def test_memory_rule_matches_cadvisor_series(host):
    def state():
        return alerts(host).get(("ContainerMemoryNearLimit", "cadvisor-standin-sample"))

    assert wait_for(state, timeout=30) == "pending"


def test_an_oom_kill_on_the_host_fires_host_oom_kill(host):
    """A real OOM kill in the test host's engine: a 32 MiB container whose inner shell doubles a
    string until the kernel kills it (the container's main shell goes on, as a gunicorn master
    does when a worker is killed). node_exporter's node_vmstat_oom_kill counts it and
    HostOomKill fires; Docker marks the container State.OOMKilled although it keeps running (what
    the runbook tells operators to read). cAdvisor's per-container count needs the real cAdvisor."""
    name = "monitoring-oomtest"
    loop = 'while :; do sh -c "x=a; while :; do x=\\$x\\$x; done"; sleep 2; done'
    host.check_output(f"docker run -d --name {name} -m 32m --memory-swap 32m --entrypoint sh "
                      f"{setting('monitoring_cadvisor_image')} -c {shlex.quote(loop)}")
    try:
        def firing():
            return alerts(host).get(("HostOomKill", "node")) == "firing"

        assert wait_for(firing, timeout=60), prom(host, "/api/v1/query?query=node_vmstat_oom_kill")
        state = host.check_output(f"docker inspect -f '{{{{.State.Running}}}} {{{{.State.OOMKilled}}}}' {name}")
        assert state.split() == ["true", "true"], "running, and the OOM kill of a child recorded"
    finally:
        host.run(f"docker rm -f {name}")
