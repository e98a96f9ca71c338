"""The preflight's messages name the variable that failed, its value and the rule (issue 10).

Run for real against the controller (connection=local), with the values given as a new user
gives them: `-e key=value` (every value a string then). Found misleading before:

- a port published twice reported "app_http_bind must be an IP address (got '0.0.0.0')" first;
- "Out of range:" listed 15 variables instead of the one that failed;
- any moneytracker_db_* number given as `-e key=value` (even a valid one) crashed the
  preflight with "'>=' not supported between instances of '_AnsibleTaggedStr' and 'int'";
- a misspelt variable with a role's prefix (app_backend_mem_limt) was silently ignored.

The preflight entry points only read: these runs change nothing (recap changed=0).
"""
import os
import re
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import PREFLIGHT_PLAY, flat

ROOT = Path(__file__).resolve().parents[2]
SECRET = secrets.token_urlsafe(48)


def run(tmp_path, role, *extra):
    """ansible-playbook with each extra as `-e key=value` (strings, as typed on a command line)."""
    play = tmp_path / f"preflight-{role}.yml"
    play.write_text(PREFLIGHT_PLAY.format(role=role))
    args = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(play),
            "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"]
    if role == "app":
        args += ["-e", f"app_secret_key={SECRET}"]
    if role == "docker":
        args += ["-e", "docker_source=docker_ce"]
    for e in extra:
        args += ["-e", e]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=180, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def failure(out):
    """The failed task's message, flattened: from msg: to the next item, task or recap."""
    text = flat(out)
    assert "msg:" in text, out
    return re.split(r"PLAY RECAP|TASK \[|(?:ok|failed|fatal|skipping): \[", text.split("msg:", 1)[1])[0]


def refused(tmp_path, role, *extra):
    rc, out = run(tmp_path, role, *extra)
    assert rc != 0, out
    assert "changed=0" in out, out
    return failure(out)


# ---- numbers given as -e key=value -------------------------------------------------------------
def test_moneytracker_db_numbers_as_strings_pass(tmp_path):
    rc, out = run(tmp_path, "moneytracker_db", "moneytracker_db_retention_daily=3",
                  "moneytracker_db_retention_weekly=0", "moneytracker_db_lock_ttl_seconds=120",
                  "moneytracker_db_busy_timeout_ms=0")
    assert rc == 0, out
    assert "not supported between" not in out, out


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("moneytracker_db_lock_ttl_seconds=30",
         "moneytracker_db_lock_ttl_seconds must be an integer >= 60 (got '30')"),
        ("moneytracker_db_busy_timeout_ms=-5",
         "moneytracker_db_busy_timeout_ms must be an integer >= 0 (got '-5')"),
        ("moneytracker_db_retention_weekly=-1",
         "moneytracker_db_retention_weekly must be an integer >= 0 (got '-1')"),
    ],
)
def test_moneytracker_db_number_names_only_the_variable(tmp_path, extra, expected):
    msg = refused(tmp_path, "moneytracker_db", extra)
    assert expected in msg, msg
    name = extra.split("=", 1)[0]
    others = {"moneytracker_db_retention_daily", "moneytracker_db_retention_weekly",
              "moneytracker_db_retention_monthly", "moneytracker_db_lock_ttl_seconds",
              "moneytracker_db_busy_timeout_ms"} - {name}
    assert not [o for o in others if o in msg], msg


def test_moneytracker_db_non_number_names_the_variable(tmp_path):
    rc, out = run(tmp_path, "moneytracker_db", "moneytracker_db_retention_daily=x")
    assert rc != 0, out
    assert "moneytracker_db_retention_daily" in failure(out), out
    assert "not supported between" not in out, out


def test_moneytracker_db_retention_all_zero(tmp_path):
    msg = refused(tmp_path, "moneytracker_db", "moneytracker_db_retention_daily=0",
                  "moneytracker_db_retention_weekly=0", "moneytracker_db_retention_monthly=0")
    assert "must together be >= 1" in msg and "(got 0, 0, 0)" in msg, msg
    assert "lock_ttl" not in msg and "busy_timeout" not in msg, msg


# ---- one variable per range message -------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("app_releases_keep=1",
         "app_releases_keep must be an integer >= 2 (the previous release is kept for rollback) (got '1')"),
        ("app_backend_pids_limit=8", "app_backend_pids_limit must be an integer >= 16 (got '8')"),
        ("app_migration_timeout=-1", "app_migration_timeout must be an integer >= 10 (got '-1')"),
        ("app_log_max_size=10", "app_log_max_size must be a size like 10m"),
        ("app_healthcheck_timeout=3", "app_healthcheck_timeout must be a duration like 10s or 1m30s (got '3')"),
    ],
)
def test_app_range_names_only_the_variable(tmp_path, extra, expected):
    msg = refused(tmp_path, "app", extra)
    assert expected in msg, msg
    assert "Out of range" not in msg, msg
    name = extra.split("=", 1)[0]
    listed = {w.strip(",.;:()'") for w in msg.split()} & {
        "app_backend_pids_limit", "app_frontend_pids_limit", "app_web_concurrency", "app_log_max_file",
        "app_releases_keep", "app_migration_timeout", "app_migration_lock_ttl", "app_log_max_size",
        "app_healthcheck_interval", "app_healthcheck_timeout"}
    assert listed == {name}, msg


