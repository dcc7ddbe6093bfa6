"""The fakes are strict: each documented contract point is enforced.

Drives tests/fakes/fake_targets directly (no runbridge, no Redis) so that a
test of runbridge against a fake can trust a 2xx to mean "the real API
would have accepted this".
"""
import base64
import http.client
import re
import shutil
import socket
import tempfile
import time
import unittest

from fakes import Fake, multipart

JUNIT = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
         b'<testsuites tests="2" failures="1" time="1.25">\n'
         b'  <testsuite name="Qase DEMO#42 &amp; more" tests="2" failures="1" skipped="0" time="1.25">\n'
         b'    <testcase name="Login works" classname="Auth" time="0.5"/>\n'
         b'    <testcase name="Logout works" classname="Auth" time="0.75">'
         b'<failure message="Expected 200"><![CDATA[got <500>]]></failure></testcase>\n'
         b'  </testsuite>\n'
         b'</testsuites>\n')


class FakeCase(unittest.TestCase):
    kind = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fakes-")
        self.fake = Fake(self.kind, self.tmp).start()

    def tearDown(self):
        rc = self.fake.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(rc, 0, "fake_targets exit status")

    def req(self, method, path, body=None, **kw):
        return self.fake.request(method, path, body, **kw)

    def assertStatus(self, expected, got, what=""):
        status, _, doc = got
        self.assertEqual(status, expected, "%s -> %r" % (what, doc))
        return doc


