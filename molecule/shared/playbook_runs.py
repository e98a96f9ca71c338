"""Test helper shared by the scenarios' verifiers: run ansible-playbook against Molecule's
inventory, several runs side by side (each case only reads the host until its preflight fails)."""
from __future__ import annotations

import os
import subprocess


def run_side_by_side(playbook: str, extra_vars_list: list[list[str]], timeout: int = 600) -> list[tuple[int, str]]:
    """One ansible-playbook per entry of extra_vars_list (each a list of `-e` values), started
    together; returns (exit code, output) per entry, in order."""
    procs = []
    for extra_vars in extra_vars_list:
        args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], playbook]
        for value in extra_vars:
            args += ["-e", value]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      stdin=subprocess.DEVNULL,
                                      env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")))
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=timeout)
        results.append((proc.returncode, out))
    return results
