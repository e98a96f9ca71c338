"""moneytracker_stack_info: the one read of the host that lets a no-op deploy skip what is in place.

The file part runs the real module on real files. The container part's decision (`compare`) is
tested on Docker's data directly, and the module's use of the Docker CLI through a test double
(DOCKER_DOUBLE below, a script answering the five docker commands the module runs with canned
JSON): it proves the module asks for what it needs and passes the answers to `compare`, not that
real Docker answers so. A real engine and Compose answer in the Molecule default scenario
(tests/test_noop_deploy.py and the no-op checks: the second deploy starts nothing)."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
MODULE_FILE = ROOT / "plugins/modules/moneytracker_stack_info.py"
STACK_UTILS = ROOT / "plugins/module_utils/stack.py"


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _collections(collections_tree, monkeypatch):
    """The module imports the collection's module_utils: its process gets the collection tree."""
    monkeypatch.setenv("PYTHONPATH", str(collections_tree))


def run(tmp_path, env=None, check_mode=False, **params):
    if check_mode:
        params["_ansible_check_mode"] = True
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
    proc = subprocess.run([sys.executable, str(MODULE_FILE), str(args)], capture_output=True, text=True, timeout=120,
                          cwd=str(tmp_path), env=dict(os.environ, **(env or {})), check=False)
    return proc, json.loads(proc.stdout)


def test_files_dirs_and_secret_comparison(tmp_path):
    root = tmp_path / "project"
    (root / "releases" / "20260101T000000Z").mkdir(parents=True)
    (root / "releases" / "20260102T000000Z").mkdir()
    (root / "releases" / "20260102T000000Z" / "compose.yaml").write_text("services: {}\n")
    (root / "releases" / "20260102T000000Z" / "release.json").write_text('{"schema_after": "0002"}')
    (root / "secret_key").write_text("s3cr3t-value-never-shown")
    (root / "compose.old.yaml").write_text("    env_file:\n      - /opt/x/secrets.env\n")
    (root / "compose.yaml").write_text("services: {}\n")
    os.chmod(root / "secret_key", 0o400)
    for check_mode in (False, True):
        proc, res = run(tmp_path, check_mode=check_mode,
                        stat=[str(root / "compose.yaml"), str(root / "secret_key"), str(root / "missing"), str(root)],
                        checksum=[str(root / "compose.yaml")],
                        same_content={str(root / "secret_key"): "s3cr3t-value-never-shown",
                                      str(root / "compose.yaml"): "other"},
                        list_dirs=[str(root / "releases"), str(root / "nope")],
                        newest_entry={str(root / "releases"): "compose.yaml"},
                        newest_json={str(root / "releases"): "release.json"},
                        containing={"root": str(root), "patterns": ["compose*.yaml"],
                                    "regex": r'^\s*- "?/\S*/secrets\.env"?\s*$'})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "s3cr3t-value-never-shown" not in proc.stdout
        assert res["changed"] is False
        st = res["stat"]
        assert st[str(root / "missing")] is None
        assert st[str(root)]["dir"] is True
        assert st[str(root / "secret_key")]["mode"] == "0400" and "sha1" not in st[str(root / "secret_key")]
        assert st[str(root / "compose.yaml")]["sha1"] == hashlib.sha1(b"services: {}\n").hexdigest()
        assert res["same_content"] == {str(root / "secret_key"): True, str(root / "compose.yaml"): False}
        assert [e["name"] for e in res["dirs"][str(root / "releases")]] == ["20260101T000000Z", "20260102T000000Z"]
        assert all(e["dir"] for e in res["dirs"][str(root / "releases")])
        assert res["dirs"][str(root / "nope")] is None
        assert res["newest_entry"][str(root / "releases")] == {
            "name": "20260102T000000Z", "sha1": hashlib.sha1(b"services: {}\n").hexdigest()}
        assert res["newest_json"][str(root / "releases")] == {"schema_after": "0002"}
        assert res["containing"] == [str(root / "compose.old.yaml")]
        # No project: Docker is not asked (a host without the engine yet).
        assert res["in_sync"] is False and "services" not in res


def _container(name, service, hash_="h-" + "b", image="sha256:b", state="running", health="healthy"):
    return {"name": name, "service": service, "state": state, "health": health, "hash": hash_, "image_id": image}


@pytest.fixture(name="compare")
def fixture_compare():
    return _load(STACK_UTILS).compare


CONFIG = {"backend": "mt/backend:2", "frontend": "mt/frontend:1"}
HASHES = {"backend": "h-b", "frontend": "h-f"}
IDS = {"mt/backend:2": "sha256:b", "mt/frontend:1": "sha256:f"}


def _running():
    return [_container("mt-backend-1", "backend"),
            _container("mt-frontend-1", "frontend", hash_="h-f", image="sha256:f", health=None)]