class TestomatTest(FakeCase):
    kind = "testomat"

    def key(self):
        return self.fake.opts["api_key"]

    def create(self, **body):
        body.setdefault("api_key", self.key())
        return self.assertStatus(200, self.req("POST", "/api/reporter", body))

    def test_auth_key_in_query_or_body(self):
        # No key: 401; a wrong key: 403, what the official client expects.
        self.assertStatus(401, self.req("POST", "/api/reporter", {"title": "t"}))
        self.assertStatus(403, self.req("POST", "/api/reporter", {"api_key": "tstmt_wrong"}))
        self.assertStatus(403, self.req("POST", "/api/reporter?api_key=tstmt_wrong", {}))
        # Both given: both must match.
        self.assertStatus(403, self.req("POST", "/api/reporter?api_key=" + self.key(),
                                        {"api_key": "tstmt_wrong"}))
        doc = self.assertStatus(403, self.req("POST", "/api/reporter", {"api_key": 42}))
        self.assertIn("message", doc)
        self.assertStatus(200, self.req("POST", "/api/reporter?api_key=" + self.key(), {}))
        self.assertStatus(200, self.req("POST", "/api/reporter", {"api_key": self.key()}))
        self.assertStatus(200, self.req("POST", "/api/reporter?api_key=" + self.key()))

    def test_unknown_paths_and_methods(self):
        q = "?api_key=" + self.key()
        self.assertStatus(404, self.req("GET", "/api/reporter" + q))
        self.assertStatus(404, self.req("POST", "/api/reporters" + q, {}))
        self.assertStatus(404, self.req("POST", "/api/reporter/abc/results" + q, {}))
        self.assertStatus(404, self.req("PUT", "/api/reporter/00000000" + q, {}))
        self.assertStatus(404, self.req("POST", "/api/reporter/00000000/testrun" + q,
                                        {"title": "x", "status": "passed", "create": True}))

    def test_create_validates_types(self):
        k = self.key()
        for bad in ({"title": 5}, {"shared_run": "yes"}, {"env": ["a"]}, {"kind": "robot"},
                    {"access_event": "private"}, {"tags": "a,b"}, {"shared_run_timeout": -1},
                    {"status": "running"}):
            bad["api_key"] = k
            doc = self.assertStatus(400, self.req("POST", "/api/reporter", bad), bad)
            self.assertIn("message", doc)
        self.assertStatus(400, self.req("POST", "/api/reporter?api_key=" + k, [1, 2]))
        self.assertStatus(400, self.req("POST", "/api/reporter?api_key=" + k, "{bad json",
                                        headers={"Content-Type": "application/json"}))
        self.assertStatus(415, self.req("POST", "/api/reporter?api_key=" + k, "{}",
                                        headers={"Content-Type": "text/plain"}))

    def test_create_returns_uid_and_shared_runs_join(self):
        a = self.create(title="Run A")
        self.assertRegex(a["uid"], r"^[0-9a-f]{8}$")
        self.assertIn(a["uid"], a["url"])
        self.assertIsNone(a["public_url"])
        b = self.create(title="Run A")
        self.assertNotEqual(a["uid"], b["uid"], "non-shared runs never join")
        s1 = self.create(title="Shared", shared_run=True)
        s2 = self.create(title="Shared", shared_run=True)
        self.assertEqual(s1["uid"], s2["uid"])
        s3 = self.create(title="Other", shared_run=True)
        self.assertNotEqual(s1["uid"], s3["uid"])
        p = self.create(title="Public", access_event="publish")
        self.assertTrue(p["public_url"])
        runs = {r["uid"]: r for r in self.fake.state()["runs"]}
        self.assertEqual(runs[s1["uid"]]["joined"], 1)
        self.assertEqual(len(runs), 5)

    def test_scheduled_run_starts_with_its_first_result(self):
        uid = self.create(title="Later", status="scheduled", kind="manual")["uid"]
        self.assertEqual(self.fake.state()["runs"][0]["status"], "scheduled")
        # Unknown fields never touch the fake's own bookkeeping.
        self.assertStatus(200, self.req("PUT", "/api/reporter/%s?api_key=%s" % (uid, self.key()),
                                        {"finished": True, "env": "staging"}))
        self.assertStatus(200, self.req("POST", "/api/reporter/%s/testrun" % uid,
                                        {"api_key": self.key(), "title": "a",
                                         "status": "passed", "create": True}))
        run = self.fake.state()["runs"][0]
        self.assertEqual((run["status"], run["finished"], run["env"], run["kind"]),
                         ("running", False, "staging", "manual"))

    def test_results_are_validated(self):
        uid = self.create(title="R")["uid"]
        path = "/api/reporter/%s/testrun?api_key=%s" % (uid, self.key())
        ok = {"title": "Login", "status": "passed", "create": True}
        for bad, msg in (({"title": "x", "status": "pass", "create": True}, "status"),
                         ({"status": "passed", "create": True}, "title or test_id"),
                         ({"title": "x", "create": True}, "status is required"),
                         ({"title": "x", "status": "passed", "run_time": "1", "create": True},
                          "run_time"),
                         ({"title": "x", "status": "passed", "run_time": -1, "create": True},
                          "run_time"),
                         ({"title": "x", "status": "passed", "rid": 7, "create": True}, "rid"),
                         ({"title": "x", "status": "passed", "create": "true"}, "create"),
                         ({"title": "x", "status": "passed"}, "could not be matched")):
            doc = self.assertStatus(400, self.req("POST", path, bad), bad)
            self.assertIn(msg, doc["message"])
        self.assertStatus(400, self.req("POST", path, {"tests": ok}))
        self.assertStatus(400, self.req("POST", path, {"tests": [ok], "batch_index": 0}))
        doc = self.assertStatus(400, self.req("POST", path, {"tests": [ok, {"title": "b"}]}))
        self.assertIn("tests[1]", doc["message"])
        self.assertStatus(200, self.req("POST", path, ok))
        self.assertStatus(200, self.req("POST", path, {"title": "T", "status": "failed",
                                                       "test_id": "@Ta0b0c0d0"}))
        batch = {"tests": [dict(ok, rid="r1", run_time=1532),
                           {"title": "Logout", "status": "failed", "rid": "r2",
                            "create": True, "message": "boom"}],
                 "batch_index": 1}
        self.assertStatus(200, self.req("POST", path, batch))
        # Same rid again: the result is replaced, not added.
        self.assertStatus(200, self.req("POST", path, {"tests": [dict(ok, rid="r1",
                                                                    status="skipped")],
                                                       "batch_index": 2}))
        run = self.fake.state()["runs"][0]
        self.assertEqual(len(run["results"]), 4)
        r1 = [r for r in run["results"] if r.get("rid") == "r1"]
        self.assertEqual([r["status"] for r in r1], ["skipped"])
        self.assertEqual(run["batch_indexes"], [1, 2])

    def test_finish_is_validated_and_kept(self):
        uid = self.create(title="R")["uid"]
        path = "/api/reporter/%s?api_key=%s" % (uid, self.key())
        for bad in ({"status_event": "finished"}, {"status_event": "done"},
                    {"duration": "25.5"}, {"duration": -1}, {"tests_count": 1.5},
                    {"passed_count": -1}, {"failed_count": "2"}, {"skipped_count": None},
                    {"access_event": "public"}, {"tests": {}}, {"detach": 1}):
            self.assertStatus(400, self.req("PUT", path, bad), bad)
        self.assertStatus(400, self.req("PUT", path + "&shared_run=yes", {}))
        self.assertEqual(self.fake.state()["runs"][0]["finished"], False)
        rpath = "/api/reporter/%s/testrun?api_key=%s" % (uid, self.key())
        self.assertStatus(200, self.req("POST", rpath, {"title": "a", "status": "failed",
                                                        "create": True}))
        self.assertStatus(200, self.req("PUT", path, {"status_event": "finish_parallel"}))
        self.assertFalse(self.fake.state()["runs"][0]["finished"])
        self.assertStatus(200, self.req("PUT", path, {
            "status_event": "finish", "duration": 312.4, "tests_count": 1,
            "passed_count": 0, "failed_count": 1, "skipped_count": 0,
            "access_event": "publish"}))
        run = self.fake.state()["runs"][0]
        self.assertTrue(run["finished"])
        self.assertEqual(run["status"], "failed")
        self.assertTrue(run["published"])
        self.assertEqual(run["status_events"], ["finish_parallel", "finish"])
        self.assertEqual(run["duration"], 312.4)
        self.assertEqual(run["failed_count"], 1)

    def test_every_request_is_recorded(self):
        self.req("POST", "/api/reporter?api_key=nope", {"title": "x"},
                 headers={"X-Trace": "1"})
        self.create(title="ok")
        self.req("GET", "/nowhere")
        self.fake.state()
        recs = self.fake.requests()
        self.assertEqual([r["status"] for r in recs], [403, 200, 404])
        first = recs[0]
        self.assertEqual(first["method"], "POST")
        self.assertEqual(first["path"], "/api/reporter")
        self.assertEqual(first["query"], "api_key=nope")
        self.assertEqual(first["body"], {"title": "x"})
        self.assertEqual(first["raw"], '{"title": "x"}')
        self.assertEqual(first["headers"]["x-trace"], "1")
        self.assertEqual(first["headers"]["content-type"], "application/json")
        self.assertIsNone(recs[2]["body"])


