"""The HTTP contract: statuses, JSON bodies, and that refused deliveries
are neither stored nor routed."""
import hashlib
import hmac
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import unittest

from rbtest import Case, EVENTS, Runbridge, delivery_id, fixture, free_port, wait_until


class HttpContract(Case):
    def setUp(self):
        super().setUp()
        self.b = self.bridge()

    def assertRefused(self, status, body, code, word):
        self.assertEqual(status, code, body)
        self.assertIsInstance(body, dict, body)
        self.assertIn(word, body["error"])

    def test_each_fixture_is_accepted_with_its_delivery_id(self):
        for ev in EVENTS:
            body = fixture(ev)
            status, doc = self.b.post(body)
            self.assertEqual(status, 202, doc)
            self.assertEqual(doc, {"id": delivery_id(body), "duplicate": False})

    def test_redelivery_answers_duplicate_true(self):
        body = fixture("run.started")
        self.assertEqual(self.b.post(body)[1]["duplicate"], False)
        status, doc = self.b.post(body)
        self.assertEqual((status, doc), (202, {"id": delivery_id(body), "duplicate": True}))
        self.assertEqual(self.b.status()["deliveries"], 1)

    def test_bad_json_is_400(self):
        self.assertRefused(*self.b.post(b"{not json"), 400, "JSON")

    def test_non_object_is_400(self):
        self.assertRefused(*self.b.post(b"[1,2]"), 400, "object")

    def test_missing_event_name_is_400(self):
        body = json.dumps({"payload": {"id": 1}, "project_code": "X"})
        self.assertRefused(*self.b.post(body), 400, "event")

    def test_missing_payload_id_is_400(self):
        body = json.dumps({"event_name": "run.started", "payload": {}})
        self.assertRefused(*self.b.post(body), 400, "payload.id")

    def test_wrong_types_are_400(self):
        for doc, word in [
            ({"event_name": 5, "payload": {"id": 1}}, "event"),
            ({"event_name": "run.started", "payload": {"id": "1"}}, "payload.id"),
            ({"event_name": "run.started", "payload": {"id": 1}, "project_code": 7}, "project_code"),
            ({"event_name": "run.started", "payload": {"id": 1}, "timestamp": "x"}, "timestamp"),
        ]:
            self.assertRefused(*self.b.post(json.dumps(doc)), 400, word)

    def test_get_on_webhook_path_is_405(self):
        status, doc = self.b.request("GET", "/webhooks/qase")
        self.assertRefused(status, doc, 405, "POST")

    def test_wrong_content_type_is_415(self):
        status, doc = self.b.post(fixture("run.started"), headers={"Content-Type": "text/plain"})
        self.assertRefused(status, doc, 415, "application/json")

    def test_content_type_with_charset_is_accepted(self):
        status, _ = self.b.post(fixture("run.started"),
                                headers={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(status, 202)

    def test_body_over_limit_is_413_without_reading_it(self):
        # Announce 2 MiB, send a few bytes: the answer must come at once.
        s = socket.create_connection(("127.0.0.1", self.b.port), timeout=5)
        s.sendall(b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 2097152\r\n\r\n{\"a\":")
        reply = s.recv(4096).decode()
        s.close()
        self.assertTrue(reply.startswith("HTTP/1.1 413"), reply)
        self.assertIn("max_body_bytes", reply)

    def chunked_post(self, body, piece=65536):
        """Sends body with chunked transfer encoding; returns the reply text."""
        s = socket.create_connection(("127.0.0.1", self.b.port), timeout=10)
        s.sendall(b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for i in range(0, len(body), piece):
                chunk = body[i:i + piece]
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end: what we want to see
        reply = b""
        try:
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                data = s.recv(4096)
                if not data:
                    break
                reply += data
        except ConnectionResetError:
            pass
        s.close()
        return reply.decode()

    def test_chunked_body_is_accepted(self):
        reply = self.chunked_post(fixture("run.started"), piece=50)
        self.assertTrue(reply.startswith("HTTP/1.1 202"), reply)
        self.assertIn(delivery_id(fixture("run.started")), reply)

    def test_chunked_body_over_limit_is_413(self):
        big = b'{"event_name":"run.started","payload":{"id":1},"x":"' + b"a" * (1 << 21) + b'"}'
        reply = self.chunked_post(big)
        self.assertTrue(reply.startswith("HTTP/1.1 413"), reply)
        self.assertEqual(self.b.status()["deliveries"], 0)

    def test_unknown_path_is_404_json(self):
        status, doc = self.b.request("POST", "/nope", body=b"{}")
        self.assertRefused(status, doc, 404, "path")

    def test_refused_deliveries_are_not_stored(self):
        self.b.post(b"{not json")
        self.b.post(fixture("run.started"), headers={"Content-Type": "text/plain"})
        st = self.b.status()
        self.assertEqual((st["deliveries"], st["pending"], st["done"]), (0, 0, 0))
        self.assertEqual(self.redis.cmd("EXISTS", "rb:ID"), 0)

    def test_unknown_event_is_stored_and_routed(self):
        body = json.dumps({"event_name": "result.created", "payload": {"id": 9},
                           "project_code": "ID"})
        self.assertEqual(self.b.post(body)[0], 202)
        entries = wait_until(lambda: self.redis.stream("rb:ID"), what="stream entry")
        self.assertEqual(entries[0][1]["type"], "result.created")

    def test_healthz_and_readyz(self):
        self.assertEqual(self.b.request("GET", "/healthz"), (200, {"status": "ok"}))
        status, doc = self.b.request("GET", "/readyz")
        self.assertEqual(status, 200)
        self.assertEqual(doc["store"], "ok")
        self.assertIn(doc["redis"], ("up", "down"))


class Secret(Case):
    def setUp(self):
        super().setUp()
        self.b = self.bridge(secret="s3cr3t")

    def test_missing_secret_is_401(self):
        status, doc = self.b.post(fixture("run.started"))
        self.assertEqual(status, 401)
        self.assertIn("X-Qase-Secret", doc["error"])

    def test_wrong_secret_is_401(self):
        status, doc = self.b.post(fixture("run.started"), headers={"X-Qase-Secret": "nope"})
        self.assertEqual(status, 401)
        self.assertNotIn("s3cr3t", json.dumps(doc))

    def test_right_secret_is_202(self):
        status, _ = self.b.post(fixture("run.started"), headers={"X-Qase-Secret": "s3cr3t"})
        self.assertEqual(status, 202)

    def test_secret_never_reaches_the_log(self):
        self.b.post(fixture("run.started"), headers={"X-Qase-Secret": "s3cr3t"})
        self.b.post(fixture("run.started"), headers={"X-Qase-Secret": "wrong"})
        self.assertNotIn("s3cr3t", self.b.logs())


class SecretFromEnvironment(Case):
    def test_secret_expands_from_environment(self):
        b = self.bridge(secret="${RB_TEST_SECRET}", env={"RB_TEST_SECRET": "from-env"})
        self.assertEqual(b.post(fixture("run.started"))[0], 401)
        self.assertEqual(b.post(fixture("run.started"), headers={"X-Qase-Secret": "from-env"})[0], 202)

    def test_empty_secret_variable_disables_the_check(self):
        b = self.bridge(secret="${RB_TEST_SECRET_UNSET}")
        self.assertEqual(b.post(fixture("run.started"))[0], 202)


class Signature(Case):
    def setUp(self):
        super().setUp()
        self.b = self.bridge(source="    hmac_header: X-Signature\n    hmac_secret: k3y\n")

    def sign(self, body, key=b"k3y"):
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    def test_signed_body_is_accepted(self):
        body = fixture("run.started")
        self.assertEqual(self.b.post(body, headers={"X-Signature": self.sign(body)})[0], 202)

    def test_bare_hex_signature_is_accepted(self):
        body = fixture("run.started")
        sig = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
        self.assertEqual(self.b.post(body, headers={"X-Signature": sig})[0], 202)

    def test_missing_or_wrong_signature_is_401(self):
        body = fixture("run.started")
        status, doc = self.b.post(body)
        self.assertEqual(status, 401)
        self.assertIn("X-Signature", doc["error"])
        status, doc = self.b.post(body, headers={"X-Signature": self.sign(body, b"other")})
        self.assertEqual(status, 401)
        status, _ = self.b.post(body + b" ", headers={"X-Signature": self.sign(body)})
        self.assertEqual(status, 401)
        self.assertEqual(self.b.status()["deliveries"], 0)
        self.assertNotIn("k3y", self.b.logs())


class AdminToken(Case):
    def test_metrics_from_loopback_need_no_token(self):
        b = self.bridge(extra="http:\n  admin_token: t0ken\n")
        self.assertEqual(b.request("GET", "/metrics")[0], 200)


class Limits(Case):
    def test_rate_limit_per_address_answers_429(self):
        b = self.bridge(extra="http:\n  rate_limit_per_s: 5\n")
        statuses = [b.post(json.dumps({"event_name": "run.updated", "payload": {"id": i}}))[0]
                    for i in range(1, 30)]
        self.assertIn(429, statuses)
        self.assertEqual(statuses[:5], [202] * 5)
        accepted = statuses.count(202)
        self.assertEqual(b.status()["deliveries"], accepted)

    def test_oversized_headers_are_refused(self):
        b = self.bridge(extra="http:\n  max_header_bytes: 2048\n")
        s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
        s.sendall(b"POST /webhooks/qase HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4096 +
                  b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        try:
            reply = s.recv(4096).decode(errors="replace")
        except ConnectionResetError:
            reply = ""
        s.close()
        self.assertFalse(reply.startswith("HTTP/1.1 2"), reply)   # refused or cut off
        self.assertEqual(b.status()["deliveries"], 0)
        self.assertEqual(b.post(fixture("run.started"))[0], 202)


class Tls(Case):
    def test_tls_listener_with_separate_key(self):
        cert, key = self.make_cert()
        b = Runbridge(self.tmp, self.redis.port,
                      extra="tls:\n  certificate: %s\n  key: %s\n" % (cert, key))
        self.bridges.append(b)
        self.tls_listen(b)
        b.start(wait=False)
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False

        def post():
            conn = http.client.HTTPSConnection("127.0.0.1", b.port, context=ctx, timeout=5)
            conn.request("POST", "/webhooks/qase", body=fixture("run.started"),
                         headers={"Content-Type": "application/json"})
            try:
                r = conn.getresponse()
                return r.status, json.loads(r.read())
            finally:
                conn.close()
        # started without waiting for /healthz: under valgrind (RB_WRAPPER)
        # start-up alone takes seconds
        status, doc = wait_until(lambda: _try(post), what="an answer over TLS",
                                 timeout=60 if os.environ.get("RB_WRAPPER") else 10)
        self.assertEqual((status, doc["id"]), (202, delivery_id(fixture("run.started"))))
        self.assertEqual(post()[1]["duplicate"], True)
        self.assertStopsCleanly(b)
        self.assertFalse(os.path.exists(os.path.join(b.data, "tls.pem")), "joined PEM left behind")

    def test_plain_and_tls_listeners_each_serve_their_own(self):
        """Two listeners, one plain and one TLS, hammered at once: the door
        hands each connection to the listener that accepted it (a shared
        queue gave plain connections to civetweb's TLS accept)."""
        cert, key = self.make_cert()
        b = Runbridge(self.tmp, self.redis.port,
                      extra="tls:\n  certificate: %s\n  key: %s\n" % (cert, key))
        self.bridges.append(b)
        tls_port = free_port()
        with open(b.config) as f:
            cfg = f.read().replace("listen: 127.0.0.1:%d" % b.port,
                                   "listen: 127.0.0.1:%d,127.0.0.1:%ds" % (b.port, tls_port))
        with open(b.config, "w") as f:
            f.write(cfg)
        b.start()
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        n, failures, lock = 60, [], threading.Lock()

        def send(tls, i):
            body = json.dumps({"event_name": "run.updated", "timestamp": i,
                               "payload": {"id": 1 + i % 5, "tls": tls},
                               "project_code": "LIS"}).encode()
            conn = (http.client.HTTPSConnection("127.0.0.1", tls_port, context=ctx, timeout=20)
                    if tls else http.client.HTTPConnection("127.0.0.1", b.port, timeout=20))
            try:
                conn.request("POST", "/webhooks/qase", body=body,
                             headers={"Content-Type": "application/json",
                                      "Connection": "close"})
                status = conn.getresponse().status
            except (OSError, ssl.SSLError, http.client.HTTPException) as e:
                status = repr(e)
            finally:
                conn.close()
            if status != 202:
                with lock:
                    failures.append((tls, i, status))

        def sender(tls):
            for i in range(n):
                send(tls, i + (n if tls else 0))
        threads = [threading.Thread(target=sender, args=(tls,)) for tls in (0, 1, 0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        self.assertStopsCleanly(b)

    def test_tls_port_without_certificate_is_a_config_error(self):
        b = Runbridge(self.tmp, self.redis.port)
        self.tls_listen(b)
        p = b.cli("check")
        self.assertEqual(p.returncode, 1)
        self.assertIn("tls.certificate", p.stderr)

    def make_cert(self):
        """A self-signed certificate for 127.0.0.1 and its key, in the temp dir."""
        cert = os.path.join(self.tmp, "cert.pem")
        key = os.path.join(self.tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        return cert, key

    def tls_listen(self, b):
        with open(b.config) as f:
            cfg = f.read().replace("listen: 127.0.0.1:%d" % b.port, "listen: 127.0.0.1:%ds" % b.port)
        with open(b.config, "w") as f:
            f.write(cfg)


def _try(fn):
    """fn's (status, doc), or None while the daemon is not serving yet:
    refused, TLS not up, or 503 "starting" (handlers not registered yet)."""
    try:
        status, doc = fn()
    except (OSError, ssl.SSLError):
        return None
    if status == 503 and isinstance(doc, dict) and doc.get("error") == "starting":
        return None
    return status, doc


class Startup(Case):
    """The first deliveries after a start: civetweb serves from mg_start on,
    before the handlers are registered and before the door has taken its
    listening socket over."""

    def test_deliveries_at_start_get_202_or_503_starting_never_404_nor_a_stall(self):
        body = fixture("run.started")
        wrapped = bool(os.environ.get("RB_WRAPPER"))  # valgrind: seconds per answer
        for i in range(2 if wrapped else 6):
            workdir = os.path.join(self.tmp, "start%d" % i)
            os.makedirs(workdir)
            b = Runbridge(workdir, self.redis.port)
            b.start(wait=False)
            self.bridges.append(b)
            answers = []
            while True:
                self.assertIsNone(b.proc.poll(), b.logs())
                try:
                    t = time.monotonic()
                    status, doc = b.post(body, timeout=10)
                    answers.append((status, doc, time.monotonic() - t))
                except OSError:
                    time.sleep(0.001)  # not listening yet
                    continue
                if status == 202:
                    break
                self.assertEqual(status, 503, (status, doc))
                self.assertEqual(doc["error"], "starting")
            # civetweb's poll quantum is 2 s: a request that waits for it
            # was taken by the door while civetweb slept on the old socket
            slow = [a for a in answers if a[2] > 1.0]
            if not wrapped:
                self.assertEqual(slow, [], answers)
            b.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
