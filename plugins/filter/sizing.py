# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Filters that size the app's containers.

mem_bytes        "512m" -> 536870912, with Docker's rules for memory sizes (b, k, m, g; no
                 fractions); anything else raises a clear error naming the value.
web_concurrency  gunicorn/uvicorn workers that fit a memory limit and a CPU share.
"""

from __future__ import annotations

import math
import re

from ansible.errors import AnsibleFilterError

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
_MEM_RE = re.compile(r"^\s*([0-9]+)\s*([bkmg]?)\s*$", re.IGNORECASE)
# Docker refuses a container memory limit below 6 MiB.
DOCKER_MIN_MEMORY = 6 * 1024 ** 2


def parse_mem(value):
    """Bytes for a Docker memory size; None when the value is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    match = _MEM_RE.match(str(value))
    if not match:
        return None
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def mem_bytes(value, name="memory size"):
    parsed = parse_mem(value)
    if parsed is None:
        raise AnsibleFilterError(
            f"{name}: '{value}' is not a memory size; use a whole number with b, k, m or g (e.g. 512m)")
    return parsed


def web_concurrency(mem_limit, cpus, per_worker_mb=80, reserve_mb=64, max_workers=None):
    """Workers for a backend container: as many as the memory limit holds, at most 2 x CPUs + 1.

    workers = clamp(floor((mem_limit - reserve) / per_worker), 1, 2 * ceil(cpus) + 1)

    reserve_mb covers the process manager (gunicorn master, measured ~19 MiB idle) and headroom;
    per_worker_mb is one worker's resident memory under load (measured ~39 MiB idle for the
    reference app, so 80 leaves room for request-time growth). The CPU cap is gunicorn's
    documented (2 x cores) + 1, with a fractional CPU share rounded up.
    """
    limit = mem_bytes(mem_limit, "mem_limit")
    try:
        cpus = float(cpus)
        per_worker = float(per_worker_mb)
        reserve = float(reserve_mb)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"web_concurrency: cpus, per_worker_mb and reserve_mb must be numbers ({exc})")
    if cpus <= 0:
        raise AnsibleFilterError(f"web_concurrency: cpus must be > 0, got {cpus}")
    if per_worker <= 0 or reserve < 0:
        raise AnsibleFilterError("web_concurrency: per_worker_mb must be > 0 and reserve_mb >= 0")
    by_memory = math.floor((limit / 1024 ** 2 - reserve) / per_worker)
    by_cpu = 2 * math.ceil(cpus) + 1
    workers = max(1, min(by_memory, by_cpu))
    if max_workers:
        workers = min(workers, int(max_workers))
    return workers


class FilterModule:
    def filters(self):
        return {"mem_bytes": mem_bytes, "web_concurrency": web_concurrency}
