"""The image-delivery filters (plugins/filter/images.py) and the build scripts' naming
(scripts/lib/image-build.sh): one rule for an archive's name and for a digest pin's tag, checked
here to give the same answer in Python and in bash for the same references."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(ROOT / ".build/collections")).split(":")[0]
HEX = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4
REFS = ["moneytracker/backend:2.0.0", "ghcr.io/google/cadvisor:v0.55.1", "localhost:5000/a/b:1.2-rc_3",
        f"moneytracker/backend@sha256:{HEX}", f"registry.example:5000/team/app@sha256:{HEX}", "debian:trixie"]


@pytest.fixture(scope="module")
def mod():
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

    finder = _AnsibleCollectionFinder(paths=[COLLECTIONS])
    finder._install()  # pylint: disable=protected-access
    from ansible_collections.moneytracker.deploy.plugins.filter import images

    return images


def bash(function, refs):
    prog = ('log() { :; }; die() { echo "$*" >&2; exit 1; }; source scripts/lib/image-build.sh; '
            f'for r in "$@"; do {function} "$r"; done')
    r = subprocess.run(["bash", "-c", prog, "bash", *refs], capture_output=True, text=True, cwd=ROOT, check=True)
    return r.stdout.splitlines()


def test_the_script_and_the_filter_name_archives_alike(mod):
    assert bash("archive_name", REFS) == [mod.image_archive_name(r) for r in REFS]


def test_the_script_and_the_filter_name_digest_tags_alike(mod):
    assert bash("digest_tag", REFS) == [mod.image_digest_tag(r) for r in REFS]


def test_names(mod):
    assert mod.image_archive_name("moneytracker/backend:2.0.0") == "moneytracker-backend-2.0.0.tar"
    assert mod.image_archive_name(f"a/b@sha256:{HEX}") == f"a-b-sha256-{HEX}.tar"
    assert mod.image_digest_tag(f"a/b@sha256:{HEX}") == f"a/b:sha256-{HEX}"
    assert mod.image_digest_tag("a/b:1") == "a/b:1"


def manifest(image_id, tags, oci=False):
    config = f"blobs/sha256/{image_id}" if oci else f"{image_id}.json"
    return json.dumps([{"Config": config, "RepoTags": tags, "Layers": []}])


def test_archive_image_id_reads_both_layouts(mod):
    assert mod.archive_image_id(manifest(HEX, None)) == f"sha256:{HEX}"
    assert mod.archive_image_id(manifest(HEX, None, oci=True)) == f"sha256:{HEX}"


def test_archive_images_matches_tags_and_digests(mod):
    refs = ["a/b:1", f"a/c@sha256:{HEX}", f"a/d@sha256:{HEX}", "docker.io/library/e:2"]
    found = mod.archive_images([manifest(OTHER, ["a/b:1"]),
                                manifest(HEX, None),                          # the pinned ID itself
                                manifest(OTHER, [f"a/d:sha256-{HEX}"], oci=True),  # saved by the script
                                manifest(OTHER, ["e:2"])], refs)
    assert [f["ok"] for f in found] == [True, True, True, True], found
    assert [f["usable"] for f in found] == ["a/b:1", f"a/c:sha256-{HEX}", f"a/d:sha256-{HEX}", "docker.io/library/e:2"]
    assert found[1]["archive"] == f"a-c-sha256-{HEX}.tar" and found[1]["digest_pin"] is True


def test_archive_images_refuses_another_image(mod):
    wrong = mod.archive_images([manifest(OTHER, ["a/b:2"]), manifest(OTHER, ["a/c:1"])], ["a/b:1", f"a/c@sha256:{HEX}"])
    assert [f["ok"] for f in wrong] == [False, False]
    assert "not a/b:1" in wrong[0]["problem"]
    assert "neither its ID is the pinned digest" in wrong[1]["problem"]


def test_image_resolved_ref(mod):
    rec = mod.archive_images([manifest(HEX, None)], [f"a/c@sha256:{HEX}"])[0]
    tagged = {"Id": f"sha256:{HEX}", "RepoTags": [f"a/c:sha256-{HEX}"], "RepoDigests": []}
    native = {"Id": f"sha256:{HEX}", "RepoTags": [], "RepoDigests": [f"a/c@sha256:{HEX}"]}
    moved = {"Id": f"sha256:{OTHER}", "RepoTags": [f"a/c:sha256-{HEX}"], "RepoDigests": []}
    assert mod.image_resolved_ref(rec, [tagged]) == f"a/c:sha256-{HEX}"
    assert mod.image_resolved_ref(rec, [tagged, native]) == f"a/c@sha256:{HEX}"
    assert mod.image_resolved_ref(rec, [moved]) == ""
    assert mod.image_resolved_ref(rec, []) == ""
