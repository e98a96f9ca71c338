"""What the benchmarks share (stdlib only): a command's output, the shared Molecule platform's
docker run flags for a throwaway test host, and signal handling that lets a run clean up.

Imported by bench/<name>/run.py (which put bench/ on sys.path first)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PLATFORM_ARGS = r'''
import json, sys, yaml
p = yaml.safe_load(open(sys.argv[1]))["platforms"][0]
args = []
for cap in p.get("capabilities", []): args += ["--cap-add", cap]
for opt in p.get("security_opts", []): args += ["--security-opt", opt]
for vol in p.get("volumes", []):
    if vol != "/var/lib/docker": args += ["-v", vol]
for t in p.get("tmpfs", []): args += ["--tmpfs", t]
for k, v in (p.get("env") or {}).items(): args += ["-e", f"{k}={v}"]
print(json.dumps(args))
'''


def run_text(argv: list[str]) -> str:
    """A command's stdout, stripped; "" when it cannot run (for the report's machine line)."""
    with contextlib.suppress(Exception):
        return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False).stdout.strip()
    return ""


def platform_args(path_env: str) -> list[str]:
    """docker run flags of the shared Molecule platform (.config/molecule/config.yml, as
    scripts/sandbox.sh reads them). The YAML is read by Ansible's own interpreter, which has PyYAML
    (the benchmarks stay stdlib-only); path_env is the PATH that has ansible-playbook."""
    exe = shutil.which("ansible-playbook", path=path_env)
    if not exe:
        raise RuntimeError("ansible-playbook is not on the PATH (make setup; PATH=.venv/bin:$PATH)")
    with open(exe) as fh:
        first = fh.readline()
    py = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
    out = subprocess.run([py, "-c", _PLATFORM_ARGS, os.path.join(REPO, ".config", "molecule", "config.yml")],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return json.loads(out)


def interrupt_on_term() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, so a run's finally: removes its test hosts."""
    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
