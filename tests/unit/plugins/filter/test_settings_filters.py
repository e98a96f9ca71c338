"""The preflight rules as filters (plugins/filter/settings.py), one per role, imported from the
collection as installed like test_preflight_filters.py. The end-to-end messages (through
ansible-playbook, values given as -e key=value) are in tests/unit/test_preflight_messages.py;
these show what one task per role adds: every problem at once, a secret never in a message,
and nothing crashes on a value of the wrong type."""
import pytest

SECRET = "s3cr3t-" + "x" * 40


@pytest.fixture(scope="module")
def mod(installed_filter):
    return installed_filter("settings")


def app(**changes):
    values = {
        "app_backend_image": "moneytracker/backend:2.0.0", "app_frontend_image": "moneytracker/frontend:1.0.0",
        "app_edge_image": "moneytracker/edge:1.0.0",
        "app_backend_mem_limit": "512m", "app_frontend_mem_limit": "64m", "app_backend_tmpfs_size": "64m",
        "app_frontend_tmpfs_size": "16m", "app_edge_mem_limit": "64m", "app_edge_tmpfs_size": "16m",
        "app_backend_cpus": 1, "app_frontend_cpus": "0.5", "app_edge_cpus": 0.5,
        "app_backend_pids_limit": 128, "app_frontend_pids_limit": "64", "app_edge_pids_limit": 64,
        "app_web_concurrency": 0, "app_worker_memory_mb": 80, "app_worker_reserve_mb": 64, "app_log_max_file": 3,
        "app_healthcheck_retries": 3, "app_compose_wait_timeout": 120, "app_drain_timeout": 10,
        "app_maintenance_retry_after": 30, "app_releases_keep": 3, "app_migration_lock_ttl": 3600,
        "app_migration_lock_wait": 0, "app_migration_timeout": 600,
        "app_migration_status_command": ["moneytracker-migrate", "status"],
        "app_migration_upgrade_command": ["moneytracker-migrate", "upgrade"],
        "app_log_max_size": "10m", "app_healthcheck_interval": "10s", "app_healthcheck_timeout": "3s",
        "app_healthcheck_start_period": "20s", "app_healthcheck_start_interval": "1s",
        "app_secret_key": SECRET, "app_backend_env": {"LOG_LEVEL": "info"}, "app_http_bind": "0.0.0.0",
        "app_http_port": 8080, "app_https_port": 8443, "app_backend_debug_port": 0,
        "app_image_source": "registry", "app_image_archive_dir": "", "app_registry_url": "",
        "app_registry_username": "", "app_registry_password": "",
        "app_database": "sqlite", "app_postgres_image": "moneytracker/postgres:17", "app_postgres_user": "moneytracker",
        "app_postgres_db": "moneytracker", "app_postgres_password": "", "app_postgres_mem_limit": "512m",
        "app_postgres_cpus": 1.0, "app_postgres_pids_limit": 256, "app_postgres_shm_size": "64m",
        "app_postgres_pool_size": 5, "app_postgres_stop_timeout": 60, "_web_concurrency": 3,
        "_vcpus": 2, "_published_ports": {"app_http_port": 8080, "app_https_port": 0, "app_backend_debug_port": 0},
        "_env_reserved": ["DATABASE_URL", "MONEYTRACKER_SECRET_KEY"], "_public_secret_sha256": [],
    }
    values.update(changes)
    return values


def test_good_app_values_pass(mod):
    assert mod.app_settings_problems(app()) == []


