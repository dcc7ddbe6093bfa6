#!/usr/bin/env python3
"""Operator API latency with a large store (issue 16: "each API answer
under 50 ms with 1,000,000 deliveries in the store").

  bench/api.py [--bin build/runbridge] [--deliveries 1000000] [--dir DIR] [--keep]

Starts runbridge once so that it creates the store (schema and the API's
indexes), stops it, fills the store with direct SQLite inserts shaped like
real traffic (runs of 5 events: run.started, 3 result.updated, run.completed;
two jobs per delivery, one in 50 dead with an attempt row, a target mapping
per run), starts it again and times every endpoint over loopback HTTP:
N calls each, median and worst, in milliseconds.  Standard library only.

Then the bulk replay that re-queues all 20,000 dead jobs, which changes the
store, so each try has its own daemon: stop, put those jobs back to dead
(offline), start, one POST /api/v1/replay, stop.  The store is left with
the jobs dead again, as it was filled.
"""
import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

RULES = """
rules:
  - name: all-to-stream
    actions:
      - redis: { stream: "rb:{{project}}" }
  - name: chat
    match: { event: run.completed }
    actions:
      - http: { url: "http://127.0.0.1:9/hook?token=x", body: "{}" }
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, cfg, port):
    log = open(cfg + ".log", "ab")
    p = subprocess.Popen([binary, "serve", "-c", cfg], stdout=log, stderr=log)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return p
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("runbridge did not start; see " + cfg + ".log")


def stop(p):
    p.terminate()
    p.wait(120)


def fill(db_path, n):
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = int(time.time() * 1000)
    t0 = now - n * 100  # one delivery every 100 ms, up to now
    projects = ["DEMO", "WEB", "API", "MOBILE"]
    kinds = ["run.started", "result.updated", "result.updated", "result.updated", "run.completed"]
    deliveries, jobs, runs, attempts, targets = [], [], [], [], []
    seq = db.execute("SELECT IFNULL(MAX(seq), 0) FROM deliveries").fetchone()[0]
    job_id = db.execute("SELECT IFNULL(MAX(id), 0) FROM jobs").fetchone()[0]
    started = time.monotonic()

    def flush():
        db.executemany("INSERT INTO deliveries(seq, id, source, type, project, run_id,"
                       " received_ms, raw, event) VALUES(?,?,?,?,?,?,?,?,?)", deliveries)
        db.executemany("INSERT INTO jobs(id, delivery_seq, rule, idx, kind, params, lane, state,"
                       " attempts, next_ms, last_error, created_ms, updated_ms)"
                       " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)", jobs)
        db.executemany("INSERT OR REPLACE INTO runs(project, run_id, run, updated_ms)"
                       " VALUES(?,?,?,?)", runs)
        db.executemany("INSERT INTO attempts(job_id, n, started_ms, finished_ms, ok, detail)"
                       " VALUES(?,?,?,?,?,?)", attempts)
        db.executemany("INSERT OR REPLACE INTO target_runs(kind, target, project, run_id,"
                       " remote_id, state, data, updated_ms) VALUES(?,?,?,?,?,?,?,?)", targets)
        db.commit()
        for v in (deliveries, jobs, runs, attempts, targets):
            v.clear()

    for i in range(n):
        run_no = i // 5
        project = projects[run_no % len(projects)]
        run_id = run_no + 1
        kind = kinds[i % 5]
        ms = t0 + i * 100
        title = "Nightly build %d of %s" % (run_id, project)
        payload = {"id": run_id, "title": title, "cases_count": 120} if kind.startswith("run.") \
            else {"run_id": run_id, "case_id": i % 997, "status": "failed" if i % 7 == 0 else "passed"}
        raw = json.dumps({"event_name": kind, "timestamp": ms // 1000, "payload": payload,
                          "team_member_id": 40, "project_code": project})
        did = hashlib.sha256(b"qase" + raw.encode() + str(i).encode()).hexdigest()
        run = {"title": title, "description": None, "plan": {"id": 3, "title": "Regression"},
               "environment": "staging", "cases_count": 120,
               "counts": {"total": 120, "passed": 110, "failed": 10}}
        event = json.dumps({"schema": "runbridge.event.v1", "id": did, "source": "qase",
                            "type": kind, "project": project, "run_id": run_id,
                            "received_at": "x", "run": run, "results": None,
                            "raw": json.loads(raw)})
        seq += 1
        deliveries.append((seq, did, "qase", kind, project, run_id, ms, raw.encode(), event))
        if kind.startswith("run."):
            runs.append((project, run_id, json.dumps(run), ms))
        for rule, k, params in (("all-to-stream", "redis", '{"stream":"rb:%s"}' % project),
                                ("chat", "http", '{"url":"http://127.0.0.1:9/hook?token=***"}')):
            if k == "http" and kind != "run.completed":
                continue
            job_id += 1
            dead = k == "http" and run_no % 10 == 0
            jobs.append((job_id, seq, rule, 0, k, params, "%s#%d/%s/0" % (project, run_id, rule),
                         3 if dead else 2, 1, 0, "HTTP 500: oops" if dead else None, ms, ms + 5))
            if dead:
                attempts.append((job_id, 1, ms + 1, ms + 5, 0, "HTTP 500: oops"))
        if kind == "run.completed":
            targets.append(("testomat", "main", project, run_id, "r%d" % run_id, "finished",
                            "{}", ms))
        if len(deliveries) >= 20000:
            flush()
            sys.stderr.write("\r%d deliveries" % (i + 1))
    flush()
    db.execute("ANALYZE")
    db.commit()
    db.close()
    sys.stderr.write("\rfilled %d deliveries in %.0f s\n" % (n, time.monotonic() - started))
    return t0, now


# The dead jobs fill() made: the chat job of every tenth run.
DEAD_SQL = ("UPDATE jobs SET state = 3, attempts = 1, next_ms = 0, requeue = 0,"
            " last_error = 'HTTP 500: oops' WHERE rule = 'chat' AND delivery_seq IN"
            " (SELECT seq FROM deliveries WHERE type = 'run.completed' AND run_id % 10 = 1)")


def reset_dead(db_path):
    db = sqlite3.connect(db_path, timeout=60)
    with db:
        n = db.execute(DEAD_SQL).rowcount
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return n


def bulk_replay(binary, cfg, port, db_path, tries):
    """Each try: a fresh daemon, the 20,000 dead jobs dead, one replay."""
    rows = []
    for _ in range(tries):
        reset_dead(db_path)
        p = start(binary, cfg, port)
        try:
            _, _, data = timed(port, "GET", "/api/v1/session")
            h = {"X-CSRF-Token": json.loads(data)["csrf"], "Content-Type": "application/json"}
            ms, status, data = timed(port, "POST", "/api/v1/replay",
                                     json.dumps({"state": "dead", "kind": "http"}), h)
            rows.append((ms, status, json.loads(data).get("replayed")))
        finally:
            stop(p)
    reset_dead(db_path)
    return rows


def timed(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t = time.perf_counter()
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    ms = (time.perf_counter() - t) * 1000
    c.close()
    return ms, r.status, data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/runbridge")
    ap.add_argument("--deliveries", type=int, default=1000000)
    ap.add_argument("--dir")
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--replay-tries", type=int, default=3)
    a = ap.parse_args()
    work = a.dir or tempfile.mkdtemp(prefix="rb-api-bench-")
    os.makedirs(work, exist_ok=True)
    port = free_port()
    cfg = os.path.join(work, "runbridge.yaml")
    with open(os.path.join(work, "rules.yaml"), "w") as f:
        f.write(RULES)
    with open(cfg, "w") as f:
        f.write("listen: 127.0.0.1:%d\ndata_dir: %s/data\nrules: %s/rules.yaml\n"
                "targets:\n  testomat:\n    main:\n      api_key: k\n      base_url: http://127.0.0.1:9\n"
                % (port, work, work))
    db = os.path.join(work, "data", "runbridge.db")
    if not os.path.exists(db):
        stop(start(a.bin, cfg, port))
        fill(db, a.deliveries)
    with sqlite3.connect(db) as c:
        a.deliveries, t0 = c.execute("SELECT COUNT(*), MIN(received_ms) FROM deliveries").fetchone()
    reset_dead(db)  # a store kept from an earlier run: as filled
    p = start(a.bin, cfg, port)
    try:
        _, _, data = timed(port, "GET", "/api/v1/deliveries?limit=1")
        newest = json.loads(data)["items"][0]
        _, _, data = timed(port, "GET", "/api/v1/jobs?state=dead&limit=1")
        dead = json.loads(data)["items"][0]["id"]
        _, _, data = timed(port, "GET", "/api/v1/session")
        csrf = json.loads(data)["csrf"]
        _, _, data = timed(port, "GET", "/api/v1/deliveries?limit=500")
        page2 = json.loads(data)["next_cursor"]
        mid = a.deliveries // 2
        old = "2000-01-01T00:00:00Z"
        hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        route_body = json.dumps({"event_name": "run.completed", "payload": {"id": 5, "cases": 3},
                                 "project_code": "DEMO"})
        h = {"X-CSRF-Token": csrf, "Content-Type": "application/json"}
        cases = [
            ("GET", "/api/v1/summary", None),
            ("GET", "/api/v1/runs", None),
            ("GET", "/api/v1/runs?limit=500", None),
            ("GET", "/api/v1/runs?project=WEB", None),
            ("GET", "/api/v1/runs?q=%d" % (mid // 5), None),
            ("GET", "/api/v1/runs?q=build%%20%d%%20" % (a.deliveries // 5 - 3), None),
            ("GET", "/api/v1/runs?q=no-such-title", None),
            ("GET", "/api/v1/runs/%s/%d" % (newest["project"], newest["run_id"]), None),
            ("GET", "/api/v1/deliveries", None),
            ("GET", "/api/v1/deliveries?limit=500", None),
            ("GET", "/api/v1/deliveries?limit=500&cursor=" + page2, None),
            ("GET", "/api/v1/deliveries?type=run.completed", None),
            ("GET", "/api/v1/deliveries?type=no.such.type", None),
            ("GET", "/api/v1/deliveries?project=API", None),
            ("GET", "/api/v1/deliveries?project=DEMO&run_id=%d" % (mid // 5 + 1), None),
            ("GET", "/api/v1/deliveries?since=%s" % hour_ago, None),
            ("GET", "/api/v1/deliveries?since=%s&until=%d" % (old, t0 + mid * 100), None),
            ("GET", "/api/v1/deliveries/%s?project=%s&run_id=%d" % (newest["id"], newest["project"],
                                                                   newest["run_id"]), None),
            ("GET", "/api/v1/deliveries/%s" % newest["id"], None),
            ("GET", "/api/v1/jobs", None),
            ("GET", "/api/v1/jobs?state=dead", None),
            ("GET", "/api/v1/jobs?state=dead&limit=500", None),
            ("GET", "/api/v1/jobs?state=done&kind=http", None),
            ("GET", "/api/v1/jobs?state=pending", None),
            ("GET", "/api/v1/jobs?rule=chat", None),
            ("GET", "/api/v1/jobs?project=MOBILE", None),
            ("GET", "/api/v1/jobs?target=none", None),
            ("GET", "/api/v1/jobs/%d" % dead, None),
            ("GET", "/api/v1/rules", None),
            ("POST", "/api/v1/route", route_body),
            ("POST", "/api/v1/replay", json.dumps({"state": "dead", "rule": "no-such-rule"})),
            ("POST", "/api/v1/jobs/%d/replay" % dead, None),
        ]
        print("| request | median ms | worst ms | status | items |")
        print("|---|---:|---:|---:|---:|")
        for method, path, body in cases:
            times, status, data = [], 0, b""
            for _ in range(a.calls if "replay" not in path else 3):
                ms, status, data = timed(port, method, path, body, h if method == "POST" else None)
                times.append(ms)
            try:
                doc = json.loads(data)
                items = len(doc["items"]) if isinstance(doc, dict) and "items" in doc else ""
            except ValueError:
                items = ""
            print("| `%s %s` | %.1f | %.1f | %d | %s |" % (method, path[:90], statistics.median(times),
                                                          max(times), status, items))
        stop(p)
        p = None
        rows = bulk_replay(a.bin, cfg, port, db, a.replay_tries)
        times = [r[0] for r in rows]
        print("| `POST /api/v1/replay {state: dead, kind: http}` (a fresh daemon each) | %.1f | %.1f"
              " | %s | replayed %s |" % (statistics.median(times), max(times),
                                         "/".join(str(r[1]) for r in rows),
                                         "/".join(str(r[2]) for r in rows)))
    finally:
        if p:
            stop(p)
        if not a.keep and not a.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
