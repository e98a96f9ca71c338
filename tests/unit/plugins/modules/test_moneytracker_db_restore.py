"""moneytracker_db_restore through the real tool: check mode returns the tool's plan and changes
nothing (hashes unchanged), a real restore under the play's lock with its token works (stop and
start commands run, old file aside), refusals carry the tool's message."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def add_rows(db, n=30):
    con = sqlite3.connect(db)
    con.executemany("INSERT INTO transactions(account_id, amount_cents) VALUES (1, ?)", [(i,) for i in range(n)])
    con.commit()
    con.close()


def count(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM transactions").fetchone()[0]
    finally:
        con.close()


def tree(env):
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for d in (env.db.parent, env.backups, env.state)
            if d.exists() for p in d.rglob("*") if p.is_file()}


def test_check_mode_returns_the_plan_and_changes_nothing(run_module, env, sha256, stop_start_double):
    stop, start, calls = stop_start_double
    backup = run_module("backup").result["backup"]
    add_rows(env.db)
    before_db, before_tree = sha256(env.db), tree(env)
    r = run_module("restore", check_mode=True, stop_command=stop, start_command=start)
    assert r.rc == 0, r.stdout
    res = r.result
    assert res["changed"] is True and res.get("failed") is not True
    plan = res["plan"]
    assert plan["backup"] == backup and plan["database"] == str(env.db) and plan["database_exists"] is True
    assert plan["stop_command"] == stop and plan["start_command"] == start
    assert str(env.db) in plan["aside"] and ".pre-restore-" in plan["aside"][str(env.db)]
    assert "--yes" not in res["cmd"]
    assert sha256(env.db) == before_db and tree(env) == before_tree
    assert calls() == []
    assert count(env.db) == 530


def test_check_mode_predicts_refusals(run_module, env):
    run_module("backup")
    no_stop = run_module("restore", check_mode=True)
    assert no_stop.rc == 1 and "writers_stopped" in no_stop.result["msg"]
    assert run_module("restore", check_mode=True, writers_stopped=True).result["changed"] is True
    held = run_module("lock", state="acquired", owner="migration", host="ctl-1", play="migrate.yml").result
    locked = run_module("restore", check_mode=True, writers_stopped=True)
    assert locked.rc == 1 and "HELD by migration@ctl-1 (migrate.yml)" in locked.result["msg"]
    ours = run_module("restore", check_mode=True, writers_stopped=True, lock_token=held["token"]).result
    assert ours["changed"] is True and "lock" not in ours["plan"]


def test_restore_under_the_lock_with_the_token(run_module, env, sha256, stop_start_double):
    stop, start, calls = stop_start_double
    backup = run_module("backup").result["backup"]
    add_rows(env.db)
    assert count(env.db) == 530
    held = run_module("lock", state="acquired", owner="runbook", play="restore.yml").result
    token = held["token"]

    refused = run_module("restore", stop_command=stop, start_command=start)
    assert refused.rc == 1 and refused.result["rc"] == 3 and "runbook@" in refused.result["msg"]
    assert refused.result["changed"] is False and count(env.db) == 530 and calls() == []

    r = run_module("restore", backup=backup, lock_token=token, stop_command=stop, start_command=start)
    assert r.rc == 0, r.stdout
    res = r.result
    assert res["changed"] is True and res["restored"] == backup and res["database_changed"] is True
    assert res["quick_check"] == ["ok"]
    assert count(env.db) == 500
    assert calls() == ["stop", "start"]
    aside = res["aside"][str(env.db)]
    assert Path(aside).exists() and count(aside) == 530
    assert token not in r.stdout and token not in r.stderr and "--lock-token ********" in res["cmd"]
    # the restore ran under the play's lock and left it held
    assert run_module("lock", state="status").result["id"] == held["id"]


def test_failed_restore_of_a_missing_backup(run_module, env, sha256):
    run_module("backup")
    before = sha256(env.db)
    r = run_module("restore", backup=str(env.backups / "moneytracker-20000101T000000Z.db.zst"),
                   writers_stopped=True)
    assert r.rc == 1
    assert "does not exist" in r.result["msg"] and r.result["changed"] is False
    assert sha256(env.db) == before
    assert not any(".pre-restore-" in n for n in os.listdir(env.db.parent))
