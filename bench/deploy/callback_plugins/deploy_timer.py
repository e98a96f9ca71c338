"""bench/deploy's timing callback (not part of the collection): one JSON line per task result.

Enable with ANSIBLE_CALLBACK_PLUGINS=bench/deploy/callback_plugins ANSIBLE_CALLBACKS_ENABLED=deploy_timer
and DEPLOY_TIMER_OUT=<file>. Each line: the task's name, role, file:line, action, status (ok,
changed, skipped, failed, unreachable; includes as 'include'), start and end on the controller's
clock (time.time()), and, per task, the gap since the previous task ended (templating, includes,
strategy overhead). A last line {"stats": ...} holds the recap.
"""
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: deploy_timer
type: aggregate
short_description: per-task wall times as JSON lines (bench/deploy)
description: Writes one JSON line per task result to $DEPLOY_TIMER_OUT.
requirements: [enable in the callbacks_enabled setting]
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "deploy_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._out = open(os.environ.get("DEPLOY_TIMER_OUT", "/dev/null"), "a", encoding="utf-8")
        self._task = None
        self._start = None
        self._last_end = time.time()
        self._play = ""

    def _write(self, rec: dict) -> None:
        self._out.write(json.dumps(rec) + "\n")
        self._out.flush()

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()
        self._write({"play": self._play, "t": time.time()})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task = task
        self._start = time.time()

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _result(self, result, status: str) -> None:
        task = result._task
        end = time.time()
        action = task.action
        if status == "ok" and result._result.get("changed"):
            status = "changed"
        role = task._role.get_name() if task._role else ""
        self._write({
            "name": task.get_name(), "role": role, "path": task.get_path() or "", "action": action,
            "status": status, "start": self._start, "end": end,
            "gap": max(0.0, (self._start or end) - self._last_end), "play": self._play,
            "item": "_ansible_item_label" in result._result or "item" in result._result,
            "delta": result._result.get("delta"),
        })
        self._last_end = end

    def v2_runner_on_ok(self, result):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_include(self, included_file):
        self._write({"include": included_file._filename, "t": time.time()})

    def v2_playbook_on_stats(self, stats):
        self._write({"stats": {h: stats.summarize(h) for h in stats.processed}, "t": time.time()})
        self._out.close()
