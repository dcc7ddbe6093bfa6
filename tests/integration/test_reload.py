"""SIGHUP reload of targets and the other reloadable keys: the next delivery
reaches a target added by the reload, credentials change without a restart,
a target that still has queued work cannot be removed, and keys that need a
restart are named."""
import json
import signal
import unittest

from fakes import Fake
from rbtest import Case, fixture, wait_until


def delivery(event, run=1, **payload):
    doc = json.loads(fixture(event))
    doc["payload"]["id"] = run
    doc["payload"].update(payload)
    doc["project_code"] = "DEMO"
    return json.dumps(doc)


def rules(*targets):
    acts = "".join("      - testomat: { target: %s }\n" % t for t in targets)
    return "rules:\n  - name: mirror\n    match: { event: \"run.*\" }\n    actions:\n" + acts


class Reload(Case):
    def setUp(self):
        super().setUp()
        self.fakes = []

    def tearDown(self):
        for f in self.fakes:
            f.stop()
        super().tearDown()

    def fake(self, **kw):
        f = Fake("testomat", self.tmp, **kw).start()
        self.fakes.append(f)
        return f

    def targets(self, **named):
        out = "targets:\n  testomat:\n"
        for name, (fake, key) in named.items():
            out += '    %s: { base_url: "%s", api_key: "%s", timeout_s: 1 }\n' % (
                name, fake.url, key or fake.opts["api_key"])
        return out

    def rewrite(self, b, rule_text, extra):
        """Writes a new rules file and config (same listen, data, redis)."""
        with open(b.rules, "w") as f:
            f.write(rule_text)
        with open(b.config) as f:
            cfg = f.read()
        cfg = cfg[:cfg.index("targets:")] if "targets:" in cfg else cfg
        with open(b.config, "w") as f:
            f.write(cfg + extra)

    def reload(self, b, expect="reloaded"):
        n = b.logs().count(expect)
        b.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: b.logs().count(expect) > n, what="%r logged" % expect)
        return b.logs()

    def test_a_target_added_by_reload_gets_the_next_delivery(self):
        a, bb = self.fake(), self.fake()
        b = self.bridge(rules=rules("a"), extra=self.targets(a=(a, None)))
        self.assertEqual(b.post(delivery("run.started", run=1))[0], 202)
        a.wait_requests(1, path="/api/reporter", method="POST")
        self.rewrite(b, rules("a", "b"), self.targets(a=(a, None), b=(bb, None)))
        self.reload(b)
        self.assertEqual(b.post(delivery("run.started", run=2))[0], 202)
        bb.wait_requests(1, path="/api/reporter", method="POST")
        wait_until(lambda: len(a.requests(path="/api/reporter", method="POST")) == 2,
                   what="run 2 on a too")
        st = b.status()
        self.assertEqual(st["dead"], 0, b.cli("status", "--dead").stdout)
        self.assertStopsCleanly(b)

    def test_new_credentials_apply_without_a_restart(self):
        a = self.fake()
        b = self.bridge(rules=rules("a"), extra=self.targets(a=(a, "wrong-key")))
        b.post(delivery("run.started", run=1))
        wait_until(lambda: b.status()["dead"] == 1, timeout=20, what="401 to dead letters")
        self.rewrite(b, rules("a"), self.targets(a=(a, None)))
        self.reload(b)
        self.assertEqual(b.cli("replay", "--dead", check=True).returncode, 0)
        wait_until(lambda: b.status()["dead"] == 0 and b.status()["done"] == 1, timeout=20,
                   what="the replayed job done with the new key")
        ok = [r for r in a.requests(path="/api/reporter", method="POST") if r["status"] == 200]
        self.assertEqual(len(ok), 1)

    def test_removing_a_target_with_queued_jobs_is_refused_with_the_count(self):
        a, bb = self.fake(), self.fake()
        b = self.bridge(rules=rules("a", "b"),
                        extra="retry: { max_attempts: 1000, base_ms: 200, max_ms: 400 }\n" +
                        self.targets(a=(a, None), b=(bb, None)))
        bb.stop()
        self.fakes.remove(bb)
        b.post(delivery("run.started", run=1))
        b.post(delivery("run.updated", run=1))
        wait_until(lambda: b.status()["retrying"] + b.status()["pending"] >= 2,
                   what="b's jobs queued")
        self.rewrite(b, rules("a"), self.targets(a=(a, None)))
        logs = self.reload(b, expect="reload refused")
        line = [l for l in logs.splitlines() if "reload refused" in l][-1]
        self.assertIn("'b'", line)
        self.assertIn("2 queued", line)
        # the old configuration keeps running: b's jobs are still there, none dead
        self.assertEqual(b.status()["dead"], 0)
        bb = Fake("testomat", self.tmp, port=bb.port).start()
        self.fakes.append(bb)
        wait_until(lambda: b.status()["retrying"] + b.status()["pending"] == 0, timeout=30,
                   what="b's jobs done once b is back")
        self.assertEqual(b.status()["dead"], 0)

    def test_keys_that_need_a_restart_are_named(self):
        b = self.bridge()
        with open(b.config) as f:
            cfg = f.read()
        with open(b.config, "w") as f:
            f.write(cfg.replace("listen: 127.0.0.1:%d" % b.port, "listen: 127.0.0.1:1")
                    + "http:\n  threads: 7\n")
        logs = self.reload(b)
        line = [l for l in logs.splitlines() if "need a restart" in l][-1]
        self.assertIn("listen", line)
        self.assertIn("http.threads", line)
        # still listening where it was
        self.assertEqual(b.request("GET", "/healthz")[0], 200)


if __name__ == "__main__":
    unittest.main()
