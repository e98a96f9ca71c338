"""Safe after a crash, on PostgreSQL, and the way back across a migration: the controller is killed (SIGKILL to ansible-playbook's whole
process group) at each step of the PostgreSQL migration flow that leaves a different state, while
four clients write through the edge; then the operator's next command, deploy.yml with the same
release, runs.

Each case starts from release 1.0.0 (schema 0001) with data and afterwards expects: 2.0.0 serving
schema 0002 (the rerun finished the migration when PostgreSQL had committed it, else it put the
previous backend back and migrated again), the maintenance page off, the lock free, no migration
journal open, every write answered 2xx present in PostgreSQL by id, and the rerun's output saying
what it found (the journal's step, whether the transaction had committed) and what it did.

Then rollback.yml across that migration: without app_rollback_restore it refuses and lists what
a point-in-time restore to the moment the migration stopped the writes would lose; with it,
1.0.0 serves on schema 0001 with every write answered before the maintenance window, and
without exactly the writes made on 2.0.0 (the ones listed).
"""
import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import writer_load  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api, deploy, killed_at_task, redeploy_from_scratch  # noqa: E402  pylint: disable=wrong-import-position

PROJECT = "/opt/moneytracker"
TOOL = "/usr/local/sbin/moneytracker-db"
PG = writer_load.PG_CONTAINER
V2 = "moneytracker/backend:2.0.0"
DUMP = "/root/v1-postgres.dump"

# (the task the controller is killed in, seconds after its banner, what the rerun must say)
STEPS = [
    # journal open, backup taken, maintenance page on, the backend stopping: nothing committed,
    # the previous backend comes back, then the rerun migrates
    ("Stop the backend (writes stop)", 0.3, "the migration's transaction had not committed"),
    # the migration's container running (or, on a quiet machine, done): it is removed, and what
    # PostgreSQL committed decides
    ("Migrate in one transaction (a one-off container of the new image)", 1.0, "(PostgreSQL's schema:"),
    # committed, the new backend starting: finished
    ("Start the new backend and wait until it is healthy", 1.0, "the migration's transaction HAD committed"),
]


def env():
    return dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")


def version(host):
    return api(host, "GET", "/api/version")


@pytest.fixture(scope="module")
def baseline(host):
    """Release 1.0.0 with an account; a dump of its database and its compose file to start each
    case from; the host is put back on 1.0.0 afterwards (the next test file starts there)."""
    if version(host).get("release") != "1.0.0":
        redeploy_from_scratch(host)  # another test file left another release
    assert version(host)["release"] == "1.0.0"
    api(host, "POST", "/api/accounts", {"name": "crash-" + uuid.uuid4().hex[:6]})
    host.check_output(f"docker exec -u postgres {PG} pg_dump -Fc moneytracker > {DUMP}")
    host.check_output(f"cp {PROJECT}/compose.yaml /root/v1-compose.yaml;"
                      f" rm -rf /root/v1-releases; cp -a {PROJECT}/releases /root/v1-releases")
    yield DUMP
    reset_to_v1(host)


def reset_to_v1(host):
    """Back to 1.0.0 / schema 0001 (a test fixture, not an operator procedure): the backend
    stopped, the 1.0.0 compose file and release history, the database from the dump, the backend
    started."""
    host.check_output(f"rm -rf {PROJECT}/releases; cp -a /root/v1-releases {PROJECT}/releases")
    if version(host).get("release") == "1.0.0":
        return
    host.check_output(
        f"set -e; cd {PROJECT}; docker compose stop backend; cp /root/v1-compose.yaml compose.yaml;"
        f" docker exec -i -u postgres {PG} pg_restore --clean --if-exists --single-transaction -d moneytracker < {DUMP};"
        " docker compose up -d --wait --no-deps backend;"
        " docker compose exec edge nginx -e stderr -c /etc/moneytracker-edge/nginx.conf -s reload")
    assert version(host)["release"] == "1.0.0"


