"""Test helper: real clients writing through nginx on the test host for a whole operation, and
the check that every write answered 2xx is in the live database afterwards, by id, exactly once.

The writers run ON the test host (python3 from Debian, urllib), so the controller being killed
does not stop them: `start(host, tag)` before the play, `stop_and_check(host, tag)` after.
Each writer POSTs /api/transactions with a description unique to the write, records the status
(0 = connection error) and the id it was answered with. The check reads the live database
read-only (SQLite: the sqlite3 CLI with -safe; PostgreSQL, database="postgres": psql in the server's
container, in a read-only transaction) and compares by id and description.
"""
from __future__ import annotations

import json
import os
import time

DB = "/var/lib/docker/volumes/moneytracker_data/_data/moneytracker.db"
PG_CONTAINER = "moneytracker-postgres-1"
BASE = "http://127.0.0.1:8080"

WRITER = r'''
import json, os, ssl, sys, threading, time, urllib.request, urllib.error
out_path, tag, writers, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
reads = len(sys.argv) > 5 and sys.argv[5] == "reads"  # GET /api/accounts and / before each write
# Through HTTPS too (the tls scenario): MT_BASE=https://<name>, MT_CAFILE=<the CA's root>, verified.
BASE = os.environ.get("MT_BASE", "http://127.0.0.1:8080")
CONTEXT = ssl.create_default_context(cafile=os.environ["MT_CAFILE"]) if os.environ.get("MT_CAFILE") else None
stop = out_path + ".stop"
lock = threading.Lock()
out = open(out_path, "a", buffering=1)

def call(method, path, body=None, headers=None):
    req = urllib.request.Request(BASE + path, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10, context=CONTEXT) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception as e:
        return 0, repr(e).encode()

def token():
    status, body = call("GET", "/api/csrf")
    return json.loads(body)["token"] if status == 200 else None

def account():
    status, body = call("GET", "/api/accounts")
    if status == 200 and json.loads(body):
        return json.loads(body)[0]["id"]
    return None

def writer(n):
    tok, acc, seq = None, None, 0
    deadline = time.time() + limit
    while time.time() < deadline and not os.path.exists(stop):
        if tok is None or acc is None:
            tok, acc = token(), account()
            if tok is None or acc is None:
                time.sleep(0.2)
                continue
        for path in (("/api/accounts", "/") if reads else ()):
            t0 = time.time()
            status, resp = call("GET", path)
            rec = {"m": "GET", "p": path, "s": status, "t": round(t0, 3), "ms": round((time.time() - t0) * 1000, 1)}
            if not 200 <= status < 300:
                rec["e"] = resp[:120].decode(errors="replace")
            with lock:
                out.write(json.dumps(rec) + "\n")
        seq += 1
        desc = f"{tag}-w{n}-{seq}"
        body = json.dumps({"account_id": acc, "amount_cents": seq, "description": desc,
                           "occurred_on": "2026-11-30"}).encode()
        t0 = time.time()
        status, resp = call("POST", "/api/transactions", body,
                            {"Content-Type": "application/json", "X-CSRF-Token": tok})
        rec = {"m": "POST", "d": desc, "s": status, "t": round(t0, 3), "ms": round((time.time() - t0) * 1000, 1)}
        if 200 <= status < 300:
            rec["id"] = json.loads(resp)["id"]
        elif status == 403:
            tok = None
        else:
            rec["e"] = resp[:120].decode(errors="replace")
        with lock:
            out.write(json.dumps(rec) + "\n")
        # 0.2 s between a writer's rounds: with four writers ~20 rounds a second, enough to see any
        # gap of a tenth of a second, without the load itself taking the CPU the operation needs
        # (two scenarios share this machine's two cores).
        time.sleep(0.2)

threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
for t in threads: t.start()
for t in threads: t.join()
out.close()
open(out_path + ".done", "w").close()
'''


def _paths(tag):
    return f"/tmp/writers-{tag}.jsonl", "/tmp/writer_load.py"


