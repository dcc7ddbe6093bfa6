"""The Testomat.io fake takes what the official reporter sends, no more.

target-apis.md 2.6: @testomatio/reporter 2.17 sends JSON null for a test's
optional fields (stack, steps, example, code; rid in JUnit imports), and
takes a 403 for a wrong key.  runbridge batches its results with
batch_index, create: true and a rid per test (2.3).  A shared run waits for
every participant's finish unless one says force_finish_shared_run (2.4,
2.6), and the fake records each batch and how often each rid came, so that
tests can assert no test went twice under a new rid.
"""
import shutil
import tempfile
import unittest

from fakes import Fake

# A passed and a failed test as the official client's mocha path sends them.
CLIENT_PASSED = {"title": "Login works", "suite_title": "Auth", "status": "passed",
                 "run_time": 1532, "message": "", "stack": None, "steps": None,
                 "example": None, "code": None, "file": "test/login.spec.js",
                 "test_id": None, "suite_id": None, "files": None, "artifacts": [],
                 "meta": {}, "create": True}
CLIENT_FAILED = dict(CLIENT_PASSED, title="Logout works", status="failed",
                     message="Expected 200, got 500",
                     stack="AssertionError: expected 500 to equal 200\n    at x.js:1:1")


class TestomatClientTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fake-testomat-")
        self.fake = Fake("testomat", self.tmp).start()
        self.key = self.fake.opts["api_key"]

    def tearDown(self):
        rc = self.fake.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(rc, 0, "fake_targets exit status")

    def req(self, method, path, body=None):
        return self.fake.request(method, path, body)

    def create(self, **body):
        body.setdefault("api_key", self.key)
        status, _, doc = self.req("POST", "/api/reporter", body)
        self.assertEqual(status, 200, doc)
        return doc["uid"]

    def post_tests(self, uid, body, expect=200):
        body = dict(body, api_key=self.key)
        status, _, doc = self.req("POST", "/api/reporter/%s/testrun" % uid, body)
        self.assertEqual(status, expect, (body, doc))
        return doc

    def results(self):
        return self.fake.state()["runs"][0]["results"]

    def test_nulls_for_optional_fields_mean_absent(self):
        uid = self.create(title="R")
        self.post_tests(uid, CLIENT_PASSED)
        self.post_tests(uid, {"tests": [CLIENT_FAILED, dict(CLIENT_PASSED, rid=None,
                                                             title="JUnit import")],
                              "batch_index": 1})
        stored = self.results()
        self.assertEqual([r["title"] for r in stored],
                         ["Login works", "Logout works", "JUnit import"])
        for r in stored:
            for key in ("steps", "example", "code", "test_id", "suite_id", "rid"):
                self.assertNotIn(key, r, "a null %s is stored as absent" % key)
        self.assertNotIn("stack", stored[0])
        self.assertEqual(stored[1]["stack"], CLIENT_FAILED["stack"])
        # The record still shows the nulls as they were sent.
        rec = self.fake.requests(path="/api/reporter/%s/testrun" % uid)[0]
        self.assertIsNone(rec["body"]["stack"])
        self.assertIn('"stack": null', rec["raw"])
        # Two results without a rid are two results.
        self.post_tests(uid, dict(CLIENT_PASSED, rid=None))
        self.assertEqual(len(self.results()), 4)

    def test_everything_else_stays_strict(self):
        uid = self.create(title="R")
        for bad, msg in ((dict(CLIENT_PASSED, status=None), "status is required"),
                         (dict(CLIENT_PASSED, title=None), "title or test_id"),
                         (dict(CLIENT_PASSED, create=None), "could not be matched"),
                         (dict(CLIENT_PASSED, stack=5), "stack"),
                         (dict(CLIENT_PASSED, steps="one"), "steps"),
                         (dict(CLIENT_PASSED, steps=[None]), "steps"),
                         (dict(CLIENT_PASSED, example=3), "example"),
                         (dict(CLIENT_PASSED, rid=7), "rid"),
                         (dict(CLIENT_PASSED, run_time=-1), "run_time"),
                         (dict(CLIENT_PASSED, status="blocked"), "status")):
            doc = self.post_tests(uid, bad, expect=400)
            self.assertIn(msg, doc["message"])
            doc = self.post_tests(uid, {"tests": [CLIENT_PASSED, bad], "batch_index": 1},
                                  expect=400)
            self.assertIn("tests[1]", doc["message"])
        self.post_tests(uid, {"tests": [CLIENT_PASSED], "batch_index": None}, expect=400)
        self.assertEqual(self.results(), [], "a refused batch stores nothing")
        path = "/api/reporter/%s" % uid
        status, _, _ = self.req("PUT", path, {"api_key": self.key, "status_event": None})
        self.assertEqual(status, 400, "run fields are not the client's nullable ones")
        status, _, _ = self.req("PUT", path, {"api_key": self.key, "status_event": "finish",
                                              "tests": [dict(CLIENT_FAILED, stack=None)]})
        self.assertEqual(status, 200)
        self.assertEqual(self.fake.state()["runs"][0]["status"], "failed")

    def test_wrong_key_is_403_and_no_key_401(self):
        uid = self.create(title="R")
        calls = (("POST", "/api/reporter", {"title": "t"}),
                 ("PUT", "/api/reporter/" + uid, {"status_event": "finish"}),
                 ("POST", "/api/reporter/%s/testrun" % uid, CLIENT_PASSED),
                 ("GET", "/api/test_grep?type=tag&id=smoke", None))
        for method, path, body in calls:
            sep = "&" if "?" in path else "?"
            status, _, doc = self.req(method, path, body)
            self.assertEqual(status, 401, (method, path, doc))
            self.assertIn("message", doc)
            if body is not None:
                status, _, doc = self.req(method, path, dict(body, api_key="tstmt_wrong"))
                self.assertEqual(status, 403, (method, path, doc))
                self.assertIn("message", doc)
            status, _, _ = self.req(method, path + sep + "api_key=tstmt_wrong", body)
            self.assertEqual(status, 403, (method, path))
            status, _, _ = self.req(method, path + sep + "api_key=" + self.key, body)
            self.assertEqual(status, 200, (method, path))
        self.assertEqual(len(self.fake.state()["runs"]), 2)

    def test_batches_keep_every_test_with_its_rid(self):
        uid = self.create(title="[Qase DEMO#42] Regression", shared_run=True)

        def test(n, status="passed"):
            return {"rid": "%s-qase-DEMO-42-case-%d" % (uid, n), "title": "Case %d" % n,
                    "suite_title": "Auth / Login", "status": status, "run_time": n * 10,
                    "message": "", "stack": None, "create": True}

        batches = [[test(n) for n in range(1, 101)],
                   [test(n, "failed") for n in range(101, 201)],
                   [test(n, "skipped") for n in range(201, 238)]]
        for i, tests in enumerate(batches, 1):
            self.post_tests(uid, {"tests": tests, "batch_index": i})
        run = self.fake.state()["runs"][0]
        self.assertEqual(run["batch_indexes"], [1, 2, 3])
        self.assertEqual(len(run["results"]), 237)
        by_rid = {r["rid"]: r for r in run["results"]}
        self.assertEqual(len(by_rid), 237)
        self.assertEqual(by_rid["%s-qase-DEMO-42-case-150" % uid]["batch_index"], 2)
        self.assertEqual(by_rid["%s-qase-DEMO-42-case-150" % uid]["status"], "failed")
        self.assertTrue(all(r["create"] is True for r in run["results"]))
        # Sending batch 2 again (a retry) updates its tests, adds none.
        self.post_tests(uid, {"tests": [dict(t, status="passed") for t in batches[1]],
                              "batch_index": 2})
        run = self.fake.state()["runs"][0]
        self.assertEqual(len(run["results"]), 237)
        self.assertEqual(sum(r["status"] == "failed" for r in run["results"]), 0)
        self.assertEqual(run["batch_indexes"], [1, 2, 3, 2])
        recs = self.fake.requests(path="/api/reporter/%s/testrun" % uid)
        self.assertEqual([len(r["body"]["tests"]) for r in recs], [100, 100, 37, 100])
        self.assertEqual([r["body"]["batch_index"] for r in recs], [1, 2, 3, 2])
        status, _, _ = self.req("PUT", "/api/reporter/" + uid,
                                {"api_key": self.key, "status_event": "finish",
                                 "force_finish_shared_run": True, "tests_count": 237})
        self.assertEqual(status, 200)
        run = self.fake.state()["runs"][0]
        self.assertTrue(run["finished"])
        self.assertEqual(run["force_finish_shared_run"], True)

    def test_batches_and_sends_are_recorded_without_a_size_limit(self):
        uid = self.create(title="R", shared_run=True)
        big = [{"rid": "r%d" % n, "title": "T%d" % n, "status": "passed", "create": True}
               for n in range(250)]
        self.post_tests(uid, {"tests": big, "batch_index": 1})
        self.post_tests(uid, {"tests": big[:3], "batch_index": 2})
        self.post_tests(uid, dict(big[0], status="failed"))
        run = self.fake.state()["runs"][0]
        self.assertEqual([(b["batch_index"], b["tests"]) for b in run["batches"]],
                         [(1, 250), (2, 3)], "a single test is not a batch")
        self.assertTrue(all(b["bytes"] > 0 for b in run["batches"]))
        sends = {r["rid"]: r["sends"] for r in run["results"]}
        self.assertEqual(len(sends), 250)
        self.assertEqual((sends["r0"], sends["r1"], sends["r2"], sends["r3"]), (3, 2, 2, 1))
        for bad in ("2", 1.5, True, -1):
            doc = self.post_tests(uid, {"tests": big[:1], "batch_index": bad}, expect=400)
            self.assertIn("batch_index", doc["message"])
        self.assertEqual(len(self.fake.state()["runs"][0]["batches"]), 2)

    def test_a_joined_shared_run_waits_for_its_participants_unless_forced(self):
        uid = self.create(title="[Qase DEMO#42] Nightly", shared_run=True)
        self.assertEqual(self.create(title="[Qase DEMO#42] Nightly", shared_run=True), uid)
        self.post_tests(uid, dict(CLIENT_PASSED, rid="a"))
        path = "/api/reporter/" + uid
        status, _, _ = self.req("PUT", path, {"api_key": self.key, "status_event": "fail"})
        self.assertEqual(status, 200)
        run = self.fake.state()["runs"][0]
        self.assertFalse(run["finished"], "the join counts as a participant still running")
        self.assertEqual(run["status"], "running")
        status, _, _ = self.req("PUT", path, {"api_key": self.key, "status_event": "finish"})
        run = self.fake.state()["runs"][0]
        self.assertTrue(run["finished"])
        self.assertEqual(run["status"], "failed", "one participant's fail sticks")

        # Forced: one finish closes it, whoever joined, with its status.
        uid = self.create(title="Other", shared_run=True)
        self.create(title="Other", shared_run=True)
        self.create(title="Other", shared_run=True)
        self.post_tests(uid, dict(CLIENT_PASSED, rid="b"))
        status, _, _ = self.req("PUT", "/api/reporter/" + uid,
                                {"api_key": self.key, "status_event": "fail",
                                 "force_finish_shared_run": True})
        self.assertEqual(status, 200)
        run = [r for r in self.fake.state()["runs"] if r["uid"] == uid][0]
        self.assertEqual((run["finished"], run["status"], run["joined"]), (True, "failed", 2))

        # A run nobody joined finishes with its one participant, as before.
        uid = self.create(title="Alone", shared_run=True)
        self.req("PUT", "/api/reporter/" + uid, {"api_key": self.key, "status_event": "finish"})
        run = [r for r in self.fake.state()["runs"] if r["uid"] == uid][0]
        self.assertEqual((run["finished"], run["status"]), (True, "passed"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
