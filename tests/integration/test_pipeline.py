"""Deliveries through the whole pipeline: normalized events in Redis
streams, exec hooks as real processes, enrichment, fan-out and order."""
import glob
import json
import os
import unittest

from rbtest import Case, EVENTS, delivery_id, fixture, wait_until

HOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hooks", "record.sh")


class Streams(Case):
    RULES = """
rules:
  - name: everything
    actions:
      - redis: { stream: "rb:{{project}}", maxlen: 1000 }
  - name: finished
    match:
      event: [run.completed, run.aborted]
      project: ID
    actions:
      - redis: { stream: "rb:finished" }
  - name: never
    match:
      project: [OTHER, "X*"]
    actions:
      - redis: { stream: "rb:never" }
"""

    def setUp(self):
        super().setUp()
        self.b = self.bridge(rules=self.RULES)

    def test_each_fixture_gives_one_entry_per_matching_rule(self):
        for ev in EVENTS:
            self.assertEqual(self.b.post(fixture(ev))[0], 202)
        wait_until(lambda: len(self.redis.stream("rb:ID")) == 6, what="6 entries")
        wait_until(lambda: len(self.redis.stream("rb:finished")) == 2, what="2 entries")
        self.assertEqual(self.redis.cmd("EXISTS", "rb:never"), 0)
        entries = self.redis.stream("rb:ID")
        # Order is promised per run (lane), not across runs: the fixtures
        # are runs 1 and 2, so each run's entries come in receipt order.
        by_type = {f["type"]: f for _, f in entries}
        self.assertEqual(sorted(by_type), sorted(EVENTS))
        for run in ("1", "2"):
            self.assertEqual([f["type"] for _, f in entries if f["run_id"] == run],
                             [ev for ev in EVENTS if by_type[ev]["run_id"] == run])
        for ev, f in ((ev, by_type[ev]) for ev in EVENTS):
            self.assertEqual(set(f), {"id", "type", "project", "run_id", "event"})
            self.assertEqual(f["id"], delivery_id(fixture(ev)))
            self.assertEqual(f["project"], "ID")
            event = json.loads(f["event"])
            self.assertEqual(event["schema"], "runbridge.event.v1")
            self.assertEqual(event["id"], f["id"])
            self.assertEqual(str(event["run_id"]), f["run_id"])
            self.assertEqual(event["raw"], json.loads(fixture(ev)))

    def test_normalized_event_shape(self):
        self.b.post(fixture("run.aborted"))
        (_, f), = wait_until(lambda: self.redis.stream("rb:ID"), what="entry")
        ev = json.loads(f["event"])
        self.assertEqual(ev["type"], "run.aborted")
        self.assertEqual(ev["source"], "qase")
        self.assertEqual(ev["project"], "ID")
        self.assertEqual(ev["run_id"], 1)
        self.assertEqual(ev["actor_id"], 40)
        self.assertEqual(ev["occurred_at"], "2022-04-21T11:22:28Z")
        self.assertRegex(ev["received_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(ev["run"]["counts"], {"total": 14, "passed": 0, "failed": 0,
                                               "blocked": 0, "skipped": 0, "untested": 14})
        self.assertEqual(ev["run"]["duration_ms"], 0)

    def test_completed_is_enriched_from_started(self):
        started = json.loads(fixture("run.started"))
        completed = json.loads(fixture("run.completed"))
        completed["payload"]["id"] = started["payload"]["id"]
        self.b.post(json.dumps(started))
        self.b.post(json.dumps(completed))
        entries = wait_until(lambda: len(self.redis.stream("rb:ID")) == 2 and self.redis.stream("rb:ID"))
        ev = json.loads(entries[1][1]["event"])
        self.assertEqual(ev["type"], "run.completed")
        self.assertEqual(ev["run"]["title"], "Test run 2022/04/21")
        self.assertEqual(ev["run"]["plan"], {"id": 3, "title": "d"})
        self.assertEqual(ev["run"]["cases_count"], 14)
        self.assertIsNone(ev["run"]["counts"]["skipped"])

    def test_duplicate_appends_nothing_again(self):
        body = fixture("run.completed")
        self.b.post(body)
        wait_until(lambda: len(self.redis.stream("rb:finished")) == 1)
        self.assertTrue(self.b.post(body)[1]["duplicate"])
        self.b.post(fixture("run.deleted"))  # a later event flushes the queue
        wait_until(lambda: len(self.redis.stream("rb:ID")) == 2)
        self.assertEqual(len(self.redis.stream("rb:finished")), 1)

    def test_events_of_one_run_arrive_in_receipt_order(self):
        for i in range(200):
            body = json.dumps({"event_name": "run.updated", "timestamp": i,
                               "payload": {"id": 7, "cases_added": i}, "project_code": "ORD"})
            self.assertEqual(self.b.post(body)[0], 202)
        entries = wait_until(lambda: len(self.redis.stream("rb:ORD")) == 200 and self.redis.stream("rb:ORD"))
        self.assertEqual([json.loads(f["event"])["raw"]["timestamp"] for _, f in entries],
                         list(range(200)))

    def test_stop_true_skips_later_rules(self):
        self.b.stop()
        b = self.bridge(rules="""
rules:
  - name: first
    match: { event: "run.*" }
    actions: [ { redis: { stream: "rb:first" } } ]
    stop: true
  - name: second
    actions: [ { redis: { stream: "rb:second" } } ]
""")
        b.post(fixture("run.started"))
        b.post(json.dumps({"event_name": "other", "payload": {"id": 1}}))
        wait_until(lambda: len(self.redis.stream("rb:second")) == 1)
        self.assertEqual(len(self.redis.stream("rb:first")), 1)
        self.assertEqual(self.redis.stream("rb:second")[0][1]["type"], "other")