class QASphereTest(FakeCase):
    kind = "qasphere"

    def setUp(self):
        super().setUp()
        # These tests send more than 20 requests a second; only
        # test_rate_limit keeps the real limit.
        if self._testMethodName != "test_rate_limit":
            self.fake.control(rate_limit=0)

    def run_body(self, title="Qase DEMO#42", **kw):
        body = {"title": title, "type": "static_struct", "queryPlans": [{"folderIds": [12]}]}
        body.update(kw)
        return body

    def create(self, **kw):
        return self.assertStatus(201, self.req("POST", "/project/DEMO/run", self.run_body(**kw)))

    def test_auth(self):
        key = self.fake.opts["api_key"]
        for h in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Token " + key},
                  {"Authorization": key}, {"Authorization": "Bearer"}):
            doc = self.assertStatus(401, self.req("GET", "/project/DEMO/run", auth=False,
                                                  headers=h), h)
            self.assertIn("message", doc)
        for scheme in ("Bearer", "ApiKey"):
            self.assertStatus(200, self.req("GET", "/project/DEMO/run", auth=False,
                                            headers={"Authorization": scheme + " " + key}))

    def test_paths(self):
        self.assertStatus(404, self.req("GET", "/project/OTHER/run"))
        self.assertStatus(404, self.req("POST", "/project/OTHER/run", self.run_body()))
        self.assertStatus(404, self.req("GET", "/project/DEMO/runs"))
        self.assertStatus(404, self.req("GET", "/run", prefix=True))
        self.assertStatus(404, self.req("POST", "/project/DEMO/run/99/close"))
        self.assertStatus(404, self.req("POST", "/project/DEMO/run/abc/close"))
        self.assertStatus(404, self.req("GET", "/project/DEMO/run", prefix=False))

    def test_create_validation(self):
        cases = [
            ({"type": "static", "queryPlans": [{"folderIds": [1]}]}, "title is required"),
            (self.run_body(title=""), "1-255"),
            (self.run_body(title="x" * 256), "1-255"),
            (self.run_body(title=7), "title"),
            (self.run_body(description="d" * 513), "512"),
            (self.run_body(type="dynamic"), "type"),
            ({"title": "t", "queryPlans": [{"folderIds": [1]}]}, "type is required"),
            ({"title": "t", "type": "static"}, "queryPlans is required"),
            (self.run_body(queryPlans=[]), "at least one"),
            (self.run_body(queryPlans={"folderIds": [1]}), "queryPlans"),
            (self.run_body(queryPlans=[{"folderIds": [1]}, {"tagIds": [2]}]), "only one"),
            (self.run_body(queryPlans=[{}]), "each plan"),
            (self.run_body(queryPlans=[{"folderIds": []}]), "each plan"),
            (self.run_body(queryPlans=[{"folderIds": ["12"]}]), "folderIds"),
            (self.run_body(queryPlans=[{"tcaseIds": [1]}]), "tcaseIds"),
            (self.run_body(queryPlans=[{"priorities": ["urgent"]}]), "priorities"),
            (self.run_body(type="live", queryPlans=[{"tagIds": [1]}]), "folderId"),
            (self.run_body(type="live", queryPlans=[{"folderIds": [1], "tcaseIds": ["a"]}]),
             "tcaseIds"),
            (self.run_body(milestoneId="5"), "milestoneId"),
        ]
        for body, msg in cases:
            doc = self.assertStatus(400, self.req("POST", "/project/DEMO/run", body), body)
            self.assertIn(msg, doc["message"])
        self.assertStatus(415, self.req("POST", "/project/DEMO/run", "{}",
                                        headers={"Content-Type": "text/plain"}))
        self.assertStatus(400, self.req("POST", "/project/DEMO/run", "[",
                                        headers={"Content-Type": "application/json"}))
        live = self.run_body(title="live", type="live",
                             queryPlans=[{"folderIds": [1]}, {"folderIds": [2], "tagIds": [3]}])
        self.assertStatus(201, self.req("POST", "/project/DEMO/run", live))
        self.assertEqual(self.create(title="t" * 255, description="d" * 512)["id"], 2)

    def test_duplicate_title_names_the_conflicting_run(self):
        first = self.create()["id"]
        self.create(title="other")
        doc = self.assertStatus(400, self.req("POST", "/project/DEMO/run", self.run_body()))
        m = re.search(r"conflicting run id: (\d+)$", doc["message"])
        self.assertTrue(m, doc)
        self.assertEqual(int(m.group(1)), first)
        self.fake.control(conflict_status=403)
        self.assertStatus(403, self.req("POST", "/project/DEMO/run", self.run_body()))
        # Closed runs still hold their title.
        self.assertStatus(200, self.req("POST", "/project/DEMO/run/%d/close" % first))
        self.assertStatus(403, self.req("POST", "/project/DEMO/run", self.run_body()))

    def test_log_close_and_list(self):
        rid = self.create()["id"]
        base = "/project/DEMO/run/%d" % rid
        self.assertStatus(400, self.req("POST", base + "/log", {"comment": ""}))
        self.assertStatus(400, self.req("POST", base + "/log", {}))
        self.assertStatus(400, self.req("POST", base + "/log", {"comment": 5}))
        doc = self.assertStatus(200, self.req("POST", base + "/log", {"comment": "<p>hi</p>"}))
        self.assertIsInstance(doc["id"], str)
        runs = self.assertStatus(200, self.req("GET", "/project/DEMO/run"))["runs"]
        self.assertEqual([(r["id"], r["closed"]) for r in runs], [(rid, False)])
        doc = self.assertStatus(200, self.req("POST", base + "/close"))
        self.assertEqual(doc, {"message": "Run closed"})
        self.assertStatus(400, self.req("POST", base + "/close"))
        self.fake.control(close_closed_status=200)
        self.assertStatus(200, self.req("POST", base + "/close"))
        self.assertEqual(self.assertStatus(200, self.req("GET", "/project/DEMO/run?closed=false")),
                         {"runs": []})
        runs = self.assertStatus(200, self.req("GET", "/project/DEMO/run?closed=true"))["runs"]
        self.assertTrue(runs[0]["closed"])
        self.assertTrue(runs[0]["closedAt"])
        self.assertStatus(400, self.req("GET", "/project/DEMO/run?closed=yes"))

    def test_results(self):
        rid = self.create(queryPlans=[{"tcaseIds": ["0194f0c2a7", "0194f0c2a8"]}])["id"]
        path = "/project/DEMO/run/%d/result/batch" % rid
        good = {"tcaseId": "0194f0c2a7", "status": "passed", "comment": "<p>ok</p>",
                "timeTaken": 1532}
        for bad in ({"items": []}, {"items": {}}, {},
                    {"items": [dict(good, status="pass")]},
                    {"items": [dict(good, timeTaken=1.5)]},
                    {"items": [dict(good, timeTaken=-1)]},
                    {"items": [dict(good, timeTaken="1532")]},
                    {"items": [{k: v for k, v in good.items() if k != "comment"}]},
                    {"items": [dict(good, tcaseId="")]},
                    {"items": [dict(good, tcaseId=17)]},
                    {"items": [dict(good, tcaseId="not-in-run")]},
                    {"items": [dict(good, links=[{"text": "no url"}])]}):
            self.assertStatus(400, self.req("POST", path, bad), bad)
        doc = self.assertStatus(200, self.req("POST", path, {"items": [
            good, dict(good, tcaseId="0194f0c2a8", status="custom2", timeTaken=None,
                       links=[{"text": "bug", "url": "https://x"}])]}))
        self.assertEqual(len(doc["ids"]), 2)
        self.assertTrue(all(isinstance(i, int) for i in doc["ids"]))
        single = "/project/DEMO/run/%d/tcase/0194f0c2a8/result" % rid
        self.assertStatus(200, self.req("POST", single, {"status": "blocked", "comment": ""}))
        self.assertStatus(400, self.req("POST", single, {"status": "blocked"}))
        run = self.fake.state()["runs"][0]
        self.assertEqual(len(run["results"]), 3)
        self.req("POST", "/project/DEMO/run/%d/close" % rid)
        self.assertStatus(400, self.req("POST", path, {"items": [good]}))

    def test_rate_limit(self):
        start = time.monotonic()
        statuses, retry = [], None
        for _ in range(25):
            status, headers, doc = self.req("GET", "/project/DEMO/run")
            statuses.append(status)
            if status == 429 and retry is None:
                retry = headers.get("retry-after")
                self.assertEqual(doc, {"message": "Too many requests, please try again later."})
        elapsed = time.monotonic() - start
        if elapsed < 0.9:
            self.assertEqual(statuses, [200] * 20 + [429] * 5)
        else:
            self.assertIn(429, statuses)
        self.assertEqual(retry, "1")
        time.sleep(1.1)
        self.assertStatus(200, self.req("GET", "/project/DEMO/run"))
        # 429s are recorded too.
        self.assertEqual(sum(1 for r in self.fake.requests() if r["status"] == 429),
                         statuses.count(429))
        self.fake.control(rate_limit=0)
        self.assertNotIn(429, [self.req("GET", "/project/DEMO/run")[0] for _ in range(30)])


