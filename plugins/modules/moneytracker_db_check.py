#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: moneytracker_db_check
short_description: Check the MoneyTracker SQLite database or its newest backup
version_added: 0.1.0
author:
  - MoneyTracker operators (@moneytracker)
description:
  - Runs C(moneytracker-db check) on the managed host.
  - O(mode=quick) runs C(PRAGMA quick_check) on the B(live) database, opened read-only.
  - O(mode=full) checks the newest verified backup (sha256 against its manifest, decompressed into
    C(backup_dir/.tmp/), C(integrity_check) and C(foreign_key_check) of that copy); it never
    reads the live database for long.
  - The task fails when the check finds problems (RV(problems) lists them). A check the tool
    skips (exit 75, the maintenance lock is held by someone else or another job runs) is not a
    failure, the task returns C(skipped=true) and RV(skip_reason).
  - Never changes the database or the backups (C(changed=false) always).
options:
  mode:
    description:
      - V(quick) checks the live database, V(full) the newest verified backup.
    type: str
    choices: [quick, full]
    default: quick
  allow_missing:
    description:
      - With O(mode=quick), a database that does not exist yet (first deploy) is not an error
        (C(skipped=true)).
    type: bool
    default: false
  lock_token:
    description:
      - The token of the maintenance lock this play holds; the check then runs under the lock
        instead of being skipped. Never logged or shown (C(no_log)).
    type: str
  jobs_wait:
    description:
      - Seconds to wait for another running job of the tool. Default is the tool's (0 without
        O(lock_token), 600 with it).
    type: float
extends_documentation_fragment:
  - moneytracker.deploy.moneytracker_db
attributes:
  check_mode:
    support: full
    description:
      - The check runs in check mode too, since it only reads the database (V(quick)) or a
        temporary copy of a backup (V(full)). The tool records the check's result in its
        C(status.json) and metrics file, as it does for every run.
  diff_mode:
    support: none
    description: No diff.
notes:
  - Cron keeps calling C(moneytracker-db check) itself; this module is for plays and runbooks
    run through Ansible.
  - Requires the C(moneytracker-db) tool on the managed host (the C(moneytracker_db) role
    installs it); Python 3.11 or later there.
seealso:
  - name: moneytracker-db check
    description: What the quick and full checks do (docs/host-tool.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/host-tool.md
  - name: The moneytracker_db modules
    description: How the modules map to the tool's commands (docs/modules.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/modules.md
  - module: moneytracker.deploy.moneytracker_db_backup
  - module: moneytracker.deploy.moneytracker_db_info
'''

EXAMPLES = r'''
- name: Quick check of the live database
  moneytracker.deploy.moneytracker_db_check:
    mode: quick

- name: Full check of the newest backup, under the play's lock
  moneytracker.deploy.moneytracker_db_check:
    mode: full
    lock_token: "{{ maintenance_lock.token }}"
  register: full_check

- name: The full check ran (it was not skipped by someone else's lock)
  ansible.builtin.assert:
    that: full_check is not skipped
'''

RETURN = r'''
database:
  description: The live database checked (O(mode=quick)).
  returned: success and mode is quick
  type: str
backup:
  description: The backup checked (O(mode=full)).
  returned: success and mode is full
  type: str
quick_check:
  description: The rows of C(PRAGMA quick_check) (V([ok]) when sound).
  returned: success and mode is quick
  type: list
  elements: str
  sample: [ok]
integrity_check:
  description: The rows of C(PRAGMA integrity_check) of the backup's copy.
  returned: success and mode is full
  type: list
  elements: str
problems:
  description: What the failed check found (up to 100 lines).
  returned: failure
  type: list
  elements: str
  sample: ["*** in database main ***", "Tree 3 page 3 cell 0: invalid page number 2779096485"]
skipped:
  description: V(true) when the tool skipped the check (or there is no database with O(allow_missing)).
  returned: when skipped
  type: bool
skip_reason:
  description: The tool's reason for skipping.
  returned: when skipped
  type: str
  sample: "skipped: maintenance lock held by migration@ctl (migrate.yml) since 2026-05-01T02:00:03Z"
seconds:
  description: How long the quick check took.
  returned: success and mode is quick
  type: float
msg:
  description: The tool's message (on failure its error line, naming the first problems).
  returned: always
  type: str
rc:
  description: Exit code of the tool (0 ok, 1 failed, 2 usage/config, 3 bad token, 75 skipped).
  returned: always
  type: int
cmd:
  description: The tool command, tokens shown as C(********).
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.moneytracker.deploy.plugins.module_utils.moneytracker_db import (
    MoneytrackerDbClient,
    Secret,
    common_argument_spec,
)


def main():
    module = AnsibleModule(
        argument_spec=common_argument_spec(
            mode=dict(type='str', choices=['quick', 'full'], default='quick'),
            allow_missing=dict(type='bool', default=False),
            lock_token=dict(type='str', no_log=True),
            jobs_wait=dict(type='float'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    client = MoneytrackerDbClient(module)
    args = ['check', '--' + p['mode']]
    if p['allow_missing']:
        args.append('--allow-missing')
    if p['lock_token']:
        args += ['--lock-token', Secret(p['lock_token'])]
    if p['jobs_wait'] is not None:
        args += ['--jobs-wait', str(p['jobs_wait'])]
    result = client.run(*args)
    if result.outcome == 'skipped' or (result.ok and result.skipped_reason):
        module.exit_json(failed=False, changed=False, skipped=True, skip_reason=result.skipped_reason, rc=result.rc,
                         cmd=result.cmd, msg=result.message, **result.details())
    if not result.ok:
        client.fail(result)
    module.exit_json(failed=False, changed=False, rc=result.rc, cmd=result.cmd, msg=result.message, **result.details())


if __name__ == '__main__':
    main()
