"""moneytracker-db migration: the journal, copy -> migrate the copy -> checks -> swap, status read
from the files, adopt, revert, finish; and the lock record's id/user/controller pid.

Real SQLite files in tmp_path. The "migration" that the tests run on the copy is a few SQL
statements standing in for the new image's alembic run: it proves what the tool does around a
migration (copy, checks, swap, revert), not anything about alembic."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import stat
import sys
from pathlib import Path

import pytest
from conftest import MIGRATE_PY, dump, sha256

ACQUIRE = ["lock", "acquire", "--owner", "migration", "--host", "ctl-1", "--play", "migrate.yml",
           "--user", "alice", "--controller-pid", "4242"]
OLD, NEW = "a1b2c3d4", "e5f6a7b8"


def take_lock(env, *extra) -> str:
    r = env.call(*ACQUIRE, *extra, "--json")
    assert r.rc == 0, r.err
    return r.data["token"]


def begin(env, token, mid="20261130T101010Z", *sets) -> dict:
    args = ["migration", "begin", "--lock-token", token, "--id", mid, "--from", OLD, "--to", NEW]
    for s in sets or ("image=moneytracker/backend:2.0.0", "owner=migration", "host=ctl-1", "user=alice",
                      "play=migrate.yml", "controller_pid=4242"):
        args += ["--set", s]
    r = env.call(*args, "--json")
    assert r.rc == 0, r.err
    return r.data["journal"]


def migrate_copy(path, schema=NEW, fk_violation=False, drop_alembic=False):
    """Stands in for the new image's migration, run on the copy."""
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE accounts ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR'")
    con.execute("UPDATE alembic_version SET version_num = ?", (schema,))
    if fk_violation:
        con.execute("INSERT INTO transactions(account_id, amount_cents) VALUES (99999, 1)")
    if drop_alembic:
        con.execute("DROP TABLE alembic_version")
    con.commit()
    con.close()


def journal(env) -> dict | None:
    path = env.state / "migration.json"
    return json.loads(path.read_text()) if path.exists() else None


def paths(env) -> tuple[Path, Path]:
    return Path(str(env.db) + ".migrating"), Path(str(env.db) + ".pre-swap")


def status(env) -> dict:
    r = env.call("migration", "status", "--json")
    assert r.rc == 0, r.err
    return r.data


def listing(directory: Path) -> dict:
    return {p.name: (p.lstat().st_ino, p.lstat().st_size, p.lstat().st_mtime_ns) for p in directory.iterdir()}


# --------------------------------------------------------------------------- the lock record


def test_lock_record_has_id_user_and_controller_pid(env, tool):
    token = take_lock(env)
    record = json.loads((env.state / "maintenance.lock").read_text())
    assert record["user"] == "alice" and record["controller_pid"] == 4242
    assert record["id"] == tool.token_id(token) and len(record["id"]) == 12 and record["id"] not in token
    st = env.call("lock", "status", "--json")
    assert st.rc == 3 and st.data["lock"]["id"] == record["id"] and "token" not in st.out
    plain = env.call("lock", "status")
    assert f"id {record['id']}" in plain.out
    assert "user alice, controller pid 4242" in plain.out
    r = env.call("lock", "acquire", "--owner", "x", "--play", "p")
    assert r.rc == 3 and "user alice, controller pid 4242" in r.err


def test_lock_user_defaults_to_USER_then_the_login_name(env):
    r = env.run("lock", "acquire", "--owner", "o", "--play", "p", "--json", extra_env={"USER": "bob"})
    assert r.rc == 0 and r.data["lock"]["user"] == "bob"
    env.run("lock", "release", "--token", r.data["token"])
    environ = env.env()
    environ.pop("USER", None)
    import pwd
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, str(env.tool.__file__), "lock", "acquire", "--owner", "o", "--play", "p",
                           "--json", "--config", str(env.config)], capture_output=True, text=True, env=environ, check=True)
    data = json.loads(proc.stdout)
    try:
        login = os.getlogin()
    except OSError:
        login = pwd.getpwuid(os.getuid()).pw_name
    assert data["lock"]["user"] == login and data["lock"]["user"]


def test_old_lock_records_get_an_id_from_their_token(env, tool):
    env.state.mkdir(exist_ok=True)
    (env.state / "maintenance.lock").write_text(json.dumps(
        {"token": "ab" * 16, "owner": "old", "host": "h", "play": "p", "since": "then", "expires_epoch": 9e12}))
    assert env.call("lock", "status", "--json").data["lock"]["id"] == tool.token_id("ab" * 16)


def test_break_with_id_breaks_only_the_lock_that_was_shown(env, syslog):
    take_lock(env)
    shown = env.call("lock", "status", "--json").data["lock"]["id"]
    r = env.call("lock", "break", "--force", "--id", "0123456789ab", "--json")
    assert r.rc == 3 and "the lock changed since it was shown: now held by migration@ctl-1" in r.data["error"]
    assert (env.state / "maintenance.lock").exists()
    r = env.call("lock", "break", "--force", "--id", shown, "--reason", "run died", "--json")
    assert r.rc == 0 and r.data["was"]["id"] == shown
    assert not (env.state / "maintenance.lock").exists()
    take_lock(env)
    assert env.call("lock", "break", "--force").rc == 0  # without --id as before
    assert env.call("lock", "break", "--force", "--id", shown, "--json").data["state"] == "free"