class TestCenterTest(FakeCase):
    kind = "testcenter"

    def suite(self, **kw):
        body = {"project": "DEMO", "batch": "Qase DEMO#42",
                "labels": [{"key": "qase.run", "value": "42"}], "test": {"name": "Regression"}}
        body.update(kw)
        return self.assertStatus(201, self.req("POST", "/suites", body))

    def child(self, kind, parent, name="child", status=201):
        doc = self.assertStatus(status, self.req("POST", "/" + kind,
                                                 {"runId": parent, "test": {"name": name}}),
                                (kind, parent))
        return doc.get("runId") if status == 201 else doc

    def test_auth(self):
        o = self.fake.opts
        basic = base64.b64encode(("%s:%s" % (o["user"], o["password"])).encode()).decode()
        wrong = base64.b64encode(("%s:nope" % o["user"]).encode()).decode()
        body = {"project": "P", "test": {"name": "S"}}
        for h in ({}, {"Authorization": "Token nope"}, {"Authorization": "Basic " + wrong},
                  {"Authorization": "Bearer " + o["token"]}):
            doc = self.assertStatus(401, self.req("POST", "/suites", body, auth=False, headers=h))
            self.assertEqual(doc["code"], 401)
            self.assertIn("message", doc)
        self.assertStatus(201, self.req("POST", "/suites", body, auth=False,
                                        headers={"Authorization": "Basic " + basic}))
        self.assertStatus(201, self.req("POST", "/suites", body))

    def test_paths(self):
        self.assertStatus(404, self.req("POST", "/testcases", {"runId": 1, "test": {"name": "x"}}))
        self.assertStatus(404, self.req("GET", "/suites"))
        self.assertStatus(404, self.req("POST", "/suites", {}, prefix=False))

    def test_suite_validation_and_report_rules(self):
        for body, msg in (({"test": {"name": "S"}}, "project"),
                          ({"project": "P"}, "test is required"),
                          ({"project": "P", "test": {}}, "test.name"),
                          ({"project": "P", "test": {"name": ""}}, "test.name"),
                          ({"project": "P", "test": "S"}, "test"),
                          ({"project": "P", "test": {"name": "S"}, "reportId": "1"}, "reportId"),
                          ({"project": "P", "test": {"name": "S"}, "reportId": 99}, "report 99"),
                          ({"project": "P", "test": {"name": "S"}, "labels": [{"key": "k"}]},
                           "labels"),
                          ({"project": "P", "test": {"name": "S"}, "labels": ["k=v"]}, "labels")):
            doc = self.assertStatus(400, self.req("POST", "/suites", body), body)
            self.assertEqual(doc["code"], 400)
            self.assertIn(msg, doc["message"])
        self.assertStatus(415, self.req("POST", "/suites", '{"project":"P"}',
                                        headers={"Content-Type": "text/plain"}))
        a = self.suite()
        self.assertEqual(set(a), {"project", "batch", "reportId", "runId"})
        same = self.suite(test={"name": "Second"})
        self.assertEqual(same["reportId"], a["reportId"], "same batch + labels: same report")
        other = self.suite(labels=[{"key": "qase.run", "value": "43"}])
        self.assertNotEqual(other["reportId"], a["reportId"])
        by_id = self.assertStatus(201, self.req("POST", "/suites",
                                                {"reportId": a["reportId"], "test": {"name": "T"}}))
        self.assertEqual((by_id["reportId"], by_id["project"]), (a["reportId"], "DEMO"))
        fresh = self.assertStatus(201, self.req("POST", "/suites",
                                                {"project": "DEMO", "test": {"name": "T"}}))
        self.assertNotEqual(fresh["batch"], a["batch"])
        self.assertNotEqual(fresh["reportId"], a["reportId"])

    def test_hierarchy_rule(self):
        s = self.suite()["runId"]
        c1 = self.child("cases", s, "Login works")
        self.assertStatus(204, self.req("POST", "/events",
                                        {"runId": c1, "type": "PASS", "message": "ok"}))
        sec = self.child("sections", c1, "setup")
        c2 = self.child("cases", s, "Logout works")       # closes c1 and sec
        doc = self.child("sections", c1, status=400)
        self.assertEqual(doc["code"], 400)
        self.assertIn("closed", doc["message"])
        self.child("sections", sec, status=400)
        doc = self.assertStatus(400, self.req("POST", "/events", {"runId": c1, "type": "FAIL"}))
        self.assertIn("closed", doc["message"])
        self.assertStatus(204, self.req("POST", "/events", {"runId": c2, "type": "FAIL"}))
        self.assertStatus(204, self.req("POST", "/events", {"runId": s, "type": "LOG"}))
        # Parent kinds: case<suite, feature<suite|case, scenario<feature, step<scenario.
        self.child("cases", c2, status=400)
        self.child("scenarios", s, status=400)
        self.child("steps", c2, status=400)
        f = self.child("features", c2)
        sc = self.child("scenarios", f)
        st = self.child("steps", sc)
        self.child("sections", st)
        self.child("runs", s, status=404)
        self.child("cases", 999, status=400)
        # A new suite closes the whole previous tree.
        s2 = self.suite(test={"name": "Next"})["runId"]
        self.child("cases", s, status=400)
        self.assertStatus(400, self.req("POST", "/events", {"runId": st, "type": "LOG"}))
        self.child("cases", s2)
        report = self.fake.state()["reports"][0]
        closed = {r["runId"]: r["closed"] for r in report["runs"]}
        self.assertFalse(closed[s2])
        self.assertTrue(closed[s] and closed[c1] and closed[c2])

    def test_events(self):
        s = self.suite()["runId"]
        for bad, msg in (({"runId": s}, "type is required"),
                         ({"type": "PASS"}, "runId is required"),
                         ({"runId": str(s), "type": "PASS"}, "runId"),
                         ({"runId": s, "type": "pass"}, "type must be"),
                         ({"runId": s, "type": "STARTVIDEO"}, "type must be"),
                         ({"runId": s, "type": "LOG", "message": 1}, "message"),
                         ({"runId": s, "type": "LOG", "trace": [{"uri": "a"}]}, "trace"),
                         ({"runId": s, "type": "LOG", "location": {"line": 1}}, "location"),
                         ({"runId": s, "type": "FAIL", "vp": {"uri": "v"}, "attachment": "a"},
                          "mutually exclusive"),
                         ({"runId": s, "type": "ATTACHMENT", "attachment": "log.txt"},
                          "not uploaded")):
            doc = self.assertStatus(400, self.req("POST", "/events", bad), bad)
            self.assertIn(msg, doc["message"])
        status, _, doc = self.req("POST", "/events", {
            "runId": s, "type": "FAIL", "message": "m", "detail": "d",
            "trace": [{"uri": "t.py", "line": 3}], "location": {"uri": "t.py", "line": 3}})
        self.assertEqual((status, doc), (204, None))
        body, ctype = multipart(
            fields=[("eventData", '[{"runId": %d, "type": "FAIL", "screenshot": "s.png"},'
                                  ' {"runId": %d, "type": "LOG", "attachment": "missing"},'
                                  ' {"runId": %d, "type": "LOG", "screenshot": "log.txt"}]'
                     % (s, s, s))],
            files=[("attachments[]", "s.png", "image/png", b"\x89PNG..."),
                   ("attachments[]", "log.txt", "text/plain", b"log")])
        doc = self.assertStatus(207, self.req("POST", "/events", body,
                                              headers={"Content-Type": ctype}))
        self.assertEqual([d["code"] for d in doc], [201, 400, 400])
        body, ctype = multipart(fields=[("eventData", "{}")])
        self.assertStatus(400, self.req("POST", "/events", body, headers={"Content-Type": ctype}))

    def imp(self, fields=(("project", "DEMO"), ("batch", "Qase DEMO#42")), files=(),
            path="/import"):
        body, ctype = multipart(fields, files)
        return self.req("POST", path, body, prefix=False, headers={"Content-Type": ctype})

    def test_import(self):
        xml = ("result[]", "qase-42.xml", "application/xml", JUNIT)
        doc = self.assertStatus(200, self.imp(
            fields=[("project", "DEMO"), ("batch", "B"), ("label[]", "qase.run=42"),
                    ("label[]", ".reference.url=[Qase](https://app.qase.io/run/DEMO/42)")],
            files=[xml]))
        self.assertEqual(doc, {})
        self.assertStatus(200, self.imp(files=[xml], path="/upload/import"))
        imports = self.fake.state()["imports"]
        self.assertEqual(imports[0]["labels"], [".reference.url=[Qase](https://app.qase.io/run/DEMO/42)",
                                                "qase.run=42"])
        suites = imports[0]["files"][0]["suites"]
        self.assertEqual([(x["element"], x["tests"], x["failures"]) for x in suites],
                         [("testsuites", 2, 1), ("testsuite", 2, 1)])
        rec = self.fake.requests(path="/import")[0]
        parts = {p["name"]: p for p in rec["raw"]}
        self.assertEqual(parts["result[]"]["filename"], "qase-42.xml")
        self.assertEqual(parts["result[]"]["content_type"], "application/xml")
        self.assertIn("<testsuites", parts["result[]"]["data"])
        self.assertIsNone(rec["body"])

    def test_import_rejects(self):
        def bad(xml, msg, ctype="text/xml", filename="r.xml"):
            doc = self.assertStatus(400, self.imp(files=[("result[]", filename, ctype, xml)]),
                                    xml)
            self.assertEqual(doc["code"], 400)
            self.assertIn(msg, doc["message"])
        bad(JUNIT, "filename", filename=None)
        bad(JUNIT, "content type", ctype="text/plain")
        bad(JUNIT, "content type", ctype=None)
        bad(b"<testsuite tests='1'>", "unclosed")
        bad(b"<testsuite><testcase></testsuite>", "end tag")
        bad(b"<report tests='1'/>", "root element")
        bad(b"not xml", "root element")
        bad(b"<testsuite tests='-1'/>", "tests")
        bad(b"<testsuite tests='1.5'/>", "tests")
        bad(b"<testsuite failures='x'/>", "failures")
        bad(b"<testsuite skipped=''/>", "skipped")
        bad(b"<testsuite time='1,5'/>", "time")
        bad(b"<testsuite><testcase time='abc'/></testsuite>", "time")
        bad(b"<testsuite name='a & b'/>", "entity")
        bad(b"<testsuite name=unquoted/>", "quoted")
        bad(b"<testsuite name='a' name='b'/>", "duplicate")
        bad(b"<testsuite/><testsuite/>", "after the root")
        self.assertStatus(400, self.imp(files=[]))
        self.assertStatus(400, self.imp(fields=[("project", "P"), ("label[]", "novalue")],
                                        files=[("result[]", "r.xml", "text/xml", JUNIT)]))
        self.assertStatus(400, self.req("POST", "/import", {"project": "P"}, prefix=False))
        self.assertStatus(401, self.req("POST", "/import", b"", prefix=False, auth=False))
        # A zip is accepted as is (not inspected).
        self.assertStatus(200, self.imp(files=[("result[]", "r.zip", "application/zip", b"PK")]))


