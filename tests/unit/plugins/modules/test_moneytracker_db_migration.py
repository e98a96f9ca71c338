"""moneytracker_db_migration: the journal and the window's one command through the module, with the
real tool on real SQLite files: status, begin/step/run/finish, a failing migration (the tool's
message and the migration's output in the failed result, the live file untouched, revert), adopt
of a dead run's journal, check mode, and the token never printed.

The "migration" run on the copy is a few SQL statements standing in for the new image's alembic
run (a test double of the migration command): it proves what the module and tool do around a
migration, not anything about alembic."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from conftest import MIGRATE_PY, dump, sha256

OLD = "a1b2c3d4"
NEW = "e5f6a7b8"


def take_lock(run_module, **extra) -> str:
    r = run_module("lock", state="acquired", owner="migration", host="ctl-1", play="migrate.yml",
                   controller_pid=4242, **extra)
    assert r.rc == 0, r.stdout
    return r.result["token"]


def begin(run_module, token, **facts):
    return run_module("migration", action="begin", lock_token=token, id="20261130T101010Z", schema_from=OLD,
                      schema_to=NEW, facts={"image": "moneytracker/backend:2.0.0", **facts})


def migrate(run_module, env, token, schema=NEW, **extra):
    copy = str(env.db) + ".migrating"
    return run_module("migration", action="run", lock_token=token, expect_schema=NEW, timeout=60,
                      command=[sys.executable, "-c", MIGRATE_PY, copy, schema, "0"], **extra)


def test_status_of_a_quiet_database_changes_nothing(run_module, env):
    r = run_module("migration", action="status")
    assert r.rc == 0, r.stdout
    res = r.result
    assert res["changed"] is False and res["unfinished"] is False and res["journal"] is None
    assert res["swapped"] is False and res["live_schema"] == OLD and res["lock"]["state"] == "free"


def test_a_whole_migration_through_the_module(run_module, env, tmp_path):
    token = take_lock(run_module)
    previous, target, active = (tmp_path / "compose.previous.yaml", tmp_path / "compose.target.yaml",
                                tmp_path / "compose.yaml")
    previous.write_text("image: backend:1\n")
    target.write_text("image: backend:2\n")
    active.write_text(previous.read_text())
    before = dump(env.db)

    b = begin(run_module, token, previous_compose=str(previous), target_compose=str(target))
    assert b.rc == 0, b.stdout
    assert b.result["changed"] is True and b.result["journal"]["image"] == "moneytracker/backend:2.0.0"
    s = run_module("migration", action="step", lock_token=token, step="backup taken", facts={"backup": "/b.db.zst"})
    assert s.rc == 0 and s.result["changed"] is True, s.stdout

    stopped = tmp_path / "stopped"
    r = migrate(run_module, env, token, stop_command=["touch", str(stopped)], activate_compose=str(active))
    assert r.rc == 0, r.stdout
    res = r.result
    assert res["changed"] is True and res["migration_rc"] == 0 and "upgraded on the copy" in res["migration_stdout"]
    assert res["checks"]["ok"] and res["compose_activated"] == str(active)
    assert {"seconds", "stop_seconds", "copy_seconds", "migration_seconds"} <= set(res)
    assert stopped.exists(), "stop_command ran (--stop-writers)"
    assert active.read_text() == "image: backend:2\n"
    # The tool's options went before `--`: the migration command got exactly its own argv.
    assert res["cmd"].index("--json") < res["cmd"].index(" -- ")

    st = run_module("migration", action="status").result
    assert st["unfinished"] is True and st["swapped"] is True and st["live_schema"] == NEW
    assert st["journal"]["backup"] == "/b.db.zst"
    assert dump(Path(str(env.db) + ".pre-swap")) == before

    f = run_module("migration", action="finish", lock_token=token, result="done", note="migrated by test")
    assert f.rc == 0 and f.result["changed"] is True, f.stdout
    assert run_module("migration", action="status").result["unfinished"] is False
    for run in (b, s, r, f):
        assert token not in run.stdout, "the lock token is never printed"
        assert "--lock-token ********" in run.result["cmd"]


def test_a_failing_migration_fails_with_the_tools_message_and_its_output(run_module, env):
    token = take_lock(run_module)
    assert begin(run_module, token).rc == 0
    live = sha256(env.db)
    r = migrate(run_module, env, token, schema="fail")
    assert r.rc == 1
    res = r.result
    assert res["failed"] is True
    assert "the migration on the copy failed (exit 3); the live database was not touched" in res["msg"]
    assert res["migration_rc"] == 3 and "upgraded on the copy" in res["migration_stdout"]
    assert sha256(env.db) == live
    assert token not in r.stdout

    rv = run_module("migration", action="revert", lock_token=token)
    assert rv.rc == 0 and rv.result["changed"] is True, rv.stdout
    assert not Path(str(env.db) + ".migrating").exists() and sha256(env.db) == live
    fin = run_module("migration", action="finish", lock_token=token, result="reverted", note="failed in test")
    assert fin.rc == 0, fin.stdout


def test_actions_under_the_lock_refuse_a_wrong_token(run_module, env):
    take_lock(run_module)
    r = begin(run_module, "0" * 32)
    assert r.rc == 1 and r.result["failed"] is True and r.result["changed"] is False
    assert "token" in r.result["msg"] and run_module("migration", action="status").result["journal"] is None


def test_adopt_takes_over_a_dead_runs_journal(run_module, env):
    token = take_lock(run_module, ttl=1)
    assert begin(run_module, token).rc == 0
    time.sleep(1.2)  # the lock is stale: its run is gone
    r = run_module("migration", action="adopt", owner="migration", host="ctl-2", play="recover", ttl=600)
    assert r.rc == 0, r.stdout
    new = r.result["token"]
    assert new and new != token and r.result["changed"] is True
    assert run_module("lock", state="status").result["lock"]["host"] == "ctl-2"
    rv = run_module("migration", action="revert", lock_token=new)
    assert rv.rc == 0, rv.stdout
    assert run_module("migration", action="finish", lock_token=new, result="reverted").rc == 0
    assert run_module("lock", state="released", token=new).rc == 0


def test_check_mode_runs_nothing_but_status(run_module, env):
    token = take_lock(run_module)
    r = run_module("migration", check_mode=True, action="begin", lock_token=token, id="x",
                   schema_from=OLD, schema_to=NEW)
    assert r.rc == 0 and r.result["changed"] is True and "not run" in r.result["msg"], r.stdout
    assert run_module("migration", action="status").result["journal"] is None
    st = run_module("migration", check_mode=True, action="status")
    assert st.rc == 0 and st.result["unfinished"] is False and st.result["changed"] is False
    assert token not in r.stdout


def test_missing_options_are_named(run_module, env):
    r = run_module("migration", action="run", lock_token="x" * 32, expect_schema=NEW)
    assert r.rc == 1 and "command" in r.result["msg"], r.stdout
    r = run_module("migration", action="bogus")
    assert r.rc == 1 and "action" in r.result["msg"], r.stdout
    assert json.loads(r.stdout)["failed"] is True


def test_the_state_read_gives_the_same_status(run_module, env, tool_double, collections_tree, tmp_path):
    """moneytracker_stack_info's migration_status (the app's one state read; recover.yml uses it
    instead of a second module run) is what this module's status returns, journal and lock included."""
    import subprocess

    def stack_info(tool):
        args = tmp_path / "stack-info-args.json"
        args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"migration_status": tool}}))
        proc = subprocess.run(
            [sys.executable, "-m", "ansible_collections.moneytracker.deploy.plugins.modules.moneytracker_stack_info",
             str(args)], capture_output=True, text=True, timeout=120, cwd=str(tmp_path), check=False,
            env=env.env({"PYTHONPATH": str(collections_tree), "MONEYTRACKER_DB_CONFIG": str(env.config)}))
        return json.loads(proc.stdout)

    take_lock(run_module)
    module = run_module("migration", action="status").result
    found = stack_info(tool_double)["migration_status"]
    assert found["lock"]["state"] == "held" and found["live_schema"] == OLD
    for key in ("unfinished", "journal", "swapped", "live_schema", "lock", "msg", "rc", "failed", "changed"):
        assert found[key] == module[key], key
    # No tool there: nothing read (recover.yml then asks the module, which names the cause).
    assert stack_info(str(tmp_path / "missing-tool"))["migration_status"] is None
