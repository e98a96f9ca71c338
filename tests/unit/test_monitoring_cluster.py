"""The monitoring role under Docker Swarm (monitoring_cluster_nodes, issue 14): its compose and
Prometheus templates, rendered by Ansible on the controller with the role's defaults and vars, then
read back as YAML, as the first node (a manager: cAdvisor, node_exporter, Prometheus scraping every
node) and as another node (cAdvisor and node_exporter only), and without nodes (a Compose host: no
cluster network, the targets by service name, as before).

Proves the files the role writes: which services each node runs, the alias each joins the cluster
network under, the targets (one per node, labelled `node`) and that nothing more is published.
Does not prove Docker attaches the containers to the overlay or that Prometheus reaches them
across nodes: the Molecule scenario `swarm` does (test_one_prometheus_scrapes_every_node).
"""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "monitoring"
NODES = ["mt-manager", "worker.example.com", "mt-worker-2"]
PLAY = """
- hosts: {host}
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
  tasks:
    - ansible.builtin.template:
        src: {role}/templates/{template}
        dest: {out}
        mode: "0600"
"""


def render(tmp_path, template, host, raw=False, **extra_vars):
    out = tmp_path / template.replace(".j2", "")
    (tmp_path / "play.yml").write_text(PLAY.format(role=ROLE, out=out, template=template, host=host))
    (tmp_path / "inventory.yml").write_text(json.dumps({"all": {
        "hosts": {name: {} for name in NODES + ["mt-compose"]},
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}))
    (tmp_path / "vars.json").write_text(json.dumps({"monitoring_prometheus_enabled": True, **extra_vars}))
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml"),
         "-e", f"@{tmp_path / 'vars.json'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=180,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out.read_text() if raw else yaml.safe_load(out.read_text())


def test_first_node_runs_prometheus_scraping_every_node_on_the_cluster_network(tmp_path):
    compose = render(tmp_path, "compose.yaml.j2", "mt-manager", monitoring_cluster_nodes=NODES)
    assert sorted(compose["services"]) == ["cadvisor", "node-exporter", "prometheus"]
    assert compose["networks"] == {"cluster": {"name": "moneytracker-monitoring", "external": True}}
    for service in ("cadvisor", "node-exporter", "prometheus"):
        assert compose["services"][service]["networks"] == {
            "default": {}, "cluster": {"aliases": [f"{service}-mt-manager"]}}
    # Published on loopback only, as on a Compose host; node_exporter not at all.
    assert compose["services"]["cadvisor"]["ports"] == ["127.0.0.1:8081:8080"]
    assert compose["services"]["prometheus"]["ports"] == ["127.0.0.1:9090:9090"]
    assert "ports" not in compose["services"]["node-exporter"]

    config = render(tmp_path, "prometheus.yml.j2", "mt-manager", monitoring_cluster_nodes=NODES)
    jobs = {job["job_name"]: job["static_configs"] for job in config["scrape_configs"]}
    # A node name that is not a DNS label (dots) is one on the network: worker-example-com.
    assert jobs["cadvisor"] == [
        {"targets": ["cadvisor-mt-manager:8080"], "labels": {"node": "mt-manager"}},
        {"targets": ["cadvisor-worker-example-com:8080"], "labels": {"node": "worker.example.com"}},
        {"targets": ["cadvisor-mt-worker-2:8080"], "labels": {"node": "mt-worker-2"}}]
    assert [c["targets"] for c in jobs["node"]] == [
        ["node-exporter-mt-manager:9100"], ["node-exporter-worker-example-com:9100"], ["node-exporter-mt-worker-2:9100"]]


def test_other_node_runs_the_exporters_only(tmp_path):
    compose = render(tmp_path, "compose.yaml.j2", "worker.example.com", monitoring_cluster_nodes=NODES)
    assert sorted(compose["services"]) == ["cadvisor", "node-exporter"]
    assert compose["services"]["node-exporter"]["networks"]["cluster"] == {
        "aliases": ["node-exporter-worker-example-com"]}
    assert "volumes" not in compose


@pytest.mark.parametrize("prometheus", [True, False])
def test_compose_host_is_unchanged(tmp_path, prometheus):
    compose = render(tmp_path, "compose.yaml.j2", "mt-compose", monitoring_prometheus_enabled=prometheus)
    assert "networks" not in compose
    assert all("networks" not in s for s in compose["services"].values())
    assert sorted(compose["services"]) == (["cadvisor", "node-exporter", "prometheus"] if prometheus else ["cadvisor"])
    if prometheus:
        config = render(tmp_path, "prometheus.yml.j2", "mt-compose")
        jobs = {job["job_name"]: job["static_configs"] for job in config["scrape_configs"]}
        assert jobs["cadvisor"] == [{"targets": ["cadvisor:8080"]}]
        assert jobs["node"] == [{"targets": ["node-exporter:9100"]}]


def test_the_unit_that_starts_the_containers_whenever_docker_starts(tmp_path):
    """Docker does not restart containers on an attachable overlay network when its engine starts
    (moby/moby#32607): the unit does, each time docker.service starts, trying until the network is
    there. Proves the file (started with Docker, `docker compose start` of this project, `$` escaped
    for systemd); the swarm scenario's worker-lost test proves a restarted node's exporters come back."""
    unit = render(tmp_path, "monitoring-start.service.j2", "worker.example.com", raw=True,
                  monitoring_cluster_nodes=NODES, monitoring_project_dir="/srv/mon")
    lines = unit.splitlines()
    assert {"After=docker.service", "Requires=docker.service", "PartOf=docker.service",
            "Type=oneshot", "RemainAfterExit=yes", "WantedBy=docker.service"} <= set(lines), unit
    start = [line for line in lines if line.startswith("ExecStart=")]
    assert len(start) == 1 and start[0].startswith("ExecStart=/bin/sh -c '"), start
    assert "docker compose --project-directory /srv/mon --file /srv/mon/compose.yaml start" in start[0]
    # systemd expands $NAME itself: the shell's own $ are written $$, none left single.
    assert "$$n" in start[0] and "$$((n + 1))" in start[0]
    assert not re.search(r"(?<!\$)\$(?!\$)", start[0]), start[0]
