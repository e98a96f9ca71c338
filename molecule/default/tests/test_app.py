"""The app role's stack on a real Debian 13 test host with its own Docker engine.

Proves, on the running stack: the limits, log rotation and hardening reach `docker inspect`;
both services are healthy; through nginx a transaction created via the API is listed and
survives `docker compose down && up`; compression and cache headers are the right ones for
index.html and for fingerprinted assets; maintenance mode answers 503 with Retry-After; the
secrets file is 0600 and the secret appears neither in the compose file nor in Ansible's output.
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
        states = {s: container(host, s)["State"].get("Health", {}).get("Status") for s in ("backend", "frontend")}
        if set(states.values()) == {"healthy"}:
            return
        time.sleep(2)
    raise AssertionError(f"not healthy after {timeout}s: {states}")


@pytest.mark.parametrize(
    ("service", "memory", "nanocpus", "pids", "user"),
    [("backend", 512 * MIB, 1_000_000_000, 256, "10001:10001"),
     ("frontend", 128 * MIB, 500_000_000, 128, "101:101")],
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


def test_only_the_frontend_is_published(host):
    assert container(host, "backend")["HostConfig"]["PortBindings"] in (None, {})
    bindings = container(host, "frontend")["HostConfig"]["PortBindings"]
    assert bindings == {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}


def test_backend_environment(host):
    env = dict(e.split("=", 1) for e in container(host, "backend")["Config"]["Env"])
    assert env["AUTO_MIGRATE"] == "false"
    assert env["DATABASE_URL"] == "sqlite:////data/moneytracker.db"
    # 512m and 1 CPU: clamp(floor((512 - 64) / 80), 1, 2 * 1 + 1) = 3, never a fixed 4.
    assert env["WEB_CONCURRENCY"] == "3"
    workers = host.check_output(
        f"docker exec {container(host, 'backend')['Id']} sh -c 'ls /proc | grep -c ^[0-9]'")
    assert int(workers) >= 4  # master + 3 workers (+ the exec'd shell)


def test_data_on_the_named_volume(host):
    mounts = container(host, "backend")["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", "moneytracker_data", "/data")]


def test_services_healthy(host):
    wait_healthy(host)
    deps = container(host, "frontend")["Config"]["Labels"].get("com.docker.compose.depends_on", "")
    assert "backend:service_healthy" in deps


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


def test_secrets_file_and_compose_file(host):
    s = host.file(f"{PROJECT}/secrets.env")
    assert (s.user, s.group, s.mode) == ("root", "root", 0o600)
    assert secret() in s.content_string
    compose = host.file(f"{PROJECT}/compose.yaml")
    assert compose.mode == 0o640
    assert secret() not in compose.content_string
    assert "MONEYTRACKER_SECRET_KEY" not in compose.content_string
    assert host.file(PROJECT).mode == 0o750


def test_release_recorded(host):
    releases = host.check_output(f"ls {PROJECT}/releases").split()
    assert releases
    record = json.loads(host.file(f"{PROJECT}/releases/{sorted(releases)[-1]}/release.json").content_string)
    assert record["backend_image"] == "moneytracker/backend:2.0.0"
    assert record["schema_after"] == "0002"
    assert host.file(f"{PROJECT}/releases/{sorted(releases)[-1]}/compose.yaml").content_string == \
        host.file(f"{PROJECT}/compose.yaml").content_string


def test_rerun_changes_nothing_and_never_prints_the_secret(host):
    before = container(host, "backend")["Id"], container(host, "frontend")["Id"]
    r = subprocess.run(
        ["ansible-playbook", "-vv", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "moneytracker.deploy.deploy"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert re.search(r"changed=0\s", out), out[-1500:]
    assert secret() not in out
    after = container(host, "backend")["Id"], container(host, "frontend")["Id"]
    assert before == after, "a rerun with nothing changed must not recreate containers"
