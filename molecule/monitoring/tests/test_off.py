"""Turning things off: monitoring_prometheus_enabled=false removes Prometheus and node_exporter
and leaves cAdvisor running untouched; monitoring_enabled=false then removes every container of
the project, and keeps the files and Prometheus's data volume. A test file after this one gets
the converged state back from conftest's monitoring_on fixture."""
import pytest

from conftest import PROJECT, PROJECT_DIR, container, converge, project_containers


@pytest.fixture(scope="module")
def prometheus_off(host):
    cadvisor_id = container(host, "cadvisor")["Id"]
    run = converge("monitoring_prometheus_enabled=false")
    assert run.returncode == 0, run.stdout[-3000:]
    return cadvisor_id


def test_prometheus_off_removes_prometheus_and_node_exporter_only(host, prometheus_off):
    services = host.check_output(f"docker compose -p {PROJECT} ps -a --format '{{{{.Service}}}}'").split()
    assert services == ["cadvisor"]
    assert container(host, "cadvisor")["Id"] == prometheus_off, "cAdvisor was recreated"
    volumes = host.check_output("docker volume ls -q").split()
    assert f"{PROJECT}_prometheus-data" in volumes


def test_everything_off_removes_the_project(host, prometheus_off):
    run = converge("monitoring_enabled=false")
    assert run.returncode == 0, run.stdout[-3000:]
    assert project_containers(host) == []
    assert host.file(f"{PROJECT_DIR}/compose.yaml").exists
