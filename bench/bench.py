#!/usr/bin/env python3
"""bench.py: runs the benchmark suite and writes docs/benchmarks.md.

Started by bench/run.sh (which installs and builds first); standard library
only.  Every server binds 127.0.0.1 on a free port; every process started is
recorded in TMP/pids (for run.sh's trap) and stopped before this exits.

Scenarios, in order:
  1. rounds of the same wrk load (-t2 -c32 --latency) against the bare
     civetweb + json-c responder, runbridge (catch-all redis rule; identical
     bodies, then distinct bodies) and nginx `return 200` (first round only)
  2. drain: runbridge paced at 5,000 distinct deliveries/s; backlog sampled,
     end-to-end delay from received_at to the Redis stream entry's id
  3. startup to the first accepted delivery, empty store
  4. restart with 100,000 pending actions (filled while Redis is unreachable)
  5. exec hooks: adnanh/webhook and runbridge, both running /bin/true
  6. a perf profile of runbridge under the distinct load (when perf works)
  7. the cost curve: wrk at 1, 8, 32, 128 and 512 connections against the
     bare responder and a fresh runbridge each (distinct bodies), with CPU
     per request and store bytes per delivery; then bench/openloop (built by
     run.sh) at 1k, 5k and 10k deliveries/s, latency from the intended send
     time; a table in the report and a PNG (gnuplot, bench/cost-curve.gp)
"""
import argparse
import calendar
import datetime
import json
import os
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                                        "qase", "run.completed.json"))
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CURVE_CONNS = (1, 8, 32, 128, 512)   # the cost curve's closed-loop points
OPEN_RATES = (1000, 5000, 10000)     # its open-loop points, deliveries/s
OPEN_CONNS = 64                      # openloop's keep-alive connections
WARM_S = 1                           # a fresh runbridge's warm-up load, s


def log(*a):
    print("[bench]", *a, flush=True)


# ---- processes -------------------------------------------------------------

class Procs:
    """Started processes, their pids in TMP/pids for run.sh's trap."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.live = {}   # name -> Popen
        self.cmds = {}   # name -> command line (for the report)

    def _write_pids(self):
        with open(os.path.join(self.tmp, "pids"), "w") as f:
            for p in self.live.values():
                if p.poll() is None:
                    f.write("%d\n" % p.pid)

    def start(self, name, argv, cwd=None, env=None, record=True):
        logf = open(os.path.join(self.tmp, name + ".log"), "ab")
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=logf, stderr=subprocess.STDOUT,
                             start_new_session=True)
        logf.close()
        self.live[name] = p
        if record:
            self.cmds.setdefault(name, " ".join(shlex.quote(a) for a in argv))
        self._write_pids()
        return p

    def stop(self, name, timeout=15.0):
        """SIGTERM, then SIGKILL after timeout; returns seconds to exit."""
        p = self.live.pop(name, None)
        if p is None:
            return 0.0
        t0 = time.monotonic()
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                log("%s did not exit in %.0fs: SIGKILL" % (name, timeout))
                p.kill()
                p.wait()
        self._write_pids()
        return time.monotonic() - t0

    def stop_all(self):
        for name in list(self.live):
            self.stop(name, timeout=10)


_used_ports = set()


def free_port():
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _used_ports:
            _used_ports.add(port)
            return port


def http_request(port, method, path, body=None, headers=None, timeout=2.0):
    """One request on a fresh connection: (status, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        h = {"Host": "127.0.0.1:%d" % port, "Connection": "close"}
        h.update(headers or {})
        if body is not None:
            h["Content-Length"] = str(len(body))
        req = "%s %s HTTP/1.1\r\n" % (method, path)
        req += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        s.sendall(req.encode() + (body or b""))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if m and len(rest) >= int(m.group(1)):
                    break
        status = int(data.split(b" ", 2)[1]) if data else 0
        return status, data.partition(b"\r\n\r\n")[2]
    finally:
        s.close()


def wait_http(port, path="/", timeout=10.0, method="GET"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st, _ = http_request(port, method, path, timeout=1.0)
            if st:
                return st
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("nothing answers on 127.0.0.1:%d%s" % (port, path))


# ---- memory ---------------------------------------------------------------

def tree_pids(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def rss_kb(pid, tree=False):
    """Resident set in KiB, the figure `ps -o rss` shows (from statm)."""
    total = 0
    for p in (tree_pids(pid) if tree else [pid]):
        try:
            with open("/proc/%d/statm" % p) as f:
                total += int(f.read().split()[1]) * PAGE_KB
        except OSError:
            pass
    return total


def rss_split(pid):
    """(RssAnon, RssFile) in KiB: private memory vs mapped files (library text)."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
                    k, v = line.split(":")
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out.get("RssAnon", 0), out.get("RssFile", 0) + out.get("RssShmem", 0)


def ps_rss_kb(pid, tree=False):
    pids = tree_pids(pid) if tree else [pid]
    out = subprocess.run(["ps", "-o", "rss=", "-p", ",".join(map(str, pids))],
                         capture_output=True, text=True).stdout
    return sum(int(x) for x in out.split())


class RssSampler:
    def __init__(self, pid, tree=False, every=0.1):
        self.pid, self.tree, self.every = pid, tree, every
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid, self.tree))
            self._stop.wait(self.every)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_kb(self.pid, self.tree))


def thread_cpu(pid):
    """CPU ticks per thread name of one process."""
    out = {}
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                st = f.read()
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        fl = st[st.rindex(")") + 2:].split()
        out[name] = out.get(name, 0) + int(fl[11]) + int(fl[12])
    return out


def cpu_ticks(pid):
    """utime + stime of every thread of pid, live or exited (not its
    children's): the process's own CPU, in clock ticks."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    fl = st[st.rindex(")") + 2:].split()
    return int(fl[11]) + int(fl[12])


def store_bytes(var):
    """Size of runbridge's store: the database file plus its WAL."""
    total = 0
    for name in ("runbridge.db", "runbridge.db-wal"):
        try:
            total += os.path.getsize(os.path.join(var, name))
        except OSError:
            pass
    return total


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])


def proc_ticks(pid, tree=False):
    total = 0
    for p in (tree_pids(pid) if tree else [pid]):
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read()
            fl = st[st.rindex(")") + 2:].split()
            # own time plus reaped children's (hooks, /bin/true)
            total += int(fl[11]) + int(fl[12]) + int(fl[13]) + int(fl[14])
        except OSError:
            pass
    return total


class CpuWindow:
    """Over a window: per-thread CPU of pid, the machine's busy share, and the
    CPU of everything else on the machine (not the server, not wrk, not us):
    the noise from other work on a shared box, in cores."""

    def __init__(self, pid, tree=False, ours=()):
        self.pid, self.tree = pid, tree
        self.ours = [p for p in ours if p != pid]  # our other processes (redis...)

    def _ours(self):
        return sum(proc_ticks(p, True) for p in self.ours)

    def __enter__(self):
        self.t0 = time.monotonic()
        self.x0 = self._ours()
        self.th0 = thread_cpu(self.pid) if self.pid else {}
        self.p0 = proc_ticks(self.pid, self.tree) if self.pid else 0
        self.m0 = machine_ticks()
        self.o0 = os.times()
        return self

    def __exit__(self, *exc):
        dt = time.monotonic() - self.t0
        hz = os.sysconf("SC_CLK_TCK")
        th1 = thread_cpu(self.pid) if self.pid else {}
        p1 = proc_ticks(self.pid, self.tree) if self.pid else 0
        m1 = machine_ticks()
        o1 = os.times()
        x1 = self._ours()
        self.threads = {k: (v - self.th0.get(k, 0)) / hz / dt for k, v in th1.items()
                        if v - self.th0.get(k, 0) > 0}
        self.busy = (m1[0] - self.m0[0]) / float(max(1, m1[1] - self.m0[1]))
        ncpu = len(os.sched_getaffinity(0))
        ours = (p1 - self.p0 + x1 - self.x0) / hz + sum(o1[i] - self.o0[i] for i in range(4))
        self.server = (p1 - self.p0) / hz / dt
        self.others = max(0.0, self.busy * ncpu - ours / dt)


def mb(kb):
    return kb / 1024.0


# ---- redis ----------------------------------------------------------------

class Redis:
    """Just enough RESP for XLEN, XRANGE, DEL, PING."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)
        return self._read()

    def _read(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError("redis: bad reply %r" % line)

    def close(self):
        self.s.close()


def wait_redis(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = Redis(port)
            r.cmd("PING")
            return r
        except (OSError, RuntimeError):
            time.sleep(0.05)
    raise RuntimeError("redis on %d does not answer" % port)


RECEIVED_AT = re.compile(rb'"received_at":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z"')


def stream_delays(r, stream):
    """Per entry: stream id ms minus the event's received_at ms."""
    delays, start = [], "-"
    while True:
        batch = r.cmd("XRANGE", stream, start, "+", "COUNT", 10000)
        if not batch:
            break
        for eid, fields in batch:
            ms = int(eid.split(b"-")[0])
            for i in range(0, len(fields), 2):
                if fields[i] == b"event":
                    m = RECEIVED_AT.search(fields[i + 1])
                    if m:
                        secs = calendar.timegm(time.strptime(m.group(1).decode(), "%Y-%m-%dT%H:%M:%S"))
                        delays.append(ms - (secs * 1000 + int(m.group(2))))
                    break
        start = "(" + batch[-1][0].decode()
    return delays


def backlog_summary(samples):
    backlog = [b for (_, b, _) in samples]
    half = len(backlog) // 2
    return {"b_max": max(backlog) if backlog else float("nan"),
            "b_first": statistics.mean(backlog[:half]) if half else float("nan"),
            "b_last": statistics.mean(backlog[half:]) if half else float("nan")}


def backlog_flat(d, rate_key="rps"):
    """The drain goal's test: the backlog never passes 500 actions, its mean
    over the second half of the load is within 100 of the first half's, and
    the load ran at 95% of the rate asked for at least."""
    return (d["b_max"] <= 500 and d["b_last"] <= d["b_first"] + 100 and
            d[rate_key] >= 0.95 * d["rate"])


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


# ---- runbridge ------------------------------------------------------------

def metrics(port):
    try:
        st, body = http_request(port, "GET", "/metrics", timeout=10)
    except OSError:
        return {}
    out = {}
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def m_sum(m, prefix, **labels):
    tot = 0.0
    for k, v in m.items():
        if not k.startswith(prefix + "{") and k != prefix:
            continue
        if all('%s="%s"' % kv in k for kv in labels.items()):
            tot += v
    return tot


def m_accepted(m):
    return m_sum(m, "runbridge_deliveries_total", status="202")


def m_pending(m):
    return m_sum(m, "runbridge_queue_jobs", state="pending") + \
        m_sum(m, "runbridge_queue_jobs", state="retrying")


def m_commits(m):
    return (m_sum(m, "runbridge_store_commit_seconds_count"),
            m_sum(m, "runbridge_store_committed_total"),
            m_sum(m, "runbridge_store_commit_seconds_sum"))


def write_rb(dirpath, port, redis_port, rule):
    os.makedirs(dirpath, exist_ok=True)
    rules = os.path.join(dirpath, "rules.yaml")
    cfg = os.path.join(dirpath, "runbridge.yaml")
    with open(rules, "w") as f:
        f.write("rules:\n  - name: catch-all\n    actions:\n      - %s\n" % rule)
    with open(cfg, "w") as f:
        f.write("listen: 127.0.0.1:%d\n"
                "data_dir: %s\n"
                "rules: %s\n"
                "sources:\n  qase:\n    path: /webhooks/qase\n"
                "redis:\n  url: redis://127.0.0.1:%d/0\n"
                "shutdown_timeout_s: 5\n"
                "log:\n  level: warn\n" % (port, os.path.join(dirpath, "var"), rules, redis_port))
    return cfg


# ---- wrk ------------------------------------------------------------------

def to_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s.strip())
    if not m:
        return float("nan")
    v = float(m.group(1))
    return v * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


