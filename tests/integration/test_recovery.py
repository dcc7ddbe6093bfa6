"""Nothing acknowledged is lost: Redis outages, restarts with pending work,
SIGTERM drains, SIGKILL."""
import json
import signal
import unittest

from rbtest import Case, Redis, wait_until


def body(project, run, i):
    return json.dumps({"event_name": "run.updated", "timestamp": i,
                       "payload": {"id": run, "cases_added": i},
                       "project_code": project})


class Recovery(Case):
    def entries(self, stream):
        return [json.loads(f["event"])["raw"]["timestamp"] for _, f in self.redis.stream(stream)]

    def test_redis_down_keeps_accepting_and_catches_up_in_order(self):
        b = self.bridge()
        port = self.redis.port
        self.redis.stop()
        for i in range(50):
            self.assertEqual(b.post(body("OUT", 1, i))[0], 202)
        status, doc = b.request("GET", "/readyz")
        self.assertEqual((status, doc["redis"]), (200, "down"))
        self.redis = Redis(self.tmp, port).start()
        wait_until(lambda: len(self.entries("rb:OUT")) == 50, timeout=20, what="catch-up")
        self.assertEqual(self.entries("rb:OUT"), list(range(50)))
        st = b.status()
        self.assertEqual((st["pending"], st["retrying"], st["dead"]), (0, 0, 0))
        self.assertStopsCleanly(b)

    def test_restart_resumes_pending_actions(self):
        b = self.bridge()
        port = self.redis.port
        self.redis.stop()
        for i in range(20):
            self.assertEqual(b.post(body("RST", 2, i))[0], 202)
        self.assertStopsCleanly(b)
        self.assertEqual(b.status()["pending"], 20)
        self.redis = Redis(self.tmp, port).start()
        b.start()
        wait_until(lambda: len(self.entries("rb:RST")) == 20, timeout=20, what="resume")
        self.assertEqual(self.entries("rb:RST"), list(range(20)))
        self.assertStopsCleanly(b)

    def test_sigkill_loses_nothing_acknowledged_and_duplicates_nothing(self):
        b = self.bridge()
        acked = 0
        for i in range(100):
            if b.post(body("KILL", 3, i))[0] == 202:
                acked += 1
        b.stop(signal.SIGKILL)
        b.start()
        # Redeliveries after the crash are recognised as duplicates.
        self.assertTrue(b.post(body("KILL", 3, 0))[1]["duplicate"])
        wait_until(lambda: len(self.entries("rb:KILL")) == acked, timeout=20, what="all acked")
        self.assertEqual(self.entries("rb:KILL"), list(range(acked)))
        self.assertStopsCleanly(b)

    def test_sigterm_exits_zero_and_a_restart_finds_everything(self):
        b = self.bridge()
        for i in range(30):
            b.post(body("TERM", 4, i))
        self.assertStopsCleanly(b)
        b.start()
        wait_until(lambda: len(self.entries("rb:TERM")) == 30, what="all entries")
        self.assertEqual(b.status()["deliveries"], 30)
        self.assertStopsCleanly(b)


if __name__ == "__main__":
    unittest.main(verbosity=2)
