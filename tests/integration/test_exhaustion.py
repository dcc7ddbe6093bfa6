"""Connection exhaustion (issue 15): sockets that send nothing, or trickle a
head or a body, must not take the server from anyone else.

The attackers and the probes all come from 127.0.0.1, so nothing can tell
them apart by address: the server has to hold slow connections without
giving them a worker thread (src/http/door.h).  Every connection the server
closes is opened again at once, so the attack holds its numbers for the
whole test.
"""
import json
import multiprocessing
import resource
import selectors
import socket
import threading
import time
import unittest

from rbtest import Case

IDLE, TRICKLE = 2000, 200
HOLD_S = 30.0
PROBE_EVERY_S = 0.5

HEAD = b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\n"
HEAD_DRIP = b"X-Slow: " + b"a" * 100000
BODY = b'{"event_name":"run.started","payload":{"id":1,"title":"' + b"t" * 100 + b'"}}'
BODY_HEAD = (HEAD + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
             % len(BODY))
# one request, its answer read, then nothing (civetweb keeps the thread)
KEEP_ALIVE = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
# more than 64 KiB of a body at once, then the rest a byte at a time
BIG_LEN = 200000
BIG_HEAD = (HEAD + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % BIG_LEN + b"{" + b" " * 70000)
CHUNKED_HEAD = (HEAD + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"%x\r\n" % BIG_LEN + b"{" + b" " * 70000)
FIRST = {"idle": b"", "head": HEAD, "body": BODY_HEAD, "keep-alive": KEEP_ALIVE,
         "big": BIG_HEAD, "chunked": CHUNKED_HEAD}
DRIP = {"head": HEAD_DRIP, "body": BODY, "big": b" ", "chunked": b" "}


def raise_nofile(want):
    """Raises this process's soft descriptor limit (the daemon inherits
    it); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Siege(threading.Thread):
    """n_idle connections that send nothing and n_trickle that send one
    byte every drip_s: half a head that never ends, half a complete head
    and then its body.  A connection the server closes is opened again."""

    def __init__(self, port, n_idle, n_trickle, drip_s=0.5, kinds=None):
        super().__init__(daemon=True)
        self.port, self.drip_s = port, drip_s
        self.todo = ["idle"] * n_idle + ["head" if i % 2 else "body" for i in range(n_trickle)]
        for kind, n in (kinds or {}).items():  # FIRST and DRIP name them
            self.todo += [kind] * n
        self.sel = selectors.DefaultSelector()
        self.stopping = threading.Event()
        self.conns = {}  # socket -> [kind, connected, script offset, next drip]
        self.open = self.opened = self.closed_by_server = 0

    def _connect(self, kind):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.port))
        except BlockingIOError:
            pass
        self.conns[s] = [kind, False, 0, 0.0]
        self.sel.register(s, selectors.EVENT_WRITE)
        self.opened += 1

    def _close(self, s):
        kind, connected = self.conns.pop(s)[:2]
        self.sel.unregister(s)
        s.close()
        if connected:
            self.open -= 1
        self.todo.append(kind)

    def _connected(self, s, c, now):
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._close(s)
            return
        c[1] = True
        self.open += 1
        self.sel.modify(s, selectors.EVENT_READ)
        first = FIRST[c[0]]
        if first:
            s.setblocking(True)  # a first burst larger than one send
            s.settimeout(1.0)
            try:
                s.sendall(first)
            except OSError:
                pass
            s.setblocking(False)
        c[2], c[3] = 0, now + self.drip_s

    def _drip(self, now):
        for s, c in self.conns.items():
            if c[1] and c[0] in DRIP and now >= c[3]:
                script = DRIP[c[0]]
                try:
                    s.send(script[c[2] % len(script):c[2] % len(script) + 1])
                except OSError:
                    pass
                c[2] += 1
                c[3] = now + self.drip_s

    def run(self):
        while not self.stopping.is_set():
            for _ in range(min(len(self.todo), 200)):
                self._connect(self.todo.pop())
            now = time.monotonic()
            for key, _ in self.sel.select(timeout=0.05):
                s = key.fileobj
                c = self.conns.get(s)
                if c is None:
                    continue
                if not c[1]:
                    self._connected(s, c, now)
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self.closed_by_server += 1
                    self._close(s)
            self._drip(now)
        for s in list(self.conns):
            s.close()

    def stop(self):
        self.stopping.set()
        self.join(10)


class SiegeProcess:
    """A Siege in a child process, so that an attack that keeps reconnecting
    does not hold this process's GIL while the probes are timed."""

    def __init__(self, port, kinds):
        self._open, self._closed = multiprocessing.Value("i", 0), multiprocessing.Value("i", 0)
        self._stop = multiprocessing.Event()
        self._proc = multiprocessing.get_context("fork").Process(
            target=self._run, args=(port, kinds), daemon=True)

    def _run(self, port, kinds):
        siege = Siege(port, 0, 0, kinds=kinds)
        siege.start()
        while not self._stop.wait(0.1):
            self._open.value, self._closed.value = siege.open, siege.closed_by_server
        siege.stop()

    open = property(lambda self: self._open.value)
    closed_by_server = property(lambda self: self._closed.value)

    def start(self):
        self._proc.start()

    def stop(self):
        self._stop.set()
        self._proc.join(15)


