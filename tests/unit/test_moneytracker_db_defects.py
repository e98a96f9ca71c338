"""Defects of issue 9 in moneytracker-db, one test (at least) each: a failed restore crashed with
a TypeError and lost the aside paths; root chown/chmod followed symlinks in the backend-writable
data directory; quarantine and offsite copies were world-readable; prune deleted the backups the
release history (and an unfinished migration) need; a missing backup gave a bare error."""
from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
from conftest import dump, make_db, sha256


def backup(env) -> str:
    r = env.call("backup", "--json")
    assert r.rc == 0, r.err
    return r.data["backup"]


def aside_files(env) -> list[Path]:
    return sorted(env.db.parent.glob("moneytracker.db.pre-restore-*"))


# --------------------------------------------------------------------------- 1. failed restores


def test_failed_start_command_is_a_clear_failure_that_keeps_the_aside_paths(env):
    backup(env)
    old = sha256(env.db)
    r = env.run("restore", "--yes", "--writers-stopped", "--start-command", "false", "--json")
    assert r.rc == 1
    assert "Traceback" not in r.err and "internal error" not in r.err
    data = r.data
    assert data["ok"] is False and data["database_changed"] is True
    assert "start_command failed (exit 1): false" in data["error"]
    aside = data["aside"]
    assert set(aside) <= {str(env.db), str(env.db) + "-wal", str(env.db) + "-shm"}
    assert all(Path(dst).exists() for dst in aside.values())
    assert sha256(aside[str(env.db)]) == old  # the previous live file, kept
    assert aside[str(env.db)] in data["error"]
    # plain output: the one error line names the aside file too
    r = env.run("restore", "--yes", "--writers-stopped", "--start-command", "false")
    assert r.rc == 1 and "Traceback" not in r.err
    assert "previous files aside: " in r.err and str(aside_files(env)[-1]) in r.err


def test_failed_quick_check_after_the_restore_keeps_the_aside_paths(env, tool, monkeypatch):
    backup(env)
    Path(str(env.db) + "-wal").write_bytes(b"")  # goes aside too
    monkeypatch.setattr(tool, "quick_check_file", lambda path, busy: ["row 3 missing from index x"])
    r = env.call("restore", "--yes", "--writers-stopped", "--json")
    assert r.rc == 1 and "internal error" not in r.err
    assert "quick_check FAILED" in r.data["error"] and r.data["database_changed"] is True
    assert {str(env.db), str(env.db) + "-wal"} <= set(r.data["aside"])
    for dst in r.data["aside"].values():
        assert dst in r.data["error"] and Path(dst).exists()


def test_an_io_error_after_the_swap_keeps_the_aside_paths(env, tool, monkeypatch):
    backup(env)

    def broken(path, busy):
        raise OSError(errno.EIO, "Input/output error", path)

    monkeypatch.setattr(tool, "quick_check_file", broken)
    r = env.call("restore", "--yes", "--writers-stopped", "--json")
    assert r.rc == 1 and "internal error" not in r.err
    assert "Input/output error" in r.data["error"] and r.data["database_changed"] is True
    dst = r.data["aside"][str(env.db)]
    assert dst in r.data["error"] and Path(dst).exists()


def test_a_failure_before_the_swap_says_nothing_was_moved(env):
    backup(env)
    old = sha256(env.db)
    r = env.call("restore", "--yes", "--stop-command", "false", "--json")
    assert r.rc == 1 and r.data["aside"] == {} and r.data["database_changed"] is False
    assert sha256(env.db) == old and aside_files(env) == []


# --------------------------------------------------------------------------- 2. no symlinks followed


def test_restore_never_chowns_through_a_symlink_swapped_in_for_its_temp_file(env, tool, monkeypatch, tmp_path):
    """A compromised backend (it owns the data directory) replaces the restore's temp file with a
    symlink to a root file after the decompression: the tool must not chown/chmod that file."""
    backup(env)
    os.chown(env.db, 10001, 10001)
    os.chmod(env.db, 0o660)
    victim = tmp_path / "shadow"
    victim.write_text("root:secret\n")
    os.chmod(victim, 0o600)
    real = tool.verify_backup

    def verify_then_attack(b, dst, info=None):
        report = real(b, dst, info)
        os.unlink(dst)
        os.symlink(victim, dst)
        return report

    monkeypatch.setattr(tool, "verify_backup", verify_then_attack)
    live = sha256(env.db)
    r = env.call("restore", "--yes", "--writers-stopped", "--json")
    assert r.rc == 1 and "symlink" in r.data["error"]
    st = victim.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600)
    assert sha256(env.db) == live and r.data["database_changed"] is False


