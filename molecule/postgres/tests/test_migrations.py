"""Migrations on PostgreSQL under writers, driven like an operator drives them (playbooks/migrate.yml).

In order, from release 1.0.0 (converge; another file's state is reset first): 1.0.0 -> 2.0.0 with
four writers through the edge the whole time (every write answered 2xx is in PostgreSQL by id,
exactly once; the schema is 0002, 2.0.0 serves, the lock is free, the page is off); then the
broken release 2.1.0-broken under writers: the play fails naming the step and saying PostgreSQL
rolled the transaction back; the schema (pg_dump --schema-only) and every row that existed before
are unchanged, every acknowledged write is there, 2.0.0 serves, lock free, page off, the
migration journal closed. No restore runs: the transaction did it.
"""
import json
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import writer_load  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api, deploy, redeploy_from_scratch  # noqa: E402  pylint: disable=wrong-import-position

PROJECT = "/opt/moneytracker"
TOOL = "/usr/local/sbin/moneytracker-db"
V2 = "moneytracker/backend:2.0.0"
BROKEN = "moneytracker/backend:2.1.0-broken"


def playbook(name, *extra):
    """ansible-playbook moneytracker.deploy.<name> (playbook_runs.deploy), its output whitespace-folded."""
    rc, out = deploy(*extra, playbook=name)
    return rc, " ".join(out.split())


def schema(host):
    """The database's schema as pg_dump prints it, without the \\restrict line (a random key per run)."""
    dump = host.check_output(f"docker exec -u postgres {writer_load.PG_CONTAINER} pg_dump --schema-only moneytracker")
    return "\n".join(line for line in dump.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def rows(host, max_id):
    return writer_load.pg_query(host, f"SELECT * FROM transactions WHERE id <= {max_id} ORDER BY id")


def settled(host):
    """Lock free, no migration journal open, maintenance page off."""
    status = json.loads(host.run(f"{TOOL} migration status --json").stdout)
    return (status["lock"]["state"] == "free" and not status["unfinished"]
            and not host.file(f"{PROJECT}/maintenance/on").exists)


@pytest.fixture(scope="module")
def v1(host):
    if api(host, "GET", "/api/version")["release"] != "1.0.0":
        redeploy_from_scratch(host)  # another test file left another release
    assert api(host, "GET", "/api/version")["release"] == "1.0.0"
    account = api(host, "POST", "/api/accounts", {"name": "v1-" + uuid.uuid4().hex[:6]})
    for i in range(3):
        api(host, "POST", "/api/transactions", {"account_id": account["id"], "amount_cents": 100 + i,
                                                "description": f"v1-{i}", "occurred_on": "2026-11-01"})
    return account


def test_upgrade_under_writers_loses_no_write(host, v1):
    tag = "u" + uuid.uuid4().hex[:6]
    writer_load.start(host, tag)
    try:
        rc, out = playbook("migrate", f"app_backend_image={V2}")
    finally:
        records = writer_load.stop(host, tag)
    assert rc == 0, out[-3000:]
    assert "Migrated 0001 -> 0002 with moneytracker/backend:2.0.0 (PostgreSQL, one transaction)" in out, out[-2000:]
    figures = writer_load.check(host, tag, records, database="postgres")
    writer_load.record(f"postgres: migration 0001 -> 0002 under 4 writers: {figures}", "postgres")
    assert api(host, "GET", "/api/version") == {"release": "2.0.0", "schema": "0002", "head": "0002",
                                                "features": ["categories"]}
    assert settled(host)


def test_broken_migration_rolls_back_by_itself_and_loses_no_write(host, v1):
    if api(host, "GET", "/api/version")["release"] != "2.0.0":
        pytest.skip("needs the upgrade above (it failed)")
    schema_before = schema(host)
    max_before = int(writer_load.pg_query(host, "SELECT max(id) FROM transactions").strip())
    rows_before = rows(host, max_before)
    tag = "b" + uuid.uuid4().hex[:6]
    writer_load.start(host, tag)
    try:
        rc, out = playbook("migrate", f"app_backend_image={BROKEN}")
    finally:
        records = writer_load.stop(host, tag)
    assert rc != 0
    assert ("The migration 0002 -> 0003 failed at step: Migration | Migrate in one transaction "
            "(a one-off container of the new image)") in out, out[-3000:]
    assert "FAILED (database now at 0002)" in out  # the migration's own output
    assert "the migration's transaction had not committed (PostgreSQL's schema: 0002)" in out, out[-3000:]
    assert ("PostgreSQL rolled the migration's transaction back: the database is at 0002, no row was changed; "
            "the previous release serves again (schema 0002) and the maintenance page is off") in out, out[-3000:]
    figures = writer_load.check(host, tag, records, database="postgres")
    writer_load.record(f"postgres: broken migration under 4 writers: {figures}", "postgres")
    assert schema(host) == schema_before, "the schema changed"
    assert rows(host, max_before) == rows_before, "rows that existed before the migration changed"
    assert api(host, "GET", "/api/version")["release"] == "2.0.0"
    assert settled(host)
    # The next deploy of the good release finds the stack as it should be: the backend that serves
    # is left alone (not restarted), the server too.
    running = "docker ps -q --no-trunc --filter label=com.docker.compose.project=moneytracker | sort"
    before = host.check_output(running)
    rc, out = playbook("deploy", f"app_backend_image={V2}")
    assert rc == 0, out[-2500:]
    assert host.check_output(running) == before
