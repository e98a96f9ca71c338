#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: moneytracker_db_info
short_description: Backups, job status, lock, migration state of the MoneyTracker database
version_added: 0.1.0
author:
  - MoneyTracker operators (@moneytracker)
description:
  - Gathers, read-only, what the C(moneytracker-db) host tool knows.
  - C(status) (last run and result of every job, newest verified backup, free space, lock),
    C(list) (every backup file with time, size, verified, and the retention tier that keeps it),
    C(migration status) (an unfinished migration's journal, swapped or not, the live schema).
  - With O(compare), also C(compare), the rows a restore of a backup would lose (written after it).
  - Never changes anything (C(changed=false)), and runs in check mode.
options:
  compare:
    description:
      - Also report what a restore of O(backup) (default the newest verified backup) would lose.
      - C(compare) reads the live database read-only; for an old backup without C(max_ids) in its
        manifest it decompresses the backup into C(backup_dir/.tmp/) for the duration of the call.
    type: bool
    default: false
  backup:
    description:
      - The backup to compare with (implies O(compare)). Default is the newest verified backup.
    type: path
  target_time:
    description:
      - With the tool's C(engine) V(postgres), the point a point-in-time restore would go back to (ISO 8601
        with a time zone; implies O(compare)); the rows written (inserted or updated) after it are counted per
        table by their commit time.
    type: str
  migration:
    description:
      - Whether to include C(migration status).
    type: bool
    default: true
extends_documentation_fragment:
  - moneytracker.deploy.moneytracker_db
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: No diff.
notes:
  - Requires the C(moneytracker-db) tool on the managed host (the C(moneytracker_db) role
    installs it); Python 3.11 or later there.
seealso:
  - name: moneytracker-db status, list, compare
    description: The commands behind this module (docs/host-tool.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/host-tool.md
  - name: The moneytracker_db modules
    description: How the modules map to the tool's commands (docs/modules.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/modules.md
  - module: moneytracker.deploy.moneytracker_db_restore
  - module: moneytracker.deploy.moneytracker_db_lock
'''

EXAMPLES = r'''
- name: What do we have, and what would a restore of the newest backup lose?
  moneytracker.deploy.moneytracker_db_info:
    compare: true
  register: db_info

- name: Refuse to restore over recent writes without a second look
  ansible.builtin.assert:
    that: db_info.compare.writes_lost == 0
    fail_msg: "a restore would lose {{ db_info.compare.writes_lost }} row(s) written after {{ db_info.compare.backup }}"

- name: Newest verified backup
  ansible.builtin.debug:
    msg: "{{ db_info.newest_backup.path }} ({{ db_info.newest_backup.time }})"
'''

RETURN = r'''
status:
  description: C(moneytracker-db status) (C(jobs), C(newest_backup), C(backups_count), C(quarantined),
    C(backup_fs), C(maintenance_lock)).
  returned: always
  type: dict
newest_backup:
  description: The newest verified backup (C(path), C(time), C(age_seconds), C(size)); C(null) when there is none.
  returned: always
  type: dict
  sample:
    path: /var/backups/moneytracker/moneytracker-20260501T020003Z.db.zst
    time: "2026-05-01T02:00:03Z"
    age_seconds: 3600
    size: 1048576
jobs:
  description: Per job (C(backup), C(prune), C(check_quick), C(check_full), C(restore), C(offsite)) its last run and result.
  returned: always
  type: dict
lock:
  description: The maintenance lock (C(state) free, held or stale, C(owner) its record without the token).
  returned: always
  type: dict
  sample: {state: free, owner: null}
backups:
  description: Every backup file, newest first (C(path), C(time), C(age_seconds), C(size), C(verified),
    C(problem), C(kept_by), C(label)).
  returned: always
  type: list
  elements: dict
quarantine:
  description: Copies that failed verification (C(report), C(time), C(reason)).
  returned: always
  type: list
  elements: dict
migration:
  description: C(moneytracker-db migration status) (C(unfinished), C(journal), C(swapped), C(live_schema), C(problems), ...).
  returned: when O(migration=true)
  type: dict
compare:
  description:
    - What a restore of the backup would lose. C(writes_lost) counts rows by id only (rows of
      tables without an integer C(id) and updates are not counted); C(tables) has per table
      C(live), C(backup), C(new_count) and the first C(new_ids).
  returned: when O(compare=true) or O(backup) is set
  type: dict
  sample:
    backup: /var/backups/moneytracker/moneytracker-20260501T020003Z.db.zst
    backup_started: "2026-05-01T02:00:03Z"
    writes_lost: 30
    tables:
      transactions: {live: 530, backup: 500, backup_max_id: 500, new_count: 30, new_ids: [501, 502]}
cmd:
  description: The last tool command run.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.moneytracker.deploy.plugins.module_utils.moneytracker_db import (
    MoneytrackerDbClient,
    common_argument_spec,
)


def run_ok(client, *args):
    result = client.run(*args)
    if not result.ok:
        client.fail(result)
    return result


def main():
    module = AnsibleModule(
        argument_spec=common_argument_spec(
            compare=dict(type='bool', default=False),
            backup=dict(type='path'),
            target_time=dict(type='str'),
            migration=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    client = MoneytrackerDbClient(module)

    status = run_ok(client, 'status').details()
    listing = run_ok(client, 'list').details()
    out = dict(
        changed=False,
        status=status,
        newest_backup=status.get('newest_backup'),
        jobs=status.get('jobs'),
        lock=status.get('maintenance_lock'),
        backups=listing.get('backups', []),
        quarantine=listing.get('quarantine', []),
        prune_blocked=listing.get('blocked'),
    )
    if p['migration']:
        out['migration'] = run_ok(client, 'migration', 'status').details()
    if p['compare'] or p['backup'] or p['target_time']:
        args = (['compare'] + (['--backup', p['backup']] if p['backup'] else [])
                + (['--target-time', p['target_time']] if p['target_time'] else []))
        out['compare'] = run_ok(client, *args).details()
    out['cmd'] = client.results[-1].cmd
    module.exit_json(failed=False, **out)


if __name__ == '__main__':
    main()
