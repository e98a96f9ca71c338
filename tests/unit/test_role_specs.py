"""Every role's meta/argument_specs.yml agrees with its defaults/main.yml.

For each role: every public default (no leading underscore) is documented in the `main` entry
point with a type and a description, the spec's default equals the default's value, every
option without a default is marked required, the role's variables carry the role's name as
prefix, and every other entry point documents the same options as `main`.
"""
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p.parent.parent for p in ROOT.glob("roles/*/meta/argument_specs.yml"))
# Prefix per role where the role name is not the prefix itself.
PREFIX = {"moneytracker_db": "moneytracker_db_"}


def _load(path):
    return yaml.safe_load(path.read_text()) if path.exists() else None


def test_every_role_has_argument_specs():
    roles = sorted(p.parent for p in ROOT.glob("roles/*/tasks"))
    assert roles, "no roles found"
    missing = [r.name for r in roles if not (r / "meta/argument_specs.yml").exists()]
    assert missing == []


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_and_spec_agree(role):
    specs = _load(role / "meta/argument_specs.yml")["argument_specs"]
    options = specs["main"]["options"]
    defaults = _load(role / "defaults/main.yml") or {}
    public = {k: v for k, v in defaults.items() if not k.startswith("_")}
    prefix = PREFIX.get(role.name, role.name + "_")

    undocumented = sorted(set(public) - set(options))
    assert undocumented == [], f"defaults without a spec entry: {undocumented}"
    for name, opt in options.items():
        assert name.startswith(prefix), f"{name} does not carry the prefix {prefix}"
        assert opt.get("type"), f"{name} has no type"
        assert opt.get("description"), f"{name} has no description"
        if name in public:
            assert "default" in opt, f"{name} has a default in defaults/main.yml but none in the spec"
            assert opt["default"] == public[name], (
                f"{name}: spec default {opt['default']!r} != defaults/main.yml {public[name]!r}")
        else:
            assert opt.get("required") is True, f"{name} has no default and is not required"
            assert "default" not in opt, f"{name} has a spec default but none in defaults/main.yml"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_entry_points_share_the_options(role):
    specs = _load(role / "meta/argument_specs.yml")["argument_specs"]
    main = specs["main"]["options"]
    for entry, spec in specs.items():
        assert set(spec.get("options", {})) <= set(main), entry
