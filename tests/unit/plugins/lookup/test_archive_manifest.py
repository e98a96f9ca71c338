"""The archive_manifest lookup reads manifest.json out of a docker save tarball in-process and
names the archive when it cannot (missing, not a tar, no manifest)."""
from __future__ import annotations

import importlib.util
import io
import tarfile

import pytest

from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
LOOKUP_FILE = ROOT / "plugins/lookup/archive_manifest.py"


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_reads_the_manifest_and_names_a_bad_archive(tmp_path):
    lookup = _load(LOOKUP_FILE)
    from ansible.errors import AnsibleLookupError

    manifest = b'[{"Config": "abc.json", "RepoTags": ["mt/backend:2"], "Layers": []}]'
    _tar(tmp_path / "good.tar", {"abc.json": b"{}", "layer/layer.tar": b"x" * 4096, "manifest.json": manifest})
    _tar(tmp_path / "nomanifest.tar", {"abc.json": b"{}"})
    (tmp_path / "plain.tar").write_bytes(b"not a tar file at all" * 100)

    mod = lookup.LookupModule()
    assert mod.run([str(tmp_path / "good.tar")]) == [manifest.decode()]
    for bad, words in (("missing.tar", "cannot read"), ("plain.tar", "cannot read"),
                       ("nomanifest.tar", "no manifest.json")):
        with pytest.raises(AnsibleLookupError, match=words) as err:
            mod.run([str(tmp_path / bad)])
        assert bad in str(err.value)
