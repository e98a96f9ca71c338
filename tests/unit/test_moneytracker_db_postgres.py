"""moneytracker-db with "engine": "postgres": the configuration's rules, --target-time, and what the
tool does with pgBackRest's answers: a backup counts only after `pgbackrest verify` passed, status
and the metrics come from the last answer it kept, a restore plan names what it would do.

pgBackRest and PostgreSQL are replaced here by a TEST DOUBLE: a `docker` script first on PATH
that answers `docker ps` with one container id and `docker exec ... pgbackrest ...` from files
in a directory (its exit code, its stdout), logging every call. It proves the tool's side (which
commands, in which order, what it records and refuses), not pgBackRest's: the Molecule scenario
`postgres` runs the real ones (test_backups.py: a backup under writers, a point-in-time recovery).
"""
from __future__ import annotations

import json
import os
import stat
import textwrap

import pytest

FAKE_DOCKER = textwrap.dedent('''\
    #!/bin/sh
    # TEST DOUBLE of the docker CLI for tests/unit/test_moneytracker_db_postgres.py
    dir="$FAKE_DOCKER_DIR"
    echo "$*" >> "$dir/calls.log"
    case "$1" in
      ps) echo c0ffee; exit 0 ;;
      exec)
        shift
        while [ "$1" != c0ffee ]; do shift; done; shift
        cmd="$1"; shift
        if [ "$cmd" = pgbackrest ]; then shift; fi   # --stanza=...
        name="$cmd-$1"
        [ -f "$dir/$name.out" ] && cat "$dir/$name.out"
        [ -f "$dir/$name.err" ] && cat "$dir/$name.err" >&2
        exit "$(cat "$dir/$name.rc" 2>/dev/null || echo 0)" ;;
      *) exit 0 ;;
    esac
''')


def info(*labels):
    return json.dumps([{
        "name": "moneytracker", "status": {"code": 0, "message": "ok"},
        "archive": [{"min": "000000010000000000000001", "max": "000000010000000000000009"}],
        "backup": [{"label": label, "type": "full", "error": False,
                    "timestamp": {"start": 1796000000 + 100 * i, "stop": 1796000010 + 100 * i},
                    "info": {"size": 31000000, "repository": {"delta": 3700000, "size": 3700000}}}
                   for i, label in enumerate(labels)],
    }])


@pytest.fixture
def pg(env, tmp_path):
    fake = tmp_path / "fake-docker"
    fake.mkdir()
    script = fake / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env.write_config(database=None, volume="moneytracker_data", database_name="moneytracker.db", engine="postgres",
                     postgres={"project": "moneytracker", "project_dir": "/opt/moneytracker", "service": "postgres",
                               "stanza": "moneytracker", "repo_dir": str(tmp_path)},
                     stop_command=["true"], start_command=["true"])
    extra = {"PATH": f"{fake}:{os.environ['PATH']}", "FAKE_DOCKER_DIR": str(fake)}

    def answer(name, out="", rc=0, err=""):
        (fake / f"{name}.out").write_text(out)
        (fake / f"{name}.err").write_text(err)
        (fake / f"{name}.rc").write_text(str(rc))

    def run(*args):
        return env.run(*args, extra_env=extra)

    def calls():
        log = fake / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    return run, answer, calls


@pytest.mark.parametrize(("overrides", "key"), [
    ({"engine": "oracle"}, "engine"),
    ({"engine": "postgres"}, "postgres"),
    ({"engine": "postgres", "postgres": {"project": "m", "service": "postgres", "stanza": "m"}}, "postgres"),
    ({"engine": "postgres",
      "postgres": {"project": "m", "service": "postgres", "stanza": "M; rm -rf /", "repo_dir": "/r"}},
     "postgres.stanza"),
    ({"engine": "postgres",
      "postgres": {"project": "m", "service": "postgres", "stanza": "m", "repo_dir": "relative"}},
     "postgres.repo_dir"),
])
def test_postgres_configuration_is_checked(env, overrides, key):
    env.write_config(**overrides)
    r = env.run("config", "--json")
    assert r.rc == 2 and r.data["key"] == key, r.out + r.err


