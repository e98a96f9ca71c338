"""moneytracker-db restore: stale WAL, tampered backups, stop/start order, confirmation, locks."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import dump, sha256

# A test double for `docker compose stop/start backend`: it only appends what it was asked to
# do, whether the maintenance lock was held, and the sha256 of the database at that moment.
# It proves the order of calls and the state around them, not that Docker stops anything.
HOOK_DOUBLE = """#!/bin/sh
# TEST DOUBLE standing in for the stop_command / start_command of restore
db="$2"; lock="$3"; log="$4"
if [ -f "$db" ]; then sum=$(sha256sum "$db" | cut -d' ' -f1); else sum=missing; fi
if [ -f "$lock" ]; then held=held; else held=free; fi
echo "$1 $sum $held" >> "$log"
exit "${HOOK_DOUBLE_EXIT:-0}"
"""


@pytest.fixture
def hooks(env, tmp_path):
    script = tmp_path / "hook-test-double.sh"
    script.write_text(HOOK_DOUBLE)
    script.chmod(0o755)
    log = tmp_path / "hooks.log"
    lock = env.state / "maintenance.lock"
    env.write_config(stop_command=[str(script), "stop", str(env.db), str(lock), str(log)],
                     start_command=[str(script), "start", str(env.db), str(lock), str(log)])

    def calls():
        return [line.split() for line in log.read_text().splitlines()] if log.exists() else []

    return calls


def backup(env) -> dict:
    r = env.call("backup", "--json")
    assert r.rc == 0, r.err
    return r.data


def decompressed(path: str, dest: Path) -> Path:
    dest.write_bytes(subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout)
    return dest


def make_stale_wal(db: Path) -> tuple[bytes, bytes]:
    """Write newer rows that stay in the WAL, copy -wal/-shm, then let the connection checkpoint."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute("UPDATE accounts SET name = 'renamed after the backup'")
    con.executemany("INSERT INTO transactions(account_id, amount_cents) VALUES (1, ?)", [(i,) for i in range(300)])
    con.commit()
    wal, shm = Path(str(db) + "-wal").read_bytes(), Path(str(db) + "-shm").read_bytes()
    con.close()
    return wal, shm


def test_restore_with_stale_wal_equals_backup_and_keeps_old_files(env, hooks, tmp_path):
    data = backup(env)
    expected = dump(decompressed(data["backup"], tmp_path / "expected.db"))
    wal, shm = make_stale_wal(env.db)
    Path(str(env.db) + "-wal").write_bytes(wal)  # stale WAL beside the target
    Path(str(env.db) + "-shm").write_bytes(shm)
    old_sha = sha256(env.db)

    # control: the same stale WAL beside the backup's bytes replays newer pages over them
    control = tmp_path / "control"
    control.mkdir()
    decompressed(data["backup"], control / "moneytracker.db")
    (control / "moneytracker.db-wal").write_bytes(wal)
    assert dump(control / "moneytracker.db") != expected, "the stale WAL would not matter (test proves nothing)"

    os.chown(env.db, 1234, 2345)
    os.chmod(env.db, 0o640)
    r = env.run("restore", "--yes", "--json")
    assert r.rc == 0, r.err
    assert dump(env.db) == expected
    st = env.db.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1234, 2345, 0o640)
    aside = r.data["aside"]
    assert set(aside) == {str(env.db), str(env.db) + "-wal", str(env.db) + "-shm"}
    main_aside = Path(aside[str(env.db)])
    assert main_aside.parent == env.db.parent and ".pre-restore-" in main_aside.name
    assert sha256(main_aside) == old_sha
    assert Path(aside[str(env.db) + "-wal"]).read_bytes() == wal
    assert r.data["restored"] == data["backup"] and r.data["quick_check"] == ["ok"]
    plain = env.call("restore", "--yes")  # plain output names backup, time and aside paths
    assert plain.rc == 0 and "from backup" in plain.out and "kept aside" in plain.out
    again = env.call("restore", "--yes", "--json")  # same second or not: no aside file is overwritten
    assert again.rc == 0 and sha256(main_aside) == old_sha
    assert len(list(env.db.parent.glob("moneytracker.db.pre-restore-*[0-9Z]"))) == 3
    assert not (env.state / "maintenance.lock").exists()  # released the lock it took
    assert env.run("status", "--json").data["jobs"]["restore"]["result"] == "ok"


