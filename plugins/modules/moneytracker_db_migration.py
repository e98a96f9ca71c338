#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: moneytracker_db_migration
short_description: Drive the MoneyTracker migration journal and migrate a copy of the live database
version_added: 0.2.0
author:
  - MoneyTracker operators (@moneytracker)
description:
  - Runs C(moneytracker-db migration ACTION) on the host, that is the journal that makes a schema
    migration safe to interrupt at any point, and the one host command that does the maintenance
    window's work.
  - O(action=status) reads the journal, what the database files say (swapped or not) and the lock;
    it never changes anything. O(action=adopt) takes over the lock of an unfinished journal whose run
    is dead and returns a new token.
  - Every other action needs the maintenance lock's O(lock_token) (from M(moneytracker.deploy.moneytracker_db_lock)).
    O(action=begin) opens the journal, O(action=step) records a step, O(action=run) stops the writers,
    copies the live file, runs O(command) on the copy, checks it and swaps it in, O(action=revert)
    puts the pre-swap file back (or removes the copy), O(action=finish) closes the journal.
  - The live database file is never migrated in place; see docs/host-tool.md, "Migrations".
  - With the tool's C(engine) V(postgres) the migration runs in place in one transaction (PostgreSQL
    rolls it back by itself), so the journal keeps no files; O(action=status) asks PostgreSQL which
    schema it committed (only while a journal is open), O(action=revert) only records that nothing
    committed (and refuses once it did), O(action=finish) checks the schema; V(run) is refused.
