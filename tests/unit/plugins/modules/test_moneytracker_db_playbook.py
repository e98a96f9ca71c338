"""The modules in a real ansible-playbook run (local connection, AnsiballZ, the collection loaded
by FQCN from a tree that links to this checkout): lock -> backup under the lock -> check -> info
-> release, the YAML using only the modules' results (no exit codes, no from_json). Run with -vvv:
the token registered with no_log never shows in the output."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import flat

PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    db_args: &db
      tool: "{{ tool }}"
      config: "{{ config }}"
  tasks:
    - name: Take the lock
      moneytracker.deploy.moneytracker_db_lock:
        <<: *db
        state: acquired
        owner: migration
        play: e2e.yml
      register: lock
      no_log: true

    - name: Keep the token for the test (no_log)
      ansible.builtin.copy:
        content: "{{ lock.token }}"
        dest: "{{ token_file }}"
        mode: "0600"
      no_log: true

    - name: Cron-style backup without the token is skipped (not failed with fail_on_skip false)
      moneytracker.deploy.moneytracker_db_backup:
        <<: *db
        fail_on_skip: false
      register: skipped_backup

    - name: Backup under the lock
      moneytracker.deploy.moneytracker_db_backup:
        <<: *db
        label: e2e
        lock_token: "{{ lock.token }}"
      register: backup

    - name: Check under the lock
      moneytracker.deploy.moneytracker_db_check:
        <<: *db
        lock_token: "{{ lock.token }}"
      register: check

    - name: Info
      moneytracker.deploy.moneytracker_db_info:
        <<: *db
        compare: true
      register: info

    - name: Release
      moneytracker.deploy.moneytracker_db_lock:
        <<: *db
        state: released
        token: "{{ lock.token }}"
      register: released

    - name: Results
      ansible.builtin.assert:
        that:
          - skipped_backup is skipped
          - backup is changed
          - check is not changed and check is not skipped and check.quick_check == ['ok']
          - info.newest_backup.path == backup.backup
          - info.compare.writes_lost == 0
          - info.lock.state == 'held'
          - released is changed and released.state == 'free'
"""


