"""scripts/role-docs.py: the role READMEs' variable tables come from meta/argument_specs.yml."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("role_docs", ROOT / "scripts" / "role-docs.py")
role_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(role_docs)


def test_table_renders_required_choices_markup_and_escapes_pipes():
    out = role_docs.table({"options": {
        "x_secret": {"type": "str", "required": True, "no_log": True, "description": "The C(key)."},
        "x_mode": {"type": "str", "choices": ["a", "b"], "default": "a", "description": ["One.", "Two | three."]},
        "x_list": {"type": "list", "elements": "str", "default": [], "description": "See U(https://example.org)."},
    }})
    lines = out.splitlines()
    assert lines[2] == "| `x_secret` | str | **required** | The `key`. (never logged) |"
    assert lines[3] == "| `x_mode` | str (`a`, `b`) | `a` | One. Two \\| three. |"
    assert lines[4] == "| `x_list` | list of str | `[]` | See <https://example.org>. |"


def test_every_role_readme_is_up_to_date():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "role-docs.py"), "--check"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
