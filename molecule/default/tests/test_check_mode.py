"""deploy.yml in check mode (--check) on the deployed test host: it completes and reports nothing
to change (recap changed=0 failed=0), and the host is the same afterwards.

The scenario's other check-mode pass is Molecule's `check` step before converge, on the bare
host (test_sequence in molecule.yml): there every task that needs what an earlier task would
install is skipped, saying so. This one is the deployed host's pass (after idempotence).
"""
import os
import re
import subprocess
from pathlib import Path

CONVERGE = Path(__file__).resolve().parents[1] / "converge.yml"
STATE = ("sha256sum /etc/docker/daemon.json /opt/moneytracker/compose.yaml /etc/cron.d/moneytracker-db;"
         " ls /opt/moneytracker/releases; systemctl show -p ActiveEnterTimestamp docker;"
         " docker ps -q --no-trunc | sort")


def test_check_mode_on_the_deployed_host_changes_nothing(host):
    before = host.check_output(STATE)
    run = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--check", str(CONVERGE)],
                         capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, check=False,
                         env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    recap = re.search(rf"^{re.escape(host.backend.host)}\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                      run.stdout, re.M)
    assert recap, out[-4000:]
    # The tasks that would change something, to name them when the recap says so.
    changed = [block.split("]", 1)[0] for block in run.stdout.split("\nTASK [")[1:] if "\nchanged: " in block]
    assert recap.groups() == ("0", "0", "0"), (changed, out[-4000:])
    assert host.check_output(STATE) == before


def test_check_mode_with_a_new_release_says_what_it_cannot_ask(host):
    """A new backend image that a run would load first: check mode loads nothing, so it cannot ask
    that image what is pending; it says so (before, it asked the running image, or failed writing a
    release record into a directory check mode had not created) and changes nothing."""
    before = host.check_output(STATE + "; docker images -q --no-trunc | sort")
    run = subprocess.run(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], "--check",
                          "-e", "app_backend_image=moneytracker/backend:2.1.0-broken", str(CONVERGE)],
                         capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL, check=False,
                         env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "check mode: the new backend image is not loaded on the host yet" in " ".join(out.split())
    assert "a run would record this release" in " ".join(out.split())
    assert host.check_output(STATE + "; docker images -q --no-trunc | sort") == before