def test_restore_calls_stop_then_swap_then_start_under_the_lock(env, hooks):
    data = backup(env)
    raw_sha = json.loads(Path(data["manifest"]).read_text())["raw"]["sha256"]
    con = sqlite3.connect(env.db)
    con.execute("DELETE FROM transactions")
    con.commit()
    con.close()
    old_sha = sha256(env.db)
    r = env.run("restore", "--yes", "--json")
    assert r.rc == 0, r.err
    assert hooks() == [["stop", old_sha, "held"], ["start", raw_sha, "held"]]


def test_restore_without_yes_only_prints_the_plan(env, hooks):
    backup(env)
    before = sorted(os.listdir(env.db.parent)), sha256(env.db)
    r = env.run("restore")
    assert r.rc == 3
    assert "run again with --yes" in r.out and "aside" in r.out and "stop:" in r.out
    r = env.call("restore", "--json")
    assert r.rc == 3 and r.data["confirmation_required"] is True
    assert (sorted(os.listdir(env.db.parent)), sha256(env.db)) == before
    assert hooks() == []


def test_restore_refuses_tampered_backup_and_changes_nothing(env, hooks):
    data = backup(env)
    blob = bytearray(Path(data["backup"]).read_bytes())
    blob[len(blob) // 2] ^= 0x01
    Path(data["backup"]).write_bytes(bytes(blob))
    before = sorted(os.listdir(env.db.parent)), sha256(env.db)
    r = env.run("restore", "--yes", "--json")
    assert r.rc == 1
    assert "does not match its manifest" in r.err and "refusing" in r.err
    assert (sorted(os.listdir(env.db.parent)), sha256(env.db)) == before
    assert hooks() == []
    assert not (env.state / "maintenance.lock").exists()


def test_restore_refuses_backup_without_manifest(env, hooks):
    data = backup(env)
    Path(data["manifest"]).unlink()
    r = env.run("restore", "--yes", "--backup", data["backup"])
    assert r.rc == 1 and "no manifest" in r.err
    assert hooks() == []


def test_restore_respects_the_maintenance_lock_and_accepts_the_holders_token(env, hooks):
    backup(env)
    token = env.call("lock", "acquire", "--owner", "migration", "--host", "ctl", "--play", "migrate.yml").out.strip()
    r = env.run("restore", "--yes")
    assert r.rc == 3 and "held by migration@ctl (migrate.yml)" in r.err
    assert hooks() == []
    r = env.run("restore", "--yes", "--lock-token", token)
    assert r.rc == 0, r.err
    assert [c[0] for c in hooks()] == ["stop", "start"]
    assert json.loads((env.state / "maintenance.lock").read_text())["token"] == token  # not ours to release


def test_restore_needs_stop_command_or_writers_stopped(env):
    backup(env)
    r = env.run("restore", "--yes")
    assert r.rc == 2 and "stop_command" in r.err
    r = env.call("restore", "--yes", "--writers-stopped")
    assert r.rc == 0, r.err


def test_restore_failed_stop_changes_nothing_and_restarts(env, hooks):
    backup(env)
    before = sorted(os.listdir(env.db.parent)), sha256(env.db)
    r = env.run("restore", "--yes", extra_env={"HOOK_DOUBLE_EXIT": "1"})
    assert r.rc == 1 and "stop_command failed" in r.err
    assert (sorted(os.listdir(env.db.parent)), sha256(env.db)) == before
    assert [c[0] for c in hooks()] == ["stop", "start"]
    assert not (env.state / "maintenance.lock").exists()


def test_restore_of_gzip_backup_into_missing_database(env):
    env.write_config(compression="gzip", db_owner="1000:1000:0600")
    r = env.run("backup", "--json")
    assert r.rc == 0
    expected = dump(env.db)
    shutil.rmtree(env.db.parent)
    env.db.parent.mkdir()
    r = env.run("restore", "--yes", "--writers-stopped", "--json")
    assert r.rc == 0, r.err
    assert dump(env.db) == expected and r.data["aside"] == {}
    st = env.db.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1000, 1000, 0o600)
