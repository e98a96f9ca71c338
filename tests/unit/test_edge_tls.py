"""The edge's TLS checks on the controller (plugins/filter/tls.py) and the host tool
roles/app/files/moneytracker_edge_tls.py, with real certificates made here (python cryptography)
and the real openssl CLI. The tool's edge reload is covered by molecule/tls; here the `docker`
it calls is /bin/true (a test double: "no edge container running")."""
from __future__ import annotations

import datetime
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "plugins" / "filter"))
import tls as tls_filters  # noqa: E402  pylint: disable=wrong-import-position

TOOL = ROOT / "roles" / "app" / "files" / "moneytracker_edge_tls.py"
NOW = datetime.datetime.now(datetime.timezone.utc)


def _load_tool():
    spec = importlib.util.spec_from_file_location("moneytracker_edge_tls", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


def make_cert(names, days=30, start_days=-1, key=None, issuer_key=None, cn=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or names[0])])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")]) if issuer_key else subject
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW + datetime.timedelta(days=start_days))
            .not_valid_after(NOW + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(issuer_key or key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem, cert


# ---- dns_name_problems

@pytest.mark.parametrize("names", [["app.example.com"], ["a.example.com", "b.example.org"], ["xn--bcher-kva.example"]])
def test_valid_names_pass(names):
    assert tls_filters.dns_name_problems(names) == []


@pytest.mark.parametrize("names, says", [
    ([], "is empty"),
    ("app.example.com", "must be a list"),
    (["localhost"], "not a DNS host name"),
    (["app_1.example.com"], "not a DNS host name"),
    (["-app.example.com"], "not a DNS host name"),
    (["192.0.2.1"], "IP address"),
    (["a.example.com", "A.example.com"], "twice"),
    (["*.example.com"], "wildcard"),
    (["x" * 64 + ".example.com"], "not a DNS host name"),
])
def test_bad_names_are_named(names, says):
    problems = tls_filters.dns_name_problems(names)
    assert problems and says in " ".join(problems), problems


def test_wildcards_pass_where_allowed():
    assert tls_filters.dns_name_problems(["*.example.com"], True) == []


# ---- tls_files_problems

def test_a_good_pair_has_no_problem():
    chain, key, dummy = make_cert(["app.example.com", "www.example.com"])
    assert tls_filters.tls_files_problems(chain, key, ["app.example.com", "www.example.com"]) == []


def test_a_wildcard_certificate_covers_one_label():
    chain, key, dummy = make_cert(["*.example.com"])
    assert tls_filters.tls_files_problems(chain, key, ["app.example.com"]) == []
    problems = tls_filters.tls_files_problems(chain, key, ["a.b.example.com"])
    assert problems and "does not cover a.b.example.com" in problems[0]


def test_a_key_of_another_certificate_is_refused_without_printing_it():
    chain, dummy, cert = make_cert(["app.example.com"])
    dummy, other_key, dummy2 = make_cert(["app.example.com"])
    problems = tls_filters.tls_files_problems(chain, other_key, ["app.example.com"])
    assert len(problems) == 1 and "does not match" in problems[0] and "%x" % cert.serial_number in problems[0]
    assert "PRIVATE KEY" not in problems[0] and other_key.splitlines()[1][:20] not in problems[0]


def test_an_expired_certificate_is_refused():
    chain, key, dummy = make_cert(["app.example.com"], days=-1, start_days=-30)
    problems = tls_filters.tls_files_problems(chain, key, ["app.example.com"])
    assert len(problems) == 1 and "expired on" in problems[0]


def test_a_certificate_not_yet_valid_is_refused():
    chain, key, dummy = make_cert(["app.example.com"], days=60, start_days=2)
    assert "not valid before" in " ".join(tls_filters.tls_files_problems(chain, key, ["app.example.com"]))


def test_uncovered_names_are_listed():
    chain, key, dummy = make_cert(["app.example.com"])
    problems = tls_filters.tls_files_problems(chain, key, ["app.example.com", "api.example.com"])
    assert problems == ["app_tls_certificate does not cover api.example.com from app_tls_names (it names: "
                        "app.example.com)"]


@pytest.mark.parametrize("chain, key, says", [
    ("", "x", "not a PEM certificate chain"),
    ("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "-----BEGIN PRIVATE KEY-----", "cannot be read"),
])
def test_garbage_is_named(chain, key, says):
    assert says in tls_filters.tls_files_problems(chain, key, ["app.example.com"])[0]


def test_a_garbled_key_is_named_without_its_text():
    chain, key, dummy = make_cert(["app.example.com"])
    broken = key.replace(key.splitlines()[1], "A" * len(key.splitlines()[1]))
    problems = tls_filters.tls_files_problems(chain, broken, ["app.example.com"])
    assert problems[0].startswith("app_tls_private_key cannot be read") and "AAAA" not in problems[0]


# ---- the host tool

def test_the_tool_reads_what_openssl_says():
    chain, key, cert = make_cert(["app.example.com", "www.example.com"], days=10)
    info = tool.cert_info(chain)
    assert info["names"] == ["app.example.com", "www.example.com"]
    assert info["serial"] == "%x" % cert.serial_number or int(info["serial"], 16) == cert.serial_number
    assert abs(info["not_after"] - cert.not_valid_after_utc.timestamp()) < 1
    assert tool.key_public(key).strip() == info["public_key"].strip()


@pytest.fixture(name="cfg")
def fixture_cfg(tmp_path):
    (tmp_path / "tls").mkdir()
    (tmp_path / "textfile").mkdir()
    path = tmp_path / "edge-tls.json"
    path.write_text(json.dumps({
        "project": "mt", "tls_dir": str(tmp_path / "tls"), "source": "acme", "names": ["app.example.com"],
        "edge_service": "edge", "edge_config": "/etc/moneytracker-edge/nginx.conf", "https_port": 1,
        "textfile_dir": str(tmp_path / "textfile"), "state_file": str(tmp_path / "state.json"),
        "docker": "/bin/true", "lineage": str(tmp_path / "lineage")}))
    return path


def run_tool(cfg, *args, env=None):
    return subprocess.run([sys.executable, str(TOOL), "--config", str(cfg), *args], capture_output=True, text=True,
                          check=False, env=dict(os.environ, **(env or {})))


def lineage(tmp_path, names, **kw):
    chain, key, cert = make_cert(names, **kw)
    d = tmp_path / "lineage"
    d.mkdir(exist_ok=True)
    (d / "fullchain.pem").write_text(chain)
    (d / "chain.pem").write_text("")
    (d / "privkey.pem").write_text(key)
    return cert


def test_install_copies_a_lineage_with_the_key_0600_and_writes_metrics(tmp_path, cfg):
    cert = lineage(tmp_path, ["app.example.com"], days=20)
    p = run_tool(cfg, "install", env={"RENEWED_LINEAGE": str(tmp_path / "lineage")})
    assert p.returncode == 0, p.stderr
    assert "the edge is not running" in p.stdout
    key = tmp_path / "tls" / "privkey.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "tls" / "fullchain.pem").read_text() == (tmp_path / "lineage" / "fullchain.pem").read_text()
    prom = (tmp_path / "textfile" / "moneytracker_edge_tls_mt.prom").read_text()
    expiry = [x for x in prom.splitlines() if x.startswith("moneytracker_tls_certificate_expiry_timestamp_seconds{")]
    assert len(expiry) == 1 and abs(float(expiry[0].split()[-1]) - cert.not_valid_after_utc.timestamp()) < 1
    assert 'moneytracker_tls_renewal_last_success{project="mt",source="acme"} 1' in prom
    st = run_tool(cfg, "status", "--json")
    assert st.returncode == 0, st.stdout
    assert json.loads(st.stdout)["served"]["names"] == ["app.example.com"]


def test_install_refuses_a_lineage_that_does_not_cover_the_names(tmp_path, cfg):
    lineage(tmp_path, ["other.example.com"])
    p = run_tool(cfg, "install", str(tmp_path / "lineage"))
    assert p.returncode == 1 and "does not cover app.example.com" in p.stderr
    assert not (tmp_path / "tls" / "fullchain.pem").exists()
    prom = (tmp_path / "textfile" / "moneytracker_edge_tls_mt.prom").read_text()
    assert 'moneytracker_tls_renewal_last_success{project="mt",source="acme"} 0' in prom


def test_a_failed_renewal_run_sets_the_metric_to_0_and_a_good_one_back_to_1(tmp_path, cfg):
    lineage(tmp_path, ["app.example.com"])
    assert run_tool(cfg, "install").returncode == 1  # no lineage given, none in the environment
    assert run_tool(cfg, "install", str(tmp_path / "lineage")).returncode == 0
    p = run_tool(cfg, "renewal-result", env={"SERVICE_RESULT": "exit-code", "EXIT_STATUS": "1"})
    assert p.returncode == 0 and "FAILED" in p.stdout
    prom = (tmp_path / "textfile" / "moneytracker_edge_tls_mt.prom").read_text()
    assert 'moneytracker_tls_renewal_last_success{project="mt",source="acme"} 0' in prom
    assert "moneytracker_tls_renewal_last_success_timestamp_seconds" not in prom
    st = run_tool(cfg, "status")
    assert st.returncode == 1 and "PROBLEM: the last renewal run failed" in st.stdout and "exit-code 1" in st.stdout
    # Not a problem of what the edge serves (the deploy asks the CA only for those).
    js = json.loads(run_tool(cfg, "status", "--json").stdout)
    assert js["problems"] == [] and js["last_run_problems"][0].startswith("the last renewal run failed")
    p = run_tool(cfg, "renewal-result", env={"SERVICE_RESULT": "success", "EXIT_STATUS": "0"})
    prom = (tmp_path / "textfile" / "moneytracker_edge_tls_mt.prom").read_text()
    assert 'moneytracker_tls_renewal_last_success{project="mt",source="acme"} 1' in prom
    assert "moneytracker_tls_renewal_last_success_timestamp_seconds" in prom
    assert run_tool(cfg, "status").returncode == 0


def test_status_names_the_placeholder_and_a_missing_certificate(tmp_path, cfg):
    st = run_tool(cfg, "status")
    assert st.returncode == 1 and "has no certificate" in st.stdout
    chain, key, dummy = make_cert(["app.example.com"], cn="moneytracker-edge placeholder")
    (tmp_path / "tls" / "fullchain.pem").write_text(chain)
    st = run_tool(cfg, "status", "--json")
    assert st.returncode == 1 and "placeholder" in json.loads(st.stdout)["problems"][0]


def test_a_bad_configuration_is_named(tmp_path):
    (tmp_path / "c.json").write_text("{}")
    p = run_tool(tmp_path / "c.json", "status")
    assert p.returncode == 1 and "has no 'project'" in p.stderr


def test_install_refuses_while_the_operators_own_files_are_served(tmp_path, cfg):
    settings = json.loads(cfg.read_text())
    cfg.write_text(json.dumps(dict(settings, source="files", lineage="")))
    lineage(tmp_path, ["app.example.com"])
    p = run_tool(cfg, "install", str(tmp_path / "lineage"))
    assert p.returncode == 1 and "app_tls_source is files here" in p.stderr
    assert not (tmp_path / "tls" / "fullchain.pem").exists()


def test_status_reports_certbots_renewal_setting(tmp_path, cfg):
    conf = tmp_path / "renewal.conf"
    conf.write_text("# renew_before_expiry = 30 days\nversion = 4.0.0\n[renewalparams]\n")
    cfg.write_text(json.dumps(dict(json.loads(cfg.read_text()), renewal_conf=str(conf))))
    assert json.loads(run_tool(cfg, "status", "--json").stdout)["renew_before_expiry"] is None
    conf.write_text("renew_before_expiry = 60 days\nversion = 4.0.0\n[renewalparams]\n")
    assert json.loads(run_tool(cfg, "status", "--json").stdout)["renew_before_expiry"] == "60 days"