options:
  action:
    description:
      - The journal action (the tool's C(migration) sub-command).
    type: str
    required: true
    choices: [status, begin, step, run, revert, finish, adopt]
  lock_token:
    description:
      - The maintenance lock's token. Required by every action but V(status) and V(adopt).
      - Never logged or shown (C(no_log)).
    type: str
  id:
    description: With O(action=begin), the migration's id (names its history file).
    type: str
  schema_from:
    description: With O(action=begin), the schema before the migration.
    type: str
  schema_to:
    description: With O(action=begin), the schema after it.
    type: str
  facts:
    description:
      - With O(action=begin) or O(action=step), facts recorded in the journal (C(--set KEY=VALUE)).
    type: dict
    default: {}
  step:
    description: With O(action=step), the step's name (the journal's new state).
    type: str
  expect_schema:
    description: With O(action=run), the C(alembic_version) the migrated copy must have.
    type: str
  timeout:
    description: With O(action=run), seconds the migration command may run.
    type: float
    default: 600
  container:
    description: With O(action=run), the migration's container name, removed when it times out.
    type: str
  stop_command:
    description:
      - With O(action=run), the argv that stops every writer (the backend) before the copy.
        Omitted, the writers are not stopped by the tool.
    type: list
    elements: str
  activate_compose:
    description:
      - With O(action=run), the compose file the journal's C(target_compose) replaces right after the
        swap (atomic rename).
    type: path
  command:
    description:
      - With O(action=run), the migration command (argv) the tool runs; it reaches the copy at
        C(<db>.migrating).
    type: list
    elements: str
  result:
    description: With O(action=finish), how the migration ended.
    type: str
    choices: [done, reverted]
  note:
    description: With O(action=finish), a note kept in the journal's history (the tool's C(--message)).
    type: str
  owner:
    description: With O(action=adopt), who takes over the lock.
    type: str
  host:
    description: With O(action=adopt), where the new holder runs.
    type: str
  play:
    description: With O(action=adopt), which play holds the lock.
    type: str
  user:
    description: With O(action=adopt), who runs the play.
    type: str
  controller_pid:
    description: With O(action=adopt), the controller's C(ansible-playbook) pid.
    type: int
  ttl:
    description: With O(action=adopt), seconds until the new lock is stale.
    type: int
  jobs_wait:
    description:
      - Seconds to wait for a running backup or check before the action (the tool's default is 600).
    type: float
extends_documentation_fragment:
  - moneytracker.deploy.moneytracker_db
attributes:
  check_mode:
    support: partial
    description: Can run in check_mode and return changed status prediction without modifying target.
    details:
      - O(action=status) runs in check mode. Every other action is not run and reports C(changed=true)
        (what it would do depends on steps before it that check mode did not run either).
  diff_mode:
    support: none
    description: No diff.
notes:
  - Register O(action=adopt) with C(no_log) set to V(true), since its result holds the new token.
  - Requires the C(moneytracker-db) tool on the managed host (the C(moneytracker_db) role installs it).
seealso:
  - name: The moneytracker-db host tool
    description: The migration journal and its steps (docs/host-tool.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/host-tool.md
  - module: moneytracker.deploy.moneytracker_db_lock
  - module: moneytracker.deploy.moneytracker_db_backup
'''

EXAMPLES = r'''
- name: Read the journal, the database files and the lock
  moneytracker.deploy.moneytracker_db_migration:
    action: status
  register: migration

- name: Open the journal under the lock
  moneytracker.deploy.moneytracker_db_migration:
    action: begin
    lock_token: "{{ maintenance_lock.token }}"
    id: "{{ now(utc=true, fmt='%Y%m%dT%H%M%SZ') }}"
    schema_from: a1
    schema_to: b2
    facts:
      image: registry.example.com/moneytracker/backend:2.0.0

- name: Migrate a copy and swap it in (the maintenance window's work)
  moneytracker.deploy.moneytracker_db_migration:
    action: run
    lock_token: "{{ maintenance_lock.token }}"
    expect_schema: b2
    timeout: 600
    stop_command: [docker, compose, --project-directory, /opt/moneytracker, stop, backend]
    activate_compose: /opt/moneytracker/compose.yaml
    command: [docker, compose, --project-directory, /opt/moneytracker, run, --rm, backend, alembic, upgrade, head]

- name: Close the journal
  moneytracker.deploy.moneytracker_db_migration:
    action: finish
    lock_token: "{{ maintenance_lock.token }}"
    result: done
'''

RETURN = r'''
unfinished:
  description: Whether a journal is open (O(action=status)).
  returned: action=status
  type: bool
journal:
  description: The open journal (C(null) when none), as the tool records it.
  returned: action=status, and when an action changed it
  type: dict
swapped:
  description: Whether the migrated copy is the live database now (O(action=status)); on PostgreSQL,
    whether the migration's transaction committed (the schema PostgreSQL has is the journal's target).
  returned: action=status
  type: bool
live_schema:
  description: The live database's schema revision (O(action=status)); on PostgreSQL read only while a
    journal is open, else C(null).
  returned: action=status
  type: str
lock:
  description: With O(action=status), the lock's state (V(free), V(held), V(stale)) under C(state) and its record.
  returned: action=status
  type: dict
token:
  description: The new lock's token (O(action=adopt)). Register the task with C(no_log).
  returned: action=adopt, success
  type: str
seconds:
  description: With O(action=run), how long the whole run took; also C(stop_seconds), C(copy_seconds),
    C(migration_seconds).
  returned: action=run
  type: float
migration_rc:
  description: With O(action=run), the migration command's exit code; C(migration_stdout),
    C(migration_stderr) and C(migration_timed_out) hold what it printed and whether it was killed.
  returned: action=run, when the command ran
  type: int
msg:
  description: The tool's message (its error on failure).
  returned: always
  type: str
rc:
  description: Exit code of the tool (0 ok, 1 failed, 2 usage, 3 locked, 4 stale).
  returned: always
  type: int
cmd:
  description: The tool's command, tokens shown as C(********).
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

NEEDS_TOKEN = ('begin', 'step', 'run', 'revert', 'finish')


def sets(facts):
    args = []
    for key in sorted(facts):
        value = facts[key]
        args += ['--set', '{0}={1}'.format(key, '' if value is None else value)]
    return args


def build_args(p):
    action = p['action']
    args = ['migration', action]
    if action in NEEDS_TOKEN:
        args += ['--lock-token', Secret(p['lock_token'])]
    if action == 'begin':
        args += ['--id', p['id'], '--from', p['schema_from'], '--to', p['schema_to']] + sets(p['facts'])
    elif action == 'step':
        args += ['--name', p['step']] + sets(p['facts'])
    elif action == 'run':
        args += ['--expect-schema', p['expect_schema'], '--timeout', str(p['timeout'])]
        if p['container']:
            args += ['--container', p['container']]
        if p['stop_command']:
            args += ['--stop-writers', '--stop-command', json.dumps(p['stop_command'])]
        if p['activate_compose']:
            args += ['--activate-compose', p['activate_compose']]
        args += ['--'] + list(p['command'])
    elif action == 'finish':
        args += ['--result', p['result']]
        if p['note']:
            args += ['--message', p['note']]
    elif action == 'adopt':
        args += ['--owner', p['owner'], '--host', p['host'], '--play', p['play']]
        for option, flag in (('user', '--user'), ('controller_pid', '--controller-pid'), ('ttl', '--ttl')):
            if p[option] is not None:
                args += [flag, str(p[option])]
    if p['jobs_wait'] is not None and action != 'status':
        args += ['--jobs-wait', str(p['jobs_wait'])]
    return args


def main():
    module = AnsibleModule(
        argument_spec=common_argument_spec(
            action=dict(type='str', required=True, choices=['status', 'begin', 'step', 'run', 'revert', 'finish',
                                                            'adopt']),
            lock_token=dict(type='str', no_log=True),
            id=dict(type='str'),
            schema_from=dict(type='str'),
            schema_to=dict(type='str'),
            facts=dict(type='dict', default={}),
            step=dict(type='str'),
            expect_schema=dict(type='str'),
            timeout=dict(type='float', default=600),
            container=dict(type='str'),
            stop_command=dict(type='list', elements='str'),
            activate_compose=dict(type='path'),
            command=dict(type='list', elements='str'),
            result=dict(type='str', choices=['done', 'reverted']),
            note=dict(type='str'),
            owner=dict(type='str'),
            host=dict(type='str'),
            play=dict(type='str'),
            user=dict(type='str'),
            controller_pid=dict(type='int'),
            ttl=dict(type='int'),
            jobs_wait=dict(type='float'),
        ),
        required_if=[
            ('action', 'begin', ['lock_token', 'id', 'schema_from', 'schema_to']),
            ('action', 'step', ['lock_token', 'step']),
            ('action', 'run', ['lock_token', 'expect_schema', 'command']),
            ('action', 'revert', ['lock_token']),
            ('action', 'finish', ['lock_token', 'result']),
            ('action', 'adopt', ['owner', 'host', 'play']),
        ],
        supports_check_mode=True,
    )
    p = module.params
    client = MoneytrackerDbClient(module)
    args = build_args(p)
    if module.check_mode and p['action'] != 'status':
        client.check_tool()
        module.exit_json(failed=False, changed=True, rc=None, cmd=None,
                         msg='check mode: migration {0} was not run'.format(p['action']))
    result = client.run(*args)
    if not result.ok:
        # The tool's message, and what it reported (for `run`: the migration's output and exit code).
        # A refusal (usage, lock) changed nothing; a `run` or `revert` that failed (exit 1) may have
        # stopped the backend or moved files, which its journal records.
        client.fail(result, changed=p['action'] in ('run', 'revert') and result.rc == 1)
    out = result.details()
    module.exit_json(failed=False, changed=p['action'] != 'status', rc=result.rc, cmd=result.cmd,
                     msg=result.message, **out)


if __name__ == '__main__':
    main()
