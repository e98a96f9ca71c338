"""app_orchestrator: swarm on three test hosts (issue 14), in order: the swarm formed from a bare start
(converge: release 1.0.0, its schema created by a one-off job), the app's round trip through the edge
and backend tasks on at least two nodes; backups where PostgreSQL runs; an idempotent rerun
(changed=0 on every host, no task replaced); the migration to 2.0.0 under writers (a one-off job
under the lock: only 503 + Retry-After while the backend is at 0 tasks, every acknowledged write
kept); a rolling update of the backend (2.0.0 -> 2.0.1, no migration) under writers that GET and
POST through the edge the whole time: every response 2xx (connection errors counted as failures),
every POST answered 201 in PostgreSQL by id; an update to an image that never gets healthy
(2.0.1-unready): Swarm rolls it back by itself, 0 failed requests, the play fails naming the cause;
a worker host stopped (`docker stop` of its test host) under writers: its backend task runs again on
the others, the requests that failed (if any) all started before the manager marked the node down
(the detection time, measured and recorded), no acknowledged write lost, and the node is Ready again
once started (its exporters scraped again). One Prometheus on the manager scrapes every node's
cAdvisor and node_exporter on the swarm's monitoring network. The clients run on the manager and
use its edge (127.0.0.1:8080, host-mode port).
"""
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import writer_load  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api, deploy  # noqa: E402  pylint: disable=wrong-import-position

BACKEND = "moneytracker_backend"
TOOL = "/usr/local/sbin/moneytracker-db"
V200 = "moneytracker/backend:2.0.0"
V201 = "moneytracker/backend:2.0.1"
UNREADY = "moneytracker/backend:2.0.1-unready"


def recaps(out):
    """{host: {'ok': N, 'changed': N, ...}} from the play recap."""
    found = {}
    for line in out.splitlines():
        m = re.match(r"^\s*(mt-swarm-\d)\s*:\s*(ok=.*)$", line)
        if m:
            found[m.group(1)] = {k: int(v) for k, v in (kv.split("=") for kv in m.group(2).split())}
    return found


def tasks(manager, service=BACKEND):
    """The service's running tasks: [(task id, node, image)]."""
    out = manager.check_output(f"docker service ps {service} --filter desired-state=running "
                               "--format '{{.ID}} {{.Node}} {{.Image}} {{.CurrentState}}'")
    return [tuple(line.split()[:3]) for line in out.splitlines() if " Running " in f" {line} "]


def service_image(manager, service=BACKEND):
    return manager.check_output(f"docker service inspect {service} --format '{{{{.Spec.TaskTemplate.ContainerSpec.Image}}}}'")


def failures(records):
    return [r for r in records if not 200 <= r["s"] < 300]


def test_three_nodes_form_one_swarm(manager, workers):
    nodes = manager.check_output("docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'")
    lines = sorted(nodes.splitlines())
    assert [line.split()[:3] for line in lines] == [[f"mt-swarm-{i}", "Ready", "Active"] for i in (1, 2, 3)], nodes
    assert lines[0].endswith("Leader"), nodes
    for node in [manager] + workers:
        # dockerd refuses a swarm with live-restore: the docker role turned it off.
        assert node.check_output("docker info --format '{{.LiveRestoreEnabled}} {{.Swarm.LocalNodeState}}'") == "false active"
    labels = manager.check_output("docker node inspect mt-swarm-1 --format '{{json .Spec.Labels}}'")
    assert json.loads(labels) == {"moneytracker.edge": "true", "moneytracker.postgres": "true"}


