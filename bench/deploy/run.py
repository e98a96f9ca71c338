"""bench/deploy: deploy.yml's first run and its no-op rerun against the same work done by hand.

    python3 bench/deploy/run.py [--noop-runs 3] [--out bench/deploy/RESULTS.md]

Goals (issue 10, item 5): the no-op deploy (second run, changed=0) <= 15 s on this machine and
<= 10x `docker compose up -d` with nothing to change on the same host; the first deploy to a new
host <= 1.5x the same steps done by hand. Takes ~3-5 min on a quiet 2-core machine (far more
under load: it says the load average it saw).

What it does (stdlib only on the controller; run as root from the repository root with the venv's
ansible on the PATH, like `make`; both test hosts are removed at the end, also on failure):
 1. two throwaway test hosts, `mt-bench-deploy` and `mt-bench-deploy-bare`: the systemd Debian 13
    container of scripts/sandbox.sh (the platform of .config/molecule/config.yml, a named
    /var/lib/docker volume each), both prepared with molecule/shared/prepare.yml (which also
    refreshes apt's lists, so neither run below downloads them), each with an inventory of its
    own whose group_vars are inventories/sandbox's (images from the .build/images archives);
 2. FIRST DEPLOY: `ansible-playbook -i <inventory> deploy.yml` on mt-bench-deploy, timed;
 3. BARE STEPS on mt-bench-deploy-bare, timed on the controller, the same work by hand: one
    `apt-get install --no-install-recommends` of every package the roles install (docker.io,
    docker-cli, docker-compose, python3-docker, python3, sqlite3, zstd, cron, util-linux), the
    image archives streamed into `docker load`, the schema created by the same one-off container
    the role runs (`docker compose run --rm --no-deps backend moneytracker-migrate upgrade`) and
    `docker compose up -d --wait`. The files (compose file, nginx configuration, secret) are
    copied untimed from the first host: writing them is the deploy's work the baseline does not
    redo (it has no checks, no daemon.json, no host tool, cron, backup or release record);
 4. NO-OP, --noop-runs rounds on mt-bench-deploy, interleaved: `deploy.yml` again (must report
    changed=0) and `docker compose up -d` on the same stack (through `docker exec`, as Ansible's
    connection does); the medians give the ratio. Each play runs with bench/deploy's timing
    callback (callback_plugins/deploy_timer.py: one JSON line per task), so the report says how
    many tasks ran and where the median run's time went (by file and by task);
    After each round, a FLOOR play of the no-op's shape (bench-generated, floor.yml in the work
    dir): a `ping` per host task (the facts come from one of them) and a skipped `debug` per other
    task result: what Ansible itself costs for that many tasks and round trips here, so the report
    can tell the collection's cost from the tool's; and two plays that do nothing (no task; one
    `ping`): what any ansible-playbook run costs here, against the compose no-op;
 5. prints the table and writes --out (Markdown).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import interrupt_on_term, platform_args, run_text  # noqa: E402  (bench/benchlib.py)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TESTHOST_IMAGE = os.environ.get("MOLECULE_TESTHOST_IMAGE", "moneytracker-local/testhost:trixie")
PROJECT_DIR = "/opt/moneytracker"  # app_project_dir's default
EDGE_LINKS_DIR = "/var/lib/moneytracker-edge/moneytracker"  # the app role's _app_edge_links_dir for it
# inventories/sandbox's backend and frontend, and the app role's default edge
IMAGES = ("moneytracker/backend:2.0.0", "moneytracker/frontend:1.0.0", "moneytracker/edge:1.0.0")
# Every package the roles install on Debian 13 with the sandbox's settings (docker: distribution
# + the SDK; moneytracker_db: its list without rsync).
PACKAGES = ["docker.io", "docker-cli", "docker-compose", "python3-docker",
            "python3", "sqlite3", "zstd", "cron", "util-linux"]
LOCAL_ACTIONS = {"ansible.builtin.assert", "ansible.builtin.set_fact", "ansible.builtin.include_tasks",
                 "ansible.builtin.import_tasks", "ansible.builtin.include_role", "ansible.builtin.meta",
                 "ansible.builtin.validate_argument_spec", "ansible.builtin.fail", "ansible.builtin.debug"}
GOAL_NOOP_S, GOAL_NOOP_RATIO, GOAL_FIRST_RATIO = 15.0, 10.0, 1.5


def log(msg: str) -> None:
    print(f"[deploy {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def rel(path: str) -> str:
    """roles/app/tasks/up.yml:63 from the installed collection's absolute path."""
    return path.split("/ansible_collections/moneytracker/deploy/")[-1].split(REPO + "/")[-1]