def test_app_non_number_names_the_variable_and_value(tmp_path):
    # the role's argument_specs (type int) refuse it before the preflight's own checks
    msg = refused(tmp_path, "app", "app_migration_timeout=ten")
    assert "app_migration_timeout" in msg and "ten" in msg and "int" in msg, msg


def test_app_empty_command_names_it(tmp_path):
    msg = refused(tmp_path, "app", '{"app_migration_status_command": []}')
    assert "app_migration_status_command must not be empty" in msg, msg
    assert "app_migration_upgrade_command" not in msg, msg


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("monitoring_cadvisor_pids_limit=8", "monitoring_cadvisor_pids_limit must be an integer >= 32 (got '8')"),
        ("monitoring_log_max_size=big", "monitoring_log_max_size must be a size like 10m"),
        ("monitoring_healthcheck_interval=30", "monitoring_healthcheck_interval must be a duration"),
        ("monitoring_prometheus_restart_alert_count=0",
         "monitoring_prometheus_restart_alert_count must be an integer >= 1 (got '0')"),
        ("monitoring_project_name=Mon;reboot", "monitoring_project_name must be lowercase letters, digits"),
    ],
)
def test_monitoring_range_names_only_the_variable(tmp_path, extra, expected):
    msg = refused(tmp_path, "monitoring", extra)
    assert expected in msg, msg
    assert "Out of range" not in msg, msg


def test_monitoring_cluster_without_this_host(tmp_path):
    msg = refused(tmp_path, "monitoring", '{"monitoring_cluster_nodes": ["mt-manager", "mt-worker"]}')
    assert "monitoring_cluster_nodes must list every node of the swarm once, this host (localhost) included" in msg, msg


def test_docker_log_rotation_names_only_the_variable(tmp_path):
    msg = refused(tmp_path, "docker", "docker_log_max_file=0")
    assert "docker_log_max_file must be an integer >= 1 (got '0')" in msg, msg
    assert "docker_log_max_size" not in msg, msg


# ---- ports ----------------------------------------------------------------------------------------
def test_port_published_twice_names_the_port_and_both_variables(tmp_path):
    # The monitoring role checks its ports against the app's, which it reads from the app role's
    # facts entry point (no copied defaults of the app's variables).
    msg = refused(tmp_path, "monitoring", "app_http_port=8081")  # monitoring_cadvisor_port's default
    assert "app_http_bind" not in msg, msg
    assert "port 8081 is published by both monitoring_cadvisor_port and app_http_port" in msg, msg
    assert "no port may be used by two services" in msg, msg


def test_app_ports_published_twice_within_the_app(tmp_path):
    msg = refused(tmp_path, "app", "app_http_port=9000", "app_backend_debug_port=9000")
    assert "port 9000 is published by both app_http_port and app_backend_debug_port" in msg, msg


def test_valid_bind_address_is_not_reported(tmp_path):
    msg = refused(tmp_path, "app", "app_http_bind=0.0.0.0", "app_http_port=70000")
    assert "app_http_bind" not in msg, msg
    assert "app_http_port must be a port number 1-65535 (got '70000')" in msg, msg


def test_bad_bind_address_names_only_it(tmp_path):
    msg = refused(tmp_path, "app", "app_http_bind=localhost")
    assert "app_http_bind must be an IP address" in msg and "(got 'localhost')" in msg, msg
    assert "port" not in msg.replace("app_http_bind", ""), msg


@pytest.fixture
def taken_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) on the controller")
def test_port_taken_on_the_host_names_the_port_variable_and_holder(tmp_path, taken_port):
    msg = refused(tmp_path, "app", f"app_http_port={taken_port}")
    assert f"app_http_port={taken_port}" in msg, msg
    assert f"port {taken_port} on 0.0.0.0 is already in use on localhost" in msg, msg
    # ss shows this test's process as the holder (we run as the same user or as root)
    assert f"pid={os.getpid()}" in msg, msg
    assert "app_http_bind must" not in msg, msg


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) on the controller")
def test_port_taken_on_another_address_passes(tmp_path, taken_port):
    rc, out = run(tmp_path, "app", f"app_http_port={taken_port}", "app_http_bind=127.0.0.2")
    assert rc == 0, out


