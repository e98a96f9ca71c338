#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: moneytracker_host_info
short_description: One read of what a role manages on the host (packages, paths, units, a few commands)
version_added: 0.2.0
author:
  - MoneyTracker operators (@moneytracker)
description:
  - Reads, in one module run, what the C(docker) and C(moneytracker_db) roles manage - which of a
    list of Debian packages are installed, the owner, mode and (where asked) SHA-1 of paths,
    whether systemd units are enabled and active, and the output of a few read-only commands - so
    that each of their tasks runs only when its part differs (filter
    C(moneytracker.deploy.paths_differing)), and a deploy with nothing to change costs this one
    read instead of one module run per package, file and unit.
  - Never changes anything (C(changed=false)); runs in check mode.
options:
  packages:
    description: Debian packages whose installed state to report in C(packages) (C(dpkg-query)).
    type: list
    elements: str
    default: []
  paths:
    description: Paths to report in C(paths) (C(null) when missing; a symbolic link is followed).
    type: list
    elements: path
    default: []
  checksum:
    description: Paths of O(paths) whose SHA-1 is reported (regular files only). Never list a secret here.
    type: list
    elements: path
    default: []
  units:
    description: systemd units whose C(is-enabled) and C(is-active) answers to report in C(units).
    type: list
    elements: str
    default: []
  commands:
    description:
      - Name to argv of read-only commands to run (no shell); their exit code and stripped standard
        output are reported in C(commands). A missing program gives exit code 127.
    type: dict
    default: {}
notes:
  - Supports check mode.
'''

EXAMPLES = r'''
- name: Read what the engine's tasks manage
  moneytracker.deploy.moneytracker_host_info:
    packages: [docker.io, docker-cli]
    paths: [/etc/docker, /etc/docker/daemon.json]
    checksum: [/etc/docker/daemon.json]
    units: [docker]
    commands:
      compose: [docker, compose, version, --short]
  register: _docker_probe
'''

RETURN = r'''
packages:
  description: The packages of O(packages) that are installed.
  returned: always
  type: list
  elements: str
paths:
  description: Per path of O(paths), C(null) when missing, else C(dir), C(mode) (octal string), C(uid), C(gid),
    C(mtime), C(link) (a symbolic link's target) and, for the paths of O(checksum) that are regular files, C(sha1).
  returned: always
  type: dict
units:
  description: Per unit of O(units), C(enabled) and C(active) as C(systemctl is-enabled) / C(is-active) print them.
  returned: always
  type: dict
commands:
  description: Per name of O(commands), C(rc) and C(stdout) (stripped).
  returned: always
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.moneytracker.deploy.plugins.module_utils.host import path_info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            packages=dict(type="list", elements="str", default=[]),
            paths=dict(type="list", elements="path", default=[]),
            checksum=dict(type="list", elements="path", default=[]),
            units=dict(type="list", elements="str", default=[]),
            commands=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def run(argv):
        if not module.get_bin_path(argv[0]) and not os.path.isfile(argv[0]):
            return 127, ""
        try:
            rc, out, dummy = module.run_command([str(a) for a in argv], check_rc=False, expand_user_and_vars=False)
        except OSError:
            return 127, ""
        return rc, out.strip()

    checksum = set(p["checksum"])
    result = dict(changed=False, packages=[], units={}, commands={},
                  paths=dict((path, path_info(path, path in checksum)) for path in p["paths"]))
    if p["packages"]:
        dummy, text = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Package}\n"] + p["packages"])
        result["packages"] = [line.split()[1] for line in text.splitlines() if line.startswith("ii ")]
    for unit in p["units"]:
        result["units"][unit] = {"enabled": run(["systemctl", "is-enabled", unit])[1],
                                 "active": run(["systemctl", "is-active", unit])[1]}
    for name, argv in p["commands"].items():
        if not isinstance(argv, list) or not argv:
            module.fail_json(msg="commands.%s must be a non-empty argv list" % name)
        rc, out = run(argv)
        result["commands"][name] = {"rc": rc, "stdout": out}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
