#!/usr/bin/env bash
# Fails when a collection that galaxy.yml depends on is missing on the controller. The
# collection is installed with --no-deps (Galaxy is unreachable), so check the dependencies here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python3 - "$ROOT/galaxy.yml" <<'PY'
import json, subprocess, sys
import yaml
from ansible.module_utils.compat.version import LooseVersion
deps = yaml.safe_load(open(sys.argv[1]))["dependencies"] or {}
out = subprocess.run(["ansible-galaxy", "collection", "list", "--format", "json"],
                     check=True, capture_output=True, text=True).stdout
installed = {}
for path in json.loads(out).values():
    for name, meta in path.items():
        installed.setdefault(name, meta["version"])
bad = []
for name, spec in deps.items():
    have = installed.get(name)
    floor = spec.lstrip(">=").strip() if spec.startswith(">=") else None
    if have is None or (floor and LooseVersion(have) < LooseVersion(floor)):
        bad.append(f"{name} {spec} (installed: {have or 'none'})")
if bad:
    sys.exit("missing collection dependencies: " + "; ".join(bad)
             + ". Install the pinned `ansible` package (requirements.txt) or ansible-galaxy collection install -r requirements.yml")
PY
