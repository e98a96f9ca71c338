"""The swarm scenario's hosts by role: the manager (mt-swarm-1: the swarm's first manager, PostgreSQL,
the edge's host port the clients use) and the workers. The tests take these fixtures, not
testinfra's `host` (which would run each test once per host)."""
import os

import pytest
import testinfra


def _host(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


@pytest.fixture(scope="session")
def manager():
    return _host("mt-swarm-1")


@pytest.fixture(scope="session")
def workers():
    return [_host("mt-swarm-2"), _host("mt-swarm-3")]
