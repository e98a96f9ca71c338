#!/usr/bin/python3
"""moneytracker-edge-tls: the edge's certificate on the host (installed by moneytracker.deploy.app).

One command for everything that touches the certificate the edge serves, called by certbot (deploy
hook), by certbot.service (ExecStopPost, the renewal's result), by the deploy (status, metrics) and
by an operator following docs/runbooks/certificate-renewal-failed.md:

  moneytracker-edge-tls --config FILE status [--json]   what the edge serves and what certbot has
  moneytracker-edge-tls --config FILE install [LINEAGE]  copy a certbot lineage ($RENEWED_LINEAGE)
                                                          into the edge's tls/ directory, check it,
                                                          reload the edge, confirm it serves it
  moneytracker-edge-tls --config FILE renewal-result     record certbot.service's result
                                                          ($SERVICE_RESULT, $EXIT_STATUS)
  moneytracker-edge-tls --config FILE metrics            rewrite the Prometheus textfile

Standard library and the openssl CLI only. Exit 0 = done, 1 = failed (the message says why), 2 = bad
usage. Nothing it prints contains key material.
"""
from __future__ import annotations

import argparse
import calendar
import json
import os
import subprocess
import sys
import tempfile
import time

FILES = ("fullchain.pem", "chain.pem", "privkey.pem")


class Failed(Exception):
    pass


# ---- certificates (openssl CLI)

def _openssl(args, data=None):
    p = subprocess.run(["openssl"] + args, input=data, capture_output=True, env=dict(os.environ, LC_ALL="C"),
                       check=False)
    if p.returncode != 0:
        raise Failed("openssl %s: %s" % (args[0], (p.stderr or p.stdout).decode(errors="replace").strip()[-300:]))
    return p.stdout.decode(errors="replace")


def parse_openssl_date(text):
    """'Mar  1 12:00:00 2027 GMT' -> epoch seconds."""
    return calendar.timegm(time.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y %Z"))


def cert_info(pem):
    """The first certificate of a PEM chain: names, not_before/not_after (epoch), serial, issuer,
    subject, sha256 fingerprint, public key (PEM)."""
    if isinstance(pem, str):
        pem = pem.encode()
    out = _openssl(["x509", "-noout", "-startdate", "-enddate", "-serial", "-subject", "-issuer",
                    "-fingerprint", "-sha256", "-ext", "subjectAltName", "-nameopt", "RFC2253"], pem)
    info = {"names": []}
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("notBefore="):
            info["not_before"] = parse_openssl_date(line.split("=", 1)[1])
        elif line.startswith("notAfter="):
            info["not_after"] = parse_openssl_date(line.split("=", 1)[1])
        elif line.startswith("serial="):
            info["serial"] = line.split("=", 1)[1].strip().lower()
        elif line.startswith("subject="):
            info["subject"] = line.split("=", 1)[1].strip()
        elif line.startswith("issuer="):
            info["issuer"] = line.split("=", 1)[1].strip()
        elif "Fingerprint=" in line:
            info["sha256"] = line.split("=", 1)[1].strip().replace(":", "").lower()
        elif "Subject Alternative Name" in line and i + 1 < len(lines):
            info["names"] = [x.strip()[4:].lower() for x in lines[i + 1].split(",") if x.strip().startswith("DNS:")]
    info["public_key"] = _openssl(["x509", "-noout", "-pubkey"], pem)
    return info


def key_public(pem):
    if isinstance(pem, str):
        pem = pem.encode()
    return _openssl(["pkey", "-pubout"], pem)


def name_covered(name, cert_names):
    name = name.lower().rstrip(".")
    for c in cert_names:
        if c == name:
            return True
        if c.startswith("*.") and "." in name and name.split(".", 1)[1] == c[2:] and not name.startswith("*."):
            return True
    return False


# ---- configuration and state

def load_config(path):
    try:
        with open(path) as fh:
            cfg = json.load(fh)
    except (OSError, ValueError) as e:
        raise Failed("cannot read the configuration %s: %s" % (path, e))
    for key in ("project", "tls_dir", "source", "names", "edge_service", "edge_config", "https_port"):
        if key not in cfg:
            raise Failed("the configuration %s has no %r" % (path, key))
    cfg.setdefault("textfile_dir", "")
    cfg.setdefault("state_file", os.path.join(cfg["tls_dir"], "..", "tls-state.json"))
    cfg.setdefault("docker", "docker")
    cfg.setdefault("lineage", "")
    return cfg


def read_state(cfg):
    try:
        with open(cfg["state_file"]) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def write_atomic(path, data, mode):
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=d, prefix="." + os.path.basename(path) + ".")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data if isinstance(data, bytes) else data.encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_state(cfg, state):
    write_atomic(cfg["state_file"], json.dumps(state, indent=1, sort_keys=True) + "\n", 0o644)