def test_every_app_problem_at_once_each_naming_its_variable(mod):
    problems = mod.app_settings_problems(app(
        app_backend_image="moneytracker/backend", app_backend_mem_limit="1x", app_backend_cpus="4",
        app_releases_keep="1", app_log_max_size="10", app_healthcheck_timeout="3", app_http_bind="localhost",
        app_http_port="70000", app_backend_env={"bad-name": 1, "DATABASE_URL": "x"}))
    joined = " ".join(problems)
    for expected in ("app_backend_image must name an image pinned", "app_backend_mem_limit must be a memory size",
                     "app_backend_cpus must be > 0 and at most the host's 2 CPUs, got 4",
                     "app_releases_keep must be an integer >= 2 (the previous release is kept for rollback) (got '1')",
                     "app_log_max_size must be a size like 10m", "app_healthcheck_timeout must be a duration",
                     "app_http_bind must be an IP address", "app_http_port must be a port number 1-65535 (got '70000')",
                     'refused: ["bad-name"]', 'refused: ["DATABASE_URL"]'):
        assert expected in joined, joined
    assert len(problems) == 9, problems


@pytest.mark.parametrize("secret", [None, "sh0rt-Zq", "x" * 40 + "'", 12345])
def test_a_bad_secret_is_named_not_printed(mod, secret):
    problems = mod.app_settings_problems(app(app_secret_key=secret))
    assert len(problems) == 1 and problems[0].startswith("app_secret_key (the backend's secret key) is missing")
    if isinstance(secret, str):
        assert secret not in problems[0]


def test_a_published_secret_is_refused_without_printing_it(mod):
    import hashlib

    problems = mod.app_settings_problems(app(_public_secret_sha256=[hashlib.sha256(SECRET.encode()).hexdigest()]))
    assert len(problems) == 1 and "is a value published in this collection" in problems[0]
    assert SECRET not in problems[0]


def test_ports_published_twice_named_once_the_numbers_are_valid(mod):
    twice = app(app_backend_debug_port=8080,
                _published_ports={"app_http_port": 8080, "app_https_port": 0, "app_backend_debug_port": "8080"})
    assert mod.app_settings_problems(twice) == [
        "port 8080 is published by both app_http_port and app_backend_debug_port; no port may be used by two "
        "services of the host: give one of them another port."]
    # An invalid number is reported as such, not compared (int() of it would fail).
    bad = app(app_backend_debug_port="x", _published_ports={"app_http_port": 8080, "app_backend_debug_port": "x"})
    assert [p[:32] for p in mod.app_settings_problems(bad)] == ["app_backend_debug_port must be a"]


def test_missing_archives_named_on_the_controller(mod, tmp_path):
    (tmp_path / "moneytracker-backend-2.0.0.tar").write_bytes(b"")
    problems = mod.app_settings_problems(app(app_image_source="archive", app_image_archive_dir=str(tmp_path)))
    assert problems == [f"app_image_source=archive, but these tarballs are missing on the controller: "
                        f"moneytracker-frontend-1.0.0.tar (in {tmp_path}). Build them (examples/moneytracker/build.sh "
                        f"--save DIR) or fix app_image_archive_dir."]


PG_PASSWORD = "pg-" + "y" * 30


def test_postgres_rules_only_with_postgres(mod):
    # With sqlite the postgres values are not checked (an empty password is the default).
    assert mod.app_settings_problems(app(app_postgres_mem_limit="1m", app_postgres_user="Bad Name")) == []
    assert mod.app_settings_problems(app(app_database="postgres", app_postgres_password=PG_PASSWORD)) == []
    (msg,) = mod.app_settings_problems(app(app_database="mysql"))
    assert msg == "app_database must be sqlite or postgres (got 'mysql')."


@pytest.mark.parametrize("password", ["", None, "abc123", "x" * 20 + "\n", "changeme-" + "x" * 20])
def test_postgres_password_missing_or_weak_is_named_not_printed(mod, password):
    (msg,) = mod.app_settings_problems(app(app_database="postgres", app_postgres_password=password))
    assert msg.startswith("app_postgres_password"), msg
    assert not password or password not in msg


def test_postgres_every_value_named(mod):
    problems = mod.app_settings_problems(app(
        app_database="postgres", app_postgres_password=PG_PASSWORD, app_postgres_image="moneytracker/postgres",
        app_postgres_user="postgres", app_postgres_db="Money-Tracker", app_postgres_mem_limit="lots",
        app_postgres_shm_size="1k", app_postgres_cpus=8, app_postgres_pool_size=0, app_postgres_stop_timeout="x",
        app_postgres_pids_limit=8))
    named = [m.split(" ", 1)[0] for m in problems]
    assert named == ["app_postgres_image", "app_postgres_user", "app_postgres_db", "app_postgres_mem_limit",
                     "app_postgres_shm_size", "app_postgres_cpus", "app_postgres_pool_size",
                     "app_postgres_stop_timeout", "app_postgres_pids_limit"], problems


