"""moneytracker-db compare: what a restore of a backup would lose, read-only, with table names
that try to inject SQL. Real SQLite files; the backup is a real one made by the tool."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

INJECT = "x\"; SELECT writefile('/tmp/pwned','x');--"
# Effective within ONE statement if a name were pasted between double quotes without doubling
# the quotes inside it: SELECT count(*) FROM "a" WHERE pwn() OR "1"
INJECT_ONE_STATEMENT = 'a" WHERE pwn() OR "1'


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@pytest.fixture
def trap(tool, monkeypatch):
    """Every connection the tool opens gets writefile() and pwn() functions that only record a
    call. A test double for the sqlite3 shell's writefile: if any SQL built from a table name ever
    ran them, `calls` would not be empty."""
    calls: list = []
    real = sqlite3.connect

    def connect(*args, **kwargs):
        con = real(*args, **kwargs)
        con.create_function("writefile", 2, lambda *a: calls.append(("writefile", a)) or 0)
        con.create_function("pwn", 0, lambda: calls.append(("pwn",)) or 1)
        return con

    monkeypatch.setattr(tool.sqlite3, "connect", connect)
    return calls


def add_tables(db: Path, rows: int = 5) -> None:
    con = sqlite3.connect(db)
    for name in (INJECT, INJECT_ONE_STATEMENT, "a"):
        con.execute(f"CREATE TABLE {q(name)} (id INTEGER PRIMARY KEY, v TEXT)")
        con.executemany(f"INSERT INTO {q(name)}(v) VALUES (?)", [(f"r{i}",) for i in range(rows)])
    con.execute("CREATE TABLE notes (body TEXT)")  # no integer id
    con.execute("INSERT INTO notes VALUES ('n1')")
    con.commit()
    con.close()


def write_after_backup(db: Path) -> None:
    con = sqlite3.connect(db)
    con.executemany("INSERT INTO transactions(account_id, amount_cents) VALUES (1, ?)", [(i,) for i in range(30)])
    con.executemany(f"INSERT INTO {q(INJECT)}(v) VALUES (?)", [("late",)] * 3)
    con.execute("INSERT INTO notes VALUES ('n2')")
    con.execute("DELETE FROM accounts WHERE id = 20")  # a deletion is not a lost write
    con.commit()
    con.close()


def test_compare_counts_and_new_ids_with_hostile_table_names(env, trap):
    add_tables(env.db)
    r = env.call("backup", "--json")
    assert r.rc == 0, r.err
    b = r.data["backup"]
    manifest = json.loads(Path(b + ".manifest.json").read_text())
    assert manifest["row_counts"][INJECT] == 5 and manifest["max_ids"][INJECT] == 5
    assert manifest["max_ids"]["transactions"] == 500 and "notes" not in manifest["max_ids"]
    write_after_backup(env.db)
    before = env.db.read_bytes()
    pwned_before = Path("/tmp/pwned").exists()

    r = env.call("compare", "--backup", b, "--json")
    assert r.rc == 0, r.err
    assert trap == [] and Path("/tmp/pwned").exists() == pwned_before
    t = r.data["tables"]
    assert t[INJECT] == {"live": 8, "backup": 5, "new_ids": [6, 7, 8], "new_count": 3, "backup_max_id": 5}
    assert t[INJECT_ONE_STATEMENT]["live"] == 5 and t[INJECT_ONE_STATEMENT]["new_count"] == 0
    assert t["a"]["live"] == 5
    assert t["transactions"]["live"] == 530 and t["transactions"]["backup"] == 500
    assert t["transactions"]["new_count"] == 30 and t["transactions"]["new_ids"] == list(range(501, 521))
    assert t["accounts"] == {"live": 19, "backup": 20, "new_ids": [], "new_count": 0, "backup_max_id": 20}
    assert t["notes"]["live"] == 2 and t["notes"]["backup"] == 1 and t["notes"]["new_count"] is None
    assert r.data["writes_lost"] == 33 and r.data["backup"] == b and r.data["max_ids_from"] == "manifest"
    assert r.data["backup_started"] == manifest["started"]
    assert env.db.read_bytes() == before  # read-only

    plain = env.call("compare", "--backup", b)
    assert plain.rc == 0
    lines = plain.out.splitlines()
    assert any(line.startswith(f"  {json.dumps(INJECT)}: live 8, backup 5; 3 row(s)") for line in lines)
    assert any(line.startswith("  transactions: live 530, backup 500; 30 row(s) newer than the backup, ids 501, 502")
               and "(30 in all)" in line for line in lines)
    assert "would lose 33 row(s)" in lines[-1]
    assert trap == []


def test_compare_reads_old_backups_without_max_ids_from_the_backup_itself(env, trap):
    add_tables(env.db)
    b = env.call("backup", "--json").data["backup"]
    mpath = Path(b + ".manifest.json")
    manifest = json.loads(mpath.read_text())
    del manifest["max_ids"]  # a backup made by the previous version of the tool
    manifest["row_counts"]["transactions; DROP TABLE accounts"] = 1  # manifest data never becomes SQL
    mpath.write_text(json.dumps(manifest))
    write_after_backup(env.db)
    r = env.call("compare", "--backup", b, "--json")
    assert r.rc == 0, r.err
    assert r.data["max_ids_from"] == "backup" and r.data["writes_lost"] == 33
    assert r.data["tables"][INJECT]["new_ids"] == [6, 7, 8]
    assert "transactions; DROP TABLE accounts" not in r.data["tables"]
    assert trap == [] and not list((env.backups / ".tmp").iterdir())


def test_compare_counts_a_table_the_backup_does_not_have(env):
    b = env.call("backup", "--json").data["backup"]
    con = sqlite3.connect(env.db)
    con.execute("CREATE TABLE budgets (id INTEGER PRIMARY KEY, name TEXT)")
    con.executemany("INSERT INTO budgets(name) VALUES (?)", [("b",)] * 4)
    con.commit()
    con.close()
    r = env.call("compare", "--backup", b, "--json")
    assert r.rc == 0
    assert r.data["tables"]["budgets"] == {"live": 4, "backup": None, "new_ids": [1, 2, 3, 4], "new_count": 4,
                                           "backup_max_id": None}
    assert r.data["writes_lost"] == 4


def test_compare_defaults_to_the_newest_verified_backup(env):
    env.call("backup")
    newest = env.call("backup", "--json").data["backup"]
    r = env.call("compare", "--json")
    assert r.rc == 0 and r.data["backup"] == newest and r.data["writes_lost"] == 0
