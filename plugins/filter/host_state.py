# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""paths_differing: which of the paths a role manages are not as its tasks would leave them.

The roles read the host once (a probe or moneytracker_stack_info: per path null, or dir, mode,
uid, gid, mtime and maybe sha1) and run a task only where the path differs from what the task
would leave. With one list of those differences, known before the tasks, a role includes its
tasks only when something differs: a deploy with nothing to change spends one skipped include
on them instead of one skipped task each (issue 10), and each task inside still runs only for
its own path.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _wanted_items(wanted):
    """{path: {key: value}} or [{path, key: value, ...}] (a link's target as src, as
    ansible.builtin.file takes it; the state read reports it as link) -> [(path, {key: value})]."""
    if isinstance(wanted, dict):
        return list(wanted.items())
    if not isinstance(wanted, list) or not all(isinstance(w, dict) and "path" in w for w in wanted):
        raise AnsibleFilterError("paths_differing: wanted must be {path: {...}} or a list of {path, ...}")
    return [(w["path"], dict(("link" if k == "src" else k, v) for k, v in w.items() if k != "path"))
            for w in wanted]


def paths_differing(state, wanted):
    """state: {path: null | {dir, mode, uid, gid, link, ...}}; wanted: {path: {key: value, ...}}
    or a list of {path, key: value, ...}. The paths (sorted, once each) that are missing from
    state, null there, or differ in a wanted key."""
    if not isinstance(state, dict):
        raise AnsibleFilterError("paths_differing: expects the state read's paths (a dict) as input")
    differing = []
    for path, want in _wanted_items(wanted):
        found = state.get(path)
        if not isinstance(found, dict) or any(found.get(key) != value for key, value in (want or {}).items()):
            differing.append(path)
    return sorted(set(differing))


class FilterModule:
    def filters(self):
        return {"paths_differing": paths_differing}