def test_postgres_memory_too_small_for_the_connections_names_the_limit_and_the_fix(mod):
    # 256m: max_connections 21 (test_sizing_filters.py); 3 workers x pool 5 x 2 + 10 = 40 needed;
    # 418m: 418 - 104 - 26 - 48 = 240 / 6 = 40 connections (417m gives 39).
    (msg,) = mod.app_settings_problems(app(app_database="postgres", app_postgres_password=PG_PASSWORD,
                                           app_postgres_mem_limit="256m"))
    assert msg.startswith("app_postgres_mem_limit=256m is too small for the connections the backend needs"), msg
    assert "max_connections 21" in msg and "needs 40" in msg and "at least 418m" in msg, msg
    # What the message says to set is enough, and a smaller pool fits the smaller limit.
    assert mod.app_settings_problems(app(app_database="postgres", app_postgres_password=PG_PASSWORD,
                                         app_postgres_mem_limit="418m")) == []
    assert mod.app_settings_problems(app(app_database="postgres", app_postgres_password=PG_PASSWORD,
                                         app_postgres_mem_limit="256m", app_postgres_pool_size=1)) == []


def test_postgres_pids_limit_below_the_connections(mod):
    (msg,) = mod.app_settings_problems(app(app_database="postgres", app_postgres_password=PG_PASSWORD,
                                           app_postgres_pids_limit=64))
    assert msg.startswith("app_postgres_pids_limit=64 is below PostgreSQL's max_connections 50 + 32"), msg


def test_postgres_archive_must_be_there_too(mod, tmp_path):
    for name in ("moneytracker-backend-2.0.0.tar", "moneytracker-frontend-1.0.0.tar"):
        (tmp_path / name).write_bytes(b"x")
    values = dict(app_image_source="archive", app_image_archive_dir=str(tmp_path))
    assert mod.app_settings_problems(app(**values)) == []
    (msg,) = mod.app_settings_problems(app(app_database="postgres", app_postgres_password=PG_PASSWORD, **values))
    assert "moneytracker-postgres-17.tar" in msg, msg


def test_unknown_variables_one_message_naming_each(mod):
    known = ["app_http_port", "app_backend_mem_limit"]
    assert mod.unknown_variables(["app_http_port"], known, "app", "app_") == []
    (msg,) = mod.unknown_variables(["app_backend_mem_limt", "app_zzzz", "app_http_port"], known, "app", "app_")
    assert msg.startswith("app_backend_mem_limt is not a variable of the app role (did you mean app_backend_mem_limit?); "
                          "app_zzzz is not a variable of the app role; rename or remove it"), msg


def docker(**changes):
    values = {"docker_source": "distribution", "docker_log_max_size": "10m", "docker_log_max_file": 3,
              "docker_compose_min_version": "2.18.0", "docker_daemon_options": {},
              "_facts": {"os_family": "Debian", "distribution": "Debian", "distribution_major_version": "13",
                         "distribution_version": "13.1"}}
    values.update(changes)
    return values


def test_docker_rules(mod):
    assert mod.docker_settings_problems(docker()) == []
    old = docker(_facts={"os_family": "Debian", "distribution": "Debian", "distribution_major_version": "12",
                         "distribution_version": "12.8"})
    assert "cannot give Compose v2 on Debian 12" in mod.docker_settings_problems(old)[0]
    assert mod.docker_settings_problems(docker(docker_source="docker_ce", _facts=old["_facts"])) == []
    other = docker(_facts={"os_family": "RedHat", "distribution": "Rocky", "distribution_major_version": "9",
                           "distribution_version": "9.4"})
    assert mod.docker_settings_problems(other) == ["The docker role supports Debian 12 and 13; this host runs Rocky 9.4."]
    problems = mod.docker_settings_problems(docker(docker_log_max_file="0", docker_log_max_size="big",
                                                   docker_daemon_options={"log-driver": "local"}))
    assert len(problems) == 3, problems