# --------------------------------------------------------------------------- begin / step


def test_begin_writes_the_journal_under_the_lock(env, tool):
    token = take_lock(env)
    j = begin(env, token)
    path = env.state / "migration.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert token not in path.read_text()
    on_disk = json.loads(path.read_text())
    assert on_disk == j
    assert j["token_id"] == tool.token_id(token)
    assert (j["id"], j["from"], j["to"], j["state"]) == ("20261130T101010Z", OLD, NEW, "begun")
    assert j["database"] == str(env.db) and j["copy"] == str(env.db) + ".migrating"
    assert j["aside"] == str(env.db) + ".pre-swap"
    assert j["image"] == "moneytracker/backend:2.0.0" and j["controller_pid"] == "4242"
    assert [s["step"] for s in j["steps"]] == ["begun"] and j["started"].endswith("Z")


def test_begin_refuses_while_a_journal_is_unfinished(env):
    token = take_lock(env)
    begin(env, token)
    r = env.call("migration", "begin", "--lock-token", token, "--id", "other", "--from", "x", "--to", "y")
    assert r.rc == 1
    assert "20261130T101010Z" in r.err and "'begun'" in r.err and "migration@ctl-1 (migrate.yml), user alice" in r.err
    assert journal(env)["id"] == "20261130T101010Z"


@pytest.mark.parametrize("token_kind", ["wrong", "free"])
def test_changing_actions_refuse_without_the_holders_token(env, token_kind):
    if token_kind == "wrong":
        take_lock(env)
    args_list = [["begin", "--id", "m", "--from", "a", "--to", "b"], ["step", "--name", "x"], ["copy"],
                 ["swap", "--expect-schema", NEW], ["revert"], ["finish", "--result", "done"]]
    for args in args_list:
        r = env.call("migration", args[0], "--lock-token", "f" * 32, *args[1:], "--json")
        assert r.rc == 3, (args, r.out)
        if token_kind == "wrong":
            assert "held by migration@ctl-1 (migrate.yml)" in r.data["error"]
        else:
            assert "not held" in r.data["error"]
    assert journal(env) is None and not paths(env)[0].exists()


def test_step_appends_sets_state_and_merges_keys(env):
    token = take_lock(env)
    begin(env, token)
    r = env.call("migration", "step", "--lock-token", token, "--name", "backup taken",
                 "--set", "backup=/var/backups/moneytracker/b.db.zst", "--json")
    assert r.rc == 0
    j = journal(env)
    assert j["state"] == "backup taken" and j["backup"] == "/var/backups/moneytracker/b.db.zst"
    assert j["steps"][-1]["step"] == "backup taken" and j["steps"][-1]["backup"].endswith("b.db.zst")
    r = env.call("migration", "step", "--lock-token", token, "--name", "x", "--set", "state=done")
    assert r.rc == 2 and "reserved" in r.err and journal(env)["state"] == "backup taken"
    r = env.call("migration", "step", "--lock-token", token, "--name", "x", "--set", "novalue")
    assert r.rc == 2


def test_step_without_a_journal_fails(env):
    token = take_lock(env)
    r = env.call("migration", "step", "--lock-token", token, "--name", "x")
    assert r.rc == 1 and "no unfinished migration" in r.err


def test_actions_hold_the_jobs_lock(env):
    token = take_lock(env)
    begin(env, token)
    env.state.mkdir(exist_ok=True)
    with open(env.state / "jobs.lock", "a+b") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = env.call("migration", "step", "--lock-token", token, "--name", "x", "--jobs-wait", "0.3")
        assert r.rc == 75 and "another moneytracker-db job is running" in r.out
    assert journal(env)["state"] == "begun"


# --------------------------------------------------------------------------- copy


