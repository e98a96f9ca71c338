"""`ansible-doc moneytracker.deploy.<module>` shows complete docs for every module: its YAML parses
(a `key: value` slip in a description makes ansible-doc fail), with a description for every option
and return value, and examples."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_shows_complete_docs(module, collections_tree):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_tree))
    proc = subprocess.run(["ansible-doc", "--json", f"moneytracker.deploy.{module}"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)[f"moneytracker.deploy.{module}"]
    assert doc["doc"]["short_description"] and doc["doc"]["description"]
    for name, option in doc["doc"]["options"].items():
        assert option.get("description"), f"{module}: option {name} has no description"
    assert doc["examples"].strip(), f"{module}: no examples"
    for name, value in (doc["return"] or {}).items():
        assert value.get("description"), f"{module}: return value {name} has no description"
