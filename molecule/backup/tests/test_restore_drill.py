"""Restore drill through the app's API via nginx on the test host, with the collection's
playbooks run from the controller against Molecule's inventory, as an operator would:

  create an account and transactions -> backup.yml (returns the manifest) -> a transaction and
  an account written after the backup -> restore.yml without confirmation (refused, nothing
  changes) -> restore.yml -e restore_confirm=yes -> through the API the data is exactly what it was at
  the backup and the later writes are gone from the live database (but kept in the files the
  restore moved aside)."""
import json
import time

from conftest import BACKUP_DIR, api, run_playbook, task_results, tool_json


def _snapshot(host, account_id):
    return {
        "accounts": api(host, "GET", "/api/accounts"),
        "transactions": api(host, "GET", f"/api/transactions?account_id={account_id}&limit=500"),
        "balance": api(host, "GET", f"/api/accounts/{account_id}/balance"),
        "summary": api(host, "GET", "/api/summary"),
    }


def test_restore_drill(host):
    hostname = host.backend.host
    stamp = time.strftime("%Y%m%dT%H%M%S")
    account = api(host, "POST", "/api/accounts", {"name": f"drill {stamp}"})
    for amount, day, text in ((250000, "2026-01-31", "salary"), (-1999, "2026-02-01", "groceries"),
                              (-120000, "2026-02-03", "rent")):
        api(host, "POST", "/api/transactions", {"account_id": account["id"], "amount_cents": amount,
                                                "description": text, "occurred_on": day})
    before = _snapshot(host, account["id"])
    assert before["balance"] == {"account_id": account["id"], "balance_cents": 128001, "transactions": 3}

    # backup.yml returns the backup's manifest as a fact
    r = run_playbook("backup", "-e", json.dumps({"backup_label": "restore drill"}), callback="ansible.builtin.json")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    results = task_results(r.stdout, hostname)
    manifest = results["Return the manifest"]["ansible_facts"]["moneytracker_backup_manifest"]
    assert manifest["verified"] is True and manifest["label"] == "restore drill"
    assert manifest["row_counts"]["transactions"] >= 3
    backup_path = f"{BACKUP_DIR}/{manifest['backup_file']}"
    assert tool_json(host, "status")["newest_backup"]["path"] == backup_path

    # writes after the backup
    late_tx = api(host, "POST", "/api/transactions", {"account_id": account["id"], "amount_cents": -4242,
                                                      "description": "after the backup",
                                                      "occurred_on": "2026-02-04"})
    late_account = api(host, "POST", "/api/accounts", {"name": f"late {stamp}"})
    after = _snapshot(host, account["id"])
    assert after["balance"]["transactions"] == 4 and after["accounts"] != before["accounts"]

    # a chosen backup without confirmation (stdin is not a terminal, no -e restore_confirm=yes):
    # the plan names it, then the play refuses
    r = run_playbook("restore", "-e", f"restore_backup={backup_path}")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "Restore not confirmed: nothing was changed" in out, out
    assert backup_path in out and "Show what will happen" in out, out
    assert _snapshot(host, account["id"]) == after

    # confirmed: the newest verified backup (the one backup.yml took) comes back
    t0 = time.time()
    r = run_playbook("restore", "-e", "restore_confirm=yes", callback="ansible.builtin.json")
    elapsed = time.time() - t0
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr
    results = task_results(r.stdout, hostname)
    # the moneytracker_db_restore module's result (the tool's answer as structured fields)
    restored = results["Restore the backup (verify, lock, stop backend, swap or PostgreSQL recovery, start, check)"]
    assert restored["changed"] is True and not restored.get("failed") and restored["restored"] == backup_path
    assert restored["quick_check"] == ["ok"]
    print(f"restore.yml took {elapsed:.1f} s")

    # exactly the data of the backup, through nginx and the API
    assert _snapshot(host, account["id"]) == before
    ids = [t["id"] for t in api(host, "GET", f"/api/transactions?account_id={account['id']}&limit=500")]
    assert late_tx["id"] not in ids
    assert late_account["name"] not in [a["name"] for a in api(host, "GET", "/api/accounts")]
    assert host.run("curl -sS -f -m 10 http://127.0.0.1:8080/health/ready").rc == 0
    assert not host.file("/opt/moneytracker/maintenance/on").exists

    # nothing is lost for good: the later write is in the files the restore moved aside
    aside = restored["aside"][restored["database"]]
    count = host.check_output(
        f"sqlite3 -readonly {aside} \"SELECT count(*) FROM transactions WHERE description = 'after the backup'\"")
    assert count.strip() == "1"
    # and the app owns the restored file, as before
    f = host.file(restored["database"])
    assert f.uid == 10001 and f.gid == 10001