def test_copy_refuses_while_the_database_has_a_writer(env):
    token = take_lock(env)
    begin(env, token)
    before = listing(env.db.parent)
    writer = sqlite3.connect(env.db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO accounts(name) VALUES ('in flight')")
    try:
        r = env.call("migration", "copy", "--lock-token", token, "--busy-timeout-ms", "200", "--json")
    finally:
        writer.execute("COMMIT")
        writer.close()
    assert r.rc == 1 and "the database still has a writer; stop the backend first" in r.data["error"]
    assert not paths(env)[0].exists()
    after = listing(env.db.parent)
    assert set(after) <= set(before) | {"moneytracker.db-wal", "moneytracker.db-shm"}
    assert journal(env)["state"] == "begun"


def test_copy_is_complete_wal_owned_like_the_live_file(env):
    token = take_lock(env)
    begin(env, token)
    con = sqlite3.connect(env.db)  # rows that are only in the WAL
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.executemany("INSERT INTO accounts(name) VALUES (?)", [(f"late {i}",) for i in range(50)])
    con.commit()
    con.close()
    os.chown(env.db, 10001, 10002)
    os.chmod(env.db, 0o640)
    copy, _ = paths(env)
    copy.write_bytes(b"an older copy")
    Path(str(copy) + "-wal").write_bytes(b"stale wal of an older copy")
    Path(str(copy) + "-shm").write_bytes(b"x")
    r = env.call("migration", "copy", "--lock-token", token, "--json")
    assert r.rc == 0, r.err
    assert r.data["copy"] == str(copy) and r.data["size"] == copy.stat().st_size
    assert r.data["journal_mode"] == "wal" and copy.read_bytes()[18:20] == b"\x02\x02"
    st = copy.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (10001, 10002, 0o640)
    assert not Path(str(copy) + "-wal").exists() and not Path(str(copy) + "-shm").exists()
    assert dump(copy) == dump(env.db)
    assert any("late 49" in line for line in dump(copy))
    j = journal(env)
    assert j["state"] == "copied" and j["steps"][-1]["page_count"] == r.data["page_count"] > 0
    assert {"size", "seconds"} <= set(j["steps"][-1])


def test_copy_never_follows_a_symlink_planted_at_the_copy_path(env, tmp_path):
    token = take_lock(env)
    begin(env, token)
    victim = tmp_path / "victim"
    victim.write_text("root's file")
    os.chmod(victim, 0o600)
    copy, _ = paths(env)
    copy.symlink_to(victim)
    os.chown(env.db, 10001, 10001)
    r = env.call("migration", "copy", "--lock-token", token, "--json")
    assert r.rc == 1 and "not a regular file" in r.data["error"] and str(copy) in r.data["error"]
    assert victim.read_text() == "root's file"
    st = victim.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)


def test_set_owner_held_refuses_a_path_that_no_longer_names_the_held_file(tool, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("x")
    os.chmod(victim, 0o600)
    path = tmp_path / "copy"
    fd, _ = tool.create_private(str(path))
    try:
        path.unlink()
        path.symlink_to(victim)  # swapped for a symlink after creation
        with pytest.raises(tool.ToolError, match="symlink"):
            tool.set_owner_held(fd, str(path), 10001, 10001, 0o666)
        assert victim.stat().st_uid == 0 and stat.S_IMODE(victim.stat().st_mode) == 0o600
        path.unlink()
        path.write_text("another file")  # or for another regular file
        with pytest.raises(tool.ToolError, match="replaced"):
            tool.set_owner_held(fd, str(path), 10001, 10001, 0o600)
        assert path.stat().st_uid == 0
    finally:
        os.close(fd)
    fd, _ = tool.create_private(str(tmp_path / "good"))
    try:
        os.link(tmp_path / "good", tmp_path / "hard")
        with pytest.raises(tool.ToolError, match="hard links"):
            tool.set_owner_held(fd, str(tmp_path / "good"), 10001, 10001, 0o600)
        os.unlink(tmp_path / "hard")
        tool.set_owner_held(fd, str(tmp_path / "good"), 10001, 10002, 0o640)
    finally:
        os.close(fd)
    st = (tmp_path / "good").stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (10001, 10002, 0o640)


# --------------------------------------------------------------------------- swap


def copied(env) -> str:
    token = take_lock(env)
    begin(env, token)
    r = env.call("migration", "copy", "--lock-token", token, "--json")
    assert r.rc == 0, r.err
    return token


@pytest.mark.parametrize("fault,check", [
    ("schema", "schema: alembic_version is ['zzzz'], expected " + NEW),
    ("fk", "foreign_key_check: 1 violation(s), first: transactions"),
    ("no_alembic", "schema: the alembic_version table is missing"),
    ("corrupt", "quick_check:"),
])
def test_swap_refuses_a_copy_that_fails_a_check_and_leaves_the_live_file(env, fault, check):
    token = copied(env)
    copy, aside = paths(env)
    if fault == "corrupt":
        migrate_copy(copy)
        data = bytearray(copy.read_bytes())
        page = 4096
        pages = len(data) // page
        for n in range(2, pages):  # scribble over every b-tree page but the first
            data[n * page + 8: n * page + 200] = os.urandom(192)
        copy.write_bytes(bytes(data))
    else:
        migrate_copy(copy, schema="zzzz" if fault == "schema" else NEW, fk_violation=fault == "fk",
                     drop_alembic=fault == "no_alembic")
    live_before = sha256(env.db)
    r = env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW, "--json")
    assert r.rc == 1
    assert check in r.data["error"] and "the live database" in r.data["error"] and "not touched" in r.data["error"]
    assert sha256(env.db) == live_before and copy.exists() and not aside.exists()
    j = journal(env)
    assert j["state"] == "checks failed" and any(check in c for c in j["steps"][-1]["checks"])
    assert status(env)["swapped"] is False


