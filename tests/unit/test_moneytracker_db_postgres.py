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
      ps)   # ps-swarm-only: as under Docker Swarm (no Compose container; the task by its service label)
        if [ -f "$dir/ps-none" ]; then exit 0; fi
        if [ -f "$dir/ps-swarm-only" ]; then
          case "$*" in *com.docker.swarm.service.name=moneytracker_postgres*) echo c0ffee ;; esac; exit 0
        fi
        echo c0ffee; exit 0 ;;
      exec)
        shift
        stdin=""
        while [ "$1" != c0ffee ]; do [ "$1" = -i ] && stdin=yes; shift; done; shift
        cmd="$1"; shift
        if [ "$cmd" = pgbackrest ]; then shift; fi   # --stanza=...
        name="$cmd-$1"
        if [ -n "$stdin" ]; then   # SQL on stdin (psql): kept, and answered by what it asks
          sql="$(cat)"; printf '%s\\n' "$sql" >> "$dir/stdin.log"
          case "$sql" in *pg_tables*) name=psql-tables ;; *pg_xact_commit_timestamp*) name=psql-compare ;; esac
        fi
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


# --------------------------------------------------------------------------- the migration journal
# On PostgreSQL a migration runs in place in one transaction: the journal keeps no files, and what
# PostgreSQL committed (`SELECT version_num FROM alembic_version`, through the double's `sh -c psql`
# answer) says whether the migration is done (finish) or never happened (revert: nothing to undo).
OLD, NEW = "0001", "0002"


def pg_begin(run) -> str:
    token = run("lock", "acquire", "--owner", "migration", "--host", "ctl", "--play", "migrate.yml", "--json").data["token"]
    r = run("migration", "begin", "--lock-token", token, "--id", "20261201T100000Z", "--from", OLD, "--to", NEW,
            "--set", "image=moneytracker/backend:2.0.0", "--json")
    assert r.rc == 0, r.out + r.err
    return token


def test_a_postgres_journal_keeps_no_files_and_status_asks_postgres(pg):
    run, answer, calls = pg
    assert "sh -c" not in " ".join(calls())
    no_journal = run("migration", "status", "--json").data
    assert no_journal["unfinished"] is False and no_journal["live_schema"] is None
    assert not any(" sh -c " in c for c in calls()), "asked PostgreSQL with no journal open (a no-op deploy's read)"
    pg_begin(run)
    answer("sh--c", OLD + "\n")
    status = run("migration", "status", "--json").data
    assert status["journal"]["engine"] == "postgres" and "database" not in status["journal"]
    assert (status["unfinished"], status["live_schema"], status["swapped"], status["migrated"]) == (True, OLD, False, False)
    answer("sh--c", NEW + "\n")
    status = run("migration", "status", "--json").data
    assert (status["live_schema"], status["swapped"]) == (NEW, True)
    assert "the migration's transaction COMMITTED" in run("migration", "status").out
    # PostgreSQL cannot be asked: not "migrated" on a guess, and the status names why.
    answer("sh--c", "", rc=2, err="psql: error: connection to server failed")
    status = run("migration", "status", "--json").data
    assert status["swapped"] is False and "connection to server failed" in status["problems"][0], status


def test_postgres_revert_when_nothing_committed_then_finish_as_reverted(pg):
    run, answer, _calls = pg
    token = pg_begin(run)
    answer("sh--c", OLD + "\n")
    r = run("migration", "revert", "--lock-token", token, "--json")
    assert r.rc == 0 and r.data["reverted"] == "transaction rolled back" and r.data["live_schema"] == OLD, r.out + r.err
    r = run("migration", "finish", "--lock-token", token, "--result", "done", "--json")
    assert r.rc == 1 and "did not commit" in r.data["error"], r.out + r.err
    r = run("migration", "finish", "--lock-token", token, "--result", "reverted", "--json")
    assert r.rc == 0 and r.data["result"] == "reverted", r.out + r.err
    assert run("migration", "status", "--json").data["unfinished"] is False


def test_postgres_revert_after_the_commit_is_refused_and_finish_done_closes_it(pg):
    run, answer, _calls = pg
    token = pg_begin(run)
    answer("sh--c", NEW + "\n")
    r = run("migration", "revert", "--lock-token", token, "--json")
    assert r.rc == 1 and "transaction committed" in r.data["error"] and "restore.yml" in r.data["error"], r.out + r.err
    r = run("migration", "finish", "--lock-token", token, "--result", "reverted", "--json")
    assert r.rc == 1 and "cannot finish as reverted" in r.data["error"], r.out + r.err
    r = run("migration", "finish", "--lock-token", token, "--result", "done", "--json")
    assert r.rc == 0 and r.data["journal"]["steps"][-2]["live_schema"] == NEW, r.out + r.err


