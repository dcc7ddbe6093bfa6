"""runbridge tail: follows a stream, alone or as a consumer of a group."""
import json
import signal
import subprocess
import time
import unittest

from rbtest import BIN, Case, Redis, Runbridge, fixture, wait_until

STREAM = "runbridge:DEMO"


def event(type_, run_id, **run):
    return {"schema": "runbridge.event.v1", "id": "d%d" % run_id, "source": "qase",
            "type": type_, "project": "DEMO", "run_id": run_id,
            "occurred_at": "2022-04-21T11:23:14Z",
            "received_at": "2026-11-23T08:00:00.123Z", "actor_id": 40, "run": run}


class Tail(Case):
    def setUp(self):
        super().setUp()
        # Only its config file is used: tail needs no daemon.
        self.rb = Runbridge(self.tmp, self.redis.port)
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            p.stdout.close()
            p.stderr.close()
        super().tearDown()

    def xadd(self, ev, stream=STREAM):
        return self.redis.cmd("XADD", stream, "*", "id", ev["id"], "type", ev["type"],
                              "project", ev["project"], "run_id", str(ev["run_id"]),
                              "event", json.dumps(ev))

    def tail(self, *args):
        p = self.rb.cli("tail", *args)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.splitlines()

    def tail_json(self, *args):
        return [json.loads(line) for line in self.tail(*args, "--json")]

    def start_tail(self, *args):
        p = subprocess.Popen([BIN, "tail", "-c", self.rb.config] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def wait_blocked(self, proc, cmd="xread"):
        """Until proc is blocked in cmd on the server (so an XADD is not missed)."""
        def blocked():
            if proc.poll() is not None:
                raise AssertionError("tail exited %s: %s" % (proc.returncode, proc.stderr.read()))
            return "cmd=%s " % cmd in self.redis.cmd("CLIENT", "LIST")
        wait_until(blocked, what="tail blocked in " + cmd)

    def test_json_prints_the_stream_entries_from_the_start(self):
        started = event("run.started", 42, title="Nightly")
        done = event("run.completed", 42, counts={"passed": 10, "failed": 3})
        ids = [self.xadd(started), self.xadd(done)]
        out = self.tail(STREAM, "--count", "2", "--from-start", "--json")
        self.assertEqual(len(out), 2, out)
        lines = [json.loads(line) for line in out]
        self.assertEqual([x["stream_id"] for x in lines], ids)
        self.assertEqual(lines[0], {"stream_id": ids[0], "id": "d42", "type": "run.started",
                                    "project": "DEMO", "run_id": "42", "event": started})
        self.assertEqual(lines[1]["event"]["run"]["counts"]["failed"], 3)

    def test_pretty_line_has_time_type_project_run_title_counts_and_id(self):
        sid = self.xadd(event("run.completed", 42, title="Nightly",
                              counts={"total": 14, "passed": 10, "failed": 3,
                                      "blocked": 1, "skipped": None}))
        out = self.tail(STREAM, "--count", "1", "--from-start")
        self.assertEqual(out, ['2026-11-23T08:00:00.123Z run.completed DEMO#42 "Nightly" '
                               'passed=10 failed=3 blocked=1 (%s)' % sid])

    def test_pretty_line_does_not_pass_control_characters_through(self):
        self.xadd(event("run.started", 7, title="a\x1b[2Jb"))
        out = self.tail(STREAM, "--count", "1", "--from-start")
        self.assertNotIn("\x1b", out[0])
        self.assertIn("run.started DEMO#7", out[0])

    def test_group_acknowledges_and_a_second_consumer_does_not_see_them_again(self):
        a = self.xadd(event("run.started", 1))
        b = self.xadd(event("run.completed", 1))
        first = self.tail_json(STREAM, "--group", "chat", "--consumer", "c1",
                               "--from-start", "--count", "2")
        self.assertEqual([x["stream_id"] for x in first], [a, b])
        self.assertEqual(self.redis.cmd("XPENDING", STREAM, "chat")[0], 0)
        c = self.xadd(event("run.aborted", 2))
        second = self.tail_json(STREAM, "--group", "chat", "--consumer", "c2", "--count", "1")
        self.assertEqual([x["stream_id"] for x in second], [c])
        self.assertEqual(self.redis.cmd("XPENDING", STREAM, "chat")[0], 0)

    def test_group_prints_its_own_unacknowledged_entries_first(self):
        self.redis.cmd("XGROUP", "CREATE", STREAM, "chat", "$", "MKSTREAM")
        a = self.xadd(event("run.started", 1))
        # c1 was given the entry and died before acknowledging it.
        self.redis.cmd("XREADGROUP", "GROUP", "chat", "c1", "STREAMS", STREAM, ">")
        self.assertEqual(self.redis.cmd("XPENDING", STREAM, "chat")[0], 1)
        out = self.tail_json(STREAM, "--group", "chat", "--consumer", "c1", "--count", "1")
        self.assertEqual([x["stream_id"] for x in out], [a])
        self.assertEqual(self.redis.cmd("XPENDING", STREAM, "chat")[0], 0)

    def test_group_acknowledges_a_pending_entry_trimmed_since_without_printing_it(self):
        self.redis.cmd("XGROUP", "CREATE", STREAM, "chat", "$", "MKSTREAM")
        gone = self.xadd(event("run.started", 1))
        self.redis.cmd("XREADGROUP", "GROUP", "chat", "c1", "STREAMS", STREAM, ">")
        self.redis.cmd("XDEL", STREAM, gone)
        b = self.xadd(event("run.completed", 1))
        out = self.tail_json(STREAM, "--group", "chat", "--consumer", "c1", "--count", "1")
        self.assertEqual([x["stream_id"] for x in out], [b])
        self.assertEqual(self.redis.cmd("XPENDING", STREAM, "chat")[0], 0)

    def test_group_is_created_at_the_end_of_an_existing_stream(self):
        self.xadd(event("run.started", 1))
        p = self.start_tail(STREAM, "--group", "g", "--consumer", "c", "--count", "1", "--json")
        self.wait_blocked(p, "xreadgroup")
        b = self.xadd(event("run.completed", 1))
        out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual([json.loads(x)["stream_id"] for x in out.splitlines()], [b])

    def test_follows_new_entries_and_exits_0_on_sigterm(self):
        self.xadd(event("run.started", 1))          # before tail: not printed
        p = self.start_tail(STREAM, "--json")
        self.wait_blocked(p)
        b = self.xadd(event("run.completed", 1))
        self.assertEqual(json.loads(p.stdout.readline())["stream_id"], b)
        self.wait_blocked(p)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 0, p.stderr.read())
        # The blocking read is cut short, not waited out (BLOCK is 5 s).
        self.assertLess(time.monotonic() - t0, 3)

    def test_reconnects_when_redis_comes_back(self):
        p = self.start_tail(STREAM, "--json", "--count", "1")
        self.wait_blocked(p)
        port = self.redis.port
        self.redis.stop()
        time.sleep(0.5)
        self.redis = Redis(self.tmp, port).start()
        self.xadd(event("run.completed", 9))
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(json.loads(out)["run_id"], "9")
        self.assertIn("retrying", err)

    def test_shows_what_the_daemon_appends(self):
        b = self.bridge()
        self.assertEqual(b.post(fixture("run.started"))[0], 202)
        stream = wait_until(lambda: self.redis.cmd("KEYS", "rb:*"), what="a stream")[0]
        out = self.tail_json(stream, "--from-start", "--count", "1")
        self.assertEqual(out[0]["type"], "run.started")
        self.assertEqual(out[0]["event"]["schema"], "runbridge.event.v1")
        self.assertEqual(str(out[0]["event"]["run_id"]), out[0]["run_id"])

    def test_help_and_bad_usage(self):
        p = subprocess.run([BIN, "tail", "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        self.assertTrue(p.stdout.startswith("usage: runbridge tail"), p.stdout)
        for args in ([], [STREAM, "--group", "g"], [STREAM, "--count", "0"],
                     [STREAM, "--bogus"]):
            p = self.rb.cli("tail", *args)
            self.assertEqual(p.returncode, 2, (args, p.stdout, p.stderr))
            self.assertIn("usage: runbridge tail", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
