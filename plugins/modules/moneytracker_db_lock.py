#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r'''
---
module: moneytracker_db_lock
short_description: Acquire, release, inspect or break the MoneyTracker maintenance lock
version_added: 0.1.0
author:
  - MoneyTracker operators (@moneytracker)
description:
  - Drives the maintenance lock of the C(moneytracker-db) host tool (C(moneytracker-db lock ...)).
  - One lock, C(state_dir/maintenance.lock), serialises migrations, restores, backups and checks;
    cron backups and checks skip while it is held.
  - I(state=acquired) takes the lock and returns its secret O(token); every later change made
    under the lock (backup, restore, release) needs that token.
  - I(state=released) gives the lock back with its O(token); I(state=status) only reads it;
    I(state=broken) is the forced release of a lock whose run is gone, limited to the lock
    O(id) an operator was shown.
options:
  state:
    description:
      - V(acquired) takes the lock (C(lock acquire)). Fails, with the tool's message and the
        holder in RV(lock), when someone else holds it (RV(state) is V(held)) or when it is stale
        (V(stale); a stale lock is never taken over).
      - V(released) releases the lock held with O(token) (C(lock release)). Already free is
        not an error (C(changed=false)); a token that is not the holder's fails.
      - V(status) reports the lock (C(lock status)); never changes anything, never fails because
        the lock is held.
      - V(broken) removes the lock by force (C(lock break --force --id ID)), only when its id is
        still O(id); any other lock fails and is left alone. Already free means C(changed=false).
    type: str
    required: true
    choices: [acquired, released, status, broken]
  owner:
    description:
      - Who takes the lock (for example V(migration) or an operator's name). Required with
        I(state=acquired).
    type: str
  host:
    description:
      - Where the holder runs, recorded in the lock (usually the controller's host name).
      - Default is the managed host's name (the tool's default).
    type: str
  user:
    description:
      - Who runs the play, recorded in the lock. Default is the tool's (C($USER) of the remote
        user, else its login name).
    type: str
  controller_pid:
    description:
      - Process id of the controller's C(ansible-playbook), recorded in the lock so a later run can
        tell whether the holder is still alive (see the C(moneytracker.deploy.controller_run) lookup).
    type: int
  play:
    description:
      - Which play or procedure holds the lock (shown in every "held by" message).
    type: str
    default: ansible
  ttl:
    description:
      - Seconds until the lock counts as stale. Default is the tool's C(lock_ttl_seconds) (3600).
    type: int
  wait:
    description:
      - With I(state=acquired), poll up to this many seconds while the lock is held by someone else.
    type: float
    default: 0
  reason:
    description:
      - Free text recorded with the lock (I(state=acquired)) or logged with the break
        (I(state=broken)).
    type: str
  token:
    description:
      - The token returned by I(state=acquired). Required with I(state=released).
      - Never logged or shown (C(no_log)).
    type: str
  id:
    description:
      - With I(state=broken), the id of the lock to break, as the C(id) in RV(lock) of I(state=status)
        showed it. A lock with any other id is not broken.
    type: str
  force:
    description:
      - Must be V(true) with I(state=broken), since that is the only forced release.
    type: bool
    default: false
extends_documentation_fragment:
  - moneytracker.deploy.moneytracker_db
attributes:
  check_mode:
    support: full
    description:
      - Reads the lock with C(lock status) and reports what the action would do; nothing changes
        and no token is created. A release compares the id of O(token) with the holder's.
  diff_mode:
    support: none
    description: No diff.
notes:
  - The token is returned in RV(token) so the play can pass it on. B(Register the acquiring task
    with C(no_log) set to V(true)) (or keep it out of verbose output in another way), since Ansible prints
    registered results with C(-v). The module never writes the token to any log, and options that
    take a token are C(no_log), so a token passed back in is masked in every result.
  - The token travels to the tool on its command line, which other local users of the managed
    host can read in the process list while the short tool process runs.
  - Requires the C(moneytracker-db) tool on the managed host (the C(moneytracker_db) role
    installs it); Python 3.11 or later there.
