"""moneytracker_db_lock: acquire / status / release / break through the real tool, the holder
named when acquiring fails, check mode, and tokens kept out of everything the module prints
except the `token` return value of an acquire."""
from __future__ import annotations

import json
import time


def acquire(run_module, **extra):
    args = dict(state="acquired", owner="migration", host="ctl-1", play="migrate.yml", user="alice",
                controller_pid=4242, reason="schema b2")
    args.update(extra)
    return run_module("lock", **args)


def test_acquire_status_release(run_module, env):
    r = acquire(run_module)
    assert r.rc == 0, r.stdout
    res = r.result
    assert res["changed"] is True and res["state"] == "held"
    token = res["token"]
    assert len(token) == 32
    assert res["lock"]["owner"] == "migration" and res["lock"]["play"] == "migrate.yml"
    assert res["lock"]["user"] == "alice" and res["lock"]["controller_pid"] == 4242
    assert "token" not in res["lock"]
    on_disk = json.loads((env.state / "maintenance.lock").read_text())
    assert on_disk["token"] == token and on_disk["id"] == res["id"]

    st = run_module("lock", state="status").result
    assert st["changed"] is False and st.get("failed") is not True
    assert st["state"] == "held" and st["id"] == res["id"] and st["lock"]["owner"] == "migration"
    assert "migration@ctl-1 (migrate.yml)" in st["msg"]

    rel = run_module("lock", state="released", token=token)
    assert rel.rc == 0, rel.stdout
    assert rel.result["changed"] is True and rel.result["state"] == "free"
    assert rel.result["was"]["id"] == res["id"]
    assert not (env.state / "maintenance.lock").exists()

    again = run_module("lock", state="released", token=token).result
    assert again["changed"] is False and again["state"] == "free"
    assert run_module("lock", state="status").result["state"] == "free"


def test_acquire_while_held_fails_naming_the_holder(run_module, env):
    first = acquire(run_module).result
    before = (env.state / "maintenance.lock").read_text()
    r = run_module("lock", state="acquired", owner="operator", play="manual")
    assert r.rc == 1
    res = r.result
    assert res["failed"] is True and res["changed"] is False
    assert res["state"] == "held"
    assert "maintenance lock held by migration@ctl-1 (migrate.yml)" in res["msg"]
    assert "user alice, controller pid 4242" in res["msg"]
    assert res["lock"]["owner"] == "migration" and res["lock"]["id"] == first["id"]
    assert res["rc"] == 3 and res["outcome"] == "locked"
    assert "token" not in res
    assert first["token"] not in r.stdout
    assert (env.state / "maintenance.lock").read_text() == before


def test_acquire_stale_lock_fails_with_state_stale(run_module, env):
    acquire(run_module, ttl=1)
    time.sleep(1.2)
    r = run_module("lock", state="acquired", owner="operator")
    assert r.rc == 1
    assert r.result["state"] == "stale" and "STALE" in r.result["msg"]
    assert r.result["lock"]["owner"] == "migration"
    st = run_module("lock", state="status").result
    assert st["state"] == "stale" and st.get("failed") is not True and "unlock.yml" in st["clear_with"]


def test_release_with_a_wrong_token_fails_and_keeps_the_lock(run_module, env):
    acquire(run_module)
    wrong = "0" * 32
    r = run_module("lock", state="released", token=wrong)
    assert r.rc == 1 and r.result["failed"] is True
    assert "not its token" in r.result["msg"]
    assert (env.state / "maintenance.lock").exists()
    assert wrong not in r.stdout and wrong not in r.stderr


def test_break_refuses_a_wrong_id_then_breaks_the_shown_lock(run_module, env):
    acquire(run_module)
    shown = run_module("lock", state="status").result
    r = run_module("lock", state="broken", id="000000000000", force=True, reason="test")
    assert r.rc == 1 and r.result["failed"] is True
    assert "the lock changed since it was shown" in r.result["msg"]
    assert r.result["lock"]["id"] == shown["id"] and r.result["state"] == "held"
    assert (env.state / "maintenance.lock").exists()

    no_force = run_module("lock", state="broken", id=shown["id"])
    assert no_force.rc == 1 and "force=true" in no_force.result["msg"]
    assert (env.state / "maintenance.lock").exists()

    ok = run_module("lock", state="broken", id=shown["id"], force=True, reason="migration host died")
    assert ok.rc == 0, ok.stdout
    res = ok.result
    assert res["changed"] is True and res["state"] == "free"
    assert res["was"]["owner"] == "migration" and res["was_state"] == "held" and res["id"] == shown["id"]
    assert not (env.state / "maintenance.lock").exists()
    again = run_module("lock", state="broken", id=shown["id"], force=True).result
    assert again["changed"] is False and again["state"] == "free"


def test_check_mode_changes_nothing(run_module, env):
    r = run_module("lock", check_mode=True, state="acquired", owner="migration")
    assert r.result["changed"] is True and "token" not in r.result
    assert not (env.state / "maintenance.lock").exists()

    token = acquire(run_module).result["token"]
    before = (env.state / "maintenance.lock").read_text()
    held = run_module("lock", check_mode=True, state="acquired", owner="other")
    assert held.rc == 1 and held.result["state"] == "held" and "migration@ctl-1" in held.result["msg"]
    rel = run_module("lock", check_mode=True, state="released", token=token).result
    assert rel["changed"] is True and rel["state"] == "free"
    wrong = run_module("lock", check_mode=True, state="released", token="f" * 32)
    assert wrong.rc == 1 and "not its token" in wrong.result["msg"]
    brk = run_module("lock", check_mode=True, state="broken", id=rel["id"], force=True).result
    assert brk["changed"] is True
    assert (env.state / "maintenance.lock").read_text() == before


def test_token_appears_only_as_the_token_return_value(run_module, env):
    r = acquire(run_module)
    token = r.result["token"]
    assert r.stdout.count(token) == 1, "only the `token` return value carries it"
    assert token not in r.stderr
    assert token not in json.dumps({k: v for k, v in r.result.items() if k != "token"})

    for run in (run_module("lock", state="status"),
                run_module("backup", lock_token=token),
                run_module("check", lock_token=token),
                run_module("lock", state="released", token=token)):
        assert run.rc == 0, run.stdout
        assert token not in run.stdout and token not in run.stderr
        assert token not in run.result["cmd"]
    released = json.loads(run.stdout)
    assert "--token ********" in released["cmd"]
    # the invocation echoed back by Ansible masks no_log options
    assert released["invocation"]["module_args"]["token"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