class Bench:
    def __init__(self, a):
        self.a = a
        self.tmp = a.tmp
        self.procs = Procs(a.tmp)
        self.quick = a.quick
        self.dur = 3 if a.quick else 10
        self.rounds = 1 if a.quick else 2
        self.after_s = 2 if a.quick else 5   # watched after the exec loads
        self.settle = 0.3 if a.quick else 1.0
        self.curve_dur = 2 if a.quick else 5   # each closed-loop point of the curve
        self.open_dur = 3 if a.quick else 10   # each open-loop point
        self.lua = os.path.join(a.root, "bench", "post.lua")
        self.id_base = 1000000
        self.wrk_cmds = []
        self.results = {}
        self.notes = []

    def next_ids(self):
        self.id_base += 100000000
        return self.id_base

    def wrk(self, port, path, mode, duration=None, conns=32, threads=2,
            extra_env=None, label=None, background=False):
        duration = duration or self.dur
        env = {"BENCH_BODY": FIXTURE, "BENCH_PATH": path, "BENCH_MODE": mode,
               "BENCH_THREADS": str(threads)}
        if mode == "distinct":
            env["BENCH_ID_BASE"] = str(self.next_ids())
        env.update(extra_env or {})
        argv = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration,
                "--latency", "-s", self.lua, "http://127.0.0.1:%d%s" % (port, path)]
        shown = " ".join("%s=%s" % (k, v) for k, v in sorted(env.items())
                         if k != "BENCH_ID_BASE") + " " + " ".join(argv)
        shown = shown.replace(self.a.root + "/", "")
        if label:
            self.wrk_cmds.append((label, shown))
        full_env = dict(os.environ, **env)
        if background:
            return subprocess.Popen(argv, env=full_env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
        out = subprocess.run(argv, env=full_env, capture_output=True, text=True,
                             timeout=duration + 60).stdout
        return self.parse_wrk(out)

    @staticmethod
    def parse_wrk(out):
        r = {"raw": out}
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        r["rps"] = float(m.group(1)) if m else 0.0
        m = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
        r["max"] = to_ms(m.group(1)) if m else float("nan")
        m = re.search(r"(\d+) requests in", out)
        r["requests"] = int(m.group(1)) if m else 0
        for p in ("50", "75", "90", "99"):
            m = re.search(r"^\s+%s%%\s+(\S+)" % p, out, re.M)
            r["p" + p] = to_ms(m.group(1)) if m else float("nan")
        m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        r["non2xx"] = int(m.group(1)) if m else 0
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        r["sockerr"] = sum(int(x) for x in m.groups()) if m else 0
        return r

    # -- peers ---------------------------------------------------------------

    def start_redis(self, name="redis"):
        port = free_port()
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        self.procs.start(name, ["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                                "--save", "", "--appendonly", "no", "--dir", d,
                                "--protected-mode", "yes"])
        return port, wait_redis(port)

    def start_rb(self, name, rule, redis_port, port=None, fresh=True):
        port = port or free_port()
        d = os.path.join(self.tmp, name)
        if fresh and os.path.exists(d):
            subprocess.run(["rm", "-rf", d])
        cfg = write_rb(d, port, redis_port, rule)
        p = self.procs.start(name, [self.a.runbridge, "serve", "-c", cfg], cwd=d)
        wait_http(port, "/healthz")
        return port, p, cfg

    def our_pids(self):
        return [p.pid for p in self.procs.live.values() if p.poll() is None]

    def check_binds(self):
        """Every listening socket of our processes must be on 127.0.0.1."""
        pids = set()
        for p in self.procs.live.values():
            pids.update(tree_pids(p.pid))
        out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
        bad, ok = [], 0
        for line in out.splitlines():
            owners = {int(x) for x in re.findall(r"pid=(\d+)", line)}
            if owners & pids:
                local = line.split()[3]
                if local.startswith("127.0.0.1:"):
                    ok += 1
                else:
                    bad.append(line.strip())
        self.binds_ok = ok
        for b in bad:
            self.notes.append("listening outside 127.0.0.1: " + b)

    # -- 1. throughput rounds ------------------------------------------------

    def run_load(self, key, rnd, pid, port, path, mode, tree=False, rb=False):
        m0 = metrics(port) if rb else {}
        with RssSampler(pid, tree) as s, CpuWindow(pid, tree, self.our_pids()) as cpu:
            r = self.wrk(port, path, mode, label=None if rnd else key)
        m1 = metrics(port) if rb else {}
        r["rss_peak"] = s.peak
        r["busy"] = cpu.busy
        r["threads"] = cpu.threads if rb else {}
        r["server_cpu"] = cpu.server
        r["others"] = cpu.others
        if rb:
            c0, c1 = m_commits(m0), m_commits(m1)
            r["commits"] = c1[0] - c0[0]
            r["items"] = c1[1] - c0[1]
            r["commit_s"] = c1[2] - c0[2]
            r["accepted"] = m_accepted(m1) - m_accepted(m0)
            r["pending_end"] = m_pending(m1)
        self.results.setdefault("loads", []).append(dict(r, key=key, round=rnd))
        log("%-22s round %d: %8.0f req/s  p50 %.3f ms  p99 %.3f ms  rss peak %.1f MB%s" % (
            key, rnd + 1, r["rps"], r["p50"], r["p99"], mb(s.peak),
            ("  non-2xx %d" % r["non2xx"]) if r["non2xx"] else ""))
        return r

    def wait_drained(self, port, limit):
        """Seconds until no job is pending (or None past limit)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < limit:
            m = metrics(port)
            if m and m_pending(m) == 0:
                return time.monotonic() - t0
            time.sleep(0.25)
        return None

    def throughput(self):
        redis_port, r = self.redis_port, self.redis
        resp_port = free_port()
        resp = self.procs.start("responder", [self.a.responder, str(resp_port), "64"])
        wait_http(resp_port, "/healthz")
        ng_port = free_port()
        ngdir = os.path.join(self.tmp, "nginx")
        os.makedirs(ngdir, exist_ok=True)
        with open(os.path.join(ngdir, "nginx.conf"), "w") as f:
            f.write("""daemon off;
master_process on;
worker_processes 2;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(d)s/body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:%(p)d;
        location / { return 200 "ok\\n"; }
    }
}
""" % {"d": ngdir, "p": ng_port})
        ng = self.procs.start("nginx", ["nginx", "-e", os.path.join(ngdir, "error.log"),
                                        "-p", ngdir, "-c", os.path.join(ngdir, "nginx.conf")])
        wait_http(ng_port, "/")
        rb_port, rb, _ = self.start_rb("runbridge", 'redis: { stream: "bench:{{project}}", maxlen: 100000 }',
                                       redis_port)
        time.sleep(1.0)
        self.check_binds()
        self.idle = {"responder": ps_rss_kb(resp.pid), "nginx": ps_rss_kb(ng.pid, tree=True),
                     "runbridge": ps_rss_kb(rb.pid)}
        self.rb_idle_split = rss_split(rb.pid)
        log("idle RSS: " + ", ".join("%s %.1f MB" % (k, mb(v)) for k, v in self.idle.items()))
        drains = []
        for rnd in range(self.rounds):
            self.run_load("responder", rnd, resp.pid, resp_port, "/webhooks/qase", "dup")
            time.sleep(self.settle)
            self.run_load("runbridge-dup", rnd, rb.pid, rb_port, "/webhooks/qase", "dup", rb=True)
            time.sleep(self.settle)
            res = self.run_load("runbridge-distinct", rnd, rb.pid, rb_port, "/webhooks/qase",
                                "distinct", rb=True)
            left = res.get("pending_end", 0)
            t = self.wait_drained(rb_port, 30 if self.quick else 90)
            drains.append((left, t))
            log("  backlog at end of load %d actions, drained in %s" % (
                left, "%.1f s" % t if t is not None else "more than the wait"))
            if rnd == 0:
                time.sleep(self.settle)
                self.run_load("nginx", rnd, ng.pid, ng_port, "/", "dup", tree=True)
            time.sleep(self.settle)
        self.results["load_drains"] = drains
        self.rb_after_idle = ps_rss_kb(rb.pid)
        self.rb_port, self.rb_pid = rb_port, rb.pid
        self.procs.stop("responder")
        self.procs.stop("nginx")
        r.cmd("DEL", "bench:ID")

    def warm_up(self, port, conns, threads, stream):
        """A fresh runbridge's first second of load, not measured: wrk for
        WARM_S at the point's connection count, then its Redis backlog
        appended and the stream emptied.  (Its first burst of connections
        can be much slower than what follows; the curve is of the steady
        state, and the throughput rounds above start with a load too.)"""
        w = self.wrk(port, "/webhooks/qase", "distinct", duration=WARM_S, conns=conns, threads=threads)
        self.wait_drained(port, 10)
        self.redis.cmd("DEL", stream)
        time.sleep(self.settle)
        self.results.setdefault("warm_up", []).append((conns, w["max"], w["p99"]))
        return w

    def sample_backlog(self, w, port, stream, pid, base=0):
        """While process w runs, every 0.5 s: (seconds, runbridge's accepted
        count less base, minus the stream's XLEN, pending jobs); and the RSS
        peak."""
        samples = []
        t0 = time.monotonic()
        with RssSampler(pid) as s:
            while w.poll() is None:
                xl = self.redis.cmd("XLEN", stream)  # first: the backlog errs high, never low
                m = metrics(port)
                if m:
                    samples.append((time.monotonic() - t0, m_accepted(m) - base - xl, m_pending(m)))
                time.sleep(0.5)
        return samples, s.peak

    # -- 2. drain --------------------------------------------------------------

    def drain(self):
        rate = 5000
        redis_port, r = self.redis_port, self.redis
        r.cmd("DEL", "drain:ID")
        port, p, _ = self.start_rb("runbridge-drain",
                                   'redis: { stream: "drain:{{project}}", maxlen: 10000000 }',
                                   redis_port)
        time.sleep(0.5)
        dur = self.dur
        # 48 connections: enough that the schedule, not the closed loop, sets
        # the rate while answers average under 9 ms, and fewer than runbridge's
        # 64 HTTP threads: civetweb holds a thread per keep-alive connection,
        # so with 64 open /metrics (the backlog samples) would wait for one.
        w = self.wrk(port, "/webhooks/qase", "distinct", duration=dur, conns=48,
                     extra_env={"BENCH_RATE": str(rate)}, label="drain (paced)",
                     background=True)
        samples, rss_peak = self.sample_backlog(w, port, "drain:ID", p.pid)
        res = self.parse_wrk(w.stdout.read())
        accepted = res["requests"] - res["non2xx"]
        t_end = time.monotonic()
        while r.cmd("XLEN", "drain:ID") < accepted and time.monotonic() - t_end < 30:
            time.sleep(0.05)
        tail = time.monotonic() - t_end
        delays = stream_delays(r, "drain:ID")
        res.update({
            "rate": rate, "accepted": accepted, "appended": len(delays),
            "samples": samples, "tail_s": tail, "rss_peak": rss_peak,
            "d_p50": pct(delays, 50), "d_p90": pct(delays, 90),
            "d_p99": pct(delays, 99), "d_max": max(delays) if delays else float("nan"),
        })
        res.update(backlog_summary(samples))
        self.results["drain"] = res
        log("drain: %.0f req/s, delay p50 %s p99 %s max %s ms, backlog max %s" % (
            res["rps"], res["d_p50"], res["d_p99"], res["d_max"], res["b_max"]))
        self.procs.stop("runbridge-drain")
        r.cmd("DEL", "drain:ID")

    # -- 3. startup --------------------------------------------------------------

    def post_once(self, port, ident):
        with open(FIXTURE, "rb") as f:
            raw = f.read()
        body = re.sub(rb'("payload"\s*:\s*\{\s*"id"\s*:\s*)\d+', rb"\g<1>%d" % ident, raw, count=1)
        return http_request(port, "POST", "/webhooks/qase", body,
                            {"Content-Type": "application/json"}, timeout=5)[0]

    def first_202(self, port, t0, ident, limit=10.0):
        while time.monotonic() - t0 < limit:
            try:
                if self.post_once(port, ident) == 202:
                    return (time.monotonic() - t0) * 1000.0
            except OSError:
                time.sleep(0.0005)
        return None

    def startup(self):
        trials = 3 if self.quick else 5
        times, idles = [], []
        for i in range(trials):
            name = "runbridge-start"
            d = os.path.join(self.tmp, name)
            subprocess.run(["rm", "-rf", d])
            port = free_port()
            cfg = write_rb(d, port, self.redis_port,
                           'redis: { stream: "startup:{{project}}", maxlen: 1000 }')
            t0 = time.monotonic()
            p = self.procs.start(name, [self.a.runbridge, "serve", "-c", cfg], cwd=d)
            ms = self.first_202(port, t0, 7000 + i)
            times.append(ms)
            time.sleep(self.settle)
            idles.append(ps_rss_kb(p.pid))
            self.procs.stop(name)
        self.results["startup"] = {"times": times, "idle_rss": idles}
        log("startup to first 202: %s ms; idle RSS %s KiB" % (times, idles))

    # -- 4. restart with pending actions -------------------------------------------

    def restart(self):
        n = 10000 if self.quick else 100000
        dead_port = free_port()  # nothing listens here: Redis is "down"
        name = "runbridge-restart"
        port = free_port()
        d = os.path.join(self.tmp, name)
        rule = 'redis: { stream: "restart:{{project}}", maxlen: 10000000 }'
        cfg = write_rb(d, port, dead_port, rule)
        p = self.procs.start(name, [self.a.runbridge, "serve", "-c", cfg], cwd=d)
        wait_http(port, "/healthz")
        t0 = time.monotonic()
        w = self.wrk(port, "/webhooks/qase", "distinct", duration=300,
                     extra_env={"BENCH_MAX": str(n)}, label="restart fill (stops itself after BENCH_MAX responses)",
                     background=True)
        delivered = 0
        with RssSampler(p.pid) as s:
            while time.monotonic() - t0 < 280:
                m = metrics(port)
                delivered = m_accepted(m) if m else delivered
                if delivered >= n or w.poll() is not None:
                    break
                time.sleep(0.5)
            time.sleep(0.5)
            w.send_signal(signal.SIGINT)
            w.wait()
        fill_s = time.monotonic() - t0
        fill_rss = s.peak
        m = metrics(port)
        pending_before = m_pending(m)
        stop_s = self.procs.stop(name, timeout=30)
        st = subprocess.run([self.a.runbridge, "status", "-c", cfg], capture_output=True,
                            text=True, cwd=d).stdout
        mm = re.search(r"pending:\s*(\d+)", st)
        pending = int(mm.group(1)) if mm else int(pending_before)
        log("restart: %d pending after %.1f s of fill (redis down); stop took %.2f s" % (
            pending, fill_s, stop_s))
        # Redis comes back: the same config pointed at the running Redis.
        write_rb(d, port, self.redis_port, rule)
        self.redis.cmd("DEL", "restart:ID")
        health = {}

        def poll_health():
            while "t" not in health and time.monotonic() - t1 < 30:
                try:
                    if http_request(port, "GET", "/healthz", timeout=1)[0] == 200:
                        health["t"] = (time.monotonic() - t1) * 1000.0
                        return
                except OSError:
                    time.sleep(0.0005)

        t1 = time.monotonic()
        p = self.procs.start(name, [self.a.runbridge, "serve", "-c", cfg], cwd=d, record=False)
        th = threading.Thread(target=poll_health, daemon=True)
        th.start()
        first = self.first_202(port, t1, 9000000000, limit=30)
        th.join(31)
        drain_s = None
        with RssSampler(p.pid) as s2:
            limit = 60 if self.quick else 240
            while time.monotonic() - t1 < limit:
                if self.redis.cmd("XLEN", "restart:ID") >= pending + 1:
                    drain_s = time.monotonic() - t1
                    break
                time.sleep(0.05)
        xlen = self.redis.cmd("XLEN", "restart:ID")
        self.results["restart"] = {
            "n": n, "pending": pending, "fill_s": fill_s, "fill_rss": fill_rss,
            "stop_s": stop_s, "health_ms": health.get("t"), "first_ms": first,
            "drain_s": drain_s, "xlen": xlen, "drain_rss": s2.peak,
        }
        log("restart: healthz %s ms, first 202 %s ms, drained %s s (%d appended)" % (
            health.get("t"), first, drain_s, xlen))
        self.procs.stop(name, timeout=30)
        self.redis.cmd("DEL", "restart:ID")

    # -- 5. exec hooks ---------------------------------------------------------------

    def exec_hooks(self):
        wh_port = free_port()
        whdir = os.path.join(self.tmp, "webhook")
        os.makedirs(whdir, exist_ok=True)
        hooks = os.path.join(whdir, "hooks.json")
        with open(hooks, "w") as f:
            json.dump([{"id": "bench", "execute-command": "/bin/true",
                        "command-working-directory": whdir}], f)
        wh = self.procs.start("webhook", ["webhook", "-hooks", hooks, "-ip", "127.0.0.1",
                                          "-port", str(wh_port)])
        wait_http(wh_port, "/")
        time.sleep(max(0.5, self.settle))
        wh_idle = ps_rss_kb(wh.pid)
        with RssSampler(wh.pid) as s:
            with CpuWindow(wh.pid, True, self.our_pids()) as cpu:
                r = self.wrk(wh_port, "/hooks/bench", "distinct", label="webhook")
            time.sleep(self.after_s)
        r["others"] = cpu.others
        wh_res = dict(r, rss_idle=wh_idle, rss_peak=s.peak)
        log("webhook: %.0f req/s p99 %.2f ms rss %.1f -> %.1f MB" % (
            r["rps"], r["p99"], mb(wh_idle), mb(s.peak)))
        self.procs.stop("webhook")
        time.sleep(2 * self.settle)

        port, p, _ = self.start_rb("runbridge-exec", 'exec: { argv: ["/bin/true"], timeout_s: 30 }',
                                   self.redis_port)
        time.sleep(max(0.5, self.settle))
        idle = ps_rss_kb(p.pid)
        m0 = metrics(port)
        with RssSampler(p.pid) as s:
            with CpuWindow(p.pid, True, self.our_pids()) as cpu:
                r = self.wrk(port, "/webhooks/qase", "distinct", label="runbridge-exec")
            r["others"] = cpu.others
            m1 = metrics(port)
            t_load_end = time.monotonic()
            time.sleep(self.after_s)
            m2 = metrics(port)
            t_after = time.monotonic() - t_load_end
        ok = lambda m: m_sum(m, "runbridge_action_attempts_total", kind="exec", outcome="ok")
        rb_res = dict(r, rss_idle=idle, rss_peak=s.peak,
                      exec_during=(ok(m1) - ok(m0)) / float(self.dur),
                      exec_after=(ok(m2) - ok(m1)) / t_after,
                      pending_end=m_pending(m2),
                      failed=m_sum(m2, "runbridge_action_attempts_total", kind="exec", outcome="failed"))
        log("runbridge exec: %.0f req/s p99 %.2f ms rss %.1f -> %.1f MB, hooks/s %.0f during, %.0f after, %d pending" % (
            r["rps"], r["p99"], mb(idle), mb(s.peak), rb_res["exec_during"], rb_res["exec_after"],
            rb_res["pending_end"]))
        rb_res["stop_s"] = self.procs.stop("runbridge-exec", timeout=30)
        self.results["exec"] = {"webhook": wh_res, "runbridge": rb_res}

    # -- 6. perf -------------------------------------------------------------------

    def profile(self):
        try:
            ok = subprocess.run(["perf", "stat", "-e", "cpu-clock", "true"],
                                capture_output=True, text=True).returncode == 0
        except OSError:
            ok = False
        if not ok:
            self.results["perf"] = None
            return
        data = os.path.join(self.tmp, "perf.data")
        secs = max(2, self.dur - 2)
        rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "499",
                                "--call-graph", "dwarf,16384", "-p", str(self.rb_pid),
                                "-o", data, "--", "sleep", str(secs)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with CpuWindow(self.rb_pid) as cpu:
            r = self.wrk(self.rb_port, "/webhooks/qase", "distinct")
        rec.wait()

        def report(*args):
            return subprocess.run(["perf", "report", "-i", data, "--stdio"] + list(args),
                                  capture_output=True, text=True, timeout=300).stdout

        def rows(text, limit, skip=()):
            out = []
            for line in text.splitlines():
                if not line.strip() or line.startswith("#"):
                    continue
                if any(x in line for x in skip):
                    continue
                if re.search(r"\[\.\] 0x[0-9a-f]+\s*$", line):
                    continue  # an address perf could not name (stripped library)
                out.append(re.sub(r"(\s+-)+\s*$", "", line.rstrip()))
                if len(out) >= limit:
                    break
            return "\n".join(out)
        out = {"rps": r["rps"], "threads_cpu": cpu.threads, "busy": cpu.busy, "secs": secs}
        out["threads"] = rows(report("--no-children", "--sort", "comm", "-g", "none"), 10)
        out["self"] = rows(report("--no-children", "--sort", "comm,dso,sym", "-g", "none",
                                  "--percent-limit", "1"), 25)
        generic = ("clone3", "start_thread", "entry_SYSCALL", "do_syscall_64", "[k] ")
        out["writer"] = rows(report("--children", "--comm", "rb-writer", "--sort", "sym",
                                    "-g", "none", "--percent-limit", "1.5"), 40, generic)
        out["worker"] = rows(report("--children", "--comm", "civetweb-worker", "--sort", "sym",
                                    "-g", "none", "--percent-limit", "1.5"), 25, generic)
        self.results["perf"] = out

    # -- 7. the cost curve -----------------------------------------------------------

    def curve(self):
        """Closed loop (wrk) at each of CURVE_CONNS against the bare responder
        and a fresh runbridge, then the open loop (bench/openloop)."""
        self.curve_closed()
        self.curve_open()
        self.plot()

    def curve_closed(self):
        hz = float(os.sysconf("SC_CLK_TCK"))
        dur = self.curve_dur
        resp_port = free_port()
        resp = self.procs.start("responder-curve", [self.a.responder, str(resp_port), "64"])
        wait_http(resp_port, "/healthz")
        rule = 'redis: { stream: "curve:{{project}}", maxlen: 100000 }'
        name = "runbridge-curve"
        var = os.path.join(self.tmp, name, "var")
        points = []
        for rnd in range(self.rounds):
            for conns in CURVE_CONNS:
                threads = min(2, conns)
                label = ("cost curve, closed loop (this is the 32-connection one; -c and -t "
                         "were 1/1, 8/2, 32/2, 128/2, 512/2)") if rnd == 0 and conns == 32 else None
                # the bare responder: the same wrk load, CPU per request
                c0 = cpu_ticks(resp.pid)
                with CpuWindow(resp.pid, False, self.our_pids()) as cpu:
                    b = self.wrk(resp_port, "/webhooks/qase", "distinct", duration=dur,
                                 conns=conns, threads=threads,
                                 label=label and label.replace("closed loop", "closed loop, bare responder"))
                c1 = cpu_ticks(resp.pid)
                done = b["requests"] - b["non2xx"]
                b.update(cpu_us=(c1 - c0) / hz * 1e6 / done if done and c1 is not None else float("nan"),
                         others=cpu.others)
                time.sleep(self.settle)
                # runbridge: a fresh store for every point
                port, p, _ = self.start_rb(name, rule, self.redis_port)
                self.warm_up(port, conns, threads, "curve:ID")
                s0, m0, c0 = store_bytes(var), metrics(port), cpu_ticks(p.pid)
                with RssSampler(p.pid) as rs, CpuWindow(p.pid, False, self.our_pids()) as cpu:
                    r = self.wrk(port, "/webhooks/qase", "distinct", duration=dur, conns=conns,
                                 threads=threads, label=label and label.replace("closed loop", "closed loop, runbridge"))
                c_load = cpu_ticks(p.pid)
                m1 = metrics(port)
                accepted = m_accepted(m1) - m_accepted(m0)
                r["pending_end"] = m_pending(m1)
                # the work a delivery costs includes appending its job to
                # Redis: the CPU is read again once the backlog is gone
                r["drain_s"] = self.wait_drained(port, 30 if self.quick else 60)
                c1 = cpu_ticks(p.pid)
                time.sleep(0.2)
                s1 = store_bytes(var)
                self.procs.stop(name, timeout=30)
                r.update(accepted=accepted, rss_peak=rs.peak, others=cpu.others,
                         cpu_us=(c1 - c0) / hz * 1e6 / accepted if accepted else float("nan"),
                         cpu_us_load=(c_load - c0) / hz * 1e6 / accepted if accepted else float("nan"),
                         store_bytes=(s1 - s0) / float(accepted) if accepted else float("nan"),
                         store_total=s1)
                points.append({"round": rnd, "conns": conns, "bare": b, "rb": r})
                log("curve c=%-3d round %d: bare %8.0f/s p99 %7.2f ms %5.1f us/req | runbridge %7.0f/s "
                    "p99 %7.2f ms %6.1f us/delivery %6.0f B/delivery%s" % (
                        conns, rnd + 1, b["rps"], b["p99"], b["cpu_us"], r["rps"], r["p99"], r["cpu_us"],
                        r["store_bytes"], "" if not (r["non2xx"] or r["sockerr"]) else
                        "  (%d non-2xx, %d socket errors)" % (r["non2xx"], r["sockerr"])))
                self.redis.cmd("DEL", "curve:ID")
                time.sleep(self.settle)
        self.procs.stop("responder-curve")
        self.results["curve"] = points

    def curve_open(self):
        if not self.a.openloop or not os.access(self.a.openloop, os.X_OK):
            self.notes.append("bench/openloop was not built: no open-loop points")
            return
        hz = float(os.sysconf("SC_CLK_TCK"))
        dur = self.open_dur
        rule = 'redis: { stream: "open:{{project}}", maxlen: 10000000 }'
        name = "runbridge-open"
        var = os.path.join(self.tmp, name, "var")
        out = []
        for rate in OPEN_RATES:
            self.redis.cmd("DEL", "open:ID")
            port, p, _ = self.start_rb(name, rule, self.redis_port)
            self.warm_up(port, OPEN_CONNS, 2, "open:ID")
            argv = [self.a.openloop, "-p", str(port), "-r", str(rate), "-d", str(dur),
                    "-c", str(OPEN_CONNS), "-b", FIXTURE, "-i", str(self.next_ids()), "-g", "10"]
            if rate == OPEN_RATES[-1]:
                self.wrk_cmds.append(("cost curve, open loop (-r was %s)" % ", ".join(
                    str(x) for x in OPEN_RATES), " ".join(argv).replace(self.a.root + "/", "")))
            s0, m0, c0 = store_bytes(var), metrics(port), cpu_ticks(p.pid)
            w = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
            samples, rss_peak = self.sample_backlog(w, port, "open:ID", p.pid, m_accepted(m0))
            stdout, stderr = w.communicate()
            try:
                o = json.loads(stdout)
            except ValueError:
                self.procs.stop(name)
                self.notes.append("openloop at %d/s printed no result: %s" % (rate, stderr.strip()[:300]))
                continue
            m1 = metrics(port)
            accepted = m_accepted(m1) - m_accepted(m0)
            t_end = time.monotonic()
            while self.redis.cmd("XLEN", "open:ID") < accepted and time.monotonic() - t_end < 30:
                time.sleep(0.05)
            tail = time.monotonic() - t_end
            self.wait_drained(port, 10)
            c1 = cpu_ticks(p.pid)
            delays = stream_delays(self.redis, "open:ID")
            s1 = store_bytes(var)
            self.procs.stop(name, timeout=30)
            o.update({
                "accepted": accepted, "appended": len(delays), "samples": samples,
                "tail_s": tail, "rss_peak": rss_peak,
                "cpu_us": (c1 - c0) / hz * 1e6 / accepted if accepted else float("nan"),
                "store_bytes": (s1 - s0) / float(accepted) if accepted else float("nan"),
                "d_p50": pct(delays, 50), "d_p99": pct(delays, 99),
                "d_max": max(delays) if delays else float("nan"),
            })
            o.update(backlog_summary(samples))
            o["flat"] = backlog_flat(o, "achieved_rps")
            out.append(o)
            lat = o["latency"]
            log("open loop %5d/s: achieved %.0f/s, from intended send p50 %.2f p99 %.2f max %.2f ms; "
                "backlog max %s (%s); %d unanswered, %d failed" % (
                    rate, o["achieved_rps"], lat["p50"], lat["p99"], lat["max"], o["b_max"],
                    "flat" if o["flat"] else "NOT flat", o["unanswered"], o["failed"]))
            self.redis.cmd("DEL", "open:ID")
            time.sleep(self.settle)
        self.results["open"] = out

    def curve_means(self):
        """Per connection count: the rounds' mean requests/s and CPU, worst p99."""
        rows = []
        pts = self.results.get("curve", [])
        for conns in CURVE_CONNS:
            ps = [q for q in pts if q["conns"] == conns]
            if not ps:
                continue
            row = {"conns": conns, "n": len(ps)}
            for side in ("bare", "rb"):
                ls = [q[side] for q in ps]
                row[side] = {
                    "rps": statistics.mean(l["rps"] for l in ls),
                    "p50": statistics.mean(l["p50"] for l in ls),
                    "p99": max(l["p99"] for l in ls),
                    "max": max(l["max"] for l in ls),
                    "cpu_us": statistics.mean(l["cpu_us"] for l in ls),
                    "err": sum(l["non2xx"] + l["sockerr"] for l in ls),
                    "ratios": [q["rb"]["rps"] / q["bare"]["rps"] if q["bare"]["rps"] else float("nan")
                               for q in ps],
                }
                if side == "rb":
                    row[side]["store_bytes"] = statistics.mean(l["store_bytes"] for l in ls)
                    row[side]["pending_end"] = max(l["pending_end"] for l in ls)
                    row[side]["undrained"] = sum(1 for l in ls if l["drain_s"] is None)
            row["ratio"] = statistics.mean(row["rb"]["ratios"])
            rows.append(row)
        return rows

    def plot(self):
        rows = self.curve_means()
        if not rows or not self.a.plot:
            return
        gp = os.path.join(self.a.root, "bench", "cost-curve.gp")
        closed = os.path.join(self.tmp, "curve.dat")
        openf = os.path.join(self.tmp, "open.dat")
        with open(closed, "w") as f:
            f.write("# connections bare_rps bare_p99_ms runbridge_rps runbridge_p99_ms\n")
            for row in rows:
                f.write("%d %.1f %.3f %.1f %.3f\n" % (row["conns"], row["bare"]["rps"], row["bare"]["p99"],
                                                       row["rb"]["rps"], row["rb"]["p99"]))
        with open(openf, "w") as f:
            f.write("# offered_rps achieved_rps p50_ms p99_ms max_ms\n")
            for o in self.results.get("open", []):
                lat = o["latency"]
                f.write("%.0f %.1f %.3f %.3f %.3f\n" % (o["rate"], o["achieved_rps"], lat["p50"],
                                                         lat["p99"], lat["max"]))
        title = "runbridge %s vs bare civetweb + json-c responder, %s%s" % (
            self.git.split(" ")[0], self.started.strftime("%Y-%m-%d %H:%M UTC"),
            " (quick run)" if self.quick else "")
        os.makedirs(os.path.dirname(os.path.abspath(self.a.plot)), exist_ok=True)
        try:
            p = subprocess.run(["gnuplot", "-e", "closed='%s'; open='%s'; out='%s'; title='%s'; "
                                "has_open=%d" % (closed, openf, self.a.plot, title,
                                                 1 if self.results.get("open") else 0), gp],
                               capture_output=True, text=True, timeout=60)
        except OSError as e:
            self.notes.append("gnuplot did not run (%s): no plot" % e)
            return
        if p.returncode != 0:
            self.notes.append("gnuplot failed: %s" % (p.stderr.strip()[:300]))
            return
        self.plot_written = self.a.plot
        log("wrote %s" % self.a.plot)

    # -- the report -------------------------------------------------------------------

    def versions(self):
        def run(cmd):
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, shell=True)
                return (p.stdout + p.stderr).strip().splitlines()[0]
            except Exception:
                return "?"

        def deb(pkg):
            return run("dpkg-query -W -f='${Version}' %s" % pkg)
        return [
            ("runbridge", "%s, Release build (%s/), commit %s" % (
                run("%s --version" % self.a.runbridge), self.a.build_dir.rstrip("/"), self.git)),
            ("bare responder", "bench/responder.c, cc -O2, civetweb %s, json-c %s" % (
                deb("libcivetweb1"), deb("libjson-c5"))),
            ("civetweb", deb("libcivetweb1")),
            ("SQLite", deb("libsqlite3-0")),
            ("hiredis", deb("libhiredis0.14")),
            ("redis-server", deb("redis-server")),
            ("nginx-light", deb("nginx-light")),
            ("webhook (adnanh)", deb("webhook")),
            ("wrk", deb("wrk")),
            ("open-loop generator", "bench/openloop.c, cc -O2"),
            ("gnuplot (the plot)", deb("gnuplot-nox")),
            ("gcc", run("cc --version")),
        ]

    def machine(self):
        cpu = "?"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            memkb = int(f.readline().split()[1])
        return [("nproc", str(os.cpu_count() if not hasattr(os, "sched_getaffinity")
                                else len(os.sched_getaffinity(0)))),
                ("CPU model", cpu),
                ("kernel", os.uname().release),
                ("memory", "%.1f GiB" % (memkb / 1048576.0)),
                ("OS", subprocess.run(". /etc/os-release; echo $PRETTY_NAME", shell=True,
                                      capture_output=True, text=True).stdout.strip())]

    def run_all(self):
        self.git = subprocess.run(
            "git -C %s rev-parse --short HEAD; git -C %s status --porcelain -- src CMakeLists.txt | wc -l"
            % (shlex.quote(self.a.root), shlex.quote(self.a.root)),
            shell=True, capture_output=True, text=True).stdout.split()
        self.git = "%s%s" % (self.git[0], " + uncommitted changes in %s file(s) of src/" % self.git[1]
                             if len(self.git) > 1 and self.git[1] != "0" else "")
        self.started = datetime.datetime.now(datetime.timezone.utc)
        self.load_start = open("/proc/loadavg").read().split()[:3]
        t0 = time.monotonic()
        self.redis_port, self.redis = self.start_redis()
        steps = [("throughput", self.throughput), ("drain", self.drain),
                 ("curve", self.curve),
                 ("startup", self.startup), ("restart", self.restart),
                 ("exec", self.exec_hooks)]
        if self.a.perf and not self.quick:  # the smoke run skips the profile
            steps.append(("perf", self.profile))
        if self.a.curve_only:
            steps = [("curve", self.curve)]
        elif not self.a.curve:
            steps = [st for st in steps if st[0] != "curve"]
        for name, fn in steps:
            log("== %s (%.0f s so far)" % (name, time.monotonic() - t0))
            try:
                fn()
            except Exception as e:  # report what failed, carry on
                import traceback
                traceback.print_exc()
                self.notes.append("The %s step failed: %s" % (name, e))
        self.elapsed = time.monotonic() - t0
        self.load_end = open("/proc/loadavg").read().split()[:3]
        self.procs.stop_all()
        if self.a.curve_only:
            Report(self).write_curve(self.a.out)
        else:
            Report(self).write(self.a.out)
        log("wrote %s (%.0f s)" % (self.a.out or "the report to stdout", self.elapsed))


