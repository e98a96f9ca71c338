"""The app role's stack on a real Debian 13 test host with its own Docker engine.

Proves, on the running stack: the limits, log rotation and hardening reach `docker inspect`;
both services are healthy; through nginx a transaction created via the API is listed and
survives `docker compose down && up`; compression and cache headers are the right ones for
index.html and for fingerprinted assets; maintenance mode answers 503 with Retry-After; the
secret is a file only the backend's uid reads, mounted read-only, and appears neither in the
compose file, nor in any container's `docker inspect`, nor in Ansible's output; a new secret
recreates the backend, which then uses it.
"""
import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

PROJECT = "/opt/moneytracker"
BASE = "http://127.0.0.1:8080"
MIB = 1024 * 1024


def secret():
    return (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "app_secret_key").read_text().strip()


def container(host, service):
    cid = host.check_output(f"docker compose --project-directory {PROJECT} ps -q {service}").strip()
    assert cid, f"no container for {service}"
    return json.loads(host.check_output(f"docker inspect {cid}"))[0]


def curl(host, path, *opts, body=True):
    """(status, headers dict (lower-case names), body) of a request made on the test host.
    body=False for compressed answers (the body is then not text)."""
    out = host.check_output(
        "curl -sS --max-time 10 -D - -o /tmp/mt-body " + " ".join(opts) + f" '{BASE}{path}'; echo; "
        + ("cat /tmp/mt-body" if body else "wc -c < /tmp/mt-body"))
    head, _, body = out.partition("\r\n\r\n")
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body.strip()


def api(host, method, path, payload=None):
    _, _, token_body = curl(host, "/api/csrf")
    token = json.loads(token_body)["token"]
    opts = ["-X", method, "-H", "'Content-Type: application/json'", "-H", f"'X-CSRF-Token: {token}'"]
    if payload is not None:
        opts += ["--data", "'" + json.dumps(payload) + "'"]
    status, _, body = curl(host, path, *opts)
    return status, json.loads(body) if body else None


def wait_healthy(host, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = {s: container(host, s)["State"].get("Health", {}).get("Status") for s in ("backend", "frontend", "edge")}
        if set(states.values()) == {"healthy"}:
            return
        time.sleep(2)
    raise AssertionError(f"not healthy after {timeout}s: {states}")


@pytest.mark.parametrize(
    ("service", "memory", "nanocpus", "pids", "user"),
    [("backend", 512 * MIB, 1_000_000_000, 256, "10001:10001"),
     ("frontend", 128 * MIB, 500_000_000, 128, "101:101"),
     ("edge", 64 * MIB, 500_000_000, 128, "101:101")],
)
def test_limits_logging_and_hardening(host, service, memory, nanocpus, pids, user):
    c = container(host, service)
    hc = c["HostConfig"]
    assert hc["Memory"] == memory
    assert hc["MemorySwap"] == memory, "memswap_limit must equal mem_limit (no swap)"
    assert hc["NanoCpus"] == nanocpus
    assert hc["PidsLimit"] == pids
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}
    assert hc["ReadonlyRootfs"] is True
    assert [cap.upper().removeprefix("CAP_") for cap in hc["CapDrop"]] == ["ALL"]
    assert hc["SecurityOpt"] == ["no-new-privileges:true"]
    assert hc["RestartPolicy"]["Name"] == "unless-stopped"
    assert c["Config"]["User"] == user and not user.startswith("0")
    assert "/tmp" in hc["Tmpfs"]
    # The processes really run as that user.
    assert host.check_output(f"docker exec {c['Id']} id -u").strip() == user.split(":")[0]


def test_only_the_edge_is_published(host):
    assert container(host, "backend")["HostConfig"]["PortBindings"] in (None, {})
    assert container(host, "frontend")["HostConfig"]["PortBindings"] in (None, {})
    bindings = container(host, "edge")["HostConfig"]["PortBindings"]
    assert bindings == {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}


def test_the_edge_routes_to_the_running_containers(host):
    routes = host.check_output(f"cat {PROJECT}/edge/routes.inc")
    for service, port in (("backend", 8000), ("frontend", 8080)):
        name = container(host, service)["Name"].lstrip("/")
        assert f'set $mt_route_{service} "{name}:{port}";' in routes
    # Its own image runs `nginx -c` on the role's configuration (any nginx image works).
    edge = container(host, "edge")
    assert edge["Config"]["Entrypoint"] == ["nginx"]
    assert edge["Config"]["Cmd"][:4] == ["-e", "stderr", "-c", "/etc/moneytracker-edge/nginx.conf"]