# ---- what the edge serves

def served_file(cfg):
    path = os.path.join(cfg["tls_dir"], "fullchain.pem")
    try:
        with open(path, "rb") as fh:
            return cert_info(fh.read())
    except OSError:
        return None


def served_live(cfg, name=None):
    """The certificate the edge answers with right now (a TLS handshake on the host's port)."""
    name = name or cfg["names"][0]
    host = cfg.get("https_connect", "127.0.0.1")
    p = subprocess.run(["openssl", "s_client", "-connect", "%s:%s" % (host, cfg["https_port"]), "-servername", name,
                        "-showcerts"], input=b"", capture_output=True, timeout=15, check=False,
                       env=dict(os.environ, LC_ALL="C"))
    text = p.stdout.decode(errors="replace")
    start = text.find("-----BEGIN CERTIFICATE-----")
    if start < 0:
        return None
    end = text.find("-----END CERTIFICATE-----", start)
    return cert_info(text[start:end + len("-----END CERTIFICATE-----") + 1])


def served_now(cfg):
    """served_live, or None when the edge does not answer (yet)."""
    try:
        return served_live(cfg)
    except (Failed, subprocess.TimeoutExpired):
        return None


def edge_container(cfg):
    p = subprocess.run([cfg["docker"], "ps", "--quiet", "--filter", "status=running",
                        "--filter", "label=com.docker.compose.project=%s" % cfg["project"],
                        "--filter", "label=com.docker.compose.service=%s" % cfg["edge_service"],
                        "--filter", "label=com.docker.compose.oneoff=False"],
                       capture_output=True, text=True, check=False)
    ids = p.stdout.split()
    return ids[0] if p.returncode == 0 and ids else None


def edge_exec(cfg, cid, args):
    p = subprocess.run([cfg["docker"], "exec", cid] + args, capture_output=True, text=True, check=False)
    return p.returncode, (p.stderr or p.stdout).strip()


# ---- commands

def status(cfg):
    now = time.time()
    st = read_state(cfg)
    served = served_file(cfg)
    result = {"project": cfg["project"], "source": cfg["source"], "names": cfg["names"], "served": None,
              "lineage": None, "renewal": st.get("renewal"), "install": st.get("install"), "problems": [],
              "last_run_problems": []}
    if served is None:
        result["problems"].append("the edge has no certificate in %s" % cfg["tls_dir"])
    else:
        served.pop("public_key", None)
        served["days_left"] = round((served["not_after"] - now) / 86400.0, 1)
        served["placeholder"] = served.get("issuer") == served.get("subject") and "placeholder" in served.get("subject", "")
        result["served"] = served
        missing = [n for n in cfg["names"] if not name_covered(n, served["names"])]
        if served["placeholder"]:
            result["problems"].append("the edge serves the placeholder certificate (no certificate from the CA yet)")
        elif missing:
            result["problems"].append("the certificate does not cover %s" % ", ".join(missing))
        if served["not_after"] <= now:
            result["problems"].append("the certificate expired")
    # What the last renewal and install runs said: problems of the renewal, not of what is served.
    renewal, install_ = st.get("renewal") or {}, st.get("install") or {}
    if renewal and not renewal.get("ok"):
        result["last_run_problems"].append(
            "the last renewal run failed (certbot.service at %s, %s %s; journalctl -u certbot.service says why)"
            % (_when(renewal.get("at")), renewal.get("service_result"), renewal.get("exit_status")))
    if install_ and not install_.get("ok"):
        result["last_run_problems"].append("the last install into the edge failed (%s): %s" % (
            _when(install_.get("at")), install_.get("message")))
    result["renew_before_expiry"] = _renew_before(cfg.get("renewal_conf"))
    if cfg["source"] == "acme" and cfg.get("lineage"):
        try:
            with open(os.path.join(cfg["lineage"], "fullchain.pem"), "rb") as fh:
                lin = cert_info(fh.read())
            lin.pop("public_key", None)
            result["lineage"] = lin
            if served and lin["sha256"] != served["sha256"] and not served["placeholder"]:
                result["problems"].append("certbot's certificate (serial %s) is not the one the edge serves (serial %s)"
                                          % (lin["serial"], served["serial"]))
        except OSError:
            pass
    return result


