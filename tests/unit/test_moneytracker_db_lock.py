"""The maintenance lock protocol, cron skipping, and non-overlapping jobs."""
from __future__ import annotations

import contextlib
import fcntl
import io
import json
import multiprocessing
import os
import threading
import time

import pytest

ACQUIRE = ["lock", "acquire", "--owner", "migration", "--host", "ctl-1", "--play", "migrate.yml"]


def _race(tool, config, barrier, results, index):
    barrier.wait()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = tool.main(["lock", "acquire", "--owner", f"racer-{index}", "--play", "race", "--config", str(config)])
    results[index] = rc


@pytest.mark.parametrize("round_", range(3))
def test_acquire_is_atomic_under_contention(env, tool, round_):
    ctx = multiprocessing.get_context("fork")
    n = 24
    barrier = ctx.Barrier(n)
    results = ctx.Array("i", [-1] * n)
    os.environ["MONEYTRACKER_DB_SYSLOG"] = "none"
    try:
        procs = [ctx.Process(target=_race, args=(tool, env.config, barrier, results, i)) for i in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
    finally:
        os.environ.pop("MONEYTRACKER_DB_SYSLOG", None)
    codes = list(results)
    assert sorted(codes) == [0] + [3] * (n - 1), codes
    record = json.loads((env.state / "maintenance.lock").read_text())
    assert record["owner"] == f"racer-{codes.index(0)}"
    assert [p for p in os.listdir(env.state) if p.startswith(".maintenance.lock")] == []  # no temp left


def test_acquire_prints_token_and_holder_is_named(env):
    r = env.run(*ACQUIRE, "--reason", "schema 42", "--json")
    assert r.rc == 0
    token = r.data["token"]
    assert len(token) == 32 and r.data["lock"]["owner"] == "migration"
    record = json.loads((env.state / "maintenance.lock").read_text())
    for key in ("token", "owner", "host", "play", "pid", "reason", "since", "ttl_seconds", "expires_at"):
        assert key in record
    assert record["token"] == token and record["ttl_seconds"] == 3600
    plain = env.run("lock", "acquire", "--owner", "operator", "--play", "manual")
    assert plain.rc == 3
    assert "held by migration@ctl-1 (migrate.yml) since" in plain.err
    status = env.run("lock", "status", "--json")
    assert status.rc == 3 and status.data["state"] == "held"
    assert "token" not in json.dumps(status.data)  # the token is printed only to the acquirer


def test_wait_times_out_then_succeeds_when_released(env):
    token = env.run(*ACQUIRE).out.strip()
    t0 = time.monotonic()
    r = env.run("lock", "acquire", "--owner", "backup", "--play", "backup.yml", "--wait", "1")
    assert r.rc == 3 and 1.0 <= time.monotonic() - t0 < 10
    timer = threading.Timer(0.7, lambda: env.run("lock", "release", "--token", token))
    timer.start()
    t0 = time.monotonic()
    r = env.run("lock", "acquire", "--owner", "backup", "--play", "backup.yml", "--wait", "20", "--json")
    timer.join()
    assert r.rc == 0 and r.data["lock"]["owner"] == "backup"
    assert time.monotonic() - t0 < 10


def test_stale_lock_is_reported_never_stolen(env):
    env.run(*ACQUIRE, "--ttl", "1")
    before = (env.state / "maintenance.lock").read_text()
    time.sleep(1.2)
    r = env.run("lock", "status")
    assert r.rc == 4 and "STALE" in r.out
    assert "playbooks/unlock.yml" in r.out and "lock break" not in r.out  # unlock.yml also settles a journal
    r = env.run("lock", "acquire", "--owner", "operator", "--play", "manual")
    assert r.rc == 4 and "STALE" in r.err and "playbooks/unlock.yml" in r.err
    r = env.run("backup")
    assert r.rc == 75 and r.out.startswith("skipped: maintenance lock held by migration@ctl-1 (migrate.yml) since")
    assert "STALE" in r.out
    assert (env.state / "maintenance.lock").read_text() == before


def test_release_only_with_the_right_token(env):
    token = env.call(*ACQUIRE).out.strip()
    r = env.call("lock", "release", "--token", "0" * 32)
    assert r.rc == 3 and "not its token" in r.err
    assert (env.state / "maintenance.lock").exists()
    assert env.call("lock", "release", "--token", token).rc == 0
    assert not (env.state / "maintenance.lock").exists()
    r = env.call("lock", "release", "--token", token, "--json")
    assert r.rc == 0 and r.data["state"] == "free"
    assert env.call("lock", "status").rc == 0


def test_break_needs_force_and_is_logged(env, syslog):
    env.call(*ACQUIRE)
    r = env.call("lock", "break")
    assert r.rc == 2 and "--force" in r.err
    r = env.call("lock", "break", "--force", "--reason", "migration host died", "--json")
    assert r.rc == 0 and r.data["was"]["owner"] == "migration"
    assert env.call("lock", "status", "--json").data["state"] == "free"
    lines = [m for m in syslog.messages() if "BROKEN" in m]
    assert len(lines) == 1
    assert "migration host died" in lines[0] and "migration@ctl-1 (migrate.yml)" in lines[0]


@pytest.mark.parametrize("job", [["backup"], ["prune"], ["check", "--quick"], ["check", "--full"]])
def test_cron_jobs_skip_while_locked_and_run_with_the_token(env, syslog, job):
    assert env.call("backup").rc == 0
    token = env.call(*ACQUIRE).out.strip()
    r = env.run(*job)
    assert r.rc == 75
    line = r.out.strip()
    assert line.startswith("skipped: maintenance lock held by migration@ctl-1 (migrate.yml) since ")
    assert "\n" not in line
    assert any(line in m for m in syslog.messages())
    name = {"check": "check_full" if "--full" in job else "check_quick"}.get(job[0], job[0])
    assert env.call("status", "--json").data["jobs"][name]["result"] == "skipped"
    r = env.call(*job, "--lock-token", token, "--json")
    assert r.rc == 0, r.err
    r = env.call(*job, "--lock-token", "f" * 32)
    assert r.rc == 75 and "not the holder's" in r.out


def test_token_for_a_free_lock_is_refused(env):
    r = env.run("backup", "--lock-token", "abc")
    assert r.rc == 3 and "not held" in r.err


def test_jobs_never_overlap(env, tool):
    env.state.mkdir(exist_ok=True)
    holder = open(env.state / "jobs.lock", "r+b" if (env.state / "jobs.lock").exists() else "w+b")  # noqa: SIM115
    try:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.truncate(0)
        holder.write(json.dumps({"job": "check_full", "pid": 4242, "since": "then"}).encode())
        holder.flush()
        for job in (["backup"], ["prune"], ["check"]):
            r = env.run(*job)
            assert r.rc == 75
            assert "another moneytracker-db job is running (check_full pid 4242" in r.out
        # a run under the maintenance lock waits for the running job instead of skipping
        token = env.run(*ACQUIRE).out.strip()
        timer = threading.Timer(0.5, holder.close)
        timer.start()
        t0 = time.monotonic()
        r = env.run("backup", "--lock-token", token)
        timer.join()
        assert r.rc == 0, r.err
        assert time.monotonic() - t0 >= 0.4
    finally:
        holder.close()


def test_two_real_backups_at_once_one_skips(env, tmp_path):
    from conftest import make_db
    env.db.unlink()
    make_db(env.db, transactions=6000, blob_bytes=3000)
    procs = [env.popen("backup", "--json") for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes in ([0, 75], [0, 0])  # 0/0 only if the first finished before the second started
    if codes == [0, 75]:
        skipped = next(out for out, _ in outs if '"exit_code": 75' in out)
        assert "another moneytracker-db job is running" in skipped
