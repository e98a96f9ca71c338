"""scripts/port-inventory.py: an inventory written for 0.1 comes out with the 0.2.0 names, every
renamed variable known to the roles' argument specs, and the monitoring preflight's table is the
one it uses."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "port-inventory.py"

OLD = """---
cadvisor_port: 8082
cadvisor_prometheus_enabled: true
cadvisor_project_dir: /srv/monitoring
cadvisor_standin_flag_info: 1   # a metric name in a comment-like value stays: not a variable
sqlite_maintenance_retention_daily: 14
sqlite_maintenance_cron_mailto: ops@example.com
app_http_port: 8080
"""


def spec_options(role: str) -> set[str]:
    spec = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())
    return set(spec["argument_specs"]["main"]["options"])


def test_dry_run_shows_the_diff_and_changes_nothing(tmp_path):
    inv = tmp_path / "group_vars" / "all.yml"
    inv.parent.mkdir()
    inv.write_text(OLD)
    r = subprocess.run([sys.executable, SCRIPT, str(tmp_path)], capture_output=True, text=True, check=False)
    assert r.returncode == 1, r.stderr
    assert "+monitoring_cadvisor_port: 8082" in r.stdout and "-cadvisor_port: 8082" in r.stdout
    assert inv.read_text() == OLD


def test_write_ports_every_variable_to_a_known_name(tmp_path):
    inv = tmp_path / "all.yml"
    inv.write_text(OLD)
    r = subprocess.run([sys.executable, SCRIPT, "--write", str(inv)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    new = yaml.safe_load(inv.read_text())
    assert new["monitoring_cadvisor_port"] == 8082 and new["monitoring_prometheus_enabled"] is True
    assert new["monitoring_project_dir"] == "/srv/monitoring"
    assert new["moneytracker_db_retention_daily"] == 14 and new["app_http_port"] == 8080
    known = spec_options("monitoring") | spec_options("moneytracker_db") | spec_options("app")
    assert {k for k in new if k != "cadvisor_standin_flag_info"} <= known
    again = subprocess.run([sys.executable, SCRIPT, str(inv)], capture_output=True, text=True, check=False)
    assert again.returncode == 0 and again.stdout == "", "a ported file needs nothing more"


# Options the cadvisor role of 0.1 did not have: nothing to port (the app role's registry login
# came to the monitoring role in 0.2.0). A new option goes here, or into the table if it renames one.
NEW_IN_0_2 = {"monitoring_registry_url", "monitoring_registry_username", "monitoring_registry_password",
              # Docker Swarm (issue 14): one Prometheus for every node.
              "monitoring_cluster_nodes", "monitoring_cluster_network"}


def test_the_table_covers_every_old_option():
    table = yaml.safe_load((ROOT / "roles/monitoring/vars/main.yml").read_text())["_monitoring_renamed_from"]
    options = spec_options("monitoring")
    assert set(table.values()) <= options, "every 0.1 name ports to an option the role has"
    assert options - set(table.values()) == NEW_IN_0_2, "every other monitoring option has its 0.1 name"
