"""Hostile peers: malformed and oversized deliveries, slow senders, and
event values that try to escape templates (stream names, hook arguments).

Every refused delivery must be a 400 that names what is wrong, nothing of
it may be stored, and the daemon must stay healthy: after each test the
store holds exactly the deliveries that were answered 202 and /healthz
still answers at once.
"""
import glob
import json
import os
import select
import socket
import threading
import time
import unittest

from rbtest import Case, EVENTS, delivery_id, fixture, wait_until

HOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hooks", "record.sh")

# Short enough that the slow-sender tests finish quickly.
TIMEOUT_CONFIG = "http:\n  request_timeout_ms: 1000\n"


def envelope(**fields):
    """A valid run.started delivery with some fields replaced (None removes
    a field; a dotted payload field is written payload_<name>)."""
    doc = {"event_name": "run.started", "timestamp": 1650540194,
           "team_member_id": 1, "project_code": "HX",
           "payload": {"id": 1, "title": "t"}}
    for key, value in fields.items():
        target, name = doc, key
        if key.startswith("payload_"):
            target, name = doc["payload"], key[len("payload_"):]
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return json.dumps(doc).encode()


class HostileCase(Case):
    """A bridge with a short request timeout; counts what it accepted."""

    def make_rules(self):
        """Rules for the bridge (None: rbtest's default)."""
        return None

    def setUp(self):
        super().setUp()
        kw = {"extra": TIMEOUT_CONFIG}
        rules = self.make_rules()
        if rules:
            kw["rules"] = rules
        self.b = self.bridge(**kw)
        self.accepted = set()

    def tearDown(self):
        try:
            if self.b.proc and self.b.proc.poll() is None:
                self.assertEqual(self.b.request("GET", "/healthz", timeout=10)[0], 200)
                self.assertEqual(self.b.status()["deliveries"], len(self.accepted),
                                 "the store holds exactly the accepted deliveries")
        finally:
            super().tearDown()

    def post(self, body, **kw):
        """Posts body; remembers it when it was accepted."""
        status, doc = self.b.post(body, **kw)
        if status == 202:
            self.assertEqual(doc["id"], delivery_id(body))
            self.accepted.add(doc["id"])
        return status, doc

    def assertRefused(self, body, word=None):
        status, doc = self.post(body)
        self.assertEqual(status, 400, "%r answered %s %r" % (body[:200], status, doc))
        self.assertIsInstance(doc, dict, doc)
        if word:
            self.assertIn(word, doc["error"], body[:200])

    def assertAcceptedOrRefused(self, body):
        status, doc = self.post(body)
        self.assertIn(status, (202, 400), "%r answered %s %r" % (body[:200], status, doc))
        return status

    def assertHealthy(self, within=1.0):
        t0 = time.monotonic()
        self.assertEqual(self.b.request("GET", "/healthz", timeout=5),
                         (200, {"status": "ok"}))
        self.assertLess(time.monotonic() - t0, within, "/healthz was slow")


