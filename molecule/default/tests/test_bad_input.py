"""deploy.yml with bad input on a converged test host: it fails at preflight, names the
variable, and changes nothing (recap changed=0, daemon.json byte-for-byte the same).

Runs ansible-playbook from the controller against Molecule's inventory, as an operator would.
"""
import os
import subprocess

import pytest

CASES = [
    ({"docker_log_max_size": "10 megs"}, "docker_log_max_size"),
    ({"docker_log_max_file": 0}, "docker_log_max_file"),
    ({"docker_source": "snap"}, "docker_source"),
]


@pytest.mark.parametrize(("extra", "needle"), CASES, ids=[c[1] for c in CASES])
def test_bad_input_changes_nothing(host, extra, needle):
    before = host.check_output("sha256sum /etc/docker/daemon.json; systemctl show -p ActiveEnterTimestamp docker")
    args = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "moneytracker.deploy.deploy"]
    for k, v in extra.items():
        args += ["-e", f"{k}={v}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert needle in out, out
    assert "changed=0" in out and "failed=1" in out, out
    assert "Preflight" in out, out
    after = host.check_output("sha256sum /etc/docker/daemon.json; systemctl show -p ActiveEnterTimestamp docker")
    assert before == after