# ---- unknown variables with a role's prefix -----------------------------------------------------
@pytest.mark.parametrize(
    ("role", "typo", "known"),
    [
        ("app", "app_backend_mem_limt", "app_backend_mem_limit"),
        ("moneytracker_db", "moneytracker_db_retention_dayly", "moneytracker_db_retention_daily"),
        ("monitoring", "monitoring_cadvisor_prot", "monitoring_cadvisor_port"),
        ("docker", "docker_log_max_files", "docker_log_max_file"),
    ],
)
def test_unknown_variable_names_the_closest_known_one(tmp_path, role, typo, known):
    msg = refused(tmp_path, role, f"{typo}=1")
    assert f"{typo} is not a variable of the {role} role" in msg, msg
    assert f"did you mean {known}?" in msg, msg


def test_monitoring_disabled_checks_names_not_values(tmp_path):
    """monitoring_enabled=false only removes the stack: its values are not checked (nothing uses
    them), a misspelt name still is."""
    rc, out = run(tmp_path, "monitoring", "monitoring_enabled=false", "monitoring_cadvisor_pids_limit=8")
    assert rc == 0, out
    msg = refused(tmp_path, "monitoring", "monitoring_enabled=false", "monitoring_cadvisor_prot=1")
    assert "did you mean monitoring_cadvisor_port?" in msg, msg


def test_unknown_variable_without_a_close_name(tmp_path):
    msg = refused(tmp_path, "app", "app_zzzz=1")
    assert "app_zzzz is not a variable of the app role" in msg, msg
    assert "did you mean" not in msg, msg


def test_known_variables_of_other_roles_are_not_reported(tmp_path):
    # the app role reads monitoring_cadvisor_port; the moneytracker_db role has names starting with app
    rc, out = run(tmp_path, "app", "monitoring_cadvisor_port=8082", "moneytracker_db_app_project_dir=/opt/x")
    assert rc == 0, out


# ---- rules across fields name the ones involved -------------------------------------------------
def test_backup_and_state_dir_the_same(tmp_path):
    msg = refused(tmp_path, "moneytracker_db", "moneytracker_db_backup_dir=/srv/mt",
                  "moneytracker_db_state_dir=/srv/mt/")
    assert "moneytracker_db_backup_dir and moneytracker_db_state_dir must differ (both are '/srv/mt')" in msg
    assert "offsite" not in msg, msg


def test_registry_login_incomplete(tmp_path):
    msg = refused(tmp_path, "app", "app_registry_url=registry.example.com", "app_registry_username=ci")
    assert "(app_registry_password is empty)" in msg, msg
    msg = refused(tmp_path, "monitoring", "monitoring_registry_url=registry.example.com",
                  "monitoring_registry_password=pw")
    assert "(monitoring_registry_username is empty)" in msg, msg
    assert "app_image_archive_dir" not in msg, msg


@pytest.mark.parametrize(
    "role, extra, expected",
    [
        ("monitoring", "cadvisor_port=8082", "cadvisor_port was renamed monitoring_cadvisor_port"),
        ("monitoring", "cadvisor_prometheus_enabled=true",
         "cadvisor_prometheus_enabled was renamed monitoring_prometheus_enabled"),
        ("moneytracker_db", "sqlite_maintenance_retention_daily=3",
         "sqlite_maintenance_retention_daily was renamed moneytracker_db_retention_daily"),
    ],
)
def test_a_variable_with_its_0_1_name_is_refused_naming_the_new_one(tmp_path, role, extra, expected):
    # An inventory written for 0.1 must not deploy with the new defaults silently.
    msg = refused(tmp_path, role, extra)
    assert expected in msg, msg
    assert "porting notes" in msg, msg


# ---- HTTPS at the edge (issue 12) ----------------------------------------------------------------
def test_tls_settings_each_name_their_variable(tmp_path):
    msg = refused(tmp_path, "app", '{"app_tls_source": "acme", "app_tls_names": ["app_1.example.com", "*.example.com"]}',
                  "app_acme_directory_url=http://acme.example.com/dir").replace("''", "'")
    assert "app_tls_source=acme:" in msg and "Nothing was changed" in msg, msg
    assert "app_tls_names has 'app_1.example.com', which is not a DNS host name" in msg, msg
    assert "app_tls_names has *.example.com: a wildcard name cannot be validated over HTTP-01" in msg, msg
    assert "app_acme_email must be the ACME account's e-mail address (got '')" in msg, msg
    assert "app_acme_directory_url must be an https:// URL (got 'http://acme.example.com/dir')" in msg, msg


def test_tls_files_without_a_certificate_names_both_variables(tmp_path):
    msg = refused(tmp_path, "app", '{"app_tls_source": "files", "app_tls_names": ["app.example.com"]}')
    assert "app_tls_certificate is empty" in msg and "app_tls_private_key is empty" in msg, msg


def test_tls_off_checks_no_tls_variable(tmp_path):
    rc, out = run(tmp_path, "app", '{"app_tls_names": ["not a name"]}', "app_acme_email=")
    assert rc == 0, out
