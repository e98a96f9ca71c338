"""PostgreSQL backups with pgBackRest, driven as cron and an operator drive them: a verified backup
taken while four clients write through the edge, then a point-in-time recovery with restore.yml to a
moment between two known groups of writes. Afterwards exactly the writes answered before that moment
are in the live database (every one of them, by id), none started after it, and the app serves with
the lock free and the maintenance page off. Also: the cron jobs as installed, amcheck and pgBackRest's
own verify, and the metrics the alerts read.

Self-contained: runs on whatever release another test file left (it needs the app serving on
PostgreSQL with an account)."""
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import writer_load  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api, deploy  # noqa: E402  pylint: disable=wrong-import-position

TOOL = "/usr/local/sbin/moneytracker-db"
PROJECT = "/opt/moneytracker"


def tool(host, *args):
    return json.loads(host.check_output(f"{TOOL} {' '.join(args)} --json"))


def playbook(name, *extra):
    """ansible-playbook moneytracker.deploy.<name> (playbook_runs.deploy), its output whitespace-folded."""
    rc, out = deploy(*extra, playbook=name)
    return rc, " ".join(out.split())


def post_group(host, account_id, prefix, n=3):
    return {api(host, "POST", "/api/transactions", {"account_id": account_id, "amount_cents": 1 + i,
                                                    "description": f"{prefix}-{i}", "occurred_on": "2026-12-01"})["id"]
            for i in range(n)}


def test_cron_runs_the_same_jobs_for_postgresql(host):
    cron = host.file("/etc/cron.d/moneytracker-db").content_string
    for job in ("moneytracker-db-cron backup", "moneytracker-db-cron prune", "moneytracker-db-cron check --quick",
                "moneytracker-db-cron check --full"):
        assert job in cron, cron
    config = json.loads(host.file("/etc/moneytracker-db/config.json").content_string)
    assert config["engine"] == "postgres" and config["postgres"]["stanza"] == "moneytracker"
    # amcheck over every table and index, then pgBackRest's verify of the repository.
    full = tool(host, "check", "--full")
    assert full["ok"] and "pg_amcheck --all" in full["message"], full


def test_backup_under_writers_then_point_in_time_recovery(host):
    accounts = api(host, "GET", "/api/accounts")
    account_id = accounts[0]["id"] if accounts else api(host, "POST", "/api/accounts", {"name": "pitr"})["id"]
    tag = "p" + uuid.uuid4().hex[:6]
    writer_load.start(host, tag)
    try:
        backup = tool(host, "backup")
        assert backup["ok"] and backup["engine"] == "postgres", backup
        before = post_group(host, account_id, f"{tag}-before")
        time.sleep(1.5)
        target = host.check_output("date -u +%Y-%m-%dT%H:%M:%S.%NZ")
        target_epoch = float(host.check_output("date -u -d " + target + " +%s.%N"))
        time.sleep(1.5)
        after = post_group(host, account_id, f"{tag}-after")
    finally:
        records = writer_load.stop(host, tag)
    # Every write answered 2xx is there before the restore (the backup did not disturb the writers).
    figures = writer_load.check(host, tag, records, database="postgres")
    writer_load.record(f"postgres: backup under 4 writers: {figures}; {backup['message']}", "postgres")
    status = tool(host, "status")
    assert status["newest_backup"]["path"].endswith(backup["backup"]) and status["backups_count"] >= 1
    metrics = host.file("/var/lib/prometheus/node-exporter/moneytracker_db.prom").content_string
    assert f"moneytracker_db_newest_backup_timestamp_seconds {status['newest_backup']['epoch']}" in metrics

    rc, out = playbook("restore", f"restore_target_time={target}", "restore_confirm=yes")
    assert rc == 0, out[-3000:]
    assert f"to: {target[:19].replace('T', ' ')}" in out, out[-3000:]

    live = dict(writer_load.live_rows(host, tag, "postgres"))
    ids = {int(i) for i in writer_load.pg_query(
        host, f"SELECT id FROM transactions WHERE description LIKE '{tag}-%'").split()}
    assert before <= ids and not after & ids, (sorted(before), sorted(after), sorted(ids))
    answered_before = [r for r in records if 200 <= r["s"] < 300 and "id" in r and r["t"] + r["ms"] / 1000 < target_epoch]
    started_after = [r for r in records if 200 <= r["s"] < 300 and "id" in r and r["t"] > target_epoch]
    assert answered_before and started_after, "the writers must straddle the target time"
    missing = [r for r in answered_before if live.get(r["id"]) != r["d"]]
    assert not missing, f"{len(missing)} writes answered before the target are missing: {missing[:5]}"
    kept = [r for r in started_after if r["id"] in live]
    assert not kept, f"writes started after the target are still there: {kept[:5]}"
    writer_load.record(f"postgres: PITR to {target}: {len(answered_before)} writes answered before it present, "
                       f"{len(started_after)} started after it gone", "postgres")
    # Serving again, settled, and backups go on (on the new timeline).
    assert api(host, "GET", "/api/version")["schema"] is not None
    assert json.loads(host.check_output(f"{TOOL} lock status --json"))["state"] == "free"
    assert not host.file(f"{PROJECT}/maintenance/on").exists
    assert tool(host, "backup")["ok"]
