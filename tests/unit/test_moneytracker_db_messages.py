"""A damaged database can make SQLite put dozens of problems into ONE quick_check row (newline
separated, under '*** in database main ***'). The failure stays one short line for stderr,
syslog and the journal, and counts problems, not rows."""
import sqlite3


def _damage_table_page(path, table="transactions"):
    con = sqlite3.connect(path)
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    with open(path, "r+b") as fh:
        fh.seek(page_size * (root - 1) + (100 if root == 1 else 0) + 3)
        fh.write(b"\x00\x40")  # the page claims 64 cells it does not have


def test_problem_lines_split_rows_and_drop_the_header(tool):
    rows = ["*** in database main ***\nTree 6 page 6 cell 63: bad\nTree 6 page 6 cell 62: bad", "row 2"]
    assert tool.problem_lines(rows) == ["Tree 6 page 6 cell 63: bad", "Tree 6 page 6 cell 62: bad", "row 2"]
    assert tool.first_problems(rows) == "3 problem(s), first: Tree 6 page 6 cell 63: bad; Tree 6 page 6 cell 62: bad"
    assert tool.first_problems(["x" * 500]).endswith("x...") and len(tool.first_problems(["x" * 500])) < 240


def test_quick_check_failure_is_one_short_line(env, tmp_path, syslog):
    from conftest import make_db
    db = make_db(tmp_path / "damaged" / "moneytracker.db", accounts=5, transactions=300)
    _damage_table_page(db)
    r = env.run("check", "--quick", "--database", db)
    assert r.rc == 1
    assert r.err.count("\n") == 1 and len(r.err) < 700, r.err
    assert "quick_check of the LIVE database" in r.err and "problem(s), first: " in r.err
    assert "*** in database" not in r.err
    assert any("check: FAILED: quick_check" in m and len(m) < 800 for m in syslog.messages())
