"""The operator API (/api/v1, README "Operator API") over real HTTP against
the real binary: every endpoint, filters, cursors, access (loopback,
Bearer, session cookie, admin_trust_loopback: false), CSRF, 404s and 405s,
hostile text, secrets, the live stream, the rules the daemon has loaded
(not the files on disk) and the links to each target's run."""
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import unittest

from fakes import Fake
from rbtest import BIN, Case, delivery_id, fixture, wait_until

SECRET = "S3CRETxyz"
TOKEN = "admin-token-0123456789"

RULES = """
rules:
  - name: all-to-stream
    actions:
      - redis: { stream: "rb:{{project}}", maxlen: 1000 }
  - name: failing-hook
    match: { event: run.completed }
    actions:
      - exec:
          argv: ["/bin/sh", "-c", "echo no such luck; exit 3"]
          env: { API_KEY: "%s" }
  - name: chat
    match: { event: run.completed }
    actions:
      - http:
          url: "http://127.0.0.1:9/hook?token=%s"
          body: '{"text": "{{run.title}}"}'
""" % (SECRET, SECRET)


def run_body(run_id, title="Nightly", event="run.started", project="DEMO"):
    doc = json.loads(fixture("run.started"))
    doc["event_name"] = event
    doc["project_code"] = project
    doc["payload"]["id"] = run_id
    doc["payload"]["title"] = title
    if event == "run.completed":
        doc["payload"] = {"id": run_id, "cases": 3, "status": "passed"}
    return json.dumps(doc).encode()