@pytest.mark.parametrize("task,delay,found", STEPS, ids=[f"{s[0].split(' (')[0]} +{s[1]}s" for s in STEPS])
def test_killed_controller_then_deploy_settles_and_loses_nothing(host, baseline, task, delay, found):
    reset_to_v1(host)
    tag = "k" + uuid.uuid4().hex[:6]
    writer_load.start(host, tag)
    try:
        args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "moneytracker.deploy.migrate",
                "-e", f"app_backend_image={V2}"]
        killed_out = killed_at_task(args, "Migration | " + task, delay, env())[1]
        time.sleep(1)
        rc, out = deploy(f"app_backend_image={V2}")
    finally:
        records = writer_load.stop(host, tag)
    flat = " ".join(out.replace("''", "'").split())  # the YAML callback doubles a quote inside '...'
    assert rc == 0, f"deploy.yml after the kill failed:\n{out[-4000:]}\n--- killed run:\n{killed_out[-1500:]}"
    assert "Migration journal" in flat and found in flat, flat[-4000:]
    v = version(host)
    assert (v["release"], v["schema"]) == ("2.0.0", "0002"), v
    status = json.loads(host.check_output(f"{TOOL} migration status --json"))
    assert (status["unfinished"], status["lock"]["state"]) == (False, "free"), status
    assert not host.file(f"{PROJECT}/maintenance/on").exists
    assert host.run("docker ps -a --format '{{.Names}}' | grep -c migrate").stdout.strip() == "0"
    newest = host.check_output(f"ls {PROJECT}/releases | sort | tail -1")
    release = json.loads(host.check_output(f"cat {PROJECT}/releases/{newest}/release.json"))
    assert (release["backend_image"], release["schema_before"], release["schema_after"]) == (V2, "0001", "0002"), release
    assert release["pre_migration_backup"], release
    figures = writer_load.check(host, tag, records, database="postgres")
    writer_load.record(f"postgres crash: controller killed {delay} s into '{task}', then deploy.yml: {figures}",
                       "postgres")


def test_rollback_across_the_migration_restores_to_when_writes_stopped(host, baseline):
    reset_to_v1(host)
    tag = "r" + uuid.uuid4().hex[:6]
    writer_load.start(host, tag)
    try:
        rc, out = deploy(f"app_backend_image={V2}", playbook="migrate")
        time.sleep(2)  # writes on 2.0.0 too
    finally:
        records = writer_load.stop(host, tag)
    assert rc == 0, out[-3000:]
    writer_load.check(host, tag, records, database="postgres")
    posts = [r for r in records if r.get("m") == "POST"]
    paged = [r["t"] for r in posts if r["s"] == 503]
    assert paged, "no write met the maintenance page: the window was not under load"
    before = sorted(r["id"] for r in posts if 200 <= r["s"] < 300 and r["t"] < min(paged))
    # Started after the page was first met: served by 2.0.0 once the page went off.
    after = sorted(r["id"] for r in posts if 200 <= r["s"] < 300 and r["t"] > min(paged))
    assert before and after, (len(before), len(after))
    newest = host.check_output(f"ls {PROJECT}/releases | sort | tail -1")
    stopped_at = json.loads(host.check_output(f"cat {PROJECT}/releases/{newest}/release.json"))["writes_stopped_at"]

    rc, out = deploy(playbook="rollback")
    flat = " ".join(out.replace("''", "'").split())
    assert rc != 0 and f"PostgreSQL can be restored to {stopped_at}" in flat, flat[-3000:]
    assert f"losing the {len(after)} rows written since" in flat, flat[-3000:]
    assert "transactions ids " + ", ".join(map(str, after[:20])) in flat, flat[-3000:]
    assert version(host)["release"] == "2.0.0", "the refused rollback changed something"

    rc, out = deploy("app_rollback_restore=true", playbook="rollback")
    flat = " ".join(out.replace("''", "'").split())
    assert rc == 0 and f"PostgreSQL restored to {stopped_at}" in flat, flat[-3000:]
    v = version(host)
    assert (v["release"], v["schema"]) == ("1.0.0", "0001"), v
    ids = {int(x) for x in writer_load.pg_query(host, "SELECT id FROM transactions").split()}
    assert set(before) <= ids, f"writes answered before the window are gone: {sorted(set(before) - ids)[:10]}"
    assert not set(after) & ids, f"writes made on 2.0.0 are still there: {sorted(set(after) & ids)[:10]}"
    status = json.loads(host.check_output(f"{TOOL} migration status --json"))
    assert (status["unfinished"], status["lock"]["state"]) == (False, "free"), status
    assert not host.file(f"{PROJECT}/maintenance/on").exists
    writer_load.record(f"postgres rollback with restore to {stopped_at}: {len(before)} writes from before the "
                       f"window kept, the {len(after)} made on 2.0.0 gone, as listed", "postgres")
