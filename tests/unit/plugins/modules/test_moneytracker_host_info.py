"""moneytracker_host_info: the docker and moneytracker_db roles' one read of what they manage.

Runs the real module on this machine's files, packages and commands; the roles' Molecule
scenarios (idempotence, a changed host put right) run it on the test hosts."""
from __future__ import annotations

import hashlib
import os
import shutil

import pytest


@pytest.fixture
def run(run_module_file):
    def module(**params):
        return run_module_file("moneytracker_host_info", **params)[1]
    return module


def test_paths_and_checksums(run, tmp_path):
    f = tmp_path / "daemon.json"
    f.write_text("{}\n")
    os.chmod(f, 0o640)
    res = run(paths=[str(f), str(tmp_path), str(tmp_path / "missing")], checksum=[str(f), str(tmp_path)])
    assert res["changed"] is False and "failed" not in res, res
    assert res["paths"][str(f)] == {"dir": False, "mode": "0640", "uid": os.getuid(), "gid": os.getgid(),
                                    "mtime": os.stat(f).st_mtime, "sha1": hashlib.sha1(b"{}\n").hexdigest()}
    assert res["paths"][str(tmp_path)]["dir"] is True and "sha1" not in res["paths"][str(tmp_path)]
    assert res["paths"][str(tmp_path / "missing")] is None


def test_commands_and_a_missing_program(run):
    res = run(commands={"echo": ["echo", " hello $HOME "], "nope": ["no-such-program-here", "x"]})
    # No shell and no expansion: the argument is passed as given (then stripped as output).
    assert res["commands"]["echo"] == {"rc": 0, "stdout": "hello $HOME"}
    assert res["commands"]["nope"]["rc"] == 127


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg")
def test_packages_installed_only(run):
    res = run(packages=["dpkg", "no-such-package-xyz"])
    assert res["packages"] == ["dpkg"]