def test_restore_never_chowns_another_file_swapped_in_for_its_temp_file(env, tool, monkeypatch, tmp_path):
    backup(env)
    os.chown(env.db, 10001, 10001)
    real = tool.verify_backup

    def verify_then_swap(b, dst, info=None):
        report = real(b, dst, info)
        os.unlink(dst)
        Path(dst).write_text("another file")
        return report

    monkeypatch.setattr(tool, "verify_backup", verify_then_swap)
    r = env.call("restore", "--yes", "--writers-stopped", "--json")
    assert r.rc == 1 and "replaced" in r.data["error"]


def test_restore_sets_owner_and_mode_of_the_restored_file(env):
    backup(env)
    os.chown(env.db, 10001, 10002)
    os.chmod(env.db, 0o640)
    r = env.call("restore", "--yes", "--writers-stopped", "--json")
    assert r.rc == 0, r.err
    st = env.db.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (10001, 10002, 0o640)


def test_restore_refuses_a_live_path_that_is_a_symlink(env, tmp_path):
    backup(env)
    real = tmp_path / "elsewhere.db"
    env.db.rename(real)
    env.db.symlink_to(real)
    r = env.call("restore", "--yes", "--writers-stopped", "--json")
    assert r.rc == 1 and "not a regular file" in r.data["error"]
    assert env.db.is_symlink() and real.stat().st_uid == 0


# --------------------------------------------------------------------------- 3. private copies


def test_quarantined_copy_is_0600(env):
    import sqlite3
    con = sqlite3.connect(env.db)
    con.execute("INSERT INTO transactions(account_id, amount_cents) VALUES (9999, 1)")  # FK violation
    con.commit()
    con.close()
    old_umask = os.umask(0o022)
    try:
        r = env.call("backup", "--json")
    finally:
        os.umask(old_umask)
    assert r.rc == 1
    q = Path(r.data["quarantined"])
    assert stat.S_IMODE(q.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(str(q) + ".report.json").stat().st_mode) == 0o600


