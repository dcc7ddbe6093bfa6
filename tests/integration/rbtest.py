"""Test harness: the real runbridge binary, a real redis-server, real HTTP.

Everything listens on 127.0.0.1 on free ports and is stopped by the test.
Only the Python standard library is used; Redis is spoken to in RESP.
"""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("RUNBRIDGE_BIN", "runbridge")
FIXTURES = os.environ.get("RB_FIXTURES", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "qase"))
SOURCE_DIR = os.environ.get("RB_SOURCE_DIR", "../..")

EVENTS = ["run.started", "run.updated", "run.completed", "run.aborted",
          "run.deleted", "run.report_changed"]


def fixture(name):
    with open(os.path.join(FIXTURES, name + ".json"), "rb") as f:
        return f.read()


def delivery_id(body, source="qase"):
    return hashlib.sha256(source.encode() + body).hexdigest()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(fn, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


class Redis:
    """A throwaway redis-server and a minimal RESP client."""

    def __init__(self, workdir, port=None):
        self.port = port or free_port()
        self.dir = os.path.join(workdir, "redis-%d" % self.port)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self._ping(), what="redis-server")
        return self

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def _ping(self):
        try:
            return self.cmd("PING") == "PONG"
        except OSError:
            return False

    def cmd(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            out = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(out)
            return _read_reply(s.makefile("rb"))

    def stream(self, name):
        """[(entry id, {field: value})] of a whole stream."""
        entries = self.cmd("XRANGE", name, "-", "+") or []
        return [(eid, dict(zip(fv[::2], fv[1::2]))) for eid, fv in entries]


def _read_reply(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RuntimeError("bad RESP reply %r" % line)


DEFAULT_RULES = """
rules:
  - name: all-to-stream
    actions:
      - redis: { stream: "rb:{{project}}", maxlen: 1000 }
"""


class Runbridge:
    """The real daemon with its own config, rules and data directory."""

    def __init__(self, workdir, redis_port, rules=DEFAULT_RULES, extra="",
                 secret=None, env=None, source=""):
        self.dir = workdir
        self.port = free_port()
        self.data = os.path.join(workdir, "data")
        self.config = os.path.join(workdir, "runbridge.yaml")
        self.rules = os.path.join(workdir, "rules.yaml")
        self.log_path = os.path.join(workdir, "runbridge.log")
        self.env = dict(os.environ, **(env or {}))
        with open(self.rules, "w") as f:
            f.write(rules)
        cfg = ("listen: 127.0.0.1:%d\n"
               "data_dir: %s\n"
               "rules: %s\n"
               "redis:\n  url: redis://127.0.0.1:%d/0\n"
               "retry:\n  base_ms: 50\n  max_ms: 400\n"
               % (self.port, self.data, self.rules, redis_port))
        if secret is not None or source:
            cfg += "sources:\n  qase:\n    path: /webhooks/qase\n"
            if secret is not None:
                cfg += "    secret: %s\n" % secret
            cfg += source
        cfg += extra
        with open(self.config, "w") as f:
            f.write(cfg)
        self.proc = None

    def start(self, wait=True, wrapper=()):
        self.log = open(self.log_path, "ab")
        # RB_WRAPPER runs the daemon under a tool, e.g. valgrind (scripts/valgrind.sh).
        outer = os.environ.get("RB_WRAPPER", "").split()
        self.proc = subprocess.Popen(outer + list(wrapper) + [BIN, "serve", "-c", self.config],
                                     stdout=self.log, stderr=self.log,
                                     env=self.env, cwd=self.dir)
        if wait:
            wait_until(self._healthy, timeout=60 if outer else 10, what="runbridge /healthz")
        return self

    def _healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError("runbridge exited %s:\n%s" % (self.proc.returncode, self.logs()))
        try:
            return self.request("GET", "/healthz")[0] == 200
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=120):
        """Stops the daemon; returns its exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self.proc = None
        self.log.close()
        return rc

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            try:
                doc = json.loads(data) if data else None
            except ValueError:
                doc = data
            return r.status, doc
        finally:
            conn.close()

    def post(self, body, path="/webhooks/qase", headers=None, **kw):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, body=body, headers=h, **kw)

    def cli(self, *args, check=False):
        p = subprocess.run([BIN] + list(args[:1]) + ["-c", self.config] + list(args[1:]),
                           capture_output=True, text=True, env=self.env, cwd=self.dir,
                           timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("runbridge %s failed: %s%s" % (args, p.stdout, p.stderr))
        return p

    def status(self):
        out = self.cli("status", check=True).stdout
        return {k.strip(): int(v) for k, v in
                (line.split(":", 1) for line in out.splitlines() if ":" in line
                 and not line.startswith(("dead job", "source ")))}


class Case(unittest.TestCase):
    """Gives each test a temp dir and a redis-server; stops all at the end."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rbtest-")
        self.redis = Redis(self.tmp).start()
        self.bridges = []

    def tearDown(self):
        reports = []
        for b in self.bridges:
            if b.proc:
                b.stop()
            log = b.logs()
            # Sanitizer builds report memory errors, leaks and undefined
            # behaviour on stderr, which is the daemon's log.
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                           "runtime error:", "definitely lost in", "Invalid read",
                           "Invalid write", "uninitialised value"):
                if marker in log:
                    reports.append(log)
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if reports:
            self.fail("sanitizer report in the daemon's log:\n" + reports[0][-6000:])

    def bridge(self, **kw):
        b = Runbridge(self.tmp, self.redis.port, **kw)
        self.bridges.append(b)
        return b.start()

    def assertStopsCleanly(self, b):
        rc = b.stop()
        self.assertEqual(rc, 0, "exit status %s; log:\n%s" % (rc, b.logs()))