def test_in_sync_only_when_every_service_runs_its_configuration_healthy(compare):
    assert compare(CONFIG, HASHES, _running(), IDS, "mt")["in_sync"] is True

    cases = {
        "another configuration": ([_container("mt-backend-1", "backend", hash_="old")] + _running()[1:], IDS),
        "another image": (_running(), dict(IDS, **{"mt/backend:2": "sha256:new"})),
        "image missing": (_running(), dict(IDS, **{"mt/backend:2": None})),
        "no container": (_running()[1:], IDS),
        "starting": ([_container("mt-backend-1", "backend", health="starting")] + _running()[1:], IDS),
        "left by an interrupted recreate": (_running() + [_container("0123456789ab_mt-backend-1", "backend")], IDS),
        "no service": (_running() + [_container("mt-worker-1", "worker")], IDS),
    }
    for why, (containers, ids) in cases.items():
        res = compare(CONFIG, HASHES, containers, ids, "mt")
        assert res["in_sync"] is False, why
        assert res["out_of_sync"], why
    leftover = compare(CONFIG, HASHES, cases["left by an interrupted recreate"][0], IDS, "mt")
    assert leftover["leftovers"] == ["0123456789ab_mt-backend-1"] and leftover["orphans"] == []
    assert compare(CONFIG, HASHES, cases["no service"][0], IDS, "mt")["orphans"] == ["mt-worker-1"]


def test_unhealthy_or_stopped_on_the_current_configuration_is_to_restart(compare):
    stopped = [_container("mt-backend-1", "backend"),
               _container("mt-frontend-1", "frontend", hash_="h-f", image="sha256:f", state="exited", health=None)]
    res = compare(CONFIG, HASHES, stopped, IDS, "mt")
    assert res["in_sync"] is False and res["unhealthy"] == ["frontend"]
    assert "mt-frontend-1 is exited" in res["out_of_sync"]
    sick = [_container("mt-backend-1", "backend", health="unhealthy")] + _running()[1:]
    assert compare(CONFIG, HASHES, sick, IDS, "mt")["unhealthy"] == ["backend"]
    # Still starting: not in sync (up --wait waits for it), but not restarted either.
    starting = [_container("mt-backend-1", "backend", health="starting")] + _running()[1:]
    res = compare(CONFIG, HASHES, starting, IDS, "mt")
    assert res["in_sync"] is False and res["unhealthy"] == []
    # On another configuration a recreate (up) is what it needs, not a restart.
    old = [_container("mt-backend-1", "backend", hash_="old", health="unhealthy")] + _running()[1:]
    assert compare(CONFIG, HASHES, old, IDS, "mt")["unhealthy"] == []


# Test double of the Docker CLI: answers the commands the module runs from canned JSON.
DOCKER_DOUBLE = r'''#!/usr/bin/env python3
import json, os, sys
state = json.load(open(os.environ["DOCKER_DOUBLE_STATE"]))
a = sys.argv[1:]
with open(os.environ["DOCKER_DOUBLE_STATE"] + ".calls", "a") as log:
    log.write(" ".join(a) + "\n")
if a[:1] == ["ps"]:
    print("\n".join(c["Id"] for c in state["containers"]))
elif a[:2] == ["container", "inspect"]:
    print(json.dumps([c for c in state["containers"] if c["Id"] in a[2:]]))
elif a[:1] == ["compose"] and "--hash" in a:
    print("\n".join(f"{k} {v}" for k, v in state["hashes"].items()))
elif a[:1] == ["compose"] and "--format" in a:
    print(json.dumps({"services": {k: {"image": v} for k, v in state["images"].items()}}))
elif a[:2] == ["volume", "inspect"]:
    found = [{"Name": n, "Mountpoint": state["volumes"][n]} for n in a[2:] if n in state.get("volumes", {})]
    print(json.dumps(found))
    sys.exit(0 if len(found) == len(a[2:]) else 1)
elif a[:2] == ["image", "inspect"]:
    ref = a[-1]
    if ref in state["image_ids"]:
        print(state["image_ids"][ref])
    else:
        sys.exit(1)
else:
    sys.exit(2)
'''


