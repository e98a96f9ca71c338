"""Migrations under the lock, on a real test host, driven like an operator drives them.

The tests in this file run in order and build on each other, from the state right after
converge (release 1.0.0, one release in the history); when another test file ran before and left
another state, the host is first deployed from scratch (playbook_runs.redeploy_from_scratch):
  v1 data -> two migrate.yml at once to 2.0.0 (one migrates, the other fails naming the holder;
  the frontend answers 200 or 503 + Retry-After throughout, never an error or a hang) -> rerun
  changes nothing -> a broken release under four writers through nginx: every write answered 2xx
  is in the live database by id exactly once, the schema is unchanged, 2.0.0 serves, lock free
  -> prune with a release history keeps the pre-migration backup a rollback needs -> rollback to
  1.0.0 (refused without restore, listing the writes it would lose; then with restore: v1 serves
  the v1 data) -> a stale lock is reported and unlock.yml clears it -> two migrate.yml at once
  with waiting: one migrates, the other waits and finds nothing pending.
Output is compared with its whitespace folded: Ansible's YAML callback wraps long messages.
"""
import json
import os
import re
import subprocess
import time
import uuid

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import writer_load  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api, redeploy_from_scratch  # noqa: E402  pylint: disable=wrong-import-position

PROJECT = "/opt/moneytracker"
BASE = "http://127.0.0.1:8080"
TOOL = "/usr/local/sbin/moneytracker-db"
DB = "/var/lib/docker/volumes/moneytracker_data/_data/moneytracker.db"
V2 = "moneytracker/backend:2.0.0"
BROKEN = "moneytracker/backend:2.1.0-broken"
POLLER = r'''
import json, sys, time, urllib.request, urllib.error, os
out = open(sys.argv[1], "a", buffering=1)
deadline = time.time() + 900
while time.time() < deadline and not os.path.exists(sys.argv[1] + ".stop"):
    t0 = time.time(); rec = {"t": t0}
    try:
        r = urllib.request.urlopen("http://127.0.0.1:8080/api/transactions", timeout=5)
        rec.update(status=r.status)
    except urllib.error.HTTPError as e:
        rec.update(status=e.code, retry_after=e.headers.get("Retry-After"))
    except Exception as e:
        rec.update(status=0, error=repr(e))
    rec["seconds"] = round(time.time() - t0, 3)
    out.write(json.dumps(rec) + "\n")
    time.sleep(0.2)
'''


def playbook(name, *extra, wait=True):
    args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], f"moneytracker.deploy.{name}"]
    for e in extra:
        args += ["-e", e]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=900)
    return proc.returncode, " ".join(out.split())


def finish(proc):
    out, _ = proc.communicate(timeout=900)
    return proc.returncode, " ".join(out.split())


def dump(host):
    """The whole database as SQL, read-only (schema and rows)."""
    return host.check_output(f"sqlite3 -readonly {DB} .dump")


def descriptions(host):
    return sorted(t["description"] for t in api(host, "GET", "/api/transactions"))


def lock_state(host):
    return json.loads(host.run(f"{TOOL} lock status --json").stdout)


def as_after_converge(host) -> bool:
    """Release 1.0.0, the only one in the history, the lock free, no maintenance page."""
    try:
        release = api(host, "GET", "/api/version")["release"]
    except (AssertionError, ValueError):  # another file left the app not answering
        return False
    return (release == "1.0.0" and len(host.check_output(f"ls {PROJECT}/releases").split()) == 1
            and lock_state(host)["state"] == "free" and not host.file(f"{PROJECT}/maintenance/on").exists)


