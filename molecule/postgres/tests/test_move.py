"""playbooks/move_to_postgres.yml and the way back, run as docs/runbooks/move-to-postgres.md writes them.

1. From a SQLite deployment of this scenario's release (redeployed from scratch with
   app_database=sqlite) with rows written, the runbook's move while four clients write through the
   edge: every write answered 2xx (before the window, in SQLite; after it, in PostgreSQL) is in
   PostgreSQL by id exactly once; the play proves rows and checksums equal per table; a new row's id
   continues after the highest old one; the SQLite file is kept read-only and renamed, so no release
   opens it; the backups are pgBackRest's (a verified one taken); the app serves on PostgreSQL with
   the lock free and the page off; a rerun of deploy.yml changes nothing.
2. The runbook's way back: the writes since the move listed, the kept file put back, deploy.yml with
   app_database=sqlite: the app serves the SQLite data from before the move (the write made after it
   is not there: the listing named it), the backups are the SQLite tool's again.
Then the host is redeployed from scratch as converge leaves it (PostgreSQL), for the other files.
Every command of the runbook runs, as written (last test).
"""
import json
import os
import re
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import runbook_commands as rb  # noqa: E402  pylint: disable=wrong-import-position
import writer_load  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api, deploy, recap, redeploy_from_scratch  # noqa: E402  pylint: disable=wrong-import-position

TOOL = "/usr/local/sbin/moneytracker-db"
VOLUME = "/var/lib/docker/volumes/moneytracker_data/_data"
PROJECT_DIR = os.environ.get("MOLECULE_PROJECT_DIRECTORY", str(Path(__file__).resolve().parents[3]))
TRANSCRIPT = Path(PROJECT_DIR) / ".build" / "logs" / "runbooks-transcript.txt"
RUNBOOK = "move-to-postgres.md"
RAN: set[tuple[str, int]] = set()
MOVED: dict = {}


def run_as_written(host, section: str, values: dict) -> list:
    return rb.run_as_written(host, rb.section(rb.runbook(RUNBOOK), section),
                             {"<site>": os.environ["MOLECULE_INVENTORY_FILE"], **values}, PROJECT_DIR, TRANSCRIPT, RAN)


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
        results = run_as_written(host, "1. Move", {})
    finally:
        records = writer_load.stop(host, tag)
    flat = results[0].flat
    proof = re.search(r"Moved to PostgreSQL at schema \w+: accounts \d+ rows .*? equal on both sides\); "
                      r"transactions (\d+) rows \(highest id (\d+), next (\d+), sha256 \w+ equal on both sides\)", flat)
    assert proof, flat[-3000:]
    figures = writer_load.check(host, tag, records, database="postgres")
    writer_load.record(f"postgres: move from SQLite under 4 writers: {figures}", "postgres")
    assert figures["statuses"] in ([503], []), figures
    # The rows written before, in PostgreSQL; a new id continues after the highest old one.
    highest = int(proof.group(2))
    assert int(proof.group(3)) == highest + 1
    assert writer_load.pg_query(host, "SELECT count(*) FROM transactions WHERE description LIKE 'sqlite-%'") == "20"
    new = api(host, "POST", "/api/transactions", {"account_id": account["id"], "amount_cents": 1,
                                                  "description": "after-move", "occurred_on": "2026-12-01"})
    assert new["id"] > highest
    # The SQLite file: kept, renamed, read-only for root alone; no SQLite database under its name.
    kept = host.check_output(f"ls {VOLUME}").split()
    moved = [n for n in kept if n.startswith("moneytracker.db.moved-")]
    assert moved and "moneytracker.db" not in kept, kept
    f = host.file(f"{VOLUME}/{moved[0]}")
    assert (f.uid, f.mode) == (0, 0o400)
    # Backups are pgBackRest's now, the first one taken and verified; settled and serving.
    assert json.loads(host.file("/etc/moneytracker-db/config.json").content_string)["engine"] == "postgres"
    status = json.loads(host.check_output(f"{TOOL} status --json"))
    assert status["backups_count"] >= 1 and status["newest_backup"]["path"].startswith("pgbackrest:")
    assert json.loads(host.check_output(f"{TOOL} lock status --json"))["state"] == "free"
    assert not host.file("/opt/moneytracker/maintenance/on").exists
    assert json.loads(host.check_output("curl -sS http://127.0.0.1:8080/health/ready"))["status"] == "ready"
    rc, out = deploy()
    assert rc == 0 and recap(out)["changed"] == 0, out[-2500:]
    MOVED.update(highest=highest, moved=moved[0], after_move=new["id"])


def test_way_back_to_the_kept_sqlite_file(host):
    if not MOVED:
        pytest.skip("needs the move above (it failed)")
    try:
        results = run_as_written(host, "2. Back", {"<highest-id>": str(MOVED["highest"]),
                                                   "<moved-time>": MOVED["moved"].rsplit("moved-", 1)[1]})
        listing = results[0].out
        assert "after-move" in listing, listing  # the write the SQLite file does not have, named first
        assert json.loads(host.check_output(f"{TOOL} status --json"))["engine"] == "sqlite"
        count = ("sqlite3 -safe -readonly /var/lib/docker/volumes/moneytracker_data/_data/moneytracker.db "
                 "\"SELECT count(*) FROM transactions WHERE description {}\"")
        assert host.check_output(count.format("LIKE 'sqlite-%'")) == "20"
        assert host.check_output(count.format("= 'after-move'")) == "0"
        assert api(host, "GET", "/api/version")["schema"] is not None  # serving, from the SQLite file
        assert host.check_output("docker ps --format '{{.Names}}'").count("postgres") == 0
    finally:
        redeploy_from_scratch(host)  # as converge leaves it: PostgreSQL, the scenario's release


def test_every_command_of_the_runbook_ran():
    every = {(c.runbook, c.line) for c in rb.runbook(RUNBOOK)}
    assert every <= RAN, sorted(every - RAN)
