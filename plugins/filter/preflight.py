# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Filters for the roles' preflight messages.

closest       the known name nearest to a misspelt one ("app_backend_mem_limt" ->
              "app_backend_mem_limit"), or "" when none is near (difflib, after the common prefix).
port_holders  who already listens on the TCP port a service is about to publish, from the output
              of `ss -H -l -n -t -p` on the host: a list of {address, process, pid} for every
              listener whose address overlaps the bind address.
"""

from __future__ import annotations

import difflib
import ipaddress
import re

from ansible.errors import AnsibleFilterError


def closest(name, candidates, prefix="", cutoff=0.6):
    """The candidate nearest to name, or "". A shared prefix (the role's) is not compared: it
    would make every name of a role look alike."""
    name = str(name)
    names = [str(c) for c in candidates]
    if name in names:
        return name

    def tail(value):
        return value[len(prefix):] if prefix and value.startswith(prefix) else value

    tails = {}
    for candidate in names:
        tails.setdefault(tail(candidate), candidate)
    match = difflib.get_close_matches(tail(name), list(tails), n=1, cutoff=float(cutoff))
    return tails[match[0]] if match else ""


_USERS_RE = re.compile(r'\("([^"]*)",pid=([0-9]+)')
_WILDCARD = {"0.0.0.0", "::", "*"}


def _split_address(local):
    """'127.0.0.1:80', '[::1]:80', '*:80', '127.0.0.53%lo:53' -> (host, port)."""
    host, _sep, port = local.rpartition(":")
    host = host.strip("[]").split("%", 1)[0]
    if host.lower().startswith("::ffff:") and "." in host:  # an IPv4 address mapped into IPv6
        host = host[7:]
    return host, port


def _family(host):
    if host == "*":
        return 0  # IPv6 wildcard without v6only: every address of both families
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def _overlaps(held, bind):
    if held == "*":
        return True
    if _family(held) != _family(bind):
        return False
    return held == bind or held in _WILDCARD or bind in _WILDCARD


def port_holders(ss_output, bind, port):
    """Listeners of `ss -H -l -n -t -p` that would make binding bind:port fail."""
    bind = str(bind).strip("[]")
    if _family(bind) is None:
        raise AnsibleFilterError(f"port_holders: '{bind}' is not an IP address")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise AnsibleFilterError(f"port_holders: '{port}' is not a port number") from None
    holders = []
    for line in str(ss_output or "").splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[0] != "LISTEN":
            continue
        host, held_port = _split_address(fields[3])
        if held_port != str(port) or not _overlaps(host, bind):
            continue
        users = _USERS_RE.findall(" ".join(fields[5:]))
        holders.append({
            "address": fields[3],
            "process": ", ".join(sorted({name for name, _pid in users})),
            "pid": ", ".join(pid for _name, pid in users),
        })
    return holders


class FilterModule:
    def filters(self):
        return {"closest": closest, "port_holders": port_holders}
