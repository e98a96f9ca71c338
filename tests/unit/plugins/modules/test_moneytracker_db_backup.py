"""moneytracker_db_backup through the real tool: a backup written is changed (and verified by the
tool), check mode writes nothing, skips under someone else's lock fail unless fail_on_skip=false,
and a backup under the play's own lock works with its token."""
from __future__ import annotations

import json
import sqlite3


def listing(env):
    return sorted(p.name for p in env.backups.iterdir()) if env.backups.exists() else []


def test_backup_is_changed_and_verified(run_module, env):
    r = run_module("backup", label="pre-migration", offsite=False)
    assert r.rc == 0, r.stdout
    res = r.result
    assert res["changed"] is True and res.get("failed") is not True
    backups = env.backups_with_manifest()
    assert [str(p) for p in backups] == [res["backup"]]
    manifest = json.loads((env.backups / (backups[0].name + ".manifest.json")).read_text())
    assert manifest["label"] == "pre-migration" and manifest["verified"] is True
    assert res["row_counts"]["transactions"] == 500 and res["sha256"] == manifest["compressed"]["sha256"]
    assert "--no-offsite" in res["cmd"] and "--label pre-migration" in res["cmd"]
    assert "skipped" not in res


def test_check_mode_writes_nothing_and_reports_the_backup(run_module, env, sha256):
    before_db, before_backups = sha256(env.db), listing(env)
    r = run_module("backup", check_mode=True, label="x")
    assert r.rc == 0, r.stdout
    res = r.result
    assert res["changed"] is True
    assert res["would"]["action"] == "backup" and res["would"]["database"] == str(env.db)
    assert res["would"]["backup_dir"] == str(env.backups) and res["would"]["lock"] == "free"
    assert listing(env) == before_backups and env.backups_with_manifest() == []
    assert sha256(env.db) == before_db


def test_skipped_under_someone_elses_lock(run_module, env):
    held = run_module("lock", state="acquired", owner="migration", host="ctl-1", play="migrate.yml").result
    r = run_module("backup")
    assert r.rc == 1 and r.result["failed"] is True and r.result["rc"] == 75
    assert r.result["msg"].startswith("skipped: maintenance lock held by migration@ctl-1 (migrate.yml)")
    assert env.backups_with_manifest() == []

    soft = run_module("backup", fail_on_skip=False).result
    assert soft.get("failed") is not True and soft["skipped"] is True and soft["changed"] is False
    assert "migration@ctl-1" in soft["skip_reason"]

    cm = run_module("backup", check_mode=True)
    assert cm.rc == 1 and "would be skipped" in cm.result["msg"]

    ours = run_module("backup", lock_token=held["token"])
    assert ours.rc == 0 and ours.result["changed"] is True
    assert held["token"] not in ours.stdout
    cm_ours = run_module("backup", check_mode=True, lock_token=held["token"]).result
    assert cm_ours["changed"] is True and cm_ours["would"]["lock"] == "held"
    assert len(env.backups_with_manifest()) == 1


def test_missing_database(run_module, env):
    for side in ("", "-wal", "-shm"):
        (env.db.parent / (env.db.name + side)).unlink(missing_ok=True)
    r = run_module("backup")
    assert r.rc == 1 and r.result["failed"] is True and r.result["rc"] == 1
    ok = run_module("backup", allow_missing=True).result
    assert ok.get("failed") is not True and ok["changed"] is False and ok["skipped"] is True
    assert ok["skip_reason"] == "no database"


def test_failed_verification_gives_the_tools_message(run_module, env):
    con = sqlite3.connect(env.db)
    con.execute("INSERT INTO transactions(account_id, amount_cents) VALUES (9999, 1)")  # FK violation
    con.commit()
    con.close()
    r = run_module("backup")
    assert r.rc == 1
    res = r.result
    assert res["failed"] is True and res["changed"] is False
    assert "FAILED verification" in res["msg"] and "foreign_key_check" in res["msg"]
    assert res["quarantined"].startswith(str(env.backups / "quarantine"))
    assert env.backups_with_manifest() == []
