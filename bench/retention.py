#!/usr/bin/env python3
"""bench/retention.py: a store of N old deliveries shrinks to the retained
set while deliveries keep being acknowledged at a steady rate.

1. The binary creates the store (one real delivery, its rows the template).
2. N old deliveries (40 days, each with one done redis job, ten per run,
   each run with a registry row) are written straight into it with sqlite3.
3. The daemon runs with retention off; deliveries are posted at --rate for
   --seconds: the baseline.
4. SIGHUP turns retention on (30/90 days); the same load runs until the
   backlog is deleted and the free pages are given back: deletion time and
   the load's figures while it ran.
5. The daemon stops (checkpoint); sizes before and after come from
   `runbridge status`.

Prints a Markdown section for docs/benchmarks.md on stdout.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time

DAY_MS = 86400 * 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(fn, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if fn():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("timed out waiting for " + what)


class Daemon:
    def __init__(self, args, tmp, redis_port):
        self.bin, self.tmp = args.bin, tmp
        self.port = free_port()
        self.data = os.path.join(tmp, "data")
        self.config = os.path.join(tmp, "runbridge.yaml")
        with open(os.path.join(tmp, "rules.yaml"), "w") as f:
            f.write('rules:\n  - name: all\n    actions:\n'
                    '      - redis: { stream: "bench:{{project}}", maxlen: 100000 }\n')
        self.base = ("listen: 127.0.0.1:%d\ndata_dir: %s\nrules: %s\n"
                     "redis:\n  url: redis://127.0.0.1:%d/0\nlog:\n  level: warn\n"
                     % (self.port, self.data, os.path.join(tmp, "rules.yaml"), redis_port))
        self.retention(0, 0)
        self.proc = None

    def retention(self, done, dead):
        with open(self.config, "w") as f:
            f.write(self.base + "store:\n  retention:\n    done_days: %d\n    dead_days: %d\n"
                    % (done, dead))

    def start(self):
        self.log = open(os.path.join(self.tmp, "runbridge.log"), "ab")
        self.proc = subprocess.Popen([self.bin, "serve", "-c", self.config],
                                     stdout=self.log, stderr=self.log)
        with open(os.path.join(self.tmp, "pids"), "a") as f:
            f.write("%d\n" % self.proc.pid)
        wait(lambda: self.get("/healthz")[0] == 200, 120, "runbridge")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        self.log.close()

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def status(self):
        out = subprocess.run([self.bin, "status", "-c", self.config], check=True,
                             capture_output=True, text=True).stdout
        return {k.strip(): int(v) for k, v in (l.split(":", 1) for l in out.splitlines()
                                                if ":" in l and not l.startswith("source "))}


def fill(path, n):
    db = sqlite3.connect(path, timeout=60)
    src, typ, raw, event = db.execute(
        "SELECT source, type, raw, event FROM deliveries ORDER BY seq LIMIT 1").fetchone()
    rule, kind, params = db.execute("SELECT rule, kind, params FROM jobs LIMIT 1").fetchone()
    # the template is as old as the rest: receipt order is time order
    old = int(time.time() * 1000) - 40 * DAY_MS
    db.execute("UPDATE deliveries SET received_ms = ?", (old - 1,))
    seq0 = db.execute("SELECT MAX(seq) FROM deliveries").fetchone()[0]
    step = 50000
    for base in range(0, n, step):
        k = range(base, min(n, base + step))
        db.executemany(
            "INSERT INTO deliveries(seq, id, source, type, project, run_id, received_ms, raw,"
            " event) VALUES(?,?,?,?,?,?,?,?,?)",
            ((seq0 + 1 + i, "%064x" % (0xb0000000 + i), src, typ, "OLD", 1000 + i // 10,
              old + i // 1000, raw, event) for i in k))
        db.executemany(
            "INSERT INTO jobs(delivery_seq, rule, idx, kind, params, lane, state, attempts,"
            " next_ms, created_ms, updated_ms) VALUES(?,?,0,?,?,?,2,0,0,?,?)",
            ((seq0 + 1 + i, rule, kind, params, "OLD#%d/all/0" % (1000 + i // 10),
              old + i // 1000, old + i // 1000) for i in k))
        db.executemany("INSERT OR REPLACE INTO runs(project, run_id, run, updated_ms)"
                       " VALUES('OLD', ?, '{}', ?)",
                       ((1000 + i // 10, old) for i in k if i % 10 == 0))
        db.commit()
    db.close()


SEQ = [0]  # across loads: every delivery posted is a new one


class Load:
    """Posts distinct deliveries at a steady rate from a few threads."""

    def __init__(self, port, rate, body, threads=8):
        self.port, self.rate, self.body, self.nthreads = port, rate, body, threads
        self.lat, self.codes, self.stop = [], {}, threading.Event()
        self.lock = threading.Lock()

    def run(self, k):
        period = self.nthreads / self.rate
        conn, nxt = None, time.monotonic()
        while not self.stop.is_set():
            with self.lock:
                SEQ[0] += 1
                n = SEQ[0]
            doc = json.loads(self.body)
            doc["payload"]["id"] = 10_000_000 + n
            doc["project_code"] = "LIVE"
            raw = json.dumps(doc)
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("POST", "/webhooks/qase", body=raw,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                code = r.status
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                code = -1
                conn = None
            with self.lock:
                self.lat.append(time.monotonic() - t0)
                self.codes[code] = self.codes.get(code, 0) + 1
            nxt += period
            time.sleep(max(0.0, nxt - time.monotonic()))

    def __enter__(self):
        self.t0 = time.monotonic()
        self.threads = [threading.Thread(target=self.run, args=(k,)) for k in range(self.nthreads)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()
        self.elapsed = time.monotonic() - self.t0

    def summary(self):
        lat = sorted(self.lat)
        pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0
        return {"n": len(lat), "rate": len(lat) / self.elapsed, "p50": pct(0.50),
                "p99": pct(0.99), "max": lat[-1] * 1000 if lat else 0, "codes": self.codes}


def mib(n):
    return "%.1f MiB" % (n / 1048576)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--fixture", required=True)
    args = ap.parse_args()
    with open(args.fixture) as f:
        body = f.read()

    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", args.tmp],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(args.tmp, "pids"), "a") as f:
        f.write("%d\n" % redis.pid)
    try:
        d = Daemon(args, args.tmp, rport)
        d.start()
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        c.request("POST", "/webhooks/qase", body=body, headers={"Content-Type": "application/json"})
        assert c.getresponse().status == 202
        time.sleep(1)
        d.stop()
        t = time.monotonic()
        fill(os.path.join(d.data, "runbridge.db"), args.n)
        fill_s = time.monotonic() - t

        t = time.monotonic()
        d.start()
        start_s = time.monotonic() - t
        before = d.status()
        with Load(d.port, args.rate, body) as base:
            time.sleep(args.seconds)
        d.retention(30, 90)
        with Load(d.port, args.rate, body) as during:
            t = time.monotonic()
            d.proc.send_signal(signal.SIGHUP)
            wait(lambda: d.status()["store_deleted_deliveries"] >= args.n + 1, 3600, "deletion")
            delete_s = time.monotonic() - t
            mid = d.status()
            wait(lambda: d.status()["store_free_pages"] <= 64, 3600, "vacuum")
            vacuum_s = time.monotonic() - t
        with Load(d.port, args.rate, body) as after_load:
            time.sleep(args.seconds)
        live = d.status()
        d.stop()
        after = d.status()
    finally:
        redis.terminate()
        redis.wait(10)

    b, m, a = base.summary(), during.summary(), after_load.summary()
    print("## Retention: %s old deliveries\n" % format(args.n, ","))
    print("Produced by `bench/retention.sh` on %s UTC (%s, %d cores; shared machine, load"
          " average at the end %s). The store: %s deliveries 40 days old, each with one done"
          " redis job, ten per run, every run in the registry, written with sqlite3 into a store"
          " the binary created (%.0f s), then `runbridge serve` (Release, auto_vacuum=INCREMENTAL"
          " store) with retention off; start-up on it took %.2f s. Load: distinct run.completed"
          " deliveries at a steady %d/s from 8 Python threads with keep-alive, one redis job each;"
          " latency is POST to 202. Retention is turned on by SIGHUP (done_days 30, dead_days 90)."
          "\n" % (time.strftime("%Y-%m-%d %H:%M", time.gmtime()), os.uname().sysname,
                  os.cpu_count(), " ".join("%.2f" % x for x in os.getloadavg()),
                  format(args.n, ","), fill_s, start_s, args.rate))
    print("| phase | duration | deliveries acknowledged | rate achieved | p50 | p99 | max | non-202 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, s, dur in (("retention off (baseline)", b, base.elapsed),
                         ("retention deleting the backlog, then vacuuming", m, during.elapsed),
                         ("retention on, backlog gone", a, after_load.elapsed)):
        bad = sum(v for k, v in s["codes"].items() if k != 202)
        print("| %s | %.1f s | %s | %.0f/s | %.2f ms | %.2f ms | %.1f ms | %d |"
              % (name, dur, format(s["n"], ","), s["rate"], s["p50"], s["p99"], s["max"], bad))
    print()
    print("| | value |\n|---|---:|")
    print("| deletion of %s deliveries (SIGHUP to the last one deleted) | %.1f s (%.0f/s) |"
          % (format(args.n + 1, ","), delete_s, (args.n + 1) / delete_s))
    print("| free pages given back (SIGHUP to free pages ≤ 64) | %.1f s |" % vacuum_s)
    print("| store before: file + WAL | %s + %s (%s pages, %s free) |"
          % (mib(before["store_bytes"]), mib(before["store_wal_bytes"]),
             format(before["store_pages"], ","), format(before["store_free_pages"], ",")))
    print("| when the last old delivery was deleted | %s + %s (%s free pages) |"
          % (mib(mid["store_bytes"]), mib(mid["store_wal_bytes"]),
             format(mid["store_free_pages"], ",")))
    print("| after, running | %s + %s (%s free pages) |"
          % (mib(live["store_bytes"]), mib(live["store_wal_bytes"]),
             format(live["store_free_pages"], ",")))
    print("| after a clean stop (checkpointed) | %s + %s; %s deliveries stored |"
          % (mib(after["store_bytes"]), mib(after["store_wal_bytes"]),
             format(after["deliveries"], ",")))


if __name__ == "__main__":
    main()