def test_swap_puts_the_migrated_copy_in_place_and_keeps_the_pre_swap_file(env):
    token = copied(env)
    copy, aside = paths(env)
    migrate_copy(copy)
    migrated = dump(copy)
    live_sha, live_dump = sha256(env.db), dump(env.db)
    live_ino = env.db.stat().st_ino
    r = env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW, "--json")
    assert r.rc == 0, r.err
    assert r.data["checks"]["quick_check"] == ["ok"] and r.data["checks"]["foreign_key_check"] == []
    assert r.data["checks"]["schema"] == NEW and r.data["aside"] == str(aside)
    assert not copy.exists() and not Path(str(copy) + "-wal").exists()
    assert not Path(str(env.db) + "-wal").exists() and not Path(str(env.db) + "-shm").exists()
    assert aside.stat().st_ino == live_ino and sha256(aside) == live_sha
    assert dump(env.db) == migrated and dump(aside) == live_dump
    steps = [s["step"] for s in journal(env)["steps"]]
    assert steps[-2:] == ["swapping", "swapped"]
    s = status(env)
    assert s["swapped"] is True and s["live_schema"] == NEW and s["aside_exists"] and not s["copy_exists"]
    r = env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW)
    assert r.rc == 1 and "already done" in r.err


def test_swap_refuses_while_the_live_database_has_a_writer(env):
    token = copied(env)
    copy, aside = paths(env)
    migrate_copy(copy)
    live_sha = sha256(env.db)
    reader = sqlite3.connect(env.db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("INSERT INTO accounts(name) VALUES ('late writer')")
    try:
        r = env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW,
                     "--busy-timeout-ms", "200", "--json")
    finally:
        reader.execute("ROLLBACK")
        reader.close()
    assert r.rc == 1 and "still has a writer" in r.data["error"]
    assert copy.exists() and not aside.exists() and sha256(env.db) == live_sha


def test_swap_refuses_an_aside_that_is_not_the_live_file_and_replaces_one_that_is(env):
    token = copied(env)
    copy, aside = paths(env)
    migrate_copy(copy)
    aside.write_bytes(b"some earlier file")
    r = env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW, "--json")
    assert r.rc == 1 and str(aside) in r.data["error"] and aside.read_bytes() == b"some earlier file"
    assert copy.exists() and dump(env.db) != dump(copy)
    aside.unlink()
    os.link(env.db, aside)  # what a swap interrupted after its link leaves
    r = env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW, "--json")
    assert r.rc == 0, r.err
    assert status(env)["swapped"] is True


def test_swap_refuses_a_symlinked_aside(env, tmp_path):
    token = copied(env)
    copy, aside = paths(env)
    migrate_copy(copy)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    aside.symlink_to(victim)
    r = env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW, "--json")
    assert r.rc == 1 and "not a regular file" in r.data["error"]
    assert victim.read_text() == "keep" and aside.is_symlink() and copy.exists()


# --------------------------------------------------------------------------- status


def test_status_is_read_only_and_reads_swapped_from_the_files(env, tool):
    s = status(env)
    assert s["journal"] is None and s["unfinished"] is False and s["swapped"] is False
    assert s["live_schema"] == OLD and s["lock"]["state"] == "free" and s["lock_is_journals"] is False
    token = copied(env)
    copy, aside = paths(env)
    os.link(env.db, aside)  # interrupted between the link and the rename
    before_dir, before_state = listing(env.db.parent), listing(env.state)
    s = status(env)
    assert listing(env.db.parent) == before_dir and listing(env.state) == before_state
    assert s["unfinished"] and s["copy_exists"] and s["aside_exists"] and s["swapped"] is False
    assert s["lock"]["state"] == "held" and s["lock"]["lock"]["id"] == tool.token_id(token)
    assert s["lock_is_journals"] is True and s["journal"]["state"] == "copied"
    # the journal says "swapping" but only the files say whether the rename happened
    os.replace(copy, env.db)
    s = status(env)
    assert s["swapped"] is True and s["journal"]["state"] == "copied"
    plain = env.call("migration", "status")
    assert plain.rc == 0 and "swapped: YES" in plain.out


def test_status_shows_a_lock_that_is_not_the_journals(env):
    token = copied(env)
    env.call("lock", "break", "--force")
    take_lock(env)
    s = status(env)
    assert s["unfinished"] and s["lock"]["state"] == "held" and s["lock_is_journals"] is False
    assert token


# --------------------------------------------------------------------------- revert / finish


def test_revert_after_the_swap_puts_back_the_exact_pre_swap_file(env):
    live_sha = sha256(env.db)
    live_dump = dump(env.db)
    token = copied(env)
    migrate_copy(paths(env)[0])
    assert env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW).rc == 0
    con = sqlite3.connect(env.db)  # the new backend wrote (its WAL too)
    con.execute("INSERT INTO accounts(name, currency) VALUES ('new release', 'USD')")
    con.commit()
    con.close()
    r = env.call("migration", "revert", "--lock-token", token, "--json")
    assert r.rc == 0, r.err
    assert r.data["reverted"] == "swap undone" and r.data["live_schema"] == OLD
    assert "back exactly as it was before the swap" in r.data["message"]
    assert not paths(env)[1].exists() and not Path(str(env.db) + "-wal").exists()
    assert sha256(env.db) == live_sha and dump(env.db) == live_dump
    assert journal(env)["state"] == "reverted"
    r = env.call("migration", "finish", "--lock-token", token, "--result", "reverted", "--message", "health failed",
                 "--json")
    assert r.rc == 0, r.err
    assert journal(env) is None and (env.state / "maintenance.lock").exists()


