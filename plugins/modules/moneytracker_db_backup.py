#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: moneytracker_db_backup
short_description: Take a verified backup of the MoneyTracker SQLite database
version_added: 0.1.0
author:
  - MoneyTracker operators (@moneytracker)
description:
  - Runs C(moneytracker-db backup) on the managed host. The tool copies the live database with
    the SQLite online backup API, verifies the copy (C(integrity_check), C(foreign_key_check)),
    compresses it, checks the compressed file and publishes it with its manifest in C(backup_dir);
    a copy that fails verification is quarantined and the task fails.
  - Every run writes a new backup, so the task reports C(changed=true) whenever a backup was written.
options:
  label:
    description:
      - Free text stored in the backup's manifest (for example V(pre-migration)).
    type: str
  offsite:
    description:
      - Whether the tool copies this backup to the configured offsite target as well.
      - V(false) passes C(--no-offsite). An offsite copy that fails does not fail the task (the
        local backup is good); RV(offsite) reports it and a warning is shown.
    type: bool
    default: true
  lock_token:
    description:
      - The token of the maintenance lock this play holds (see M(moneytracker.deploy.moneytracker_db_lock)).
        Without it a backup is skipped while anyone holds the lock; with it the backup runs under the
        lock and waits for a running cron job instead of skipping.
      - Never logged or shown (C(no_log)).
    type: str
  allow_missing:
    description:
      - When the database does not exist yet (first deploy), succeed without a backup
        (C(changed=false), RV(skipped)) instead of failing.
    type: bool
    default: false
  jobs_wait:
    description:
      - Seconds to wait for another running job of the tool (a cron backup or check).
        Default is the tool's (0 without O(lock_token), 600 with it).
    type: float
  fail_on_skip:
    description:
      - What to do when the tool skips the backup (exit 75) because the maintenance lock is held by
        someone else or another job runs.
      - V(true) fails the task with the tool's message (the play asked for a backup and has none).
        V(false) returns C(skipped=true) with RV(skip_reason), not failed.
    type: bool
    default: true
extends_documentation_fragment:
  - moneytracker.deploy.moneytracker_db
attributes:
  check_mode:
    support: full
    description:
      - Writes nothing. Reads the configuration (C(moneytracker-db config)) and the lock
        (C(lock status)) and reports C(changed=true) with RV(would) describing the backup the run
        would take, or what would stop it (the lock held by someone else).
  diff_mode:
    support: none
    description: No diff.
