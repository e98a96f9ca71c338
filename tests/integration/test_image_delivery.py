"""End to end: an image pinned by digest reaches a Docker host from a `docker save` archive.

A tiny image (FROM scratch, one file of random content, so each run has a new image ID) is built
on the local engine, saved by scripts/lib/image-build.sh (save_images, the naming every build
script uses) under its digest pin, removed from the engine, and then put back by the internal
role moneytracker.deploy.images with images_source=archive, run by ansible-playbook against the
local engine (connection=local) as the app and monitoring roles run it against a host.

A digest pin is the image's repo digest where the engine has one (pulled by digest, or an image
store that keeps manifest digests); an engine with the classic image store and no registry knows
no digest of a locally built image but its ID, and resolves name@<ID> neither before nor after a
`docker load` (a load restores tags, never repo digests). So the test pins what the engine has:
the repo digest when `docker image inspect` lists one, else the image ID.

What it proves: the script's archive name is the one the role looks for; the loaded image has the
pinned ID; the reference the role publishes in images_resolved answers with that image (the pin
itself, or name:sha256-<hex> where the engine cannot resolve the pin) and can create a container;
a second run loads nothing (changed=0) and no upload is left; an archive that holds another image
than the pin fails before anything is copied.

The registry login runs against a TEST DOUBLE of a registry: a few lines of Python in a container
(published on the engine's 127.0.0.1, which Docker treats as an insecure registry, so plain HTTP)
that answers /v2/ with 401 + Basic, or 200 for the right user and password. It proves the login
reaches the engine with the given credentials, that they are in no file afterwards (the run's
private config is gone, root's Docker config holds none, an old login there for that registry is
removed, another registry's is kept), also when the login fails, and that -v output never shows
the password. What it does not prove: pulls from a real registry (none is reachable here; the
image is present, so nothing is pulled) and engines other than the local one.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

STUB_REGISTRY = r"""
import base64, http.server
WANT = "Basic " + base64.b64encode(b"ci:s3cret-registry-pw").decode()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("Authorization") == WANT
        self.send_response(200 if ok else 401)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        if not ok:
            self.send_header("WWW-Authenticate", 'Basic realm="test double"')
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
http.server.HTTPServer(("0.0.0.0", 5000), Handler).serve_forever()
"""
STUB_IMAGE = "moneytracker-local/testhost:trixie"  # any local image with python3 (make images builds it)

ROOT = Path(__file__).resolve().parents[2]
REPO = "moneytracker-test/image-delivery"

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Put the image on the host
      ansible.builtin.include_role:
        name: moneytracker.deploy.images
      vars:
        images_list: ["{pin}"]
        images_source: archive
        images_archive_dir: "{archive_dir}"
        images_upload_dir: "{upload_dir}"
    - name: Show what the role published
      ansible.builtin.copy:
        content: "{{{{ images_resolved | to_json }}}}"
        dest: "{result}"
        mode: "0600"
      changed_when: false
"""


def docker(*args, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=120)


