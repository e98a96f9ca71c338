"""Zero-downtime releases behind the edge (issue 11), on a real test host under real load.

Each case starts from the scenario's base (deploy.yml with the inventory as it is: backend 2.0.0,
frontend 1.0.0, edge 1.0.0; the base deploy is run first, without load, so a case does not depend
on the one before), then runs deploy.yml with its change while four clients send GET /api/accounts
and POST /api/transactions through the edge (molecule/shared/writer_load.py, on the test host) from
before the play starts until after it ends. It checks: every response was 2xx (a connection error
counts as a failure), every POST answered 201 is in the live database by id, the service the
change concerns runs a new container, the edge container is the same one (reloaded, never
recreated), the edge routes to the containers that run. The p50/p99 latency before and during the
play go to .build/logs/figures-release.txt (printed at the end of `make test`).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import writer_load  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api, deploy, recap  # noqa: E402  pylint: disable=wrong-import-position

PROJECT = "/opt/moneytracker"


def containers(host):
    """{service: [(name, id)]} of the app's project, running or not (not `compose run` one-offs:
    the schema check runs one)."""
    out = host.check_output("docker ps --all --filter label=com.docker.compose.project=moneytracker "
                            "--filter label=com.docker.compose.oneoff=False --format '{{.Label \"com.docker.compose.service\"}} {{.Names}} {{.ID}}'")
    found = {}
    for line in out.splitlines():
        svc, name, cid = line.split()
        found.setdefault(svc, []).append((name, cid))
    return found


def routes(host):
    """{service: container name} the edge routes to (its routes.inc)."""
    found = {}
    for line in host.check_output(f"cat {PROJECT}/edge/routes.inc").splitlines():
        if line.startswith("set $mt_route_"):
            dummy, var, target = line.split()
            found[var[len("$mt_route_"):]] = target.strip('";').rsplit(":", 1)[0]
    return found


@pytest.fixture(name="base")
def fixture_base(host):
    rc, out = deploy()
    assert rc == 0, out[-3000:]
    if not api(host, "GET", "/api/accounts"):
        api(host, "POST", "/api/accounts", {"name": "Release tests"})  # the writers post to it
    return containers(host)


def under_load(host, tag, *extra, playbook="deploy"):
    """deploy.yml (or `playbook`) with `extra` under the client load; (rc, output, records, load
    window times)."""
    writer_load.start(host, tag, writers=4, reads=True)
    time.sleep(3)
    t0 = time.time()
    rc, out = deploy(*extra, playbook=playbook)
    t1 = time.time()
    time.sleep(2)
    records = writer_load.stop(host, tag)
    return rc, out, records, t0, t1


def no_failures(records):
    failed = [r for r in records if not 200 <= r["s"] < 300]
    assert not failed, (f"{len(failed)} of {len(records)} requests failed during the release "
                        f"(statuses {sorted({r['s'] for r in failed})}; first: {failed[:5]})")


def figures(name, records, t0, t1, host, tag):
    before = writer_load.latency(records, until=t0)
    during = writer_load.latency(records, since=t0, until=t1)
    checked = writer_load.check(host, tag, records)
    writer_load.record(
        f"release {name}: {len(records)} requests ({checked['answered_2xx']} writes), 0 failed; "
        f"latency before p50 {before['p50']} ms p99 {before['p99']} ms ({before['n']} requests), "
        f"during the {t1 - t0:.0f} s play p50 {during['p50']} ms p99 {during['p99']} ms max {during['max']} ms "
        f"({during['n']} requests)", name="release")
    assert during["n"] > 50, "the load sent too few requests during the play to prove anything"


CHANGES = {
    "backend-limits": (["app_backend_mem_limit=384m"], "backend"),
    "backend-workers": (["app_web_concurrency=2"], "backend"),  # the computed default is 3
    "backend-image": (["app_backend_image=moneytracker/backend:2.0.1"], "backend"),
    "frontend-image": (["app_frontend_image=moneytracker/frontend:1.0.1"], "frontend"),
    "edge-config": (["app_maintenance_retry_after=30"], None),
}


@pytest.mark.parametrize("name", list(CHANGES))
def test_a_release_loses_no_request(host, base, name):
    extra, service = CHANGES[name]
    tag = f"rel-{name}-{int(time.time())}"
    rc, out, records, t0, t1 = under_load(host, tag, *extra)
    assert rc == 0, out[-3000:]
    no_failures(records)
    figures(name, records, t0, t1, host, tag)
    after = containers(host)
    assert after["edge"] == base["edge"], "the edge was recreated: only its own image or settings may do that"
    for svc in ("backend", "frontend"):
        assert len(after[svc]) == 1, f"{svc} runs {after[svc]} after the release"
        if svc == service:
            assert after[svc][0][1] != base[svc][0][1], f"{svc} was not replaced: the change did not reach it"
        else:
            assert after[svc] == base[svc], f"{svc} was replaced although the change was not its"
    assert routes(host) == {svc: after[svc][0][0] for svc in ("backend", "frontend")}
    # The summary: the URL, the release that runs, what changed, how long it took.
    summary = " ".join(out.split()).split("MoneyTracker at http://", 1)[1]
    assert ":8080/ runs release " in summary and " Took " in summary, summary[:600]
    if service is not None:
        assert f"{service}: started moneytracker-{service}-" in summary, summary[:600]
    if service is None:
        assert "edge: reloaded" in out
        assert "Retry-After \"30\"" in host.check_output(f"cat {PROJECT}/edge/conf.d/edge.conf")


def test_an_edge_image_change_recreates_the_edge_and_costs_about_a_second(host, base):
    """The one change that recreates the edge (documented): measured, not zero. Requests fail
    only while the new edge starts; nothing answered 201 is lost."""
    tag = f"rel-edge-image-{int(time.time())}"
    rc, out, records, t0, t1 = under_load(host, tag, "app_edge_image=moneytracker/edge:1.0.1")
    assert rc == 0, out[-3000:]
    after = containers(host)
    assert after["edge"] != base["edge"] and after["backend"] == base["backend"]
    failed = [r for r in records if not 200 <= r["s"] < 300]
    window = (max(r["t"] for r in failed) - min(r["t"] for r in failed)) if failed else 0.0
    checked = writer_load.check(host, tag, records)
    writer_load.record(f"release edge image change (recreates the edge): {len(failed)} of {len(records)} requests "
                       f"failed (statuses {sorted({r['s'] for r in failed})}) within {window:.1f} s; "
                       f"{checked['answered_2xx']} writes answered 2xx all stored", name="release")
    assert window < 5, f"requests failed over {window:.1f} s while the edge was recreated"


def test_a_backend_that_never_gets_healthy_leaves_the_old_one_serving(host, base):
    compose_before = host.check_output(f"sha1sum {PROJECT}/compose.yaml")
    tag = f"rel-unready-{int(time.time())}"
    rc, out, records, t0, t1 = under_load(host, tag, "app_backend_image=moneytracker/backend:2.0.1-unready",
                                          "app_compose_wait_timeout=30")
    assert rc != 0, "the deploy of a backend that never gets healthy must fail"
    flat = " ".join(out.split())
    assert "test double that is never ready" in flat, "the failure names the health check's output"
    assert "keeps serving" in flat
    no_failures(records)
    figures("unready-backend", records, t0, t1, host, tag)
    after = containers(host)
    assert after == base, f"the host does not run the old containers: {after} (before: {base})"
    assert host.check_output(f"sha1sum {PROJECT}/compose.yaml") == compose_before, "the old compose file is not back"
    assert routes(host) == {svc: base[svc][0][0] for svc in ("backend", "frontend")}
    release = json.loads(host.check_output(
        f"cat $(ls -d {PROJECT}/releases/*/ | tail -1)release.json"))
    assert release["backend_image"] == "moneytracker/backend:2.0.0"


def test_rollback_without_restore_loses_no_request(host, base):
    """rollback.yml to the previous release when the schema is the same (2.0.1 -> 2.0.0): no
    maintenance page, the backend rolled out beside, switched, drained."""
    rc, out = deploy("app_backend_image=moneytracker/backend:2.0.1")
    assert rc == 0, out[-3000:]
    forward = containers(host)
    tag = f"rel-rollback-{int(time.time())}"
    rc, out, records, t0, t1 = under_load(host, tag, playbook="rollback")
    assert rc == 0, out[-3000:]
    no_failures(records)
    figures("rollback.yml (no restore)", records, t0, t1, host, tag)
    after = containers(host)
    assert after["backend"][0][1] != forward["backend"][0][1] and len(after["backend"]) == 1
    assert after["edge"] == base["edge"] and after["frontend"] == forward["frontend"]
    image = host.check_output(f"docker inspect -f '{{{{.Config.Image}}}}' {after['backend'][0][1]}")
    assert image == "moneytracker/backend:2.0.0"
    assert not host.file(f"{PROJECT}/maintenance/on").exists
    assert "Maintenance page on" not in out or "skipping" in out.split("Maintenance page on", 1)[1][:300]


def test_a_new_project_dir_moves_the_stack_without_a_failed_request(host, base):
    """app_project_dir changed: the directory is moved (release history kept, nothing left
    behind), backend and frontend rolled out from it, the edge not recreated; then back."""
    releases = sorted(host.check_output(f"ls {PROJECT}/releases").split())
    moved = "/srv/moneytracker-moved"
    tag = f"rel-move-{int(time.time())}"
    try:
        rc, out, records, t0, t1 = under_load(host, tag, f"app_project_dir={moved}")
        assert rc == 0, out[-3000:]
        no_failures(records)
        figures("app_project_dir change", records, t0, t1, host, tag)
        flat = " ".join(out.split())
        assert f"moved {PROJECT} to {moved}" in flat, out[-3000:]
        assert not host.file(PROJECT).exists, "the old project directory was left behind"
        assert sorted(host.check_output(f"ls {moved}/releases").split())[:len(releases)] == releases
        assert PROJECT + "/" not in host.check_output(f"cat {moved}/releases/*/compose.yaml")
        after = containers(host)
        assert after["edge"] == base["edge"], "the edge was recreated by the move"
        for svc in ("backend", "frontend"):
            assert after[svc][0][1] != base[svc][0][1]
            mounts = host.check_output(f"docker inspect -f '{{{{json .Mounts}}}}' {after[svc][0][1]}")
            assert PROJECT + "/" not in mounts
        # The edge reads its moved routes: it routes to the new containers and answers.
        edge_routes = host.check_output(f"cat {moved}/edge/routes.inc")
        assert all(f'"{after[svc][0][0]}:' in edge_routes for svc in ("backend", "frontend"))
        assert host.run("curl -fsS -o /dev/null http://127.0.0.1:8080/api/accounts").rc == 0
    finally:
        rc, back = deploy()
    assert rc == 0, back[-3000:]
    assert host.file(f"{PROJECT}/compose.yaml").exists and not host.file(moved).exists


# Python processes on the test host other than the writers (writer_load.py): the module, pipelined
# (`python3` reading stdin) or not (`python3 .../AnsiballZ_*.py`); prints what it killed.
KILL_MODULES = ("for p in $(pgrep python3); do c=$(tr '\\0' ' ' </proc/$p/cmdline); "
                "case \"$c\" in *writer_load*) ;; *) kill -9 $p && echo \"$p $c\";; esac; done; true")

KILL_POINTS = {
    # the new backend exists beside the old one, not yet routed to
    "new-container-starting": lambda host, base: len(containers(host).get("backend", [])) == 2
    and routes(host)["backend"] == base["backend"][0][0],
    # the edge routes to the new backend, the old one is not stopped yet (drain or stop)
    "switched-old-not-stopped": lambda host, base: len(containers(host).get("backend", [])) == 2
    and routes(host)["backend"] != base["backend"][0][0],
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_mid_rollout_then_the_next_deploy_converges(host, base, point):
    """kill -9 of the controller's process group, and of the module's process on the host, at a
    step of the rollout; then the operator's next command, deploy.yml: one backend (the new
    release), routed, the edge the same, and not one request failed throughout."""
    tag = f"rel-kill-{point}-{int(time.time())}"
    writer_load.start(host, tag, writers=4, reads=True)
    try:
        args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "moneytracker.deploy.deploy",
                "-e", "app_backend_image=moneytracker/backend:2.0.1"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
        deadline = time.time() + 600
        while not KILL_POINTS[point](host, base):
            assert proc.poll() is None and time.time() < deadline, f"the play ended before the point {point}"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # The module's process on the host too (as an ssh hangup would; a `docker exec` client
        # killed leaves its process running): every Python process there but the writers'.
        killed = host.check_output(KILL_MODULES)
        found = containers(host)
        rc, out = deploy("app_backend_image=moneytracker/backend:2.0.1")
    finally:
        records = writer_load.stop(host, tag)
    assert len(found["backend"]) == 2, f"not killed mid-rollout: {found}; killed on the host: {killed}"
    assert rc == 0, out[-3000:]
    flat = " ".join(out.split())
    assert "a second backend container, left by an interrupted rollout" in flat, flat[-3000:]
    no_failures(records)
    writer_load.check(host, tag, records)
    after = containers(host)
    assert len(after["backend"]) == 1 and after["edge"] == base["edge"]
    image = host.check_output(f"docker inspect -f '{{{{.Config.Image}}}}' {after['backend'][0][1]}")
    assert image == "moneytracker/backend:2.0.1"
    assert routes(host)["backend"] == after["backend"][0][0]
    assert not host.file(f"{PROJECT}/maintenance/on").exists


def test_a_rerun_changes_nothing_and_restarts_nothing(host, base):
    rc, out = deploy()
    assert rc == 0, out[-3000:]
    assert recap(out)["changed"] == 0, out[-3000:]
    assert containers(host) == base
    assert "Changed: nothing." in " ".join(out.split())