notes:
  - Cron keeps calling C(moneytracker-db backup) itself; this module is for plays (for example the
    backup before a migration, under the play's lock).
  - Requires the C(moneytracker-db) tool on the managed host (the C(moneytracker_db) role
    installs it); Python 3.11 or later there.
seealso:
  - name: moneytracker-db backup
    description: What a backup does, step by step, and its manifest (docs/host-tool.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/host-tool.md
  - name: The moneytracker_db modules
    description: How the modules map to the tool's commands (docs/modules.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/modules.md
  - module: moneytracker.deploy.moneytracker_db_lock
  - module: moneytracker.deploy.moneytracker_db_restore
  - module: moneytracker.deploy.moneytracker_db_info
'''

EXAMPLES = r'''
- name: Back up before the migration, under the play's lock, no offsite copy
  moneytracker.deploy.moneytracker_db_backup:
    label: pre-migration
    offsite: false
    lock_token: "{{ maintenance_lock.token }}"
  register: pre_migration_backup

- name: Remember where it is
  ansible.builtin.set_fact:
    rollback_backup: "{{ pre_migration_backup.backup }}"

- name: First deploy, the database may not exist yet
  moneytracker.deploy.moneytracker_db_backup:
    allow_missing: true
    config: /etc/moneytracker-db/config.json
'''

RETURN = r'''
backup:
  description: Path of the verified backup written.
  returned: changed
  type: str
  sample: /var/backups/moneytracker/moneytracker-20260501T020003Z.db.zst
manifest:
  description: Path of its manifest.
  returned: changed
  type: str
  sample: /var/backups/moneytracker/moneytracker-20260501T020003Z.db.zst.manifest.json
size:
  description: Size in bytes of the compressed backup.
  returned: changed
  type: int
sha256:
  description: sha256 of the compressed backup (also in its manifest).
  returned: changed
  type: str
schema:
  description: Schema of the backed-up database (C(alembic_version), C(user_version)).
  returned: changed
  type: dict
  sample: {alembic_version: a1b2c3d4, user_version: 3}
row_counts:
  description: Rows per table in the backup.
  returned: changed
  type: dict
  sample: {accounts: 20, transactions: 500}
database:
  description: The live database that would be backed up.
  returned: check mode
  type: str
offsite:
  description: The offsite copy's result (C(ok), C(error), C(target)); C(null) when not copied.
  returned: changed
  type: dict
skipped:
  description: V(true) when no backup was taken (no database with O(allow_missing), or a skip with O(fail_on_skip=false)).
  returned: when skipped
  type: bool
skip_reason:
  description: The tool's reason for not taking a backup.
  returned: when skipped
  type: str
  sample: "skipped: maintenance lock held by migration@ctl (migrate.yml) since 2026-05-01T02:00:03Z"
would:
  description: In check mode, what the run would do.
  returned: check mode
  type: dict
  sample:
    action: backup
    database: /var/lib/docker/volumes/moneytracker_data/_data/moneytracker.db
    backup_dir: /var/backups/moneytracker
    label: pre-migration
    offsite: false
    lock: free
msg:
  description: The tool's message (on failure its error line).
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
    token_id,
)


def check_mode(module, client):
    p = module.params
    cfg = client.run('config')
    if not cfg.ok:
        client.fail(cfg)
    config = cfg.data.get('config') or {}
    lock = client.run('lock', 'status')
    if lock.outcome not in ('ok', 'locked', 'stale'):
        client.fail(lock)
    state = lock.data.get('state') or 'free'
    record = lock.data.get('lock') or {}
    database = config.get('database') or '{0}/{1} (Docker volume)'.format(
        config.get('volume'), config.get('database_name'))
    would = dict(action='backup', database=database, backup_dir=config.get('backup_dir'), label=p['label'],
                 offsite=bool(p['offsite'] and config.get('offsite')), lock=state)
    ours = bool(p['lock_token']) and record.get('id') == token_id(p['lock_token'])
    if state == 'free' and p['lock_token']:
        module.fail_json(msg='lock_token given but the maintenance lock is not held (released or broken?); '
                             'the backup would be refused', would=would, rc=lock.rc, cmd=lock.cmd)
    if state != 'free' and not ours:
        reason = 'skipped: maintenance lock held by {0}@{1} ({2}) since {3}{4}'.format(
            record.get('owner'), record.get('host'), record.get('play'), record.get('since'),
            ' [STALE]' if state == 'stale' else '')
        would['action'] = 'skip'
        if p['fail_on_skip']:
            module.fail_json(msg='check mode: the backup would be ' + reason, would=would, skip_reason=reason,
                             lock=record, rc=lock.rc, cmd=lock.cmd)
        module.exit_json(failed=False, changed=False, skipped=True, skip_reason=reason, would=would, lock=record, rc=lock.rc,
                         cmd=lock.cmd, msg='check mode: the backup would be ' + reason)
    module.exit_json(failed=False, changed=True, would=would, database=database, rc=lock.rc, cmd=lock.cmd,
                     msg='check mode: a backup of {0} would be written to {1}'.format(database,
                                                                                      config.get('backup_dir')))


def main():
    module = AnsibleModule(
        argument_spec=common_argument_spec(
            label=dict(type='str'),
            offsite=dict(type='bool', default=True),
            lock_token=dict(type='str', no_log=True),
            allow_missing=dict(type='bool', default=False),
            jobs_wait=dict(type='float'),
            fail_on_skip=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    client = MoneytrackerDbClient(module)
    if module.check_mode:
        check_mode(module, client)

    args = ['backup']
    if p['label'] is not None:
        args += ['--label', p['label']]
    if not p['offsite']:
        args.append('--no-offsite')
    if p['allow_missing']:
        args.append('--allow-missing')
    if p['lock_token']:
        args += ['--lock-token', Secret(p['lock_token'])]
    if p['jobs_wait'] is not None:
        args += ['--jobs-wait', str(p['jobs_wait'])]
    result = client.run(*args)

    if result.outcome == 'skipped':
        if p['fail_on_skip']:
            client.fail(result, skip_reason=result.skipped_reason)
        module.exit_json(failed=False, changed=False, skipped=True, skip_reason=result.skipped_reason, rc=result.rc,
                         cmd=result.cmd, msg=result.message, **result.details())
    if not result.ok:
        client.fail(result)
    if result.skipped_reason:  # exit 0: no database yet, --allow-missing
        module.exit_json(failed=False, changed=False, skipped=True, skip_reason=result.skipped_reason, rc=result.rc,
                         cmd=result.cmd, msg=result.message, **result.details())
    details = result.details()
    offsite = details.get('offsite')
    if isinstance(offsite, dict) and offsite.get('ok') is False:
        module.warn('backup {0} is good, but its offsite copy failed: {1}'.format(details.get('backup'),
                                                                                  offsite.get('error')))
    module.exit_json(failed=False, changed=True, rc=result.rc, cmd=result.cmd, msg=result.message, **details)


if __name__ == '__main__':
    main()
