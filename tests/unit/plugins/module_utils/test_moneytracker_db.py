"""The shared client (plugins/module_utils/moneytracker_db.py) in-process, with a real
AnsibleModule (args through ansible.module_utils.testing.patch_module_args, fail_json/exit_json
patched to raise, the community collections' pattern) and the real tool: argv and masking, JSON
parsing, exit code -> outcome, the tool's message on failure."""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

ROOT = Path(__file__).resolve().parents[4]
# Loaded from its file: the client only imports ansible.module_utils, and this way the test does
# not depend on how other tests set up the ansible_collections namespace in this process.
_spec = importlib.util.spec_from_file_location(
    "mtdb_module_utils_under_test", ROOT / "plugins" / "module_utils" / "moneytracker_db.py")
mu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mu)


class AnsibleFailJson(Exception):
    pass


class AnsibleExitJson(Exception):
    pass


@pytest.fixture
def make_client(env, tool_double, monkeypatch):
    monkeypatch.setenv("MONEYTRACKER_DB_SYSLOG", env.syslog_path or "none")
    monkeypatch.delenv("MONEYTRACKER_DB_CONFIG", raising=False)

    def fail_json(self, msg, **kwargs):
        raise AnsibleFailJson(dict(kwargs, msg=msg, failed=True))

    def exit_json(self, **kwargs):
        raise AnsibleExitJson(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)

    def make(**params):
        args = {"tool": tool_double, "config": str(env.config), **params}
        with patch_module_args(args):
            module = basic.AnsibleModule(argument_spec=mu.common_argument_spec(token=dict(type="str", no_log=True)))
        return mu.MoneytrackerDbClient(module)

    return make


def test_argv_adds_json_and_config_and_masks_secrets(make_client, env, tool_double):
    client = make_client()
    real, shown = client.argv(["lock", "release", "--token", mu.Secret("abc123")])
    assert real == [tool_double, "lock", "release", "--token", "abc123", "--json", "--config", str(env.config)]
    assert shown == [tool_double, "lock", "release", "--token", "********", "--json", "--config", str(env.config)]
    assert "abc123" not in repr(mu.Secret("abc123")) and "abc123" not in str(mu.Secret("abc123"))


def test_argv_puts_the_tools_options_before_a_command_it_runs(make_client, env, tool_double):
    # After `--` comes the migration command the tool runs as given: --json there would reach it.
    real, _ = make_client().argv(["migration", "run", "--expect-schema", "b2", "--", "alembic", "upgrade", "head"])
    assert real == [tool_double, "migration", "run", "--expect-schema", "b2", "--json", "--config", str(env.config),
                    "--", "alembic", "upgrade", "head"]


def test_the_tool_path_is_the_one_the_role_installs():
    # Defined once in YAML (the role's vars, passed as the fact `moneytracker_db.tool`) and once in
    # Python (the modules' default); these two and the documented default must agree.
    import yaml
    role_vars = yaml.safe_load((ROOT / "roles/moneytracker_db/vars/main.yml").read_text())
    fragment = (ROOT / "plugins/doc_fragments/moneytracker_db.py").read_text()
    assert role_vars["_moneytracker_db_tool"] == mu.DEFAULT_TOOL
    assert f"default: {mu.DEFAULT_TOOL}" in fragment


def test_defaults():
    spec = mu.common_argument_spec(x=dict(type="int"))
    assert spec["tool"] == {"type": "path", "default": "/usr/local/sbin/moneytracker-db"}
    assert spec["config"] == {"type": "path"} and "x" in spec


def test_ok_result_and_details(make_client, env):
    result = make_client().run("status")
    assert result.rc == 0 and result.ok and result.outcome == "ok" and result.parsed
    assert result.data["command"] == "status" and result.data["exit_code"] == 0
    details = result.details()
    assert "ok" not in details and "command" not in details and "exit_code" not in details
    assert details["maintenance_lock"]["state"] == "free"
    assert result.cmd.endswith("status --json --config " + str(env.config))


def test_outcomes_of_lock_states_skip_and_confirmation(make_client, env):
    client = make_client()
    assert client.run("backup").outcome == "ok"
    acquired = client.run("lock", "acquire", "--owner", "migration", "--play", "migrate.yml", "--ttl", "2")
    token = acquired.data["token"]
    assert mu.token_id(token) == acquired.data["lock"]["id"]

    held = client.run("lock", "status")
    assert (held.rc, held.outcome, held.ok) == (3, "locked", False)
    skipped = client.run("check", "--quick")
    assert (skipped.rc, skipped.outcome) == (75, "skipped")
    assert skipped.skipped_reason.startswith("skipped: maintenance lock held by migration@")
    assert skipped.message == skipped.skipped_reason
    assert "skipped" not in skipped.details()
    plan = client.run("restore", "--writers-stopped", "--lock-token", mu.Secret(token))
    assert (plan.rc, plan.outcome) == (3, "confirmation_required") and plan.data["plan"]["database"] == str(env.db)
    assert token not in plan.cmd

    time.sleep(2.2)
    stale = client.run("lock", "status")
    assert (stale.rc, stale.outcome) == (4, "stale")


def test_usage_error_and_fail_carries_the_tools_message(make_client, env):
    env.write_config(retention={"daily": -1})
    client = make_client()
    result = client.run("status")
    assert (result.rc, result.outcome) == (2, "usage")
    assert "retention.daily" in result.message
    with pytest.raises(AnsibleFailJson) as exc:
        client.fail(result)
    payload = exc.value.args[0]
    assert payload["msg"] == result.data["error"] and payload["rc"] == 2 and payload["outcome"] == "usage"
    assert payload["failed"] is True and payload["changed"] is False
    assert "moneytracker-db: status: FAILED" in payload["stderr"]
    assert not {"ok", "command", "exit_code", "error"} & set(payload)


def test_no_json_from_the_tool(make_client, tmp_path):
    fake = tmp_path / "not-the-tool"
    fake.write_text("#!/bin/sh\necho 'hello, not json'\necho 'it broke' >&2\nexit 1\n")
    fake.chmod(0o755)
    result = make_client(tool=str(fake)).run("status")
    assert result.outcome == "no_json" and not result.ok and result.data == {}
    assert result.message == "moneytracker-db printed no JSON (exit 1): it broke"


def test_missing_tool_fails_with_a_clear_message(make_client, tmp_path):
    client = make_client(tool=str(tmp_path / "nowhere" / "moneytracker-db"))
    with pytest.raises(AnsibleFailJson) as exc:
        client.run("status")
    assert "missing or not executable" in exc.value.args[0]["msg"]


def test_arguments_are_not_expanded_by_a_shell_or_run_command(make_client, env):
    client = make_client()
    label = "$HOME ~ `id` ; rm -rf /"
    result = client.run("backup", "--label", label, "--no-offsite")
    assert result.ok, result.message
    manifest = json.loads(Path(result.data["manifest"]).read_text())
    assert manifest["label"] == label
