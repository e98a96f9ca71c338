# Copyright: MoneyTracker operators
# Apache License 2.0 (see galaxy.yml)
"""Test: is the value a Docker memory size ("512m", "1g", 268435456)?"""

from __future__ import annotations

from ansible_collections.moneytracker.deploy.plugins.filter.sizing import parse_mem


def docker_mem_size(value):
    return parse_mem(value) is not None


class TestModule:
    def tests(self):
        return {"docker_mem_size": docker_mem_size}