def test_round_trip_through_the_edge_and_tasks_on_two_nodes(manager):
    account = api(manager, "POST", "/api/accounts", {"name": "swarm-roundtrip"})
    tx = api(manager, "POST", "/api/transactions", {"account_id": account["id"], "amount_cents": 1234,
                                                    "description": "swarm round trip", "occurred_on": "2026-12-01"})
    assert any(t["id"] == tx["id"] for t in api(manager, "GET", f"/api/transactions?account_id={account['id']}"))
    running = tasks(manager)
    assert len(running) == 3, running
    assert len({task[1] for task in running}) >= 2, running
    # PostgreSQL runs on the labelled node, and the password is a Swarm secret, in no environment.
    assert {task[1] for task in tasks(manager, "moneytracker_postgres")} == {"mt-swarm-1"}
    spec = manager.check_output(f"docker service inspect {BACKEND} moneytracker_postgres")
    password = manager.check_output("docker exec $(docker ps -q -f label=com.docker.swarm.service.name=moneytracker_postgres"
                                    " | head -1) cat /run/secrets/postgres_password")
    assert len(password) >= 16 and password not in spec
    assert "/run/secrets/postgres_password" in spec


def test_backups_and_checks_run_where_postgresql_runs(manager, workers):
    """The moneytracker_db role on the first manager only: its cron jobs and a verified backup of the
    PostgreSQL task on that node (the host tool finds it by its Swarm service label)."""
    cron = manager.file("/etc/cron.d/moneytracker-db").content_string
    assert "moneytracker-db-cron backup" in cron and "moneytracker-db-cron check --full" in cron, cron
    backup = json.loads(manager.check_output("/usr/local/sbin/moneytracker-db backup --json"))
    assert backup["ok"] and backup["engine"] == "postgres", backup
    for worker in workers:
        assert not worker.file("/etc/cron.d/moneytracker-db").exists
        assert not worker.file("/usr/local/sbin/moneytracker-db").exists


def prometheus_up(manager):
    """{(job, node): value of `up`} from the manager's Prometheus (published on its loopback only)."""
    body = manager.check_output("curl -sS --max-time 5 'http://127.0.0.1:9090/api/v1/query?query=up'")
    result = json.loads(body)["data"]["result"]
    return {(r["metric"]["job"], r["metric"].get("node", "")): r["value"][1] for r in result}


def wait_all_up(manager, timeout=90):
    """Every node's cadvisor and node targets up in Prometheus, or what was seen at the end."""
    expected = {(job, f"mt-swarm-{i}") for job in ("cadvisor", "node") for i in (1, 2, 3)}
    deadline = time.time() + timeout
    while True:
        seen = prometheus_up(manager)
        if all(seen.get(key) == "1" for key in expected) or time.time() > deadline:
            return expected, seen
        time.sleep(2)


def test_one_prometheus_scrapes_every_node(manager, workers):
    """cAdvisor and node_exporter on every node, Prometheus on the first manager only, scraping them
    all by name on the swarm's monitoring network: nothing published beyond loopback for it."""
    expected, seen = wait_all_up(manager)
    assert all(seen.get(key) == "1" for key in expected), seen
    for node, name in [(manager, "mt-swarm-1")] + [(w, f"mt-swarm-{i}") for i, w in ((2, workers[0]), (3, workers[1]))]:
        services = node.check_output("docker ps --filter label=com.docker.compose.project=moneytracker-monitoring "
                                     "--format '{{.Label \"com.docker.compose.service\"}}'").split()
        assert sorted(services) == (["cadvisor", "node-exporter", "prometheus"] if name == "mt-swarm-1"
                                    else ["cadvisor", "node-exporter"]), (name, services)
        listening = node.check_output("ss -H -l -n -t")
        for port in (8081, 9090, 9100):
            assert not re.search(rf"(0\.0\.0\.0|\*|\[::\]):{port}\b", listening), (name, port, listening)
    # The host tool's textfile metrics reach the same Prometheus from the PostgreSQL node.
    query = "curl -sS --max-time 5 'http://127.0.0.1:9090/api/v1/query?query=moneytracker_db_newest_backup_timestamp_seconds'"
    deadline = time.time() + 30
    while True:
        body = manager.check_output(query)
        nodes = {r["metric"].get("node") for r in json.loads(body)["data"]["result"]}
        if nodes or time.time() > deadline:
            break
        time.sleep(2)
    assert nodes == {"mt-swarm-1"}, body