seealso:
  - name: The moneytracker-db host tool
    description: Commands, exit codes and the maintenance lock protocol (docs/host-tool.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/host-tool.md
  - name: The moneytracker_db modules
    description: How the modules map to the tool's commands (docs/modules.md).
    link: https://example.invalid/moneytracker/deploy/blob/main/docs/modules.md
  - module: moneytracker.deploy.moneytracker_db_backup
  - module: moneytracker.deploy.moneytracker_db_restore
  - module: moneytracker.deploy.moneytracker_db_info
'''

EXAMPLES = r'''
- name: Take the maintenance lock for this play
  moneytracker.deploy.moneytracker_db_lock:
    state: acquired
    owner: migration
    host: "{{ lookup('ansible.builtin.pipe', 'hostname') }}"
    play: migrate.yml
    user: "{{ lookup('ansible.builtin.env', 'USER') }}"
    controller_pid: "{{ lookup('moneytracker.deploy.controller_run').pid }}"
    ttl: 3600
    reason: "schema {{ target_schema }}"
  register: maintenance_lock
  no_log: true   # the result holds the token

- name: Back up under the lock
  moneytracker.deploy.moneytracker_db_backup:
    label: pre-migration
    lock_token: "{{ maintenance_lock.token }}"

- name: Release the lock
  moneytracker.deploy.moneytracker_db_lock:
    state: released
    token: "{{ maintenance_lock.token }}"

- name: Show who holds the lock
  moneytracker.deploy.moneytracker_db_lock:
    state: status
  register: lock_status

- name: Break the lock an operator looked at (its run is gone)
  moneytracker.deploy.moneytracker_db_lock:
    state: broken
    id: "{{ lock_status.lock.id }}"
    force: true
    reason: migration host died
  when: lock_status.state == 'stale'
'''

RETURN = r'''
state:
  description:
    - The lock's state after the task (V(free), V(held) or V(stale)). After a successful
      I(state=acquired) it is V(held) (by this task); after I(state=released) or I(state=broken) V(free).
    - When acquiring fails, the state that made it fail (V(held) or V(stale)).
  returned: always
  type: str
  sample: held
token:
  description:
    - The lock's secret token (I(state=acquired) only). Pass it as O(token) to release, and as
      C(lock_token) to the backup, restore and check modules. Register the task with C(no_log).
  returned: success and state=acquired and not check mode
  type: str
  sample: 0f3c9a2b7d1e4c5a8b6f0e2d1c3b4a59
id:
  description: The lock's non-secret id (the first 12 hex characters of sha256(token)).
  returned: when a lock is held, stale, or was broken or released
  type: str
  sample: 4be0c5b3a1f2
lock:
  description:
    - The lock record without its token (the holder's when acquiring failed; C(null) when free).
  returned: always
  type: dict
  sample:
    id: 4be0c5b3a1f2
    owner: migration
    host: ctl
    play: migrate.yml
    user: alice
    controller_pid: 4242
    reason: schema b2
    since: "2026-05-01T02:00:03Z"
    expires_at: "2026-05-01T03:00:03Z"
    ttl_seconds: 3600
    pid: 812
was:
  description: With I(state=broken) or I(state=released), the record of the lock that was removed.
  returned: when a lock was broken or released
  type: dict
was_state:
  description: With I(state=broken), whether the lock broken was V(held) or V(stale).
  returned: when a lock was broken
  type: str
  sample: stale
clear_with:
  description: For a stale lock, how to clear it (the tool's hint).
  returned: when the lock is stale
  type: str
msg:
  description: The tool's message (on failure the tool's error, naming the holder).
  returned: always
  type: str
  sample: "maintenance lock held by migration@ctl (migrate.yml) since 2026-05-01T02:00:03Z, user alice"
rc:
  description: Exit code of the last tool command (0 ok, 1 failed, 2 usage, 3 held, 4 stale).
  returned: always
  type: int
cmd:
  description: The last tool command, tokens shown as C(********).
  returned: always
  type: str
  sample: /usr/local/sbin/moneytracker-db lock release --token ******** --json
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.moneytracker.deploy.plugins.module_utils.moneytracker_db import (
    MoneytrackerDbClient,
    Secret,
    common_argument_spec,
    token_id,
)


def read_status(client):
    """(tool result, state free|held|stale, public record or None)."""
    result = client.run('lock', 'status')
    if result.outcome not in ('ok', 'locked', 'stale'):
        client.fail(result)
    return result, result.data.get('state') or 'free', result.data.get('lock')


def status_result(result, state, record):
    out = dict(changed=False, state=state, lock=record, rc=result.rc, cmd=result.cmd,
               msg=holder_message(record or {}, state) if state != 'free' else 'maintenance lock: free')
    if record and record.get('id'):
        out['id'] = record['id']
    if result.data.get('clear_with'):
        out['clear_with'] = result.data['clear_with']
    return out


def holder_text(record):
    text = '{0}@{1} ({2}) since {3}'.format(record.get('owner', '?'), record.get('host', '?'),
                                            record.get('play', '?'), record.get('since', '?'))
    if record.get('user'):
        text += ', user {0}'.format(record['user'])
    if record.get('controller_pid') not in (None, ''):
        text += ', controller pid {0}'.format(record['controller_pid'])
    return text


def holder_message(record, state):
    if state == 'stale':
        return 'maintenance lock is STALE: held by {0}, expired {1} (lock id {2}); it is never taken over ' \
               'automatically'.format(holder_text(record), record.get('expires_at', '?'), record.get('id'))
    return 'maintenance lock held by {0}; expires {1} (lock id {2})'.format(
        holder_text(record), record.get('expires_at', '?'), record.get('id'))


def acquire(module, client):
    p = module.params
    if module.check_mode:
        result, state, record = read_status(client)
        if state != 'free':
            module.fail_json(msg=holder_message(record, state), state=state, lock=record, rc=result.rc,
                             cmd=result.cmd, id=record.get('id'))
        module.exit_json(failed=False, changed=True, state='held', lock=None, rc=result.rc, cmd=result.cmd,
                         msg='check mode: the lock is free and would be acquired by {0}'.format(p['owner']))
    args = ['lock', 'acquire', '--owner', p['owner'], '--play', p['play'], '--wait', str(p['wait'])]
    for option, flag in (('host', '--host'), ('user', '--user'), ('reason', '--reason'),
                         ('ttl', '--ttl'), ('controller_pid', '--controller-pid')):
        if p[option] is not None:
            args += [flag, str(p[option])]
    result = client.run(*args)
    if not result.ok:
        client.fail(result, state=result.data.get('state') or result.outcome)
    record = result.data.get('lock') or {}
    token = result.data.get('token')
    if not token:
        client.fail(result, msg='moneytracker-db lock acquire printed no token')
    module.exit_json(failed=False, changed=True, state='held', token=token, id=record.get('id'), lock=record, rc=result.rc,
                     cmd=result.cmd, msg=result.message)


def release(module, client):
    token = module.params['token']
    if module.check_mode:
        result, state, record = read_status(client)
        if state == 'free':
            module.exit_json(failed=False, changed=False, state='free', lock=None, rc=result.rc, cmd=result.cmd,
                             msg='check mode: the lock is already free')
        if record.get('id') != token_id(token):
            module.fail_json(msg='not released: {0}, and the token given is not its token'.format(
                holder_message(record, state)), state=state, lock=record, id=record.get('id'), rc=result.rc,
                cmd=result.cmd)
        module.exit_json(failed=False, changed=True, state='free', was=record, id=record.get('id'), lock=None, rc=result.rc,
                         cmd=result.cmd, msg='check mode: the lock would be released')
    before, state, record = read_status(client)
    result = client.run('lock', 'release', '--token', Secret(token))
    if not result.ok:
        client.fail(result, state=state, lock=result.data.get('lock', record))
    released = result.data.get('state') == 'released'
    out = dict(changed=released, state='free', lock=None, rc=result.rc, cmd=result.cmd, msg=result.message)
    if released and record and record.get('id') == token_id(token):
        out.update(was=record, id=record.get('id'))
    module.exit_json(failed=False, **out)


def break_lock(module, client):
    p = module.params
    if not p['force']:
        module.fail_json(msg='state=broken needs force=true: it is the only forced release '
                             '(prefer state=released with the token)')
    if module.check_mode:
        result, state, record = read_status(client)
        if state == 'free':
            module.exit_json(failed=False, changed=False, state='free', lock=None, rc=result.rc, cmd=result.cmd,
                             msg='check mode: the lock is already free')
        if record.get('id') != p['id']:
            module.fail_json(msg='not broken: the lock changed since it was shown: now {0} (the lock shown had '
                                 'id {1})'.format(holder_message(record, state), p['id']),
                             state=state, lock=record, id=record.get('id'), rc=result.rc, cmd=result.cmd)
        module.exit_json(failed=False, changed=True, state='free', was=record, was_state=state, id=record.get('id'), lock=None,
                         rc=result.rc, cmd=result.cmd, msg='check mode: the {0} lock would be broken'.format(state))
    args = ['lock', 'break', '--force', '--id', p['id']]
    if p['reason']:
        args += ['--reason', p['reason']]
    result = client.run(*args)
    if not result.ok:
        client.fail(result, state=result.data.get('state') or result.outcome)
    broken = result.data.get('state') == 'broken'
    out = dict(changed=broken, state='free', lock=None, rc=result.rc, cmd=result.cmd, msg=result.message)
    if broken:
        was = result.data.get('was') or {}
        out.update(was=was, was_state=result.data.get('was_state'), id=was.get('id'))
    module.exit_json(failed=False, **out)


def main():
    module = AnsibleModule(
        argument_spec=common_argument_spec(
            state=dict(type='str', required=True, choices=['acquired', 'released', 'status', 'broken']),
            owner=dict(type='str'),
            host=dict(type='str'),
            user=dict(type='str'),
            controller_pid=dict(type='int'),
            play=dict(type='str', default='ansible'),
            ttl=dict(type='int'),
            wait=dict(type='float', default=0),
            reason=dict(type='str'),
            token=dict(type='str', no_log=True),
            id=dict(type='str'),
            force=dict(type='bool', default=False),
        ),
        required_if=[
            ('state', 'acquired', ['owner']),
            ('state', 'released', ['token']),
            ('state', 'broken', ['id']),
        ],
        supports_check_mode=True,
    )
    client = MoneytrackerDbClient(module)
    state = module.params['state']
    if state == 'acquired':
        acquire(module, client)
    elif state == 'released':
        release(module, client)
    elif state == 'broken':
        break_lock(module, client)
    result, lock_state, record = read_status(client)
    module.exit_json(failed=False, **status_result(result, lock_state, record))


if __name__ == '__main__':
    main()