def _renew_before(path):
    """certbot's renew_before_expiry for the lineage ('30 days'), or None (certbot's default)."""
    try:
        with open(path) as fh:
            for line in fh:
                key, sep, value = line.partition("=")
                if sep and key.strip() == "renew_before_expiry":
                    return value.strip()
    except (OSError, TypeError):
        pass
    return None


def _when(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else "?"


def install(cfg, lineage):
    """Copy a certbot lineage into the edge's tls/ directory, check the edge takes it, reload it
    and confirm it serves the new certificate; the previous files go back on any failure."""
    st = read_state(cfg)
    if cfg["source"] != "acme":
        # certbot.timer still renews a lineage of an earlier acme set-up: its certificate must not
        # replace the operator's own (files) in the edge.
        raise Failed("app_tls_source is %s here: certbot's certificate in %s is not installed into the edge"
                     % (cfg["source"], lineage))
    try:
        data = {}
        for name in FILES:
            with open(os.path.join(lineage, name), "rb") as fh:
                data[name] = fh.read()
        new = cert_info(data["fullchain.pem"])
        if key_public(data["privkey.pem"]).strip() != new["public_key"].strip():
            raise Failed("the private key in %s does not match its certificate" % lineage)
        missing = [n for n in cfg["names"] if not name_covered(n, new["names"])]
        if missing:
            raise Failed("the certificate in %s does not cover %s" % (lineage, ", ".join(missing)))
        tls_dir = cfg["tls_dir"]
        previous = {}
        for name in FILES:
            try:
                with open(os.path.join(tls_dir, name), "rb") as fh:
                    previous[name] = fh.read()
            except OSError:
                previous[name] = None
        if previous == data:
            cid = edge_container(cfg)
            live = served_now(cfg) if cid is not None else None
            if cid is None or (live is not None and live["sha256"] == new["sha256"]):
                return "already installed: serial %s%s" % (
                    new["serial"], "" if cid is None else ", and the edge serves it")
        _put(tls_dir, data)
        said = "installed the certificate serial %s (expires %s) in %s" % (
            new["serial"], time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(new["not_after"])), tls_dir)
        cid = edge_container(cfg)
        if cid is None:
            said += "; the edge is not running (it reads it when it starts)"
        else:
            try:
                _reload(cfg, cid, new)
            except Failed:
                if all(v is not None for v in previous.values()):
                    _put(tls_dir, previous)
                    edge_exec(cfg, cid, ["nginx", "-e", "stderr", "-c", cfg["edge_config"], "-s", "reload"])
                raise
            said += "; the edge serves it (reloaded)"
        st["install"] = {"ok": True, "at": int(time.time()), "serial": new["serial"], "message": said}
        write_state(cfg, st)
        write_metrics(cfg)
        return said
    except Failed as e:
        st["install"] = {"ok": False, "at": int(time.time()), "message": str(e)}
        write_state(cfg, st)
        write_metrics(cfg)
        raise


def _put(tls_dir, data):
    # The key first: at no moment does the directory pair a new certificate with an old key that
    # nginx would read (only a reload, after this, reads them).
    for name in ("privkey.pem", "chain.pem", "fullchain.pem"):
        write_atomic(os.path.join(tls_dir, name), data[name], 0o600 if name == "privkey.pem" else 0o644)


def _reload(cfg, cid, new):
    conf = cfg["edge_config"]
    rc, out = edge_exec(cfg, cid, ["nginx", "-t", "-q", "-e", "stderr", "-c", conf])
    if rc != 0:
        raise Failed("the edge refuses the new certificate (nginx -t): %s" % out[-500:])
    rc, out = edge_exec(cfg, cid, ["nginx", "-e", "stderr", "-c", conf, "-s", "reload"])
    if rc != 0:
        raise Failed("nginx -s reload failed: %s" % out[-500:])
    deadline = time.time() + 15
    while True:
        live = served_now(cfg)
        if live is not None and live["sha256"] == new["sha256"]:
            return
        if time.time() > deadline:
            raise Failed("the edge still serves serial %s 15 s after its reload, not %s"
                         % (live and live["serial"], new["serial"]))
        time.sleep(0.2)