def db(**changes):
    every_day = "15 2 * * *"
    values = {
        "moneytracker_db_backup_schedule": every_day, "moneytracker_db_prune_schedule": "45 2 * * *",
        "moneytracker_db_check_quick_schedule": "*/30 * * * *", "moneytracker_db_check_full_schedule": "30 3 * * sun",
        "moneytracker_db_engine": "sqlite", "moneytracker_db_backup_dir": "/var/backups/moneytracker", "moneytracker_db_state_dir": "/var/lib/moneytracker-db",
        "moneytracker_db_app_project_dir": "/opt/moneytracker", "moneytracker_db_textfile_dir": "",
        "moneytracker_db_releases_dir": "/opt/moneytracker/releases", "moneytracker_db_offsite_path": "",
        "moneytracker_db_offsite_rsync": "", "moneytracker_db_volume": "moneytracker_data",
        "moneytracker_db_database_name": "moneytracker.db", "moneytracker_db_retention_daily": 7,
        "moneytracker_db_retention_weekly": "4", "moneytracker_db_retention_monthly": 6,
        "moneytracker_db_lock_ttl_seconds": 3600, "moneytracker_db_busy_timeout_ms": 5000,
        "moneytracker_db_db_owner": "", "moneytracker_db_stop_command": ["docker", "compose", "stop"],
        "moneytracker_db_start_command": ["docker", "compose", "start"], "moneytracker_db_cron_mailto": "",
        "_cron_fields": [
            {"name": "minute", "allowed": "0-59", "re": r"^(\*|([0-5]?[0-9])(-([0-5]?[0-9]))?)(/[1-9][0-9]*)?$"},
            {"name": "hour", "allowed": "0-23", "re": r"^(\*|([01]?[0-9]|2[0-3]))(/[1-9][0-9]*)?$"},
            {"name": "day of month", "allowed": "1-31", "re": r"^(\*|(0?[1-9]|[12][0-9]|3[01]))$"},
            {"name": "month", "allowed": "1-12", "re": r"^(\*|(0?[1-9]|1[0-2]))$"},
            {"name": "day of week", "allowed": "0-7 or sun-sat", "re": r"^(\*|[0-7]|sun|mon|tue|wed|thu|fri|sat)$"}],
    }
    values.update(changes)
    return values


def test_moneytracker_db_rules(mod):
    assert mod.moneytracker_db_settings_problems(db()) == []
    assert mod.moneytracker_db_settings_problems(db(moneytracker_db_engine="postgres")) == []
    assert mod.moneytracker_db_settings_problems(db(moneytracker_db_engine="oracle")) == [
        "moneytracker_db_engine must be sqlite or postgres (got 'oracle')."]
    problems = mod.moneytracker_db_settings_problems(db(
        moneytracker_db_backup_schedule="15 25 * *", moneytracker_db_prune_schedule="15 25 * * *",
        moneytracker_db_backup_dir="/var/lib/docker/volumes/x", moneytracker_db_lock_ttl_seconds="30",
        moneytracker_db_stop_command=[], moneytracker_db_cron_mailto="a@b.c\nx"))
    joined = " ".join(problems)
    for expected in ("got '15 25 * *': it has 4 field(s).", "hour '25' is not 0-23",
                     "moneytracker_db_backup_dir must be an absolute path", "inside /var/lib/docker",
                     "moneytracker_db_lock_ttl_seconds must be an integer >= 60 (got '30')",
                     "moneytracker_db_stop_command must be a non-empty list", "moneytracker_db_cron_mailto must be"):
        assert expected in joined, joined
    assert len(problems) == 6, problems