class ExecHooks(Case):
    def setUp(self):
        super().setUp()
        self.out = os.path.join(self.tmp, "out")
        os.makedirs(self.out)

    def rules(self, extra_env="", timeout=10, argv=None):
        argv = argv or '["%s", "{{run.title}}", "{{run.counts.failed}}", "{{type}}"]' % HOOK
        return """
rules:
  - name: hook
    match: { event: [run.started, run.completed] }
    actions:
      - exec:
          argv: %s
          env: { OUT_DIR: "%s", RUN_ID: "{{run_id}}"%s }
          timeout_s: %d
""" % (argv, self.out, extra_env, timeout)

    def records(self, ext):
        return sorted(glob.glob(os.path.join(self.out, "*." + ext)))

    def test_hook_gets_argv_stdin_and_env(self):
        b = self.bridge(rules=self.rules())
        body = fixture("run.started")
        b.post(body)
        args, = wait_until(lambda: self.records("args"), what="hook run")
        with open(args) as f:
            self.assertEqual(f.read().splitlines(), ["Test run 2022/04/21", "", "run.started"])
        stdin = json.load(open(args.replace(".args", ".stdin")))
        self.assertEqual(stdin["id"], delivery_id(body))
        env = dict(line.split("=", 1) for line in
                   open(args.replace(".args", ".env")).read().splitlines() if "=" in line)
        self.assertEqual(json.loads(env["RUNBRIDGE_EVENT"]), stdin)
        self.assertEqual(env["RUN_ID"], "1")
        self.assertEqual(env["RUNBRIDGE_DELIVERY_ID"], delivery_id(body))
        wait_until(lambda: b.status()["done"] == 1, what="attempt recorded")

    def test_hostile_title_is_one_plain_argument(self):
        b = self.bridge(rules=self.rules())
        evil = '"; rm -rf / # $(touch %s/pwned) `id` \n../../etc' % self.tmp
        doc = json.loads(fixture("run.started"))
        doc["payload"]["title"] = evil
        b.post(json.dumps(doc))
        args, = wait_until(lambda: self.records("args"), what="hook run")
        with open(args) as f:
            self.assertEqual(f.read(), evil + "\n\nrun.started\n")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "pwned")))

    def test_failing_hook_retries_then_goes_dead_and_replays(self):
        b = self.bridge(rules=self.rules(', HOOK_EXIT: "3"'),
                        extra="retry:\n  max_attempts: 2\n  base_ms: 50\n  max_ms: 100\n")
        b.post(fixture("run.started"))
        wait_until(lambda: b.status()["dead"] == 1, what="dead letter")
        self.assertEqual(len(self.records("args")), 2)
        out = b.cli("status", "--dead", check=True).stdout
        self.assertIn("exit 3", out)
        self.assertIn("rule hook", out)
        r = b.cli("replay", "--dead", check=True)
        self.assertIn("re-queued 1 action", r.stdout)
        wait_until(lambda: len(self.records("args")) == 4, what="replayed attempts")
        wait_until(lambda: b.status()["dead"] == 1, what="dead again")
        self.assertStopsCleanly(b)

    def test_timeout_kills_the_hook(self):
        b = self.bridge(rules=self.rules(argv='["/bin/sleep", "30"]', timeout=1),
                        extra="retry:\n  max_attempts: 1\n")
        b.post(fixture("run.started"))
        wait_until(lambda: b.status()["dead"] == 1, timeout=15, what="timed-out attempt")
        self.assertIn("timed out", b.cli("status", "--dead").stdout)

    def test_missing_program_is_a_failed_attempt(self):
        b = self.bridge(rules=self.rules(argv='["/nonexistent/hook"]'),
                        extra="retry:\n  max_attempts: 1\n")
        b.post(fixture("run.started"))
        wait_until(lambda: b.status()["dead"] == 1, what="dead letter")
        # valgrind's posix_spawn reports a missing program as exit 127
        self.assertRegex(b.cli("status", "--dead").stdout, r"No such file|exit 127")

    def nice_of_hook(self, extra=""):
        argv = '["/bin/sh", "-c", "nice > \\"$OUT_DIR/$RUN_ID.nice\\""]'
        b = self.bridge(rules=self.rules(argv=argv), extra=extra)
        b.post(fixture("run.started"))
        path, = wait_until(lambda: self.records("nice"), what="hook run")
        self.assertStopsCleanly(b)
        with open(path) as f:
            return int(f.read())

    def test_hooks_yield_the_cpu_by_default(self):
        if os.nice(0) > 10:
            self.skipTest("the tests already run at a lower priority than exec.nice")
        self.assertEqual(self.nice_of_hook(), 10)

    def test_exec_nice_zero_keeps_the_daemon_priority(self):
        self.assertEqual(self.nice_of_hook("exec:\n  nice: 0\n"), os.nice(0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
