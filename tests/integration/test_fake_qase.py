"""The Qase API fake keeps the contract of the vendor's OpenAPI (v1).

Drives tests/fakes/fake_targets --kind qase directly, so that a test of
runbridge pulling results can trust the fake: Token auth, limit and offset
bounds, paging totals, complete entities, the generator's promises, and
each fault on demand.
"""
import collections
import http.client
import shutil
import socket
import tempfile
import threading
import time
import unittest

from fakes import Fake

SLUGS = ("passed", "failed", "blocked", "skipped", "invalid", "in_progress")
RESULT_FIELDS = {"hash", "result_hash", "comment", "stacktrace", "run_id", "case_id", "steps",
                 "status", "is_api_result", "time_spent_ms", "end_time", "attachments"}
RUN_FIELDS = {"id", "run_id", "title", "description", "status", "status_text", "start_time",
              "end_time", "public", "stats", "time_spent", "elapsed_time", "environment",
              "milestone", "custom_fields", "tags", "plan_id", "configurations",
              "external_issue"}
SUITE_FIELDS = {"id", "title", "description", "preconditions", "position", "cases_count",
                "parent_id", "created", "updated", "created_at", "updated_at"}


class QaseCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fake-qase-")
        self.fake = Fake("qase", self.tmp).start()

    def tearDown(self):
        rc = self.fake.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(rc, 0, "fake_targets exit status")

    def get(self, path, **kw):
        return self.fake.request("GET", path, **kw)

    def ok(self, path, **kw):
        status, _, doc = self.get(path, **kw)
        self.assertEqual(status, 200, "%s -> %r" % (path, doc))
        self.assertIs(doc["status"], True)
        return doc["result"]

    def assertQaseError(self, expected, got, what=""):
        status, _, doc = got
        self.assertEqual(status, expected, "%s -> %r" % (what, doc))
        self.assertIs(doc["status"], False, what)
        self.assertIsInstance(doc["errorMessage"], str, what)
        self.assertTrue(doc["errorMessage"], what)
        return doc

    def all_pages(self, path, limit=100):
        """Every entity of a list, page by page; checks the totals agree."""
        out, offset, pages = [], 0, 0
        sep = "&" if "?" in path else "?"
        while True:
            res = self.ok("%s%slimit=%d&offset=%d" % (path, sep, limit, offset))
            pages += 1
            self.assertEqual(res["count"], len(res["entities"]))
            out += res["entities"]
            offset += limit
            if offset >= res["filtered"]:
                self.assertEqual(len(out), res["filtered"])
                return out, pages


class AuthAndPathsTest(QaseCase):
    PATHS = ("/run/DEMO/42", "/run/DEMO/42?include=cases", "/result/DEMO?run=42",
             "/case/DEMO", "/case/DEMO/1", "/suite/DEMO", "/suite/DEMO/1")

    def setUp(self):
        super().setUp()
        self.fake.generate("DEMO", run_id=42, results=20)

    def test_token_header_is_required(self):
        token = self.fake.opts["token"]
        for path in self.PATHS:
            for h in ({}, {"Token": "wrong"}, {"Token": ""}, {"Authorization": "Bearer " + token},
                      {"Token": token + "x"}):
                self.assertQaseError(401, self.get(path, auth=False, headers=h), (path, h))
            self.ok(path)
            self.ok(path, auth=False, headers={"token": token})

    def test_unknown_paths_methods_and_projects(self):
        for path in ("/nothing/DEMO", "/run/DEMO/42/x", "/run/DEMO/abc", "/run/DEMO/0",
                     "/case/DEMO/-1", "/result", "/run/DEMO"):
            self.assertQaseError(404, self.get(path), path)
        self.assertEqual(self.fake.request("GET", "/v2/run/DEMO/42", prefix=False)[0], 404)
        for path in ("/run/OTHER/42", "/result/OTHER?run=42", "/case/OTHER", "/suite/OTHER"):
            doc = self.assertQaseError(404, self.get(path), path)
            self.assertIn("Project", doc["errorMessage"])
        self.assertQaseError(404, self.get("/run/DEMO/43"))
        self.assertQaseError(404, self.get("/case/DEMO/9999"))
        self.assertQaseError(404, self.get("/suite/DEMO/9999"))
        self.assertQaseError(404, self.get("/result/DEMO/" + "0" * 40))
        for method in ("POST", "PATCH", "DELETE"):
            self.assertQaseError(405, self.fake.request(method, "/result/DEMO", {}), method)
        self.assertQaseError(400, self.get("/run/DEMO/42?include=everything"))
        self.assertQaseError(400, self.get("/run/DEMO/42?include=cases,"))
        self.assertIn("cases", self.ok("/run/DEMO/42?include=defects,cases"))
        self.assertNotIn("cases", self.ok("/run/DEMO/42?include=defects"))


