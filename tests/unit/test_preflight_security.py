"""Security checks of the app and moneytracker_db preflights, run for real against the
controller (connection=local), like test_docker_preflight.py.

- app_secret_key: a value published in this repository (the example vault's placeholder, any
  example in the docs) is refused; the test finds those values in the repo itself, so a new
  example value that is not in the role's list (roles/app/vars/main.yml) fails here.
- app_backend_env: only plain environment variable names (each becomes a YAML key in the compose
  file), none the role sets itself.
- moneytracker_db_cron_mailto: an address or empty; a line break would add cron lines.

The preflight entry points only read: these runs change nothing. That nothing changes on a real
host with bad input is proven by the Molecule scenario `default` (test_bad_input.py).
"""
import hashlib
import json
import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PREFLIGHT_PLAY, flat

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_VAULT = ROOT / "inventories/production/group_vars/moneytracker/vault.yml.example"
GOOD_SECRET = secrets.token_urlsafe(48)


def run_preflight(tmp_path, role, extra_vars):
    play = tmp_path / "preflight.yml"
    play.write_text(PREFLIGHT_PLAY.format(role=role))
    # Extra vars from a JSON file: values with line breaks or quotes arrive exactly as written.
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps(extra_vars))
    args = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(play),
            "-e", "ansible_python_interpreter={{ ansible_playbook_python }}", "-e", f"@{variables}"]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, timeout=180, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def app_preflight(tmp_path, **extra):
    return run_preflight(tmp_path, "app", {"app_secret_key": GOOD_SECRET, **extra})


# ---- app_secret_key: no value published in the repo ---------------------------------------------
def _public_secret_hashes():
    role_vars = yaml.safe_load((ROOT / "roles/app/vars/main.yml").read_text())
    return set(role_vars["_app_public_secret_sha256"])


def _example_vault_values():
    values = yaml.safe_load(EXAMPLE_VAULT.read_text())
    return {k: v for k, v in values.items() if isinstance(v, str)}


def _repo_files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / f for f in out.split("\0") if f]


# A secret shown as a literal: `app_secret_key: value`, `vault_app_secret_key: value`,
# `MONEYTRACKER_SECRET_KEY=value` (not a Jinja expression, a shell substitution or a <placeholder>).
LITERAL_SECRET = re.compile(
    r"""(?:\b(?:vault_)?app_secret_key\s*:|\bMONEYTRACKER_SECRET_KEY\s*=)\s*["']?([^\s"'{}<>$()]{32,})""")


def _published_secret_candidates():
    found = {}
    for path in _repo_files():
        if not path.is_file() or path.suffix in {".tar", ".gz", ".zst", ".db", ".png", ".svg"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for match in LITERAL_SECRET.finditer(text):
            found.setdefault(match.group(1), str(path.relative_to(ROOT)))
    return found


def test_every_example_vault_value_is_in_the_public_list():
    hashes = _public_secret_hashes()
    values = _example_vault_values()
    assert "vault_app_secret_key" in values
    missing = [k for k, v in values.items() if hashlib.sha256(v.encode()).hexdigest() not in hashes]
    assert not missing, f"add the sha256 of these {EXAMPLE_VAULT.name} values to _app_public_secret_sha256: {missing}"


def test_every_literal_secret_in_the_repo_is_in_the_public_list():
    hashes = _public_secret_hashes()
    candidates = _published_secret_candidates()
    # The scan finds at least the example vault's placeholder (proves it looks where it should).
    assert _example_vault_values()["vault_app_secret_key"] in candidates
    missing = {where for value, where in candidates.items()
               if hashlib.sha256(value.encode()).hexdigest() not in hashes}
    assert not missing, f"secret values shown in {sorted(missing)} are not in _app_public_secret_sha256"


def test_sandbox_secret_is_generated_not_fixed():
    sandbox = yaml.safe_load((ROOT / "inventories/sandbox/group_vars/all/app.yml").read_text())
    assert "lookup('ansible.builtin.password'" in sandbox["app_secret_key"], \
        "the sandbox secret must be made per machine; a fixed one belongs in _app_public_secret_sha256"


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(None, id="example-vault-placeholder"),
        pytest.param("CHANGE-ME-at-least-32-characters-long-random-2", id="edited-placeholder"),
        pytest.param("my-secret-changeme-0123456789abcdefgh", id="changeme-marker"),
    ],
)
def test_published_secret_is_refused_naming_the_variable(tmp_path, secret):
    secret = secret or _example_vault_values()["vault_app_secret_key"]
    assert len(secret) >= 32  # only the new check can refuse it
    rc, out = app_preflight(tmp_path, app_secret_key=secret)
    assert rc != 0, out
    assert "app_secret_key is a value published in this collection" in flat(out), out
    assert "secrets.token_urlsafe(48)" in out, out  # says how to make one
    assert secret not in out  # and never prints it
    assert "changed=0" in out, out


def test_generated_secret_and_plain_env_pass(tmp_path):
    rc, out = app_preflight(tmp_path, app_backend_env={"LOG_LEVEL": "debug", "_X1": "a'b\n$c: d"})
    assert rc == 0, out
    assert GOOD_SECRET not in out


# ---- app_backend_env: names that are safe as YAML keys and not the role's own -------------------
@pytest.mark.parametrize(
    "name",
    ["lower_case", "1ABC", "FOO\nBAR", "FOO: x", "FOO\n  image: evil", "A-B", "",
     "DATABASE_URL", "AUTO_MIGRATE", "WEB_CONCURRENCY", "MONEYTRACKER_SECRET_KEY",
     "MONEYTRACKER_SECRET_KEY_FILE", "MONEYTRACKER_SECRET_KEY_OLD"],
)
def test_backend_env_name_is_refused_naming_the_variable(tmp_path, name):
    rc, out = app_preflight(tmp_path, app_backend_env={name: "x", "GOOD_NAME": "y"})
    assert rc != 0, out
    assert "app_backend_env names must match" in flat(out), out
    assert flat(json.dumps(name)) in flat(out), out  # the refused name is listed
    assert '"GOOD_NAME"' not in out, out
    assert "changed=0" in out, out


# ---- moneytracker_db_cron_mailto: an address or nothing --------------------------------------
@pytest.mark.parametrize(
    "mailto",
    ["ops@example.com\n* * * * * root touch /tmp/pwned", "ops@example.com\r* * * * * root id",
     "ops@example.com * * * * * root id", "a@b,c@d", "-oQ/tmp/x@example.com", "@example.com",
     "ops@", "ops@@example.com", "ops@example.com\n"],
)
def test_cron_mailto_is_refused_naming_the_variable(tmp_path, mailto):
    rc, out = run_preflight(tmp_path, "moneytracker_db", {"moneytracker_db_cron_mailto": mailto})
    assert rc != 0, out
    assert "moneytracker_db_cron_mailto must be" in flat(out), out
    assert "changed=0" in out, out


@pytest.mark.parametrize("mailto", ["", "ops@example.com", "first.last+backups@mail.example.org", "root"])
def test_cron_mailto_accepts_an_address_or_nothing(tmp_path, mailto):
    rc, out = run_preflight(tmp_path, "moneytracker_db", {"moneytracker_db_cron_mailto": mailto})
    assert rc == 0, out
