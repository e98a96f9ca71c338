"""Every command of four runbooks, run as written, on the test host in the state each is for.

docs/runbooks/{roll-back-a-release,migration-failed,clear-a-stale-lock,integrity-check-failed}.md
mark their commands in ```sh on-host / ```sh on-controller blocks; molecule/shared/
runbook_commands.py extracts them. Host commands run on the test host through testinfra (the text
is handed over base64-encoded, so neither Ansible's templating nor a second layer of quoting
touches it, and bash runs it as an operator's root shell would); controller commands run here,
from the project directory, with Molecule's inventory in place of `inventories/<site>`. Every
exit code is checked against the runbook (0, or the `# exit N` written next to the command).
The placeholders get the values an operator would read off the screen (the message of the play,
the output of the command before), per the table in docs/runbooks/README.md.

Starts from the release test_migrate.py leaves (2.0.0, migrated from 1.0.0); from another one (alone
after a converge, or before test_migrate.py) it first gets there (rollback, migrate). The states, in order:
 1. roll-back-a-release: 2.0.0 migrated from 1.0.0, plus a write made on 2.0.0.
 2. migration-failed: the broken release 2.1.0-broken fails in its migration.
 3. migration-failed, "the maintenance page stays on": the broken release again, the controller
    killed (SIGKILL to its process group) while it put the previous release back.
 4. clear-a-stale-lock: migrate.yml 1.0.0 -> 2.0.0 with a 60 s lock TTL, the controller killed
    while it stops the backend (maintenance page on); the lock goes stale, the journal unfinished.
 5. clear-a-stale-lock: rollback.yml killed right after it turned the maintenance page on (a
    lock of a dead run, no journal, the page on).
 6. integrity-check-failed 2b: a byte of the newest backup flipped.
 7. integrity-check-failed 2c: a transaction of an account that does not exist, written straight
    into the live file, makes the nightly backup fail verification.
 8. integrity-check-failed 1 + 2a: rows written after the newest backup, then the live database
    damaged (the cell pointers of the page of the index on accounts.name zeroed: listing the
    accounts fails with "database disk image is malformed"); cron's check and backup fail.
The last test checks that every command of the four runbooks ran.
What it does not prove: the runbooks' prose, and the states no test here produces (a resolve
that fails on its own rather than a killed one; a controller other than this one).
Transcript of every command (for the outputs quoted in the runbooks):
.build/logs/runbooks-transcript.txt.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import runbook_commands as rb  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api, killed_at_task  # noqa: E402  pylint: disable=wrong-import-position

PROJECT = "/opt/moneytracker"
BASE = "http://127.0.0.1:8080"
TOOL = "/usr/local/sbin/moneytracker-db"
DB = "/var/lib/docker/volumes/moneytracker_data/_data/moneytracker.db"
V1 = "moneytracker/backend:1.0.0"
V2 = "moneytracker/backend:2.0.0"
BROKEN = "moneytracker/backend:2.1.0-broken"
PROJECT_DIR = os.environ.get("MOLECULE_PROJECT_DIRECTORY", str(Path(__file__).resolve().parents[3]))
TRANSCRIPT = Path(PROJECT_DIR) / ".build" / "logs" / "runbooks-transcript.txt"

RAN: set[tuple[str, int]] = set()


def env():
    return dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")


def site():
    return {"<site>": os.environ["MOLECULE_INVENTORY_FILE"]}


def transcript(text: str) -> None:
    TRANSCRIPT.parent.mkdir(parents=True, exist_ok=True)
    with open(TRANSCRIPT, "a", encoding="utf-8") as fh:
        fh.write(text)


def run_as_written(host, commands: list[rb.Command], values: dict[str, str], after=None) -> list[rb.Ran]:
    return rb.run_as_written(host, commands, values, PROJECT_DIR, TRANSCRIPT, RAN, after)


def by_text(results: list[rb.Ran], fragment: str, exact: bool = False, first: bool = False) -> rb.Ran:
    """The last (or first) result of a command (as written) that contains `fragment` (or is it)."""
    found = [r for r in results if (r.command.text == fragment if exact else fragment in r.command.text)]
    assert found, f"no command with {fragment!r} ran"
    return found[0] if first else found[-1]


# --- the test host's state -----------------------------------------------------------------

def playbook(name, *extra):
    args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], f"moneytracker.deploy.{name}"]
    for e in extra:
        args += ["-e", e]
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env(), timeout=900,
                       check=False)
    transcript(f"\n=== fixture: {' '.join(args[3:])} exit {p.returncode}\n{p.stdout[-6000:]}{p.stderr[-2000:]}")
    return p.returncode, " ".join((p.stdout + p.stderr).split())


def killed_at(name, task, delay, *extra):
    """ansible-playbook killed (SIGKILL to its process group) `delay` s after `task` starts."""
    args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], f"moneytracker.deploy.{name}"]
    for e in extra:
        args += ["-e", e]
    pid, seen = killed_at_task(args, task, delay, env())
    transcript(f"\n=== fixture: {' '.join(args[3:])} killed in {task!r}\n{seen[-3000:]}")
    return pid


def version(host):
    return api(host, "GET", "/api/version")


def write(host, description):
    accounts = api(host, "GET", "/api/accounts") or [api(host, "POST", "/api/accounts", {"name": "runbooks"})]
    account = accounts[0]
    return api(host, "POST", "/api/transactions", {"account_id": account["id"], "amount_cents": 1,
                                                   "description": description, "occurred_on": "2026-11-30"})


def tool_json(host, *args):
    return json.loads(host.run(f"{TOOL} {' '.join(args)} --json").stdout)


def releases(host):
    names = sorted(host.check_output(f"ls {PROJECT}/releases").split())
    return [json.loads(host.check_output(f"cat {PROJECT}/releases/{n}/release.json")) for n in names]


def assert_settled(host, release, schema):
    v = version(host)
    assert (v["release"], v["schema"]) == (release, schema), v
    status = tool_json(host, "migration", "status")
    assert (status["unfinished"], status["lock"]["state"]) == (False, "free"), status
    assert not host.file(f"{PROJECT}/maintenance/on").exists
    assert not host.file(f"{DB}.migrating").exists and not host.file(f"{DB}.pre-swap").exists


@pytest.fixture(scope="module", autouse=True)
def fresh_transcript():
    TRANSCRIPT.parent.mkdir(parents=True, exist_ok=True)
    TRANSCRIPT.write_text(f"runbook commands as run by {Path(__file__).name}\n", encoding="utf-8")


@pytest.fixture(scope="module")
def migrated_release(host):
    """2.0.0, migrated from 1.0.0 by the last release (test_migrate.py leaves it so)."""
    history = releases(host)
    if not (history[-1]["backend_image"] == V2 and history[-1].get("pre_migration_backup")):
        if version(host)["release"] != "1.0.0":
            rc, out = playbook("rollback", f"app_rollback_to={[r for r in history if r['schema_after'] == '0001'][-1]['id']}",
                               "app_rollback_restore=true")
            assert rc == 0, out[-3000:]
        rc, out = playbook("migrate", f"app_backend_image={V2}")
        assert rc == 0 and "Migrated 0001 -> 0002" in out, out[-3000:]
        history = releases(host)
    assert version(host)["release"] == "2.0.0"
    return history


# --- 1. roll-back-a-release ------------------------------------------------------------------

def test_roll_back_a_release_that_migrated(host, migrated_release):
    commands = rb.runbook("roll-back-a-release.md")
    current, target = migrated_release[-1], migrated_release[-2]
    assert target["schema_after"] == "0001" and current["schema_after"] == "0002"
    written = write(host, "rb-v2-only-" + uuid.uuid4().hex[:6])
    values = dict(site(), **{"<release>": target["id"]})

    def read_backup(ran, vals):  # "The pre-migration backup <path> (taken ...)" of the refusal
        m = re.search(r"The pre-migration backup (\S+) \(taken", ran.flat)
        if m:
            vals["<backup>"] = m.group(1)

    results = run_as_written(host, commands, values, after=read_backup)
    refused = by_text(results, "ansible-playbook -i inventories/<site> playbooks/rollback.yml "
                               "-e app_rollback_to=<release>", exact=True)
    assert refused.rc == 2 and "needs 0001" in refused.flat and "Nothing was changed" in refused.flat, \
        refused.flat[-2500:]
    assert values["<backup>"] == current["pre_migration_backup"]
    compare = by_text(results, "moneytracker-db compare")
    assert f"ids {written['id']}" in compare.flat or f", {written['id']}" in compare.flat, compare.out
    done = by_text(results, "app_rollback_restore=true")
    assert "Rolled back from" in done.flat and "database restored from" in done.flat, done.flat[-2500:]
    assert_settled(host, "1.0.0", "0001")
    assert "pre-restore-" in by_text(results, "ls /var/lib/docker/volumes").out


# --- 2. and 3. migration-failed ------------------------------------------------------------

def test_migration_failed(host):
    assert version(host)["release"] == "1.0.0"
    rc, out = playbook("migrate", f"app_backend_image={BROKEN}")
    assert rc != 0
    assert "The migration failed at step: Migration | Migrate a copy of the database and swap it in" in out, out[-3000:]
    assert "The live database was never changed" in out, out[-3000:]
    results = run_as_written(host, rb.section(rb.runbook("migration-failed.md"), "Check"), site())
    assert json.loads(by_text(results, "/api/version").out)["release"] == "1.0.0"
    assert "no unfinished migration" in by_text(results, "migration status").out
    assert "on" not in by_text(results, "maintenance/").out.split()
    assert ".migrating" not in by_text(results, "_data/").out and ".pre-swap" not in by_text(results, "_data/").out
    assert_settled(host, "1.0.0", "0001")


def test_migration_failed_and_the_maintenance_page_stays_on(host):
    killed_at("migrate", "Resolve | Start the previous release's backend and wait until it is healthy", 0.5,
              f"app_backend_image={BROKEN}")
    time.sleep(1)
    status = tool_json(host, "migration", "status")
    assert status["unfinished"] and not status["swapped"], status
    assert host.file(f"{PROJECT}/maintenance/on").exists
    commands = rb.runbook("migration-failed.md")
    results = run_as_written(host, rb.section(commands, "When the maintenance page stays on"), site())
    look = by_text(results, "migration status")
    assert re.match(r"migration \S+ \(0001 -> 0003\) at step '", look.out), look.out
    settled = by_text(results, "unlock.yml")
    assert "had not been swapped in" in settled.flat and "previous release serves again" in settled.flat, \
        settled.flat[-3000:]
    run_as_written(host, rb.section(commands, "Check"), site())
    assert_settled(host, "1.0.0", "0001")


# --- 4. and 5. clear-a-stale-lock ------------------------------------------------------------

def clear_a_stale_lock(host, expect_journal: bool, expect_page_left: bool):
    lock = tool_json(host, "lock", "status")
    values = dict(site(), **{"<controller-pid>": str(lock["lock"]["controller_pid"])})
    results = run_as_written(host, rb.runbook("clear-a-stale-lock.md"), values)
    look = results[0]
    assert look.command.text == "moneytracker-db lock status"
    shown = by_text(results, "ansible-playbook -i inventories/<site> playbooks/unlock.yml", exact=True)  # nobody answers
    assert "left in place (not confirmed)" in shown.flat, shown.flat[-2500:]
    confirmed = by_text(results, "unlock.yml -e unlock_confirm=yes")
    assert "broken (it was" in confirmed.flat, confirmed.flat[-2500:]
    if expect_journal:
        assert "Migration journal" in confirmed.flat and "previous release serves again" in confirmed.flat, \
            confirmed.flat[-3000:]
    else:
        assert "no unfinished migration" in confirmed.flat
    page = bool(re.search(r"maintenance_page: (\|-? )?'?ON \(", confirmed.flat))
    assert page == expect_page_left, confirmed.flat[-2500:]
    off = by_text(results, "unlock_maintenance_off=true")
    assert ("turned off" in off.flat) == expect_page_left, off.flat[-2000:]
    assert "lock: BROKEN" in by_text(results, "journalctl").out
    return look, results


def test_clear_a_stale_lock_left_by_a_controller_killed_in_a_migration(host):
    assert version(host)["release"] == "1.0.0"
    # Killed as the window opens: the journal is open, the page on, the backend not yet stopped. (A
    # kill during `moneytracker-db migration run` would not stop that host process: it would go
    # on and swap, and the unlock would finish the migration instead.)
    killed_at("migrate", "Migration | Note when the maintenance window opened", 0.0, f"app_backend_image={V2}",
              "app_migration_lock_ttl=60")
    for _ in range(90):
        if tool_json(host, "lock", "status")["state"] == "stale":
            break
        time.sleep(2)
    status = tool_json(host, "migration", "status")
    assert status["unfinished"] and status["lock"]["state"] == "stale", status
    look, _ = clear_a_stale_lock(host, expect_journal=True, expect_page_left=False)
    assert look.rc == 4 and "STALE" in look.out, look.out
    assert_settled(host, "1.0.0", "0001")


def test_clear_a_lock_and_page_left_by_a_controller_killed_in_a_rollback(host):
    # Only a rollback that restores the database shows the maintenance page (one without a restore
    # rolls out beside the running release): forward to 2.0.0 first, then a rollback to a 1.0.0
    # release with its restore, killed once its page is on.
    rc, out = playbook("migrate", f"app_backend_image={V2}")
    assert rc == 0, out[-2500:]
    history = releases(host)
    target = [r for r in history[:-1] if r["schema_after"] == "0001" and r["backend_image"] == V1][-1]
    killed_at("rollback", "Rollback | Keep the current compose file", 0.0, f"app_rollback_to={target['id']}",
              "app_rollback_restore=true")
    assert host.file(f"{PROJECT}/maintenance/on").exists
    rc, out = playbook("migrate", f"app_backend_image={V1}")  # the next run names what it found
    assert rc != 0 and "held by a run that is gone" in out and "unlock.yml -e unlock_maintenance_off=true" in out, \
        out[-2500:]
    look, _ = clear_a_stale_lock(host, expect_journal=False, expect_page_left=True)
    assert look.rc == 3, look.out
    assert_settled(host, "2.0.0", "0002")
    # Back to 1.0.0 for the tests after it: the same rollback, with nothing in its way now.
    rc, out = playbook("rollback", f"app_rollback_to={target['id']}", "app_rollback_restore=true")
    assert rc == 0, out[-2500:]
    assert_settled(host, "1.0.0", "0001")


# --- 6.-8. integrity-check-failed ------------------------------------------------------------

def test_a_damaged_backup(host):
    host.check_output(f"{TOOL} backup --label 'runbook test: to be damaged'")
    newest = tool_json(host, "status")["newest_backup"]["path"]
    host.check_output(f"python3 -c \"import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); "
                      f"b[len(b)//2]^=0xff; open(p,'r+b').write(b)\" {newest}")
    values = dict(site())

    def read_damaged(ran, vals):
        m = re.search(r"FAILED: (\S+\.db\.\w+) does not match its manifest", ran.err + ran.out)
        if m:
            vals["<damaged>"] = m.group(1)

    results = run_as_written(host, rb.section(rb.runbook("integrity-check-failed.md"), "2b"), values,
                             after=read_damaged)
    assert values["<damaged>"] == newest
    assert host.file(f"/root/damaged/{os.path.basename(newest)}").exists and not host.file(newest).exists
    scan = by_text(results, "for m in /var/backups/moneytracker")
    assert "DAMAGED" not in scan.out and "ok " in scan.out, scan.out
    assert tool_json(host, "check", "--full")["ok"]


def test_a_nightly_backup_that_fails_verification(host):
    host.check_output(f"sqlite3 -safe {DB} \"INSERT INTO transactions (account_id, amount_cents, description, "
                      "occurred_on) VALUES (999999, 1, 'orphan', '2026-11-30')\"")
    nightly = host.run(f"{TOOL} backup")  # as cron runs it
    assert nightly.rc == 1 and "FAILED verification" in nightly.stderr, nightly.stderr
    transcript(f"\n=== fixture: the nightly backup\n$ moneytracker-db backup\n{nightly.stdout}{nightly.stderr}")
    quarantined = re.search(r"copy quarantined at (\S+\.db),", nightly.stderr).group(1)
    commands = rb.section(rb.runbook("integrity-check-failed.md"), "2c")
    values = dict(site(), **{"<quarantined>": quarantined})
    rm_at = next(i for i, c in enumerate(commands) if c.text.startswith("rm "))
    looked = run_as_written(host, commands[:rm_at], values)
    assert "prune would delete nothing" in by_text(looked, "moneytracker-db list").out
    assert by_text(looked, "integrity_check").out.strip() == "ok"
    assert "transactions" in by_text(looked, "foreign_key_check").out
    assert not host.file(quarantined + "-wal").exists and not host.file(quarantined + "-shm").exists
    # The repair the runbook leaves to the app's owners: the orphan goes.
    host.check_output(f"sqlite3 -safe {DB} \"DELETE FROM transactions WHERE account_id = 999999\"")
    results = run_as_written(host, commands[rm_at:], values)
    assert not host.file(quarantined).exists
    assert "backup ok" in by_text(results, "moneytracker-db backup").out
    jobs = tool_json(host, "status")["jobs"]
    assert jobs["backup"]["result"] == "ok", jobs


def damage_the_live_database(host):
    """Zero the cell pointers of the `accounts` unique index's root page (the backend stopped
    and the WAL checkpointed first, so no newer copy of that page hides the damage)."""
    host.check_output(f"docker compose --project-directory {PROJECT} stop backend")
    try:
        host.check_output(f"""python3 - {DB} <<'EOF'
