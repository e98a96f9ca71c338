# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Filters that size the app's containers.

mem_bytes        "512m" -> 536870912, with Docker's rules for memory sizes (b, k, m, g; no
                 fractions); anything else raises a clear error naming the value.
web_concurrency  gunicorn/uvicorn workers that fit a memory limit and a CPU share.
postgres_sizing  PostgreSQL's memory settings and max_connections for a container memory limit,
                 and whether they hold the connections the backend needs.
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


def postgres_sizing(mem_limit, connections_needed=0, per_connection_mb=6, reserve_mb=48, max_connections_cap=400):
    """PostgreSQL's settings for a container memory limit of M MiB (all in MiB):

    shared_buffers       = floor(M / 4)                  (the documented starting point: 25 %)
    maintenance_work_mem = clamp(floor(M / 16), 8, 256)  (vacuum, index builds: one at a time)
    work_mem             = 4                             (PostgreSQL's default, per sort/hash)
    effective_cache_size = floor(M / 2)                  (a planner hint: the cgroup counts page cache)
    max_connections      = min(floor((M - shared_buffers - maintenance_work_mem - reserve_mb)
                                     / per_connection_mb), max_connections_cap)

    per_connection_mb is one idle-to-busy backend process (its private memory and one work_mem);
    reserve_mb the postmaster, checkpointer, WAL writer, autovacuum launcher and headroom.
    `fits` says whether max_connections holds connections_needed; `min_mem_mb` is the smallest
    limit that would (what the preflight tells the operator to set).
    """
    limit_mb = mem_bytes(mem_limit, "mem_limit") // 1024 ** 2
    try:
        needed = int(connections_needed)
        per_connection = float(per_connection_mb)
        reserve = float(reserve_mb)
        cap = int(max_connections_cap)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"postgres_sizing: connections_needed, per_connection_mb, reserve_mb and "
                                 f"max_connections_cap must be numbers ({exc})")
    if per_connection <= 0 or reserve < 0 or needed < 0 or cap < 1:
        raise AnsibleFilterError("postgres_sizing: per_connection_mb must be > 0, reserve_mb and "
                                 "connections_needed >= 0, max_connections_cap >= 1")
    shared_buffers = limit_mb // 4
    maintenance = min(max(limit_mb // 16, 8), 256)
    by_memory = math.floor((limit_mb - shared_buffers - maintenance - reserve) / per_connection)
    max_connections = max(0, min(by_memory, cap))
    # Smallest M with floor((M - M/4 - max(8, M/16) - reserve) / per_connection) >= needed (and at
    # least 16 MiB of shared buffers), found by walking up in MiB from the closed-form estimate.
    min_mem = max(64, math.ceil((max(needed, 1) * per_connection + reserve) / (1 - 0.25 - 1 / 16)) - 16)
    while math.floor((min_mem - min_mem // 4 - min(max(min_mem // 16, 8), 256) - reserve) / per_connection) < needed:
        min_mem += 1
    return {
        "memory_mb": limit_mb,
        "shared_buffers_mb": shared_buffers,
        "maintenance_work_mem_mb": maintenance,
        "work_mem_mb": 4,
        "effective_cache_size_mb": limit_mb // 2,
        "max_connections": max_connections,
        "connections_needed": needed,
        "fits": shared_buffers >= 16 and max_connections >= max(needed, 1),
        "min_mem_mb": max(min_mem, 64),
    }


class FilterModule:
    def filters(self):
        return {"mem_bytes": mem_bytes, "web_concurrency": web_concurrency, "postgres_sizing": postgres_sizing}
