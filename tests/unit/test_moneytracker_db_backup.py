"""moneytracker-db backup / check: consistency under a live writer, kills, full disks, corruption.

Real SQLite files, real processes; no Docker. What these tests do not prove: behaviour on the
Debian 13 host's own filesystem and SQLite build (Molecule covers the deployed tool).
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import damage_database, make_db, sha256

WRITER = textwrap.dedent(
    """
    import json, os, sqlite3, sys, time
    db, out, stop = sys.argv[1:4]
    con = sqlite3.connect(db, isolation_level=None, timeout=10)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA busy_timeout=5000")
    con.execute("CREATE TABLE IF NOT EXISTS seqlog (seq INTEGER PRIMARY KEY, payload BLOB)")
    seq, log = 0, []
    open(out + ".ready", "w").close()
    while not os.path.exists(stop):
        seq += 1
        t0 = time.monotonic()
        wall = time.time()
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO seqlog VALUES (?, randomblob(512))", (seq,))
        con.execute("COMMIT")
        log.append((wall, time.time(), time.monotonic() - t0, seq))
        time.sleep(0.002)
    con.close()
    json.dump(log, open(out, "w"))
    """
)


@pytest.fixture(scope="module")
def big_db(tmp_path_factory):
    """~48 MiB of incompressible rows: a backup takes long enough to be caught in the middle."""
    path = tmp_path_factory.mktemp("big") / "big.db"
    make_db(path, transactions=12000, blob_bytes=4000)
    return path


def install_big(env, big_db):
    for side in ("-wal", "-shm"):
        Path(str(env.db) + side).unlink(missing_ok=True)
    env.db.write_bytes(big_db.read_bytes())


def test_backup_writes_verified_backup_and_manifest(env):
    r = env.run("backup", "--json", "--label", "nightly")
    assert r.rc == 0, r.err
    data = r.data
    backup = Path(data["backup"])
    manifest = json.loads(Path(data["manifest"]).read_text())
    assert backup.parent == env.backups and backup.name.startswith("moneytracker-") and backup.name.endswith(".db.zst")
    assert manifest["verified"] is True and manifest["backup_file"] == backup.name
    assert manifest["compressed"] == {"sha256": sha256(backup), "size": backup.stat().st_size}
    assert manifest["schema"] == {"alembic_version": "a1b2c3d4", "user_version": 3}
    assert manifest["row_counts"] == {"accounts": 20, "alembic_version": 1, "transactions": 500}
    assert manifest["integrity_check"] == ["ok"] and manifest["foreign_key_check"] == []
    assert manifest["page_count"] > 0 and manifest["page_size"] == 4096 and manifest["label"] == "nightly"
    for key in ("tool_version", "source", "started", "finished", "duration_seconds", "raw", "compression"):
        assert key in manifest
    assert oct(env.backups.stat().st_mode & 0o777) == "0o700"
    assert list((env.backups / ".tmp").iterdir()) == []
    # the decompressed backup is the database, byte for byte
    raw = subprocess.run(["zstd", "-dc", str(backup)], capture_output=True, check=True).stdout
    import hashlib
    assert hashlib.sha256(raw).hexdigest() == manifest["raw"]["sha256"]


def test_backup_gzip_fallback_and_full_check(env):
    env.write_config(compression="gzip")
    r = env.run("backup", "--json")
    assert r.rc == 0, r.err
    assert r.data["backup"].endswith(".db.gz") and r.data["compression"] == "gzip"
    r = env.run("check", "--full", "--json")
    assert r.rc == 0, r.err
    assert r.data["integrity_check"] == ["ok"] and r.data["backup"].endswith(".db.gz")
    assert list((env.backups / ".tmp").iterdir()) == []


def test_backup_under_continuous_writer_is_consistent_and_does_not_stall_it(env, big_db, tmp_path, capsys):
    """A real writer process (WAL, synchronous=NORMAL) commits every ~2 ms during the backup."""
    install_big(env, big_db)
    log, stop = tmp_path / "writer.json", tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(env.db), str(log), str(stop)])
    try:
        deadline = time.time() + 20
        while not Path(str(log) + ".ready").exists():
            assert time.time() < deadline, "writer did not start"
            time.sleep(0.01)
        time.sleep(1.5)  # idle window: the writer alone
        launched = time.time()
        r = env.run("backup", "--json")
        finished = time.time()
        time.sleep(0.3)
    finally:
        stop.touch()
        writer.wait(timeout=30)
    assert r.rc == 0, r.err
    commits = json.loads(log.read_text())
    restored = tmp_path / "copy.db"
    restored.write_bytes(subprocess.run(["zstd", "-dc", r.data["backup"]], capture_output=True, check=True).stdout)
    con = sqlite3.connect(restored)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    seqs = [row[0] for row in con.execute("SELECT seq FROM seqlog ORDER BY seq")]
    con.close()
    committed_before = [seq for _, end, _, seq in commits if end < launched]
    assert committed_before, "the writer committed nothing before the backup"
    # every row committed before the backup began is in it, and it is a prefix of the sequence
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= max(committed_before)
    idle = [lat for start, _, lat, _ in commits if launched - 1.5 <= start < launched]
    during = [lat for start, _, lat, _ in commits if launched <= start <= finished]
    assert during, "no commit happened during the backup"
    idle_max, during_max = max(idle), max(during)
    with capsys.disabled():  # the figures show in every run, not only with -s
        print(f"\nwriter commit latency: idle worst {idle_max * 1000:.1f} ms over {len(idle)} commits; "
              f"during backup worst {during_max * 1000:.1f} ms over {len(during)} commits; "
              f"backup of {env.db.stat().st_size / 2**20:.0f} MiB took {finished - launched:.2f} s "
              f"(copy step {r.data['copy_seconds']:.2f} s); rows in backup {len(seqs)} of {commits[-1][3]}")
    assert during_max < 2.0, f"writer stalled {during_max:.2f} s during the backup"


@pytest.mark.parametrize("stage", [".db.", ".db.zst."], ids=["during-copy", "during-compression"])
def test_kill_9_mid_backup_leaves_no_backup_and_next_run_cleans_up(env, big_db, stage):
    """Kill -9 as soon as the temp file of the stage appears in backup_dir/.tmp."""
    install_big(env, big_db)
    proc = env.popen("backup", "--json")
    tmp_dir = env.backups / ".tmp"
    deadline = time.time() + 30
    while not (tmp_dir.is_dir() and any(stage + str(proc.pid) + ".tmp" in p.name for p in tmp_dir.iterdir())):
        assert proc.poll() is None, "backup finished before it could be killed"
        assert time.time() < deadline
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stderr.close()
    leftovers = sorted(tmp_dir.iterdir())
    assert leftovers, "the killed run left nothing in .tmp (killed too late?)"
    assert env.backups_with_manifest() == []
    listed = env.run("list", "--json")
    assert listed.rc == 0 and [b for b in listed.data["backups"] if b["verified"]] == []
    time.sleep(0.01)
    r = env.run("backup", "--json")
    assert r.rc == 0, r.err
    assert sorted(r.data["leftovers_removed"]) == sorted(str(p) for p in leftovers)
    assert list(tmp_dir.iterdir()) == []
    assert len(env.backups_with_manifest()) == 1


def test_backup_filesystem_full(env, tmpfs):
    fs = tmpfs("bfs", "3m")
    env.write_config(backup_dir=str(fs / "backups"))
    env.backups = fs / "backups"
    assert env.run("backup").rc == 0  # a previous good backup (small db)
    previous = {p.name: sha256(p) for p in env.backups.iterdir() if p.is_file()}
    # grow the live db with incompressible data: the raw copy fits, the compressed one does not
    con = sqlite3.connect(env.db)
    free = os.statvfs(fs).f_bavail * os.statvfs(fs).f_frsize
    con.execute("CREATE TABLE filler (b BLOB)")
    con.executemany("INSERT INTO filler VALUES (randomblob(8000))", [()] * int(free * 0.75 / 8200))
    con.commit()
    con.close()
    live_before = sha256(env.db)
    r = env.run("backup", "--json")
    assert r.rc == 1
    assert f"backup filesystem {fs} is full" in r.err and r.err.count("\n") == 1
    assert r.data["filesystem"] == str(fs)
    assert {p.name: sha256(p) for p in env.backups.iterdir() if p.is_file()} == previous
    assert list((env.backups / ".tmp").iterdir()) == []
    assert sha256(env.db) == live_before
    # bigger than the free space: refused before writing anything
    con = sqlite3.connect(env.db)
    con.executemany("INSERT INTO filler VALUES (randomblob(8000))", [()] * 400)
    con.commit()
    con.close()
    live_before = sha256(env.db)
    r = env.run("backup")
    assert r.rc == 1 and f"backup filesystem {fs} is full" in r.err
    assert {p.name: sha256(p) for p in env.backups.iterdir() if p.is_file()} == previous
    assert sha256(env.db) == live_before
    status = env.run("status", "--json").data
    assert status["jobs"]["backup"]["result"] == "failed"
    assert status["newest_backup"]["path"].startswith(str(env.backups))


def test_corrupted_database_check_fails_backup_quarantined_prune_keeps_good(env, syslog):
    env.write_config(retention={"daily": 1, "weekly": 0, "monthly": 0})
    assert env.call("backup").rc == 0
    assert env.call("backup").rc == 0
    good = env.backups_with_manifest()
    assert len(good) == 2
    make_db(env.db.parent / "big.db", transactions=3000)
    (env.db.parent / "big.db").replace(env.db)
    for side in ("-wal", "-shm"):
        Path(str(env.db) + side).unlink(missing_ok=True)
    damage_database(env.db)

    r = env.run("check", "--quick")
    assert r.rc == 1
    assert "quick_check of the LIVE database" in r.err and "FAILED" in r.err
    assert any("check: FAILED: quick_check" in m for m in syslog.messages())

    r = env.run("backup", "--json")
    assert r.rc == 1 and "FAILED verification" in r.err and "quarantined" in r.err
    quarantined = Path(r.data["quarantined"])
    assert quarantined.parent == env.backups / "quarantine" and quarantined.exists()
    report = json.loads(Path(str(quarantined) + ".report.json").read_text())
    assert report["integrity_check"] != ["ok"]
    assert env.backups_with_manifest() == good  # not rotated in

    r = env.call("prune", "--json")
    assert r.rc == 0 and r.data["deleted"] == [] and "newest backup attempt failed" in r.data["blocked"]
    assert env.backups_with_manifest() == good
    assert quarantined.exists()

    # a good backup again: pruning resumes (daily=1 keeps only the newest of today)
    make_db(env.db.parent / "new.db")
    (env.db.parent / "new.db").replace(env.db)
    assert env.call("backup").rc == 0
    r = env.call("prune", "--json")
    assert r.rc == 0 and sorted(r.data["deleted"]) == sorted(str(p) for p in good)
    assert len(env.backups_with_manifest()) == 1
    assert quarantined.exists()  # prune never touches quarantine


def test_foreign_key_violation_fails_verification(env):
    con = sqlite3.connect(env.db)
    con.execute("INSERT INTO transactions(account_id, amount_cents) VALUES (9999, 1)")
    con.commit()
    con.close()
    r = env.run("backup", "--json")
    assert r.rc == 1 and "foreign_key_check" in r.err
    assert env.backups_with_manifest() == []


def test_missing_database(env):
    env.db.unlink()
    for side in ("-wal", "-shm"):
        Path(str(env.db) + side).unlink(missing_ok=True)
    r = env.run("backup", "--json")
    assert r.rc == 1 and "does not exist" in r.err
    r = env.run("backup", "--json", "--allow-missing")
    assert r.rc == 0 and r.data["skipped"] == "no database"


def test_check_quick_is_read_only_and_passes(env):
    before = sha256(env.db)
    r = env.run("check", "--json")
    assert r.rc == 0 and r.data["quick_check"] == ["ok"]
    assert sha256(env.db) == before


def test_check_full_without_backup_fails(env):
    r = env.call("check", "--full")
    assert r.rc == 1 and "no verified backup" in r.err


def test_volume_resolved_with_docker_volume_inspect(env, tmp_path):
    """A `docker` test double answers `docker volume inspect -f {{.Mountpoint}} NAME`."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "docker"
    fake.write_text("#!/bin/sh\n# test double for docker: only `volume inspect -f ... NAME`\n"
                    f'[ "$5" = "moneytracker_data" ] && echo "{env.db.parent}" && exit 0\n'
                    'echo "Error response from daemon: get $5: no such volume" >&2; exit 1\n')
    fake.chmod(0o755)
    path_env = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    env.write_config(database=None, volume="moneytracker_data", database_name="moneytracker.db")
    r = env.run("backup", "--json", extra_env=path_env)
    assert r.rc == 0, r.err
    assert json.loads(Path(r.data["manifest"]).read_text())["source"] == str(env.db)
    env.write_config(database=None, volume="other_volume", database_name="moneytracker.db")
    r = env.run("backup", "--json", "--allow-missing", extra_env=path_env)
    assert r.rc == 0 and r.data["skipped"] == "no database"