import sqlite3, sys
path = sys.argv[1]
con = sqlite3.connect(path)
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no newer copy of the page in the WAL
root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_accounts_1'").fetchone()[0]
size = con.execute("PRAGMA page_size").fetchone()[0]
con.close()
with open(path, "r+b") as fh:
    fh.seek((root - 1) * size)
    page = bytearray(fh.read(size))
    cells = int.from_bytes(page[3:5], "big")
    assert cells > 0, "the index page has no cells"
    page[8:8 + 2 * cells] = bytes(2 * cells)
    fh.seek((root - 1) * size)
    fh.write(page)
EOF
chown --reference={DB} {DB}-wal {DB}-shm 2>/dev/null || true""")
    finally:
        host.check_output(f"docker compose --project-directory {PROJECT} up -d --wait backend")


def test_the_live_database_is_damaged(host):
    commands = rb.runbook("integrity-check-failed.md")
    write(host, "before-the-damage")  # an account, whose index page gets damaged
    host.check_output(f"{TOOL} backup --label 'runbook test: the last good one'")
    after_backup = sorted(write(host, f"after-backup-{i}-{uuid.uuid4().hex[:6]}")["description"] for i in range(3))
    damage_the_live_database(host)
    assert host.run(f"curl -sS -o /dev/null -w '%{{http_code}}' {BASE}/api/accounts").stdout == "500"
    # what cron does in the night
    assert host.run(f"{TOOL} check --quick").rc == 1
    nightly = host.run(f"{TOOL} backup")
    assert nightly.rc == 1 and "FAILED verification" in nightly.stderr, nightly.stderr
    host.run("rm -rf /root/salvage")
    aside_before = {}

    def read_off(ran, vals):
        if "playbooks/restore.yml" in ran.text:
            vals["<backup>"] = re.search(r"restored: (\S+) \(taken", ran.flat).group(1)
            kept = re.search(r"kept aside \(delete by hand once sure\): ([^'\"]+)", ran.flat).group(1)
            aside = [p for p in re.findall(r"/\S+?(?=,|\s|$)", kept) if not re.search(r"-(wal|shm|journal)$", p)][0]
            vals["<aside>"] = aside
            for suffix in ("", "-wal", "-shm"):
                f = host.file(aside + suffix)
                aside_before[suffix] = f.sha256sum if f.exists else None
        if "SELECT max(id)" in ran.text:
            vals["<max-id>"] = ran.out.strip()

    values = dict(site())
    results = run_as_written(host, rb.section(commands, "1.") + rb.section(commands, "2a"), values, after=read_off)
    assert "check_quick" in by_text(results, "moneytracker-db status").out
    quick = by_text(results, "moneytracker-db check --quick", first=True)
    assert quick.rc == 1 and "quick_check of the LIVE database" in quick.err, quick.err
    assert by_text(results, "moneytracker-db check --quick").rc == 0
    # the aside file and its -wal/-shm are exactly as the restore left them
    for suffix, digest in aside_before.items():
        f = host.file(values["<aside>"] + suffix)
        assert (f.sha256sum if f.exists else None) == digest, f"the salvage changed {values['<aside>']}{suffix}"
    salvaged = by_text(results, "WHERE id > ").out
    assert [d for d in after_backup if d in salvaged] == after_backup, salvaged
    assert int(values["<max-id>"]) < min(int(line.split("|")[0]) for line in salvaged.splitlines() if line)
    status = tool_json(host, "status")
    assert status["jobs"]["backup"]["result"] == "ok" and status["jobs"]["check_quick"]["result"] == "ok", status
    metrics = host.check_output("cat /var/lib/prometheus/node-exporter/moneytracker_db.prom")
    assert 'moneytracker_db_last_run_success{job="backup"} 1' in metrics
    assert tool_json(host, "prune", "--dry-run").get("blocked") in (None, "", False)
    assert tool_json(host, "check", "--quick")["ok"]
    assert version(host)["release"] == "1.0.0"


def test_every_command_of_the_four_runbooks_ran():
    missing = [c.where_text() + ": " + c.text.splitlines()[0]
               for name in rb.tested_in("migrate") for c in rb.runbook(name) if (c.runbook, c.line) not in RAN]
    assert not missing, "commands no test ran:\n" + "\n".join(missing)
