"""The commands of a runbook, as written, for the tests that run them.

A runbook (docs/runbooks/*.md) marks every command an operator types in a fenced block whose
info string says where it runs:

    ```sh on-host            as root on the app host
    ```sh on-controller      on the controller, from the collection's checkout (playbooks/...)

Inside such a block:
  - each line is one command, complete by itself (absolute paths, no `cd`, no shell variable
    carried to the next line), so an operator can paste any one of them; a line ending in `\\`
    continues on the next line;
  - a line that starts with `#` is a note, not a command;
  - a trailing comment (` # ...`, outside quotes) is a note for the reader; when it starts with
    `exit N` (or `exit N or M`) the command exits N (or N or M) in the situation the runbook
    section is written for; every other command exits 0;
  - a word in angle brackets (`<backup>`) is a placeholder the operator fills in; PLACEHOLDERS
    says what each one stands for (docs/runbooks/README.md shows the same list) and the tests
    substitute a value for each. `inventories/<site>` is replaced as a whole (by the test
    inventory).
Other fenced blocks (```text, ```json, a bare ```) are output or files and are never run.

Used by molecule/migrate/tests/test_runbooks.py, molecule/tls/tests/test_tls.py and
molecule/postgres/tests/test_move.py and molecule/swarm/tests/test_swarm_runbook.py (run the
commands on a test host, with run_as_written below) and tests/unit/test_runbook_commands.py (every block of the tested runbooks parses; every
placeholder is known).
"""
from __future__ import annotations

import base64
import dataclasses
import os
import re
import subprocess
from pathlib import Path

RUNBOOK_DIR = Path(__file__).resolve().parents[2] / "docs" / "runbooks"

# The runbooks whose every command a Molecule test runs, by the scenario that runs them.
TESTED_BY = {
    "migration-failed.md": "migrate",
    "clear-a-stale-lock.md": "migrate",
    "roll-back-a-release.md": "migrate",
    "integrity-check-failed.md": "migrate",
    "certificate-renewal-failed.md": "tls",
    "move-to-postgres.md": "postgres",
    "swarm-nodes.md": "swarm",
}
TESTED_RUNBOOKS = tuple(TESTED_BY)


def tested_in(scenario: str) -> tuple:
    return tuple(name for name, by in TESTED_BY.items() if by == scenario)


WHERE = ("on-host", "on-controller")

# Placeholder -> what the operator puts there (the README's table says the same).
PLACEHOLDERS = {
    "<site>": "your inventory: `-i inventories/<site>` is the inventory directory of the site",
    "<release>": "a release id, a directory name in /opt/moneytracker/releases/ (UTC time, e.g. 20261130T101010Z)",
    "<backup>": "a backup file, as the play's message or `moneytracker-db list` shows it "
                "(/var/backups/moneytracker/moneytracker-<UTC time>.db.zst)",
    "<damaged>": "the backup file the failed full check names (/var/backups/moneytracker/moneytracker-<UTC time>.db.zst)",
    "<quarantined>": "the copy the failed backup names "
                     "(/var/backups/moneytracker/quarantine/moneytracker-<UTC time>.db)",
    "<aside>": "the database file a restore kept aside, as its message shows it "
               "(/var/lib/docker/volumes/moneytracker_data/_data/moneytracker.db.pre-restore-<UTC time>)",
    "<max-id>": "the number the command before it printed",
    "<controller-pid>": "the controller pid in the lock record (`controller pid N` in `moneytracker-db lock status`)",
    "<highest-id>": "the highest id of transactions at the move, as the move's message names it",
    "<moved-time>": "the time in the name of the SQLite file the move kept (moneytracker.db.moved-<UTC time>)",
    "<node>": "a swarm node's hostname, as `docker node ls` shows it",
}