def test_revert_before_the_swap_removes_the_copy_and_the_link(env):
    live_sha = sha256(env.db)
    token = copied(env)
    copy, aside = paths(env)
    migrate_copy(copy)
    os.link(env.db, aside)
    Path(str(copy) + "-wal").write_bytes(b"")
    r = env.call("migration", "revert", "--lock-token", token, "--json")
    assert r.rc == 0 and r.data["reverted"] == "copy removed"
    assert r.data["message"] == "the live database was never changed" and r.data["live_schema"] == OLD
    assert not copy.exists() and not aside.exists() and not Path(str(copy) + "-wal").exists()
    assert sha256(env.db) == live_sha


def test_revert_keeps_an_unrelated_aside(env):
    token = copied(env)
    copy, aside = paths(env)
    aside.write_bytes(b"unrelated")
    # copy present + a foreign aside: not swapped (copy exists)
    r = env.call("migration", "revert", "--lock-token", token, "--json")
    assert r.rc == 0 and r.data["reverted"] == "copy removed" and aside.read_bytes() == b"unrelated"


def test_finish_done_needs_the_swap_and_removes_the_aside(env):
    token = copied(env)
    copy, aside = paths(env)
    migrate_copy(copy)
    r = env.call("migration", "finish", "--lock-token", token, "--result", "done")
    assert r.rc == 1 and "not swapped" in r.err and journal(env) is not None
    assert env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW).rc == 0
    r = env.call("migration", "finish", "--lock-token", token, "--result", "reverted")
    assert r.rc == 1 and "revert first" in r.err
    r = env.call("migration", "finish", "--lock-token", token, "--result", "done", "--message", "ok", "--json")
    assert r.rc == 0, r.err
    assert not aside.exists() and journal(env) is None
    hist = env.state / "migrations" / "20261130T101010Z.json"
    assert r.data["history"] == str(hist) and stat.S_IMODE(hist.stat().st_mode) == 0o600
    kept = json.loads(hist.read_text())
    assert kept["state"] == "done" and kept["message"] == "ok" and kept["finished"].endswith("Z")
    assert [s["step"] for s in kept["steps"]][-3:] == ["swapped", "finishing done", "done"]
    assert env.call("lock", "status").rc == 3  # finish does not release the lock
    assert dump(env.db) and status(env)["live_schema"] == NEW


def test_finish_done_again_after_an_interrupted_finish(env):
    token = copied(env)
    migrate_copy(paths(env)[0])
    assert env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW).rc == 0
    j = journal(env)
    j["steps"].append({"step": "finishing done", "at": "x"})
    j["state"] = "finishing done"
    (env.state / "migration.json").write_text(json.dumps(j))
    paths(env)[1].unlink()  # killed after removing the aside
    assert env.call("migration", "finish", "--lock-token", token, "--result", "done").rc == 0
    assert journal(env) is None


def test_finish_keeps_the_newest_20(env):
    token = take_lock(env)
    hdir = env.state / "migrations"
    hdir.mkdir(parents=True)
    for i in range(25):
        (hdir / f"old-{i:02d}.json").write_text("{}")
        os.utime(hdir / f"old-{i:02d}.json", (1000 + i, 1000 + i))
    begin(env, token, "m-new")
    assert env.call("migration", "finish", "--lock-token", token, "--result", "reverted").rc == 0
    names = sorted(p.name for p in hdir.iterdir())
    assert len(names) == 20 and "m-new.json" in names and "old-05.json" not in names and "old-06.json" in names


def test_finish_reverted_with_nothing_done(env):
    token = take_lock(env)
    begin(env, token)
    r = env.call("migration", "finish", "--lock-token", token, "--result", "reverted", "--json")
    assert r.rc == 0 and r.data["journal"]["state"] == "reverted"


# --------------------------------------------------------------------------- adopt


def adopt(env, *extra):
    return env.call("migration", "adopt", "--owner", "deploy", "--host", "ctl-2", "--play", "deploy.yml",
                    "--user", "bob", "--controller-pid", "777", "--ttl", "600", *extra, "--json")


def test_adopt_needs_an_unfinished_journal(env):
    r = adopt(env)
    assert r.rc == 1 and "no unfinished migration" in r.data["error"]
    assert not (env.state / "maintenance.lock").exists()