@pytest.fixture(scope="module")
def v1_rows(host):
    if not as_after_converge(host):
        redeploy_from_scratch(host)  # another test file ran first
    assert api(host, "GET", "/api/version")["release"] == "1.0.0"
    account = api(host, "POST", "/api/accounts", {"name": "savings"})
    rows = [f"v1-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    for i, d in enumerate(rows):
        api(host, "POST", "/api/transactions",
            {"account_id": account["id"], "amount_cents": 100 * (i + 1), "description": d, "occurred_on": "2026-11-01"})
    return sorted(rows)


def test_two_migrations_at_once_exactly_one_migrates(host, v1_rows):
    log = f"/tmp/poll-{uuid.uuid4().hex[:6]}.jsonl"
    host.check_output(f"cat > /tmp/poller.py <<'EOF'\n{POLLER}\nEOF")
    host.check_output(f"nohup python3 /tmp/poller.py {log} >/dev/null 2>&1 &")
    time.sleep(2)
    try:
        a = playbook("migrate", f"app_backend_image={V2}", wait=False)
        b = playbook("migrate", f"app_backend_image={V2}", wait=False)
        (rc_a, out_a), (rc_b, out_b) = finish(a), finish(b)
    finally:
        time.sleep(2)
        host.check_output(f"touch {log}.stop")
    outs = [(rc_a, out_a), (rc_b, out_b)]
    migrated = [o for rc, o in outs if rc == 0 and "Migrated 0001 -> 0002" in o]
    assert len(migrated) == 1, [o[-2500:] for _, o in outs]
    other_rc, other = [x for x in outs if x[1] is not migrated[0]][0]
    assert other_rc != 0 and "held by" in other and "since" in other, other[-2500:]

    version = api(host, "GET", "/api/version")
    assert (version["release"], version["schema"]) == ("2.0.0", "0002")
    assert descriptions(host) == v1_rows

    polls = [json.loads(line) for line in host.check_output(f"cat {log}").splitlines()]
    assert len(polls) > 20
    bad = [p for p in polls if p["status"] not in (200, 503) or p["seconds"] > 5]
    assert bad == [], "errors or hangs during the migration:\n" + "\n".join(
        f"+{p['t'] - polls[0]['t']:.1f}s status={p['status']} took={p['seconds']}s {p.get('error', '')}" for p in bad[:10])
    down = [p for p in polls if p["status"] == 503]
    assert down, "no maintenance answer seen during the migration"
    assert all(p.get("retry_after") == "60" for p in down)
    window = down[-1]["t"] - down[0]["t"]
    match = re.search(r"maintenance window ([0-9.]+)\s+s", migrated[0])
    figure = (f"maintenance window of the v1->v2 migration: {window:.1f} s seen by a client polling every 0.2 s, "
              f"{match.group(1) if match else '?'} s measured by the play; {len(polls)} requests, 0 errors, 0 hangs\n")
    print(figure)
    logs = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."), ".build", "logs")
    os.makedirs(logs, exist_ok=True)
    with open(os.path.join(logs, "figures-maintenance-window.txt"), "w", encoding="utf-8") as f:
        f.write(figure)
    assert lock_state(host)["state"] == "free"


def test_rerun_finds_nothing_pending_and_changes_nothing(host):
    rc, out = playbook("migrate", f"app_backend_image={V2}")
    assert rc == 0, out[-2500:]
    assert re.search(r"changed=0\s", out), out[-1500:]
    assert "Migrated" not in out


def schema(host):
    return host.check_output(f"sqlite3 -safe -readonly {DB} .schema")


def journal(host):
    return json.loads(host.check_output(f"{TOOL} migration status --json"))


def test_broken_migration_under_writers_loses_no_write(host):
    schema_before = schema(host)
    tag = "b" + uuid.uuid4().hex[:6]
    writer_load.start(host, tag)
    try:
        rc, out = playbook("migrate", f"app_backend_image={BROKEN}")
    finally:
        records = writer_load.stop(host, tag)
    assert rc != 0
    assert "The migration failed at step: Migration | Migrate a copy of the database and swap it in" in out, out[-3000:]
    assert "The live database was never changed" in out and "previous release serves again" in out, out[-3000:]
    assert "FAILED (database now at 0002)" in out  # the migration's own output is in the message
    backup = re.search(r"Backup taken before the window: (\S+)\.", out).group(1)
    assert host.file(backup).exists
    figures = writer_load.check(host, tag, records)
    writer_load.record(f"migrate: broken migration under 4 writers: {figures}", "broken-migration")
    assert schema(host) == schema_before, "the live schema changed"
    assert api(host, "GET", "/api/version")["release"] == "2.0.0"
    assert host.check_output(f"grep -c 2.0.0 {PROJECT}/compose.yaml").strip() != "0"
    assert not host.file(f"{PROJECT}/maintenance/on").exists
    assert not host.file(f"{DB}.migrating").exists
    status = journal(host)
    assert (status["unfinished"], status["lock"]["state"]) == (False, "free")


def test_prune_keeps_the_backups_the_release_history_names(host):
    releases = [json.loads(host.check_output(f"cat {PROJECT}/releases/{r}/release.json"))
                for r in sorted(host.check_output(f"ls {PROJECT}/releases").split())]
    needed = [r["pre_migration_backup"] for r in releases if r.get("pre_migration_backup")]
    assert needed, "no release names a pre-migration backup"
    for _ in range(3):
        host.check_output(f"{TOOL} backup --no-offsite")
    r = host.run(f"{TOOL} prune --json")
    assert r.rc == 0, r.stdout + r.stderr
    for path in needed:
        assert host.file(path).exists, f"prune deleted {path}, which the release history names"


def test_rollback_to_v1_says_what_a_restore_loses_then_restores(host, v1_rows):
    account = api(host, "GET", "/api/accounts")[0]
    api(host, "POST", "/api/transactions", {"account_id": account["id"], "amount_cents": 7, "description": "v2-only",
                                            "occurred_on": "2026-11-02", "category": "test"})
    first_release = sorted(host.check_output(f"ls {PROJECT}/releases").split())[0]
    v1_max = int(host.check_output(
        f"sqlite3 -safe -readonly {DB} \"SELECT max(id) FROM transactions WHERE description LIKE 'v1-%'\""))
    newer = int(host.check_output(f"sqlite3 -safe -readonly {DB} \"SELECT count(*) FROM transactions WHERE id > {v1_max}\""))
    rc, out = playbook("rollback", f"app_rollback_to={first_release}")
    assert rc != 0
    assert "needs 0001" in out and f'"transactions": {newer}' in out and "app_rollback_restore=true" in out, out[-2500:]
    assert api(host, "GET", "/api/version")["release"] == "2.0.0", "a refused rollback must change nothing"

    rc, out = playbook("rollback", f"app_rollback_to={first_release}", "app_rollback_restore=true")
    assert rc == 0, out[-3000:]
    assert api(host, "GET", "/api/version")["release"] == "1.0.0"
    assert descriptions(host) == v1_rows, "v1 must serve exactly the v1 data"
    assert lock_state(host)["state"] == "free"


def test_stale_lock_is_reported_and_unlock_clears_it(host):
    host.check_output(f"{TOOL} lock acquire --owner crashed-operator --host ctl --play 'migrate (killed)' --ttl 1 --json")
    time.sleep(2)
    assert lock_state(host)["state"] == "stale"
    rc, out = playbook("migrate", f"app_backend_image={V2}")
    assert rc != 0
    assert "STALE" in out and "unlock.yml" in out and "crashed-operator" in out, out[-2500:]
    assert api(host, "GET", "/api/version")["release"] == "1.0.0"

    rc, out = playbook("unlock", "unlock_confirm=yes")
    assert rc == 0, out[-2000:]
    assert "broken (it was stale, held by crashed-operator@ctl" in out, out[-2000:]
    assert lock_state(host)["state"] == "free"


def test_cron_backup_skips_while_the_lock_is_held(host):
    token = json.loads(host.check_output(
        f"{TOOL} lock acquire --owner test --host ctl --play hold --ttl 300 --json"))["token"]
    try:
        r = host.run(f"{TOOL} backup")
        assert r.rc == 75
        assert "skipped: maintenance lock held by test@ctl (hold)" in r.stdout + r.stderr
    finally:
        host.check_output(f"{TOOL} lock release --token {token}")


def test_two_migrations_with_waiting_one_migrates_the_other_finds_nothing(host, v1_rows):
    a = playbook("migrate", f"app_backend_image={V2}", "app_migration_lock_wait=600", wait=False)
    b = playbook("migrate", f"app_backend_image={V2}", "app_migration_lock_wait=600", wait=False)
    outs = [finish(a), finish(b)]
    assert all(rc == 0 for rc, _ in outs), [o[-2500:] for _, o in outs]
    assert sum("Migrated 0001 -> 0002" in o for _, o in outs) == 1
    assert api(host, "GET", "/api/version")["release"] == "2.0.0"
    assert descriptions(host) == v1_rows