def test_backend_environment(host):
    env = dict(e.split("=", 1) for e in container(host, "backend")["Config"]["Env"])
    assert env["AUTO_MIGRATE"] == "false"
    assert env["DATABASE_URL"] == "sqlite:////data/moneytracker.db"
    # The secret is a file; its value is in no environment.
    assert env["MONEYTRACKER_SECRET_KEY_FILE"] == "/run/secrets/secret_key"
    assert "MONEYTRACKER_SECRET_KEY" not in env
    # app_backend_env (molecule.yml) arrives as written: quotes, a line break and `key: value` in a
    # value stay in that value.
    assert env["MT_TEST_VALUE"] == 'it\'s "quoted"\nimage: evil/image:1 # not a key'
    # 512m and 1 CPU: clamp(floor((512 - 64) / 80), 1, 2 * 1 + 1) = 3, never a fixed 4.
    assert env["WEB_CONCURRENCY"] == "3"
    workers = host.check_output(
        f"docker exec {container(host, 'backend')['Id']} sh -c 'ls /proc | grep -c ^[0-9]'")
    assert int(workers) >= 4  # master + 3 workers (+ the exec'd shell)


def test_data_on_the_named_volume_and_the_secret_read_only(host):
    mounts = {m["Destination"]: m for m in container(host, "backend")["Mounts"]}
    assert set(mounts) == {"/data", "/run/secrets"}
    assert (mounts["/data"]["Type"], mounts["/data"]["Name"], mounts["/data"]["RW"]) == ("volume", "moneytracker_data", True)
    assert (mounts["/run/secrets"]["Type"], mounts["/run/secrets"]["Source"], mounts["/run/secrets"]["RW"]) == \
        ("bind", f"{PROJECT}/secrets", False)
    for service in ("frontend", "edge"):
        assert [m["Destination"] for m in container(host, service)["Mounts"] if "secrets" in m["Source"]] == []


def test_services_healthy(host):
    wait_healthy(host)


def test_health_endpoints_through_nginx(host):
    assert curl(host, "/nginx-health")[0] == 200
    assert curl(host, "/health/live")[0] == 200
    status, _, body = curl(host, "/health/ready")
    assert status == 200, body


def test_transaction_roundtrip_survives_down_and_up(host):
    marker = f"molecule-{uuid.uuid4().hex[:8]}"
    status, account = api(host, "POST", "/api/accounts", {"name": marker})
    assert status == 201, account
    status, tx = api(host, "POST", "/api/transactions",
                     {"account_id": account["id"], "amount_cents": -1234, "description": marker,
                      "occurred_on": "2026-11-26"})
    assert status == 201, tx
    listed = json.loads(curl(host, "/api/transactions")[2])
    items = listed["items"] if isinstance(listed, dict) else listed
    assert any(t["description"] == marker and t["amount_cents"] == -1234 for t in items)

    host.check_output(f"docker compose --project-directory {PROJECT} down")
    host.check_output(f"docker compose --project-directory {PROJECT} up -d --wait --wait-timeout 120")
    listed = json.loads(curl(host, "/api/transactions")[2])
    items = listed["items"] if isinstance(listed, dict) else listed
    assert any(t["description"] == marker for t in items), "the row did not survive down && up"
    balance = json.loads(curl(host, f"/api/accounts/{account['id']}/balance")[2])
    assert -1234 in balance.values(), balance


def test_index_is_revalidated_and_compressed(host):
    status, headers, _ = curl(host, "/", "-H", "'Accept-Encoding: gzip'", body=False)
    assert status == 200
    assert headers["cache-control"] == "no-cache"
    assert headers.get("content-encoding") == "gzip"
    for name in ("x-content-type-options", "x-frame-options", "content-security-policy", "referrer-policy"):
        assert name in headers, name
    assert "server" not in headers or headers["server"] == "nginx"  # server_tokens off: no version


def test_fingerprinted_assets_are_immutable_and_precompressed(host):
    index = curl(host, "/")[2]
    assets = re.findall(r'(/assets/[\w-]+\.[0-9a-f]{12,}\.(?:js|css))', index)
    assert assets, index[:500]
    for asset in assets:
        status, headers, _ = curl(host, asset, "-H", "'Accept-Encoding: gzip'", body=False)
        assert status == 200
        assert headers["cache-control"] == "public, max-age=31536000, immutable"
        assert headers.get("content-encoding") == "gzip"
        assert "etag" in headers or "last-modified" in headers


def test_api_responses_are_not_cached_as_assets(host):
    _, headers, _ = curl(host, "/api/transactions")
    assert "immutable" not in headers.get("cache-control", "")


def test_maintenance_mode(host):
    flag = f"{PROJECT}/maintenance/on"
    host.check_output(f"touch {flag}")
    try:
        status, headers, body = curl(host, "/")
        assert status == 503 and headers["retry-after"] == "60"
        assert "being upgraded" in body
        status, headers, body = curl(host, "/api/transactions")
        assert status == 503 and headers["retry-after"] == "60"
        assert json.loads(body)["detail"]
        assert curl(host, "/nginx-health")[0] == 200
    finally:
        host.check_output(f"rm -f {flag}")
    assert curl(host, "/")[0] == 200


