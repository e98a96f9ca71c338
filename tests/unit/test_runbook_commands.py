"""The runbook command parser (molecule/shared/runbook_commands.py), on the real runbooks.

Fast: no host. The Molecule test molecule/migrate/tests/test_runbooks.py runs the same commands
on a test host; this test makes sure, in seconds, that every command block of the four tested
runbooks parses, that every placeholder has a meaning (and a row in docs/runbooks/README.md),
that the sqlite3 shell is only used with -safe, and that the parser reads what the runbooks mean.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "molecule" / "shared"))
import runbook_commands as rc  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture(scope="module", params=rc.TESTED_RUNBOOKS)
def commands(request):
    return rc.runbook(request.param)


def test_every_block_parses_and_has_commands(commands):
    assert commands
    blocks = {c.block for c in commands}
    assert blocks == set(range(len(blocks))), "a command block without a command"
    for c in commands:
        assert c.where in rc.WHERE
        assert c.section, f"{c.where_text()}: a command before any heading"
        assert c.text and not c.text.endswith("\\")


def test_every_fenced_sh_block_says_where_it_runs():
    for name in rc.TESTED_RUNBOOKS:
        text = (rc.RUNBOOK_DIR / name).read_text(encoding="utf-8")
        sh_fences = [line.strip() for line in text.splitlines() if re.match(r"^\s*```sh\b", line)]
        assert sh_fences
        assert all(f in ("```sh on-host", "```sh on-controller") for f in sh_fences), (name, sh_fences)
        parsed_blocks = {c.block for c in rc.runbook(name)}
        assert len(parsed_blocks) == len(sh_fences), f"{name}: a sh block without a command"


def test_every_placeholder_is_known_and_substituted(commands):
    values = {p: f"VALUE{i}" for i, p in enumerate(rc.PLACEHOLDERS)}
    for c in commands:
        unknown = [p for p in c.placeholders if p not in rc.PLACEHOLDERS]
        assert not unknown, f"{c.where_text()}: unknown placeholder(s) {unknown}"
        out = c.substituted(values)
        assert not re.search(r"<[a-z][a-z0-9-]*>", out), out
        assert "inventories/" not in out or "inventories/<site>" not in c.text


def test_readme_lists_exactly_the_placeholders():
    readme = (rc.RUNBOOK_DIR / "README.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(<[a-z][a-z0-9-]*>)` \|", readme, flags=re.M))
    assert rows == set(rc.PLACEHOLDERS)


def test_each_runbook_says_how_its_commands_and_placeholders_are_written():
    for name in rc.TESTED_RUNBOOKS:
        text = (rc.RUNBOOK_DIR / name).read_text(encoding="utf-8")
        intro = text.split("\n## ", 1)[0]
        assert "sh on-host" in intro and "sh on-controller" in intro, name
        assert "angle brackets" in intro and "# exit N" in intro, name
        assert "CAPTURE-" not in text, f"{name}: an output placeholder was left in"


def test_playbooks_run_on_the_controller_with_the_site_inventory(commands):
    for c in commands:
        if "ansible-playbook" in c.text:
            assert c.where == "on-controller", c.where_text()
            assert c.text.startswith("ansible-playbook -i inventories/<site> playbooks/"), c.where_text()
            playbook = re.search(r"playbooks/(\S+\.yml)", c.text).group(0)
            assert (ROOT / playbook).is_file(), f"{c.where_text()}: {playbook} does not exist"
        else:
            assert "moneytracker-db" not in c.text or c.where == "on-host", c.where_text()


def test_sqlite3_shell_only_with_safe_and_readonly_when_it_reads(commands):
    for c in commands:
        for m in re.finditer(r"\bsqlite3\b((?:\s+-[a-z]+)*)", c.text):
            flags = m.group(1).split()
            assert "-safe" in flags, f"{c.where_text()}: sqlite3 without -safe: {c.text}"
            rest = c.text[m.end():].split("|")[0]
            reads = re.search(r'"\s*(SELECT|PRAGMA (integrity_check|foreign_key_check|quick_check))', rest)
            if reads:
                assert "-readonly" in flags, f"{c.where_text()}: a read without -readonly: {c.text}"


def test_salvage_works_on_a_copy_and_ends_with_a_fresh_backup():
    cmds = rc.section(rc.runbook("integrity-check-failed.md"), "2a")
    texts = [c.text for c in cmds]
    recover = [t for t in texts if ".recover" in t]
    assert recover and all("<aside>" not in t for t in recover), "salvage must read a copy, not the aside file"
    copy = texts.index("cp <aside> /root/salvage/broken.db")
    assert copy < texts.index(recover[0])
    assert any("<aside>-wal" in t and t.startswith("if [ -e ") for t in texts)
    assert 'sqlite3 -safe -readonly /root/salvage/backup.db "SELECT max(id) FROM transactions"' in texts
    backup = texts.index("moneytracker-db backup")
    assert backup > texts.index(recover[0]) and "moneytracker-db status" in texts[backup:]


# --- the parser's rules, on small texts ------------------------------------------------------

SAMPLE = '''# Title
intro
## 1. First
```sh on-host
moneytracker-db lock status            # exit 3 or 4: held or stale
# a note line
echo "a # inside quotes" 'and # here'  # a note, not an exit code

ls /x/<backup>.manifest.json
```
```text
not run # exit 9
```
### 2. Second
   ```sh on-controller
   ansible-playbook -i inventories/<site> playbooks/unlock.yml -e unlock_confirm=yes   # exit 2 when refused
   for f in /a/*; do \\
     echo "$f"; done
   ```
'''


def test_parser_reads_blocks_comments_exit_codes_and_continuations():
    cmds = rc.parse_text(SAMPLE, "sample.md")
    assert [(c.section, c.block, c.where) for c in cmds] == [
        ("1. First", 0, "on-host"), ("1. First", 0, "on-host"), ("1. First", 0, "on-host"),
        ("2. Second", 1, "on-controller"), ("2. Second", 1, "on-controller")]
    assert cmds[0].text == "moneytracker-db lock status" and cmds[0].expect == {3, 4}
    assert cmds[1].text == "echo \"a # inside quotes\" 'and # here'" and cmds[1].expect == {0}
    assert cmds[1].comment == "a note, not an exit code"
    assert cmds[2].placeholders == ["<backup>"] and cmds[2].line == 9
    assert cmds[3].expect == {2}
    assert cmds[3].substituted({"<site>": "/tmp/inv.yml"}) == \
        "ansible-playbook -i /tmp/inv.yml playbooks/unlock.yml -e unlock_confirm=yes"
    assert cmds[4].text == 'for f in /a/*; do \\\n  echo "$f"; done' and cmds[4].line == 17


@pytest.mark.parametrize("comment,codes", [
    ("exit 1", {1}), ("exit 1 while damaged", {1}), ("exit 3 or 4: held or stale", {3, 4}),
    ("exit 0, 2 or 4", {0, 2, 4}), ("exits 1", {0}), ("the exit 1 case", {0}), ("", {0}),
])
def test_expected_codes(comment, codes):
    assert rc.expected_codes(comment) == codes


@pytest.mark.parametrize("comment", ["exit 12x", "exit one", "exit"])
def test_an_exit_note_that_cannot_be_read_is_an_error(comment):
    with pytest.raises(rc.RunbookError, match="cannot read the exit code"):
        rc.expected_codes(comment)


@pytest.mark.parametrize("text,message", [
    ("## A\n```sh\nls\n```\n", "must say where"),
    ("## A\n```sh on-laptop\nls\n```\n", "must say where"),
    ("## A\n```bash\nls\n```\n", "```sh on-host"),
    ("## A\n```sh on-host\ncd /tmp\n```\n", "no `cd`"),
    ("## A\n```sh on-host\nls \\\n```\n", "ends with"),
    ("## A\n```sh on-host\necho 'open\n```\n", "unbalanced quote"),
    ("## A\n```sh on-host\nls\n", "not closed"),
])
def test_parser_refuses_what_a_test_could_not_run_as_written(text, message):
    with pytest.raises(rc.RunbookError, match=re.escape(message)):
        rc.parse_text(text, "bad.md")


def test_a_missing_value_is_an_error_not_a_literal_placeholder():
    cmd = rc.parse_text("## A\n```sh on-host\ncat <backup> <aside>\n```\n", "x.md")[0]
    with pytest.raises(KeyError, match="<aside>"):
        cmd.substituted({"<backup>": "/b"})


def test_section_selects_by_heading_prefix():
    cmds = rc.parse_text(SAMPLE, "sample.md")
    assert len(rc.section(cmds, "2.")) == 2
    with pytest.raises(KeyError, match="headings with commands"):
        rc.section(cmds, "9.")