def test_rerun_changes_nothing_and_replaces_no_task(manager):
    before = sorted(tasks(manager))
    rc, out = deploy()
    assert rc == 0, out[-3000:]
    counts = recaps(out)
    assert set(counts) == {"mt-swarm-1", "mt-swarm-2", "mt-swarm-3"}, out[-2000:]
    changed = re.findall(r"TASK \[([^\]]+)\][^\n]*\n(?:(?!TASK \[).*\n)*?changed: \[(mt-swarm-\d)\]", out)
    assert all(c["changed"] == 0 for c in counts.values()), (counts, changed)
    assert sorted(tasks(manager)) == before
    # Settled: deployed without waiting for every service to be stable (~20 s a run).
    waited = out.split("Deploy the stack and wait until every service converged", 1)[1].split("TASK [", 1)[0]
    assert "skipping: [mt-swarm-1]" in waited, waited


def test_migration_runs_as_a_job_under_the_lock_and_loses_no_write(manager):
    """1.0.0 (converge) -> 2.0.0, whose migration 0002 is pending: under the lock and the journal on the
    first manager, a verified backup, the backend scaled to 0 (the edge answers 503 with Retry-After),
    the migration as a one-off Swarm job, then the new backend's tasks."""
    tag = "mig" + uuid.uuid4().hex[:6]
    writer_load.start(manager, tag, writers=4)
    rc, out = deploy(f"app_backend_image={V200}")
    records = writer_load.stop(manager, tag)
    flat = " ".join(out.split())
    assert rc == 0, out[-3000:]
    assert ("Migrated 0001 -> 0002 with moneytracker/backend:2.0.0 (PostgreSQL, one transaction, a Swarm job); "
            "backup taken before:") in flat, flat[-3000:]
    assert service_image(manager) == V200 and {task[2] for task in tasks(manager)} == {V200}
    assert api(manager, "GET", "/api/version") == {"release": "2.0.0", "schema": "0002", "head": "0002",
                                                   "features": ["categories"]}
    figures = writer_load.check(manager, tag, records, database="postgres")
    # Only the maintenance answer while the backend was at 0 tasks (503 + Retry-After), never an error.
    assert {r["s"] for r in failures(records)} <= {503}, failures(records)[:5]
    status = json.loads(manager.check_output(f"{TOOL} migration status --json"))
    assert status["lock"]["state"] == "free" and not status["unfinished"], status
    window = [r["t"] for r in failures(records)]
    writer_load.record(f"swarm migration 0001 -> 0002 (a Swarm job) under 4 writers: {figures['answered_2xx']} "
                       f"writes answered 2xx, all in PostgreSQL; {len(window)} answered 503 (maintenance) over "
                       f"{(max(window) - min(window)) if window else 0:.1f} s", "swarm")


def test_rolling_update_under_load_fails_no_request(manager):
    tag = "roll" + uuid.uuid4().hex[:6]
    writer_load.start(manager, tag, writers=4, reads=True)
    started = time.time()
    rc, out = deploy(f"app_backend_image={V201}")
    records = writer_load.stop(manager, tag)
    assert rc == 0, out[-3000:]
    assert service_image(manager) == V201
    assert {task[2] for task in tasks(manager)} == {V201}
    figures = writer_load.check(manager, tag, records, database="postgres")
    writer_load.record(f"swarm rolling update 2.0.0 -> 2.0.1 (3 tasks, start-first) under 4 writers (GET + POST): "
                       f"{len(records)} requests in {time.time() - started:.0f} s, {len(failures(records))} failed; "
                       f"{figures['answered_2xx']} POSTs answered 2xx, all in PostgreSQL by id", "swarm")
    assert not failures(records), failures(records)[:5]


