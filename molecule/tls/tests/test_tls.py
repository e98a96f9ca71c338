"""HTTPS at the edge (issue 12), against a real ACME CA: Pebble beside the test host (prepare.yml).

The scenario deploys with app_tls_source=acme for app.moneytracker.test and www.moneytracker.test
(molecule.yml). The clients run on the test host, where /etc/hosts names the site 127.0.0.1, and
verify the certificate against Pebble's root (fetched from its management API, made at its start).
testssl.sh runs in its own container (examples/acme/testssl) beside the test host. The module's
fixture deploys the scenario's set-up once; a test that changes it (files mode, the CA made
unreachable) puts it back, so the order does not matter.
"""
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import runbook_commands as rb  # noqa: E402  pylint: disable=wrong-import-position
import writer_load  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api, deploy, recap  # noqa: E402  pylint: disable=wrong-import-position

NAME = "app.moneytracker.test"
SITE = f"https://{NAME}"
ROOT_CA = "/tmp/pebble-root.pem"
API_CA = "/tmp/pebble-api-ca.pem"
PROJECT = "/opt/moneytracker"
TLS_DIR = f"{PROJECT}/edge/tls"
TOOL = "moneytracker-edge-tls --config /var/lib/moneytracker-edge/moneytracker/tls.json"
PROJECT_DIR = os.environ.get("MOLECULE_PROJECT_DIRECTORY", str(Path(__file__).resolve().parents[3]))
LOGS = Path(PROJECT_DIR) / ".build" / "logs"


def served(host, name=NAME):
    """(serial, notAfter, issuer) of the certificate the edge answers with for `name`."""
    out = host.check_output(
        f"openssl s_client -connect 127.0.0.1:443 -servername {name} </dev/null 2>/dev/null"
        " | openssl x509 -noout -serial -enddate -issuer")
    fields = dict(line.split("=", 1) for line in out.splitlines())
    return fields["serial"], fields["notAfter"], fields["issuer"]


def containers(host):
    return host.check_output("docker ps -q --no-trunc --filter label=com.docker.compose.project=moneytracker"
                             " --filter label=com.docker.compose.oneoff=False | sort").split()


@pytest.fixture(name="acme", scope="module")
def fixture_acme(host):
    """The scenario's own set-up (acme), deployed; Pebble's root (made at its start) on the test host.
    Once per file: a test that changes the set-up (files mode) puts acme back itself."""
    rc, out = deploy()
    assert rc == 0, out[-3000:]
    host.check_output(f"curl -sS --fail --cacert {API_CA} https://pebble:15000/roots/0 -o {ROOT_CA}")
    if not api(host, "GET", "/api/accounts", base=SITE, cafile=ROOT_CA):
        api(host, "POST", "/api/accounts", {"name": "TLS tests"}, base=SITE, cafile=ROOT_CA)
    return out


def test_the_first_deploy_got_a_certificate_from_the_ca_and_https_serves_the_app(host, acme):
    serial, not_after, issuer = served(host)
    assert "Pebble" in issuer, issuer  # not the placeholder: the CA's intermediate signed it
    for name in ("app.moneytracker.test", "www.moneytracker.test"):
        page = host.run(f"curl -sS --fail --cacert {ROOT_CA} -o /dev/null -w '%{{http_code}}' https://{name}/")
        assert page.rc == 0 and page.stdout == "200", page.stderr
    ready = host.run(f"curl -sS --fail --cacert {ROOT_CA} https://{NAME}/health/ready")
    assert ready.rc == 0, ready.stderr
    # Without the CA's root the certificate is not trusted: curl really verified it above.
    assert host.run(f"curl -sS -o /dev/null https://{NAME}/").rc == 60


