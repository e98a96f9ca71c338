"""The controller_run lookup (plugins/lookup/controller_run.py), through a real ansible-playbook:
the pid it records is the ansible-playbook process's (not a forked worker's), and `alive:<pid>`
is true only for a running ansible-playbook (a dead pid or another program is not)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        dest: "{{ out }}"
        content: "{{ {'run': lookup('moneytracker.deploy.controller_run'),
                      'dead': lookup('moneytracker.deploy.controller_run', 'alive:' ~ dead_pid),
                      'other': lookup('moneytracker.deploy.controller_run', 'alive:' ~ other_pid)} | to_json }}"
"""


def test_records_the_playbook_pid_and_tells_dead_from_alive(tmp_path):
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    out = tmp_path / "out.json"
    dead = subprocess.Popen(["true"])
    dead.wait()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build", "collections"),
               USER="operator-under-test")
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                             "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", str(play), "-e", f"out={out}", "-e", f"dead_pid={dead.pid}",
                             "-e", f"other_pid={os.getpid()}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    data = json.loads(out.read_text())
    assert data["run"]["pid"] == proc.pid, (data, proc.pid)
    assert data["run"]["user"] == "operator-under-test"
    assert data["run"]["host"] and data["run"]["started"]
    assert data["dead"]["alive"] is False
    assert data["other"]["alive"] is False, "pytest is not ansible-playbook"
