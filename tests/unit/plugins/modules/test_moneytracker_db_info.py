"""moneytracker_db_info through the real tool: status, backups, lock, migration status and
compare (rows a restore would lose); never changed, also in check mode."""
from __future__ import annotations

import sqlite3


def test_info_backups_status_and_compare(run_module, env, sha256):
    empty = run_module("info").result
    assert empty["changed"] is False and empty["backups"] == [] and empty["newest_backup"] is None
    assert empty["lock"]["state"] == "free" and empty["migration"]["unfinished"] is False

    first = run_module("backup", label="one").result["backup"]
    second = run_module("backup", label="two").result["backup"]
    con = sqlite3.connect(env.db)
    con.executemany("INSERT INTO transactions(account_id, amount_cents) VALUES (1, ?)", [(i,) for i in range(7)])
    con.commit()
    con.close()
    before = sha256(env.db)

    for check_mode in (False, True):
        r = run_module("info", check_mode=check_mode, compare=True)
        assert r.rc == 0, r.stdout
        res = r.result
        assert res["changed"] is False and res.get("failed") is not True
        assert [b["path"] for b in res["backups"]] == [second, first]
        assert [b["label"] for b in res["backups"]] == ["two", "one"]
        assert all(b["verified"] for b in res["backups"])
        assert res["newest_backup"]["path"] == second and res["status"]["backups_count"] == 2
        assert res["jobs"]["backup"]["result"] == "ok"
        assert res["compare"]["backup"] == second and res["compare"]["writes_lost"] == 7
        tx = res["compare"]["tables"]["transactions"]
        assert tx["live"] == 507 and tx["backup"] == 500 and tx["new_ids"] == list(range(501, 508))
    assert sha256(env.db) == before

    older = run_module("info", backup=first, migration=False).result
    assert older["compare"]["backup"] == first and "migration" not in older


def test_info_shows_the_lock_and_fails_on_a_missing_backup(run_module, env):
    run_module("lock", state="acquired", owner="migration", host="ctl-1", play="migrate.yml")
    res = run_module("info").result
    assert res["lock"]["state"] == "held" and res["lock"]["owner"]["owner"] == "migration"
    assert "token" not in res["lock"]["owner"]
    r = run_module("info", compare=True)
    assert r.rc == 1 and r.result["failed"] is True and "no verified backup" in r.result["msg"]


def test_info_passes_target_time_to_compare(run_module):
    """target_time is the tool's compare --target-time (engine postgres; tests/unit/
    test_moneytracker_db_postgres.py has what it answers there): on SQLite the tool refuses it by name."""
    r = run_module("info", target_time="2026-12-01T10:00:00Z", migration=False)
    assert r.rc == 1 and "--target-time is for engine postgres" in r.result["msg"], r.result
