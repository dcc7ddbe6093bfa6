"""A Redis outage with appends in flight costs no attempt and duplicates
nothing: a hung server (SIGSTOP) is reported down once a command times out,
a killed one or a lost answer defers the unanswered jobs, and the re-send of
a job that was applied before its answer was lost appends nothing."""
import json
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import threading
import time
import unittest

from rbtest import Case, Redis, Runbridge, wait_until


def body(project, run, i):
    return json.dumps({"event_name": "run.updated", "timestamp": i,
                       "payload": {"id": run, "cases_added": i},
                       "project_code": project})


# Every delivery becomes FANOUT jobs, each in its own lane, pushed together:
# one batch of FANOUT appends is in flight at once.
FANOUT = 8
FANOUT_RULES = "rules:\n  - name: fan-out\n    actions:\n" + "".join(
    '      - redis: { stream: "rb:{{project}}:%d" }\n' % k for k in range(FANOUT))


def fanout(project):
    return ["rb:%s:%d" % (project, k) for k in range(FANOUT)]


class DurableRedis(Redis):
    """A redis-server whose stream and dedup keys survive SIGKILL (AOF)."""

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._serving, what="redis-server (AOF loaded)")
        return self

    def _serving(self):
        try:
            return self.cmd("PING") == "PONG"
        except (OSError, RuntimeError):  # RuntimeError: -LOADING
            return False


