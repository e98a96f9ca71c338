"""docs/runbooks/swarm-nodes.md, every command as written, on the three test hosts (after test_swarm.py):
- "Drain a node for maintenance" (mt-swarm-2) under writers through the edge: every response 2xx,
  every acknowledged write in PostgreSQL; the node's tasks ran elsewhere while it was drained and
  the backend is spread again over three nodes afterwards;
- "A node lost" for good: mt-swarm-3's test host stopped (`docker stop`), the section run once the
  manager shows it Down (`docker node rm`);
- "Add a node": mt-swarm-3 started again as a stand-in for a new host (it leaves the swarm it was
  removed from first: `docker swarm leave --force`, a fixture step, not the runbook's; it still has the
  images and the engine, so this proves the join and the spread, not a bare host's install, which
  converge proves for all three), then deploy.yml joins it and the backend is spread onto it.
`inventories/<site>` is Molecule's inventory naming the release that runs (see site()).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
import runbook_commands as rb  # noqa: E402  pylint: disable=wrong-import-position
import writer_load  # noqa: E402  pylint: disable=wrong-import-position
from playbook_runs import api  # noqa: E402  pylint: disable=wrong-import-position

PROJECT_DIR = os.environ.get("MOLECULE_PROJECT_DIRECTORY", str(Path(__file__).resolve().parents[3]))
TRANSCRIPT = Path(PROJECT_DIR) / ".build" / "logs" / "runbooks-transcript-swarm.txt"
RUNBOOK = "swarm-nodes.md"
RAN: set[tuple[str, int]] = set()


def site(manager) -> str:
    """The stand-in for the operator's inventory: Molecule's (its file and group_vars), naming the
    backend image that runs now, as the operator's does (Molecule's names converge's 1.0.0, whose
    schema the database has left behind)."""
    inventory = Path(tempfile.mkdtemp(prefix="swarm-site-")) / "inventory"
    shutil.copytree(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent, inventory)
    image = manager.check_output("docker service inspect moneytracker_backend "
                                 "--format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'")
    (inventory / "host_vars").mkdir(exist_ok=True)
    for name in ("mt-swarm-1", "mt-swarm-2", "mt-swarm-3"):
        (inventory / "host_vars" / f"{name}.yml").write_text(f"app_backend_image: {image}\n")
    return str(inventory)


def run_as_written(manager, section: str, node: str) -> list:
    return rb.run_as_written(manager, rb.section(rb.runbook(RUNBOOK), section),
                             {"<site>": site(manager), "<node>": node},
                             PROJECT_DIR, TRANSCRIPT, RAN)


def backend_nodes(manager) -> list:
    out = manager.check_output("docker service ps moneytracker_backend --filter desired-state=running "
                               "--format '{{.Node}} {{.CurrentState}}'")
    return sorted(line.split()[0] for line in out.splitlines() if " Running " in f" {line} ")


def node_state(manager, node: str) -> str:
    return manager.run(f"docker node inspect {node} --format '{{{{.Status.State}}}}'").stdout.strip()


def wait_for(what, check, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_drain_a_node_under_writers_fails_no_request(manager):
    if not api(manager, "GET", "/api/accounts"):  # (run alone: the writers need an account)
        api(manager, "POST", "/api/accounts", {"name": "swarm-runbook"})
    tag = "drain" + uuid.uuid4().hex[:6]
    writer_load.start(manager, tag, writers=4, reads=True)
    try:
        results = run_as_written(manager, "Drain a node", "mt-swarm-2")
    finally:
        records = writer_load.stop(manager, tag)
    # While drained (the block's last command): every service at its count, none of them on the node.
    drained = results[4].out
    assert "moneytracker_backend" in drained and " 3/3 " in drained, drained
    figures = writer_load.check(manager, tag, records, database="postgres")
    failed = [r for r in records if not 200 <= r["s"] < 300]
    writer_load.record(f"swarm runbook: drain mt-swarm-2, then active + rebalance, under 4 writers (GET + POST): "
                       f"{len(records)} requests, {len(failed)} failed; {figures['answered_2xx']} POSTs answered 2xx, "
                       f"all in PostgreSQL", "swarm")
    assert not failed, failed[:5]
    assert len(set(backend_nodes(manager))) == 3, backend_nodes(manager)


def test_node_lost_for_good_then_a_node_added(manager):
    subprocess.run(["docker", "stop", "mt-swarm-3"], check=True, capture_output=True, timeout=120)
    wait_for("mt-swarm-3 down", lambda: node_state(manager, "mt-swarm-3") == "down")
    wait_for("the backend's 3 tasks on the other nodes",
             lambda: len(backend_nodes(manager)) == 3 and "mt-swarm-3" not in backend_nodes(manager))
    results = run_as_written(manager, "A node lost", "mt-swarm-3")
    assert "mt-swarm-3" not in results[-1].out, results[-1].out

    # The stand-in for a new host: the stopped one, out of the swarm it was removed from.
    subprocess.run(["docker", "start", "mt-swarm-3"], check=True, capture_output=True, timeout=120)
    wait_for("mt-swarm-3's engine", lambda: subprocess.run(
        ["docker", "exec", "mt-swarm-3", "docker", "info"], capture_output=True, check=False).returncode == 0)
    subprocess.run(["docker", "exec", "mt-swarm-3", "docker", "swarm", "leave", "--force"],
                   check=True, capture_output=True, timeout=120)

    # A service changed by hand meanwhile (drift): the stack file is the one deployed last and every
    # service runs all its tasks, so the runbook's deploy.yml deploys without waiting first, sees the
    # change and deploys again, waiting; the hand-made setting is gone afterwards.
    manager.check_output("docker service update --quiet --detach --env-add MT_BY_HAND=1 moneytracker_frontend")
    results = run_as_written(manager, "Add a node", "mt-swarm-3")
    assert results[0].rc == 0
    nodes = results[1].out
    assert "mt-swarm-3" in nodes and nodes.count("Ready") == 3, nodes
    env = manager.check_output("docker service inspect moneytracker_frontend "
                               "--format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}'")
    assert "MT_BY_HAND" not in env, env
    assert "services (rolling update)" in results[0].flat, results[0].flat[-2000:]
    wait_for("a backend task on mt-swarm-3", lambda: "mt-swarm-3" in backend_nodes(manager), timeout=60)


def test_every_command_of_the_runbook_ran():
    every = {(c.runbook, c.line) for c in rb.runbook(RUNBOOK)}
    assert every <= RAN, sorted(every - RAN)