def test_update_that_never_gets_healthy_is_rolled_back_by_swarm(manager):
    tag = "unready" + uuid.uuid4().hex[:6]
    writer_load.start(manager, tag, writers=4, reads=True)
    rc, out = deploy(f"app_backend_image={UNREADY}")
    records = writer_load.stop(manager, tag)
    flat = " ".join(out.split())
    assert rc != 0, out[-3000:]
    assert "did not converge and Swarm rolled it back by itself" in flat, flat[-3000:]
    assert "moneytracker_backend: rollback_completed" in flat, flat[-3000:]
    # The cause, from the health check of a task that never got healthy.
    assert re.search(r"2\.0\.1-unready on mt-swarm-\d, its health check: not ready: .*never ready", flat), flat[-3000:]
    assert service_image(manager) == V201
    assert {task[2] for task in tasks(manager)} == {V201}
    state = manager.check_output(f"docker service inspect {BACKEND} --format '{{{{.UpdateStatus.State}}}}'")
    assert state == "rollback_completed"
    figures = writer_load.check(manager, tag, records, database="postgres")
    writer_load.record(f"swarm update to a never-healthy image under 4 writers: rolled back by Swarm; "
                       f"{len(records)} requests, {len(failures(records))} failed, "
                       f"{figures['answered_2xx']} POSTs answered 2xx, all in PostgreSQL", "swarm")
    assert not failures(records), failures(records)[:5]


def test_worker_lost_under_load(manager):
    lost = next(n for n in ("mt-swarm-3", "mt-swarm-2") if n in {task[1] for task in tasks(manager)})
    tag = "lost" + uuid.uuid4().hex[:6]
    writer_load.start(manager, tag, writers=4, reads=True)
    stopped = time.time()
    subprocess.run(["docker", "stop", lost], check=True, capture_output=True, timeout=120)
    stop_returned = time.time()
    down = rescheduled = None
    deadline = time.time() + 180
    while time.time() < deadline and rescheduled is None:
        status = manager.check_output(f"docker node inspect {lost} --format '{{{{.Status.State}}}}'")
        if down is None and status == "down":
            down = time.time()
        running = tasks(manager)
        if down is not None and len(running) == 3 and lost not in {task[1] for task in running}:
            rescheduled = time.time()
        time.sleep(0.5)
    time.sleep(3)
    records = writer_load.stop(manager, tag)
    assert down is not None, f"{lost} never marked down"
    assert rescheduled is not None, f"its task was not rescheduled: {tasks(manager)}"
    figures = writer_load.check(manager, tag, records, database="postgres")
    failed = failures(records)
    late = [r for r in failed if r["t"] > down + 2]
    writer_load.record(
        f"swarm worker {lost} stopped (docker stop {stop_returned - stopped:.1f} s) under 4 writers: marked down "
        f"{down - stopped:.1f} s after the stop began, its backend task running elsewhere at "
        f"{rescheduled - stopped:.1f} s; {len(records)} requests, {len(failed)} failed "
        f"({sorted({r['s'] for r in failed})}, within {max((r['t'] for r in failed), default=stopped) - stopped:.1f} s "
        f"of the stop); {figures['answered_2xx']} POSTs answered 2xx, all in PostgreSQL", "swarm")
    assert not late, f"requests failed after the node was marked down: {late[:5]}"

    subprocess.run(["docker", "start", lost], check=True, capture_output=True, timeout=120)
    started = time.time()
    while time.time() < started + 180:
        if manager.check_output(f"docker node inspect {lost} --format '{{{{.Status.State}}}}'") == "ready":
            break
        time.sleep(1)
    else:
        raise AssertionError(f"{lost} did not rejoin: " + manager.check_output("docker node ls"))
    writer_load.record(f"swarm worker {lost} started again: Ready {time.time() - started:.1f} s later", "swarm")
    # Its monitoring containers came back with its engine and are scraped again: Docker does not
    # start them itself (on the cluster's overlay network: moby/moby#32607); the role's unit does.
    expected, seen = wait_all_up(manager)
    assert all(seen.get(key) == "1" for key in expected), seen
    unit = subprocess.run(["docker", "exec", lost, "systemctl", "show", "--property=ActiveState,Result",
                           "moneytracker-monitoring-start.service"], capture_output=True, text=True, check=False)
    assert sorted(unit.stdout.split()) == ["ActiveState=active", "Result=success"], unit.stdout + unit.stderr
