#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: moneytracker_db_restore
short_description: Restore the MoneyTracker SQLite database from a verified backup
version_added: 0.1.0
author:
  - MoneyTracker operators (@moneytracker)
description:
  - Runs C(moneytracker-db restore --yes) on the managed host. The tool verifies the backup
    (sha256 against its manifest, C(integrity_check), C(foreign_key_check)) before anything
    changes, takes the maintenance lock (or uses O(lock_token)), stops the writers, moves the live
    file and its C(-wal)/C(-shm)/C(-journal) aside (never deleted), renames the verified copy into
    place, starts the writers and runs C(quick_check) on the restored file.
  - A restore always replaces the database, so a successful run is always C(changed=true). It is
    not idempotent by design; guard it with a condition in the play.
  - In check mode the module runs C(moneytracker-db restore) B(without) C(--yes), which only
    prints the tool's plan (the backup, target, stop and start commands, the files that would go
    aside, the lock situation) and changes nothing; the plan is returned in RV(plan).
options:
  backup:
    description:
      - The backup file to restore (C(moneytracker-<time>.db.zst) or C(.gz) in C(backup_dir), with
        its manifest). Default is the newest verified backup.
      - With the tool's C(engine) C(postgres), a pgBackRest backup label (as C(moneytracker-db list) shows
        them), and the database goes back to that backup's consistent point. Default there is the end
        of the archived WAL (every write the server had archived; the restore archives the current WAL first).
    type: path
  target_time:
    description:
      - With the tool's C(engine) C(postgres) only, point-in-time recovery to this time (ISO 8601 with a
        zone, for example V(2026-12-01T14:17:00Z)), from the newest backup before it with the archived
        WAL replayed up to it. Not with O(backup).
    type: str
    version_added: 0.3.0
  lock_token:
    description:
      - The token of the maintenance lock this play already holds. Without it the restore takes
        the lock itself (and fails while someone else holds it).
      - Never logged or shown (C(no_log)).
    type: str
  writers_stopped:
    description:
      - Confirms that the database writers are already stopped, for a configuration without
        C(stop_command) (and no O(stop_command)). The tool refuses to restore otherwise.
    type: bool
    default: false
  stop_command:
    description:
      - Argv that stops the database writers, overriding the configuration's C(stop_command)
        (for example V([docker, compose, --project-directory, /opt/moneytracker, stop, backend])).
        Run without a shell.
    type: list
    elements: str
  start_command:
    description:
      - Argv that starts the writers again, overriding the configuration's C(start_command).
    type: list
    elements: str
  play:
    description:
      - Name recorded in the maintenance lock the restore takes (when O(lock_token) is not given).
    type: str
  jobs_wait:
    description:
      - Seconds to wait for a running backup or check of the tool (the tool's default is 600).
    type: float
extends_documentation_fragment:
  - moneytracker.deploy.moneytracker_db
attributes:
  check_mode:
    support: full
    description:
      - Returns the tool's plan (C(restore) without C(--yes), exit 3 "confirmation required")
        with C(changed=true) and changes nothing. It fails when the real run would be refused
        before it starts (the lock held by someone else, or neither a stop command nor
        O(writers_stopped)).
  diff_mode:
    support: none
    description: No diff.
notes:
  - A failed restore reports RV(aside) (what was moved aside) and RV(database_changed) (whether
    the restored file was renamed into place); the task is then C(failed) and, when the database
    was replaced, also C(changed).
  - See the runbook docs/runbooks for when to restore, and the info module's O(moneytracker.deploy.moneytracker_db_info#module:compare)
    option for the writes a restore would lose.
  - Requires the C(moneytracker-db) tool on the managed host (the C(moneytracker_db) role
    installs it); Python 3.11 or later there.
seealso:
  - name: moneytracker-db restore
    description: What a restore does, step by step (docs/host-tool.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/host-tool.md
  - name: The moneytracker_db modules
    description: How the modules map to the tool's commands (docs/modules.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/modules.md
  - module: moneytracker.deploy.moneytracker_db_info
  - module: moneytracker.deploy.moneytracker_db_lock
  - module: moneytracker.deploy.moneytracker_db_backup
'''

EXAMPLES = r'''
- name: Show what a restore of the newest backup would do (changes nothing)
  moneytracker.deploy.moneytracker_db_restore:
  check_mode: true
  register: restore_plan

- name: Restore the backup taken before the migration, under the play's lock
  moneytracker.deploy.moneytracker_db_restore:
    backup: "{{ pre_migration_backup.backup }}"
    lock_token: "{{ maintenance_lock.token }}"
    stop_command: [docker, compose, --project-directory, /opt/moneytracker, stop, backend]
    start_command: [docker, compose, --project-directory, /opt/moneytracker, start, backend]
  register: restored

- name: Where the previous database went
  ansible.builtin.debug:
    var: restored.aside
'''

RETURN = r'''
plan:
  description:
    - The tool's plan (check mode), with C(backup), C(backup_time), C(database),
      C(database_exists), C(aside) (live file to its aside name), C(stop_command),
      C(start_command), and C(lock) when someone else holds the lock.
  returned: check mode
  type: dict
  sample:
    backup: /var/backups/moneytracker/moneytracker-20260501T020003Z.db.zst
    backup_time: "2026-05-01T02:00:03Z"
    database: /srv/data/moneytracker.db
    database_exists: true
    aside:
      /srv/data/moneytracker.db: /srv/data/moneytracker.db.pre-restore-20260501T030000Z
    stop_command: [docker, compose, stop, backend]
    start_command: [docker, compose, start, backend]
restored:
  description: The backup restored.
  returned: success and not check mode
  type: str
  sample: /var/backups/moneytracker/moneytracker-20260501T020003Z.db.zst
backup_time:
  description: When that backup was taken (UTC).
  returned: success
  type: str
database:
  description: The live database restored into.
  returned: always
  type: str
aside:
  description: Each live file moved aside and where it is now (never deleted by the tool).
  returned: success, and failures after the restore started
  type: dict
database_changed:
  description: Whether the restored file was renamed into place (also on failure).
  returned: success, and failures after the restore started
  type: bool
quick_check:
  description: C(PRAGMA quick_check) of the restored file.
  returned: success and not check mode
  type: list
  elements: str
  sample: [ok]
msg:
  description: The tool's message (on failure its error line, which names the aside files when any).
  returned: always
  type: str
rc:
  description: Exit code of the tool (0 ok, 1 failed, 2 usage/config, 3 lock held or confirmation required, 4 stale lock).
  returned: always
  type: int
cmd:
  description: The tool command, tokens shown as C(********).
  returned: always
  type: str
'''

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.moneytracker.deploy.plugins.module_utils.moneytracker_db import (
    MoneytrackerDbClient,
    Secret,
    common_argument_spec,
)


def main():
    module = AnsibleModule(
        argument_spec=common_argument_spec(
            backup=dict(type='path'),
            target_time=dict(type='str'),
            lock_token=dict(type='str', no_log=True),
            writers_stopped=dict(type='bool', default=False),
            stop_command=dict(type='list', elements='str'),
            start_command=dict(type='list', elements='str'),
            play=dict(type='str'),
            jobs_wait=dict(type='float'),
        ),
        supports_check_mode=True,
        mutually_exclusive=[('backup', 'target_time')],
    )
    p = module.params
    client = MoneytrackerDbClient(module)
    args = ['restore']
    if p['backup']:
        args += ['--backup', p['backup']]
    if p['target_time']:
        args += ['--target-time', p['target_time']]
    if p['lock_token']:
        args += ['--lock-token', Secret(p['lock_token'])]
    if p['stop_command']:
        args += ['--stop-command', json.dumps(p['stop_command'])]
    if p['start_command']:
        args += ['--start-command', json.dumps(p['start_command'])]

    if module.check_mode:
        result = client.run(*args)
        if result.outcome != 'confirmation_required':
            client.fail(result)
        plan = result.data.get('plan') or {}
        if plan.get('lock'):
            lock = plan['lock']
            owner = lock.get('owner') or {}
            client.fail(result, plan=plan, drop=('confirmation_required',),
                        msg='the restore would be refused: the maintenance lock is {0} by {1}@{2} ({3}) since {4}; '
                            'it needs that lock\'s token (lock_token) or the lock released'.format(
                                (lock.get('state') or '?').upper(), owner.get('owner'), owner.get('host'),
                                owner.get('play'), owner.get('since')))
        if not plan.get('stop_command') and not p['writers_stopped']:
            client.fail(result, plan=plan, drop=('confirmation_required',),
                        msg='the restore would be refused: no stop_command (configuration or option) to stop the '
                            'database writers, and writers_stopped is not set')
        module.exit_json(failed=False, changed=True, plan=plan, database=plan.get('database'), rc=result.rc, cmd=result.cmd,
                         msg='check mode: would restore {0} (taken {1}) into {2}; nothing changed'.format(
                             plan.get('backup'), plan.get('backup_time'), plan.get('database')))

    args.append('--yes')
    if p['writers_stopped']:
        args.append('--writers-stopped')
    if p['play']:
        args += ['--play', p['play']]
    if p['jobs_wait'] is not None:
        args += ['--jobs-wait', str(p['jobs_wait'])]
    result = client.run(*args)
    if not result.ok:
        client.fail(result, changed=bool(result.data.get('database_changed')))
    module.exit_json(failed=False, changed=True, rc=result.rc, cmd=result.cmd, msg=result.message, **result.details())


if __name__ == '__main__':
    main()