def test_offsite_path_copies_are_0600(env, tmpfs):
    off = tmpfs("offsite", "8m")
    os.chmod(off, 0o755)
    env.write_config(offsite={"path": str(off)})
    old_umask = os.umask(0o022)
    try:
        r = env.call("backup", "--json")
    finally:
        os.umask(old_umask)
    assert r.rc == 0 and r.data["offsite"]["ok"] is True
    files = list(off.iterdir())
    assert len(files) == 2
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_offsite_rsync_asks_for_0600(env, tmp_path):
    """An `rsync` test double records its argv; it proves the flag the tool passes, not rsync."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "rsync.args"
    fake = bindir / "rsync"
    fake.write_text(f'#!/bin/sh\n# TEST DOUBLE for rsync: records its arguments\necho "$@" > {log}\n')
    fake.chmod(0o755)
    env.write_config(offsite={"rsync": "backup@offsite:/srv/moneytracker"})
    r = env.run("backup", "--json", extra_env={"PATH": f"{bindir}:{os.environ['PATH']}"})
    assert r.rc == 0 and r.data["offsite"]["ok"] is True
    assert "--chmod=F600" in log.read_text().split()


def test_decompressed_temp_files_are_private(env, tool, tmp_path):
    path = backup(env)
    b = [x for x in tool.scan_backups(str(env.backups)) if x.path == path][0]
    old_umask = os.umask(0)
    try:
        info: dict = {}
        tool.decompress(b.path, b.compression, str(tmp_path / "raw.db"), info)
    finally:
        os.umask(old_umask)
    st = (tmp_path / "raw.db").stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and info["ident"] == (st.st_dev, st.st_ino)
    (tmp_path / "link.db").symlink_to(tmp_path / "target")
    with pytest.raises(FileExistsError):
        tool.decompress(b.path, b.compression, str(tmp_path / "link.db"))
    assert not (tmp_path / "target").exists()


# --------------------------------------------------------------------------- 4. retention keeps what rollback needs


def write_release(releases: Path, name: str, **keys) -> None:
    (releases / name).mkdir(parents=True, exist_ok=True)
    (releases / name / "release.json").write_text(json.dumps({"id": name, **keys}, indent=2))


def test_prune_keeps_backups_named_by_releases_and_by_an_unfinished_migration(env):
    releases = env.root / "releases"
    env.write_config(retention={"daily": 1, "weekly": 0, "monthly": 0}, releases_dir=str(releases))
    paths = [backup(env) for _ in range(5)]
    write_release(releases, "20261130T101010Z", pre_migration_backup=paths[0], restored_backup=None)
    write_release(releases, "20261201T090000Z", pre_migration_backup=None, restored_backup=paths[1] + ".manifest.json")
    write_release(releases, "20261202T090000Z", pre_migration_backup=None)
    (releases / "stray-file").write_text("not a release")
    token = env.call("lock", "acquire", "--owner", "m", "--play", "p").out.strip()
    assert env.call("migration", "begin", "--lock-token", token, "--id", "m1", "--from", "a", "--to", "b",
                    "--set", f"backup={paths[2]}").rc == 0
    assert env.call("lock", "release", "--token", token).rc == 0

    r = env.call("prune", "--dry-run", "--json")
    assert r.rc == 0 and r.data["would_delete"] == [paths[3]]
    reasons = {k["path"]: k["tiers"] for k in r.data["kept"]}
    assert reasons[paths[0]] == ["release 20261130T101010Z"]
    assert reasons[paths[1]] == ["release 20261201T090000Z"]
    assert reasons[paths[2]] == ["migration m1"]
    assert reasons[paths[4]] == ["newest", "daily"]
    plain = env.call("prune", "--dry-run")
    assert f"keeps: {paths[0]} (release 20261130T101010Z)" in plain.out

    listed = {b["path"]: b["kept_by"] for b in env.call("list", "--json").data["backups"]}
    assert listed[paths[0]] == ["release 20261130T101010Z"] and listed[paths[2]] == ["migration m1"]
    assert "release 20261130T101010Z" in env.call("list").out

    r = env.call("prune", "--json")
    assert r.rc == 0 and r.data["deleted"] == [paths[3]]
    for p in (paths[0], paths[1], paths[2], paths[4]):
        assert Path(p).exists() and Path(p + ".manifest.json").exists()


def test_without_releases_dir_prune_works_as_before(env):
    env.write_config(retention={"daily": 1, "weekly": 0, "monthly": 0})
    paths = [backup(env) for _ in range(3)]
    r = env.call("prune", "--json")
    assert r.rc == 0 and sorted(r.data["deleted"]) == sorted(paths[:2])


def test_an_unreadable_release_stops_prune(env):
    releases = env.root / "releases"
    env.write_config(retention={"daily": 1, "weekly": 0, "monthly": 0}, releases_dir=str(releases))
    paths = [backup(env) for _ in range(3)]
    (releases / "20261130T101010Z").mkdir(parents=True)
    (releases / "20261130T101010Z" / "release.json").write_text("{ truncated")
    r = env.call("prune", "--json")
    assert r.rc == 0 and r.data["deleted"] == [] and "release.json is unreadable" in r.data["blocked"]
    assert all(Path(p).exists() for p in paths)


def test_releases_dir_config_key(env):
    env.write_config(releases_dir="")
    assert env.call("config", "--json").data["config"]["releases_dir"] is None
    env.write_config(releases_dir="relative/path")
    r = env.call("config")
    assert r.rc == 2 and "'releases_dir'" in r.err
    env.write_config()
    r = env.call("config", "--releases-dir", "/opt/moneytracker/releases/", "--json")
    assert r.rc == 0 and r.data["config"]["releases_dir"] == "/opt/moneytracker/releases"


@pytest.mark.parametrize("command", [["restore", "--yes", "--writers-stopped"], ["compare"]])
def test_a_missing_backup_is_named_with_what_to_do(env, command):
    backup(env)
    gone = env.backups / "moneytracker-20200101T000000Z.db.zst"
    r = env.call(*command, "--backup", str(gone), "--json")
    assert r.rc == 1
    assert str(gone) in r.data["error"] and "does not exist" in r.data["error"]
    assert "list the kept backups with `moneytracker-db list`; pass one with --backup" in r.data["error"]


def test_restore_after_prune_with_release_history(env):
    """The backup a release names survives prune and can be restored."""
    releases = env.root / "releases"
    env.write_config(retention={"daily": 1, "weekly": 0, "monthly": 0}, releases_dir=str(releases))
    first = backup(env)
    expected = dump(env.db)
    write_release(releases, "r1", pre_migration_backup=first)
    make_db(env.db.parent / "new.db", accounts=3, transactions=7)
    (env.db.parent / "new.db").replace(env.db)
    for _ in range(2):
        backup(env)
    assert env.call("prune").rc == 0
    r = env.call("restore", "--backup", first, "--yes", "--writers-stopped", "--json")
    assert r.rc == 0, r.err
    assert dump(env.db) == expected