def test_http_redirects_to_https_but_the_acme_path(host, acme):
    head = host.check_output(f"curl -sS -o /dev/null -w '%{{http_code}} %{{redirect_url}}' http://{NAME}/api/accounts?x=1")
    assert head == f"301 https://{NAME}/api/accounts?x=1"
    challenge = host.check_output(f"curl -sS -o /dev/null -w '%{{http_code}}' http://{NAME}/.well-known/acme-challenge/nothing")
    assert challenge == "404"


def test_hsts_is_sent_when_turned_on_and_not_over_http(host, acme):
    headers = host.check_output(f"curl -sS -D - -o /dev/null --cacert {ROOT_CA} https://{NAME}/").lower()
    assert "strict-transport-security: max-age=31536000" in headers
    plain = host.check_output(f"curl -sS -D - -o /dev/null http://{NAME}/").lower()
    assert "strict-transport-security" not in plain


def test_only_80_and_443_are_published_and_the_key_is_root_only(host, acme):
    ports = host.check_output("docker ps --filter label=com.docker.compose.project=moneytracker --format '{{.Ports}}'")
    published = sorted({p.split("->")[0].rsplit(":", 1)[1] for p in ports.replace(", ", "\n").split() if "->" in p})
    assert published == ["443", "80"], ports
    key = host.file(f"{TLS_DIR}/privkey.pem")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)
    assert host.file(TLS_DIR).mode == 0o700
    edge = host.check_output("docker ps -q --filter label=com.docker.compose.service=edge")
    mounts = json.loads(host.check_output(f"docker inspect -f '{{{{json .Mounts}}}}' {edge}"))
    assert all(not m["RW"] for m in mounts if m["Destination"].startswith("/etc/moneytracker-edge")), mounts
    # The workers (uid 101), which serve every request, cannot read the key.
    worker = host.run(f"docker exec --user 101 {edge} cat /etc/moneytracker-edge/tls/privkey.pem")
    assert worker.rc != 0 and "Permission denied" in worker.stderr


def test_a_rerun_changes_nothing(host, acme):
    before = containers(host), served(host)
    rc, out = deploy()
    assert rc == 0, out[-3000:]
    assert recap(out)["changed"] == 0, out[-4000:]
    assert (containers(host), served(host)) == before


def test_a_renewal_by_the_timers_own_command_under_load_fails_no_request(host, acme):
    """certbot.service is what certbot.timer starts (`certbot -q renew`): Pebble's certificates
    last 45 days, fewer than the 60 before which certbot renews here (molecule.yml), so this run
    renews."""
    serial, dummy, dummy2 = served(host)
    tag = f"tls-renew-{int(time.time())}"
    writer_load.start(host, tag, writers=4, reads=True, base=SITE, cafile=ROOT_CA)
    try:
        time.sleep(2)
        run = host.run("systemctl start certbot.service")
        time.sleep(2)
    finally:
        records = writer_load.stop(host, tag)
    assert run.rc == 0, run.stderr + host.run("journalctl -u certbot.service -n 30 --no-pager").stdout
    new_serial, dummy, issuer = served(host)
    assert new_serial != serial and "Pebble" in issuer
    failed = [r for r in records if not 200 <= r["s"] < 300]
    assert records and not failed, f"{len(failed)} of {len(records)} failed: {failed[:5]}"
    writer_load.check(host, tag, records)
    status = json.loads(host.check_output(f"{TOOL} status --json"))
    assert status["problems"] == [] and status["renewal"]["ok"] and status["install"]["ok"], status
    prom = host.check_output("cat /var/lib/prometheus/node-exporter/moneytracker_edge_tls_moneytracker.prom")
    assert f'serial="{new_serial.lower()}"' in prom
    assert 'moneytracker_tls_renewal_last_success{project="moneytracker",source="acme"} 1' in prom
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / "figures-tls.txt", "a") as fh:
        fh.write(f"renewal under load: {len(records)} requests through HTTPS, {len(failed)} failed; "
                 f"serial {serial} -> {new_serial}\n")