class MalformedBodies(HostileCase):
    def test_truncated_json_is_400(self):
        for ev in EVENTS:
            body = fixture(ev).rstrip()
            for cut in sorted({1, len(body) // 4, len(body) // 2, len(body) - 1}):
                self.assertRefused(body[:cut], "JSON")

    def test_body_ending_before_content_length_is_refused(self):
        body = fixture("run.started")
        s = socket.create_connection(("127.0.0.1", self.b.port), timeout=5)
        s.sendall(b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                  % len(body) + body[:len(body) // 2])
        s.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while True:
                data = s.recv(4096)
                if not data:
                    break
                reply += data
        except ConnectionResetError:
            pass
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 400"), reply)

    def test_depth_bomb_is_400_at_once(self):
        for bomb in (b"[" * 100000, b'{"a":' * 100000,
                     b'{"event_name":"run.started","payload":{"id":1,"x":'
                     + b"[" * 100000):
            t0 = time.monotonic()
            self.assertRefused(bomb, "nested deeper")
            self.assertLess(time.monotonic() - t0, 2.0, "depth bomb was slow")

    def test_huge_string_within_the_limit_does_no_harm(self):
        head = b'{"event_name":"run.started","payload":{"id":7,"title":"'
        tail = b'"},"project_code":"BIG"}'
        body = head + b"x" * (1048576 - len(head) - len(tail)) + tail
        self.assertEqual(len(body), 1048576)  # exactly max_body_bytes
        self.assertAcceptedOrRefused(body)
        self.assertHealthy()
        self.assertEqual(self.post(fixture("run.started"))[0], 202)

    def test_wide_objects_and_long_arrays_do_no_harm(self):
        wide = (b'{"event_name":"run.started","payload":{"id":8},"w":{'
                + b",".join(b'"k%d":0' % i for i in range(80000)) + b"}}")
        longa = (b'{"event_name":"run.started","payload":{"id":9},"a":['
                 + b",".join([b"0"] * 400000) + b"]}")
        for body in (wide, longa):
            t0 = time.monotonic()
            self.assertAcceptedOrRefused(body)
            self.assertLess(time.monotonic() - t0, 5.0)

    def test_not_an_object_is_400(self):
        for body in (b"[]", b'"run.started"', b"1", b"null", b"true", b"", b" "):
            self.assertRefused(body)

    def test_wrong_types_in_every_envelope_field_are_400(self):
        bad = [
            ("event_name", [5, 1.5, True, [], {}, ""]),
            ("payload", ["x", 1, [], True]),
            ("payload_id", ["1", 1.5, True, [], {}, 0, -1]),
            ("timestamp", ["x", 1.5, True, [], {}, -1]),
            ("team_member_id", ["x", 1.5, True, [], {}]),
            ("project_code", [7, 1.5, True, [], {}]),
        ]
        for field, values in bad:
            word = field.replace("payload_", "payload.")
            for v in values:
                self.assertRefused(envelope(**{field: v}), word)
        # the legacy name is checked the same way
        for v in [5, True, [], {}, ""]:
            self.assertRefused(envelope(event_name=None, event=v), "event")
        # required fields that are null or absent
        self.assertRefused(envelope(event_name=None), "event_name")
        self.assertRefused(envelope(payload=None), "payload")
        self.assertRefused(envelope(payload_id=None), "payload.id")
        self.assertRefused(b'{"event_name":null,"payload":{"id":1}}', "event_name")
        self.assertRefused(b'{"event_name":"run.started","payload":null}', "payload")
        self.assertRefused(b'{"event_name":"run.started","payload":{"id":null}}', "payload.id")

    def test_duplicated_keys_do_no_harm(self):
        for body in (
            b'{"event_name":"run.started","event_name":"run.completed","payload":{"id":21}}',
            b'{"payload":{"id":"x"},"payload":{"id":22},"event_name":"run.started"}',
            b'{"event_name":"run.started","payload":{"id":23,"id":"x"}}',
            b'{"event_name":"run.started","payload":{"id":24},"payload":{"id":25},'
            b'"project_code":"A","project_code":"B"}',
            b'{"event_name":"run.started","payload":{"id":26,"title":"a","title":7}}',
        ):
            self.assertAcceptedOrRefused(body)
            self.assertHealthy()

    def test_invalid_utf8_is_400(self):
        for bad in (b"\xff", b"caf\xe9", b"\xc0\xaf", b"\xed\xa0\x80",
                    b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xf0\x9f\x98"):
            self.assertRefused(b'{"event_name":"run.started","payload":{"id":1,"title":"'
                               + bad + b'"}}', "UTF-8")
            self.assertRefused(b'{"event_name":"run.started","payload":{"id":1},"'
                               + bad + b'":1}', "UTF-8")
            self.assertRefused(b'{"event_name":"run.started","payload":{"id":1}}'
                               + bad, "UTF-8")

    def test_nul_bytes_are_400(self):
        body = b'{"event_name":"run.started","payload":{"id":1},"project_code":"N"}'
        for at in (0, 15, body.index(b"run.started") + 4, body.index(b'"payload'),
                   body.index(b"N"), len(body)):
            self.assertRefused(body[:at] + b"\x00" + body[at:])

    def test_numbers_out_of_range_are_400(self):
        for v in (b"1e400", b"-1e400", b"99999999999999999999", b"-99999999999999999999",
                  b"9223372036854775808", b"18446744073709551615", b"18446744073709551616",
                  b"1e18", b"1.0", b"0", b"-0", b"-1", b"NaN", b"Infinity", b"-Infinity"):
            self.assertRefused(b'{"event_name":"run.started","payload":{"id":%s}}' % v)
        for v in (b"01", b"+1", b"0x10"):
            self.assertRefused(b'{"event_name":"run.started","payload":{"id":%s}}' % v, "JSON")
        for v in (b"1.", b".5", b"1e", b"1e+"):
            self.assertRefused(b'{"event_name":"run.started","payload":{"id":%s}}' % v)
        for field in (b"timestamp", b"team_member_id"):
            for v in (b"99999999999999999999", b"1e400", b"-1e400"):
                self.assertRefused(b'{"event_name":"run.started","payload":{"id":1},"%s":%s}'
                                   % (field, v), field.decode())
        self.assertRefused(b'{"event_name":"run.started","payload":{"id":1},'
                           b'"timestamp":-99999999999999999999}', "timestamp")
        self.assertRefused(b'{"event_name":"run.started","payload":{"id":1},'
                           b'"timestamp":253402300800}', "timestamp")
        # the largest run id and timestamp are fine
        status, _ = self.post(b'{"event_name":"run.started","timestamp":253402300799,'
                              b'"payload":{"id":9223372036854775807}}')
        self.assertEqual(status, 202)

    # json-c clamps an integer below INT64_MIN to INT64_MIN: refused.
    def test_team_member_id_below_int64_is_400(self):
        self.assertRefused(b'{"event_name":"run.started","payload":{"id":1},'
                           b'"team_member_id":-99999999999999999999}', "team_member_id")


class SlowSenders(HostileCase):
    """http.request_timeout_ms bounds how long a sender may take."""

    def trickle(self, prefix, drip, interval=1.0, limit=15.0):
        """Sends prefix, then one byte of drip (cycled) every interval until
        the server closes the connection.  Returns the seconds that took,
        or None when the connection was still open after limit."""
        s = socket.create_connection(("127.0.0.1", self.b.port), timeout=5)
        t0 = time.monotonic()
        i = 0
        try:
            s.sendall(prefix)
            while time.monotonic() - t0 < limit:
                readable, _, _ = select.select([s], [], [], interval)
                if readable:
                    if not s.recv(4096):  # an error reply may come first
                        return time.monotonic() - t0
                    continue
                if drip:
                    s.send(drip[i % len(drip):i % len(drip) + 1])
                    i += 1
            return None
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0
        finally:
            s.close()

    def test_header_trickle_is_cut_off_and_health_stays_fast(self):
        took = []
        t = threading.Thread(target=lambda: took.append(self.trickle(
            b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\n", b"X-Slow: aaaaaaaaaaaa")))
        t.start()
        while t.is_alive():
            self.assertHealthy(within=0.5)
            time.sleep(0.2)
        t.join()
        self.assertIsNotNone(took[0], "a header trickle was never cut off")
        self.assertLess(took[0], 5.0)

    def test_request_line_trickle_and_silence_are_cut_off(self):
        for drip in (b"POST /webhooks/qase HTTP/1.1", b""):
            took = self.trickle(b"", drip)
            self.assertIsNotNone(took, "connection sending %r never cut off" % drip)
            self.assertLess(took, 5.0)

    def test_fifty_slow_senders_do_not_stop_a_delivery(self):
        stop = threading.Event()
        socks = [socket.create_connection(("127.0.0.1", self.b.port), timeout=5)
                 for _ in range(50)]
        for s in socks:
            s.sendall(b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\n")

        def drip():
            while not stop.is_set():
                for s in socks:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
                stop.wait(0.5)

        t = threading.Thread(target=drip)
        t.start()
        try:
            time.sleep(0.3)
            t0 = time.monotonic()
            self.assertEqual(self.post(fixture("run.started"), timeout=10)[0], 202)
            self.assertLess(time.monotonic() - t0, 3.0)
            self.assertHealthy()
            # and every one of them is cut off
            deadline = time.monotonic() + 8
            for s in socks:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    while s.recv(4096):
                        pass
                except ConnectionResetError:
                    pass
                except socket.timeout:
                    self.fail("a slow sender was still connected after 8 s")
        finally:
            stop.set()
            t.join()
            for s in socks:
                s.close()

    # The whole body must arrive within request_timeout_ms: a trickle would
    # otherwise hold a worker thread as long as it keeps coming.
    def test_body_trickle_is_cut_off(self):
        body = fixture("run.started")
        took = self.trickle(b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Type: application/json\r\n"
                            b"Content-Length: %d\r\n\r\n" % len(body),
                            body, interval=0.5, limit=6.0)
        self.assertIsNotNone(took, "a body trickle was never cut off")

    # An idle keep-alive connection holds a worker thread: it is closed
    # after request_timeout_ms like a slow request.
    def test_idle_keep_alive_connections_do_not_stall_a_delivery(self):
        self.b.stop()
        self.b = self.bridge(extra=TIMEOUT_CONFIG + "  threads: 2\n")
        socks = []
        body = fixture("run.started")
        try:
            for _ in range(2):
                s = socket.create_connection(("127.0.0.1", self.b.port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                s.recv(4096)
                socks.append(s)
            t0 = time.monotonic()
            try:
                status = self.post(body, timeout=6)[0]
            except socket.timeout:
                status = None
            self.assertEqual(status, 202)
            self.assertLess(time.monotonic() - t0, 5.0)
        finally:
            for s in socks:
                s.close()
            # a request we gave up on was still sent whole: it is stored
            # once a thread is free
            wait_until(lambda: self.b.status()["deliveries"] == 1, timeout=40,
                       what="the stalled delivery stored")
            self.accepted.add(delivery_id(body))


class HostileValues(HostileCase):
    """Values from a delivery go into a Redis key and hook arguments as
    literal text: no shell, no path resolution, no truncation."""

    def make_rules(self):
        self.out = os.path.join(self.tmp, "out")
        os.makedirs(self.out)
        return """
rules:
  - name: hostile
    actions:
      - redis: { stream: "rb:{{run.title}}", maxlen: 1000 }
      - exec:
          argv: ["%s", "{{run.title}}", "{{project}}"]
          env: { OUT_DIR: "%s", RUN_ID: "{{run_id}}" }
          timeout_s: 30
""" % (HOOK, self.out)

    def args_of(self, run_id):
        """The recorded argv of the hook run for run_id (bytes, verbatim)."""
        files = wait_until(lambda: glob.glob(os.path.join(self.out, "%d-*.args" % run_id)),
                           timeout=20, what="hook run for run %d" % run_id)
        with open(files[0], "rb") as f:
            return f.read()

    def test_titles_reach_stream_names_and_arguments_verbatim(self):
        pwned = [os.path.join(self.tmp, "pwned%d" % i) for i in range(4)]
        titles = [
            'a "double" \'single\' title',
            "line1\nline2\r\nline3\n",
            "$(touch %s) `touch %s` ; touch %s # && touch %s" % tuple(pwned),
            "../../../../etc/passwd",
            "../" * 10 + "tmp/x",
            "tab\there \\ backslash {{project}} %s %n é😀",
            "$(touch %s)" % pwned[0] + "z" * (100 * 1024),
        ]
        for run_id, title in enumerate(titles, start=1):
            doc = json.loads(fixture("run.started"))
            doc["payload"]["id"] = run_id
            doc["payload"]["title"] = title
            self.assertEqual(self.post(json.dumps(doc).encode())[0], 202)
        for run_id, title in enumerate(titles, start=1):
            self.assertEqual(self.args_of(run_id), (title + "\nID\n").encode(),
                             "argv of run %d" % run_id)
            entries = wait_until(lambda: self.redis.stream("rb:" + title),
                                 what="stream of run %d" % run_id)
            self.assertEqual(len(entries), 1)
            self.assertEqual(entries[0][1]["run_id"], str(run_id))
            self.assertEqual(json.loads(entries[0][1]["event"])["run"]["title"], title)
        wait_until(lambda: self.b.status()["done"] == 2 * len(titles), timeout=20,
                   what="every action done")
        for path in pwned:
            self.assertFalse(os.path.exists(path), "a shell ran: %s exists" % path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
