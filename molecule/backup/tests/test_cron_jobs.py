"""Each line of /etc/cron.d/moneytracker-db, run exactly as cron would (sh -c, cron's minimal
environment plus the file's NAME=value lines, as root from HOME): a verified backup, a prune, the
quick check of the live database and the full check of the newest backup, each recorded in the
tool's status and metrics, printing nothing (nothing for cron to mail). A backup started while
the maintenance lock is held skips with exit 75 and says why in the journal; a failing job is
logged at priority err by the wrapper with its exit status.

Not proven here: that the cron daemon starts the jobs at their times (the scenario's dates never
come, so that no job fires during a test)."""
import json
import time

from conftest import BACKUP_DIR, STATE_DIR, TEXTFILE, find_job, run_as_cron, tool_json, wait_for_journal


def _status(host) -> dict:
    return json.loads(host.file(f"{STATE_DIR}/status.json").content_string)


def test_backup_line_makes_a_verified_backup(host, cron):
    t0 = time.time()
    r = run_as_cron(host, cron, find_job(cron, "backup"))
    assert r.rc == 0, (r.stdout, r.stderr)
    assert r.stdout == "" and r.stderr == "", "cron would mail this output"
    newest = tool_json(host, "status")["newest_backup"]
    assert newest["epoch"] >= t0 - 1
    manifest = json.loads(host.file(newest["path"] + ".manifest.json").content_string)
    assert manifest["verified"] is True
    assert manifest["integrity_check"] == ["ok"] and manifest["foreign_key_check"] == []
    assert manifest["source"].endswith("/moneytracker_data/_data/moneytracker.db")
    assert {"accounts", "transactions", "alembic_version"} <= set(manifest["row_counts"])
    f = host.file(newest["path"])
    assert f.user == "root" and f.mode == 0o600 and newest["path"].startswith(BACKUP_DIR + "/")
    rec = _status(host)["jobs"]["backup"]
    assert rec["result"] == "ok" and rec["last_run_epoch"] >= t0 - 1
    assert "backup: ok" in wait_for_journal(host, t0, "backup: ok", "moneytracker-db")


def test_prune_line(host, cron):
    t0 = time.time()
    r = run_as_cron(host, cron, find_job(cron, "prune"))
    assert r.rc == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)
    rec = _status(host)["jobs"]["prune"]
    assert rec["result"] == "ok" and rec["last_run_epoch"] >= t0 - 1
    assert tool_json(host, "status")["backups_count"] >= 1


def test_quick_check_line(host, cron):
    t0 = time.time()
    r = run_as_cron(host, cron, find_job(cron, "check --quick"))
    assert r.rc == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)
    rec = tool_json(host, "status")["jobs"]["check_quick"]
    assert rec["result"] == "ok" and rec["last_run_epoch"] >= t0 - 1, rec
    assert "check_quick: ok" in wait_for_journal(host, t0, "check_quick: ok", "moneytracker-db")


def test_full_check_line(host, cron):
    t0 = time.time()
    r = run_as_cron(host, cron, find_job(cron, "check --full"))
    assert r.rc == 0 and r.stdout == "" and r.stderr == "", (r.stdout, r.stderr)
    rec = tool_json(host, "status")["jobs"]["check_full"]
    assert rec["result"] == "ok" and rec["last_run_epoch"] >= t0 - 1, rec
    assert "check_full: ok" in wait_for_journal(host, t0, "check_full: ok", "moneytracker-db")


def test_backup_while_the_maintenance_lock_is_held_skips_and_says_why(host, cron):
    before = tool_json(host, "status")["backups_count"]
    lock = tool_json(host, "lock", "acquire", "--owner", "molecule-test", "--play", "test_cron_jobs",
                     "--ttl", "600", "--reason", "lock-skip test")
    try:
        t0 = time.time()
        r = run_as_cron(host, cron, find_job(cron, "backup"))
        assert r.rc == 75, (r.rc, r.stdout, r.stderr)
        assert r.stdout == "" and r.stderr == ""
        line = "backup: skipped: maintenance lock held by molecule-test@"
        log = wait_for_journal(host, t0, line, "moneytracker-db")
        assert line in log and "(test_cron_jobs)" in log, log
        assert _status(host)["jobs"]["backup"]["result"] == "skipped"
        assert tool_json(host, "status")["backups_count"] == before
    finally:
        host.run(f"/usr/local/sbin/moneytracker-db lock release --token {lock['token']}")
    assert host.run("/usr/local/sbin/moneytracker-db lock status").rc == 0


def test_a_failing_job_is_logged_with_its_exit_status(host, cron):
    # A config the tool refuses (exit 2), through the same wrapper as every cron line.
    host.check_output("echo '{\"retention\": {\"daily\": -1}}' > /tmp/mt-bad-db.json")
    t0 = time.time()
    job = dict(find_job(cron, "check --quick"))
    job["command"] = "MONEYTRACKER_DB_CONFIG=/tmp/mt-bad-db.json " + job["command"]
    r = run_as_cron(host, cron, job)
    host.run("rm -f /tmp/mt-bad-db.json")
    assert r.rc == 2 and r.stdout == "" and r.stderr == "", (r.rc, r.stdout, r.stderr)
    needle = "cron job 'moneytracker-db check --quick' FAILED with exit 2"
    log = wait_for_journal(host, t0, needle, "moneytracker-db-cron")
    assert needle in log and "'retention.daily'" in log, log
    prio = host.check_output(f"journalctl --no-pager -o json -t moneytracker-db-cron --since @{int(t0) - 1}")
    assert any(json.loads(x)["PRIORITY"] == "3" for x in prio.splitlines() if x.strip())  # err


def test_textfile_metrics(host):
    f = host.file(TEXTFILE)
    assert f.is_file
    text = f.content_string
    for metric in ('moneytracker_db_last_success_timestamp_seconds{job="backup"}',
                   'moneytracker_db_last_run_success{job="check_quick"} 1',
                   'moneytracker_db_last_run_success{job="check_full"} 1',
                   "moneytracker_db_backups_count", "moneytracker_db_newest_backup_timestamp_seconds",
                   "moneytracker_db_maintenance_lock_held 0"):
        assert metric in text, metric
