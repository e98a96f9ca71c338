# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Filters for the edge's TLS preflight (moneytracker.deploy.app, app_tls_source).

dns_name_problems     what is wrong with a list of host names for a certificate: one message per
                      problem (empty list = fine).
tls_files_problems    what is wrong with an operator's own certificate chain and private key (PEM
                      text): the key does not match, a configured name is not covered, expired or
                      not yet valid, not a chain of certificates; one message per problem.

Both run on the controller (python `cryptography`, which ansible-core requires), before anything on
the host changes. Messages never contain key material.
"""

from __future__ import annotations

import datetime
import re

from ansible.errors import AnsibleFilterError

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def dns_name_problems(names, wildcards=False):
    """Problems of `names` as DNS host names for a certificate ([] = none)."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        return ["must be a list of DNS names (got %r)" % (names,)]
    problems = []
    if not names:
        problems.append("is empty: list the host names the site answers to (the first is the certificate's name)")
    seen = set()
    for raw in names:
        name = str(raw).strip().lower().rstrip(".")
        if name in seen:
            problems.append("lists %s twice" % name)
            continue
        seen.add(name)
        labels = name.split(".")
        if labels and labels[0] == "*":
            if not wildcards:
                problems.append("has %s: a wildcard name cannot be validated over HTTP-01 (app_tls_source acme); "
                                "list each name" % raw)
                continue
            labels = labels[1:]
        if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
            problems.append("has %r, which is not a DNS host name (labels of a-z, 0-9 and inner '-', at least "
                            "two labels, 253 characters at most)" % (raw,))
        elif re.match(r"^[0-9.]+$", name):
            problems.append("has %s, an IP address: certificates here are for host names" % raw)
        elif labels[-1].isdigit():
            problems.append("has %r, which is not a DNS host name (its last label is a number)" % (raw,))
    return problems


def _covered(name, cert_names):
    name = name.lower().rstrip(".")
    for c in cert_names:
        c = c.lower()
        if c == name:
            return True
        if c.startswith("*.") and "." in name and name.split(".", 1)[1] == c[2:]:
            return True
    return False


def tls_files_problems(chain_pem, key_pem, names, now=None, min_days=0):
    """Problems of an operator's certificate chain + key for the edge ([] = none)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.x509.oid import ExtensionOID
    except ImportError as e:  # pragma: no cover - ansible-core depends on cryptography
        raise AnsibleFilterError("tls_files_problems needs python cryptography on the controller: %s" % e)
    problems = []
    chain_pem = str(chain_pem or "")
    key_pem = str(key_pem or "")
    if "-----BEGIN CERTIFICATE-----" not in chain_pem:
        return ["app_tls_certificate is not a PEM certificate chain (-----BEGIN CERTIFICATE----- ...)"]
    if "PRIVATE KEY-----" not in key_pem:
        return ["app_tls_private_key is not a PEM private key (-----BEGIN ... PRIVATE KEY----- ...)"]
    try:
        certs = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError as e:
        return ["app_tls_certificate cannot be read as PEM certificates: %s" % e]
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as e:
        # the exception text never includes the key
        return ["app_tls_private_key cannot be read (an unencrypted PEM private key is needed): %s"
                % str(e).splitlines()[0][:200]]
    leaf = certs[0]
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, pub) != leaf.public_key().public_bytes(enc, pub):
        problems.append("app_tls_private_key does not match app_tls_certificate (the first certificate of the "
                        "chain, serial %x): they are not a pair" % leaf.serial_number)
    try:
        san = leaf.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        cert_names = [str(n).lower() for n in san.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        cert_names = []
    missing = [str(n) for n in names if not _covered(str(n), cert_names)]
    if missing:
        problems.append("app_tls_certificate does not cover %s from app_tls_names (it names: %s)"
                        % (", ".join(missing), ", ".join(cert_names) or "no DNS names"))
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if isinstance(now, (int, float)):
        now = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    not_after = leaf.not_valid_after_utc
    not_before = leaf.not_valid_before_utc
    if not_after <= now:
        problems.append("app_tls_certificate expired on %s" % not_after.strftime("%Y-%m-%d %H:%M UTC"))
    elif (not_after - now).total_seconds() < float(min_days) * 86400:
        problems.append("app_tls_certificate expires on %s, in less than %s days"
                        % (not_after.strftime("%Y-%m-%d %H:%M UTC"), min_days))
    if not_before > now:
        problems.append("app_tls_certificate is not valid before %s" % not_before.strftime("%Y-%m-%d %H:%M UTC"))
    return problems


class FilterModule:
    def filters(self):
        return {"dns_name_problems": dns_name_problems, "tls_files_problems": tls_files_problems}
