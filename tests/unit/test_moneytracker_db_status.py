"""status / --json, the node-exporter textfile, list, and config validation (exit 2 naming the key)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

METRIC_LINE = re.compile(r'^([a-z_]+)(\{job="([a-z_]+)"\})? (-?[0-9.e+]+)$')


def parse_prom(text: str) -> tuple[dict, dict]:
    """A small parser of the Prometheus text format as node-exporter reads it."""
    helps, types, samples = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, doc = line[7:].partition(" ")
            helps[name] = doc
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            types[name] = kind
        else:
            m = METRIC_LINE.match(line)
            assert m, f"not a metric line: {line!r}"
            samples[(m.group(1), m.group(3))] = float(m.group(4))
    for name, _ in samples:
        assert helps.get(name) and types.get(name) == "gauge", name
    return samples, helps


def test_status_json_and_textfile(env):
    backup = env.call("backup", "--json").data
    assert env.call("check").rc == 0
    assert env.call("prune").rc == 0
    r = env.call("status", "--json")
    assert r.rc == 0
    s = r.data
    assert set(s["jobs"]) == {"backup", "prune", "check_quick", "check_full", "restore", "offsite"}
    assert s["jobs"]["backup"]["result"] == "ok" and s["jobs"]["backup"]["last_success"]
    assert s["jobs"]["backup"]["age_seconds"] >= 0
    assert s["jobs"]["restore"] is None and s["jobs"]["check_full"] is None
    assert s["newest_backup"]["path"] == backup["backup"] and s["newest_backup"]["size"] == backup["size"]
    assert s["backups_count"] == 1 and s["backup_fs"]["free_bytes"] > 0
    assert s["maintenance_lock"] == {"state": "free", "owner": None}

    prom = env.prom / "moneytracker_db.prom"
    samples, _ = parse_prom(prom.read_text())
    manifest = json.loads(Path(backup["manifest"]).read_text())
    assert samples[("moneytracker_db_newest_backup_timestamp_seconds", None)] == pytest.approx(manifest["started_epoch"])
    assert samples[("moneytracker_db_newest_backup_size_bytes", None)] == backup["size"]
    assert samples[("moneytracker_db_backups_count", None)] == 1
    assert samples[("moneytracker_db_backup_fs_free_bytes", None)] > 0
    assert samples[("moneytracker_db_maintenance_lock_held", None)] == 0
    for job in ("backup", "prune", "check_quick"):
        assert samples[("moneytracker_db_last_run_success", job)] == 1
        assert samples[("moneytracker_db_last_success_timestamp_seconds", job)] == \
            samples[("moneytracker_db_last_run_timestamp_seconds", job)]
    assert [p.name for p in env.prom.iterdir()] == ["moneytracker_db.prom"]  # no temp file left

    # a failed run and a held lock show up after `status --textfile`
    token = env.call("lock", "acquire", "--owner", "migration", "--play", "migrate.yml").out.strip()
    assert env.call("backup").rc == 75
    assert env.call("backup", "--lock-token", token, "--database", str(env.db.parent / "nope.db")).rc == 1
    assert env.call("status", "--textfile").rc == 0
    samples, _ = parse_prom(prom.read_text())
    assert samples[("moneytracker_db_maintenance_lock_held", None)] == 1
    assert samples[("moneytracker_db_last_run_success", "backup")] == 0
    assert samples[("moneytracker_db_last_success_timestamp_seconds", "backup")] < \
        samples[("moneytracker_db_last_run_timestamp_seconds", "backup")]
    plain = env.run("status")
    assert plain.rc == 0
    assert "maintenance lock: HELD by migration@" in plain.out and "backup       failed" in plain.out
    assert "newest verified backup: " + backup["backup"] in plain.out


def test_list_plain_and_json(env):
    assert env.call("backup").rc == 0
    r = env.call("list")
    assert r.rc == 0 and "newest,daily,weekly,monthly" in r.out
    data = env.call("list", "--json").data
    assert len(data["backups"]) == 1 and data["backups"][0]["verified"] is True


def test_in_process_and_subprocess_agree(env):
    assert env.call("backup", "--json").rc == 0
    a = env.call("list", "--json")
    b = env.run("list", "--json")
    assert a.rc == b.rc == 0
    assert [x["path"] for x in a.data["backups"]] == [x["path"] for x in b.data["backups"]]


BAD_CONFIGS = [
    ({"databse": "/x.db"}, "databse"),
    ({"busy_timeout_ms": "soon"}, "busy_timeout_ms"),
    ({"busy_timeout_ms": -1}, "busy_timeout_ms"),
    ({"lock_ttl_seconds": 0}, "lock_ttl_seconds"),
    ({"compression": "lz4"}, "compression"),
    ({"retention": {"daily": -1}}, "retention.daily"),
    ({"retention": {"yearly": 2}}, "retention.yearly"),
    ({"retention": [7, 4, 6]}, "retention"),
    ({"stop_command": "docker compose stop backend"}, "stop_command"),
    ({"start_command": []}, "start_command"),
    ({"offsite": {"ftp": "x"}}, "offsite"),
    ({"offsite": {"path": "relative/dir"}}, "offsite.path"),
    ({"offsite": {"rsync": "-e sh"}}, "offsite.rsync"),
    ({"db_owner": "nosuchuser-xyz:0"}, "db_owner"),
    ({"db_owner": "1000:1000:99x"}, "db_owner"),
    ({"backup_dir": "relative/backups"}, "backup_dir"),
    ({"state_dir": 5}, "state_dir"),
    ({"textfile_dir": "prom"}, "textfile_dir"),
    ({"database": "relative.db"}, "database"),
    ({"volume": "moneytracker_data", "database_name": "moneytracker.db"}, "volume"),  # with database too
    ({"database": None, "volume": "bad/name", "database_name": "x.db"}, "volume"),
    ({"database": None, "volume": "moneytracker_data"}, "database_name"),
]


@pytest.mark.parametrize("overrides,key", BAD_CONFIGS, ids=[k for _, k in BAD_CONFIGS])
def test_config_validation_exit_2_names_the_key(env, overrides, key):
    env.write_config(**overrides)
    r = env.call("status", "--json")
    assert r.rc == 2, r.err
    assert f"'{key}'" in r.err and r.err.count("\n") == 1
    assert r.data["key"] == key and r.data["exit_code"] == 2


def test_backup_dir_inside_the_database_volume_is_refused(env):
    env.write_config(backup_dir=str(env.db.parent / "backups"))
    r = env.call("backup")
    assert r.rc == 2 and "'backup_dir'" in r.err and "inside the database's directory" in r.err


def test_config_file_problems_and_cli_overrides(env):
    env.config.write_text("{ not json")
    r = env.call("status")
    assert r.rc == 2 and "not valid JSON" in r.err
    r = env.call("status", "--config", str(env.root / "missing.json"), config=False)
    assert r.rc == 2 and "does not exist" in r.err
    env.write_config()
    r = env.call("backup", "--busy-timeout-ms", "soon")
    assert r.rc == 2 and "--busy-timeout-ms" in r.err
    r = env.call("frobnicate", "--json")
    assert r.rc == 2 and r.data["exit_code"] == 2
    # every key can come from the command line instead of a config file
    env.config.unlink()
    args = ["--database", str(env.db), "--backup-dir", str(env.backups), "--state-dir", str(env.state)]
    r = env.call("backup", *args, "--compression", "gzip", "--retention-daily", "2", "--json", config=False)
    assert r.rc == 0, r.err
    assert r.data["backup"].endswith(".gz")
    r = env.call("check", *args, "--retention-daily", "-1", config=False)
    assert r.rc == 2 and "'retention.daily'" in r.err


def test_env_var_selects_the_config(env):
    r = env.run("status", "--json", config=False, extra_env={"MONEYTRACKER_DB_CONFIG": str(env.config)})
    assert r.rc == 0 and r.data["backup_fs"]["backup_dir"] == str(env.backups)
    r = env.run("status", config=False, extra_env={"MONEYTRACKER_DB_CONFIG": str(env.root / "gone.json")})
    assert r.rc == 2 and "gone.json does not exist" in r.err


def test_io_error_is_one_clear_line(env, syslog):
    (env.root / "not-a-dir").write_text("")
    env.write_config(state_dir=str(env.root / "not-a-dir"))
    r = env.run("lock", "acquire", "--owner", "x", "--json")
    assert r.rc == 1 and r.data["ok"] is False
    assert r.err.count("\n") == 1 and "not-a-dir" in r.err and "Traceback" not in r.err
    assert any("lock acquire: FAILED" in m for m in syslog.messages())
