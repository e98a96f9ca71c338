"""The filter plugins as installed (ANSIBLE_COLLECTIONS_PATH, else .build/collections), imported
through Ansible's collection loader as ansible-playbook imports them."""
import importlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build/collections")).split(":")[0]


def _installed_filter(name):
    """plugins/filter/<name>.py of the installed collection (asserted not this checkout's copy)."""
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    finder = _AnsibleCollectionFinder(paths=[COLLECTIONS])
    finder._install()  # pylint: disable=protected-access
    module = importlib.import_module(f"ansible_collections.moneytracker.deploy.plugins.filter.{name}")
    assert Path(module.__file__).is_relative_to(COLLECTIONS), module.__file__
    return module


@pytest.fixture(scope="session")
def installed_filter():
    """installed_filter(name) -> the module plugins/filter/<name>.py as installed."""
    return _installed_filter