def test_reads_the_stack_through_the_docker_cli(tmp_path):
    double = tmp_path / "docker-double"
    double.write_text(DOCKER_DOUBLE)
    double.chmod(0o755)
    project = tmp_path / "project"
    project.mkdir()
    (project / "compose.yaml").write_text("services: {}\n")

    def container(cid, name, service, hash_, image):
        return {"Id": cid, "Name": "/" + name, "Image": image,
                "State": {"Status": "running", "Health": {"Status": "healthy"}},
                "Config": {"Labels": {"com.docker.compose.service": service, "com.docker.compose.project": "mt",
                                      "com.docker.compose.config-hash": hash_,
                                      "com.docker.compose.project.working_dir": "/srv/old-project"}}}
    state = {"containers": [container("c1", "mt-backend-1", "backend", "h-b", "sha256:b")],
             "hashes": {"backend": "h-b"}, "images": {"backend": "mt/backend:2"},
             "image_ids": {"mt/backend:2": "sha256:b"}}
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(state))
    env = {"DOCKER_DOUBLE_STATE": str(state_file)}
    proc, res = run(tmp_path, env, project_dir=str(project), project_name="mt", docker=str(double))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert res["in_sync"] is True and res["containers"] == ["mt-backend-1"]
    assert res["services"]["backend"]["want_hash"] == "h-b"
    calls = (tmp_path / "state.json.calls").read_text()
    assert "ps --all --quiet --no-trunc --filter label=com.docker.compose.project=mt" in calls
    assert f"--file {project}/compose.yaml config --hash *" in calls

    state["hashes"]["backend"] = "h-new"
    state_file.write_text(json.dumps(state))
    dummy, res = run(tmp_path, env, project_dir=str(project), project_name="mt", docker=str(double))
    assert res["in_sync"] is False and res["out_of_sync"] == ["mt-backend-1 runs another configuration of backend"]

    (project / "compose.yaml").unlink()
    dummy, res = run(tmp_path, env, project_dir=str(project), project_name="mt", docker=str(double))
    # Without a compose file the project's containers are still listed, with their project
    # directory: another one than project_dir means app_project_dir changed (the app's move.yml).
    assert res["compose_file"] is False and res["in_sync"] is False and res["containers"] == ["mt-backend-1"]
    assert res["working_dirs"] == ["/srv/old-project"]


def test_routes_must_name_the_one_container_of_each_routed_service(compare):
    routes = {"backend": "mt-backend-1:8000", "frontend": "mt-frontend-1:8080"}
    assert compare(CONFIG, HASHES, _running(), IDS, "mt", routes)["in_sync"] is True
    stale = compare(CONFIG, HASHES, _running(), IDS, "mt", dict(routes, backend="mt-backend-2:8000"))
    assert stale["out_of_sync"] == ["the edge routes backend to mt-backend-2:8000, not to mt-backend-1"]
    first = compare(CONFIG, HASHES, _running(), IDS, "mt", dict(routes, frontend=""))
    assert first["out_of_sync"] == ["the edge routes frontend to nothing, not to mt-frontend-1"]
    two = _running() + [_container("mt-backend-2", "backend")]
    res = compare(CONFIG, HASHES, two, IDS, "mt", routes)
    assert res["in_sync"] is False
    assert res["out_of_sync"] == ["service backend has 2 containers (mt-backend-1, mt-backend-2): a rollout did not finish"]


def test_routes_file_round_trip_and_refuses_what_is_not_a_route():
    stack = _load(STACK_UTILS)
    routes = {"frontend": "mt-frontend-1:8080", "backend": "mt-backend-2:8000"}
    text = stack.render_routes(routes)
    assert text.splitlines()[-2:] == ['set $mt_route_backend "mt-backend-2:8000";',
                                      'set $mt_route_frontend "mt-frontend-1:8080";']
    assert stack.parse_routes(text) == routes
    assert stack.parse_routes("# comment\nset $other \"x:1\";\n") == {}
    for bad in ({"backend": "x; include /etc/passwd:1"}, {"backend": "mt-backend-1"}, {"Back-end": "a:1"}):
        with pytest.raises(ValueError):
            stack.render_routes(bad)


def test_no_engine_means_no_images(tmp_path):
    """Check mode on a new host (no Docker CLI yet): the images asked for are reported absent, not an
    error (the app's state read asks for them on every deploy, for the images role)."""
    proc, res = run(tmp_path, check_mode=True, images=["moneytracker/backend:2.0.0"],
                    docker=str(tmp_path / "no-docker-here"))
    assert "failed" not in res and res["images"] == [], (proc.stderr, res)


def test_volumes_say_which_engine_holds_data(tmp_path):
    """The app role refuses a deploy that would start an empty database beside the other engine's
    data (roles/app/tasks/main.yml); this is what it reads: each volume's existence and the size of
    the file named in it, through one `docker volume inspect` (the test double above)."""
    double = tmp_path / "docker-double"
    double.write_text(DOCKER_DOUBLE)
    double.chmod(0o755)
    data = tmp_path / "data"
    data.mkdir()
    (data / "moneytracker.db").write_bytes(b"SQLite format 3\0" + b"x" * 100)
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({"containers": [], "volumes": {"mt_data": str(data)}}))
    env = {"DOCKER_DOUBLE_STATE": str(state_file)}
    proc, res = run(tmp_path, env, docker=str(double),
                    volumes={"mt_data": "moneytracker.db", "mt_postgres": "", "mt_other": "x.db"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert res["volumes"] == {"mt_data": {"exists": True, "file_size": 116},
                              "mt_postgres": {"exists": False, "file_size": None},
                              "mt_other": {"exists": False, "file_size": None}}
    (data / "moneytracker.db").unlink()
    dummy, res = run(tmp_path, env, docker=str(double), volumes={"mt_data": "moneytracker.db"})
    assert res["volumes"] == {"mt_data": {"exists": True, "file_size": None}}