def test_secret_file_and_compose_file(host):
    d = host.file(f"{PROJECT}/secrets")
    assert (d.uid, d.gid, d.mode) == (0, 10001, 0o750)
    f = host.file(f"{PROJECT}/secrets/secret_key")
    assert (f.uid, f.gid, f.mode) == (10001, 10001, 0o400)
    assert f.content_string == secret()
    # No compose file of this role reads the old env file, so it is gone.
    assert not host.file(f"{PROJECT}/secrets.env").exists
    compose = host.file(f"{PROJECT}/compose.yaml")
    assert compose.mode == 0o640
    assert secret() not in compose.content_string
    assert "MONEYTRACKER_SECRET_KEY=" not in compose.content_string and "env_file" not in compose.content_string
    assert host.file(PROJECT).mode == 0o750


def test_only_the_backend_uid_reads_the_secret(host):
    backend = container(host, "backend")["Id"]
    assert host.check_output(f"docker exec {backend} cat /run/secrets/secret_key") == secret()
    for user in ("101:101", "65534:65534"):
        assert host.run(f"docker exec --user {user} {backend} cat /run/secrets/secret_key").rc != 0, user
    assert host.run(f"docker exec {backend} touch /run/secrets/x").rc != 0  # read-only mount


def test_secret_not_in_docker_inspect_of_any_container(host):
    ids = host.check_output("docker ps -aq --no-trunc").split()
    assert len(ids) >= 2
    inspected = host.check_output(f"docker inspect {' '.join(ids)}")
    assert secret() not in inspected
    assert "MONEYTRACKER_SECRET_KEY=" not in inspected
    # Nor in what Compose makes of the project (env_file would be resolved here).
    assert secret() not in host.check_output(f"docker compose --project-directory {PROJECT} config")


def test_release_recorded(host):
    releases = host.check_output(f"ls {PROJECT}/releases").split()
    assert releases
    record = json.loads(host.file(f"{PROJECT}/releases/{sorted(releases)[-1]}/release.json").content_string)
    assert record["backend_image"] == "moneytracker/backend:2.0.0"
    assert record["schema_after"] == "0002"
    assert host.file(f"{PROJECT}/releases/{sorted(releases)[-1]}/compose.yaml").content_string == \
        host.file(f"{PROJECT}/compose.yaml").content_string


def test_rerun_changes_nothing_and_never_prints_the_secret(host):
    before = container(host, "backend")["Id"], container(host, "frontend")["Id"], container(host, "edge")["Id"]
    r = subprocess.run(
        ["ansible-playbook", "-vv", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "moneytracker.deploy.deploy"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert re.search(r"changed=0\s", out), out[-1500:]
    assert secret() not in out
    after = container(host, "backend")["Id"], container(host, "frontend")["Id"], container(host, "edge")["Id"]
    assert before == after, "a rerun with nothing changed must not recreate containers"


def test_a_new_secret_recreates_the_backend_which_uses_it(host):
    """Runs deploy.yml with another secret, then with the scenario's own again (last test here:
    the host ends as the scenario left it). The file, not the container's environment, changes;
    the label with the file's mtime makes Compose recreate the backend."""
    new_secret = "rotated-" + uuid.uuid4().hex + uuid.uuid4().hex
    before = container(host, "backend")["Id"]
    token = json.loads(curl(host, "/api/csrf")[2])["token"]  # signed with the old secret

    def post_account_with(token):
        body = json.dumps({"name": f"rotation-{uuid.uuid4().hex[:8]}"})
        return curl(host, "/api/accounts", "-X", "POST", "-H", "'Content-Type: application/json'",
                    "-H", f"'X-CSRF-Token: {token}'", "--data", f"'{body}'")[0]

    assert post_account_with(token) == 201  # the token works while the old secret is in use
    # A compose file of the role's earlier versions (env_file secrets.env), where up.yml keeps the
    # previous one: the first run keeps secrets.env for it; up.yml then replaces that copy, and
    # the second run removes secrets.env.
    host.check_output(
        f"printf 'services:\\n  backend:\\n    env_file:\\n      - \"{PROJECT}/secrets.env\"\\n'"
        f" > {PROJECT}/.staging/compose.previous.yaml")
    try:
        r = subprocess.run(
            ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "moneytracker.deploy.deploy",
             "-e", f"app_secret_key={new_secret}"],
            capture_output=True, text=True, timeout=600,
            env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-3000:]
        assert new_secret not in out
        wait_healthy(host)
        assert container(host, "backend")["Id"] != before, "a new secret must recreate the backend"
        assert host.file(f"{PROJECT}/secrets/secret_key").content_string == new_secret
        assert new_secret not in host.check_output("docker inspect $(docker ps -aq)")
        # The running backend uses the new secret: the old token is refused, a new one works.
        assert post_account_with(token) == 403
        assert post_account_with(json.loads(curl(host, "/api/csrf")[2])["token"]) == 201
        legacy = host.file(f"{PROJECT}/secrets.env")
        assert (legacy.user, legacy.group, legacy.mode) == ("root", "root", 0o600)
        assert f"MONEYTRACKER_SECRET_KEY='{new_secret}'" in legacy.content_string
    finally:
        r = subprocess.run(
            ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "moneytracker.deploy.deploy"],
            capture_output=True, text=True, timeout=600,
            env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert host.file(f"{PROJECT}/secrets/secret_key").content_string == secret()
    assert not host.file(f"{PROJECT}/secrets.env").exists