def renewal_result(cfg):
    st = read_state(cfg)
    result = os.environ.get("SERVICE_RESULT", "")
    code = os.environ.get("EXIT_STATUS", "")
    ok = result in ("", "success") and code in ("", "0")
    now = int(time.time())
    if ok:
        st["renewal_last_success"] = now
    st["renewal"] = {"ok": ok, "at": now, "service_result": result or None, "exit_status": code or None,
                     "last_success": st.get("renewal_last_success")}
    write_state(cfg, st)
    write_metrics(cfg)
    return "certbot renew %s (SERVICE_RESULT=%s EXIT_STATUS=%s)" % ("succeeded" if ok else "FAILED", result, code)


def metrics_text(cfg, now=None):
    st = read_state(cfg)
    served = served_file(cfg)
    labels = 'project="%s",source="%s"' % (cfg["project"], cfg["source"])
    out = []

    def metric(name, help_, value, extra=""):
        out.append("# HELP %s %s" % (name, help_))
        out.append("# TYPE %s gauge" % name)
        out.append("%s{%s%s} %s" % (name, labels, extra, value))

    if served is not None:
        metric("moneytracker_tls_certificate_expiry_timestamp_seconds",
               "When the certificate the edge serves expires (notAfter, Unix time).", served["not_after"],
               ',name="%s",serial="%s"' % (cfg["names"][0], served["serial"]))
    if cfg["source"] == "acme":
        renewal = st.get("renewal") or {}
        install_ = st.get("install") or {}
        # 1 until something failed: the last renewal run and the last install both succeeded.
        ok = renewal.get("ok", True) and install_.get("ok", True)
        metric("moneytracker_tls_renewal_last_success",
               "1 if the last certificate renewal run and the last install into the edge succeeded.", 1 if ok else 0)
        if renewal.get("at"):
            metric("moneytracker_tls_renewal_last_run_timestamp_seconds",
                   "When certbot's renewal last ran (certbot.timer).", renewal["at"])
        if st.get("renewal_last_success"):
            metric("moneytracker_tls_renewal_last_success_timestamp_seconds",
                   "When certbot's renewal last ran without an error.", st["renewal_last_success"])
    return "\n".join(out) + "\n"


def write_metrics(cfg):
    if not cfg.get("textfile_dir"):
        return None
    os.makedirs(cfg["textfile_dir"], exist_ok=True)
    path = os.path.join(cfg["textfile_dir"], "moneytracker_edge_tls_%s.prom" % cfg["project"])
    write_atomic(path, metrics_text(cfg), 0o644)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(prog="moneytracker-edge-tls", description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--config", required=True)
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("status")
    s.add_argument("--json", action="store_true")
    i = sub.add_parser("install")
    i.add_argument("lineage", nargs="?", default=os.environ.get("RENEWED_LINEAGE", ""))
    sub.add_parser("renewal-result")
    sub.add_parser("metrics")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.command == "status":
            result = status(cfg)
            if args.json:
                print(json.dumps(result, sort_keys=True))
            else:
                s = result["served"]
                if s:
                    print("serves serial %s, %s, expires %s (%.1f days), issuer %s" % (
                        s["serial"], ", ".join(s["names"]) or "(no names)",
                        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(s["not_after"])), s["days_left"], s["issuer"]))
                for k in ("renewal", "install"):
                    if result[k]:
                        print("last %s: %s" % (k, json.dumps(result[k], sort_keys=True)))
                for p in result["problems"] + result["last_run_problems"]:
                    print("PROBLEM: " + p)
            return 1 if result["problems"] or result["last_run_problems"] else 0
        if args.command == "install":
            if not args.lineage:
                raise Failed("no lineage: pass its directory or run as certbot's deploy hook ($RENEWED_LINEAGE)")
            print(install(cfg, args.lineage))
        elif args.command == "renewal-result":
            print(renewal_result(cfg))
        elif args.command == "metrics":
            path = write_metrics(cfg)
            print("wrote %s" % path if path else "no textfile directory configured")
        return 0
    except Failed as e:
        print("moneytracker-edge-tls: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
