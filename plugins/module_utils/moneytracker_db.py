# -*- coding: utf-8 -*-
# Copyright (c) 2026, MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
# SPDX-License-Identifier: Apache-2.0
"""The one client of the moneytracker-db host tool, shared by the moneytracker_db_* modules.

The modules never reimplement what the tool does: they run it (``module.run_command``, an argv
list, never a shell), always with ``--json``, parse the one JSON object it prints and turn its exit
code into a structured outcome. The tool itself stays a stdlib-only CLI on the host (cron and the
runbooks keep calling it); see docs/host-tool.md for its commands and docs/modules.md for the
modules.

Tokens of the maintenance lock are secrets: they are passed to the tool wrapped in ``Secret`` so
that the command shown in results (``cmd``) carries ``********`` instead, and the options that
take them are declared ``no_log=True`` so Ansible masks them in everything the module returns.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import json
import os

from ansible.module_utils.common.text.converters import to_native, to_text

DEFAULT_TOOL = '/usr/local/sbin/moneytracker-db'

# The tool's exit codes (docs/host-tool.md, "Exit codes").
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_STALE = 4
EXIT_SKIPPED = 75

OUTCOMES = {
    EXIT_OK: 'ok',
    EXIT_FAILED: 'failed',
    EXIT_USAGE: 'usage',
    EXIT_LOCKED: 'locked',
    EXIT_STALE: 'stale',
    EXIT_SKIPPED: 'skipped',
}

MASK = '********'

# Keys of the tool's JSON that are not passed on as module return values: the envelope (the
# module sets its own ``failed``/``changed``/``msg``), and ``skipped``, which Ansible would read as
# "task skipped" (the modules return ``skipped`` themselves where that is meant).
ENVELOPE_KEYS = frozenset(['ok', 'command', 'exit_code', 'error', 'skipped', 'changed', 'failed', 'msg',
                           'invocation', 'warnings', 'deprecations', 'exception', 'rc', 'cmd', 'stdout',
                           'stderr', 'stdout_lines', 'stderr_lines'])


def common_argument_spec(**extra):
    """The options every moneytracker_db_* module has (``tool``, ``config``), plus ``extra``."""
    spec = dict(
        tool=dict(type='path', default=DEFAULT_TOOL),
        config=dict(type='path'),
    )
    spec.update(extra)
    return spec


def token_id(token):
    """The non-secret id of the lock taken with ``token``: the first 12 hex characters of its
    sha256, exactly as the tool computes it (``lock status`` shows it as ``lock.id``)."""
    return hashlib.sha256(to_text(token).encode('utf-8')).hexdigest()[:12]


class Secret(object):
    """An argument that goes to the tool as is but is shown as ``********`` in ``cmd``."""

    __slots__ = ('value',)

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return repr(MASK)

    __str__ = __repr__


class ToolResult(object):
    """One run of the tool: exit code, parsed JSON and how to read them.

    ``outcome`` is one of ``ok``, ``failed``, ``usage``, ``locked``, ``stale``, ``skipped``,
    ``confirmation_required`` (``restore`` without ``--yes``), or ``no_json`` (the tool printed no
    JSON object: not installed properly, crashed before printing, or an older version).
    """

    def __init__(self, argv_shown, rc, stdout, stderr):
        self.cmd = argv_shown
        self.rc = rc
        self.stdout = to_text(stdout or '', errors='surrogate_or_replace')
        self.stderr = to_text(stderr or '', errors='surrogate_or_replace')
        self.parsed = False
        self.data = {}
        text = self.stdout.strip()
        if text:
            try:
                data = json.loads(text)
            except ValueError:
                data = None
            if isinstance(data, dict):
                self.data = data
                self.parsed = True

    @property
    def ok(self):
        return self.parsed and self.rc == EXIT_OK

    @property
    def outcome(self):
        if not self.parsed:
            return 'no_json'
        if self.rc == EXIT_LOCKED and self.data.get('confirmation_required'):
            return 'confirmation_required'
        return OUTCOMES.get(self.rc, 'failed')

    @property
    def skipped_reason(self):
        """The reason the tool gave for a skip (exit 75, or exit 0 with "no database"), else None."""
        reason = self.data.get('skipped')
        if reason:
            return to_text(reason)
        return None

    @property
    def message(self):
        """The tool's own message: its ``error`` (failures), ``skipped`` line, or ``message``."""
        for key in ('error', 'skipped', 'message'):
            if self.data.get(key):
                return to_text(self.data[key])
        if not self.parsed:
            lines = [line for line in self.stderr.splitlines() if line.strip()]
            detail = lines[-1] if lines else (self.stdout.strip()[-500:] or 'no output')
            return 'moneytracker-db printed no JSON (exit {0}): {1}'.format(self.rc, detail)
        return 'moneytracker-db {0} exited {1}'.format(self.data.get('command', '?'), self.rc)

    def details(self, drop=()):
        """The tool's JSON without its envelope keys, ready to be module return values."""
        return dict((k, v) for k, v in self.data.items() if k not in ENVELOPE_KEYS and k not in drop)


class MoneytrackerDbClient(object):
    """Runs ``moneytracker-db`` for one module.

    ``module.params['tool']`` is the tool's path (default ``/usr/local/sbin/moneytracker-db``),
    ``module.params['config']`` an optional config file passed as ``--config``.
    """

    def __init__(self, module, tool=None, config=None):
        self.module = module
        self.tool = tool or module.params.get('tool') or DEFAULT_TOOL
        self.config = config if config is not None else module.params.get('config')
        self.results = []

    def check_tool(self):
        if not os.path.isfile(self.tool) or not os.access(self.tool, os.X_OK):
            self.module.fail_json(
                msg='the host tool {0} is missing or not executable: apply the moneytracker_db role first '
                    '(or set the tool option)'.format(self.tool), rc=None)

    def argv(self, args):
        """(argv for the process, argv as shown in results with every Secret masked)."""
        real, shown = [self.tool], [self.tool]
        args = list(args)
        # The tool's options go before a ``--`` (after it comes a command the tool runs, as given).
        cut = args.index('--') if '--' in args else len(args)
        ours = ['--json'] + (['--config', self.config] if self.config else [])
        for arg in args[:cut] + ours + args[cut:]:
            if isinstance(arg, Secret):
                real.append(to_native(arg.value))
                shown.append(MASK)
            else:
                real.append(to_native(arg))
                shown.append(to_native(arg))
        return real, shown

    def run(self, *args):
        """Run the tool with ``args`` (plus ``--json`` and ``--config``); returns a ToolResult."""
        self.check_tool()
        real, shown = self.argv(args)
        rc, out, err = self.module.run_command(real, check_rc=False, expand_user_and_vars=False)
        result = ToolResult(' '.join(shown), rc, out, err)
        self.results.append(result)
        return result

    def fail(self, result, msg=None, changed=False, drop=(), **extra):
        """fail_json with the tool's own message, its exit code, outcome and JSON details."""
        payload = result.details(drop)
        payload.update(extra)
        self.module.fail_json(msg=msg or result.message, rc=result.rc, outcome=result.outcome, cmd=result.cmd,
                              stderr=result.stderr, changed=changed, **payload)
