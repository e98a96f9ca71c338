"""deploy.yml with bad PostgreSQL input on the deployed test host: it fails at preflight, names the
variable (and, for a memory limit too small for the backend's connections, the limit to set), and
changes nothing: the compose file, the secret files and the running containers are the same."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from playbook_runs import run_side_by_side  # noqa: E402  pylint: disable=wrong-import-position

CASES = [
    # 256m: max_connections 21 < 40 (3 workers x pool 5 x 2 + 10), tests/unit/test_sizing_filters.py.
    ({"app_postgres_mem_limit": "256m"}, "app_postgres_mem_limit=256m is too small for the connections the backend "
                                         "needs"),
    ({"app_postgres_mem_limit": "256m"}, "Set app_postgres_mem_limit to at least 418m"),
    ({"app_postgres_password": ""}, "app_postgres_password (the app's PostgreSQL password, needed with "
                                    "app_database=postgres) is missing"),
    ({"app_postgres_user": "postgres"}, "app_postgres_user must be a lower-case SQL name"),
    # The role's argument spec (choices) refuses it first.
    ({"app_database": "mysql"}, "value of app_database must be one of: sqlite, postgres, got: mysql"),
]
STATE = ("sha256sum /opt/moneytracker/compose.yaml /opt/moneytracker/secrets/secret_key"
         " /opt/moneytracker/secrets/postgres_password; docker ps -q --no-trunc | sort")


@pytest.fixture(scope="module")
def runs(host):
    before = host.check_output(STATE)
    cases = list(dict.fromkeys(json.dumps(case[0]) for case in CASES))
    outs = dict(zip(cases, run_side_by_side("moneytracker.deploy.deploy", [[c] for c in cases])))
    return before, host.check_output(STATE), {needle: outs[json.dumps(extra)] for extra, needle in CASES}


@pytest.mark.parametrize("needle", [c[1] for c in CASES])
def test_bad_input_fails_at_preflight_naming_it(runs, needle):
    results = runs[2]
    rc, out = results[needle]
    assert rc != 0, out
    assert " ".join(needle.split()) in " ".join(out.split()), out  # the YAML callback folds long lines
    assert "Preflight" in out and "changed=0" in out, out[-1500:]


def test_bad_input_changes_nothing(runs):
    before, after = runs[:2]
    assert after == before


def deploy(*extra):
    rc, out = run_side_by_side("moneytracker.deploy.deploy", [list(extra)])[0]
    return rc, " ".join(out.split())


def test_switching_to_sqlite_without_moving_the_data_is_refused(host):
    # Everything the deploy writes, with times (a rewritten secret file would restart PostgreSQL).
    state = (STATE + "; stat -c '%n %Y' /opt/moneytracker/secrets/* /opt/moneytracker/.staging/compose.yaml"
             " /opt/moneytracker/compose.yaml")
    before = host.check_output(state)
    rc, out = deploy("app_database=sqlite")
    assert rc != 0
    assert ("app_database is sqlite, but this project's data is in PostgreSQL (volume moneytracker_postgres) and "
            "there is no SQLite database yet: the app would start on an empty database.") in out, out[-2000:]
    assert "Nothing was changed" in out and "changed=0" in out, out[-1500:]
    assert host.check_output(state) == before
    assert not host.file("/var/lib/docker/volumes/moneytracker_data/_data/moneytracker.db").exists


def test_postgres_beside_sqlite_data_is_refused(host):
    """Another project on this host whose data is in SQLite (a volume holding moneytracker.db, as the
    sqlite deploy leaves it): app_database=postgres for it starts nothing."""
    host.check_output("docker volume create other_data >/dev/null && "
                      "printf 'SQLite format 3\\000' > $(docker volume inspect -f '{{.Mountpoint}}' other_data)/moneytracker.db")
    try:
        rc, out = deploy("app_project_name=other", "app_project_dir=/opt/other", "app_http_port=8090")
        assert rc != 0
        assert ("app_database is postgres, but this host's data is in SQLite (moneytracker.db on the volume other_data) "
                "and PostgreSQL has no data yet (no volume other_postgres)") in out, out[-2000:]
        assert "Nothing was changed" in out and "changed=0" in out, out[-1500:]
        assert not host.file("/opt/other").exists
        assert host.check_output("docker ps -aq --filter label=com.docker.compose.project=other") == ""
        assert host.run("docker volume inspect other_postgres").rc != 0
    finally:
        host.run("docker volume rm -f other_data; rm -rf /opt/other /var/lib/moneytracker-edge/other")