def test_playbook_uses_module_results_and_never_prints_the_token(env, tool_double, collections_tree, tmp_path):
    play = tmp_path / "e2e.yml"
    play.write_text(PLAY)
    token_file = tmp_path / "token"
    bindir = os.path.dirname(sys.executable)
    proc = subprocess.run(
        [os.path.join(bindir, "ansible-playbook"), "-vvv", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"tool={tool_double}",
         "-e", f"config={env.config}", "-e", f"token_file={token_file}", str(play)],
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
        env=env.env({"ANSIBLE_COLLECTIONS_PATH": str(collections_tree), "ANSIBLE_NOCOLOR": "1",
                     "ANSIBLE_CONFIG": str(tmp_path / "none.cfg"), "PATH": bindir + os.pathsep + os.environ["PATH"]}), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    token = token_file.read_text()
    assert len(token) == 32
    assert token not in out
    assert "moneytracker.deploy.moneytracker_db_backup" in out or "Backup under the lock" in out
    assert len(env.backups_with_manifest()) == 1
    assert not (env.state / "maintenance.lock").exists()
    assert Path(env.backups_with_manifest()[0]).name.startswith("moneytracker-")


# --------------------------------------------------------------------------- playbooks/backup.yml
ROOT = Path(__file__).resolve().parents[4]


def run_backup_playbook(env, tool_double, collections_tree, tmp_path, *extra, name="backup", tool_var="_backup_tool"):
    """playbooks/<name>.yml as an operator runs it, on localhost as the `moneytracker` host (the
    tool double stands in for the installed path; its config comes by MONEYTRACKER_DB_CONFIG)."""
    bindir = os.path.dirname(sys.executable)
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(f"[moneytracker]\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    proc = subprocess.run(
        [os.path.join(bindir, "ansible-playbook"), "-i", str(inventory), "-e", f"{tool_var}={tool_double}",
         *extra, str(ROOT / "playbooks" / f"{name}.yml")],
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
        env=env.env({"ANSIBLE_COLLECTIONS_PATH": str(collections_tree), "ANSIBLE_NOCOLOR": "1",
                     "ANSIBLE_CONFIG": str(tmp_path / "none.cfg"), "MONEYTRACKER_DB_CONFIG": str(env.config),
                     "PATH": bindir + os.pathsep + os.environ["PATH"]}), check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_backup_playbook_takes_a_backup_and_returns_its_manifest(env, tool_double, collections_tree, tmp_path):
    rc, out = run_backup_playbook(env, tool_double, collections_tree, tmp_path, "-e", "backup_label='before the import'")
    assert rc == 0, out[-4000:]
    assert len(env.backups_with_manifest()) == 1
    assert "moneytracker_backup_manifest" in out and "before the import" in out and '"verified": true' in out


def test_backup_playbook_in_check_mode_writes_nothing(env, tool_double, collections_tree, tmp_path):
    rc, out = run_backup_playbook(env, tool_double, collections_tree, tmp_path, "--check")
    assert rc == 0, out[-4000:]
    assert env.backups_with_manifest() == []


def test_backup_playbook_fails_naming_the_lock_holder_and_takes_no_backup(env, tool_double, collections_tree,
                                                                          tmp_path):
    r = env.call("lock", "acquire", "--owner", "migration", "--host", "ctl-9", "--play", "migrate.yml", "--json")
    assert r.rc == 0, r.err
    rc, out = run_backup_playbook(env, tool_double, collections_tree, tmp_path)
    assert rc != 0
    assert "maintenance lock held by migration@ctl-9" in out, out[-3000:]
    assert env.backups_with_manifest() == []


# --------------------------------------------------------------------------- playbooks/integrity_check.yml


def run_check_playbook(env, tool_double, collections_tree, tmp_path, *extra):
    return run_backup_playbook(env, tool_double, collections_tree, tmp_path, *extra, name="integrity_check",
                               tool_var="_check_tool")


def test_integrity_check_playbook_quick_and_full_pass_and_change_nothing(env, tool_double, collections_tree,
                                                                         tmp_path):
    rc, out = run_check_playbook(env, tool_double, collections_tree, tmp_path)
    assert rc == 0 and "changed=0" in out, out[-4000:]
    assert "'ok'" in out or '"ok"' in out
    assert env.call("backup", "--json").rc == 0
    rc, out = run_check_playbook(env, tool_double, collections_tree, tmp_path, "-e", "check_full=true")
    assert rc == 0 and "changed=0" in out, out[-4000:]
    jobs = env.call("status", "--json").data["jobs"]
    assert jobs["check_quick"]["result"] == "ok" and jobs["check_full"]["result"] == "ok"


def test_integrity_check_playbook_on_a_damaged_database_fails_naming_the_runbook(env, tool_double,
                                                                                 collections_tree, tmp_path,
                                                                                 corrupt_database):
    corrupt_database()
    rc, out = run_check_playbook(env, tool_double, collections_tree, tmp_path)
    assert rc == 2, out[-4000:]
    assert "The quick check on localhost did not pass" in out and "integrity-check-failed.md" in out, out[-3000:]
    assert "last_results" in out  # the status is shown before the play fails


def test_integrity_check_playbook_while_locked_fails_naming_the_holder(env, tool_double, collections_tree, tmp_path):
    assert env.call("lock", "acquire", "--owner", "migration", "--host", "ctl-9", "--play", "m.yml").rc == 0
    rc, out = run_check_playbook(env, tool_double, collections_tree, tmp_path)
    assert rc == 2, out[-4000:]
    assert "maintenance lock held by migration@ctl-9" in out and "backups-stopped-or-disk-full.md" in out, out[-3000:]


# --------------------------------------------------------------------------- playbooks/restore.yml (up to the restore)


def run_restore_playbook(env, tool_double, collections_tree, tmp_path, *extra):
    return run_backup_playbook(env, tool_double, collections_tree, tmp_path, *extra, name="restore",
                               tool_var="_restore_tool")


def test_restore_playbook_with_a_file_that_is_no_backup_has_no_plan_and_changes_nothing(
        env, tool_double, collections_tree, tmp_path, sha256):
    before = sha256(env.db)
    rc, out = run_restore_playbook(env, tool_double, collections_tree, tmp_path, "-e", "restore_backup=/etc/hostname",
                                   "-e", "restore_confirm=yes")
    assert rc != 0
    assert "No restore plan on localhost" in out and "not a backup file" in out and "Nothing was changed" in out, \
        out[-3000:]
    assert sha256(env.db) == before


def test_restore_playbook_shows_the_plan_and_refuses_without_confirmation(env, tool_double, collections_tree,
                                                                          tmp_path, sha256):
    env.write_config(stop_command=["true"], start_command=["true"])  # test doubles: never called here
    assert env.call("backup", "--json").rc == 0
    backup = env.call("status", "--json").data["newest_backup"]["path"]
    before = sha256(env.db)
    rc, out = run_restore_playbook(env, tool_double, collections_tree, tmp_path, "-e", f"restore_backup={backup}")
    assert rc != 0
    assert "Show what will happen" in out and backup in out, out[-3000:]
    assert "Restore not confirmed: nothing was changed" in out, out[-3000:]
    assert sha256(env.db) == before and not (env.state / "maintenance.lock").exists()


def test_restore_playbook_refuses_before_asking_while_the_lock_is_held(env, tool_double, collections_tree, tmp_path):
    assert env.call("backup", "--json").rc == 0
    assert env.call("lock", "acquire", "--owner", "migration", "--host", "ctl-9", "--play", "m.yml").rc == 0
    rc, out = run_restore_playbook(env, tool_double, collections_tree, tmp_path, "-e", "restore_confirm=yes")
    assert rc != 0
    assert "No restore plan on localhost" in out and "migration@ctl-9" in out and "Nothing was changed" in out, \
        out[-3000:]


@pytest.mark.parametrize("extra, expected", [
    (("-e", "confirm=yes"), "-e confirm=... is now -e restore_confirm=..."),
    (("-e", "backup=/etc/hostname"), "-e backup=... is now -e restore_backup=..."),
])
def test_restore_playbook_refuses_an_extra_var_with_its_0_1_name(env, tool_double, collections_tree, tmp_path,
                                                                 sha256, extra, expected):
    # An inventory or a script written for 0.1 (`confirm: true` skipped the prompt) stops before
    # anything runs, naming the new name.
    assert env.call("backup", "--json").rc == 0
    before = sha256(env.db)
    rc, out = run_restore_playbook(env, tool_double, collections_tree, tmp_path, *extra)
    assert rc != 0
    assert expected in flat(out) and "nothing was changed" in flat(out), out[-3000:]
    assert sha256(env.db) == before


def test_backup_playbook_refuses_label_by_its_0_1_name(env, tool_double, collections_tree, tmp_path):
    rc, out = run_backup_playbook(env, tool_double, collections_tree, tmp_path, "-e", "label=x")
    assert rc != 0 and "-e label=... is now -e backup_label=..." in flat(out), out[-3000:]
    assert env.call("status", "--json").data["backups_count"] == 0
