"""playbooks/move_to_postgres.yml: a SQLite deployment with data moved into PostgreSQL while four clients
write through the edge until the maintenance page and after it.

From a SQLite deployment of this scenario's release (redeployed from scratch with
app_database=sqlite), rows written, then the move with the writers running: every write answered 2xx
(before the window, in SQLite; after it, in PostgreSQL) is in PostgreSQL by id exactly once; the
play proves rows and checksums equal per table; a new row's id continues after the highest old one;
the SQLite file is kept read-only and renamed, so no release opens it; the backups are pgBackRest's
(a verified one taken); the app serves on PostgreSQL with the lock free and the page off; a rerun of
deploy.yml changes nothing. Leaves the host on PostgreSQL at the scenario's release, as converge does.
"""
import json
import re
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import writer_load  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api, deploy, recap, redeploy_from_scratch  # noqa: E402  pylint: disable=wrong-import-position

TOOL = "/usr/local/sbin/moneytracker-db"
VOLUME = "/var/lib/docker/volumes/moneytracker_data/_data"


def test_move_from_sqlite_under_writers_loses_nothing(host):
    redeploy_from_scratch(host, "app_database=sqlite")
    assert host.file(f"{VOLUME}/moneytracker.db").exists
    account = api(host, "POST", "/api/accounts", {"name": "moved-" + uuid.uuid4().hex[:6]})
    for i in range(20):
        api(host, "POST", "/api/transactions", {"account_id": account["id"], "amount_cents": 100 + i,
                                                "description": f"sqlite-{i}", "occurred_on": "2026-11-30"})
    tag = "m" + uuid.uuid4().hex[:6]
    writer_load.start(host, tag)
    try:
        rc, out = deploy(playbook="move_to_postgres")
    finally:
        records = writer_load.stop(host, tag)
    flat = " ".join(out.split())
    assert rc == 0, flat[-3000:]
    assert re.search(r"Moved to PostgreSQL at schema \w+: accounts \d+ rows .* equal on both sides; transactions \d+ rows", flat), \
        flat[-3000:]
    figures = writer_load.check(host, tag, records, database="postgres")
    writer_load.record(f"postgres: move from SQLite under 4 writers: {figures}", "postgres")
    before_window = [r for r in records if 200 <= r["s"] < 300 and "id" in r]
    assert figures["statuses"] in ([503], []) and before_window, figures
    # The rows written before, in PostgreSQL; a new id continues after the highest old one.
    old_max = int(writer_load.pg_query(host, "SELECT max(id) FROM transactions"))
    assert writer_load.pg_query(host, "SELECT count(*) FROM transactions WHERE description LIKE 'sqlite-%'") == "20"
    new = api(host, "POST", "/api/transactions", {"account_id": account["id"], "amount_cents": 1,
                                                  "description": "after-move", "occurred_on": "2026-12-01"})
    assert new["id"] == old_max + 1
    # The SQLite file: kept, renamed, read-only for root alone; no SQLite database under its name.
    kept = host.check_output(f"ls {VOLUME}").split()
    moved = [n for n in kept if n.startswith("moneytracker.db.moved-")]
    assert moved and "moneytracker.db" not in kept, kept
    f = host.file(f"{VOLUME}/{moved[0]}")
    assert (f.uid, f.mode) == (0, 0o400)
    # Backups are pgBackRest's now, the first one taken and verified; settled and serving.
    config = json.loads(host.file("/etc/moneytracker-db/config.json").content_string)
    assert config["engine"] == "postgres"
    status = json.loads(host.check_output(f"{TOOL} status --json"))
    assert status["backups_count"] >= 1 and status["newest_backup"]["path"].startswith("pgbackrest:")
    assert json.loads(host.check_output(f"{TOOL} lock status --json"))["state"] == "free"
    assert not host.file("/opt/moneytracker/maintenance/on").exists
    assert json.loads(host.check_output("curl -sS http://127.0.0.1:8080/health/ready"))["status"] == "ready"
    rc, out = deploy()
    assert rc == 0 and recap(out)["changed"] == 0, out[-2500:]
