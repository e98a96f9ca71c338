"""integrity_check.yml (quick and -e check_full=true) from the controller, and deploy.yml with a bad
cron schedule: it fails at preflight naming the variable, and nothing changes (recap changed=0,
the cron file byte-for-byte the same)."""
import os
import subprocess

import pytest

from conftest import CRON_FILE, run_playbook, tool_json


@pytest.mark.parametrize("extra, job", [((), "check_quick"), (("-e", "check_full=true"), "check_full")],
                         ids=["quick", "full"])
def test_integrity_check_playbook(host, extra, job):
    before = tool_json(host, "status")["jobs"].get(job, {}).get("last_run_epoch", 0)
    r = run_playbook("integrity_check", *extra)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    rec = tool_json(host, "status")["jobs"][job]
    assert rec["result"] == "ok" and rec["last_run_epoch"] > before
    assert "changed=0" in r.stdout


def test_restore_of_a_file_that_is_no_backup_changes_nothing(host):
    before = host.check_output("sha256sum /var/lib/docker/volumes/moneytracker_data/_data/moneytracker.db")
    r = run_playbook("restore", "-e", "restore_backup=/etc/hostname", "-e", "restore_confirm=yes")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "No restore plan on" in out and "not a backup file" in out and "Nothing was changed" in out, out
    assert host.check_output("sha256sum /var/lib/docker/volumes/moneytracker_data/_data/moneytracker.db") == before


BAD_SCHEDULES = [
    ("moneytracker_db_backup_schedule", "61 2 * * *", "minute '61' is not 0-59"),
    ("moneytracker_db_prune_schedule", "45 2 * *", "it has 4 field(s)"),
    ("moneytracker_db_check_full_schedule", "weekly on sunday", "it has 3 field(s)"),
    ("moneytracker_db_check_quick_schedule", "30 3 * * 8", "day of week '8' is not 0-7"),
]


@pytest.mark.parametrize("variable, value, reason", BAD_SCHEDULES, ids=[c[1] for c in BAD_SCHEDULES])
def test_bad_schedule_fails_at_preflight_and_changes_nothing(host, variable, value, reason):
    before = host.check_output(f"sha256sum {CRON_FILE} /etc/moneytracker-db/config.json")
    args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "moneytracker.deploy.deploy",
            "-e", f"{variable}='{value}'"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert f"{variable} must be a cron schedule" in out and reason in out, out
    assert "moneytracker_db : Preflight | Check the role's values" in out, out
    assert "changed=0" in out and "failed=1" in out, out
    assert host.check_output(f"sha256sum {CRON_FILE} /etc/moneytracker-db/config.json") == before