class PagingTest(QaseCase):
    def setUp(self):
        super().setUp()
        self.fake.generate("DEMO", run_id=42, results=237, retested=5)

    def test_limit_above_100_and_bad_offsets_are_refused(self):
        for path in ("/result/DEMO?run=42&", "/case/DEMO?", "/suite/DEMO?"):
            for query, field in (("limit=101", "limit"), ("limit=1000", "limit"),
                                 ("limit=0", "limit"), ("limit=-5", "limit"),
                                 ("limit=ten", "limit"), ("limit=", "limit"),
                                 ("limit=1.5", "limit"), ("offset=-1", "offset"),
                                 ("offset=100001", "offset"), ("offset=x", "offset")):
                doc = self.assertQaseError(400, self.get(path + query), path + query)
                self.assertEqual([e["field"] for e in doc["errorFields"]], [field])
            self.assertEqual(self.ok(path + "limit=100")["count"],
                             min(100, self.ok(path + "limit=1")["filtered"]))
            self.assertEqual(self.ok(path + "offset=100000")["count"], 0)
        self.assertQaseError(400, self.get("/result/DEMO?run=4x2"))
        self.assertQaseError(400, self.get("/result/DEMO?from_end_time=2026-11-20T10:00:00"))
        self.assertQaseError(400, self.get("/case/DEMO?suite_id=abc"))

    def test_pages_add_up(self):
        first = self.ok("/result/DEMO?run=42")
        self.assertEqual((first["total"], first["filtered"], first["count"]), (237, 237, 10),
                         "default limit is 10")
        counts = [self.ok("/result/DEMO?run=42&limit=100&offset=%d" % o)["count"]
                  for o in (0, 100, 200, 237, 300)]
        self.assertEqual(counts, [100, 100, 37, 0, 0])
        results, pages = self.all_pages("/result/DEMO?run=42")
        self.assertEqual(pages, 3)
        hashes = [r["hash"] for r in results]
        self.assertEqual(len(set(hashes)), 237, "pages overlap or skip")
        self.assertEqual(hashes, [r["hash"] for r in self.all_pages("/result/DEMO?run=42",
                                                                    limit=7)[0]])

    def test_total_counts_the_project_filtered_the_filters(self):
        self.fake.seed("DEMO", run={"id": 43},
                       results=[{"case_id": 1, "status": "failed"},
                                {"case_id": 2, "status": "passed"},
                                {"case_id": 2, "status": "flaky"}])
        res = self.ok("/result/DEMO?run=42&limit=5")
        self.assertEqual((res["total"], res["filtered"], res["count"]), (240, 237, 5))
        self.assertEqual(self.ok("/result/DEMO?run=43")["filtered"], 3)
        self.assertEqual(self.ok("/result/DEMO?run=42,43")["filtered"], 240)
        self.assertEqual(self.ok("/result/DEMO")["filtered"], 240)
        self.assertEqual(self.ok("/result/DEMO?run=44")["filtered"], 0)
        failed, _ = self.all_pages("/result/DEMO?run=42&status=failed")
        self.assertTrue(failed)
        self.assertEqual({r["status"] for r in failed}, {"failed"})
        everything, _ = self.all_pages("/result/DEMO?run=42")
        self.assertEqual(len(failed), sum(r["status"] == "failed" for r in everything))
        two = self.ok("/result/DEMO?run=43&case_id=2")
        self.assertEqual([r["status"] for r in two["entities"]], ["passed", "flaky"])
        late = self.ok("/result/DEMO?run=42&from_end_time=2026-11-20%2011:00:00&limit=100")
        early = self.ok("/result/DEMO?run=42&to_end_time=2026-11-20%2010:59:59&limit=100")
        dated = [r for r in everything if r["end_time"]]
        self.assertEqual(late["filtered"] + early["filtered"], len(dated))
        self.assertEqual(early["filtered"], 5, "the five earlier attempts of retested cases")
        cases = self.ok("/case/DEMO?suite_id=2&limit=100")
        self.assertEqual(cases["total"], 232)
        self.assertEqual({c["suite_id"] for c in cases["entities"]}, {2})
        self.assertLess(cases["filtered"], 232)