class ApiCase(Case):
    def start(self, extra="", rules=RULES):
        self.b = self.bridge(rules=rules, extra="retry:\n  max_attempts: 1\n" + extra)
        return self.b

    def call(self, method, path, body=None, headers=None, raw=False):
        conn = http.client.HTTPConnection("127.0.0.1", self.b.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            if raw:
                return r, data
            return r.status, (json.loads(data) if data else None)
        finally:
            conn.close()

    def get(self, path, headers=None):
        return self.call("GET", path, headers=headers)

    def ok(self, path, headers=None):
        status, doc = self.get(path, headers)
        self.assertEqual(status, 200, "%s: %s" % (path, doc))
        return doc

    def csrf(self, headers=None):
        return self.ok("/api/v1/session", headers)["csrf"]

    def post_json(self, path, doc, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.call("POST", path, json.dumps(doc).encode(), h)

    def dead_job(self, title="Nightly"):
        self.b.post(run_body(42, title, event="run.started"))
        self.b.post(run_body(42, event="run.completed"))
        wait_until(lambda: self.b.status()["dead"] == 2, what="two dead jobs")
        return self.ok("/api/v1/jobs?state=dead")["items"]


class TestReads(ApiCase):
    def test_every_read_endpoint_answers_from_loopback(self):
        b = self.start()
        started = run_body(42, "Nightly #42")
        dead = self.dead_job("Nightly #42")
        self.assertEqual({j["rule"] for j in dead}, {"failing-hook", "chat"})

        s = self.ok("/api/v1/summary")
        self.assertRegex(s["version"], r"^\d+\.\d+\.\d+$")
        self.assertEqual(s["redis"], "up")
        self.assertEqual(s["jobs"]["dead"], 2)
        self.assertEqual(set(s["jobs"]), {"pending", "retrying", "done", "dead"})
        self.assertEqual(s["deliveries_last_hour"]["run.started"]["202"], 1)
        self.assertEqual(s["deliveries_last_hour"]["run.completed"]["202"], 1)
        self.assertGreaterEqual(s["uptime_s"], 0)
        kinds = {t["kind"]: t for t in s["targets"]}
        self.assertIsNotNone(kinds["redis"]["last_success_at"])
        self.assertIn("exit 3", kinds["exec"]["last_error"])

        runs = self.ok("/api/v1/runs")
        self.assertEqual(len(runs["items"]), 1)
        run = runs["items"][0]
        self.assertEqual((run["project"], run["run_id"], run["title"]), ("DEMO", 42, "Nightly #42"))
        self.assertEqual(run["last_event"]["type"], "run.completed")
        self.assertIsNone(runs["next_cursor"])

        detail = self.ok("/api/v1/runs/DEMO/42")
        self.assertEqual(detail["run"]["title"], "Nightly #42")
        self.assertEqual([e["type"] for e in detail["events"]],
                         ["run.started", "run.completed"])
        self.assertEqual(detail["events"][0]["id"], delivery_id(started))
        self.assertRegex(detail["events"][0]["received_at"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(len(detail["jobs"]), 4)
        job = [j for j in detail["jobs"] if j["rule"] == "failing-hook"][0]
        self.assertEqual(set(job) >= {"id", "delivery_id", "rule", "kind", "target", "state",
                                      "attempts", "last_error", "next_attempt_at"}, True)
        self.assertEqual((job["kind"], job["state"], job["attempts"]), ("exec", "dead", 1))
        self.assertEqual(detail["targets"], [])
        self.assertIsNone(detail["results"])
        self.assertEqual(self.get("/api/v1/runs/DEMO/43")[0], 404)
        self.assertEqual(self.get("/api/v1/runs/NOPE/42")[0], 404)

        d = self.ok("/api/v1/deliveries")
        self.assertEqual([i["type"] for i in d["items"]], ["run.completed", "run.started"])
        one = self.ok("/api/v1/deliveries/" + delivery_id(started))
        self.assertEqual(one["raw"], started.decode())
        self.assertEqual(one["event"]["run"]["title"], "Nightly #42")
        self.assertEqual([j["rule"] for j in one["jobs"]], ["all-to-stream"])
        hinted = self.ok("/api/v1/deliveries/%s?project=DEMO&run_id=42" % delivery_id(started))
        self.assertEqual(hinted["id"], delivery_id(started))
        self.assertEqual(self.get("/api/v1/deliveries/" + "0" * 64)[0], 404)
        self.assertEqual(self.get("/api/v1/deliveries/xyz")[0], 404)

        j = self.ok("/api/v1/jobs/%d" % job["id"])
        self.assertEqual(len(j["attempts"]), 1)
        a = j["attempts"][0]
        self.assertFalse(a["ok"])
        self.assertIn("exit 3", a["detail"])
        self.assertIn("no such luck", a["detail"])
        self.assertIsNotNone(a["started_at"])
        self.assertIsNotNone(a["finished_at"])
        done = [x for x in self.ok("/api/v1/jobs?state=done")["items"]]
        self.assertEqual(len(done), 2)
        dj = self.ok("/api/v1/jobs/%d" % done[0]["id"])
        self.assertTrue(dj["attempts"][-1]["ok"])
        self.assertEqual(self.get("/api/v1/jobs/999999")[0], 404)
        self.assertEqual(self.get("/api/v1/jobs/abc")[0], 404)

        rules = self.ok("/api/v1/rules")["items"]
        self.assertEqual([(r["name"], r["matched"]) for r in rules],
                         [("all-to-stream", 2), ("failing-hook", 1), ("chat", 1)])
        self.assertEqual(rules[1]["actions"], ["exec"])

    def test_filters(self):
        b = self.start()
        b.post(run_body(1, "one"))
        b.post(run_body(2, "two", project="OTHER"))
        b.post(run_body(1, event="run.completed"))
        t_mid = int(time.time() * 1000)
        wait_until(lambda: b.status()["dead"] == 2, what="dead jobs")

        def ids(path):
            return [(i["project"], i["run_id"], i["type"]) for i in self.ok(path)["items"]]
        self.assertEqual(ids("/api/v1/deliveries?type=run.completed"),
                         [("DEMO", 1, "run.completed")])
        self.assertEqual(ids("/api/v1/deliveries?project=OTHER"), [("OTHER", 2, "run.started")])
        self.assertEqual(ids("/api/v1/deliveries?project=DEMO&run_id=1"),
                         [("DEMO", 1, "run.completed"), ("DEMO", 1, "run.started")])
        self.assertEqual(ids("/api/v1/deliveries?since=%d" % (t_mid + 60000)), [])
        self.assertEqual(len(ids("/api/v1/deliveries?until=2020-01-01T00:00:00Z")), 0)
        self.assertEqual(len(ids("/api/v1/deliveries?since=2020-01-01T00:00:00.000Z")), 3)
        self.assertEqual(self.get("/api/v1/deliveries?since=yesterday")[0], 400)
        self.assertEqual(self.get("/api/v1/deliveries?run_id=1")[0], 400)

        def jobs(path):
            return sorted((j["rule"], j["state"]) for j in self.ok(path)["items"])
        self.assertEqual(jobs("/api/v1/jobs?state=dead"),
                         [("chat", "dead"), ("failing-hook", "dead")])
        self.assertEqual(jobs("/api/v1/jobs?kind=http"), [("chat", "dead")])
        self.assertEqual(jobs("/api/v1/jobs?rule=failing-hook"), [("failing-hook", "dead")])
        self.assertEqual(len(jobs("/api/v1/jobs?project=OTHER")), 1)
        self.assertEqual(len(jobs("/api/v1/jobs?state=done&project=DEMO")), 2)
        self.assertEqual(self.get("/api/v1/jobs?state=sleeping")[0], 400)

        self.assertEqual([r["project"] for r in self.ok("/api/v1/runs?project=OTHER")["items"]],
                         ["OTHER"])
        self.assertEqual([r["title"] for r in self.ok("/api/v1/runs?q=TW")["items"]], ["two"])
        self.assertEqual([r["run_id"] for r in self.ok("/api/v1/runs?q=1")["items"]], [1])

    def test_cursors_page_newest_first_without_overlap(self):
        b = self.start(rules="rules: []\n")
        for i in range(1, 8):
            self.assertEqual(b.post(run_body(i, "run %d" % i))[0], 202)

        def walk(path):
            seen, cursor, pages = [], None, 0
            while True:
                doc = self.ok(path + ("&cursor=" + cursor if cursor else ""))
                seen += doc["items"]
                pages += 1
                cursor = doc["next_cursor"]
                if cursor is None:
                    return seen, pages
        items, pages = walk("/api/v1/deliveries?limit=3")
        self.assertEqual(pages, 3)
        self.assertEqual([i["run_id"] for i in items], [7, 6, 5, 4, 3, 2, 1])
        runs, pages = walk("/api/v1/runs?limit=3")
        self.assertEqual(pages, 3)
        self.assertEqual([r["run_id"] for r in runs], [7, 6, 5, 4, 3, 2, 1])
        runs, _ = walk("/api/v1/runs?project=DEMO&limit=2")
        self.assertEqual([r["run_id"] for r in runs], [7, 6, 5, 4, 3, 2, 1])
        self.assertEqual(len(self.ok("/api/v1/deliveries")["items"]), 7)
        for bad in ("limit=0", "limit=501", "limit=x", "cursor=-1", "cursor=abc"):
            self.assertEqual(self.get("/api/v1/deliveries?" + bad)[0], 400, bad)
            self.assertEqual(self.get("/api/v1/jobs?" + bad)[0], 400, bad)
        self.assertEqual(self.get("/api/v1/runs?cursor=abc")[0], 400)
        self.assertEqual(len(self.ok("/api/v1/deliveries?limit=500")["items"]), 7)

    def test_a_runs_filtered_deliveries_reach_past_newer_ones(self):
        # the run's two newest deliveries are updates; a type filter with
        # limit=1 must still find its started event below them
        b = self.start(rules="rules: []\n")
        b.post(run_body(5, "five"))
        for i in (1, 2):
            doc = json.loads(run_body(5, "five"))
            doc["event_name"] = "run.updated"
            doc["timestamp"] = 1700000000 + i
            self.assertEqual(b.post(json.dumps(doc).encode())[0], 202)
        doc = self.ok("/api/v1/deliveries?project=DEMO&run_id=5&type=run.started&limit=1")
        self.assertEqual([(i["run_id"], i["type"]) for i in doc["items"]], [(5, "run.started")])
        self.assertIsNone(doc["next_cursor"])
        doc = self.ok("/api/v1/deliveries?project=DEMO&run_id=5&type=run.updated&limit=1")
        self.assertEqual([i["type"] for i in doc["items"]], ["run.updated"])
        self.assertIsNotNone(doc["next_cursor"])
        doc = self.ok("/api/v1/deliveries?project=DEMO&run_id=5&type=run.updated&limit=1"
                      "&cursor=" + doc["next_cursor"])
        self.assertEqual([i["type"] for i in doc["items"]], ["run.updated"])

    def test_unknown_paths_and_methods(self):
        self.start()
        for path in ("/api/v1/nope", "/api/v2/summary", "/api/v1/", "/api/v1/runs/DEMO",
                     "/api/v1/jobs/1/2/3/4"):
            status, doc = self.get(path)
            self.assertEqual(status, 404, path)
            self.assertIn("error", doc)
        for method, path in (("POST", "/api/v1/summary"), ("DELETE", "/api/v1/jobs/1"),
                             ("GET", "/api/v1/replay"), ("GET", "/api/v1/jobs/1/replay"),
                             ("GET", "/api/v1/route"), ("GET", "/api/v1/login"),
                             ("PUT", "/api/v1/runs")):
            r, data = self.call(method, path, raw=True)
            self.assertEqual(r.status, 405, (method, path))
            self.assertIn("error", json.loads(data))
            self.assertTrue(r.getheader("Allow"))

    def test_security_headers_and_hostile_title_as_text(self):
        b = self.start()
        evil = "<img src=x onerror=alert(1)></script>\u2028"
        b.post(run_body(7, evil))
        r, data = self.call("GET", "/api/v1/runs", raw=True)
        self.assertEqual(r.getheader("Content-Type"), "application/json")
        self.assertEqual(r.getheader("Content-Security-Policy"),
                         "default-src 'self'; frame-ancestors 'none'")
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
        self.assertEqual(json.loads(data)["items"][0]["title"], evil)
        self.assertEqual(self.ok("/api/v1/runs/DEMO/7")["run"]["title"], evil)
        r, data = self.call("GET", "/api/v1/nope", raw=True)
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")


class TestWrites(ApiCase):
    def test_replay_one_job_and_by_filter(self):
        self.start()
        dead = self.dead_job()
        hook = [j for j in dead if j["rule"] == "failing-hook"][0]
        path = "/api/v1/jobs/%d/replay" % hook["id"]
        # a trusted loopback client still needs the CSRF token
        self.assertEqual(self.call("POST", path)[0], 401)
        self.assertEqual(self.call("POST", path, headers={"X-CSRF-Token": "0" * 64})[0], 401)
        h = {"X-CSRF-Token": self.csrf()}
        self.assertEqual(self.call("POST", path, headers=h), (200, {"replayed": 1}))
        wait_until(lambda: self.ok("/api/v1/jobs/%d" % hook["id"])["attempt_count"] == 1 and
                   self.ok("/api/v1/jobs/%d" % hook["id"])["state"] == "dead" and
                   len(self.ok("/api/v1/jobs/%d" % hook["id"])["attempts"]) == 1 and
                   self.b.status()["dead"] == 2 and "job re-queued by replay" in self.b.logs(),
                   what="replayed job dead again")
        self.assertEqual(self.call("POST", "/api/v1/jobs/999999/replay", headers=h)[0], 404)

        self.assertEqual(self.post_json("/api/v1/replay", {"state": "dead", "rule": "none"}, h),
                         (200, {"replayed": 0}))
        self.assertEqual(self.post_json("/api/v1/replay", {"state": "dead", "kind": "http"}, h),
                         (200, {"replayed": 1}))
        wait_until(lambda: self.b.logs().count("job re-queued by replay") == 2,
                   what="dispatcher took the filtered replay")
        wait_until(lambda: self.b.status()["dead"] == 2, what="dead again")
        self.assertEqual(self.post_json("/api/v1/replay", {"state": "dead", "project": "NOPE",
                                                           "since": "2020-01-01T00:00:00Z"}, h),
                         (200, {"replayed": 0}))
        self.assertEqual(self.post_json("/api/v1/replay", {"state": "dead"}, h),
                         (200, {"replayed": 2}))
        for bad in ({}, {"state": "done"}, {"state": "dead", "rule": 3},
                    {"state": "dead", "since": "soon"}, []):
            self.assertEqual(self.post_json("/api/v1/replay", bad, h)[0], 400, bad)
        self.assertEqual(self.call("POST", "/api/v1/replay", b"{", h)[0], 400)

    def test_route_is_a_dry_run(self):
        b = self.start()
        h = {"X-CSRF-Token": self.csrf()}
        body = run_body(5, event="run.completed")
        status, doc = self.call("POST", "/api/v1/route", body, h)
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["matched"], ["all-to-stream", "failing-hook", "chat"])
        self.assertEqual([a["kind"] for a in doc["actions"]], ["redis", "exec", "http"])
        self.assertEqual(doc["event"]["id"], delivery_id(body))
        self.assertNotIn(SECRET, json.dumps(doc["actions"][2]))
        self.assertEqual(self.call("POST", "/api/v1/route", b"not json", h)[0], 400)
        self.assertEqual(self.call("POST", "/api/v1/route", body)[0], 401)
        self.assertEqual(self.ok("/api/v1/deliveries")["items"], [])
        self.assertEqual(b.status()["deliveries"], 0)


class TestAccess(ApiCase):
    def test_loopback_needs_the_token_when_not_trusted(self):
        self.start("http:\n  admin_token: %s\n  admin_trust_loopback: false\n" % TOKEN)
        status, doc = self.get("/api/v1/summary")
        self.assertEqual(status, 401)
        self.assertIn("error", doc)
        self.assertEqual(self.get("/api/v1/session")[0], 401)
        self.assertEqual(self.get("/api/v1/summary", {"Authorization": "Bearer nope"})[0], 401)
        bearer = {"Authorization": "Bearer " + TOKEN}
        self.assertEqual(self.ok("/api/v1/session", bearer)["via"], "bearer")
        self.ok("/api/v1/summary", bearer)
        # the Bearer header is its own CSRF proof
        self.assertEqual(self.post_json("/api/v1/replay", {"state": "dead"}, bearer),
                         (200, {"replayed": 0}))
        self.assertEqual(self.post_json("/api/v1/replay", {"state": "dead"})[0], 401)

    def test_browser_session_with_cookie_and_csrf(self):
        self.start("http:\n  admin_token: %s\n  admin_trust_loopback: false\n" % TOKEN)
        self.assertEqual(self.post_json("/api/v1/login", {"token": "wrong"})[0], 401)
        self.assertEqual(self.post_json("/api/v1/login", {})[0], 401)
        r, data = self.call("POST", "/api/v1/login", json.dumps({"token": TOKEN}),
                            {"Content-Type": "application/json"}, raw=True)
        self.assertEqual(r.status, 204)
        cookie = r.getheader("Set-Cookie")
        self.assertRegex(cookie, r"^rb_session=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=/$")
        self.assertNotIn(TOKEN, cookie)
        jar = {"Cookie": cookie.split(";")[0]}
        s = self.ok("/api/v1/session", jar)
        self.assertEqual((s["authenticated"], s["via"]), (True, "cookie"))
        self.assertRegex(s["csrf"], "^[0-9a-f]{64}$")
        self.ok("/api/v1/summary", jar)
        self.assertEqual(self.post_json("/api/v1/replay", {"state": "dead"}, jar)[0], 401)
        wrong = dict(jar, **{"X-CSRF-Token": "f" * 64})
        self.assertEqual(self.post_json("/api/v1/replay", {"state": "dead"}, wrong)[0], 401)
        good = dict(jar, **{"X-CSRF-Token": s["csrf"]})
        self.assertEqual(self.post_json("/api/v1/replay", {"state": "dead"}, good),
                         (200, {"replayed": 0}))
        # a second session has its own CSRF token
        r, _ = self.call("POST", "/api/v1/login", "token=" + TOKEN,
                         {"Content-Type": "application/x-www-form-urlencoded"}, raw=True)
        self.assertEqual(r.status, 204)
        jar2 = {"Cookie": r.getheader("Set-Cookie").split(";")[0]}
        self.assertNotEqual(jar2, jar)
        other = dict(jar2, **{"X-CSRF-Token": s["csrf"]})
        self.assertEqual(self.post_json("/api/v1/replay", {"state": "dead"}, other)[0], 401)
        r, _ = self.call("POST", "/api/v1/logout", headers=good, raw=True)
        self.assertEqual(r.status, 204)
        self.assertIn("Max-Age=0", r.getheader("Set-Cookie"))
        self.assertEqual(self.get("/api/v1/summary", jar)[0], 401)
        self.ok("/api/v1/summary", jar2)
        forged = {"Cookie": "rb_session=" + "a" * 64}
        self.assertEqual(self.get("/api/v1/summary", forged)[0], 401)

    def test_trusted_loopback_and_a_rebound_host_name(self):
        self.start("http:\n  admin_token: %s\n" % TOKEN)
        s = self.ok("/api/v1/session")
        self.assertEqual(s["via"], "loopback")
        self.assertRegex(s["csrf"], "^[0-9a-f]{64}$")
        # a page of another site that DNS rebinding points at 127.0.0.1
        self.assertEqual(self.get("/api/v1/summary", {"Host": "evil.example:80"})[0], 401)
        self.assertEqual(self.get("/api/v1/summary", {"Host": "localhost"})[0], 200)

    def test_no_secrets_in_any_answer(self):
        self.start("http:\n  admin_token: %s\n" % TOKEN)
        self.dead_job()
        h = {"X-CSRF-Token": self.csrf()}
        texts = []
        for path in ("/api/v1/summary", "/api/v1/runs", "/api/v1/runs/DEMO/42",
                     "/api/v1/deliveries", "/api/v1/jobs", "/api/v1/rules",
                     "/api/v1/jobs?state=dead"):
            texts.append(json.dumps(self.ok(path)))
        for job in self.ok("/api/v1/jobs")["items"]:
            j = self.ok("/api/v1/jobs/%d" % job["id"])
            texts.append(json.dumps(j))
            if j["kind"] == "http":
                self.assertIn("127.0.0.1:9", j["params"]["url"])
                self.assertIn("***", j["params"]["url"])
            if j["kind"] == "exec":
                self.assertEqual(j["params"]["env"]["API_KEY"], "***")
        for d in self.ok("/api/v1/deliveries")["items"]:
            texts.append(json.dumps(self.ok("/api/v1/deliveries/" + d["id"])))
        texts.append(json.dumps(self.call("POST", "/api/v1/route",
                                          run_body(42, event="run.completed"), h)[1]))
        everything = "\n".join(texts)
        self.assertNotIn(SECRET, everything)
        self.assertNotIn(TOKEN, everything)
        self.assertIn("/hook?token=***", everything)


class TestLoadedRules(ApiCase):
    """/rules and /route read the rules the daemon routes by: a rule file
    edited but not reloaded changes nothing until SIGHUP."""

    NEW_RULES = """
rules:
  - name: all-to-stream
    actions:
      - redis: { stream: "rb:{{project}}", maxlen: 1000 }
  - name: only-after-reload
    match: { event: run.completed }
    stop: true
    actions:
      - redis: { stream: "rb:reloaded" }
      - exec: { argv: ["/bin/true"] }
"""

    def reload(self, b):
        n = b.logs().count("reloaded")
        b.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: b.logs().count("reloaded") > n, what="reload logged")

    def route(self, h):
        status, doc = self.call("POST", "/api/v1/route", run_body(5, event="run.completed"), h)
        self.assertEqual(status, 200, doc)
        return doc["matched"]

    def test_rules_and_route_follow_reloads_not_the_files(self):
        b = self.start()
        h = {"X-CSRF-Token": self.csrf()}
        b.post(run_body(42))
        b.post(run_body(42, event="run.completed"))
        wait_until(lambda: b.status()["dead"] == 2, what="two dead jobs")
        old = [(r["name"], r["actions"], r["stop"], r["matched"])
               for r in self.ok("/api/v1/rules")["items"]]
        self.assertEqual(old, [("all-to-stream", ["redis"], False, 2),
                               ("failing-hook", ["exec"], False, 1),
                               ("chat", ["http"], False, 1)])
        self.assertRegex(self.ok("/api/v1/rules")["items"][1]["where"],
                         r"rules\.yaml:\d+:\d+$")

        # edited on disk, not reloaded: the API still shows what routes
        with open(b.rules, "w") as f:
            f.write(self.NEW_RULES)
        self.assertEqual([(r["name"], r["matched"]) for r in self.ok("/api/v1/rules")["items"]],
                         [("all-to-stream", 2), ("failing-hook", 1), ("chat", 1)])
        self.assertEqual(self.route(h), ["all-to-stream", "failing-hook", "chat"])
        # and so does routing itself
        b.post(run_body(43))
        wait_until(lambda: b.status()["deliveries"] == 3, what="third delivery stored")
        self.assertEqual(self.ok("/api/v1/rules")["items"][0]["matched"], 3)

        self.reload(b)
        rules = self.ok("/api/v1/rules")["items"]
        self.assertEqual([(r["name"], r["actions"], r["stop"]) for r in rules],
                         [("all-to-stream", ["redis"], False),
                          ("only-after-reload", ["redis", "exec"], True)])
        # counts are since the process started, by rule name
        self.assertEqual([r["matched"] for r in rules], [3, 0])
        self.assertEqual(self.route(h), ["all-to-stream", "only-after-reload"])
        b.post(run_body(43, event="run.completed"))
        wait_until(lambda: [r["matched"] for r in self.ok("/api/v1/rules")["items"]] == [4, 1],
                   what="matches counted by the new rules")

        # a reload refused (a broken file) keeps the rules that route
        with open(b.rules, "w") as f:
            f.write("rules:\n  - name: broken\n")
        n = b.logs().count("reload refused")
        b.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: b.logs().count("reload refused") > n, what="reload refused")
        self.assertEqual([r["name"] for r in self.ok("/api/v1/rules")["items"]],
                         ["all-to-stream", "only-after-reload"])
        self.assertEqual(self.route(h), ["all-to-stream", "only-after-reload"])
        self.assertStopsCleanly(b)


class TestRunLinks(ApiCase):
    """Each target's entry in /runs and /runs/{p}/{id} carries "url": the
    run's page in the target, or null."""

    def setUp(self):
        super().setUp()
        self.testomat = Fake("testomat", self.tmp).start()

    def tearDown(self):
        self.testomat.stop()
        super().tearDown()

    def config(self, main_extra=""):
        return ("targets:\n"
                "  testomat:\n"
                "    main: { base_url: \"%s\", api_key: \"%s\"%s }\n"
                "    templated: { base_url: \"%s\", api_key: \"%s\",\n"
                "                 run_url: \"https://tm.example/p/{project}/runs/{remote_id}?run={run_id}\" }\n"
                "    other: { base_url: \"http://127.0.0.1:9\", api_key: \"k\" }\n"
                "  qasphere:\n"
                "    qs: { base_url: \"https://acme.eu1.qasphere.com\", api_key: \"k.k.k\",\n"
                "          project: QS, query_plan: { folderIds: [1] },\n"
                "          run_url: \"https://acme.eu1.qasphere.com/project/QS/run/{remote_id}\" }\n"
                "  testcenter:\n"
                "    tc: { base_url: \"http://127.0.0.1:9\", token: \"t0k3n-secret\", project: P }\n"
                % (self.testomat.url, self.testomat.opts["api_key"], main_extra,
                   self.testomat.url, self.testomat.opts["api_key"]))

    RULES = """
rules:
  - name: mirror
    match: { event: "run.*" }
    actions:
      - testomat: { target: main }
      - testomat: { target: templated }
"""

    def map_run(self, kind, target, remote_id, data="{}", project="DEMO", run_id=42):
        """A target's mapping of a run, as a target writes it."""
        db = sqlite3.connect(os.path.join(self.b.data, "runbridge.db"), timeout=10)
        with db:
            db.execute("INSERT OR REPLACE INTO target_runs(kind, target, project, run_id,"
                       " remote_id, state, data, updated_ms) VALUES(?,?,?,?,?,?,?,?)",
                       (kind, target, project, run_id, remote_id, "created", data, 1))
        db.close()

    def test_each_target_links_to_its_run(self):
        self.start(self.config(), rules=self.RULES)
        self.b.post(run_body(42, "Nightly"))
        self.testomat.wait_requests(2, path="/api/reporter", method="POST")
        wait_until(lambda: len(self.ok("/api/v1/runs/DEMO/42")["targets"]) == 2,
                   what="both testomat targets mapped")
        self.map_run("qasphere", "qs", "31/7 x")
        self.map_run("testcenter", "tc", "25")
        detail = self.ok("/api/v1/runs/DEMO/42")
        by = {(t["kind"], t["name"]): t for t in detail["targets"]}
        self.assertEqual(set(by), {("testomat", "main"), ("testomat", "templated"),
                                   ("qasphere", "qs"), ("testcenter", "tc")})
        self.assertEqual([t["name"] for t in detail["targets"]],
                         ["main", "templated", "qs", "tc"])   # in config order
        main, templated = by[("testomat", "main")], by[("testomat", "templated")]
        # no run_url: the page Testomat.io named when it created the run
        self.assertEqual(main["url"], "%s/projects/fake-project/runs/%s"
                         % (self.testomat.url, main["remote_id"]))
        # run_url: filled in, each value percent-encoded
        self.assertEqual(templated["url"], "https://tm.example/p/DEMO/runs/%s?run=42"
                         % templated["remote_id"])
        self.assertEqual(by[("qasphere", "qs")]["url"],
                         "https://acme.eu1.qasphere.com/project/QS/run/31%2F7%20x")
        self.assertIsNone(by[("testcenter", "tc")]["url"])   # nothing says where
        for t in detail["targets"]:
            self.assertEqual(list(t), ["kind", "name", "remote_id", "url", "state"])
        # the list carries the same
        listed = self.ok("/api/v1/runs")["items"][0]["targets"]
        self.assertEqual(listed, detail["targets"])
        # what a server answered is shown only as an http(s) link, its
        # query values masked
        for stored, shown in (("https://tm.example/r/1?api_key=sekrit", "https://tm.example/r/1?api_key=***"),
                              ("javascript:alert(1)", None),
                              ("https://user:pw@tm.example/r/1", None)):
            self.map_run("testomat", "other", "r1", json.dumps({"url": stored}))
            self.assertEqual({(t["kind"], t["name"]): t for t in self.ok(
                "/api/v1/runs/DEMO/42")["targets"]}[("testomat", "other")]["url"], shown)
        # a target that has no id for the run yet links nowhere
        self.map_run("qasphere", "qs", None)
        self.assertIsNone({(t["kind"], t["name"]): t for t in
                           self.ok("/api/v1/runs/DEMO/42")["targets"]}[("qasphere", "qs")]["url"])
        self.assertNotIn("t0k3n-secret", json.dumps(self.ok("/api/v1/runs")))
        self.assertNotIn(self.testomat.opts["api_key"], json.dumps(self.ok("/api/v1/runs")))

    def test_run_url_mistakes_are_refused_with_their_place(self):
        self.start()
        for value, why in (
                ("ftp://x/{remote_id}", "expected an http:// or https:// URL"),
                ("https://x/{{remote_id}}", "unknown placeholder '{{remote_id}'"),
                ("https://x/{uid}", "unknown placeholder '{uid}'"),
                ("https://me:pw@x/{remote_id}", "may not carry credentials"),
                ("https://x/r/{remote_id}?api_key=k", "query parameter 'api_key'"),
                ("https://x/r/{remote_id}?x=1&token=abc", "query parameter 'token'")):
            with open(self.b.config) as f:
                base = f.read()
            bad = os.path.join(self.tmp, "bad.yaml")
            with open(bad, "w") as f:
                f.write(base + "targets:\n  testomat:\n    main:\n      api_key: k\n"
                        "      run_url: \"%s\"\n" % value)
            p = subprocess.run([BIN, "check", "-c", bad], capture_output=True, text=True,
                               timeout=60)
            self.assertNotEqual(p.returncode, 0, value)
            self.assertRegex(p.stderr, r"bad\.yaml:\d+:\d+: targets\.testomat\.main\.run_url: ",
                             value)
            self.assertIn(why, p.stderr, value)


class TestStream(ApiCase):
    def open_stream(self, headers=""):
        s = socket.create_connection(("127.0.0.1", self.b.port), timeout=10)
        s.sendall(("GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % headers).encode())
        return s

    def read_until(self, s, needle, timeout=10, buf=b""):
        deadline = time.monotonic() + timeout
        while not re.search(needle, buf, re.S):
            if time.monotonic() > deadline:
                raise AssertionError("no %r in %r" % (needle, buf))
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("stream closed: %r" % buf)
            buf += chunk
        return buf

    def test_stream_carries_deliveries_and_job_changes(self):
        b = self.start("http:\n  max_stream_clients: 1\n")
        s = self.open_stream()
        head = self.read_until(s, b": runbridge stream")
        self.assertIn(b"HTTP/1.1 200", head)
        self.assertIn(b"Content-Type: text/event-stream", head)
        self.assertIn(b"X-Content-Type-Options: nosniff", head)
        # one client is the limit: the next gets 503 with a JSON error
        status, doc = self.get("/api/v1/stream")
        self.assertEqual(status, 503)
        self.assertIn("max_stream_clients", doc["error"])
        body = run_body(9, "<b>streamed</b>")
        b.post(body)
        buf = self.read_until(s, b"event: job\ndata: [^\n]*\n\n")
        events = [blk for blk in buf.split(b"\n\n") if b"\ndata: " in blk]
        deliveries = [json.loads(e.split(b"\ndata: ", 1)[1]) for e in events
                      if b"event: delivery" in e]
        self.assertEqual(deliveries[0]["id"], delivery_id(body))
        self.assertEqual(deliveries[0]["title"], "<b>streamed</b>")
        self.assertEqual(deliveries[0]["run_id"], 9)
        s.close()
        # the slot frees when the client goes
        wait_until(lambda: self.get("/api/v1/session")[0] == 200 and
                   self._stream_opens(), timeout=20, what="stream slot freed")
        self.assertStopsCleanly(b)

    def _stream_opens(self):
        s = self.open_stream()
        try:
            return b"200 OK" in s.recv(200)
        finally:
            s.close()

    def test_stream_needs_access(self):
        self.start("http:\n  admin_token: %s\n  admin_trust_loopback: false\n" % TOKEN)
        self.assertEqual(self.get("/api/v1/stream")[0], 401)
        s = self.open_stream("Authorization: Bearer %s\r\n" % TOKEN)
        self.read_until(s, b": runbridge stream")
        s.close()


if __name__ == "__main__":
    unittest.main()
