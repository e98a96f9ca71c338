"""moneytracker_host_facts: the facts the roles read and the preflight's host reads, in one run.

The module runs for real on this machine (a Debian host, as the test hosts are) and its facts are
compared with ansible.builtin.setup's on the same machine: the roles must read the same values
whichever gathered them. The os-release parsing is tested on the files of other systems."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
MODULE_FILE = ROOT / "plugins/modules/moneytracker_host_facts.py"
FACTS = ("distribution", "distribution_version", "distribution_major_version", "distribution_release",
         "os_family", "architecture", "processor_vcpus")


def _load():
    spec = importlib.util.spec_from_file_location("moneytracker_host_facts", MODULE_FILE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def run(run_module_file):
    def module(**params):
        return run_module_file("moneytracker_host_facts", **params)[1]
    return module


@pytest.mark.skipif(not Path("/etc/debian_version").exists(), reason="compares with setup on a Debian machine")
def test_same_facts_as_setup(run):
    res = run()
    assert res["changed"] is False and "failed" not in res, res
    proc = subprocess.run(["ansible", "localhost", "-c", "local", "-m", "ansible.builtin.setup",
                           "-a", "gather_subset=!all,!min,distribution,platform,hardware",
                           "-e", f"ansible_python_interpreter={sys.executable}"],
                          capture_output=True, text=True, timeout=120, check=True,
                          env=dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json"))
    setup = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["ansible_facts"]
    for name in FACTS:
        assert res["ansible_facts"][name] == setup[f"ansible_{name}"], name


def test_preflight_reads(run, tmp_path):
    writable = tmp_path / "w"
    writable.write_text("0")
    res = run(listening_tcp=True, paths=[str(writable), str(tmp_path / "missing")])
    host = res["ansible_facts"]["moneytracker_host"]
    assert host["paths"] == {str(writable): {"exists": True, "writeable": os.access(writable, os.W_OK)},
                             str(tmp_path / "missing"): {"exists": False, "writeable": False}}
    if shutil.which("ss") is None:
        assert host["listening_tcp"] is None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        host = run(listening_tcp=True)["ansible_facts"]["moneytracker_host"]
    assert f"127.0.0.1:{port} " in host["listening_tcp"], host["listening_tcp"]


@pytest.mark.parametrize(
    ("release", "debian_version", "expected"),
    [
        ({"ID": "debian", "VERSION_ID": "13", "VERSION_CODENAME": "trixie", "NAME": "Debian GNU/Linux"}, "13.2",
         ("Debian", "13.2", "13", "trixie", "Debian")),
        ({"ID": "debian", "VERSION_CODENAME": "forky", "NAME": "Debian GNU/Linux"}, "forky/sid",
         ("Debian", "", "", "forky", "Debian")),
        ({"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "24.04", "VERSION_CODENAME": "noble",
          "NAME": "Ubuntu"}, "trixie/sid", ("Ubuntu", "24.04", "24", "noble", "Debian")),
        ({"ID": "rocky", "ID_LIKE": "rhel centos fedora", "VERSION_ID": "9.4", "NAME": "Rocky Linux"}, "",
         ("Rocky", "9.4", "9", "", "Rhel")),
    ],
)
def test_distribution_from_os_release(release, debian_version, expected):
    facts = _load().distribution_facts(release, debian_version)
    assert tuple(facts[k] for k in FACTS[:5]) == expected