def test_adopt_a_stale_lock(env, tool, monkeypatch):
    old = take_lock(env, "--ttl", "1")
    begin(env, old)
    lock = env.state / "maintenance.lock"
    record = json.loads(lock.read_text())
    record["expires_epoch"] = 1.0
    lock.write_text(json.dumps(record))
    r = adopt(env)
    assert r.rc == 0, r.err
    new = r.data["token"]
    assert new != old and r.data["lock"]["id"] == tool.token_id(new) and "token" not in r.data["lock"]
    rec = json.loads(lock.read_text())
    assert (rec["owner"], rec["host"], rec["play"], rec["user"], rec["controller_pid"]) == \
        ("deploy", "ctl-2", "deploy.yml", "bob", 777)
    assert rec["ttl_seconds"] == 600 and stat.S_IMODE(lock.stat().st_mode) == 0o600
    j = journal(env)
    assert j["token_id"] == tool.token_id(new) and j["state"] == "begun"
    step = j["steps"][-1]
    assert step["step"] == "adopted" and step["user"] == "bob" and step["previous_lock"] == "stale"
    assert step["previous_token_id"] == tool.token_id(old)
    assert status(env)["lock_is_journals"] is True
    assert env.call("migration", "step", "--lock-token", old, "--name", "x").rc == 3
    assert env.call("migration", "step", "--lock-token", new, "--name", "x").rc == 0
    assert not [p for p in os.listdir(env.state) if p.startswith(".maintenance.lock")]


def test_adopt_a_free_lock_and_a_held_lock_of_the_journal(env, tool):
    token = take_lock(env)
    begin(env, token)
    r = adopt(env)  # held, not stale, but by the journal's own (dead) run
    assert r.rc == 0, r.err
    second = r.data["token"]
    env.call("lock", "break", "--force")
    r = adopt(env)
    assert r.rc == 0 and journal(env)["token_id"] == tool.token_id(r.data["token"]) != tool.token_id(second)


def test_adopt_refuses_a_lock_held_by_another_run(env):
    token = take_lock(env)
    begin(env, token)
    env.call("lock", "break", "--force")
    r = env.call("lock", "acquire", "--owner", "backup", "--host", "web1", "--play", "backup.yml", "--json")
    other = json.loads((env.state / "maintenance.lock").read_text())
    r = adopt(env)
    assert r.rc == 3 and "held by backup@web1 (backup.yml)" in r.data["error"]
    assert json.loads((env.state / "maintenance.lock").read_text()) == other
    assert journal(env)["steps"][-1]["step"] == "begun"


# --------------------------------------------------------------------------- the whole flow


def test_whole_flow_as_the_play_runs_it(env):
    """Subprocesses, as Ansible runs them: lock, begin, step, copy, migrate, swap, finish, release."""
    r = env.run(*ACQUIRE, "--json")
    token = r.data["token"]
    mig = ["migration"]
    assert env.run(*mig, "begin", "--lock-token", token, "--id", "r1", "--from", OLD, "--to", NEW,
                   "--set", "image=b:2", "--json").rc == 0
    assert env.run(*mig, "step", "--lock-token", token, "--name", "backend stopping", "--json").rc == 0
    c = env.run(*mig, "copy", "--lock-token", token, "--json")
    assert c.rc == 0 and c.data["command"] == "migration copy" and c.data["exit_code"] == 0
    migrate_copy(c.data["copy"])
    s = env.run(*mig, "swap", "--lock-token", token, "--expect-schema", NEW, "--json")
    assert s.rc == 0 and s.data["ok"] is True
    st = env.run(*mig, "status", "--json").data
    assert st["swapped"] and st["live_schema"] == NEW and st["journal"]["image"] == "b:2"
    assert env.run(*mig, "finish", "--lock-token", token, "--result", "done", "--json").rc == 0
    assert env.run("lock", "release", "--token", token).rc == 0
    st = env.run(*mig, "status", "--json").data
    assert st["journal"] is None and st["lock"]["state"] == "free" and st["live_schema"] == NEW


def test_copy_is_written_through_the_held_descriptor_not_a_symlink_swapped_in(env, tool, monkeypatch, tmp_path):
    """A process of the backend's uid replaces the new copy with a symlink to a root file right
    after the tool created it: root's SQLite writes must not reach that file."""
    token = take_lock(env)
    begin(env, token)
    victim = tmp_path / "root-file"
    victim.write_text("precious")
    real = tool.create_private

    def create_then_attack(path):
        fd, ident = real(path)
        if path.endswith(".migrating"):
            os.unlink(path)
            os.symlink(victim, path)
        return fd, ident

    monkeypatch.setattr(tool, "create_private", create_then_attack)
    r = env.call("migration", "copy", "--lock-token", token, "--json")
    assert r.rc == 1 and "symlink" in r.data["error"]
    assert victim.read_text() == "precious" and victim.stat().st_uid == 0
    assert journal(env)["state"] == "begun"


def test_swap_refuses_a_copy_replaced_after_its_checks(env, tool, monkeypatch):
    token = copied(env)
    copy, aside = paths(env)
    migrate_copy(copy)
    live_sha = sha256(env.db)
    real = tool.checkpoint_truncate

    def checkpoint_then_attack(path, busy, message):
        real(path, busy, message)
        if path == str(env.db):  # after the copy's checks: another file takes its name
            other = copy.with_name("other")
            other.write_bytes(copy.read_bytes())
            os.replace(other, copy)

    monkeypatch.setattr(tool, "checkpoint_truncate", checkpoint_then_attack)
    r = env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW, "--json")
    assert r.rc == 1 and "replaced" in r.data["error"]
    assert sha256(env.db) == live_sha and not aside.exists() and status(env)["swapped"] is False