def test_postgres_revert_is_refused_when_postgres_cannot_be_asked(pg):
    run, answer, _calls = pg
    token = pg_begin(run)
    answer("sh--c", "", rc=2, err="psql: error: connection to server failed")
    r = run("migration", "revert", "--lock-token", token, "--json")
    assert r.rc == 1 and "cannot ask PostgreSQL for the schema" in r.data["error"], r.out + r.err
    assert run("migration", "status", "--json").data["unfinished"] is True


@pytest.mark.parametrize("args", [["copy"], ["swap", "--expect-schema", NEW]])
def test_sqlite_only_migration_actions_are_refused_on_postgres(pg, args):
    run = pg[0]
    r = run("migration", args[0], "--lock-token", "x", *args[1:], "--json")
    assert r.rc == 2 and "for SQLite" in r.data["error"], r.out + r.err


# --------------------------------------------------------------------------- compare (rollback)
def test_compare_lists_the_rows_written_after_a_time_by_commit_timestamp(pg, tmp_path):
    run, answer, calls = pg
    answer("psql-tables", "accounts\tt\nalembic_version\tf\ntransactions\tt\n")
    answer("psql-compare", "3\t0\t\n120\t2\t118,119\n")
    r = run("compare", "--target-time", "2026-12-01T10:00:00Z", "--json")
    assert r.rc == 0, r.out + r.err
    assert r.data["writes_lost"] == 2 and r.data["target_time"] == "2026-12-01 10:00:00+00:00"
    assert r.data["tables"] == {"accounts": {"live": 3, "backup": None, "new_count": 0, "new_ids": []},
                                "transactions": {"live": 120, "backup": None, "new_count": 2, "new_ids": [118, 119]}}
    # The time is a psql variable (never SQL text); one read-only snapshot; table names quoted.
    exec_call = [c for c in calls() if "since=$1" in c][-1]
    assert exec_call.endswith("2026-12-01 10:00:00+00:00")
    sql = (tmp_path / "fake-docker" / "stdin.log").read_text()
    assert "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;" in sql and "2026-12-01" not in sql
    assert 'FROM "transactions" WHERE pg_xact_commit_timestamp(xmin) > :\'since\'::timestamptz' in sql
    assert '"alembic_version"' not in sql


def test_compare_on_postgres_needs_a_time_and_names_a_missing_setting(pg):
    run, answer, _calls = pg
    r = run("compare", "--json")
    assert r.rc == 2 and "--target-time" in r.data["error"], r.out + r.err
    answer("psql-tables", "transactions\tt\n")
    answer("psql-compare", rc=3, err='ERROR:  could not get commit timestamp data\nHINT:  Make sure the '
           'configuration parameter "track_commit_timestamp" is set.')
    r = run("compare", "--target-time", "2026-12-01T10:00:00Z", "--json")
    assert r.rc == 1 and "track_commit_timestamp is off" in r.data["error"], r.out + r.err


def test_under_swarm_the_server_is_the_task_of_its_service(pg, tmp_path):
    """No Compose container: the tool finds the PostgreSQL task by com.docker.swarm.service.name."""
    run, answer, calls = pg
    (tmp_path / "fake-docker" / "ps-swarm-only").write_text("")
    answer("pgbackrest-info", info("20261201-110000F"))
    r = run("backup", "--json")
    assert r.rc == 0 and r.data["backup"] == "20261201-110000F", r.out + r.err
    ps = [c for c in calls() if c.startswith("ps ")]
    assert "label=com.docker.compose.service=postgres" in ps[0]
    assert "label=com.docker.swarm.service.name=moneytracker_postgres" in ps[1]


def test_no_server_names_both_places_it_looked(pg, tmp_path):
    run = pg[0]
    (tmp_path / "fake-docker" / "ps-none").write_text("")
    r = run("backup", "--json")
    assert r.rc != 0
    assert ("no running PostgreSQL container (compose project moneytracker, service postgres; or the Swarm "
            "service moneytracker_postgres on this node)") in r.data["error"], r.out + r.err