def test_a_failed_renewal_is_recorded_then_the_runbook_as_written_renews(host, acme):
    """The CA unreachable for one run of the timer's command: the metric says 0 and the edge serves
    the certificate it had. Then docs/runbooks/certificate-renewal-failed.md, every command as
    written: the look (section 1) and the check of the challenge path (2) while the CA is still
    unreachable, then, the cause fixed (the CA reachable again), the renewal (3), the install (4)
    and the deploy (5). The metric is 1 again and the edge serves a new certificate."""
    before = served(host)
    # (/etc/hosts is a bind mount: rewritten in place, never renamed over)
    host.check_output("cp /etc/hosts /tmp/hosts.saved && sed 's/ pebble$/ pebble-gone/' /tmp/hosts.saved > /etc/hosts")
    try:
        run = host.run("systemctl start certbot.service")
        assert run.rc != 0
        prom = host.check_output("cat /var/lib/prometheus/node-exporter/moneytracker_edge_tls_moneytracker.prom")
        assert 'moneytracker_tls_renewal_last_success{project="moneytracker",source="acme"} 0' in prom
        assert served(host) == before
        commands = [c for name in rb.tested_in("tls") for c in rb.runbook(name)]
        look = [c for c in commands if c.section.startswith(("1.", "2."))]
        ran = rb.run_as_written(host, look, {"<site>": os.environ["MOLECULE_INVENTORY_FILE"]}, PROJECT_DIR,
                                LOGS / "runbooks-transcript-tls.txt")
        assert "PROBLEM: the last renewal run failed" in ran[0].out
    finally:
        host.check_output("cat /tmp/hosts.saved > /etc/hosts")
    rest = [c for c in commands if not c.section.startswith(("1.", "2."))]
    ran += rb.run_as_written(host, rest, {"<site>": os.environ["MOLECULE_INVENTORY_FILE"]}, PROJECT_DIR,
                             LOGS / "runbooks-transcript-tls.txt")
    assert len(ran) == len(commands)
    assert "PROBLEM" not in ran[-3].out and "already installed" in ran[-2].out
    prom = host.check_output("cat /var/lib/prometheus/node-exporter/moneytracker_edge_tls_moneytracker.prom")
    assert 'moneytracker_tls_renewal_last_success{project="moneytracker",source="acme"} 1' in prom
    assert served(host)[0] != before[0]


def test_testssl_finds_nothing_high_or_critical_and_tls_1_0_1_1_are_refused(host, acme):
    testhost = host.backend.get_hostname()
    ip = subprocess.check_output(["docker", "inspect", "-f", "{{.NetworkSettings.IPAddress}}", testhost], text=True).strip()
    work = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "testssl"
    work.mkdir(exist_ok=True)
    (work / "root.pem").write_text(host.check_output(f"cat {ROOT_CA}") + "\n")
    out = work / "testssl.json"
    if out.exists():
        out.unlink()
    os.chmod(work, 0o777)
    run = subprocess.run(["docker", "run", "--rm", "--add-host", f"{NAME}:{ip}", "-v", f"{work}:/work",
                          "moneytracker-test/testssl:debian13", "--quiet", "--color", "0", "--warnings", "off",
                          "--add-ca", "/work/root.pem", "--jsonfile", "/work/testssl.json", f"https://{NAME}/"],
                         capture_output=True, text=True, timeout=900, check=False)
    assert out.exists(), run.stdout[-3000:] + run.stderr[-2000:]
    findings = json.loads(out.read_text())
    # Pebble signs certificates with neither a CRL nor an OCSP URI (testssl: HIGH cert_revocation):
    # a property of the test CA's certificates, which the edge cannot change (Let's Encrypt's carry
    # a CRL URI). Every other finding counts.
    bad = [f for f in findings if f.get("severity") in ("HIGH", "CRITICAL") and f["id"] != "cert_revocation"]
    revocation = by_id_finding(findings, "cert_revocation")
    assert revocation in ("", "Neither CRL nor OCSP URI provided") or "not revoked" in revocation, revocation
    by_id = {f["id"]: f for f in findings}
    summary = {sev: sum(1 for f in findings if f.get("severity") == sev)
               for sev in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "OK", "INFO")}
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / "figures-tls.txt", "a") as fh:
        fh.write(f"testssl.sh findings by severity: {summary}; TLS1: {by_id.get('TLS1', {}).get('finding')}; "
                 f"TLS1_1: {by_id.get('TLS1_1', {}).get('finding')}; TLS1_2: {by_id.get('TLS1_2', {}).get('finding')}; "
                 f"TLS1_3: {by_id.get('TLS1_3', {}).get('finding')}; overall grade: "
                 f"{by_id.get('overall_grade', {}).get('finding')}\n")
        for f in findings:
            if f.get("severity") not in ("OK", "INFO"):
                fh.write(f"  {f['severity']} {f['id']}: {f['finding']}\n")
    assert not bad, json.dumps(bad, indent=1)
    assert by_id["TLS1"]["finding"].startswith("not offered") and by_id["TLS1_1"]["finding"].startswith("not offered")
    assert by_id["TLS1_3"]["finding"].startswith("offered")


