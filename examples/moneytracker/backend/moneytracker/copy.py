"""moneytracker-copy: copy every row of one database into another of this release's schema, then prove
the copy: per table the row count and a SHA-256 over every row (in id order, values in a canonical
text form) on both sides, and the target's id sequences set past the highest id.

  SOURCE_DATABASE_URL=sqlite:////data/moneytracker.db DATABASE_URL=postgresql://... \\
      moneytracker-copy [--json] [--verify-only]

The target's schema must exist at the source's revision (moneytracker-migrate upgrade on it first)
and its tables must be empty (refused otherwise: nothing is written). The copy runs in one
transaction on the target: a failure leaves it empty. The deploy's playbooks/move_to_postgres.yml
runs it in a one-off container under the maintenance lock, with the writers stopped.
Exit: 0 copied and proven equal; 1 failed (the message says where); 64 bad configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import time

from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, func, select, text
from sqlalchemy.engine import make_url

from moneytracker.db import make_engine
from moneytracker.release import ConfigError
from moneytracker.settings import database_url

TABLES = ("accounts", "transactions")  # parents first
BATCH = 1000


def canonical(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, (dt.date, int, str)):
        return str(value)
    return repr(value)


def table_proof(conn, table) -> dict:
    """Rows, highest id and the SHA-256 of every row (ordered by id), read through SQLAlchemy's
    types so that both engines give the same text for the same value."""
    digest = hashlib.sha256()
    rows = 0
    names = sorted(c.name for c in table.columns)
    for row in conn.execute(select(*[table.c[n] for n in names]).order_by(table.c.id)).yield_per(BATCH):
        digest.update(("\x1f".join(canonical(v) for v in row) + "\x1e").encode())
        rows += 1
    max_id = conn.execute(select(func.max(table.c.id))).scalar()
    return {"rows": rows, "max_id": max_id, "sha256": digest.hexdigest(), "columns": names}


def reflect(conn) -> MetaData:
    meta = MetaData()
    meta.reflect(conn, only=list(TABLES))
    return meta


def revision(conn) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def copy(source_url, target_url, verify_only: bool = False) -> dict:
    source, target = make_engine(source_url), make_engine(target_url)
    started = time.monotonic()
    try:
        with source.connect() as src, target.begin() as dst:
            rev_src, rev_dst = revision(src), revision(dst)
            if rev_src is None or rev_src != rev_dst:
                raise RuntimeError(f"schema revisions differ: source {rev_src or 'none'}, target {rev_dst or 'none'} "
                                   "(run moneytracker-migrate upgrade on the target first, with the same release)")
            src_meta, dst_meta = reflect(src), reflect(dst)
            for name in TABLES:
                cols_src = sorted(c.name for c in src_meta.tables[name].columns)
                cols_dst = sorted(c.name for c in dst_meta.tables[name].columns)
                if cols_src != cols_dst:
                    raise RuntimeError(f"{name}: columns differ: source {cols_src}, target {cols_dst}")
            copied = {}
            if not verify_only:
                for name in TABLES:
                    present = dst.execute(select(func.count()).select_from(dst_meta.tables[name])).scalar()
                    if present:
                        raise RuntimeError(f"target table {name} already holds {present} rows: refusing to copy into it")
                for name in TABLES:
                    s_table, d_table = src_meta.tables[name], dst_meta.tables[name]
                    n = 0
                    batch = []
                    for row in src.execute(select(s_table).order_by(s_table.c.id)).mappings().yield_per(BATCH):
                        batch.append(dict(row))
                        if len(batch) == BATCH:
                            dst.execute(d_table.insert(), batch)
                            n += len(batch)
                            batch = []
                    if batch:
                        dst.execute(d_table.insert(), batch)
                        n += len(batch)
                    copied[name] = n
                    if dst.dialect.name == "postgresql":
                        # New ids continue after the old ones (explicit ids do not move a sequence).
                        dst.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"COALESCE((SELECT max(id) FROM {name}), 0) + 1, false)"))
            proofs = {}
            for name in TABLES:
                a, b = table_proof(src, src_meta.tables[name]), table_proof(dst, dst_meta.tables[name])
                proofs[name] = {"source": a, "target": b, "equal": a == b}
            unequal = [n for n, p in proofs.items() if not p["equal"]]
            if unequal:
                raise RuntimeError(f"the copy differs from the source in {', '.join(unequal)}: "
                                   + "; ".join(f"{n}: {proofs[n]['source']['rows']} vs {proofs[n]['target']['rows']} rows"
                                               for n in unequal))
            sequences = {}
            if dst.dialect.name == "postgresql":
                for name in TABLES:
                    sequences[name] = dst.execute(text(
                        f"SELECT nextval(pg_get_serial_sequence('{name}', 'id'))")).scalar()
                    dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                                     f"{sequences[name]}, false)"))  # peeked, not used
    finally:
        source.dispose()
        target.dispose()
    return {"ok": True, "revision": rev_src, "copied": copied, "tables": {n: p["source"] | {"equal": True}
                                                                          for n, p in proofs.items()},
            "next_ids": sequences, "seconds": round(time.monotonic() - started, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moneytracker-copy", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verify-only", action="store_true", help="compare counts and checksums, copy nothing")
    args = parser.parse_args(argv)
    try:
        raw = os.environ.get("SOURCE_DATABASE_URL", "").strip()
        if not raw:
            raise ConfigError("SOURCE_DATABASE_URL is not set (the database to copy from)")
        source = make_url(raw)
        result = copy(source, database_url(), args.verify_only)
    except ConfigError as exc:
        print(f"moneytracker-copy: {exc}", file=sys.stderr)
        return 64
    except Exception as exc:  # report any failure; the target's transaction was rolled back
        print(f"moneytracker-copy: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 1
    if args.json:
        print(json.dumps(result, default=str))
    else:
        for name, t in result["tables"].items():
            print(f"{name}: {t['rows']} rows (highest id {t['max_id']}), sha256 {t['sha256'][:16]}... equal on both sides"
                  + (f", next id {result['next_ids'][name]}" if name in result["next_ids"] else ""))
        print(f"copied at revision {result['revision']} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
