# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Lookup: who runs this play, from the controller's side, for the maintenance lock's record,
and whether the run that left a lock or a migration journal behind is still alive."""

from __future__ import annotations

DOCUMENTATION = r"""
name: controller_run
author: MoneyTracker operators (@moneytracker)
short_description: The controller run (host, user, ansible-playbook pid), or whether a pid is one
description:
  - Without terms, returns one dict describing this run on the controller - C(host) (host name),
    C(user) (C(USER), else the login name of the process's uid), C(pid) (the pid of the
    C(ansible-playbook) process, not of a worker or of a shell it started) and C(started).
  - With a term C(alive:<pid>), returns one dict C({pid, alive, cmdline}) where C(alive) is true
    only when that pid runs C(ansible-playbook) on this controller (a reused pid is not alive).
options:
  _terms:
    description: Nothing, or C(alive:<pid>).
    required: false
"""

EXAMPLES = r"""
- name: Record who holds the lock
  ansible.builtin.debug:
    msg: "{{ lookup('moneytracker.deploy.controller_run') }}"

- name: Is the run that took the lock still alive (on this controller)?
  ansible.builtin.debug:
    msg: "{{ lookup('moneytracker.deploy.controller_run', 'alive:12345').alive }}"
"""

RETURN = r"""
_raw:
  description: One dict per call, see the description.
  type: list
  elements: dict
"""

import datetime
import os
import pwd
import socket

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [p.decode(errors="replace") for p in fh.read().split(b"\0") if p]
    except OSError:
        return []


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _is_playbook(cmdline: list[str]) -> bool:
    return any(os.path.basename(part) == "ansible-playbook" for part in cmdline[:3])


def playbook_pid(start: int | None = None) -> int | None:
    """The outermost ansible-playbook ancestor of this process (workers are forks of it)."""
    pid, found = start or os.getpid(), None
    while pid > 1:
        if _is_playbook(_cmdline(pid)):
            found = pid
        pid = _parent(pid)
    return found


def login_name() -> str:
    user = os.environ.get("USER")
    if user:
        return user
    try:
        return os.getlogin()
    except OSError:
        return pwd.getpwuid(os.getuid()).pw_name


def process_start(pid: int) -> str | None:
    try:
        ticks = int(open(f"/proc/{pid}/stat", encoding="utf-8").read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat", encoding="utf-8") as fh:
            btime = next(int(line.split()[1]) for line in fh if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    started = btime + ticks / os.sysconf("SC_CLK_TCK")
    return datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds")


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if not terms:
            pid = playbook_pid()
            return [{"host": socket.gethostname(), "user": login_name(), "pid": pid,
                     "started": process_start(pid) if pid else None}]
        results = []
        for term in terms:
            kind, _sep, value = str(term).partition(":")
            if kind != "alive" or not value.strip().isdigit():
                raise AnsibleLookupError(f"controller_run: unknown term '{term}' (expected nothing or alive:<pid>)")
            pid = int(value)
            cmdline = _cmdline(pid) if pid > 1 else []
            results.append({"pid": pid, "alive": _is_playbook(cmdline), "cmdline": " ".join(cmdline)[:200]})
        return results
