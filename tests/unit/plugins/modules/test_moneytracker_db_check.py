"""moneytracker_db_check through the real tool: quick ok (also in check mode), a corrupted live
database fails with its problems, skipped (exit 75) under someone else's lock is not a failure,
full check of the newest backup."""
from __future__ import annotations


def test_quick_ok_and_in_check_mode(run_module, env, sha256):
    before = sha256(env.db)
    for check_mode in (False, True):
        r = run_module("check", check_mode=check_mode)
        assert r.rc == 0, r.stdout
        res = r.result
        assert res["changed"] is False and res.get("failed") is not True and "skipped" not in res
        assert res["quick_check"] == ["ok"] and res["database"] == str(env.db)
    assert sha256(env.db) == before


def test_quick_fails_on_a_corrupted_database(run_module, env, corrupt_database):
    corrupt_database()
    r = run_module("check", mode="quick")
    assert r.rc == 1
    res = r.result
    assert res["failed"] is True and res["changed"] is False and res["rc"] == 1
    assert "quick_check of the LIVE database" in res["msg"] and "FAILED" in res["msg"]
    assert res["problems"] and all(isinstance(p, str) for p in res["problems"])
    assert res["database"] == str(env.db)


def test_skipped_while_locked_is_not_a_failure(run_module, env):
    held = run_module("lock", state="acquired", owner="migration", host="ctl-1", play="migrate.yml").result
    r = run_module("check")
    assert r.rc == 0, r.stdout
    res = r.result
    assert res.get("failed") is not True and res["skipped"] is True and res["changed"] is False
    assert res["skip_reason"].startswith("skipped: maintenance lock held by migration@ctl-1 (migrate.yml)")
    assert res["rc"] == 75 and res["lock"]["owner"] == "migration"
    ours = run_module("check", lock_token=held["token"]).result
    assert ours.get("skipped") is None and ours["quick_check"] == ["ok"]


def test_full_checks_the_newest_backup(run_module, env):
    none = run_module("check", mode="full")
    assert none.rc == 1 and none.result["failed"] is True
    backup = run_module("backup").result["backup"]
    r = run_module("check", mode="full")
    assert r.rc == 0, r.stdout
    assert r.result["backup"] == backup and r.result["integrity_check"] == ["ok"]