def test_moneytracker_db_retention_sum_only_when_each_number_is_valid(mod):
    zero = dict.fromkeys(("moneytracker_db_retention_daily", "moneytracker_db_retention_weekly",
                          "moneytracker_db_retention_monthly"), "0")
    assert [p[:63] for p in mod.moneytracker_db_settings_problems(db(**zero))] == [
        "moneytracker_db_retention_daily, moneytracker_db_retention_week"]
    # A value that is no number is named, and not added up (no crash on int('x')).
    problems = mod.moneytracker_db_settings_problems(db(moneytracker_db_retention_daily="x"))
    assert problems == ["moneytracker_db_retention_daily must be an integer >= 0 (got 'x')."]


# ---- app_orchestrator: swarm (docs/swarm.md)
PG = {"app_database": "postgres", "app_postgres_password": "p" * 24}
SWARM = {**PG, "app_postgres_mem_limit": "1g", "app_orchestrator": "swarm", "app_swarm_routing": "dnsrr", "app_backend_replicas": 3,
         "app_frontend_replicas": 2, "app_tls_source": "none", "_managers": ["mt-1"]}


def test_good_swarm_values_pass(mod):
    assert mod.app_settings_problems(app(**SWARM)) == []


def test_swarm_refuses_sqlite_and_says_how_to_move(mod):
    problems = " ".join(mod.app_settings_problems(app(**{**SWARM, "app_database": "sqlite"})))
    assert "app_orchestrator=swarm runs the backend on several hosts" in problems
    assert "set app_database: postgres (got 'sqlite'" in problems and "move_to_postgres.yml" in problems


def test_swarm_problems_all_at_once_each_naming_its_variable(mod):
    problems = " ".join(mod.app_settings_problems(app(**{
        **SWARM, "app_swarm_routing": "ipvs", "app_backend_replicas": 0, "app_frontend_replicas": "x",
        "_managers": [], "app_tls_source": "acme", "app_backend_debug_port": 8001,
        "_published_ports": {"app_http_port": 8080, "app_https_port": 0, "app_backend_debug_port": 8001}})))
    for expected in ("app_swarm_routing must be dnsrr", "got 'ipvs'", "app_backend_replicas must be an integer >= 1",
                     "app_frontend_replicas must be an integer >= 1", "needs the inventory group moneytracker_managers",
                     "app_tls_source=acme is not built for app_orchestrator=swarm",
                     "app_backend_debug_port is a Compose-only port"):
        assert expected in problems, (expected, problems)


def test_orchestrator_must_be_known_and_compose_ignores_swarm_values(mod):
    assert mod.app_settings_problems(app(app_orchestrator="k8s")) == [
        "app_orchestrator must be compose or swarm (got 'k8s')."]
    # compose: the swarm values are not read (an inventory can keep them for later).
    assert mod.app_settings_problems(app(app_orchestrator="compose", app_swarm_routing="bad", _managers=[])) == []


def test_swarm_sizes_postgres_for_the_replicas_plus_one_update_task(mod):
    # 3 workers x pool 5: Compose needs 2 x 15 + 10 = 40 connections; Swarm with 3 replicas 4 x 15 + 10 = 70.
    compose = mod.app_settings_problems(app(**PG, app_postgres_mem_limit="256m"))
    swarm = " ".join(mod.app_settings_problems(app(**{**SWARM, "app_postgres_mem_limit": "256m"})))
    assert "the backend needs 40 (2 releases during a rollout" in " ".join(compose)
    assert "the backend needs 70 (3 backend tasks + 1 during a rolling update x 3 workers" in swarm


def test_docker_swarm_needs_managers(mod):
    base = docker(docker_swarm=True, docker_swarm_managers=["mt-1"], docker_swarm_node_labels={"a": "b"})
    assert mod.docker_settings_problems(base) == []
    problems = mod.docker_settings_problems({**base, "docker_swarm_managers": [], "docker_swarm_node_labels": ["x"]})
    assert any("docker_swarm is true but docker_swarm_managers is empty" in p for p in problems)
    assert any("docker_swarm_node_labels must be a mapping" in p for p in problems)