class GeneratedRunTest(QaseCase):
    def test_237_results_keep_every_promise(self):
        summary = self.fake.generate("DEMO", run_id=42, results=237, retested=5,
                                     title="Regression 2026-11-22")
        results, _ = self.all_pages("/result/DEMO?run=42")
        self.assertEqual(len(results), 237)
        self.assertEqual(summary["results"], 237)
        for r in results:
            self.assertEqual(set(r), RESULT_FIELDS)
            self.assertRegex(r["hash"], r"^[0-9a-f]{40}$")
            self.assertEqual(r["run_id"], 42)
            self.assertIsInstance(r["time_spent_ms"], int)
        self.assertEqual(len({r["hash"] for r in results}), 237)

        by_case = collections.defaultdict(list)
        for r in results:
            by_case[r["case_id"]].append(r)
        self.assertEqual(len(by_case), 232)
        retested = {c: rs for c, rs in by_case.items() if len(rs) > 1}
        self.assertEqual(len(retested), 5)
        for case_id, rs in retested.items():
            self.assertEqual(len(rs), 2)
            self.assertNotEqual(rs[0]["end_time"], rs[1]["end_time"])
            # The attempt listed last is the earlier one: only end_time tells.
            self.assertGreater(rs[0]["end_time"], rs[1]["end_time"], case_id)
            self.assertEqual(rs[1]["status"], "failed")

        latest = {c: max(rs, key=lambda r: r["end_time"] or "") for c, rs in by_case.items()}
        counts = collections.Counter(r["status"] for r in latest.values())
        for slug in SLUGS + ("flaky",):
            self.assertGreater(counts[slug], 0, slug)
        run = self.ok("/run/DEMO/42?include=cases")
        self.assertEqual(set(run) - {"cases"}, RUN_FIELDS)
        self.assertEqual(run["title"], "Regression 2026-11-22")
        self.assertEqual((run["status"], run["status_text"]), (1, "complete"))
        self.assertEqual(run["stats"]["total"], 232)
        self.assertEqual(run["stats"]["statuses"], dict(counts))
        self.assertEqual(run["stats"]["failed"], counts["failed"])
        self.assertEqual(run["stats"]["untested"], 0)
        self.assertEqual(summary["stats"], run["stats"])
        self.assertEqual(sorted(run["cases"]), sorted(by_case))
        self.assertIsNone(run["description"])
        self.assertIsNone(run["environment"])
        self.assertNotIn("cases", self.ok("/run/DEMO/42"))
        self.assertEqual(run["time_spent"], sum(r["time_spent_ms"] for r in results))

        for r in results:
            if r["status"] == "in_progress":
                self.assertIsNone(r["end_time"])
                self.assertEqual(r["time_spent_ms"], 0)
            else:
                self.assertRegex(r["end_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
            if r["status"] == "passed":
                self.assertIsNone(r["comment"])
                self.assertIsNone(r["stacktrace"])
                self.assertEqual(r["attachments"], [])
            if r["status"] == "failed":
                self.assertIn("Expected", r["comment"])
                self.assertIn("\n    at ", r["stacktrace"])
                self.assertEqual(r["attachments"][0]["mime"], "image/png")
                self.assertTrue(r["attachments"][0]["url"].startswith("https://"))
                self.assertEqual([s["status"] for s in r["steps"]], [1, 2])
                self.assertEqual(r["steps"][1]["steps"][0]["status"], 2)
        self.assertIn(None, [r["steps"] for r in results], "steps is nullable")

    def test_cases_and_suites_make_suite_paths(self):
        self.fake.generate("DEMO", run_id=42, results=237, retested=5, suites=6)
        cases, case_pages = self.all_pages("/case/DEMO")
        suites, suite_pages = self.all_pages("/suite/DEMO")
        self.assertEqual((len(cases), case_pages, len(suites), suite_pages), (232, 3, 6, 1))
        self.assertEqual(len({c["title"] for c in cases}), 232, "titles are distinct")
        by_id = {s["id"]: s for s in suites}
        for s in suites:
            self.assertEqual(set(s), SUITE_FIELDS)
            self.assertIsNone(s["description"])
        self.assertEqual([by_id[i]["parent_id"] for i in range(1, 7)], [None, None, 1, 2, 2, 3])

        def path(suite_id):
            parts = []
            while suite_id is not None:
                parts.insert(0, by_id[suite_id]["title"])
                suite_id = by_id[suite_id]["parent_id"]
            return " / ".join(parts)

        self.assertEqual(path(5), "Checkout / Payments")
        self.assertEqual(path(6), "Authentication / Search / Admin")
        in_suites = [c for c in cases if c["suite_id"] is not None]
        self.assertTrue(0 < len(in_suites) < len(cases), "some cases have no suite")
        self.assertEqual(sum(s["cases_count"] for s in suites), len(in_suites))
        for c in cases[:3]:
            one = self.ok("/case/DEMO/%d" % c["id"])
            self.assertEqual(one, c)
            self.assertIsNone(one["description"])
            self.assertIsInstance(one["title"], str)
        self.assertEqual(self.ok("/suite/DEMO/5"), by_id[5])
        results, _ = self.all_pages("/result/DEMO?run=42")
        self.assertEqual({r["case_id"] for r in results}, {c["id"] for c in cases})
        found = self.ok("/case/DEMO?search=LOG%20IN&limit=100")
        self.assertTrue(found["entities"])
        self.assertTrue(all("log in" in c["title"] for c in found["entities"]))

    def test_5000_results_generate_quickly(self):
        t0 = time.monotonic()
        summary = self.fake.generate("BIG", run_id=9, results=5000, retested=100,
                                     custom_status=None)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(summary["results"], 5000)
        self.assertEqual(summary["stats"]["total"], 4900)
        self.assertNotIn("flaky", summary["stats"]["statuses"])
        results, pages = self.all_pages("/result/BIG?run=9")
        self.assertEqual((len(results), pages), (5000, 50))
        self.assertEqual(len({r["hash"] for r in results}), 5000)
        self.assertEqual(self.ok("/case/BIG?limit=1")["total"], 4900)
        self.assertEqual(len(self.fake.requests(path="/v1/result/BIG")), 50)

    def test_case_id_start_and_a_second_run(self):
        self.fake.generate("DEMO", run_id=1, results=10)
        self.fake.generate("DEMO", run_id=2, results=10, case_id_start=101)
        run2 = self.ok("/run/DEMO/2?include=cases")
        self.assertEqual(run2["cases"], list(range(101, 111)))
        self.assertEqual(self.ok("/result/DEMO?run=1")["filtered"], 10)
        self.assertEqual(self.ok("/case/DEMO")["total"], 20)
        # Generating a run again replaces its results instead of adding.
        self.fake.generate("DEMO", run_id=1, results=4)
        self.assertEqual(self.ok("/result/DEMO?run=1")["filtered"], 4)
        self.assertEqual(self.ok("/result/DEMO")["total"], 14)


class SeedTest(QaseCase):
    def test_seeded_entities_are_completed_with_nullable_fields_null(self):
        self.fake.seed("DEMO",
                       run={"id": 7, "title": "Smoke", "status": 1, "status_text": "complete",
                            "environment": {"title": "Staging", "slug": "staging",
                                            "description": "", "host": "stg"}},
                       results=[{"case_id": 1, "status": "failed", "comment": "boom",
                                 "stacktrace": "Error: boom\n  at x", "time_spent_ms": 812,
                                 "end_time": "2026-11-22T09:00:00+00:00",
                                 "steps": [{"status": 2, "comment": "step", "duration_ms": 5,
                                            "steps": []}]},
                                {"case_id": 2, "status": "passed"},
                                {"case_id": 1, "status": "passed", "hash": "a" * 40,
                                 "end_time": "2026-11-22T09:05:00+00:00"}],
                       cases=[{"id": 1, "title": "Login", "suite_id": 3},
                              {"id": 2, "title": "Logout"}],
                       suites=[{"id": 3, "title": "Auth", "parent_id": None}])
        run = self.ok("/run/DEMO/7?include=cases")
        self.assertEqual((run["title"], run["environment"]["slug"]), ("Smoke", "staging"))
        self.assertIsNone(run["milestone"])
        self.assertEqual(run["cases"], [1, 2])
        self.assertEqual(run["stats"]["statuses"], {"passed": 2},
                         "case 1 counts by its latest end_time")
        res = self.ok("/result/DEMO?run=7")["entities"]
        self.assertEqual([set(r) for r in res], [RESULT_FIELDS] * 3)
        self.assertEqual((res[0]["comment"], res[0]["time_spent_ms"], res[0]["steps"][0]["status"]),
                         ("boom", 812, 2))
        self.assertIsNone(res[1]["comment"])
        self.assertIsNone(res[1]["stacktrace"])
        self.assertIsNone(res[1]["end_time"])
        self.assertIsNone(res[1]["steps"])
        self.assertEqual(res[1]["attachments"], [])
        self.assertEqual(res[2]["hash"], "a" * 40)
        self.assertEqual(self.ok("/result/DEMO/" + "a" * 40)["case_id"], 1)
        case2 = self.ok("/case/DEMO/2")
        self.assertIsNone(case2["suite_id"])
        self.assertIsNone(case2["preconditions"])
        self.assertEqual(self.ok("/suite/DEMO/3")["cases_count"], 1)
        # A run seeded again starts without results; cases are replaced by id.
        self.fake.seed("DEMO", run={"id": 7}, cases=[{"id": 2, "title": "Logout v2"}])
        self.assertEqual(self.ok("/result/DEMO?run=7")["filtered"], 0)
        self.assertEqual(self.ok("/case/DEMO/2")["title"], "Logout v2")
        self.assertEqual(self.ok("/case/DEMO")["total"], 2)
        self.fake.seed("DEMO", results=[{"run_id": 7, "case_id": 5, "status": "blocked"}])
        self.assertEqual(self.ok("/run/DEMO/7")["stats"]["blocked"], 1)

    def test_seeds_are_checked(self):
        def refused(**seed):
            body = {"seed": dict(project="DEMO", **seed)}
            status, _, doc = self.fake.request("POST", "/_control", body, prefix=False)
            self.assertEqual(status, 400, (seed, doc))
            return doc["message"]

        self.assertIn("time_ms", refused(run={"id": 1},
                                         results=[{"case_id": 1, "status": "passed",
                                                   "time_ms": 5}]))
        self.assertIn("case_id", refused(run={"id": 1}, results=[{"status": "passed"}]))
        self.assertIn("status", refused(run={"id": 1}, results=[{"case_id": 1}]))
        self.assertIn("run_id", refused(results=[{"case_id": 1, "status": "passed"}]))
        self.assertIn("not seeded", refused(results=[{"run_id": 9, "case_id": 1,
                                                      "status": "passed"}]))
        self.assertIn("comment", refused(run={"id": 1}, results=[{"case_id": 1, "status": "x",
                                                                   "comment": 5}]))
        self.assertIn("id", refused(run={"title": "no id"}))
        self.assertIn("title", refused(cases=[{"id": 1}]))
        self.assertIn("stats", refused(run={"id": 1, "stats": {}}))
        self.assertIn("suite_id", refused(cases=[{"id": 1, "title": "t", "suite_id": "3"}]))
        self.assertIn("unknown key", refused(runs=[]))
        for code in ("D", "TOOLONGCODE1", "DE-MO", 5):
            status, _, _ = self.fake.request("POST", "/_control",
                                             {"seed": {"project": code}}, prefix=False)
            self.assertEqual(status, 400, code)
        for gen in ({"project": "DEMO", "run_id": 1, "results": 10, "retested": 6},
                    {"project": "DEMO", "run_id": 0, "results": 10},
                    {"project": "DEMO", "results": 10},
                    {"project": "DEMO", "run_id": 1, "results": 10, "colour": "red"}):
            status, _, _ = self.fake.request("POST", "/_control", {"generate": gen},
                                             prefix=False)
            self.assertEqual(status, 400, gen)
        self.assertEqual(self.fake.state()["projects"], {}, "a refused seed adds nothing")
        self.fake.seed("DEMO", run={"id": 1})
        self.fake.control(wipe=True)
        self.assertEqual(self.fake.state()["projects"], {})


class FaultTest(QaseCase):
    def setUp(self):
        super().setUp()
        self.fake.generate("DEMO", run_id=42, results=30)

    def test_429_with_retry_after_then_normal(self):
        self.fake.control("429", count=2, retry_after=3)
        got = [self.get("/result/DEMO?run=42&limit=100") for _ in range(3)]
        self.assertEqual([g[0] for g in got], [429, 429, 200])
        self.assertEqual([g[1].get("retry-after") for g in got[:2]], ["3", "3"])
        self.assertEqual(got[2][2]["result"]["count"], 30)
        recs = self.fake.requests(path="/v1/result/DEMO")
        self.assertEqual([(r["status"], r.get("fault")) for r in recs],
                         [(429, "429"), (429, "429"), (200, None)])

    def test_503_count(self):
        self.fake.control("503", count=3)
        self.assertEqual([self.get("/run/DEMO/42")[0] for _ in range(4)], [503, 503, 503, 200])
        self.assertNotIn("retry-after", self.get("/run/DEMO/42")[1])

    def test_stall_never_answers(self):
        self.fake.control("stall", stall_seconds=3)
        start = time.monotonic()
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.get("/run/DEMO/42", timeout=0.5)
        self.assertLess(time.monotonic() - start, 2)
        self.ok("/run/DEMO/42")
        self.assertEqual(self.fake.requests()[0]["fault"], "stall")

    def test_delay_answers_late_and_blocks_no_one_else(self):
        self.fake.delay(1.5, count=1)
        self.assertEqual(self.fake.state()["delay_count"], 1)
        slow = {}

        def slow_request():
            t0 = time.monotonic()
            slow["got"] = self.get("/result/DEMO?run=42&limit=100")
            slow["took"] = time.monotonic() - t0

        t = threading.Thread(target=slow_request)
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        self.ok("/run/DEMO/42")  # answered while the first one waits
        self.assertLess(time.monotonic() - t0, 1.0)
        t.join(10)
        self.assertEqual(slow["got"][0], 200)
        self.assertEqual(slow["got"][2]["result"]["count"], 30)
        self.assertGreaterEqual(slow["took"], 1.4)
        t0 = time.monotonic()
        self.ok("/run/DEMO/42")
        self.assertLess(time.monotonic() - t0, 1.0, "the delay was for one request")

    def test_stop_wakes_a_delay(self):
        self.fake.delay(60)
        conn = http.client.HTTPConnection("127.0.0.1", self.fake.port, timeout=60)
        conn.request("GET", "/v1/run/DEMO/42", headers=self.fake.auth_headers())
        time.sleep(0.3)
        start = time.monotonic()
        self.assertEqual(self.fake.stop(), 0)
        self.assertLess(time.monotonic() - start, 10)
        conn.close()
        self.fake.start()  # for tearDown

    def test_a_run_deleted_on_demand_is_404(self):
        self.ok("/run/DEMO/42")
        self.fake.control(delete_run={"project": "DEMO", "id": 42})
        doc = self.assertQaseError(404, self.get("/run/DEMO/42"))
        self.assertIn("Run", doc["errorMessage"])
        self.assertEqual(self.ok("/result/DEMO?run=42")["filtered"], 0)
        self.assertEqual(self.ok("/case/DEMO")["total"], 30, "cases stay")
        status, _, _ = self.fake.request("POST", "/_control",
                                         {"delete_run": {"project": "DEMO", "id": 42}},
                                         prefix=False)
        self.assertEqual(status, 400, "no such run any more")

    def test_every_request_is_recorded_and_control_is_not(self):
        self.get("/run/DEMO/42", auth=False)
        for offset in (0, 10, 20):
            self.ok("/result/DEMO?run=42&offset=%d" % offset)
        self.ok("/case/DEMO?limit=100")
        self.fake.control("503")
        self.get("/suite/DEMO")
        self.fake.state()
        recs = self.fake.requests()
        self.assertEqual([(r["path"], r["status"]) for r in recs],
                         [("/v1/run/DEMO/42", 401)] + [("/v1/result/DEMO", 200)] * 3 +
                         [("/v1/case/DEMO", 200), ("/v1/suite/DEMO", 503)])
        self.assertEqual([r["query"] for r in self.fake.requests(path="/v1/result/DEMO")],
                         ["run=42&offset=0", "run=42&offset=10", "run=42&offset=20"])
        self.assertEqual(recs[1]["headers"]["token"], self.fake.opts["token"])
        self.assertEqual(self.fake.state()["recorded"], 6)

    def test_control_is_strict(self):
        for body in ({"delay_seconds": -1}, {"delay_count": "2"}, {"wipe": 1},
                     {"generate": []}, {"seed": "DEMO"}, {"delete_run": {"project": "DEMO"}},
                     {"rate_limit": 0}):
            status, _, _ = self.fake.request("POST", "/_control", body, prefix=False)
            self.assertEqual(status, 400, body)


class BinaryTest(unittest.TestCase):
    def test_qase_needs_a_token(self):
        tmp = tempfile.mkdtemp(prefix="fake-qase-")
        try:
            fake = Fake("qase", tmp, token=None)
            with self.assertRaises(AssertionError):
                fake.start()
            self.assertIn("needs --token", fake.logs())
            fake.proc = None
            fake.log.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
