"""What the moneytracker_db role leaves on the host: the tool and its wrapper, the config it
templated, the directories and their modes, the packages, and the cron file with the schedules
molecule.yml sets (non-default ones, so this proves the variables reach the file)."""
import json
import os
from pathlib import Path

import pytest

from conftest import BACKUP_DIR, CRON_FILE, STATE_DIR, TOOL, run_playbook, scenario_group_vars

DEFAULT_SCHEDULES = {
    "moneytracker_db_backup_schedule": "15 2 * * *",
    "moneytracker_db_prune_schedule": "45 2 * * *",
    "moneytracker_db_check_quick_schedule": "30 3 * * *",
    "moneytracker_db_check_full_schedule": "0 4 * * 0",
}
JOB_OF = {
    "moneytracker_db_backup_schedule": "moneytracker-db-cron backup",
    "moneytracker_db_prune_schedule": "moneytracker-db-cron prune",
    "moneytracker_db_check_quick_schedule": "moneytracker-db-cron check --quick",
    "moneytracker_db_check_full_schedule": "moneytracker-db-cron check --full",
}


def test_tool_and_wrapper_installed(host):
    for path in (TOOL, "/usr/local/sbin/moneytracker-db-cron"):
        f = host.file(path)
        assert f.is_file and f.user == "root" and f.group == "root" and f.mode == 0o755, path
    assert host.check_output(f"{TOOL} --version").strip() == "moneytracker-db 1.0.0"


def test_packages(host):
    for pkg in ("sqlite3", "zstd", "cron"):
        assert host.package(pkg).is_installed, pkg
    svc = host.service("cron")
    assert svc.is_running and svc.is_enabled


def test_backup_and_state_dirs_are_0700_root(host):
    for path in (BACKUP_DIR, STATE_DIR):
        d = host.file(path)
        assert d.is_directory and d.user == "root" and d.mode == 0o700, path
    # outside the Docker volume it protects
    mountpoint = host.check_output("docker volume inspect -f '{{.Mountpoint}}' moneytracker_data").strip()
    assert not BACKUP_DIR.startswith(mountpoint)


def test_config_is_what_the_variables_say(host):
    f = host.file("/etc/moneytracker-db/config.json")
    assert f.user == "root" and f.mode == 0o644
    cfg = json.loads(f.content_string)
    assert cfg["volume"] == "moneytracker_data" and cfg["database_name"] == "moneytracker.db"
    assert cfg["backup_dir"] == BACKUP_DIR and cfg["state_dir"] == STATE_DIR
    assert cfg["retention"] == {"daily": scenario_group_vars()["moneytracker_db_retention_daily"],
                                "weekly": 4, "monthly": 6}
    assert cfg["stop_command"] == ["docker", "compose", "--project-directory", "/opt/moneytracker", "stop", "backend"]
    assert cfg["start_command"] == ["docker", "compose", "--project-directory", "/opt/moneytracker", "start", "backend"]
    assert cfg["textfile_dir"] == "/var/lib/prometheus/node-exporter"
    assert "offsite" not in cfg
    # the tool reads it as written
    shown = json.loads(host.check_output(f"{TOOL} config --json"))
    assert shown["ok"] is True and shown["config"]["volume"] == "moneytracker_data"


def test_cron_file_has_the_configured_schedules(host, cron):
    f = host.file(CRON_FILE)
    assert f.user == "root" and f.mode == 0o644  # cron ignores group/other-writable files
    wanted = scenario_group_vars()
    assert len(cron["jobs"]) == 4
    for variable, job_word in JOB_OF.items():
        assert wanted[variable] != DEFAULT_SCHEDULES[variable], "the scenario must set a non-default schedule"
        jobs = [j for j in cron["jobs"] if j["command"].endswith(job_word)]
        assert len(jobs) == 1, (job_word, cron["jobs"])
        assert jobs[0]["schedule"] == wanted[variable], variable
        assert jobs[0]["user"] == "root"


def test_backup_and_checks_run_at_low_priority(cron):
    for job in cron["jobs"]:
        if " check " in job["command"] or job["command"].endswith(" backup"):
            assert job["command"].startswith("/usr/bin/nice -n 10 /usr/bin/ionice -c 3 -t "), job


def test_cron_never_mails(cron):
    assert cron["env"].get("MAILTO") == ""


def test_no_secret_in_cron_or_config(host):
    secret = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "app_secret_key").read_text().strip()
    assert len(secret) >= 32
    for path in (CRON_FILE, "/etc/moneytracker-db/config.json", "/usr/local/sbin/moneytracker-db-cron"):
        assert secret not in host.file(path).content_string, path


def test_cron_daemon_did_not_reject_the_file(host):
    # Debian's cron logs "(*system*moneytracker-db) ERROR ..." for a file it ignores. This does
    # not prove a job fires at its time (test_cron_jobs runs each line's command instead).
    log = host.check_output("journalctl --no-pager -o cat -u cron")
    assert "moneytracker-db) ERROR" not in log and "moneytracker-db) BAD" not in log, log


def _first_backup_manifests(host) -> str:
    return host.check_output(f"grep -l '\"label\": \"first backup at deploy\"' {BACKUP_DIR}/*.manifest.json || true")


@pytest.fixture(scope="module")
def first_backup(host):
    """The manifests of the backup the deploy took because there was none. A prune in another test
    file removes it (retention keeps one backup a day): then the backups are moved aside, deploy.yml
    runs on a host without a backup, and they are put back afterwards."""
    found = _first_backup_manifests(host)
    if found.strip():
        yield found
        return
    aside = f"{BACKUP_DIR}.aside"
    host.check_output(f"rm -rf {aside} && mkdir -m 0700 {aside}"
                      f" && find {BACKUP_DIR} -mindepth 1 -maxdepth 1 -exec mv -t {aside} {{}} +")
    try:
        r = run_playbook("deploy")
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        yield _first_backup_manifests(host)
    finally:
        host.check_output(f"find {aside} -mindepth 1 -maxdepth 1 -exec mv -t {BACKUP_DIR} {{}} + ; rmdir {aside}")


def test_first_backup_taken_at_deploy(first_backup):
    assert first_backup.strip(), "the deploy took no first backup"