class LossyProxy:
    """TCP between runbridge and Redis that can swallow Redis's answers
    (the commands still run) and then reset the connections."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.lose = threading.Event()
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.mu = threading.Lock()
        self.conns = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
                u = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                return
            with self.mu:
                self.conns.append((c, u))
            threading.Thread(target=self._pump, args=(c, u, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, True), daemon=True).start()

    def _pump(self, src, dst, answers):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not (answers and self.lose.is_set()):
                    dst.sendall(data)
        except OSError:
            pass

    def reset_all(self):
        """RSTs every open connection (answers swallowed so far are lost)."""
        with self.mu:
            conns, self.conns = self.conns, []
        for c, u in conns:
            for s in (c, u):
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self.lsock.close()
        self.reset_all()


class RedisOutage(Case):
    def entries(self, stream):
        return [(json.loads(f["event"])["raw"]["payload"]["id"],
                 json.loads(f["event"])["raw"]["timestamp"], f["id"])
                for _, f in self.redis.stream(stream)]

    def assertExactlyOnceInOrder(self, stream, posted):
        """posted: {run: [timestamps in the order they were posted]}."""
        got = self.entries(stream)
        ids = [e[2] for e in got]
        self.assertEqual(len(ids), len(set(ids)), "an event is in the stream twice")
        for run, stamps in posted.items():
            self.assertEqual([t for r, t, _ in got if r == run], stamps, "run %d" % run)
        self.assertEqual(len(got), sum(len(s) for s in posted.values()))

    def jobs(self, b):
        """{job id: (state, attempts)} and the failed attempt rows, from the store."""
        db = sqlite3.connect("file:%s?mode=ro" % os.path.join(b.data, "runbridge.db"),
                             uri=True, timeout=10)
        try:
            jobs = {i: (s, a) for i, s, a in db.execute(
                "SELECT id, state, attempts FROM jobs WHERE kind = 'redis'")}
            failed = db.execute("SELECT job_id, n, detail FROM attempts WHERE ok = 0").fetchall()
        finally:
            db.close()
        return jobs, failed

    def assertNoAttemptUsed(self, b):
        st = b.status()
        self.assertEqual((st["pending"], st["retrying"], st["dead"]), (0, 0, 0))
        jobs, failed = self.jobs(b)
        self.assertEqual(failed, [], "the outage used attempts")
        self.assertEqual({a for _, a in jobs.values()}, {1},
                         "a job needed more than one attempt")

    def drained(self, b, streams, n):
        """Each of streams holds n entries and no job is left to run."""
        if any(len(self.redis.stream(s)) != n for s in streams):
            return False
        st = b.status()
        return st["pending"] + st["retrying"] == 0

    def test_sigstop_reports_redis_down_within_seconds_then_recovers_exactly_once(self):
        b = self.bridge()
        posted = {run: [] for run in (1, 2, 3, 4)}
        n = 0

        def post_round():
            nonlocal n
            for run in posted:
                self.assertEqual(b.post(body("HANG", run, n))[0], 202)
                posted[run].append(n)
            n += 1

        for _ in range(5):
            post_round()
        wait_until(lambda: self.drained(b, ["rb:HANG"], 20), what="first deliveries")
        self.assertEqual(b.request("GET", "/readyz")[1]["redis"], "up")

        pid = self.redis.proc.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            down = None
            while time.monotonic() - stopped < 6:
                post_round()  # deliveries keep flowing: 202 from the store
                if b.request("GET", "/readyz", timeout=2)[1]["redis"] == "down":
                    down = time.monotonic() - stopped
                    break
                time.sleep(0.1)
            self.assertIsNotNone(down, "/readyz still says redis up 6 s into the hang")
            for _ in range(3):
                post_round()
        finally:
            os.kill(pid, signal.SIGCONT)  # a stopped server would ignore tearDown's SIGTERM
        wait_until(lambda: b.request("GET", "/readyz")[1]["redis"] == "up", timeout=15,
                   what="redis up again after SIGCONT")
        total = sum(len(s) for s in posted.values())
        wait_until(lambda: self.drained(b, ["rb:HANG"], total), timeout=30, what="catch-up")
        self.assertExactlyOnceInOrder("rb:HANG", posted)
        self.assertNoAttemptUsed(b)
        self.assertStopsCleanly(b)

    def test_killed_with_the_pipeline_out_no_attempt_used(self):
        port = self.redis.port
        self.redis.stop()
        self.redis = DurableRedis(self.tmp, port).start()
        b = self.bridge(rules=FANOUT_RULES)
        runs = list(range(10, 22))
        posted = {run: [] for run in runs}
        for run in runs:
            self.assertEqual(b.post(body("KILL", run, 0))[0], 202)
            posted[run].append(0)
        wait_until(lambda: self.drained(b, fanout("KILL"), len(runs)), what="warm-up")

        # Hold the next batch inside Redis: read, not run, not answered.
        self.redis.cmd("CLIENT", "PAUSE", "20000", "WRITE")
        for i in (1, 2, 3):
            for run in runs:
                self.assertEqual(b.post(body("KILL", run, i))[0], 202)
                posted[run].append(i)
        wait_until(lambda: any("flags=b" in c and "cmd=evalsha" in c
                               for c in self.redis.cmd("CLIENT", "LIST").splitlines()),
                   timeout=2, interval=0.01, what="a batch in flight")
        self.redis.proc.kill()
        self.redis.proc.wait(10)
        self.redis.proc = None

        time.sleep(1.5)  # a few deferrals while Redis is gone
        for run in runs:
            self.assertEqual(b.post(body("KILL", run, 4))[0], 202)
            posted[run].append(4)
        self.assertEqual(b.request("GET", "/readyz")[1]["redis"], "down")
        self.redis = DurableRedis(self.tmp, port).start()
        total = sum(len(s) for s in posted.values())
        wait_until(lambda: self.drained(b, fanout("KILL"), total), timeout=30, what="catch-up")
        for stream in fanout("KILL"):
            self.assertExactlyOnceInOrder(stream, posted)
        self.assertNoAttemptUsed(b)
        self.assertStopsCleanly(b)

    def test_answers_lost_after_the_appends_ran_are_not_appended_twice(self):
        proxy = LossyProxy(self.redis.port)
        self.addCleanup(proxy.close)
        b = Runbridge(self.tmp, proxy.port, rules=FANOUT_RULES)
        self.bridges.append(b)
        b.start()
        runs = list(range(30, 40))
        posted = {run: [] for run in runs}
        for run in runs:
            self.assertEqual(b.post(body("LOST", run, 0))[0], 202)
            posted[run].append(0)
        wait_until(lambda: self.drained(b, fanout("LOST"), len(runs)), what="warm-up")

        # Redis runs the next appends; runbridge never hears back.
        proxy.lose.set()
        for run in runs:
            self.assertEqual(b.post(body("LOST", run, 1))[0], 202)
            posted[run].append(1)
        lost = fanout("LOST")
        wait_until(lambda: sum(len(self.redis.stream(s)) for s in lost) > FANOUT * len(runs),
                   what="appends applied without answers")
        time.sleep(0.3)
        applied = sum(len(self.redis.stream(s)) for s in lost) - FANOUT * len(runs)
        proxy.lose.clear()
        proxy.reset_all()

        total = sum(len(s) for s in posted.values())
        wait_until(lambda: self.drained(b, fanout("LOST"), total), timeout=30, what="catch-up")
        self.assertGreaterEqual(applied, FANOUT, "a whole batch ran unanswered")
        for stream in fanout("LOST"):
            self.assertExactlyOnceInOrder(stream, posted)
        self.assertNoAttemptUsed(b)
        self.assertStopsCleanly(b)

    def test_an_append_that_always_drops_the_link_still_reaches_dead_letters(self):
        # Redis closes a client whose query buffer passes the limit: this
        # append loses the link every time it is sent, which must not make
        # it (or the jobs behind it) wait forever without using attempts.
        self.redis.cmd("CONFIG", "SET", "client-query-buffer-limit", "1mb")
        b = self.bridge(extra="max_body_bytes: 4194304\n")
        poison = json.loads(body("POISON", 50, 0))
        poison["pad"] = "x" * (1536 * 1024)
        self.assertEqual(b.post(json.dumps(poison))[0], 202)
        posted = {run: [] for run in (51, 52, 53)}
        for i in range(3):
            for run in posted:
                self.assertEqual(b.post(body("POISON", run, i))[0], 202)
                posted[run].append(i)
        wait_until(lambda: b.status()["dead"] == 1, timeout=60, what="the append in dead letters")
        wait_until(lambda: self.drained(b, ["rb:POISON"], 9), what="the other appends")
        self.assertExactlyOnceInOrder("rb:POISON", posted)
        jobs, failed = self.jobs(b)
        self.assertEqual(sorted(a for _, a in jobs.values()), [1] * 9 + [10])
        self.assertIn("in a row", failed[-1][2])
        self.assertStopsCleanly(b)


if __name__ == "__main__":
    unittest.main(verbosity=2)