_FENCE = re.compile(r"^(\s*)```(.*)$")
_PLACEHOLDER = re.compile(r"<[a-z][a-z0-9-]*>")
_EXIT = re.compile(r"^exit (\d+)((?:(?:,\s*|\s+or\s+)\d+)*)(?!\w)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


class RunbookError(ValueError):
    """A command block that does not follow the rules above (the message names file and line)."""


@dataclasses.dataclass(frozen=True)
class Command:
    runbook: str          # file name, e.g. "clear-a-stale-lock.md"
    section: str          # the nearest heading above the block, without the #s
    block: int            # number of the block in its runbook (0, 1, ...)
    line: int             # line number of the command's first line (1-based)
    where: str            # "on-host" | "on-controller"
    text: str             # the command as written (continuation lines kept), without its comment
    comment: str          # the trailing comment, without "#" ("" when none)
    expect: frozenset     # the exit codes it may end with in the runbook's situation

    @property
    def placeholders(self) -> list[str]:
        return sorted(set(_PLACEHOLDER.findall(self.text)))

    def substituted(self, values: dict[str, str]) -> str:
        """The command with every placeholder replaced; a missing value is an error."""
        text = self.text
        if "inventories/<site>" in text:
            if "<site>" not in values:
                raise KeyError(f"{self.where_text()}: no value for <site>")
            text = text.replace("inventories/<site>", values["<site>"])
        missing = [p for p in sorted(set(_PLACEHOLDER.findall(text))) if p not in values]
        if missing:
            raise KeyError(f"{self.where_text()}: no value for {', '.join(missing)}")
        return _PLACEHOLDER.sub(lambda m: values[m.group(0)], text)

    def where_text(self) -> str:
        return f"{self.runbook}:{self.line} ({self.section})"


def comment_start(line: str) -> int:
    """Index of the `#` that starts a shell comment in the line (outside quotes, at a word's
    start), or -1."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = None
        elif quote == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                quote = None
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return i
        i += 1
    if quote:
        return -2  # an open quote: the command goes on (the caller reports it)
    return -1


def expected_codes(comment: str) -> frozenset:
    m = _EXIT.match(comment.strip())
    if not m:
        if re.match(r"^exit\b", comment.strip()):
            raise RunbookError(f"cannot read the exit code in '# {comment.strip()}' (write: exit N, or exit N or M)")
        return frozenset({0})
    return frozenset(int(n) for n in re.findall(r"\d+", m.group(0)))


def parse_text(text: str, name: str) -> list[Command]:
    commands: list[Command] = []
    section = ""
    block_no = -1
    in_block: str | None = None       # None outside a fence; "" in a fence that is not run
    fence_indent = ""
    pending: list[str] = []           # lines of a command continued with "\"
    pending_line = 0
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        fence = _FENCE.match(raw)
        if in_block is None:
            if fence:
                info = fence.group(2).split()
                fence_indent = fence.group(1)
                if info[:1] == ["sh"]:
                    where = info[1:]
                    if len(where) != 1 or where[0] not in WHERE:
                        raise RunbookError(f"{name}:{number}: a sh block must say where it runs: "
                                           f"```sh on-host or ```sh on-controller (got {fence.group(2)!r})")
                    block_no += 1
                    in_block = where[0]
                elif info[:1] in (["bash"], ["shell"], ["console"]):
                    raise RunbookError(f"{name}:{number}: command blocks are ```sh on-host / ```sh on-controller")
                else:
                    in_block = ""
                continue
            heading = _HEADING.match(raw)
            if heading:
                section = heading.group(2)
            continue
        if fence and not fence.group(2).strip() and raw.startswith(fence_indent):
            if pending:
                raise RunbookError(f"{name}:{pending_line}: the command's last line ends with \\")
            in_block = None
            continue
        if in_block == "":
            continue
        line = raw[len(fence_indent):] if raw.startswith(fence_indent) else raw.lstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            pending_line = number
        pending.append(line.rstrip())
        joined = "\n".join(pending)
        cut = comment_start(joined)
        if cut < 0 and joined.endswith("\\"):
            continue  # continued on the next line
        if cut == -2:
            raise RunbookError(f"{name}:{number}: unbalanced quote in {joined!r}")
        comment = joined[cut + 1:].strip() if cut >= 0 else ""
        body = joined[:cut].rstrip() if cut >= 0 else joined
        if not body.strip():
            raise RunbookError(f"{name}:{number}: a command line with only a comment after a \\")
        if re.match(r"^\s*cd\s", body):
            raise RunbookError(f"{name}:{pending_line}: no `cd` (each line runs on its own): use absolute paths")
        commands.append(Command(runbook=name, section=section, block=block_no, line=pending_line,
                                where=in_block, text=body.strip(), comment=comment,
                                expect=expected_codes(comment)))
        pending = []
    if in_block is not None:
        raise RunbookError(f"{name}: a fenced block is not closed")
    return commands


def parse(path: Path | str) -> list[Command]:
    path = Path(path)
    return parse_text(path.read_text(encoding="utf-8"), path.name)


def runbook(name: str) -> list[Command]:
    return parse(RUNBOOK_DIR / name)


def section(commands: list[Command], prefix: str) -> list[Command]:
    """The commands under the headings that start with `prefix` (at least one)."""
    found = [c for c in commands if c.section.startswith(prefix)]
    if not found:
        names = sorted({c.section for c in commands})
        raise KeyError(f"no commands under a heading starting with {prefix!r}; headings with commands: {names}")
    return found


# ---- running them (the Molecule tests)

@dataclasses.dataclass
class Ran:
    command: Command
    text: str
    rc: int
    out: str
    err: str

    @property
    def flat(self) -> str:
        """stdout + stderr with whitespace folded (Ansible's YAML callback wraps long lines)."""
        return " ".join((self.out + "\n" + self.err).split())


def run_as_written(host, commands: list[Command], values: dict[str, str], project_dir: str, transcript: Path,
                   ran_lines: set | None = None, after=None) -> list[Ran]:
    """Run the commands in order, checking each exit code against the runbook. Host commands run on
    the test host through testinfra (handed over base64-encoded, so neither Ansible's templating nor
    a second layer of quoting touches them; bash runs them as an operator's root shell would);
    controller commands run here, from `project_dir`. `after(ran, values)` may add values read off
    an output (as the operator does) before the next command is substituted. Every command goes to
    `transcript`; (runbook, line) of each goes to `ran_lines`."""
    results = []
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    for c in commands:
        text = c.substituted(values)
        if c.where == "on-host":
            encoded = base64.b64encode(text.encode()).decode()
            r = host.run(f'bash -c "$(printf %s {encoded} | base64 -d)"')
            ran = Ran(c, text, r.rc, r.stdout, r.stderr)
        else:
            p = subprocess.run(["bash", "-c", text], cwd=project_dir, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, env=env, timeout=900, check=False)
            ran = Ran(c, text, p.returncode, p.stdout, p.stderr)
        transcript.parent.mkdir(parents=True, exist_ok=True)
        with open(transcript, "a", encoding="utf-8") as fh:
            fh.write(f"\n=== {c.where_text()} [{c.where}] exit {ran.rc} (runbook: {sorted(c.expect)})\n$ {text}\n"
                     f"{ran.out}{ran.err}")
        assert ran.rc in c.expect, (
            f"{c.where_text()}: `{text}` exited {ran.rc}; the runbook says {sorted(c.expect)}\n"
            f"--- stdout\n{ran.out[-4000:]}\n--- stderr\n{ran.err[-2000:]}")
        if ran_lines is not None:
            ran_lines.add((c.runbook, c.line))
        results.append(ran)
        if after:
            after(ran, values)
    return results
