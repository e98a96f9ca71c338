"""The test moneytracker.deploy.pinned_image (plugins/test/image_ref.py): the one pinned-reference
rule of every role that ships images. Imported from the collection as installed
(ANSIBLE_COLLECTIONS_PATH, else .build/collections), like tests/unit/plugins/filter."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build/collections")).split(":")[0]
HEX = "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def mod():
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    finder = _AnsibleCollectionFinder(paths=[COLLECTIONS])
    finder._install()  # pylint: disable=protected-access
    from ansible_collections.moneytracker.deploy.plugins.test import image_ref

    return image_ref


@pytest.mark.parametrize("ref", [
    "moneytracker/backend:2.0.0",
    "moneytracker/backend:2.1.0-broken",
    "ghcr.io/google/cadvisor:v0.55.1",
    "quay.io/prometheus/node-exporter:v1.9.1",
    "localhost:5000/team/app:1",
    "Registry.Example.com:443/a/b_c__d.e-f:Tag_1.x",
    "debian:trixie",
    "moneytracker-test/cadvisor-standin:1.0",
    f"moneytracker/backend@sha256:{HEX}",
    f"registry.example:5000/app@sha256:{HEX}",
    "a:" + "t" * 128,
])
def test_pinned(mod, ref):
    assert mod.pinned_image(ref) is True


@pytest.mark.parametrize("ref", [
    "moneytracker/backend",                 # implicit :latest
    "moneytracker/backend:latest",
    "ghcr.io/google/cadvisor:latest",
    f"moneytracker/backend:2.0.0@sha256:{HEX}",  # tag and digest: which one is pinned?
    f"moneytracker/backend@sha256:{HEX[:-1]}",   # short digest
    f"moneytracker/backend@sha256:{HEX.upper()}",
    f"moneytracker/backend@sha512:{HEX}{HEX}",
    "moneytracker/Backend:1",               # upper case in the path (a registry host may have it)
    "moneytracker//backend:1",
    "moneytracker/backend:",
    "moneytracker/backend:-1",              # a tag starts with a word character
    "a:" + "t" * 129,
    "moneytracker/backend:1 ",
    " moneytracker/backend:1",
    "moneytracker/backend:1\nimage: evil",
    "-moneytracker/backend:1",
    "moneytracker/backend-:1",
    "",
    None,
    42,
    ["moneytracker/backend:1"],
])
def test_not_pinned(mod, ref):
    assert mod.pinned_image(ref) is False


def test_registered_as_pinned_image(mod):
    assert mod.TestModule().tests() == {"pinned_image": mod.pinned_image}