class ControlTest(FakeCase):
    kind = "testomat"

    def create(self, timeout=10):
        return self.fake.request("POST", "/api/reporter?api_key=" + self.fake.opts["api_key"],
                                 {"title": "x"}, timeout=timeout)

    def test_status_faults(self):
        self.fake.control("503", count=2, retry_after=7)
        self.fake.control("429")
        self.fake.control("500")
        got = [self.create() for _ in range(5)]
        self.assertEqual([g[0] for g in got], [503, 503, 429, 500, 200])
        self.assertEqual(got[0][1].get("retry-after"), "7")
        self.assertNotIn("retry-after", got[2][1])
        self.assertIn("message", got[0][2])
        recs = self.fake.requests()
        self.assertEqual([(r["status"], r.get("fault")) for r in recs],
                         [(503, "503"), (503, "503"), (429, "429"), (500, "500"), (200, None)])
        self.assertEqual(len(self.fake.state()["runs"]), 1, "faults never reach the API")

    def test_ok_entries_and_clear(self):
        self.fake.control("ok")
        self.fake.control("500")
        self.assertEqual([self.create()[0] for _ in range(3)], [200, 500, 200])
        self.fake.control("500", count=3)
        self.assertEqual(len(self.fake.state()["faults"]), 1)
        self.fake.control("clear")
        self.assertEqual(self.fake.state()["faults"], [])
        self.assertEqual(self.create()[0], 200)

    def test_reset_drops_the_connection(self):
        self.fake.control("reset")
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected)):
            self.create()
        self.assertEqual(self.create()[0], 200)
        rec = self.fake.requests()[0]
        self.assertEqual((rec["status"], rec["fault"]), (None, "reset"))

    def test_stall_outlasts_the_client(self):
        self.fake.control("stall", stall_seconds=3)
        start = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.create(timeout=0.5)
        self.assertLess(time.monotonic() - start, 2)
        self.assertEqual(self.fake.requests()[0]["fault"], "stall")
        self.assertEqual(self.create()[0], 200)

    def test_stop_wakes_a_stall(self):
        self.fake.control("stall")  # 30 s by default
        conn = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=60)
        conn.request("POST", "/api/reporter?api_key=x", body=b"{}",
                     headers={"Content-Type": "application/json"})
        self.fake.wait_requests(1)
        start = time.monotonic()
        self.assertEqual(self.fake.stop(), 0)
        self.assertLess(time.monotonic() - start, 10)
        with self.assertRaises((ConnectionError, http.client.RemoteDisconnected)):
            conn.getresponse()
        conn.close()
        self.fake.start()  # for tearDown

    def test_control_is_strict_and_not_recorded(self):
        for body in ({"mode": "teapot"}, {"mode": "500", "count": -1}, {"mode": "500", "count": "2"},
                     {"retry_after": 1.5}, {"bogus": 1}, {"conflict_status": 403}):
            status, _, _ = self.fake.request("POST", "/_control", body, prefix=False, auth=False)
            self.assertEqual(status, 400, body)
        self.assertEqual(self.fake.request("GET", "/_control", prefix=False)[0], 405)
        self.assertEqual(self.fake.requests(), [])
        self.assertEqual(self.fake.state()["recorded"], 0)


class QASphereControlTest(FakeCase):
    kind = "qasphere"

    def test_faults_come_before_auth_and_rate_limit(self):
        self.fake.control("503", retry_after=1)
        status, headers, doc = self.fake.request("GET", "/project/DEMO/run", auth=False)
        self.assertEqual((status, headers.get("retry-after")), (503, "1"))
        self.assertEqual(self.fake.request("GET", "/project/DEMO/run", auth=False)[0], 401)


if __name__ == "__main__":
    unittest.main(verbosity=2)
