"""The sizing filters (plugins/filter/sizing.py) and the docker_mem_size test plugin,
imported from the collection as installed (make setup) through Ansible's collection loader."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build/collections")).split(":")[0]


@pytest.fixture(scope="module")
def sizing():
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    finder = _AnsibleCollectionFinder(paths=[COLLECTIONS])
    finder._install()  # pylint: disable=protected-access
    from ansible_collections.moneytracker.deploy.plugins.filter import sizing as mod
    from ansible_collections.moneytracker.deploy.plugins.test import docker_mem_size as test_mod

    assert Path(mod.__file__).is_relative_to(COLLECTIONS), mod.__file__
    return mod, test_mod


@pytest.mark.parametrize(
    ("value", "expected"),
    [("512m", 512 * 2**20), ("1g", 2**30), ("64k", 65536), ("100b", 100), ("100", 100),
     (268435456, 268435456), ("2G", 2 * 2**30), (" 512m ", 512 * 2**20)],
)
def test_mem_bytes(sizing, value, expected):
    mod, test_mod = sizing
    assert mod.mem_bytes(value) == expected
    assert test_mod.docker_mem_size(value) is True


@pytest.mark.parametrize("value", ["512x", "10 megs", "1.5g", "-1m", "", "m", True, None, "512mb"])
def test_mem_bytes_rejects(sizing, value):
    from ansible.errors import AnsibleFilterError

    mod, test_mod = sizing
    assert test_mod.docker_mem_size(value) is False
    with pytest.raises(AnsibleFilterError, match="app_backend_mem_limit: '.*' is not a memory size"):
        mod.mem_bytes(value, "app_backend_mem_limit")


# (mem_limit, cpus, per_worker_mb, reserve_mb) -> workers, worked out by hand from the formula
#   clamp(floor((mem - reserve) / per_worker), 1, 2 * ceil(cpus) + 1)
WORKERS = [
    ("512m", 1, 80, 64, 3),     # memory allows 5, one CPU caps at 3
    ("512m", 4, 80, 64, 5),     # (512 - 64) / 80 = 5.6 -> 5; CPUs allow 9
    ("256m", 2, 80, 64, 2),     # (256 - 64) / 80 = 2.4 -> 2
    ("128m", 2, 80, 64, 1),     # 0.8 -> at least 1
    ("64m", 1, 80, 64, 1),      # nothing left: still 1
    ("2g", 0.5, 80, 64, 3),     # half a CPU rounds up to 1 -> cap 3
    ("2g", 2, 80, 64, 5),       # cap 2*2+1
    ("1g", 8, 100, 24, 10),     # (1024 - 24) / 100 = 10
]


@pytest.mark.parametrize(("mem", "cpus", "per", "reserve", "expected"), WORKERS)
def test_web_concurrency(sizing, mem, cpus, per, reserve, expected):
    mod, _ = sizing
    assert mod.web_concurrency(mem, cpus, per, reserve) == expected


def test_web_concurrency_never_a_fixed_four(sizing):
    mod, _ = sizing
    results = {mod.web_concurrency(m, c) for m in ("128m", "256m", "512m", "1g", "4g") for c in (0.5, 1, 2, 4)}
    assert len(results) > 2 and min(results) == 1


def test_web_concurrency_max_workers(sizing):
    mod, _ = sizing
    assert mod.web_concurrency("4g", 8, max_workers=4) == 4


@pytest.mark.parametrize(("mem", "cpus"), [("512x", 1), ("512m", 0), ("512m", -1), ("512m", "lots")])
def test_web_concurrency_rejects(sizing, mem, cpus):
    from ansible.errors import AnsibleFilterError

    mod, _ = sizing
    with pytest.raises(AnsibleFilterError):
        mod.web_concurrency(mem, cpus)


# (mem_limit, connections_needed) -> (shared_buffers, maintenance_work_mem, max_connections, fits),
# worked out by hand from the formulas (per connection 6 MiB, reserve 48 MiB):
#   512: 128, 32, floor((512 - 128 - 32 - 48) / 6) = floor(304 / 6) = 50
#   256: 64, 16, floor((256 - 64 - 16 - 48) / 6) = floor(128 / 6) = 21
#   4096: 1024, 256, floor((4096 - 1024 - 256 - 48) / 6) = 461 -> capped at 400
#   64: 16, 8, floor((64 - 16 - 8 - 48) / 6) = -2 -> 0
POSTGRES = [
    ("512m", 40, 128, 32, 50, True),
    ("256m", 40, 64, 16, 21, False),
    ("256m", 21, 64, 16, 21, True),
    ("4g", 40, 1024, 256, 400, True),
    ("64m", 1, 16, 8, 0, False),
]


@pytest.mark.parametrize(("mem", "needed", "shared", "maint", "conns", "fits"), POSTGRES)
def test_postgres_sizing(sizing, mem, needed, shared, maint, conns, fits):
    mod, _ = sizing
    got = mod.postgres_sizing(mem, needed)
    assert (got["shared_buffers_mb"], got["maintenance_work_mem_mb"], got["max_connections"], got["fits"]) == (
        shared, maint, conns, fits)
    assert got["work_mem_mb"] == 4 and got["effective_cache_size_mb"] == got["memory_mb"] // 2


@pytest.mark.parametrize("needed", [1, 10, 21, 40, 41, 70, 150, 400])
def test_postgres_sizing_min_mem_is_the_smallest_that_fits(sizing, needed):
    mod, _ = sizing
    smallest = mod.postgres_sizing("1g", needed)["min_mem_mb"]
    assert mod.postgres_sizing(f"{smallest}m", needed)["fits"]
    assert smallest == 64 or not mod.postgres_sizing(f"{smallest - 1}m", needed)["fits"]


@pytest.mark.parametrize(("mem", "needed"), [("512x", 1), ("512m", -1), ("512m", "many")])
def test_postgres_sizing_rejects(sizing, mem, needed):
    from ansible.errors import AnsibleFilterError

    mod, _ = sizing
    with pytest.raises(AnsibleFilterError):
        mod.postgres_sizing(mem, needed)