def exchange(port, request, timeout):
    """(status or None, seconds from connect to the end of the answer,
    whether the server closed the connection after it)."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    return None, time.monotonic() - t0, True
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                chunk = s.recv(4096)
                if not chunk:
                    break
                rest += chunk
            took = time.monotonic() - t0
            s.settimeout(0.5)
            try:
                closed = s.recv(1) == b""
            except socket.timeout:
                closed = False
            except ConnectionResetError:
                closed = True
            return int(head.split(b" ")[1]), took, closed
    except OSError:
        return None, time.monotonic() - t0, False


def healthz(port):
    return exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    timeout=2.0)


def delivery(port, n):
    body = json.dumps({"event_name": "run.started", "project_code": "EX",
                       "payload": {"id": n, "title": "probe %d" % n}}).encode()
    return exchange(port, b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body), timeout=3.0)


def too_large(port):
    return exchange(port, b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{",
                    timeout=3.0)


def big_delivery(port, n, chunked):
    """A 300 KB delivery sent at once, by Content-Length or in 64 KiB
    chunks: the door must take it whole without making it wait."""
    body = json.dumps({"event_name": "run.started", "project_code": "EX",
                       "payload": {"id": n, "title": "b" * 300000}}).encode()
    head = b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" \
           b"Content-Type: application/json\r\n"
    if chunked:
        parts = [body[i:i + 65536] for i in range(0, len(body), 65536)]
        data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        return exchange(port, head + b"Transfer-Encoding: chunked\r\n\r\n" + data, 3.0)
    return exchange(port, head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body), 3.0)


def keeps_alive(port, n):
    """Whether one connection carries n requests (the server calm)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=2.0)
    f = s.makefile("rb")
    try:
        for _ in range(n):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status = f.readline().split(b" ")[1]
            head = {}
            for line in iter(f.readline, b"\r\n"):
                name, _, value = line.partition(b":")
                head[name.strip().lower()] = value.strip().lower()
            f.read(int(head[b"content-length"]))
            if status != b"200" or head.get(b"connection") == b"close":
                return False
        return True
    except (OSError, IndexError, KeyError, ValueError):
        return False
    finally:
        f.close()
        s.close()


