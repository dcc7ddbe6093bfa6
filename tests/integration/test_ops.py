"""Running it as a service: /metrics, JSON logs, SIGHUP reload."""
import http.client
import json
import re
import signal
import unittest

from rbtest import Case, fixture, wait_until


def metric(text, name, **labels):
    """The value of one sample of the exposition text, or None."""
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    return None


class Metrics(Case):
    def test_metrics_count_deliveries_queue_and_attempts(self):
        b = self.bridge()
        b.post(fixture("run.started"))
        b.post(fixture("run.started"))
        b.post(b"{nope")
        wait_until(lambda: b.status()["done"] == 1)
        conn = http.client.HTTPConnection("127.0.0.1", b.port, timeout=5)
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        text = r.read().decode()
        conn.close()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/plain"))
        self.assertEqual(metric(text, "runbridge_deliveries_total", source="qase",
                                type="run.started", status="202"), 2)
        self.assertEqual(metric(text, "runbridge_deliveries_total", source="qase",
                                type="other", status="400"), 1)
        self.assertEqual(metric(text, "runbridge_duplicates_total"), 1)
        self.assertEqual(metric(text, "runbridge_queue_jobs", state="done"), 1)
        self.assertEqual(metric(text, "runbridge_queue_jobs", state="pending"), 0)
        self.assertEqual(metric(text, "runbridge_action_attempts_total", kind="redis",
                                target="", outcome="ok"), 1)
        self.assertEqual(metric(text, "runbridge_redis_connected"), 1)
        self.assertGreaterEqual(metric(text, "runbridge_store_commit_seconds_count"), 1)
        self.assertEqual(metric(text, "runbridge_build_info", version="0.1.0"), 1)
        # Every line is a comment or a well-formed sample.
        for line in text.splitlines():
            self.assertRegex(line, r'^(# (HELP|TYPE) .*|[a-z_]+(\{[^}]*\})? [0-9.e+-]+)$')


class JsonLogs(Case):
    def test_json_log_lines_carry_the_delivery_id(self):
        b = self.bridge(extra="log:\n  format: json\n")
        body = fixture("run.started")
        _, doc = b.post(body)
        wait_until(lambda: b.status()["done"] == 1)
        b.post(b"[]")
        self.assertStopsCleanly(b)
        lines = [json.loads(l) for l in b.logs().splitlines() if l.strip()]
        for l in lines:
            self.assertEqual(set(l) >= {"ts", "level", "msg"}, True, l)
        accepted = [l for l in lines if l["msg"] == "delivery accepted"]
        self.assertEqual(accepted[0]["id"], doc["id"])
        self.assertEqual(accepted[0]["type"], "run.started")
        refused = [l for l in lines if l["msg"] == "delivery refused"]
        self.assertEqual(refused[0]["status"], "400")
        self.assertNotIn('"raw"', b.logs())  # no payloads at info level


class Reload(Case):
    def test_sighup_reloads_rules_and_refuses_broken_ones(self):
        b = self.bridge()
        b.post(fixture("run.started"))
        wait_until(lambda: len(self.redis.stream("rb:ID")) == 1)
        with open(b.rules, "w") as f:
            f.write('rules:\n  - name: new\n    actions: [ { redis: { stream: "rb:new" } } ]\n')
        b.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reloaded" in b.logs(), what="reload logged")
        b.post(fixture("run.completed"))
        wait_until(lambda: len(self.redis.stream("rb:new")) == 1, what="new rules in use")
        self.assertEqual(len(self.redis.stream("rb:ID")), 1)
        with open(b.rules, "w") as f:
            f.write('rules:\n  - name: broken\n    actions: [ { nope: {} } ]\n')
        b.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in b.logs(), what="refusal logged")
        self.assertRegex(b.logs(), r"rules\.yaml:3:\d+: .*nope")
        b.post(fixture("run.aborted"))
        wait_until(lambda: len(self.redis.stream("rb:new")) == 2, what="old rules kept")
        self.assertStopsCleanly(b)


if __name__ == "__main__":
    unittest.main(verbosity=2)