def script(*commands: str) -> str:
    """Run functions of scripts/lib/image-build.sh in bash (log/die as the build scripts define them)."""
    prog = 'log() { echo "$*" >&2; }; die() { echo "$*" >&2; exit 1; }; source scripts/lib/image-build.sh; '
    r = subprocess.run(["bash", "-c", prog + "; ".join(commands)], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def tiny_image_lifecycle():
    """A new tiny image on the local engine: yields (tag, image ID, pin), then removes it."""
    if shutil.which("docker") is None or docker("info", check=False).returncode != 0:
        pytest.skip("no Docker engine answers")
    ctx = Path(tempfile.mkdtemp(prefix="mt-it-image-"))
    (ctx / "payload").write_text(secrets.token_hex(16))
    (ctx / "Dockerfile").write_text('FROM scratch\nCOPY payload /payload\nCMD ["/payload"]\n')
    tag = f"{REPO}:{secrets.token_hex(4)}"
    docker("build", "-q", "-t", tag, str(ctx))
    image_id = docker("image", "inspect", "-f", "{{.Id}}", tag).stdout.strip()
    digests = json.loads(docker("image", "inspect", "-f", "{{json .RepoDigests}}", tag).stdout or "null") or []
    pin = digests[0] if digests else f"{REPO}@{image_id}"
    yield tag, image_id, pin
    docker("rmi", "-f", image_id, check=False)
    shutil.rmtree(ctx, ignore_errors=True)


@pytest.fixture
def tiny_image():
    yield from tiny_image_lifecycle()


@pytest.fixture
def other_tiny_image():
    yield from tiny_image_lifecycle()


def play(tmp_path, pin, archive_dir, upload_dir):
    result = tmp_path / "resolved.json"
    book = tmp_path / "play.yml"
    book.write_text(PLAY.format(pin=pin, archive_dir=archive_dir, upload_dir=upload_dir, result=result))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    r = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(book),
                        "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    out = r.stdout + r.stderr
    resolved = json.loads(result.read_text()) if r.returncode == 0 else None
    return r.returncode, out, resolved


def recap_changed(out: str) -> int:
    return int(re.search(r"localhost\s*:.*changed=(\d+)", out).group(1))


def test_a_digest_pinned_image_reaches_the_host_from_its_archive(tmp_path, tiny_image):
    tag, image_id, pin = tiny_image
    archive_dir, upload_dir = tmp_path / "archives", tmp_path / "uploads"
    script(f"save_images {archive_dir} {pin}")
    name = script(f"archive_name {pin}")
    assert name == re.sub(r"[/:@]", "-", pin) + ".tar" and (archive_dir / name).exists()

    # The engine forgets the image: only the archive has it now.
    docker("rmi", "-f", image_id)
    assert docker("image", "inspect", image_id, check=False).returncode != 0

    rc, out, resolved = play(tmp_path, pin, archive_dir, upload_dir)
    assert rc == 0, out[-4000:]
    assert "Load " + pin in out, "the archive was not loaded"
    ref = resolved[pin]
    assert ref in (pin, script(f"digest_tag {pin}")), resolved
    assert docker("image", "inspect", "-f", "{{.Id}}", ref).stdout.strip() == image_id
    container = docker("create", ref).stdout.strip()  # usable as an image reference (compose's image:)
    docker("rm", container)
    assert list(upload_dir.iterdir()) == [], "an upload was left on the host"

    rc, out, again = play(tmp_path, pin, archive_dir, upload_dir)
    assert rc == 0, out[-4000:]
    assert again == resolved
    assert recap_changed(out) == 0, "the second run loaded the image again"


TWO_CALLS = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The first call (the app role's) loads its image
      ansible.builtin.include_role:
        name: moneytracker.deploy.images
      vars:
        images_list: ["{loaded}"]
        images_source: archive
        images_archive_dir: "{archive_dir}"
        images_upload_dir: "{upload_dir}"
    - name: The second call (the monitoring role's) finds its image present
      ansible.builtin.include_role:
        name: moneytracker.deploy.images
      vars:
        images_list: ["{present}"]
        images_source: archive
        images_archive_dir: "{archive_dir}"
        images_upload_dir: "{upload_dir}"
"""


def test_a_call_without_a_load_after_one_with_a_load_reads_its_own_images(tmp_path, tiny_image, other_tiny_image):
    """Found in the swarm scenario: a deploy whose app role loaded a new backend image failed in the
    monitoring role, whose images were all present ("No image on the host answers with its archive's
    ID to ... the load did not give the archived image"): the second call read the first call's
    after-load list, a result its own skipped load had not replaced."""
    archive_dir, upload_dir = tmp_path / "archives", tmp_path / "uploads"
    loaded, present = tiny_image[2], other_tiny_image[2]
    script(f"save_images {archive_dir} {loaded} {present}")
    docker("rmi", "-f", tiny_image[1])  # only the first image has to be loaded
    book = tmp_path / "two-calls.yml"
    book.write_text(TWO_CALLS.format(loaded=loaded, present=present, archive_dir=archive_dir, upload_dir=upload_dir))
    r = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(book),
                        "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300,
                       env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0"))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "Load " + loaded in out and "Load " + present not in out, out[-4000:]


def test_an_archive_of_another_image_is_refused_before_anything_is_copied(tmp_path, tiny_image):
    tag, image_id, pin = tiny_image
    archive_dir, upload_dir = tmp_path / "archives", tmp_path / "uploads"
    archive_dir.mkdir()
    other = "moneytracker-test/image-delivery@sha256:" + "0" * 64
    docker("save", "-o", str(archive_dir / script(f"archive_name {other}")), tag)

    rc, out, _ = play(tmp_path, other, archive_dir, upload_dir)
    assert rc != 0
    assert "neither its ID is the pinned digest" in " ".join(out.split()), out[-3000:]
    assert not upload_dir.exists()


REGISTRY_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Put the image on the host
      ansible.builtin.include_role:
        name: moneytracker.deploy.images
      vars:
        images_list: ["{tag}"]
        images_source: registry
        images_registry_url: "{registry}"
        images_registry_username: ci
        images_registry_password: "{password}"
"""


@pytest.fixture
def stub_registry(tmp_path):
    if docker("image", "inspect", STUB_IMAGE, check=False).returncode != 0:
        pytest.skip(f"{STUB_IMAGE} is missing (make images)")
    code = tmp_path / "stub_registry.py"
    code.write_text(STUB_REGISTRY)
    cid = docker("run", "-d", "--rm", "-p", "127.0.0.1::5000", "-v", f"{code}:/stub.py:ro",
                 "--entrypoint", "python3", STUB_IMAGE, "/stub.py").stdout.strip()
    port = docker("port", cid, "5000/tcp").stdout.split(":")[-1].strip()
    yield f"127.0.0.1:{port}"
    docker("rm", "-f", cid, check=False)


def registry_play(tmp_path, tag, registry, password):
    book = tmp_path / "registry-play.yml"
    book.write_text(REGISTRY_PLAY.format(tag=tag, registry=registry, password=password))
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    # HOME stands in for root's home (its .docker/config.json), TMPDIR for the host's /tmp.
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", HOME=str(home), TMPDIR=str(tmp),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"))
    r = subprocess.run(["ansible-playbook", "-v", "-i", "localhost,", "-c", "local", str(book),
                        "-e", "ansible_python_interpreter={{ ansible_playbook_python }}"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    return r.returncode, r.stdout + r.stderr, home / ".docker" / "config.json", tmp


def test_a_registry_login_leaves_no_credentials(tmp_path, tiny_image, stub_registry):
    tag, _, _ = tiny_image
    config = tmp_path / "home" / ".docker" / "config.json"
    config.parent.mkdir(parents=True)
    # What an earlier version left: a login for this registry in root's config, beside another one.
    config.write_text(json.dumps({"auths": {stub_registry: {"auth": "b2xkOmxvZ2lu"},
                                            "other.example": {"auth": "a2VlcDptZQ=="}}}))

    rc, out, config, tmp = registry_play(tmp_path, tag, stub_registry, "s3cret-registry-pw")
    assert rc == 0, out[-4000:]
    assert "s3cret-registry-pw" not in out
    assert json.loads(config.read_text())["auths"] == {"other.example": {"auth": "a2VlcDptZQ=="}}
    assert f"{tmp}/moneytracker-images-login." in out, "the login did not use a private directory"
    assert list(tmp.iterdir()) == [], "the run's private Docker config was left"

    rc, out, config, tmp = registry_play(tmp_path, tag, stub_registry, "wrong-pw-0123")
    assert rc != 0 and "401" in out, out[-4000:]
    assert "wrong-pw-0123" not in out
    assert list(tmp.iterdir()) == [], "a failed login left the run's private Docker config"
    assert stub_registry not in config.read_text()
