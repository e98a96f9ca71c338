"""app_database: postgres, deployed from a bare host (converge): the round trip through the edge into
PostgreSQL, where the password is and is not, that nothing outside the project's internal network
reaches the server, and the settings sized from its memory limit. Read-only: runs on whatever
release another test file left (it only needs the app serving on PostgreSQL).

Does not prove PostgreSQL's own authentication code; it proves the deploy's wiring of it (scram
over TCP on an internal network, the password given only as a file)."""
import json
import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from playbook_runs import api  # noqa: E402  pylint: disable=wrong-import-position
from writer_load import PG_CONTAINER, pg_query  # noqa: E402  pylint: disable=wrong-import-position

SECRET_FILE = "/opt/moneytracker/secrets/postgres_password"


@pytest.fixture(scope="module")
def password():
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "app_postgres_password"
    value = path.read_text().split()[0]  # the lookup stores "<password> salt=..." when it salts
    assert len(value) == 32
    return value


def test_round_trip_through_the_edge_lands_in_postgresql(host):
    name = "pg-" + uuid.uuid4().hex[:8]
    account = api(host, "POST", "/api/accounts", {"name": name})
    tx = api(host, "POST", "/api/transactions",
             {"account_id": account["id"], "amount_cents": 4200, "description": name, "occurred_on": "2026-12-01"})
    assert api(host, "GET", f"/api/accounts/{account['id']}/balance") == {
        "account_id": account["id"], "balance_cents": 4200, "transactions": 1}
    # The row is in PostgreSQL (and there is no SQLite file on the data volume).
    assert pg_query(host, f"SELECT amount_cents, description FROM transactions WHERE id = {tx['id']}") == f"4200|{name}"
    assert not host.file("/var/lib/docker/volumes/moneytracker_data/_data/moneytracker.db").exists
    assert json.loads(host.check_output("curl -sS http://127.0.0.1:8080/health/ready"))["status"] == "ready"


def test_the_password_is_only_in_its_0400_file(host, password):
    secret = host.file(SECRET_FILE)
    assert (secret.uid, secret.gid, secret.mode) == (10001, 10001, 0o400)
    assert secret.content_string == password
    # No container's configuration or environment (docker inspect), no log, no other file.
    containers = host.check_output("docker ps -aq --no-trunc").split()
    assert len(containers) >= 4
    assert password not in host.check_output("docker inspect " + " ".join(containers))
    for c in containers:
        assert password not in host.run(f"docker logs {c} 2>&1").stdout
    # Every file of the project, /etc, the engine's state (container configs, the volumes: PostgreSQL
    # keeps a scram hash, not the password) and the logs: only the secret file holds it.
    found = host.run(f"grep -rlsF -e '{password}' /opt /etc /var/log /root /tmp /var/backups /var/lib/moneytracker-db"
                     " /var/lib/moneytracker-edge /var/lib/docker/containers /var/lib/docker/volumes").stdout.split()
    assert found == [SECRET_FILE], found
    # The server checks it: the app's role authenticates with scram-sha-256 over TCP.
    assert pg_query(host, "SELECT rolname, rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid "
                          "WHERE rolname = 'moneytracker'") == "moneytracker|t"
    assert "scram-sha-256" in host.check_output(f"docker exec {PG_CONTAINER} cat /var/lib/postgresql/data/pg_hba.conf")


def test_no_port_reaches_the_server_from_outside_its_network(host):
    assert host.check_output(f"docker port {PG_CONTAINER}").strip() == ""
    assert ":5432" not in host.check_output("ss -H -l -n -t")
    networks = json.loads(host.check_output(f"docker inspect -f '{{{{json .NetworkSettings.Networks}}}}' {PG_CONTAINER}"))
    assert list(networks) == ["moneytracker_database"]
    assert host.check_output("docker network inspect -f '{{.Internal}}' moneytracker_database").strip() == "true"
    # The edge (on the project's default network) cannot even resolve it; the backend reaches it.
    edge = host.run("docker exec moneytracker-edge-1 bash -c 'exec 3<>/dev/tcp/postgres/5432' 2>&1")
    assert edge.rc != 0, edge.stdout
    backend = host.check_output("docker ps -q --filter label=com.docker.compose.service=backend").split()[0]
    assert host.run(f"docker exec {backend} python3 -c \"import socket; socket.create_connection(('postgres', 5432), 3)\"").rc == 0
    # Nor by its address, from the edge or from a container on Docker's default bridge (Docker
    # isolates networks from each other; root on the host itself can reach every bridge, as it can
    # `docker exec`: that is not what an internal network keeps out).
    address = networks["moneytracker_database"]["IPAddress"]
    probe = f"timeout 3 bash -c 'exec 3<>/dev/tcp/{address}/5432'"
    assert host.run(f"docker exec moneytracker-edge-1 bash -c \"{probe}\"").rc != 0
    assert host.run(f"docker run --rm --network bridge --entrypoint bash moneytracker/edge:1.0.0 -c \"{probe}\"").rc != 0


def test_settings_sized_from_the_memory_limit_and_limits_applied(host):
    # 512m (the default): shared_buffers 128MB, max_connections 50 (tests/unit/test_sizing_filters.py).
    shown = pg_query(host, "SELECT name, setting, unit FROM pg_settings WHERE name IN "
                           "('max_connections', 'shared_buffers', 'maintenance_work_mem', 'listen_addresses') ORDER BY name")
    assert shown.splitlines() == ["listen_addresses|*|", "maintenance_work_mem|32768|kB", "max_connections|50|",
                                  "shared_buffers|16384|8kB"]
    config = json.loads(host.check_output(f"docker inspect -f '{{{{json .HostConfig}}}}' {PG_CONTAINER}"))
    assert (config["Memory"], config["PidsLimit"], config["ReadonlyRootfs"]) == (512 * 2**20, 256, True)
    assert config["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
    # The server runs as postgres (uid 10002 of the image), not root: the entrypoint dropped to it.
    pid = host.check_output(f"docker inspect -f '{{{{.State.Pid}}}}' {PG_CONTAINER}")
    assert host.check_output(f"stat -c %u /proc/{pid}") == "10002"
    assert host.check_output(f"grep -E '^(CapEff|CapPrm):' /proc/{pid}/status").split()[1::2] == ["0" * 16] * 2