# --------------------------------------------------------------------------- migration run (one process)


def run_migration(env, token, schema=NEW, sleep=0.0, timeout=60, stop_writers=False):
    """`migration run` as the play calls it: options, --json, then -- and the migration command
    (a stand-in: a few SQL statements on <db>.migrating)."""
    copy, _ = paths(env)
    args = ["migration", "run", "--lock-token", token, "--expect-schema", NEW, "--timeout", timeout,
            "--container", "mt-migrate-test", *(["--stop-writers"] if stop_writers else []), "--json",
            "--", sys.executable, "-c", MIGRATE_PY, copy, schema, sleep]
    return env.run(*args, config=False, extra_env={"MONEYTRACKER_DB_CONFIG": str(env.config)})


def test_run_copies_migrates_the_copy_checks_and_swaps(env):
    token = take_lock(env)
    begin(env, token)
    before = dump(env.db)
    stopped = env.root / "stopped"
    env.write_config(database=str(env.db), stop_command=["touch", str(stopped)])
    r = run_migration(env, token, stop_writers=True)
    assert r.rc == 0, r.err
    assert stopped.exists(), "--stop-writers runs stop_command"
    assert r.data["migration_rc"] == 0 and "upgraded on the copy" in r.data["migration_stdout"]
    assert r.data["checks"]["ok"] and r.data["checks"]["schema"] == NEW
    assert status(env)["swapped"] and status(env)["live_schema"] == NEW
    _, aside = paths(env)
    assert dump(aside) == before, "the pre-swap file is the live database as it was"
    steps = [s["step"] for s in journal(env)["steps"]]
    assert steps[1:] == ["writers stopping", "copied", "migrating", "swapping", "swapped"], steps


def test_run_with_a_failing_migration_leaves_the_live_file_and_reports_its_output(env):
    token = take_lock(env)
    begin(env, token)
    live_sha = sha256(env.db)
    r = run_migration(env, token, schema="fail")
    assert r.rc == 1
    assert "the migration on the copy failed (exit 3); the live database was not touched" in r.data["error"]
    assert r.data["migration_rc"] == 3 and "upgraded on the copy" in r.data["migration_stdout"]
    assert sha256(env.db) == live_sha
    assert journal(env)["state"] == "migration failed"
    s = status(env)
    assert not s["swapped"] and s["copy_exists"] and s["live_schema"] == OLD
    assert env.call("migration", "revert", "--lock-token", token, "--json").rc == 0
    assert not paths(env)[0].exists() and sha256(env.db) == live_sha


def test_run_kills_a_migration_past_its_timeout(env):
    token = take_lock(env)
    begin(env, token)
    live_sha = sha256(env.db)
    r = run_migration(env, token, sleep=30, timeout=1)
    assert r.rc == 1 and r.data["migration_timed_out"] is True and r.data["migration_rc"] == 124
    assert "killed after 1 s" in r.data["error"]
    assert sha256(env.db) == live_sha and not status(env)["swapped"]


def test_run_with_a_copy_that_fails_its_checks_does_not_swap(env):
    token = take_lock(env)
    begin(env, token)
    live_sha = sha256(env.db)
    r = run_migration(env, token, schema="0099")
    assert r.rc == 1 and "FAILED its checks" in r.data["error"] and "expected " + NEW in r.data["error"]
    assert sha256(env.db) == live_sha and not status(env)["swapped"]


def test_copy_refuses_when_the_volume_lacks_room_for_the_copy_and_the_migration(env, tool, monkeypatch):
    token = take_lock(env)
    begin(env, token)
    live_sha = sha256(env.db)
    monkeypatch.setattr(tool, "free_bytes", lambda path: 1 << 20)
    r = env.call("migration", "copy", "--lock-token", token, "--json")
    assert r.rc == 1 and "free" in r.data["error"] and "nothing changed" in r.data["error"]
    assert r.data["needed_bytes"] > env.db.stat().st_size * 2
    assert not paths(env)[0].exists() and sha256(env.db) == live_sha


# --------------------------------------------------------------------------- the window's shortcuts
# The copy is the live file's bytes under the write lock (not the backup API), its fsync runs
# beside the migration, and the compose file flips with the swap: each must keep every write.


def config_env(env) -> dict:
    """`migration run` takes the rest of argv as its command: the config comes by the environment."""
    return {"MONEYTRACKER_DB_CONFIG": str(env.config)}


def test_swap_refuses_when_the_live_database_was_written_after_the_copy(env):
    """A writer that runs during the migration (the backend started by hand) would lose its write
    to the swap: the swap is refused, the live file keeps the write."""
    token = copied(env)
    copy, aside = paths(env)
    migrate_copy(copy)
    con = sqlite3.connect(env.db)
    con.execute("INSERT INTO accounts(name) VALUES ('written during the migration')")
    con.commit()
    con.close()
    r = env.call("migration", "swap", "--lock-token", token, "--expect-schema", NEW, "--json")
    assert r.rc == 1 and "was written after it was copied" in r.data["error"], r.out
    assert "nothing is lost" in r.data["error"]
    assert any("written during the migration" in line for line in dump(env.db))
    assert not aside.exists() and status(env)["swapped"] is False and status(env)["live_schema"] == OLD
    assert journal(env)["steps"][-1]["step"] == "live database changed"


