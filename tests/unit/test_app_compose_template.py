"""The app role's compose template, rendered by Ansible on the controller with the role's defaults
and vars, then read back as YAML.

Proves: values of app_backend_env stay values (a line break, a quote or `key: value` inside one
adds no key; `$` is doubled so that Compose interpolates nothing), and the backend's secret is
neither in the file nor in any environment: the backend gets MONEYTRACKER_SECRET_KEY_FILE and a
read-only mount of the secrets directory; the edge's TLS settings (off by default: uid 101, one
port, no HSTS; on: the master as root with the three capabilities nginx needs, 80 and 443, HSTS
only when asked). Does not prove how Compose itself reads the file (the
Molecule scenario `default` does: the role validates it with `docker compose config`, and
test_app.py reads the running container's environment and `docker inspect`).
"""
import json
import os
import secrets
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "app"
SECRET = secrets.token_urlsafe(48)
HOSTILE = {
    "LINE_BREAK": "ok\nimage: evil/image:1\n  privileged: true",
    "QUOTES": "it's \"quoted\" \\ backslash",
    "YAML_LOOKING": "key: value, [list], {map: 1}, &anchor *alias # comment",
    "DOLLARS": "$HOME ${PATH} $$ $",
    "UNICODE": "café ✓",
    "NUMBER": 42,
}
PLAY = """
- hosts: localhost
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


def render(tmp_path, template="compose.yaml.j2", **extra_vars):
    out = tmp_path / template.replace(".j2", "")
    (tmp_path / "play.yml").write_text(PLAY.format(role=ROLE, out=out, template=template))
    variables = {"app_secret_key": SECRET,
                 "_app_secret_key_stat": {"stat": {"exists": True, "mtime": 1700000000.25}}, **extra_vars}
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
         "-e", "ansible_python_interpreter={{ ansible_playbook_python }}", "-e", f"@{tmp_path / 'vars.json'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=180,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    return text, (yaml.safe_load(text) if template.endswith(".yaml.j2") else None)


def test_backend_env_values_stay_values(tmp_path):
    _, compose = render(tmp_path, app_backend_env=HOSTILE)
    backend = compose["services"]["backend"]
    env = backend["environment"]
    # Exactly the role's names and the operator's, nothing injected.
    assert set(env) == {"DATABASE_URL", "AUTO_MIGRATE", "WEB_CONCURRENCY", "MONEYTRACKER_SECRET_KEY_FILE", *HOSTILE}
    assert backend["image"] == "moneytracker/backend:2.0.0" and "privileged" not in backend
    # Compose turns $$ back into $ (and interpolates a single $): after that, each value is the input.
    assert {k: env[k].replace("$$", "$") for k in HOSTILE} == {k: str(v) for k, v in HOSTILE.items()}
    assert "$HOME" not in env["DOLLARS"].replace("$$", "")


def test_no_secret_in_the_compose_file_and_a_read_only_secret_mount(tmp_path):
    text, compose = render(tmp_path)
    assert SECRET not in text
    backend = compose["services"]["backend"]
    assert "env_file" not in backend
    assert not [k for k in backend["environment"] if k == "MONEYTRACKER_SECRET_KEY"]
    assert backend["environment"]["MONEYTRACKER_SECRET_KEY_FILE"] == "/run/secrets/secret_key"
    assert "/opt/moneytracker/secrets:/run/secrets:ro" in backend["volumes"]
    # A new secret file (its mtime, never its value) changes the backend's definition.
    assert backend["labels"]["org.moneytracker.secret-key-changed"] == "1700000000.25"
    for name, service in compose["services"].items():
        if name != "backend":
            assert not any("secrets" in str(v) for v in service.get("volumes", [])), name


def test_a_new_secret_file_changes_the_compose_file(tmp_path):
    first, _ = render(tmp_path)
    second, _ = render(tmp_path, _app_secret_key_stat={"stat": {"exists": True, "mtime": 1700000099.5}})
    assert first != second


def test_a_digest_pin_delivered_by_archive_runs_under_the_reference_the_host_knows(tmp_path):
    # The images role maps a digest pin loaded from an archive to name:sha256-<hex> (images_resolved):
    # the compose file must use that reference; a tag pin stays as configured.
    pin = "moneytracker/backend@sha256:" + "ab" * 32
    _, compose = render(tmp_path, app_backend_image=pin,
                        images_resolved={pin: "moneytracker/backend:sha256-" + "ab" * 32})
    assert compose["services"]["backend"]["image"] == "moneytracker/backend:sha256-" + "ab" * 32
    assert compose["services"]["frontend"]["image"] == "moneytracker/frontend:1.0.0"


TLS_ON = {"app_tls_source": "acme", "app_tls_names": ["app.example.com"], "app_acme_email": "ops@example.com",
          "app_http_port": 80}


def test_the_edge_without_tls_runs_as_uid_101_on_one_port(tmp_path):
    dummy, compose = render(tmp_path)
    edge = compose["services"]["edge"]
    assert edge["user"] == "101:101" and "cap_add" not in edge and edge["cap_drop"] == ["ALL"]
    assert edge["ports"] == ["0.0.0.0:8080:8080"]
    conf, dummy = render(tmp_path, "edge.conf.j2")
    assert "ssl" not in conf and "listen 8080 default_server;" in conf
    headers, dummy = render(tmp_path, "edge-security-headers.inc.j2")
    assert "Strict-Transport-Security" not in headers


def test_the_edge_with_tls_publishes_80_and_443_and_only_its_master_is_root(tmp_path):
    dummy, compose = render(tmp_path, **TLS_ON)
    edge = compose["services"]["edge"]
    assert edge["user"] == "0:0" and sorted(edge["cap_add"]) == ["CHOWN", "SETGID", "SETUID"]
    assert edge["cap_drop"] == ["ALL"] and edge["read_only"] is True
    assert edge["ports"] == ["0.0.0.0:80:8080", "0.0.0.0:443:8443"]
    assert any(v.endswith(":/var/lib/moneytracker-acme:ro") for v in edge["volumes"])
    nginx, dummy = render(tmp_path, "edge-nginx.conf.j2", **TLS_ON)
    assert "user nginx;" in nginx
    conf, dummy = render(tmp_path, "edge.conf.j2", **TLS_ON)
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf and "TLSv1.1" not in conf
    assert "location ^~ /.well-known/acme-challenge/" in conf
    assert "return 301 https://$host$request_uri;" in conf
    headers, dummy = render(tmp_path, "edge-security-headers.inc.j2", **TLS_ON)
    assert "Strict-Transport-Security" not in headers  # off until the operator turns it on
    headers, dummy = render(tmp_path, "edge-security-headers.inc.j2", app_tls_hsts_max_age=600, **TLS_ON)
    assert 'add_header Strict-Transport-Security "max-age=600" always;' in headers


def test_files_mode_mounts_no_webroot_and_redirects_to_a_custom_port(tmp_path):
    files = {**TLS_ON, "app_tls_source": "files", "app_https_port": 8443}
    dummy, compose = render(tmp_path, **files)
    assert not any("moneytracker-acme" in v for v in compose["services"]["edge"]["volumes"])
    conf, dummy = render(tmp_path, "edge.conf.j2", **files)
    assert "acme-challenge" not in conf and "return 301 https://$host:8443$request_uri;" in conf


PG_PASSWORD = secrets.token_urlsafe(24)


def test_sqlite_has_no_postgres_service_network_or_volume(tmp_path):
    _, compose = render(tmp_path)
    assert set(compose["services"]) == {"backend", "frontend", "edge"}
    assert "networks" not in compose and set(compose["volumes"]) == {"data"}
    assert compose["services"]["backend"]["environment"]["DATABASE_URL"] == "sqlite:////data/moneytracker.db"


def test_postgres_service_internal_sized_and_without_the_password(tmp_path):
    text, compose = render(tmp_path, app_database="postgres", app_postgres_password=PG_PASSWORD,
                           _app_postgres_password_mtime=1700000001.5)
    assert PG_PASSWORD not in text
    pg, backend = compose["services"]["postgres"], compose["services"]["backend"]
    # On the internal network only, nothing published; the backend joins it, the edge and frontend do not.
    assert compose["networks"] == {"database": {"internal": True}}
    assert pg["networks"] == ["database"] and "ports" not in pg
    assert backend["networks"] == ["default", "database"]
    assert "networks" not in compose["services"]["edge"] and "networks" not in compose["services"]["frontend"]
    # The password as a file, in no environment; the URL names no password.
    assert {k: v for k, v in pg["environment"].items() if k.startswith("POSTGRES_")} == {
        "POSTGRES_USER": "moneytracker", "POSTGRES_DB": "moneytracker",
        "POSTGRES_PASSWORD_FILE": "/run/secrets/postgres_password"}
    assert "/opt/moneytracker/secrets/postgres_password:/run/secrets/postgres_password:ro" in pg["volumes"]
    # pgBackRest: WAL archived to the repository, bind-mounted from the host; retention by count.
    assert "/var/backups/moneytracker-postgres:/var/lib/pgbackrest" in pg["volumes"]
    assert {k: pg["environment"][k] for k in ("PGBACKREST_STANZA", "PGBACKREST_REPO1_PATH",
                                              "PGBACKREST_REPO1_RETENTION_FULL")} == {
        "PGBACKREST_STANZA": "moneytracker", "PGBACKREST_REPO1_PATH": "/var/lib/pgbackrest",
        "PGBACKREST_REPO1_RETENTION_FULL": "7"}
    env = backend["environment"]
    assert env["DATABASE_URL"] == "postgresql://moneytracker@postgres:5432/moneytracker"
    assert env["DATABASE_PASSWORD_FILE"] == "/run/secrets/postgres_password" and env["DATABASE_POOL_SIZE"] == "5"
    assert "depends_on" not in backend  # the rollout's --no-deps would hash it away: a recreate every deploy
    # Sized from its 512m limit (filter postgres_sizing; test_sizing_filters.py works the numbers out).
    settings = dict(pg["command"][i + 1].split("=", 1) for i, arg in enumerate(pg["command"]) if arg == "-c")
    assert {k: settings[k] for k in ("max_connections", "shared_buffers", "maintenance_work_mem")} == {
        "max_connections": "50", "shared_buffers": "128MB", "maintenance_work_mem": "32MB"}
    assert (settings["archive_mode"], settings["archive_command"], settings["archive_timeout"]) == (
        "on", "pgbackrest archive-push %p", "60")
    assert pg["mem_limit"] == pg["memswap_limit"] == "512m" and pg["pids_limit"] == 256
    assert pg["logging"]["options"] == {"max-size": "10m", "max-file": "3"} and pg["read_only"] is True
    assert pg["cap_drop"] == ["ALL"] and set(pg["cap_add"]) == {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"}
    assert pg["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    # A new password file (its time, never its value) changes both containers' definitions.
    assert pg["labels"] == {"org.moneytracker.postgres-password-changed": "1700000001.5"}
    assert backend["labels"]["org.moneytracker.postgres-password-changed"] == "1700000001.5"
    assert compose["volumes"]["postgres"] == {"name": "moneytracker_postgres"}
