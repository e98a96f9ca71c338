#!/usr/bin/env python3
"""Rename the 0.1 variable names of moneytracker.deploy in inventory files (porting to 0.2.0).

    scripts/port-inventory.py [--write] PATH...      (files or directories of .yml/.yaml/.ini files)

Without --write it prints what it would change (a unified diff) and changes nothing. Renames:
  sqlite_maintenance_<name>           -> moneytracker_db_<name>
  cadvisor_<name>                     -> the table in roles/monitoring/vars/main.yml (_monitoring_renamed_from)
  role names moneytracker.deploy.sqlite_maintenance / .cadvisor -> .moneytracker_db / .monitoring
Playbook extra-vars (-e confirm=yes ...) live in scripts and cron jobs, not inventories: see
CHANGELOG.md. Exit 0 when nothing needs changing or --write changed it; 1 when changes are pending.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def renames() -> dict[str, str]:
    table = yaml.safe_load((ROOT / "roles/monitoring/vars/main.yml").read_text())["_monitoring_renamed_from"]
    return dict(table)


def port(text: str, table: dict[str, str]) -> str:
    def cadvisor(m: re.Match) -> str:
        return table.get(m.group(0), m.group(0))

    text = re.sub(r"(?<![A-Za-z0-9_.])sqlite_maintenance_(?=[a-z])", "moneytracker_db_", text)
    text = re.sub(r"(?<![A-Za-z0-9_.])cadvisor_[a-z0-9_]+(?![A-Za-z0-9_])", cadvisor, text)
    text = re.sub(r"moneytracker\.deploy\.sqlite_maintenance\b", "moneytracker.deploy.moneytracker_db", text)
    text = re.sub(r"moneytracker\.deploy\.cadvisor\b", "moneytracker.deploy.monitoring", text)
    return text


def files(paths: list[str]):
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.suffix in (".yml", ".yaml", ".ini") and f.is_file())
        else:
            yield p


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="change the files (default: show the diff only)")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args(argv)
    table = renames()
    pending = False
    for f in files(args.paths):
        old = f.read_text()
        new = port(old, table)
        if new == old:
            continue
        pending = True
        if args.write:
            f.write_text(new)
            print(f"ported: {f}")
        else:
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(f), str(f)))
    return 1 if pending and not args.write else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
