#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: moneytracker_host_facts
short_description: The few host facts the collection's roles read, and what their preflight checks, in one call
version_added: 0.2.0
author:
  - MoneyTracker operators (@moneytracker)
description:
  - Sets the facts the roles of this collection read (C(distribution), C(distribution_version),
    C(distribution_major_version), C(distribution_release), C(os_family), C(architecture),
    C(processor_vcpus)) from C(/etc/os-release), C(/etc/debian_version), C(/proc/cpuinfo) and
    C(uname), and in the same run reads what the roles' preflight checks on the host (the
    listening TCP sockets, whether paths exist and are writable) into the fact
    C(moneytracker_host).
  - C(deploy.yml)'s preflight play runs it instead of M(ansible.builtin.setup) with the hardware
    subset, and the checks that would each read the host (C(ss), a C(stat)) use its answer (one
    round trip to the host instead of three). A role used on its own gathers what it needs itself.
  - The values follow M(ansible.builtin.setup)'s for Debian and Ubuntu; on other systems
    C(distribution) is the first word of C(NAME) in C(/etc/os-release) and C(os_family) its
    C(ID_LIKE) (or C(ID)), enough for the roles to say the system is not supported.
  - Never changes anything (C(changed=false)), and runs in check mode.
options:
  listening_tcp:
    description:
      - Read the listening TCP sockets with their processes (C(ss -H -l -n -t -p)) into
        C(moneytracker_host.listening_tcp) (its output; C(null) when C(ss) is missing or failed).
    type: bool
    default: false
  paths:
    description:
      - Paths to report in C(moneytracker_host.paths), each as C(exists) and C(writeable) (by this
        process's user).
    type: list
    elements: path
    default: []
notes:
  - Supports check mode.
'''

EXAMPLES = r'''
- name: Read the host facts the roles need and the preflight's host reads
  moneytracker.deploy.moneytracker_host_facts:
    listening_tcp: true
    paths: [/proc/sys/net/ipv4/conf/all/route_localnet]

- name: Refuse what is not Debian
  ansible.builtin.assert:
    that: ansible_facts['distribution'] == 'Debian'
'''

RETURN = r'''
ansible_facts:
  description: The facts set.
  returned: always
  type: dict
  contains:
    distribution:
      description: C(Debian), C(Ubuntu), or the first word of the system's name.
      type: str
      sample: Debian
    distribution_version:
      description: The version (C(/etc/debian_version) on Debian when it is a number, else C(VERSION_ID)).
      type: str
      sample: '13.1'
    distribution_major_version:
      description: The part of the version before the first dot.
      type: str
      sample: '13'
    distribution_release:
      description: The release's code name (C(VERSION_CODENAME)).
      type: str
      sample: trixie
    os_family:
      description: C(Debian) for Debian and its derivatives.
      type: str
      sample: Debian
    architecture:
      description: The machine's architecture as C(uname -m) gives it.
      type: str
      sample: x86_64
    processor_vcpus:
      description: The number of logical processors in C(/proc/cpuinfo) (the CPU count as a fallback).
      type: int
      sample: 2
    moneytracker_host:
      description: What the preflight checks read.
      type: dict
      contains:
        listening_tcp:
          description: The output of C(ss -H -l -n -t -p), or null.
          type: str
        paths:
          description: Path to C(exists) and C(writeable).
          type: dict
'''

import os
import platform

from ansible.module_utils.basic import AnsibleModule


def _os_release():
    values = {}
    for name in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with open(name) as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        for line in lines:
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.startswith("#"):
                values[key.strip()] = value.strip().strip('"').strip("'")
        break
    return values


def _debian_version():
    try:
        with open("/etc/debian_version") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _vcpus():
    try:
        with open("/proc/cpuinfo") as handle:
            count = sum(1 for line in handle if line.split(":", 1)[0].strip() == "processor")
    except OSError:
        count = 0
    return count or os.cpu_count() or 1


def distribution_facts(release, debian_version):
    """The distribution facts from /etc/os-release's values and /etc/debian_version's text."""
    ident = release.get("ID", "").lower()
    like = release.get("ID_LIKE", "").lower().split()
    known = {"debian": "Debian", "ubuntu": "Ubuntu"}
    distribution = known.get(ident) or (release.get("NAME", "").split() or [ident or "unknown"])[0]
    version = release.get("VERSION_ID", "")
    if ident == "debian" and debian_version[:1].isdigit():
        version = debian_version
    if ident == "debian" or "debian" in like:
        family = "Debian"
    else:
        family = (like[0] if like else ident or "unknown").capitalize()
    return {
        "distribution": distribution,
        "distribution_version": version,
        "distribution_major_version": version.split(".", 1)[0],
        "distribution_release": release.get("VERSION_CODENAME", ""),
        "os_family": family,
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            listening_tcp=dict(type="bool", default=False),
            paths=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    facts = distribution_facts(_os_release(), _debian_version())
    facts["architecture"] = platform.machine()
    facts["processor_vcpus"] = _vcpus()
    host = {"listening_tcp": None, "paths": {}}
    if module.params["listening_tcp"]:
        ss = module.get_bin_path("ss")
        if ss:
            rc, out, _err = module.run_command([ss, "-H", "-l", "-n", "-t", "-p"])
            host["listening_tcp"] = out if rc == 0 else None
    for path in module.params["paths"]:
        host["paths"][path] = {"exists": os.path.exists(path), "writeable": os.access(path, os.W_OK)}
    facts["moneytracker_host"] = host
    module.exit_json(changed=False, ansible_facts=facts)


if __name__ == "__main__":
    main()