class Exhaustion(Case):
    def setUp(self):
        # the daemon inherits it: 2,200 connections and its own files
        if raise_nofile(IDLE + TRICKLE + 2000) < IDLE + TRICKLE + 1000:
            self.skipTest("the descriptor limit is too low for this test")
        super().setUp()
        self.b = self.bridge()

    def probe(self, siege, hold_s, extra=None):
        """Probes every PROBE_EVERY_S for hold_s while siege holds its
        connections: /healthz within 100 ms, a delivery's 202 within 1 s,
        and extra(n) every 5th probe (a list of failures).  Returns the
        failures, a summary and the deliveries that got their 202."""
        failures, probes, accepted, worst_h, worst_d = [], 0, 0, 0.0, 0.0
        time.sleep(3.0)  # every attacker connected (or queued)
        held = siege.open
        end = time.monotonic() + hold_s
        while time.monotonic() < end:
            t0 = time.monotonic()
            probes += 1
            status, took, _ = healthz(self.b.port)
            worst_h = max(worst_h, took)
            if status != 200 or took >= 0.1:
                failures.append("/healthz %s in %.0f ms" % (status, 1000 * took))
            status, took, _ = delivery(self.b.port, probes)
            worst_d = max(worst_d, took)
            accepted += status == 202
            if status != 202 or took >= 1.0:
                failures.append("delivery %s in %.0f ms" % (status, 1000 * took))
            if extra and probes % 5 == 0:
                more, ok = extra(probes)
                failures += more
                accepted += ok
            time.sleep(max(0.0, PROBE_EVERY_S - (time.monotonic() - t0)))
        summary = ("%d probes over %.0f s, %d attackers connected at the start and %d at the "
                   "end, %d closed by the server; worst /healthz %.1f ms, worst delivery "
                   "%.1f ms" % (probes, hold_s, held, siege.open, siege.closed_by_server,
                                1000 * worst_h, 1000 * worst_d))
        print(summary)
        return failures, summary, accepted

    def test_keep_alive_idlers_leave_probes_fast(self):
        # 300 connections (more than http.threads) each send one request,
        # read its answer and idle; a connection closed sends it again.
        self.assertTrue(keeps_alive(self.b.port, 3), "keep-alive off for a calm server")
        siege = SiegeProcess(self.b.port, {"keep-alive": 300})
        siege.start()
        try:
            failures, summary, accepted = self.probe(siege, 20.0)
        finally:
            siege.stop()
        self.assertEqual(failures, [], summary)
        self.assertEqual(self.b.status()["deliveries"], accepted)

    def test_trickled_and_chunked_bodies_leave_probes_fast(self):
        # 200 bodies of which 70 KB came at once and the rest trickles (100
        # by Content-Length, 100 chunked); meanwhile 300 KB deliveries sent
        # whole are taken as fast as small ones.
        def big(n):
            out = []
            for chunked in (False, True):
                status, took, _ = big_delivery(self.b.port, n + 100000 * chunked, chunked)
                if status != 202 or took >= 1.0:
                    out.append("300 KB %s delivery %s in %.0f ms"
                               % ("chunked" if chunked else "sized", status, 1000 * took))
            return out, 2 - len(out)

        siege = SiegeProcess(self.b.port, {"big": 100, "chunked": 100})
        siege.start()
        try:
            failures, summary, accepted = self.probe(siege, 20.0, big)
        finally:
            siege.stop()
        self.assertEqual(failures, [], summary)
        self.assertGreaterEqual(siege.open, 190, "the attack did not hold: " + summary)
        self.assertEqual(self.b.status()["deliveries"], accepted)

    def test_idle_and_trickling_connections_leave_probes_fast(self):
        siege = Siege(self.b.port, IDLE, TRICKLE)
        siege.start()
        failures, probes, worst_h, worst_d = [], 0, 0.0, 0.0
        try:
            time.sleep(3.0)  # every attacker connected (or queued)
            held = siege.open
            end = time.monotonic() + HOLD_S
            while time.monotonic() < end:
                t0 = time.monotonic()
                probes += 1
                status, took, _ = healthz(self.b.port)
                worst_h = max(worst_h, took)
                if status != 200 or took >= 0.1:
                    failures.append("/healthz %s in %.0f ms" % (status, 1000 * took))
                status, took, _ = delivery(self.b.port, probes)
                worst_d = max(worst_d, took)
                if status != 202 or took >= 1.0:
                    failures.append("delivery %s in %.0f ms" % (status, 1000 * took))
                if probes % 10 == 0:  # a 413 closes at once, attack or not
                    status, took, closed = too_large(self.b.port)
                    if status != 413 or not closed or took >= 1.0:
                        failures.append("413: %s closed=%s in %.0f ms" % (status, closed,
                                                                           1000 * took))
                time.sleep(max(0.0, PROBE_EVERY_S - (time.monotonic() - t0)))
            still = siege.open
        finally:
            siege.stop()
        summary = ("%d probes over %.0f s, %d attackers connected at the start and %d at the "
                   "end, %d reconnections; worst /healthz %.1f ms, worst delivery %.1f ms"
                   % (probes, HOLD_S, held, still, siege.closed_by_server,
                      1000 * worst_h, 1000 * worst_d))
        print(summary)
        self.assertEqual(failures, [], summary)
        self.assertGreaterEqual(held, IDLE + TRICKLE - 10,
                                "the attack did not hold its connections: " + summary)
        self.assertEqual(self.b.status()["deliveries"], probes)


if __name__ == "__main__":
    unittest.main(verbosity=2)
