"""Translated calls, end to end: the real daemon against strict fakes of
Testomat.io, QA Sphere and Squish Test Center (tests/fakes/), asserting
exactly which requests each fake received, in order."""
import json
import os
import signal
import time
import unittest

from fakes import Fake
from rbtest import Case, fixture, wait_until

RULES = """
rules:
  - name: mirror
    match: { event: ["run.*", "result.*"] }
    actions:
      - testomat: { target: main }
      - qasphere: { target: main }
      - testcenter: { target: main }
"""


def delivery(event, run=1, **payload):
    doc = json.loads(fixture(event))
    doc["payload"]["id"] = run
    doc["payload"].update(payload)
    doc["project_code"] = "DEMO"
    return json.dumps(doc)


class Targets(Case):
    def setUp(self):
        super().setUp()
        self.tm = Fake("testomat", self.tmp).start()
        self.qs = Fake("qasphere", self.tmp).start()
        self.tc = Fake("testcenter", self.tmp).start()

    def tearDown(self):
        for f in (self.tm, self.qs, self.tc):
            f.stop()
        super().tearDown()

    def config(self, tm_key=None):
        return """retry:
  max_attempts: 5
  base_ms: 50
  max_ms: 400
targets:
  testomat:
    main: { base_url: "%s", api_key: "%s", timeout_s: 1 }
  qasphere:
    main: { base_url: "%s", api_key: "%s", project: DEMO, query_plan: { folderIds: [1] } }
  testcenter:
    main: { base_url: "%s", token: "%s", project: DEMO, labels: { team: qa } }
""" % (self.tm.url, tm_key or self.tm.opts["api_key"], self.qs.url, self.qs.opts["api_key"],
       self.tc.url, self.tc.opts["token"])

    def start(self, **kw):
        return self.bridge(rules=RULES, extra=self.config(**kw))

    def calls(self, fake):
        return [(r["method"], r["path"]) for r in fake.requests()]

    def settle(self, b):
        wait_until(lambda: (lambda s: s["pending"] + s["retrying"] == 0)(b.status()),
                   timeout=30, what="every action finished")

    # -- lifecycles ----------------------------------------------------------

    def test_started_updated_completed(self):
        b = self.start()
        b.post(delivery("run.started"))
        b.post(delivery("run.updated"))
        b.post(delivery("run.completed", passed=10, failed=3, blocked=1, duration=31200))
        self.settle(b)
        self.assertEqual(b.status()["dead"], 0, b.cli("status", "--dead").stdout)

        uid = self.tm.requests()[0]
        self.assertEqual(self.calls(self.tm)[0], ("POST", "/api/reporter"))
        create = self.tm.requests()[0]["body"]
        self.assertEqual(create["title"], "[Qase DEMO#1] Test run 2022/04/21")
        self.assertEqual(create["group_title"], "Qase DEMO")
        self.assertIs(create["shared_run"], True)
        puts = self.tm.requests(method="PUT")
        self.assertEqual(len(puts), 2)
        finish = puts[-1]["body"]
        self.assertEqual(finish["status_event"], "fail")
        self.assertAlmostEqual(finish["duration"], 31.2)
        self.assertEqual((finish["tests_count"], finish["passed_count"],
                          finish["failed_count"]), (14, 10, 4))
        self.assertEqual(len(self.tm.requests(path="/api/reporter")), 1, "created twice")
        del uid

        qs = self.calls(self.qs)
        self.assertEqual(qs[0], ("POST", "/api/public/v0/project/DEMO/run"))
        self.assertTrue(qs[-1][1].endswith("/close"), qs)
        logs = [r for r in self.qs.requests() if r["path"].endswith("/log")]
        self.assertEqual(len(logs), 2, qs)
        self.assertIn("14 cases added", logs[0]["body"]["comment"])
        self.assertEqual(len(self.qs.state()["runs"]), 1)

        imports = self.tc.requests(path="/import")
        self.assertEqual(len(imports), 1)
        parts = {p["name"]: p for p in imports[0]["raw"]}
        self.assertEqual(parts["project"]["data"], "DEMO")
        xml = parts["result[]"]["data"]
        self.assertIn('tests="14"', xml)
        self.assertIn('failures="4"', xml)
        labels = [p["data"] for p in imports[0]["raw"] if p["name"] == "label[]"]
        self.assertIn("team=qa", labels)
        self.assertIn("qase.run=1", labels)
        out = b.cli("status", "--run", "DEMO#1", check=True).stdout
        self.assertIn("testomat main", out)
        self.assertIn("qasphere main", out)
        self.assertStopsCleanly(b)

    def test_report_changed_publishes_on_testomat_only(self):
        b = self.start()
        b.post(delivery("run.started", run=13))
        b.post(delivery("run.report_changed", run=13))            # visible: true
        b.post(delivery("run.report_changed", run=13, visible=False))
        self.settle(b)
        self.assertEqual(b.status()["dead"], 0, b.cli("status", "--dead").stdout)
        puts = self.tm.requests(method="PUT")
        self.assertEqual([p["body"].get("access_event") for p in puts], ["publish"])
        self.assertEqual(len(self.qs.requests()), 1)   # the create; nothing to call after
        self.assertEqual(len(self.tc.requests()), 0)   # import mode: nothing until completion

    def test_started_aborted(self):
        b = self.start()
        b.post(delivery("run.started", run=5))
        b.post(delivery("run.aborted", run=5))
        self.settle(b)
        finish = self.tm.requests(method="PUT")[-1]["body"]
        self.assertEqual(finish["status_event"], "fail")
        self.assertEqual(finish["skipped_count"], 14)
        qs = self.calls(self.qs)
        self.assertTrue(qs[-1][1].endswith("/close"))
        self.assertIn("Aborted", [r for r in self.qs.requests() if r["path"].endswith("/log")][-1]["body"]["comment"])
        self.assertEqual(len(self.tc.requests(path="/import")), 1)

    def test_completed_without_started_creates_lazily(self):
        b = self.start()
        b.post(delivery("run.completed", run=9))
        self.settle(b)
        self.assertEqual(b.status()["dead"], 0, b.cli("status", "--dead").stdout)
        self.assertEqual(self.tm.requests()[0]["body"]["title"], "Qase DEMO#9")
        self.assertEqual(self.tm.requests(method="PUT")[-1]["body"]["status_event"], "finish")
        self.assertEqual(self.qs.requests()[0]["body"]["title"], "Qase DEMO#9")

    def test_duplicate_delivery_calls_nothing_again(self):
        b = self.start()
        body = delivery("run.started", run=3)
        b.post(body)
        self.settle(b)
        before = (len(self.tm.requests()), len(self.qs.requests()), len(self.tc.requests()))
        self.assertTrue(b.post(body)[1]["duplicate"])
        b.post(delivery("run.started", run=4))     # a later event flushes the queue
        self.settle(b)
        self.assertEqual(len(self.tm.requests(path="/api/reporter")), 2)
        self.assertEqual(len(self.qs.requests()), before[1] + 1)

    def test_events_after_delete_are_ignored(self):
        b = self.start()
        b.post(delivery("run.started", run=6))
        b.post(delivery("run.deleted", run=6))
        b.post(delivery("run.completed", run=6))
        self.settle(b)
        self.assertEqual(b.status()["dead"], 0, b.cli("status", "--dead").stdout)
        puts = self.tm.requests(method="PUT")
        self.assertEqual(len(puts), 1, "finished once, for the delete")
        self.assertEqual(puts[0]["body"]["status_event"], "finish")
        self.assertEqual(len([r for r in self.qs.requests() if r["path"].endswith("/close")]), 1)
        self.assertEqual(len(self.tc.requests(path="/import")), 0)

    # -- faults ----------------------------------------------------------------

    def test_outage_loses_nothing(self):
        self.tm.control("503", count=3)
        self.qs.control("reset", count=2)
        self.tc.control("429", count=1, retry_after=1)
        b = self.start()
        t0 = time.monotonic()
        b.post(delivery("run.completed", run=7))
        self.settle(b)
        self.assertEqual(b.status()["dead"], 0, b.cli("status", "--dead").stdout)
        self.assertEqual(len(self.tm.requests(path="/api/reporter")), 4)   # 3 x 503, then 200
        self.assertEqual(len(self.qs.state()["runs"]), 1)
        imports = self.tc.requests(path="/import")
        self.assertEqual([r["status"] for r in imports], [429, 200])
        self.assertGreaterEqual(imports[1]["ts"] - imports[0]["ts"], 0.9, "Retry-After ignored")
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(b.request("GET", "/healthz")[0], 200)

    def test_stalled_target_times_out_retries_and_server_stays_responsive(self):
        self.tm.control(stall_seconds=3)
        self.tm.control("stall", count=2)
        b = self.start()
        b.post(delivery("run.started", run=12))
        worst = 0.0
        deadline = time.monotonic() + 30
        while len(self.tm.state()["runs"]) < 1 and time.monotonic() < deadline:
            t = time.monotonic()
            self.assertEqual(b.request("GET", "/healthz")[0], 200)
            worst = max(worst, time.monotonic() - t)
            time.sleep(0.05)
        self.settle(b)
        self.assertEqual(len(self.tm.state()["runs"]), 1)
        faults = [r.get("fault") for r in self.tm.requests()]
        self.assertEqual(faults.count("stall"), 2, faults)
        self.assertLess(worst, 0.5, "/healthz was slow while a target stalled")

    def test_permanent_error_goes_to_dead_letters_and_replays(self):
        b = self.start(tm_key="tstmt_wrong")
        b.post(delivery("run.started", run=8))
        wait_until(lambda: b.status()["dead"] == 1, timeout=20, what="dead letter")
        self.assertEqual(len(self.tm.requests()), 1, "a 403 must not be retried")
        out = b.cli("status", "--dead").stdout
        self.assertIn("403", out)
        self.assertNotIn("tstmt_wrong", out)
        b.stop()
        with open(b.config) as f:
            cfg = f.read().replace("tstmt_wrong", self.tm.opts["api_key"])
        with open(b.config, "w") as f:
            f.write(cfg)
        b.start()
        self.assertIn("re-queued 1", b.cli("replay", "--dead", check=True).stdout)
        wait_until(lambda: len(self.tm.state()["runs"]) == 1, timeout=20, what="replayed create")
        self.settle(b)
        self.assertEqual(b.status()["dead"], 0)

    def test_crash_between_create_and_commit_creates_once(self):
        # The fakes carry out the create but the answer never arrives, and
        # the daemon is killed before it could record anything more.
        self.tm.control("lost", count=1)
        self.qs.control("lost", count=1)
        b = self.start()
        b.post(delivery("run.started", run=11))
        self.tm.wait_requests(1)
        self.qs.wait_requests(1)
        b.stop(signal.SIGKILL)
        b.start()
        b.post(delivery("run.completed", run=11))
        self.settle(b)
        self.assertEqual(b.status()["dead"], 0, b.cli("status", "--dead").stdout)
        self.assertEqual(len(self.tm.state()["runs"]), 1, "Testomat run created twice")
        self.assertEqual(len(self.qs.state()["runs"]), 1, "QA Sphere run created twice")
        finish = self.tm.requests(method="PUT")[-1]
        self.assertIn(self.tm.state()["runs"][0]["uid"], finish["path"])
        self.assertTrue([r for r in self.qs.requests() if r["path"].endswith("/close")])

    def test_check_rejects_unknown_target(self):
        b = self.start()
        with open(b.rules, "w") as f:
            f.write("rules:\n  - name: x\n    actions:\n      - testomat: { target: nope }\n")
        p = b.cli("check")
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"rules\.yaml:4:\d+: .*unknown target 'nope'")


if __name__ == "__main__":
    unittest.main(verbosity=2)
