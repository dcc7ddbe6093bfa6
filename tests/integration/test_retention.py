"""store.retention: old finished deliveries are deleted with their jobs,
attempts and routed rows; dead ones stay until dead_days; a delivery with an
open job is never deleted, nor the registry and mappings of its run; status
shows the store's size; deliveries posted while a backlog is deleted are all
acknowledged and stored.

The old rows are written straight into a store the binary created (its
schema, its own rows as templates), as bench/retention.py does at scale."""
import json
import os
import signal
import sqlite3
import threading
import time
import unittest

from rbtest import Case, Runbridge, delivery_id, fixture, wait_until

DAY_MS = 86400 * 1000
BULK = 8000  # old done deliveries besides the cases below


def retention(done, dead):
    return "store:\n  retention:\n    done_days: %d\n    dead_days: %d\n" % (done, dead)


def body(run, project="DEMO", **extra):
    doc = json.loads(fixture("run.completed"))
    doc["payload"]["id"] = run
    doc["project_code"] = project
    doc.update(extra)
    return json.dumps(doc).encode()


class Filler:
    """Writes old deliveries shaped like the one the daemon stored."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, timeout=30)
        (self.src, self.type, self.raw, self.event) = self.db.execute(
            "SELECT source, type, raw, event FROM deliveries ORDER BY seq LIMIT 1").fetchone()
        (self.rule, self.kind, self.params) = self.db.execute(
            "SELECT rule, kind, params FROM jobs ORDER BY id LIMIT 1").fetchone()
        self.n = 0

    def add(self, project, run, age_ms, state, now_ms, runs=True):
        """One delivery with one job in `state` (2 done, 3 dead, 1 retrying)."""
        self.n += 1
        did = "%064x" % (0xfeed0000 + self.n)
        at = now_ms - age_ms
        cur = self.db.execute(
            "INSERT INTO deliveries(id, source, type, project, run_id, received_ms, raw, event)"
            " VALUES(?,?,?,?,?,?,?,?)",
            (did, self.src, self.type, project, run, at, self.raw, self.event))
        seq = cur.lastrowid
        next_ms = now_ms + 3650 * DAY_MS if state == 1 else 0
        cur = self.db.execute(
            "INSERT INTO jobs(delivery_seq, rule, idx, kind, params, lane, state, attempts,"
            " next_ms, last_error, created_ms, updated_ms) VALUES(?,?,0,?,?,?,?,?,?,?,?,?)",
            (seq, self.rule, self.kind, self.params, "%s#%d/%s/0" % (project, run, self.rule),
             state, 1 if state != 2 else 0, next_ms, "boom" if state != 2 else None, at, at))
        if state != 2:
            self.db.execute("INSERT INTO attempts(job_id, n, started_ms, finished_ms, ok, detail)"
                            " VALUES(?,1,?,?,0,'boom')", (cur.lastrowid, at, at))
        self.db.execute("INSERT OR REPLACE INTO routed(delivery_id, status, routed_ms)"
                        " VALUES(?, 'routed', ?)", (did, at))
        if runs:
            self.db.execute("INSERT OR REPLACE INTO runs(project, run_id, run, updated_ms)"
                            " VALUES(?,?,'{}',?)", (project, run, at))
        return did

    def close(self):
        self.db.commit()
        self.db.close()


class Retention(Case):
    def setUp(self):
        super().setUp()
        self.b = Runbridge(self.tmp, self.redis.port, extra=retention(0, 0))
        self.bridges.append(self.b)
        self.db_path = os.path.join(self.b.data, "runbridge.db")

    def rows(self, sql, *args):
        with sqlite3.connect(self.db_path, timeout=30) as db:
            return db.execute(sql, args).fetchall()

    def count(self, sql, *args):
        return self.rows(sql, *args)[0][0]

    def set_retention(self, done, dead):
        with open(self.b.config) as f:
            cfg = f.read()
        with open(self.b.config, "w") as f:
            f.write(cfg[:cfg.index("store:")] + retention(done, dead))
        n = self.b.logs().count("reloaded")
        self.b.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.b.logs().count("reloaded") > n, what="reload")

    def fill(self):
        """The store as the binary made it, with old rows of every kind."""
        self.b.start()
        self.assertEqual(self.b.post(body(1))[0], 202)
        wait_until(lambda: self.count("SELECT COUNT(*) FROM jobs WHERE state = 2") == 1,
                   what="the template job done")
        self.b.stop()
        now = int(time.time() * 1000)
        f = Filler(self.db_path)
        ids = {"dead_old": [], "dead_recent": [], "open": [], "done": [], "young": []}
        for i in range(100):  # dead for longer than dead_days: go
            ids["dead_old"].append(f.add("DEAD", 5000 + i, 100 * DAY_MS, 3, now))
        for i in range(BULK):  # done, old: go, with their runs
            ids["done"].append(f.add("OLD", 10000 + i, 40 * DAY_MS + i, 2, now))
        # a run with open jobs: its old done delivery goes, the rest stays
        ids["done"].append(f.add("KEEP", 7, 40 * DAY_MS, 2, now))
        for i in range(100):
            ids["open"].append(f.add("KEEP", 7, 39 * DAY_MS, 1, now))
        f.db.execute("INSERT INTO target_runs(kind, target, project, run_id, remote_id, state,"
                     " data, updated_ms) VALUES('testomat','main','KEEP',7,'r7','open','{}',?),"
                     " ('testomat','main','OLD',10001,'r1','open','{}',?)", (now, now))
        for i in range(200):  # dead, younger than dead_days: stay
            ids["dead_recent"].append(f.add("DEAD", 6000 + i, 38 * DAY_MS, 3, now))
        for i in range(99):  # done, young: stay
            ids["young"].append(f.add("NEW", 20000 + i, DAY_MS, 2, now))
        f.close()
        return ids

    def stored(self, did):
        return self.count("SELECT COUNT(*) FROM deliveries WHERE id = ?", did)

    def test_retention__deletes_the_expired_keeps_open_and_recent_while_acknowledging(self):
        ids = self.fill()
        self.b.start()
        before = self.b.status()
        self.assertIn("store_bytes", before)
        self.assertGreater(before["store_bytes"], 0)
        self.assertEqual(before["store_incremental_vacuum"], 1)
        self.assertEqual(before["store_deleted_deliveries"], 0)
        total = 1 + len(sum(ids.values(), []))
        self.assertEqual(before["deliveries"], total)

        # deliveries keep coming while retention (turned on by a reload)
        # deletes the backlog
        answers, posted, stop = [], [], threading.Event()

        # (at most 1,600 of them, so that the store still ends at less
        # than half its size however long the deletion takes)
        def sender(k):
            n = 0
            while (not stop.is_set() or n < 20) and n < 400:
                raw = body(900000 + k * 100000 + n, project="LIVE")
                answers.append(self.b.post(raw)[0])
                posted.append(delivery_id(raw))
                n += 1
                time.sleep(0.01)

        threads = [threading.Thread(target=sender, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        self.set_retention(30, 90)
        expected = len(ids["dead_old"]) + len(ids["done"])
        try:
            wait_until(lambda: self.b.status()["store_deleted_deliveries"] >= expected,
                       timeout=60, what="the backlog deleted")
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertTrue(answers)
        self.assertEqual(set(answers), {202})
        for did in posted:
            self.assertEqual(self.stored(did), 1, did)

        for did in ids["dead_old"] + ids["done"]:
            self.assertEqual(self.stored(did), 0, did)
        for did in ids["dead_recent"] + ids["open"] + ids["young"]:
            self.assertEqual(self.stored(did), 1, did)
        # no job, attempt or routed row is left without its delivery
        self.assertEqual(self.count("SELECT COUNT(*) FROM jobs WHERE delivery_seq NOT IN"
                                    " (SELECT seq FROM deliveries)"), 0)
        self.assertEqual(self.count("SELECT COUNT(*) FROM attempts WHERE job_id NOT IN"
                                    " (SELECT id FROM jobs)"), 0)
        self.assertEqual(self.count("SELECT COUNT(*) FROM routed WHERE delivery_id NOT IN"
                                    " (SELECT id FROM deliveries)"), 0)
        # a run with open jobs keeps its registry row and mapping; a run
        # with no delivery left loses both
        self.assertEqual(self.count("SELECT COUNT(*) FROM runs WHERE project = 'KEEP'"), 1)
        self.assertEqual(self.count("SELECT COUNT(*) FROM target_runs WHERE project = 'KEEP'"), 1)
        self.assertEqual(self.count("SELECT COUNT(*) FROM runs WHERE project = 'OLD'"), 0)
        self.assertEqual(self.count("SELECT COUNT(*) FROM target_runs WHERE project = 'OLD'"), 0)
        self.assertEqual(self.count("SELECT COUNT(*) FROM runs WHERE project = 'DEAD'"), 200)

        # counts stay right after deletions, and new deliveries add to them
        after = self.b.status()
        self.assertEqual(after["deliveries"], total - expected + len(posted))
        self.assertEqual(after["retrying"], len(ids["open"]))
        self.assertEqual(after["dead"], len(ids["dead_recent"]))
        _, text = self.b.request("GET", "/metrics")
        self.assertIn(b"runbridge_retention_deleted_deliveries_total %d\n" % expected, text)

        # dead_days lowered by a reload: the recently dead go too
        self.set_retention(30, 30)
        wait_until(lambda: self.b.status()["store_deleted_deliveries"] >=
                   expected + len(ids["dead_recent"]), timeout=30, what="the dead deleted")
        for did in ids["dead_recent"]:
            self.assertEqual(self.stored(did), 0, did)
        for did in ids["open"]:
            self.assertEqual(self.stored(did), 1, did)

        # the space is given back (incremental vacuum; the file shrinks at
        # the checkpoint of a clean stop)
        wait_until(lambda: self.b.status()["store_free_pages"] <= 64, timeout=30,
                   what="free pages given back")
        self.b.stop()
        end = self.b.status()
        self.assertLess(end["store_bytes"], before["store_bytes"] / 2)

    def test_retention__a_redelivery_of_a_deleted_delivery_is_accepted_again(self):
        self.b.start()
        raw = body(42)
        self.assertEqual(self.b.post(raw)[1]["duplicate"], False)
        self.b.stop()
        with sqlite3.connect(self.db_path) as db:  # make it old, and add a newer one
            db.execute("UPDATE deliveries SET received_ms = received_ms - 40 * ?", (DAY_MS,))
        f = Filler(self.db_path)
        f.add("NEW", 1, 0, 2, int(time.time() * 1000))
        f.close()
        self.b = Runbridge(self.tmp, self.redis.port, extra=retention(30, 90))
        self.bridges.append(self.b)
        self.b.start()
        wait_until(lambda: self.b.status()["store_deleted_deliveries"] == 1, what="deleted")
        self.assertEqual(self.stored(delivery_id(raw)), 0)
        status, doc = self.b.post(raw)
        self.assertEqual((status, doc["duplicate"]), (202, False))
        self.assertEqual(self.stored(delivery_id(raw)), 1)


if __name__ == "__main__":
    unittest.main()