def by_id_finding(findings, id_):
    return next((f["finding"] for f in findings if f["id"] == id_), "")


# ---- files: the operator's own certificate, checked before anything changes

def make_pair(tmp_path, names, days=30, start_days=-1, other_key=False):
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Operator test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=2))
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=start_days))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    if other_key:
        key = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem).decode() + ca.public_bytes(pem).decode()
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    path = tmp_path / "files.yml"
    path.write_text(yaml.safe_dump({"app_tls_source": "files", "app_tls_certificate": chain,
                                    "app_tls_private_key": key_pem}))
    return path, ca.public_bytes(pem).decode(), key_pem


def host_state(host):
    return (containers(host), host.check_output(f"sha256sum {PROJECT}/compose.yaml {TLS_DIR}/*.pem"))


@pytest.mark.parametrize("case, says", [
    ({"other_key": True}, "app_tls_private_key does not match app_tls_certificate"),
    ({"days": -1, "start_days": -30}, "app_tls_certificate expired on"),
    ({"names": ["other.example.com"]}, "app_tls_certificate does not cover app.moneytracker.test"),
])
def test_files_mode_refuses_a_bad_certificate_and_changes_nothing(host, acme, tmp_path, case, says):
    names = case.pop("names", ["app.moneytracker.test", "www.moneytracker.test"])
    path, dummy, key_pem = make_pair(tmp_path, names, **case)
    before = host_state(host)
    rc, out = deploy(f"@{path}")
    assert rc != 0
    flat = " ".join(out.split())
    assert says in flat, flat[-3000:]
    assert "Nothing was changed" in flat
    assert key_pem.splitlines()[1] not in out  # the key never shows
    assert host_state(host) == before


def test_files_mode_serves_the_operators_certificate_then_acme_takes_over_again(host, acme, tmp_path):
    path, ca_pem, key_pem = make_pair(tmp_path, ["app.moneytracker.test", "www.moneytracker.test"])
    try:
        rc, out = deploy(f"@{path}")
        assert rc == 0, out[-3000:]
        assert key_pem.splitlines()[1] not in out
        host.check_output(f"cat > /tmp/operator-ca.pem <<'EOF'\n{ca_pem}\nEOF")
        assert "Operator test CA" in served(host)[2]
        page = host.run(f"curl -sS --fail --cacert /tmp/operator-ca.pem -o /dev/null https://{NAME}/api/accounts")
        assert page.rc == 0, page.stderr
        key = host.file(f"{TLS_DIR}/privkey.pem")
        assert (key.user, key.mode) == ("root", 0o600)
    finally:
        rc, out = deploy()
    assert rc == 0, out[-3000:]
    assert "Pebble" in served(host)[2]