class Host:
    def __init__(self, bench: "Bench", name: str):
        self.bench, self.name, self.volume = bench, name, f"{name}-docker"
        self.inventory = os.path.join(bench.work, f"inventory-{name}")
        self.created = False

    def sh(self, *argv: str, timeout: float = 900, input: bytes | None = None, stdin=None) -> str:
        return self.bench.sh("docker", "exec", *(["-i"] if input is not None or stdin else []), self.name, *argv,
                             timeout=timeout, input=input, stdin=stdin)

    def create(self) -> None:
        b = self.bench
        if b.sh("docker", "ps", "-aq", "--filter", f"name=^{self.name}$"):
            raise RuntimeError(f"a container named {self.name} exists already (another run?); not touching it")
        if b.sh("docker", "volume", "ls", "-q", "--filter", f"name=^{self.volume}$"):
            raise RuntimeError(f"the volume {self.volume} exists already (another run?); not touching it")
        self.created = True
        b.sh("docker", "run", "-d", "--name", self.name, "--hostname", self.name,
             "--label", "org.moneytracker.role=bench-deploy", "--stop-signal", "SIGRTMIN+3",
             "-v", f"{self.volume}:/var/lib/docker", *platform_args(b.env["PATH"]), TESTHOST_IMAGE, "/sbin/init")
        # Booted before Ansible's first module: Debian 13 mounts a tmpfs on /tmp while it boots, which
        # hides a module payload extracted there a moment earlier (seen under load).
        subprocess.run(["docker", "exec", self.name, "systemctl", "is-system-running", "--wait"],
                       capture_output=True, timeout=600, check=False)
        gv = os.path.join(self.inventory, "group_vars")
        shutil.copytree(os.path.join(REPO, "inventories", "sandbox", "group_vars"), gv)
        with open(os.path.join(self.inventory, "hosts.yml"), "w") as fh:
            fh.write("---\n# bench/deploy: a throwaway test host (removed at the end of the run)\nmoneytracker:\n"
                     f"  hosts:\n    {self.name}:\n      ansible_connection: community.docker.docker\n"
                     "      ansible_python_interpreter: /usr/bin/python3\n")
        with open(os.path.join(gv, "all", "zz-bench-deploy.yml"), "w") as fh:
            fh.write("---\n"
                     f"app_image_archive_dir: {json.dumps(os.path.join(REPO, '.build', 'images'))}\n"
                     f"app_secret_key: \"{{{{ lookup('ansible.builtin.file', '{b.secret}') }}}}\"\n")
        b.playbook(f"prepare-{self.name}", self, os.path.join(REPO, "molecule", "shared", "prepare.yml"))

    def remove(self) -> None:
        if self.created:
            log(f"removing the test host {self.name} and its volume")
            subprocess.run(["docker", "rm", "-f", "-v", self.name], capture_output=True, timeout=300, check=False)
            subprocess.run(["docker", "volume", "rm", "-f", self.volume], capture_output=True, timeout=300,
                           check=False)


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="moneytracker-bench-deploy-", dir=args.workdir)
        self.logs = os.path.join(self.work, "logs")
        os.makedirs(self.logs)
        self.secret = os.path.join(self.work, "app_secret_key")
        with open(os.open(self.secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
            fh.write(secrets.token_urlsafe(36)[:48])
        self.proc: subprocess.Popen | None = None
        self.R: dict = {"loads": [], "noop": [], "compose": []}
        venv = os.path.join(REPO, ".venv", "bin")
        path = os.environ.get("PATH", "")
        if os.path.isdir(venv) and venv not in path.split(":"):
            path = f"{venv}:{path}"
        self.env = {**os.environ, "PATH": path,
                    "ANSIBLE_CONFIG": os.environ.get("ANSIBLE_CONFIG", os.path.join(REPO, "ansible.cfg")),
                    "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH",
                                                               os.path.join(REPO, ".build", "collections")),
                    "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1", "PYTHONUNBUFFERED": "1",
                    "MOLECULE_NESTED_DOCKER_WORKAROUNDS": os.environ.get("MOLECULE_NESTED_DOCKER_WORKAROUNDS",
                                                                         "true")}
        self.deploy = Host(self, args.name)
        self.bare = Host(self, f"{args.name}-bare")

    # ---- running things

    def sh(self, *argv: str, timeout: float = 900, input: bytes | None = None, stdin=None) -> str:
        p = subprocess.run(argv, capture_output=True, timeout=timeout, input=input, stdin=stdin, env=self.env,
                           check=False)
        if p.returncode != 0:
            err = (p.stderr or p.stdout).decode(errors="replace")
            raise RuntimeError(f"{shlex.join(argv[:8])} ... exited {p.returncode}:\n{err[-3000:]}")
        return p.stdout.decode(errors="replace").strip()

    def timed(self, *argv: str, **kw) -> float:
        t = time.monotonic()
        self.sh(*argv, **kw)
        return time.monotonic() - t

    def playbook(self, name: str, host: Host, *argv: str, timer: bool = False) -> tuple[float, str, list]:
        """ansible-playbook from the repository root; (seconds, output, timer records)."""
        path = os.path.join(self.logs, f"{name}.log")
        env = dict(self.env)
        jsonl = os.path.join(self.logs, f"{name}.jsonl")
        if timer:
            env.update(ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
                       ANSIBLE_CALLBACKS_ENABLED="deploy_timer", DEPLOY_TIMER_OUT=jsonl)
        cmd = ["ansible-playbook", "-i", host.inventory, *argv]
        log(f"{name}: {shlex.join(cmd)} (load {load()})")
        t = time.monotonic()
        with open(path, "w") as fh:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
            rc = self.proc.wait(3600)
            self.proc = None
        took = time.monotonic() - t
        text = open(path).read()
        if rc != 0:
            raise RuntimeError(f"{name} failed (rc {rc}); log {path}; tail:\n" + "\n".join(text.splitlines()[-40:]))
        recs = []
        if timer and os.path.exists(jsonl):
            recs = [json.loads(line) for line in open(jsonl) if line.strip()]
        return took, text, recs

    def kill_playbook(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # the group of the ansible-playbook WE started
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(15)

    def first_deploy(self) -> None:
        self.R["loads"].append(("first deploy", load()))
        took, text, recs = self.playbook("first-deploy", self.deploy, "deploy.yml", timer=True)
        self.R["first"] = {"seconds": took, "recap": self.recap(recs), "recs": recs}
        log(f"first deploy: {took:.1f} s")

    def bare_steps(self) -> None:
        h = self.bare
        # The deployed files, untimed: the compose file and what it mounts (nginx config, secret,
        # the edge's directories through their links).
        tree = subprocess.run(["docker", "exec", self.deploy.name, "tar", "-C", "/", "-c",
                               PROJECT_DIR.lstrip("/"), EDGE_LINKS_DIR.lstrip("/")],
                              capture_output=True, check=True, timeout=300).stdout
        self.R["loads"].append(("bare steps", load()))
        steps = {}
        steps["apt-get install"] = self.timed(
            "docker", "exec", "-e", "DEBIAN_FRONTEND=noninteractive", h.name, "apt-get", "install", "-y", "-q",
            "--no-install-recommends", *PACKAGES, timeout=1800)
        t = time.monotonic()
        for image in IMAGES:
            archive = os.path.join(REPO, ".build", "images", image.replace("/", "-").replace(":", "-") + ".tar")
            with open(archive, "rb") as fh:
                h.sh("docker", "load", "--quiet", stdin=fh)
        steps["docker load (archives streamed in)"] = time.monotonic() - t
        h.sh("tar", "-C", "/", "-x", input=tree)
        compose = ["docker", "compose", "--project-directory", PROJECT_DIR]
        steps["docker volume create + schema (one-off upgrade container)"] = self.timed(
            "docker", "exec", h.name, "sh", "-c",
            "docker volume create moneytracker_data >/dev/null && "
            f"docker compose --project-directory {PROJECT_DIR} run --rm --no-deps --no-TTY backend "
            "moneytracker-migrate upgrade")
        steps["docker compose up -d --wait"] = self.timed("docker", "exec", h.name, *compose, "up", "-d", "--wait",
                                                          timeout=600)
        self.R["bare"] = {"seconds": sum(steps.values()), "steps": steps}
        log(f"bare steps: {self.R['bare']['seconds']:.1f} s {steps}")

    def floor_playbook(self, recs: list) -> str:
        """The least any playbook of the no-op's shape costs here: one `ping` round trip per host
        task the no-op ran (its facts come from one of them, moneytracker_host_facts), and one
        trivial controller task (a skipped `debug`) per other task result. What the no-op costs
        above this is its own."""
        prof = self.profile(recs)
        host_reads = prof["remote"]
        others = prof["results"] - prof["remote"]
        tasks = ["    - ansible.builtin.ping:\n"] * host_reads
        tasks += ["    - ansible.builtin.debug: {msg: x}\n      when: false\n"] * others
        path = os.path.join(self.work, "floor.yml")
        with open(path, "w") as fh:
            fh.write("---\n- name: Floor\n  hosts: all\n  gather_facts: false\n  tasks:\n" + "".join(tasks))
        self.R["floor_shape"] = {"host_reads": host_reads, "others": others}
        return path

    def noop_rounds(self) -> None:
        compose = ["docker", "exec", self.deploy.name, "docker", "compose", "--project-directory", PROJECT_DIR,
                   "up", "-d"]
        floor = None
        for i in range(1, self.args.noop_runs + 1):
            self.R["loads"].append((f"no-op round {i}", load()))
            took, text, recs = self.playbook(f"noop-{i}", self.deploy, "deploy.yml", timer=True)
            recap = self.recap(recs)
            if recap.get("changed", 0) != 0:
                raise RuntimeError(f"no-op run {i} reported changed={recap.get('changed')} (expected 0); see "
                                   f"{self.logs}/noop-{i}.log")
            self.R["noop"].append({"seconds": took, "recap": recap, "recs": recs})
            c = statistics.median(self.timed(*compose) for _round in range(3))
            self.R["compose"].append(c)
            floor = floor or self.floor_playbook(recs)
            f, _text, _recs = self.playbook(f"floor-{i}", self.deploy, floor)
            self.R.setdefault("floor", []).append(f)
            # What any ansible-playbook costs here: a play with no task, and one with a single ping.
            e, _text, _recs = self.playbook(f"empty-{i}", self.deploy, self.tiny_playbook("empty", []))
            p, _text, _recs = self.playbook(f"ping-{i}", self.deploy,
                                            self.tiny_playbook("ping", ["    - ansible.builtin.ping:\n"]))
            self.R.setdefault("empty", []).append(e)
            self.R.setdefault("ping", []).append(p)
            log(f"no-op {i}: {took:.1f} s ({recap}); compose no-op {c:.2f} s; floor play {f:.1f} s; "
                f"empty play {e:.2f} s; one-ping play {p:.2f} s")

    def tiny_playbook(self, name: str, tasks: list) -> str:
        path = os.path.join(self.work, f"{name}.yml")
        with open(path, "w") as fh:
            fh.write("---\n- name: " + name + "\n  hosts: all\n  gather_facts: false\n  tasks:"
                     + ("\n" + "".join(tasks) if tasks else " []\n"))
        return path

    # ---- analysis

    @staticmethod
    def recap(recs: list) -> dict:
        for r in recs:
            if "stats" in r:
                return next(iter(r["stats"].values()), {})
        return {}

    @staticmethod
    def tasks(recs: list) -> list:
        return [r for r in recs if "name" in r]

    def profile(self, recs: list) -> dict:
        tasks = self.tasks(recs)
        ran = [r for r in tasks if r["status"] != "skipped"]
        remote = [r for r in ran if r["action"] not in LOCAL_ACTIONS]
        by_file: dict[str, list] = {}
        for r in tasks:
            f = rel(r["path"]).rsplit(":", 1)[0] or "?"
            e = by_file.setdefault(f, [0.0, 0, 0])
            e[0] += r["end"] - r["start"] + r["gap"]
            e[1] += 1
            e[2] += r in remote
        top = sorted(ran, key=lambda r: -(r["end"] - r["start"]))[:15]
        return {"results": len(tasks), "ran": len(ran), "skipped": len(tasks) - len(ran), "remote": len(remote),
                "remote_s": sum(r["end"] - r["start"] for r in remote),
                "local_s": sum(r["end"] - r["start"] for r in ran if r not in remote),
                "by_file": sorted(by_file.items(), key=lambda kv: -kv[1][0]), "top": top}

    def run(self) -> None:
        if not self.args.no_build:
            log("make collection")
            self.sh("make", "-C", REPO, "collection", timeout=900)
        for image in IMAGES:
            archive = os.path.join(REPO, ".build", "images", image.replace("/", "-").replace(":", "-") + ".tar")
            if not os.path.exists(archive):
                raise RuntimeError(f"{archive} is missing: run `make images` first")
        self.sh(os.path.join(REPO, "scripts", "build-images.sh"), "testhost", timeout=1800)
        log(f"creating the test hosts {self.deploy.name} and {self.bare.name}")
        self.deploy.create()
        self.bare.create()
        self.first_deploy()
        self.bare_steps()
        self.noop_rounds()

    def cleanup(self) -> None:
        self.kill_playbook()
        if not self.args.keep_hosts:
            self.deploy.remove()
            self.bare.remove()
        with contextlib.suppress(OSError):
            os.unlink(self.secret)
        log(f"logs in {self.logs}")

    # ---- the report

    def report(self) -> str:
        R = self.R
        noop_s = statistics.median(r["seconds"] for r in R["noop"])
        median_run = sorted(R["noop"], key=lambda r: r["seconds"])[len(R["noop"]) // 2]
        comp = statistics.median(R["compose"])
        floor_s = statistics.median(R["floor"])
        first, bare = R["first"]["seconds"], R["bare"]["seconds"]
        prof = self.profile(median_run["recs"])
        rc = median_run["recap"]
        rows = [
            ("no-op deploy (changed=0), median of %d" % len(R["noop"]), f"{noop_s:.1f} s",
             f"goal <= {GOAL_NOOP_S:.0f} s", met(noop_s <= GOAL_NOOP_S)),
            ("`docker compose up -d` with nothing to change, median", f"{comp:.2f} s", "", ""),
            ("no-op deploy / compose no-op", f"{noop_s / comp:.1f}x", f"goal <= {GOAL_NOOP_RATIO:.0f}x",
             met(noop_s / comp <= GOAL_NOOP_RATIO)),
            ("tasks in the no-op deploy: ran (ok) / skipped / on the host",
             f"{prof['ran']} / {prof['skipped']} / {prof['remote']}",
             f"recap ok={rc.get('ok')} changed={rc.get('changed')} skipped={rc.get('skipped')}", ""),
            ("time in host tasks / in controller-only tasks", f"{prof['remote_s']:.1f} s / {prof['local_s']:.1f} s",
             "", ""),
            ("floor play of the same shape (%d pings + %d skipped debug tasks), median"
             % (R["floor_shape"]["host_reads"], R["floor_shape"]["others"]),
             f"{floor_s:.1f} s", f"{floor_s / comp:.1f}x the compose no-op", ""),
            ("no-op deploy / floor play", f"{noop_s / floor_s:.2f}x", "what the tasks cost beyond being tasks", ""),
            ("`ansible-playbook` of a play with no task / with one `ping`, median",
             f"{statistics.median(R['empty']):.2f} s / {statistics.median(R['ping']):.2f} s",
             f"{statistics.median(R['empty']) / comp:.1f}x / {statistics.median(R['ping']) / comp:.1f}x "
             "the compose no-op", "Ansible's own floor here"),
            ("first deploy to a new host", f"{first:.1f} s", f"bare steps {bare:.1f} s", ""),
            ("first deploy / bare steps", f"{first / bare:.2f}x", f"goal <= {GOAL_FIRST_RATIO}x",
             met(first / bare <= GOAL_FIRST_RATIO)),
        ]
        self.table_rows = rows
        out = [f"# bench/deploy results ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
               "`python3 bench/deploy/run.py --noop-runs %d` on commit %s; %s" % (
                   self.args.noop_runs, self.commit, self.machine()),
               "Load average (1/5/15 min) at each step: "
               + "; ".join(f"{k} {v}" for k, v in R["loads"]) + f"; end {load()}.", "",
               "| metric | value | baseline / goal | |", "| --- | ---: | --- | --- |"]
        out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
        out += ["", "All no-op runs: " + ", ".join(
            f"{r['seconds']:.1f} s (ok={r['recap'].get('ok')}, changed={r['recap'].get('changed')}, "
            f"skipped={r['recap'].get('skipped')})" for r in R["noop"])
            + "; compose no-op (median of 3 each round): " + ", ".join(f"{c:.2f} s" for c in R["compose"]) + ".", "",
            "Bare steps: " + "; ".join(f"{k} {v:.1f} s" for k, v in R["bare"]["steps"].items())
            + f". First deploy recap: {R['first']['recap']}.", "",
            "## Where the median no-op run's time goes", "",
            "By file (task time + the gap before each task; tasks = results incl. skipped, host = ran on the host):", "",
            "| file | seconds | tasks | on the host |", "| --- | ---: | ---: | ---: |"]
        out += [f"| {f} | {v[0]:.1f} | {v[1]} | {v[2]} |" for f, v in prof["by_file"] if v[0] >= 0.05]
        out += ["", "The 15 longest tasks:", "", "| seconds | task | file:line | action |", "| ---: | --- | --- | --- |"]
        out += [f"| {r['end'] - r['start']:.2f} | {r['name'].replace('|', '/')} | {rel(r['path'])} | {r['action']} |"
                for r in prof["top"]]
        fprof = self.profile(R["first"]["recs"])
        out += ["", "## Where the first deploy's time goes (the 15 longest tasks)", "",
                "| seconds | task | file:line | action |", "| ---: | --- | --- | --- |"]
        out += [f"| {r['end'] - r['start']:.2f} | {r['name'].replace('|', '/')} | {rel(r['path'])} | {r['action']} |"
                for r in fprof["top"]]
        out += ["", "Logs and the per-task JSON lines of every play: the run's temp dir "
                "(`--workdir`, printed at the end; kept).", ""]
        return "\n".join(out)

    def machine(self) -> str:
        cpu = ""
        with contextlib.suppress(OSError):
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        return (f"{os.cpu_count()} CPUs ({cpu}), kernel {platform.release()}, "
                f"Docker {run_text(['docker', 'version', '-f', '{{.Server.Version}}'])} on the controller.")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--noop-runs", type=int, default=3, help="no-op rounds (deploy + compose no-op), default 3")
    ap.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--name", default="mt-bench-deploy", help="the test hosts' name (and <name>-bare)")
    ap.add_argument("--no-build", action="store_true", help="do not run `make collection` first")
    ap.add_argument("--keep-hosts", action="store_true", help="do not remove the test hosts at the end")
    ap.add_argument("--workdir", default="/var/tmp", help="parent of the temp dir (inventories, logs)")
    args = ap.parse_args()
    if args.noop_runs < 1:
        ap.error("--noop-runs must be >= 1")
    if os.geteuid() != 0:
        print("run as root (Docker, like the other benchmarks)", file=sys.stderr)
        return 2

    interrupt_on_term()

    bench = Bench(args)
    dirty = run_text(["git", "-C", REPO, "status", "--porcelain", "--", "roles", "playbooks", "ansible.cfg"])
    bench.commit = ((run_text(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]) or "?")
                    + (" (with uncommitted changes)" if dirty else ""))
    try:
        bench.run()
        text = bench.report()
    finally:
        bench.cleanup()
    width = max(len(r[0]) for r in bench.table_rows)
    print()
    for r in bench.table_rows:
        print(f"{r[0]:<{width}}  {r[1]:>14}  {r[2]:<30} {r[3]}")
    with open(args.out, "w") as fh:
        fh.write(text)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