def test_a_backup_counts_only_after_pgbackrest_verify(pg):
    run, answer, calls = pg
    answer("pgbackrest-info", info("20261201-100000F"))
    answer("pgbackrest-verify", rc=1, err="ERROR: [028]: checksum mismatch")
    r = run("backup", "--json")
    assert r.rc == 1 and "does not count as a verified backup" in r.data["error"], r.out + r.err
    assert run("status", "--json").data["backups_count"] == 0
    answer("pgbackrest-verify")
    r = run("backup", "--json")
    assert r.rc == 0 and r.data["backup"] == "20261201-100000F" and r.data["engine"] == "postgres", r.out + r.err
    # Which commands, in order: a full backup, what it produced, then the repository's verification.
    pgbackrest_calls = [c.split("pgbackrest ", 1)[1] for c in calls() if " pgbackrest " in c]
    assert pgbackrest_calls[-3:] == ["--stanza=moneytracker backup --type=full",
                                     "--stanza=moneytracker info --output=json", "--stanza=moneytracker verify"]
    status = run("status", "--json").data
    assert status["backups_count"] == 1 and status["newest_backup"]["path"] == "pgbackrest:moneytracker/20261201-100000F"
    assert status["newest_backup"]["epoch"] == 1796000010 and status["newest_backup"]["size"] == 3700000


def test_metrics_are_the_sqlite_ones(pg, env):
    run, answer = pg[:2]
    answer("pgbackrest-info", info("20261201-100000F"))
    assert run("backup").rc == 0
    prom = (env.prom / "moneytracker_db.prom").read_text()
    assert "moneytracker_db_newest_backup_timestamp_seconds 1796000010" in prom
    assert 'moneytracker_db_last_run_success{job="backup"} 1' in prom
    assert "moneytracker_db_backups_count 1" in prom


def test_expired_backups_leave_the_verified_list(pg):
    run, answer = pg[:2]
    answer("pgbackrest-info", info("20261201-100000F"))
    assert run("backup").rc == 0
    answer("pgbackrest-info", info("20261201-100000F", "20261201-110000F"))
    assert run("backup").rc == 0
    answer("pgbackrest-info", info("20261201-110000F"))
    r = run("prune", "--json")
    assert r.rc == 0 and r.data["expired"] == ["20261201-100000F"], r.out + r.err
    assert run("status", "--json").data["backups_count"] == 1


@pytest.mark.parametrize(("value", "message"), [
    ("2026-12-01 14:17:00", "has no time zone"),
    ("yesterday", "is not an ISO 8601 time"),
    ("2999-01-01T00:00:00Z", "is in the future"),
])
def test_target_time_is_refused_when_unclear(pg, value, message):
    run, answer = pg[:2]
    answer("pgbackrest-info", info("20261201-100000F"))
    assert run("backup").rc == 0
    r = run("restore", "--target-time", value, "--json")
    assert r.rc == 2 and message in r.data["error"], r.out + r.err


def test_restore_plan_names_the_target_and_changes_nothing(pg):
    run, answer, calls = pg
    r = run("restore", "--json")
    assert r.rc == 1 and "no verified PostgreSQL backup" in r.data["error"]
    answer("pgbackrest-info", info("20261201-100000F"))
    assert run("backup").rc == 0
    before = len(calls())
    r = run("restore", "--target-time", "2026-11-30T12:00:00Z", "--json")
    assert r.rc == 3 and r.data["plan"]["target_time"] == "2026-11-30 12:00:00+00:00", r.out + r.err
    assert r.data["plan"]["engine"] == "postgres" and "replaying the archived WAL" in r.data["plan"]["target"]
    assert len(calls()) == before  # a plan runs nothing in the container
    r = run("restore", "--target-time", "2026-01-01T00:00:00Z", "--json")
    assert r.rc == 2 and "before the end of the oldest verified backup" in r.data["error"]
    r = run("restore", "--backup", "20260101-000000F", "--json")
    assert r.rc == 2 and "is not a verified backup" in r.data["error"]
