"""Image uploads an interrupted run left in <project_dir>/.images/ (named
<archive>.<controller>-<ansible-playbook pid>.<random>) are removed by the next deploy when that
pid no longer runs ansible-playbook on this controller, or when they are older than a day; a fresh
upload of another controller (which may be loading it right now) is kept."""
import re
import socket

from conftest import run_playbook

IMAGES = "/opt/moneytracker/.images"


def test_the_next_deploy_removes_a_dead_runs_upload_and_keeps_another_controllers(host):
    here = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())
    dead = f"{IMAGES}/moneytracker-backend-2.0.0.tar.{here}-4194303.deadbeef01"  # no ansible-playbook has it
    fresh_other = f"{IMAGES}/moneytracker-backend-2.0.0.tar.other-controller-4242.abcdef0123"
    old_other = f"{IMAGES}/moneytracker-frontend-1.0.0.tar.other-controller-4243.abcdef0124"
    host.check_output(f"mkdir -p {IMAGES} && head -c 1024 /dev/urandom | tee {dead} {fresh_other} {old_other}"
                      f" >/dev/null && touch -d '2 days ago' {old_other}")
    r = run_playbook("deploy")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert not host.file(dead).exists, "the upload of a dead run on this controller was left"
    assert not host.file(old_other).exists, "an upload older than a day was left"
    assert host.file(fresh_other).exists, "another controller's fresh upload was removed"
    host.check_output(f"rm -f {fresh_other}")
