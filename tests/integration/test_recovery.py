"""Nothing acknowledged is lost: Redis outages, restarts with pending work,
SIGTERM drains, SIGKILL."""
import json
import signal
import unittest

import subprocess

from rbtest import Case, Redis, Runbridge, wait_until


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

    def test_full_disk_answers_503_then_recovers_by_itself(self):
        # A file size limit makes the store's writes fail as on a full disk.
        b = Runbridge(self.tmp, self.redis.port)
        self.bridges.append(b)
        b.start(wrapper=["prlimit", "--fsize=262144:unlimited"])
        pad = "x" * 2000
        acked, refused = [], 0
        for i in range(400):
            if refused == 5:
                break
            doc = json.loads(body("FULL", 5, i))
            doc["pad"] = pad
            status, reply = b.post(json.dumps(doc))
            if status == 202:
                acked.append(i)
            else:
                self.assertEqual(status, 503, reply)
                self.assertIn("store", reply["error"])
                refused += 1
        self.assertGreater(refused, 0, "the size limit was never reached")
        self.assertEqual(b.request("GET", "/readyz")[0], 503)
        subprocess.run(["prlimit", "--pid", str(b.proc.pid), "--fsize=unlimited:unlimited"], check=True)
        wait_until(lambda: b.request("GET", "/readyz")[0] == 200, what="ready again")
        self.assertEqual(b.post(body("FULL", 5, 1000))[0], 202)
        acked.append(1000)
        wait_until(lambda: len(self.entries("rb:FULL")) == len(acked), timeout=20,
                   what="every acknowledged delivery in the stream")
        self.assertEqual(self.entries("rb:FULL"), acked)
        self.assertStopsCleanly(b)


if __name__ == "__main__":
    unittest.main(verbosity=2)