# ---- markdown ---------------------------------------------------------------------

MARK = ("<!-- end of the generated report: bench/run.sh rewrites everything above this line "
        "and keeps everything below it -->")


def f_ms(v):
    if v is None or v != v:
        return "n/a"
    if v >= 1000:
        return "%.2f s" % (v / 1000.0)
    return "%.2f ms" % v if v < 10 else "%.1f ms" % v


def status(ok):
    if ok is None:
        return "not judged (fewer than 100,000 pending: quick run)"
    return "**met**" if ok else "**not met**"


class Report:
    def __init__(self, b):
        self.b = b
        self.r = b.results
        self.out = []

    def p(self, s=""):
        self.out.append(s)

    def loads(self, key, rnd=None):
        return [l for l in self.r.get("loads", []) if l["key"] == key and (rnd is None or l["round"] == rnd)]

    def ratio(self, l):
        ref = self.loads("responder", l["round"])
        return l["rps"] / ref[0]["rps"] if ref and ref[0]["rps"] else float("nan")

    def machine_versions(self):
        b, p = self.b, self.p
        p("## Machine")
        p()
        p("| | |")
        p("|---|---|")
        for k, v in b.machine():
            p("| %s | %s |" % (k, v))
        p()
        p("The load generator (wrk, 2 threads) shares the same cores as the server under test, "
          "so absolute figures are lower than on a dedicated box; compare rows of the same run. "
          "The machine is shared: load average %s when the run started, %s when it ended "
          "(other work on it shows up as noise between rounds)." % (
              " ".join(getattr(b, "load_start", ["?"])), " ".join(getattr(b, "load_end", ["?"]))))
        p()
        p("## Versions")
        p()
        p("| | |")
        p("|---|---|")
        for k, v in b.versions():
            p("| %s | %s |" % (k, v))
        p()

    def write(self, path):
        b, r = self.b, self.r
        goals = []
        p = self.p
        p("# Benchmarks")
        p()
        p("Produced by `bench/run.sh%s` on %s (%.0f s). %s" % (
            " --quick" if b.quick else "", b.started.strftime("%Y-%m-%d %H:%M UTC"), b.elapsed,
            "**Quick (smoke) run: 3-second loads, one round, 10,000 pending actions for the restart: "
            "not the figures to judge the goals by.**" if b.quick else
            "Loads of %d s, %d rounds alternating the peers; every figure below comes from this one run." %
            (b.dur, b.rounds)))
        p()
        self.machine_versions()

        # -- the table
        p("## Throughput at 32 connections")
        p()
        p("Same load against each: `wrk -t2 -c32 -d%ds --latency -s bench/post.lua`, POSTing the "
          "run.completed fixture (%s). *dup*: every request the identical body (runbridge "
          "answers `duplicate: true` after the first, still after a commit). *distinct*: payload.id "
          "unique per request, so every request is a new delivery with a new redis job. runbridge "
          "answers 202 only after its group commit and fsync (SQLite WAL, synchronous=FULL), with "
          "one catch-all rule `redis: { stream: \"bench:{{project}}\", maxlen: 100000 }`. RSS is "
          "what `ps -o rss` shows, idle after start, peak sampled every 100 ms during the load "
          "(nginx: master + workers). Ratio: requests/s over the bare responder's in the same round. "
          "Server CPU: the server's own CPU time over the load, in cores (of %d). Other work: CPU used "
          "during the load by processes that are neither the server, wrk, this script nor another peer it "
          "started (the machine "
          "is shared; where it is high, that row is perturbed)."
          % (b.dur, os.path.relpath(FIXTURE, REPO), len(os.sched_getaffinity(0))))
        p()
        p("| server | body | round | requests/s | p50 | p99 | RSS idle → peak | ratio to bare responder | server CPU | other work on the machine |")
        p("|---|---|---|---:|---:|---:|---|---:|---:|---:|")
        names = {"responder": ("bare civetweb + json-c responder", "same"),
                 "runbridge-dup": ("runbridge, durable, redis rule", "dup"),
                 "runbridge-distinct": ("runbridge, durable, redis rule", "distinct"),
                 "nginx": ("nginx `return 200`, 2 workers", "same")}
        idle = getattr(b, "idle", {})
        for l in r.get("loads", []):
            name, body = names[l["key"]]
            idle_kb = idle.get(l["key"].split("-")[0], 0)
            extra = ""
            if l["non2xx"] or l["sockerr"]:
                extra = " (%d non-2xx, %d socket errors)" % (l["non2xx"], l["sockerr"])
            p("| %s | %s | %d | %s%s | %s | %s | %.1f → %.1f MB | %.0f%% | %.2f cores | %.2f cores |" % (
                name, body, l["round"] + 1, "{:,.0f}".format(l["rps"]), extra, f_ms(l["p50"]),
                f_ms(l["p99"]), mb(idle_kb), mb(l["rss_peak"]), 100 * self.ratio(l),
                l.get("server_cpu", 0), l.get("others", 0)))
        ex = r.get("exec")
        if ex:
            w, rb = ex["webhook"], ex["runbridge"]
            p("| adnanh/webhook, /bin/true | distinct | 1 | %s | %s | %s | %.1f → %.1f MB | %.0f%% | | %.2f cores |" % (
                "{:,.0f}".format(w["rps"]), f_ms(w["p50"]), f_ms(w["p99"]), mb(w["rss_idle"]),
                mb(w["rss_peak"]), 100 * w["rps"] / self.loads("responder", 0)[0]["rps"]
                if self.loads("responder", 0) else float("nan"), w.get("others", 0)))
            p("| runbridge, durable, exec /bin/true rule | distinct | 1 | %s | %s | %s | %.1f → %.1f MB | %.0f%% | | %.2f cores |" % (
                "{:,.0f}".format(rb["rps"]), f_ms(rb["p50"]), f_ms(rb["p99"]), mb(rb["rss_idle"]),
                mb(rb["rss_peak"]), 100 * rb["rps"] / self.loads("responder", 0)[0]["rps"]
                if self.loads("responder", 0) else float("nan"), rb.get("others", 0)))
        p()
        # group commit figures
        rows = [l for l in r.get("loads", []) if l["key"].startswith("runbridge") and l.get("commits")]
        if rows:
            p("runbridge's writer during those loads (from its /metrics before and after each load: "
              "`runbridge_store_commit_seconds` times a whole batch, from taking the queue to the end "
              "of COMMIT; a batch also carries action attempt records), and CPU from /proc:")
            p()
            p("| load | round | accepted | batches | requests per batch | mean batch time (process + commit) | machine CPU busy | runbridge threads, share of one core |")
            p("|---|---|---:|---:|---:|---:|---:|---|")
            for l in rows:
                th = ", ".join("%s %.0f%%" % (k, 100 * v) for k, v in
                               sorted(l.get("threads", {}).items(), key=lambda kv: -kv[1]) if v >= 0.01)
                p("| %s | %d | %s | %s | %.1f | %s | %.0f%% | %s |" % (
                    l["key"], l["round"] + 1, "{:,.0f}".format(l["accepted"]),
                    "{:,.0f}".format(l["commits"]), l["items"] / l["commits"],
                    f_ms(1000.0 * l["commit_s"] / l["commits"]), 100 * l.get("busy", 0), th))
            p()
        drains = r.get("load_drains", [])
        if drains:
            p("Redis backlog left when each distinct load ended, and how long runbridge took to "
              "append it: " + "; ".join(
                  "round %d: %s actions, %s" % (i + 1, "{:,.0f}".format(left),
                                                 "%.1f s" % t if t is not None else "not drained within the wait")
                  for i, (left, t) in enumerate(drains)) + ".")
            p()

        # -- goals
        for key, label in (("runbridge-dup", "identical bodies"), ("runbridge-distinct", "distinct bodies")):
            ls = self.loads(key)
            if not ls:
                continue
            rps = statistics.mean(l["rps"] for l in ls)
            ratio = statistics.mean(self.ratio(l) for l in ls)
            p99 = max(l["p99"] for l in ls)
            err = sum(l["non2xx"] + l["sockerr"] for l in ls)
            goals.append(("Durable ingest, %s: ≥ 50%% of the bare responder" % label,
                          "%.0f%% (mean of %d round%s)" % (100 * ratio, len(ls), "s" if len(ls) > 1 else ""),
                          ratio >= 0.5))
            goals.append(("Durable ingest, %s: ≥ 40,000 requests/s" % label,
                          "{:,.0f}/s (mean)".format(rps), rps >= 40000 and err == 0))
            goals.append(("Durable ingest, %s: p99 < 5 ms" % label,
                          "%s (worst round)" % f_ms(p99), p99 < 5))
        d = r.get("drain")
        if d:
            flat = backlog_flat(d)
            goals.append(("Drain at 5,000/s: backlog stays flat",
                          "backlog (accepted − appended) max %.0f, mean %.0f first half → %.0f second half; %s/s achieved"
                          % (d["b_max"], d["b_first"], d["b_last"], "{:,.0f}".format(d["rps"])),
                          flat))
            goals.append(("Drain at 5,000/s: 202 → stream entry p99 < 10 ms",
                          "p99 %s (p50 %s, max %s) over %s entries" % (
                              f_ms(d["d_p99"]), f_ms(d["d_p50"]), f_ms(d["d_max"]),
                              "{:,}".format(d["appended"])),
                          d["d_p99"] < 10 and d["appended"] >= d["accepted"]))
        for o in r.get("open", []):
            if o["rate"] == 10000:
                goals.append(("Drain at 10,000/s: backlog stays flat (open loop, cost curve)",
                              "backlog max %.0f, mean %.0f first half → %.0f second half; %s/s achieved; "
                              "from intended send p99 %s; received_at → stream entry p99 %s" % (
                                  o["b_max"], o["b_first"], o["b_last"], "{:,.0f}".format(o["achieved_rps"]),
                                  f_ms(o["latency"]["p99"]), f_ms(o["d_p99"])),
                              o["flat"]))
        if ex:
            w, rb = ex["webhook"], ex["runbridge"]
            ratio = rb["rps"] / w["rps"] if w["rps"] else float("nan")
            goals.append(("Exec hooks: ≥ 2× adnanh/webhook (requests/s)",
                          "%.2f× (%s vs %s/s)" % (ratio, "{:,.0f}".format(rb["rps"]),
                                                  "{:,.0f}".format(w["rps"])), ratio >= 2))
        st = r.get("startup")
        fresh = [v for v in (idle.get("runbridge"), ex and ex["runbridge"]["rss_idle"]) if v]
        after1 = st["idle_rss"] if st else []
        if fresh or after1:
            worst = max(fresh + after1)
            goals.append(("Idle RSS < 8 MB",
                          "fresh start, no delivery yet: %s; idle after its first delivery: %s; "
                          "idle after the throughput rounds: %s (judged on the first two). "
                          "At the fresh start %s" % (
                              " / ".join("%.1f MB" % mb(v) for v in fresh) or "n/a",
                              " / ".join("%.1f MB" % mb(v) for v in after1) or "n/a",
                              "%.1f MB" % mb(b.rb_after_idle) if getattr(b, "rb_after_idle", None) else "n/a",
                              "%.1f MB of it is private (RssAnon) and %.1f MB mapped files, mostly shared "
                              "library text (RssFile)" % (mb(b.rb_idle_split[0]), mb(b.rb_idle_split[1]))
                              if getattr(b, "rb_idle_split", None) else "n/a"),
                          worst < 8 * 1024))
        peaks = [(l["rss_peak"], "%s round %d" % (l["key"], l["round"] + 1))
                 for l in r.get("loads", []) if l["key"].startswith("runbridge")]
        if d:
            peaks.append((d["rss_peak"], "drain"))
        if ex:
            peaks.append((ex["runbridge"]["rss_peak"], "exec"))
        rs = r.get("restart")
        if rs:
            peaks.append((rs["fill_rss"], "restart fill, Redis down"))
            peaks.append((rs["drain_rss"], "draining %s pending after the restart" % "{:,}".format(rs["pending"])))
        if peaks:
            top = max(peaks)
            goals.append(("RSS under load < 64 MB", "%.1f MB (largest peak of every runbridge load: %s)" % (
                mb(top[0]), top[1]), top[0] < 64 * 1024))
        if st and st["times"]:
            ok_times = [t for t in st["times"] if t is not None]
            worst = max(ok_times) if len(ok_times) == len(st["times"]) else float("inf")
            goals.append(("Startup to the first accepted delivery, empty store < 50 ms",
                          "%s worst of %d (median %s)" % (f_ms(worst), len(st["times"]),
                                                         f_ms(statistics.median(ok_times)) if ok_times else "n/a"),
                          worst < 50))
        rs = r.get("restart")
        if rs:
            fm = rs["first_ms"]
            goals.append(("Restart with %s pending actions: first accepted delivery < 1 s" %
                          "{:,}".format(rs["pending"]),
                          "%s (healthz %s)" % (f_ms(fm), f_ms(rs["health_ms"])),
                          fm is not None and fm < 1000 and rs["pending"] >= 100000))
            if rs["pending"] < 100000:
                goals[-1] = goals[-1][:2] + (None,)

        p("## Goals")
        p()
        p("| goal | measured | status |")
        p("|---|---|---|")
        for g, m, ok in goals:
            p("| %s | %s | %s |" % (g, m, status(ok)))
        p()
        p("Durable-ingest goals are judged on the mean requests/s and ratio over the rounds and the "
          "worst p99; a load with any non-2xx answer or socket error does not meet the throughput goal.")
        p()

        if d:
            p("## Drain")
            p()
            p("A fresh runbridge (empty store, rule `redis: { stream: \"drain:{{project}}\" }`) gets distinct "
              "deliveries paced at %s/s for %d s (`wrk -t2 -c48` with `BENCH_RATE`: post.lua's `delay()` "
              "holds each thread to its share, open loop against a wall clock). Every 0.5 s the backlog "
              "is sampled as runbridge's accepted counter (/metrics) minus the stream's XLEN. Afterwards every "
              "stream entry's delay is its id's millisecond timestamp (Redis' wall clock at XADD) minus "
              "the event's `received_at` (runbridge's wall clock when the request arrived, before the "
              "commit): so the figure includes the commit and fsync as well as the append, and is an upper "
              "bound on 202 → entry. Both are whole milliseconds (±1 ms)." % (
                  "{:,}".format(d["rate"]), b.dur))
            p()
            p("| | |")
            p("|---|---|")
            p("| achieved rate | %s requests/s, %s accepted, p50 %s, p99 %s |" % (
                "{:,.0f}".format(d["rps"]), "{:,}".format(d["accepted"]), f_ms(d["p50"]), f_ms(d["p99"])))
            p("| delay received_at → stream entry | p50 %s, p90 %s, p99 %s, max %s (%s entries) |" % (
                f_ms(d["d_p50"]), f_ms(d["d_p90"]), f_ms(d["d_p99"]), f_ms(d["d_max"]),
                "{:,}".format(d["appended"])))
            p("| backlog samples (accepted − appended) | %s |" % ", ".join(
                "%.0f" % s[1] for s in d["samples"]))
            p("| pending jobs in the store (same instants) | %s |" % ", ".join(
                "%.0f" % s[2] for s in d["samples"]))
            p("| last entry appended after the load ended | %s |" % f_ms(1000 * d["tail_s"]))
            p("| RSS peak | %.1f MB |" % mb(d["rss_peak"]))
            p()
        self.curve_section()
        if st:
            p("## Startup")
            p()
            p("A fresh runbridge with an empty data dir, started %d times; the clock starts just before "
              "fork/exec, and a client retries a POST of a new delivery (every 0.5 ms while the port refuses) "
              "until it gets its 202: %s. Idle RSS one second later: %s." % (
                  len(st["times"]), ", ".join(f_ms(t) for t in st["times"]),
                  ", ".join("%.1f MB" % mb(k) for k in st["idle_rss"])))
            p()
        if rs:
            p("## Restart with pending actions")
            p()
            p("runbridge with the catch-all redis rule and `redis.url` pointing at a port where nothing "
              "listens (Redis down) gets %s distinct deliveries (wrk, %.1f s, RSS peak %.1f MB), is stopped "
              "with SIGTERM (%.2f s), its config pointed at the running Redis, and started again. "
              "Pending actions at the restart (`runbridge status`): **%s**." % (
                  "{:,}".format(rs["n"]), rs["fill_s"], mb(rs["fill_rss"]), rs["stop_s"],
                  "{:,}".format(rs["pending"])))
            p()
            p("| from start (fork/exec) to | |")
            p("|---|---|")
            p("| `GET /healthz` 200 | %s |" % f_ms(rs["health_ms"]))
            p("| first accepted delivery (202) | %s |" % f_ms(rs["first_ms"]))
            p("| every pending action appended to the stream | %s |" % (
                "%.2f s (%s entries; %s/s)" % (rs["drain_s"], "{:,}".format(rs["xlen"]),
                                               "{:,.0f}".format(rs["pending"] / rs["drain_s"]))
                if rs["drain_s"] else "not within the wait (%s of %s appended)" % (
                    "{:,}".format(rs["xlen"]), "{:,}".format(rs["pending"] + 1))))
            p("| RSS peak while draining | %.1f MB |" % mb(rs["drain_rss"]))
            p()
        if ex:
            w, rb = ex["webhook"], ex["runbridge"]
            p("## Exec hooks")
            p()
            p("Both run `/bin/true` for every delivery, same distinct-body load. adnanh/webhook answers "
              "200 before its command finishes (no back-pressure, nothing stored); runbridge answers 202 "
              "once the delivery and its job are committed, and runs hooks from the store with "
              "`exec.workers: 4` at the default `exec.nice: 10` (hooks yield the CPU to intake). "
              "RSS peak includes %d s after the load." % b.after_s)
            p()
            p("| | requests/s | p50 | p99 | RSS idle → peak | hooks run |")
            p("|---|---:|---:|---:|---|---|")
            p("| adnanh/webhook | %s | %s | %s | %.1f → %.1f MB | one per request, started at once |" % (
                "{:,.0f}".format(w["rps"]), f_ms(w["p50"]), f_ms(w["p99"]), mb(w["rss_idle"]), mb(w["rss_peak"])))
            p("| runbridge | %s | %s | %s | %.1f → %.1f MB | %s/s during the load, %s/s after; %s pending at the end (kept in the store) |" % (
                "{:,.0f}".format(rb["rps"]), f_ms(rb["p50"]), f_ms(rb["p99"]), mb(rb["rss_idle"]),
                mb(rb["rss_peak"]), "{:,.0f}".format(rb["exec_during"]), "{:,.0f}".format(rb["exec_after"]),
                "{:,.0f}".format(rb["pending_end"])))
            p()
        pf = r.get("perf")
        if pf:
            p("## Where runbridge spends its time")
            p()
            p("`perf record -e cpu-clock -F 499 --call-graph dwarf -p PID` for %d s (no hardware "
              "counters in this VM: cpu-clock samples on-CPU time only, so time a thread spends asleep "
              "in fdatasync or waiting on a condition variable does not show) during one more %d-second "
              "distinct load (%s requests/s with perf attached; the machine was %.0f%% busy)."
              % (pf["secs"], b.dur, "{:,.0f}".format(pf["rps"]), 100 * pf["busy"]))
            p()
            p("CPU per runbridge thread during that load (from /proc, share of one core): " + ", ".join(
                "%s %.0f%%" % (k, 100 * v) for k, v in sorted(pf["threads_cpu"].items(), key=lambda kv: -kv[1])) + ".")
            p()
            for title, k in (("Samples by thread", "threads"),
                             ("Hottest functions (self time, ≥ 1% of samples)", "self"),
                             ("The writer thread (rb-writer), inclusive time, share of all samples", "writer"),
                             ("The HTTP threads (civetweb-worker), inclusive time", "worker")):
                p(title + ":")
                p()
                p("```")
                p(pf[k] or "(no samples)")
                p("```")
                p()
        elif "perf" in r:
            p("perf does not work here; no profile.")
            p()
        self.notes_section()

        p("## Exact commands")
        p()
        p("Ports are free loopback ports picked at run time (shown as they were in this run); "
          "everything binds 127.0.0.1 (checked with `ss -ltnp` once redis, the responder, nginx and "
          "runbridge were up: %s listening sockets, %s). Paths under the run's temp dir are shown as `$TMP`." % (
              getattr(b, "binds_ok", "?"),
              "none elsewhere" if not any("listening outside" in n for n in b.notes) else "SOME ELSEWHERE, see above"))
        p()
        p("```sh")
        bd = b.a.build_dir.rstrip("/")
        p("cmake -S . -B %s -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF" % bd)
        p("cmake --build %s --target runbridge" % bd)
        p("cc -std=c11 -O2 -o %s/bench-responder bench/responder.c -lcivetweb -ljson-c" % bd)
        if r.get("open"):
            p("cc -std=c11 -O2 -o %s/bench-openloop bench/openloop.c" % bd)
        for name, cmd in b.procs.cmds.items():
            p("# %s" % name)
            p(cmd.replace(b.tmp, "$TMP").replace(b.a.root + "/", ""))
        for label, cmd in b.wrk_cmds:
            p("# load: %s" % label)
            p(cmd.replace(b.tmp, "$TMP"))
        p("```")
        p()
        p("runbridge's config (each instance its own dir, port and data_dir) and the rules it was given:")
        p()
        p("```yaml")
        p(open(os.path.join(b.tmp, "runbridge", "runbridge.yaml")).read().replace(b.tmp, "$TMP").rstrip()
          if os.path.exists(os.path.join(b.tmp, "runbridge", "runbridge.yaml")) else "(not written)")
        p("# $TMP/runbridge/rules.yaml")
        p(open(os.path.join(b.tmp, "runbridge", "rules.yaml")).read().rstrip()
          if os.path.exists(os.path.join(b.tmp, "runbridge", "rules.yaml")) else "")
        p("# $TMP/runbridge-exec/rules.yaml: the same with")
        p('#       - exec: { argv: ["/bin/true"], timeout_s: 30 }')
        p("```")
        p()
        p("webhook's hooks.json: `[{\"id\": \"bench\", \"execute-command\": \"/bin/true\", "
          "\"command-working-directory\": \"$TMP/webhook\"}]`; nginx's config: `worker_processes 2`, "
          "`access_log off`, `keepalive_requests 1000000`, `location / { return 200 \"ok\\n\"; }`.")
        p()
        self.emit(path)

    def notes_section(self):
        """What went wrong during the run, if anything (both reports end with it)."""
        b, p = self.b, self.p
        if b.notes:
            p("## Problems during this run")
            p()
            for n in b.notes:
                p("- " + n)
            p()

    def write_curve(self, path):
        """The report of a --curve-only run: machine, versions, the curve."""
        b, p = self.b, self.p
        p("# Benchmarks: the cost curve")
        p()
        p("Produced by `bench/run.sh --curve-only%s` on %s (%.0f s)." % (
            " --quick" if b.quick else "", b.started.strftime("%Y-%m-%d %H:%M UTC"), b.elapsed))
        p()
        self.machine_versions()
        self.curve_section()
        self.notes_section()
        p("## Exact commands")
        p()
        p("```sh")
        for label, cmd in b.wrk_cmds:
            p("# load: %s" % label)
            p(cmd.replace(b.tmp, "$TMP"))
        p("```")
        p()
        self.emit(path)

    def emit(self, path):
        """Writes the report to path (stdout when None).  When path holds an
        earlier report, what was written by hand below its generated part is
        kept: everything after MARK, or (a file from before the mark) from
        the first section after "## Exact commands"."""
        text = "\n".join(self.out).rstrip("\n") + "\n"
        if path is None:
            sys.stdout.write(text)
            return
        tail = ""
        try:
            with open(path) as f:
                old = f.read()
        except OSError:
            old = ""
        if MARK in old:
            tail = old.split(MARK, 1)[1].lstrip("\n")
        elif "\n## Exact commands" in old:
            rest = old.split("\n## Exact commands", 1)[1]
            i = rest.find("\n## ")
            tail = rest[i + 1:] if i >= 0 else ""
        text += "\n" + MARK + "\n"
        if tail:
            text += "\n" + tail
            log("kept %d lines written by hand below the generated report in %s" % (
                tail.count("\n"), path))
        with open(path, "w") as f:
            f.write(text)

    def plot_link(self):
        """The PNG's path relative to the report (to docs/ when the report
        is written outside the tree, to be pasted into docs/benchmarks.md)."""
        b = self.b
        base = os.path.join(b.a.root, "docs")
        if b.a.out and os.path.abspath(b.a.out).startswith(os.path.abspath(b.a.root) + os.sep):
            base = os.path.dirname(os.path.abspath(b.a.out))
        return os.path.relpath(os.path.abspath(getattr(b, "plot_written")), base)

    def curve_section(self):
        b, r, p = self.b, self.r, self.p
        rows = b.curve_means()
        opens = r.get("open", [])
        if not rows and not opens:
            return
        n_rounds = max([row["n"] for row in rows] or [0])
        p("## The cost curve")
        p()
        p("How throughput, latency and cost move with the load. *Closed loop*: `wrk -t2 -cN -d%ds --latency -s "
          "bench/post.lua` (`-t1` at one connection), distinct bodies, against the bare responder (64 threads, "
          "one instance for the whole curve) and then a fresh runbridge for every point (empty store, the "
          "catch-all rule `redis: { stream: \"curve:{{project}}\", maxlen: 100000 }`; each fresh runbridge "
          "first gets a %d-second warm-up load at the same connection count, not counted), %d round%s; requests/s, "
          "p50 and CPU are the rounds' mean, p99 and max the worst round. *Open loop*: `bench/openloop` (C, epoll, "
          "%d keep-alive connections) sends distinct deliveries to a fresh, warmed-up runbridge on a fixed "
          "schedule for %d s; "
          "request k is due at start + k / rate and its latency is measured **from that intended send time**, so "
          "time spent waiting for a free connection (or for the generator to be scheduled) counts against the "
          "server: no coordinated omission. Its backlog (accepted − stream XLEN every 0.5 s) is judged as in the "
          "drain goal (never above 500, second half within 100 of the first). *CPU per delivery*: utime + stime "
          "of every runbridge thread (`/proc/PID/stat`) from just before the load until its Redis backlog is "
          "appended, over the deliveries accepted (202); the bare responder's over the requests it answered. "
          "*Store bytes per delivery*: growth of `runbridge.db` + `runbridge.db-wal` from the fresh start to "
          "after the backlog is appended, over the deliveries accepted." % (
              b.curve_dur, WARM_S, n_rounds, "s" if n_rounds != 1 else "", OPEN_CONNS, b.open_dur))
        p()
        p("| load | bare responder requests/s | bare p99 | bare CPU per request | runbridge requests/s | "
          "runbridge p50 | runbridge p99 | runbridge max | runbridge / bare | runbridge CPU per delivery "
          "(all threads) | store bytes per delivery | Redis backlog |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")

        def us(v):
            return "n/a" if v != v else "%.0f µs" % v

        def errs(n):
            return " (%d errors)" % n if n else ""
        for row in rows:
            bb, rb = row["bare"], row["rb"]
            ratios = row["rb"]["ratios"]
            rng = " (%s)" % "–".join("%.0f%%" % (100 * x) for x in (min(ratios), max(ratios))) \
                if len(ratios) > 1 else ""
            backlog = "%s at the end of the load%s" % (
                "{:,.0f}".format(rb["pending_end"]),
                "; not appended within the wait" if rb["undrained"] else "")
            p("| closed loop, %d connection%s | %s%s | %s | %s | %s%s | %s | %s | %s | %.0f%%%s | %s | %s | %s |" % (
                row["conns"], "s" if row["conns"] != 1 else "", "{:,.0f}".format(bb["rps"]), errs(bb["err"]),
                f_ms(bb["p99"]), us(bb["cpu_us"]), "{:,.0f}".format(rb["rps"]), errs(rb["err"]),
                f_ms(rb["p50"]), f_ms(rb["p99"]), f_ms(rb["max"]), 100 * row["ratio"], rng, us(rb["cpu_us"]),
                "n/a" if rb["store_bytes"] != rb["store_bytes"] else "{:,.0f}".format(rb["store_bytes"]),
                backlog))
        for o in opens:
            lat = o["latency"]
            bad = o["failed"] + o["non2xx"] + o["unanswered"]
            p("| open loop, %s/s offered | | | | %s achieved%s | %s | %s | %s | | %s | %s | %s |" % (
                "{:,.0f}".format(o["rate"]), "{:,.0f}".format(o["achieved_rps"]), errs(bad),
                f_ms(lat["p50"]), f_ms(lat["p99"]), f_ms(lat["max"]), us(o["cpu_us"]),
                "{:,.0f}".format(o["store_bytes"]),
                ("flat (max %.0f)" % o["b_max"]) if o["flat"] else
                "**not flat**: max %.0f, mean %.0f → %.0f%s" % (
                    o["b_max"], o["b_first"], o["b_last"],
                    "; under 95% of the offered rate accepted" if o["achieved_rps"] < 0.95 * o["rate"] else "")))
        p()
        warm = r.get("warm_up", [])
        if warm:
            worst = max(warm, key=lambda x: x[1])
            slow = [x for x in warm if x[1] >= 500]
            p("The warm-up loads (the first load each fresh runbridge took): worst latency %s (p99 %s) at %d "
              "connections; %d of %d had a request wait 500 ms or more." % (
                  f_ms(worst[1]), f_ms(worst[2]), worst[0], len(slow), len(warm)))
            p()
        at32 = [row for row in rows if row["conns"] == 32]
        if at32:
            row = at32[0]
            bb, rb = row["bare"], row["rb"]
            p("At 32 connections runbridge spent **%s of CPU per delivery** (all its threads, the Redis append "
              "included; %s during the load alone) against **%s per request** for the bare responder (%.1f×), "
              "and its store grew by **%s bytes per delivery**." % (
                  us(rb["cpu_us"]), us(statistics.mean(q["rb"]["cpu_us_load"] for q in r["curve"]
                                                      if q["conns"] == 32)),
                  us(bb["cpu_us"]), rb["cpu_us"] / bb["cpu_us"] if bb["cpu_us"] else float("nan"),
                  "{:,.0f}".format(rb["store_bytes"])))
            p()
        if opens:
            p("Open loop in detail, per offered rate: service time (from the actual send), the wait before the "
              "send (all %d connections busy, or the generator not yet scheduled on the shared cores), "
              "received_at → stream entry (as in the drain), and requests without a 2xx:" % OPEN_CONNS)
            p()
            for o in opens:
                p("- %s/s: service p50 %s, p99 %s; wait before the send p99 %s, max %s (at most %s requests "
                  "waiting for a connection); received_at → stream entry p50 %s, p99 %s, max %s over %s "
                  "entries; %s answered 2xx, %d other answers, %d failed connections, %d unanswered; RSS peak "
                  "%.1f MB." % (
                      "{:,.0f}".format(o["rate"]), f_ms(o["service"]["p50"]), f_ms(o["service"]["p99"]),
                      f_ms(o["send_lag"]["p99"]), f_ms(o["send_lag"]["max"]), "{:,}".format(o["max_queue"]),
                      f_ms(o["d_p50"]), f_ms(o["d_p99"]), f_ms(o["d_max"]), "{:,}".format(o["appended"]),
                      "{:,}".format(o["ok"]), o["non2xx"], o["failed"], o["unanswered"], mb(o["rss_peak"])))
            p()
        if getattr(b, "plot_written", None):
            p("![The cost curve: requests/s and p99 against connections, closed loop; latency from the "
              "intended send time against the offered rate, open loop](%s)" % self.plot_link())
            p()
            p("The plot (`%s`, drawn by gnuplot from `bench/cost-curve.gp`): requests/s against connections "
              "(log scale), p99 against connections, and the open loop's latency against the offered rate." %
              os.path.relpath(b.plot_written, b.a.root))
            p()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--runbridge", required=True)
    ap.add_argument("--responder", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-perf", dest="perf", action="store_false")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=None,
                    help="the report (default docs/benchmarks.md; with --curve-only, stdout)")
    ap.add_argument("--curve-only", action="store_true",
                    help="only the cost curve (with --quick: a short one)")
    ap.add_argument("--no-curve", dest="curve", action="store_false")
    ap.add_argument("--openloop", default=None, help="bench/openloop binary")
    ap.add_argument("--plot", default=None,
                    help="the cost curve's PNG (default docs/img/cost-curve.png; '' for none)")
    ap.add_argument("--build-dir", default="build-bench", help="where run.sh built (for the report)")
    a = ap.parse_args()
    if a.out is None and not a.curve_only:
        a.out = os.path.join(a.root, "docs", "benchmarks.md")
    if os.path.isabs(a.build_dir) and a.build_dir.startswith(os.path.abspath(a.root) + os.sep):
        a.build_dir = os.path.relpath(a.build_dir, a.root)
    if a.plot is None:
        a.plot = os.path.join(a.root, "docs", "img", "cost-curve.png")
    b = Bench(a)

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        b.run_all()
    finally:
        b.procs.stop_all()


if __name__ == "__main__":
    main()