def test_offsite_copy_and_offsite_failure_keeps_local_backup(env, tmpfs):
    off = tmpfs("offsite", "8m")
    env.write_config(offsite={"path": str(off)})
    r = env.run("backup", "--json")
    assert r.rc == 0 and r.data["offsite"]["ok"] is True
    name = Path(r.data["backup"]).name
    assert sha256(off / name) == sha256(r.data["backup"]) and (off / (name + ".manifest.json")).exists()
    # not mounted (same filesystem as backup_dir): offsite fails on its own, the backup is good
    env.write_config(offsite={"path": str(env.root / "not-mounted")})
    (env.root / "not-mounted").mkdir()
    r = env.run("backup", "--json")
    assert r.rc == 0 and r.data["ok"] is True and r.data["offsite"]["ok"] is False
    assert "same filesystem" in r.err
    status = env.run("status", "--json").data["jobs"]
    assert status["backup"]["result"] == "ok" and status["offsite"]["result"] == "failed"


def test_shebang_and_help_list_exit_codes(env):
    assert os.access(env.tool.__file__, os.X_OK)
    assert Path(env.tool.__file__).read_text().startswith("#!/usr/bin/python3\n")
    r = env.run("--help", use_shebang=True)
    assert r.rc == 0
    for code in ("0", "1", "2", "3", "4", "75"):
        assert f"\n  {code} " in r.out