def start(host, tag: str, writers: int = 4, limit_seconds: int = 900, reads: bool = False,
          base: str = "", cafile: str = "") -> None:
    """`writers` clients, each POSTing (and with reads=True, GETting /api/accounts and the UI's /
    before each POST) through nginx on the test host until stop(); to `base` (default
    http://127.0.0.1:8080), verifying HTTPS against `cafile` when given."""
    out, script = _paths(tag)
    host.check_output(f"cat > {script} <<'EOF'\n{WRITER}\nEOF")
    mode = "reads" if reads else "writes"
    env = (f"MT_BASE='{base}' " if base else "") + (f"MT_CAFILE='{cafile}' " if cafile else "")
    host.check_output(f"rm -f {out} {out}.stop {out}.done; "
                      f"{env}nohup python3 {script} {out} {tag} {writers} {limit_seconds} {mode} "
                      f">/tmp/writers-{tag}.log 2>&1 &")
    # Wait for the first answered write, so that the load covers the whole operation.
    for _ in range(100):
        if host.run(f"grep -q '\"s\": 20' {out}").rc == 0:
            return
        time.sleep(0.2)
    raise AssertionError("the writers got no 2xx answer before the operation: "
                         + host.run(f"tail -5 {out} /tmp/writers-{tag}.log").stdout)


def stop(host, tag: str) -> list[dict]:
    out, _ = _paths(tag)
    host.check_output(f"touch {out}.stop")
    for _ in range(150):
        if host.file(f"{out}.done").exists:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the writers did not stop")
    return [json.loads(line) for line in host.check_output(f"cat {out}").splitlines() if line.strip()]


def pg_query(host, sql: str, db: str = "moneytracker") -> str:
    """psql in the PostgreSQL container (the local superuser over the socket), in a read-only
    transaction: unaligned rows, fields separated by |."""
    # Compose names the container; under Swarm it is the task of the service moneytracker_postgres.
    container = ("$(docker ps -q --filter label=com.docker.swarm.service.name=moneytracker_postgres | head -1)"
                 if host.run("docker ps -q --filter label=com.docker.swarm.service.name=moneytracker_postgres"
                             " | grep -q .").rc == 0 else PG_CONTAINER)
    return host.check_output(
        f"docker exec -u postgres {container} psql -X -q -v ON_ERROR_STOP=1 -At -F '|' -d {db}"
        f" -c 'SET default_transaction_read_only = on' -c \"{sql}\"")


def live_rows(host, tag: str, database: str = "sqlite") -> list[tuple[int, str]]:
    """(id, description) of the tagged rows in the live database, read-only."""
    sql = f"SELECT id, description FROM transactions WHERE description LIKE '{tag}-w%'"
    if database == "postgres":
        text = pg_query(host, sql)
    else:
        text = host.check_output(f"sqlite3 -safe -readonly -separator '|' {DB} \"{sql}\"")
    return [(int(i), d) for i, d in (line.split("|", 1) for line in text.splitlines() if line)]


def check(host, tag: str, records: list[dict], database: str = "sqlite") -> dict:
    """Every 2xx write present by id, exactly once, no id handed out twice. Returns figures."""
    ok = [r for r in records if 200 <= r["s"] < 300 and "d" in r]
    assert ok, "no write was answered 2xx: the load proves nothing"
    ids = [r["id"] for r in ok]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    assert not dupes, f"ids answered to two different writes: {dupes[:10]}"
    rows = live_rows(host, tag, database)
    by_id = dict(rows)
    descs = [d for _, d in rows]
    missing = [r for r in ok if by_id.get(r["id"]) != r["d"]]
    assert not missing, (f"{len(missing)} of {len(ok)} writes answered 2xx are not in the live database "
                         f"(first: {missing[:5]}; the row now at that id: "
                         f"{[by_id.get(r['id']) for r in missing[:5]]})")
    twice = sorted({d for d in descs if descs.count(d) > 1})
    assert not twice, f"writes stored twice: {twice[:10]}"
    failed = [r for r in records if not 200 <= r["s"] < 300]
    figures = {"answered_2xx": len(ok), "other": len(failed),
               "statuses": sorted({r["s"] for r in failed}), "rows": len(rows)}
    # What answered other than the maintenance page, for the figure lines (the first three).
    unexpected = [r for r in failed if r["s"] not in (503,)]
    if unexpected:
        figures["unexpected"] = [{k: r.get(k) for k in ("s", "t", "m", "p", "e")} for r in unexpected[:3]]
    return figures


def latency(records: list[dict], since: float = 0.0, until: float = float("inf")) -> dict:
    """Request count and p50/p99/max latency (ms) of the records started in [since, until)."""
    ms = sorted(r["ms"] for r in records if "ms" in r and since <= r["t"] < until)
    if not ms:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    return {"n": len(ms), "p50": ms[len(ms) // 2], "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
            "max": ms[-1]}


def record(line: str, name: str = "writers") -> None:
    """Append a figure line to .build/logs/figures-<name>.txt (`make test` prints them at the end)."""
    logs = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."), ".build", "logs")
    os.makedirs(logs, exist_ok=True)
    with open(os.path.join(logs, f"figures-{name}.txt"), "a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")
    print(line)