@pytest.mark.parametrize("kernel_copy", ["copy_file_range", "refused (EXDEV): read/write"])
def test_copy_holds_every_committed_write_with_or_without_copy_file_range(env, tool, monkeypatch, kernel_copy):
    token = take_lock(env)
    begin(env, token)
    con = sqlite3.connect(env.db)  # committed, still only in the WAL
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.executemany("INSERT INTO accounts(name) VALUES (?)", [(f"wal {i}",) for i in range(200)])
    con.commit()
    con.close()
    calls = []
    real = os.copy_file_range

    def spy(*a):
        calls.append(a[2])
        if kernel_copy != "copy_file_range":
            raise OSError(errno.EXDEV, "cross-device")
        return real(*a)

    monkeypatch.setattr(tool.os, "copy_file_range", spy)
    r = env.call("migration", "copy", "--lock-token", token, "--json")
    assert r.rc == 0, r.err
    copy, _ = paths(env)
    assert calls, "the copy tries copy_file_range first"
    assert dump(copy) == dump(env.db) and any("wal 199" in line for line in dump(copy))
    assert copy.stat().st_size == r.data["page_count"] * sqlite3.connect(copy).execute("PRAGMA page_size").fetchone()[0]
    assert sqlite3.connect(copy).execute("PRAGMA quick_check").fetchone()[0] == "ok"
    live = journal(env)["steps"][-1]["live"]
    st = env.db.stat()
    assert live == [st.st_ino, st.st_size, st.st_mtime_ns], "the swap compares the live file with this"


def test_run_stops_the_writers_and_activates_the_new_compose_file_with_the_swap(env, tmp_path):
    token = take_lock(env)
    previous, target, active = tmp_path / "compose.previous.yaml", tmp_path / "compose.target.yaml", tmp_path / "compose.yaml"
    previous.write_text("image: backend:1\n")
    target.write_text("image: backend:2\n")
    active.write_text(previous.read_text())
    begin(env, token, "20261130T111111Z", f"target_compose={target}", f"previous_compose={previous}")
    stopped = env.root / "stopped"
    env.write_config(database=str(env.db), stop_command=["touch", str(stopped)])
    copy, aside = paths(env)
    args = ["migration", "run", "--lock-token", token, "--expect-schema", NEW, "--stop-writers",
            "--activate-compose", active, "--json", "--", sys.executable, "-c", MIGRATE_PY, copy, NEW, 0]
    r = env.run(*args, config=False, extra_env=config_env(env))
    assert r.rc == 0, r.err
    assert stopped.exists() and active.read_text() == "image: backend:2\n"
    assert stat.S_IMODE(active.stat().st_mode) == 0o640 and r.data["compose_activated"] == str(active)
    steps = [s["step"] for s in journal(env)["steps"]]
    assert steps[-3:] == ["swapping", "swapped", "compose activated"], steps
    assert status(env)["swapped"] and status(env)["live_schema"] == NEW


def test_run_refuses_before_anything_without_what_its_options_need(env, tmp_path):
    token = take_lock(env)
    begin(env, token)  # no target_compose in this journal
    live_sha = sha256(env.db)
    copy, _ = paths(env)
    cmd = ["--json", "--", sys.executable, "-c", MIGRATE_PY, copy, NEW, 0]
    r = env.run("migration", "run", "--lock-token", token, "--expect-schema", NEW,
                "--activate-compose", tmp_path / "compose.yaml", *cmd, config=False, extra_env=config_env(env))
    assert r.rc == 2 and "needs the journal's target_compose" in r.data["error"] and "nothing changed" in r.data["error"]
    env.write_config(database=str(env.db), stop_command=None)
    r = env.run("migration", "run", "--lock-token", token, "--expect-schema", NEW, "--stop-writers", *cmd,
                config=False, extra_env=config_env(env))
    assert r.rc == 2 and "--stop-writers needs stop_command" in r.data["error"]
    assert sha256(env.db) == live_sha and not copy.exists() and journal(env)["state"] == "begun"


def test_run_whose_stop_command_fails_copies_nothing(env):
    token = take_lock(env)
    begin(env, token)
    live_sha = sha256(env.db)
    env.write_config(database=str(env.db), stop_command=["false"])
    copy, _ = paths(env)
    r = env.run("migration", "run", "--lock-token", token, "--expect-schema", NEW, "--stop-writers", "--json",
                "--", sys.executable, "-c", MIGRATE_PY, copy, NEW, 0, config=False, extra_env=config_env(env))
    assert r.rc == 1 and "stop_command (stopping the database writers) failed (exit 1)" in r.data["error"]
    assert sha256(env.db) == live_sha and not copy.exists() and journal(env)["state"] == "writers stopping"
