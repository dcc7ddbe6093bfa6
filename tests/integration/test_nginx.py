"""packaging/nginx/runbridge.conf, as shipped, in front of the real daemon.

Debian's nginx runs as a subprocess (not the system service) with the
shipped server block, only its placeholders substituted: a free 127.0.0.1
port, a self-signed certificate made here, runbridge's port.  Deliveries go
through it over HTTPS; what must stay on the host is checked to be answered
by nginx and never forwarded (nginx's access log records the upstream
address of every request, "-" when there was none).
"""
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import unittest
import warnings

from rbtest import Case, SOURCE_DIR, delivery_id, fixture, free_port, wait_until

CONF = os.path.join(SOURCE_DIR, "packaging", "nginx", "runbridge.conf")
SECRET = "s3cr3t-through-nginx"
HMAC_KEY = b"k3y-through-nginx"
MAX_BODY = 1048576          # runbridge's max_body_bytes default = the conf's client_max_body_size 1m


def find_tool(name):
    return shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/usr/bin/" + name) if os.access(p, os.X_OK)), None)


def render(text, port, cert, key, upstream_port):
    """The shipped file with its CHANGE placeholders replaced, nothing else."""
    subs = [
        ("listen 443 ssl;", "listen 127.0.0.1:%d ssl;" % port, 1),
        ("server_name webhooks.example.com;", "server_name localhost;", 1),
        ("/etc/letsencrypt/live/webhooks.example.com/fullchain.pem", cert, 1),
        ("/etc/letsencrypt/live/webhooks.example.com/privkey.pem", key, 1),
        ("server 127.0.0.1:8080;", "server 127.0.0.1:%d;" % upstream_port, 1),
    ]
    for old, new, count in subs:
        found = text.count(old)
        if found != count:
            raise AssertionError("%s: expected the placeholder %r %d time(s), found it %d"
                                 % (CONF, old, count, found))
        text = text.replace(old, new)
    return text


MAIN_CONF = """\
# Minimal main config around the shipped server block: everything in %(dir)s.
%(user)s
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log info;
events { worker_connections 64; }
http {
    client_body_temp_path %(dir)s/client_body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    # As Debian's /etc/nginx/nginx.conf has it: the server block must override it.
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    log_format rbtest '$request_method $request_uri $status upstream=$upstream_addr';
    access_log %(dir)s/access.log rbtest;
    include %(dir)s/runbridge.conf;
}
"""


class Nginx:
    def __init__(self, workdir, upstream_port):
        self.bin = find_tool("nginx")
        self.dir = os.path.join(workdir, "nginx")
        os.makedirs(self.dir)
        self.port = free_port()
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        subprocess.run([find_tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True, timeout=60)
        with open(CONF) as f:
            server = render(f.read(), self.port, self.cert, self.key, upstream_port)
        with open(os.path.join(self.dir, "runbridge.conf"), "w") as f:
            f.write(server)
        self.main = os.path.join(self.dir, "nginx.conf")
        # As root the workers would switch to "nobody", which cannot enter
        # the test's private temp dir.
        user = "user root root;" if os.geteuid() == 0 else ""
        with open(self.main, "w") as f:
            f.write(MAIN_CONF % {"dir": self.dir, "user": user})
        self.access_log = os.path.join(self.dir, "access.log")
        self.error_log = os.path.join(self.dir, "error.log")
        self.proc = None

    def start(self):
        test = subprocess.run([self.bin, "-t", "-p", self.dir, "-c", self.main],
                              capture_output=True, text=True, timeout=30)
        if test.returncode != 0:
            raise AssertionError("nginx -t refused the rendered config:\n" + test.stderr)
        self.out = open(os.path.join(self.dir, "stderr"), "wb")
        self.proc = subprocess.Popen([self.bin, "-p", self.dir, "-c", self.main,
                                      "-g", "daemon off;"],
                                     stdout=self.out, stderr=self.out)
        wait_until(self._listening, what="nginx on 127.0.0.1:%d" % self.port)
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("nginx exited %s:\n%s" % (self.proc.returncode, self.errors()))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.terminate()          # SIGTERM: fast shutdown
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
            self.out.close()

    def errors(self):
        text = ""
        for p in (os.path.join(self.dir, "stderr"), self.error_log):
            if os.path.exists(p):
                with open(p, "rb") as f:
                    text += f.read().decode(errors="replace")
        return text

    def log_lines(self):
        if not os.path.exists(self.access_log):
            return []
        with open(self.access_log) as f:
            return f.read().splitlines()


class BehindNginx(Case):
    def setUp(self):
        # Missing tools are a failure, not a skip: CI must run this.
        for tool in ("nginx", "openssl"):
            if not find_tool(tool):
                self.fail("%s is not installed (scripts/deps.sh installs it)" % tool)
        super().setUp()
        self.nginx = None
        try:
            self.b = self.bridge(secret=SECRET,
                                 source="    hmac_header: X-Signature\n    hmac_secret: %s\n"
                                 % HMAC_KEY.decode())
            self.nginx = Nginx(self.tmp, self.b.port).start()
        except BaseException:
            self.tearDown()
            raise
        self.ctx = ssl.create_default_context(cafile=self.nginx.cert)   # verified, not unverified

    def tearDown(self):
        if self.nginx:
            self.nginx.stop()
            self.nginx = None
        super().tearDown()

    # -- helpers -----------------------------------------------------------

    def https(self, method, path, body=None, headers=None, ctx=None):
        conn = http.client.HTTPSConnection("localhost", self.nginx.port,
                                           context=ctx or self.ctx, timeout=15)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return r.status, data, r
        finally:
            conn.close()

    def deliver(self, body, secret=SECRET, sign=True, path="/webhooks/qase", extra=None):
        h = {"Content-Type": "application/json"}
        if secret is not None:
            h["X-Qase-Secret"] = secret
        if sign:
            h["X-Signature"] = "sha256=" + hmac.new(HMAC_KEY, body, hashlib.sha256).hexdigest()
        h.update(extra or {})
        return self.https("POST", path, body=body, headers=h)

    def logged(self, method, uri):
        """The access log line of one request (waits for nginx to write it)."""
        pat = re.compile(r"^%s %s (\d{3}) upstream=(\S+)$" % (re.escape(method), re.escape(uri)))

        def find():
            for line in self.nginx.log_lines():
                m = pat.match(line)
                if m:
                    return int(m.group(1)), m.group(2)
            return None
        return wait_until(find, timeout=5, what="access log line for %s %s" % (method, uri))

    def runbridge_metrics(self):
        status, text = self.b.request("GET", "/metrics")     # straight to runbridge, loopback
        self.assertEqual(status, 200)
        text = text.decode() if isinstance(text, bytes) else str(text)
        counts = {}
        for m in re.finditer(r'^runbridge_deliveries_total\{[^}]*status="(\d+)"\} (\d+)$',
                             text, re.M):
            if int(m.group(2)):
                counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + int(m.group(2))
        return counts           # {status: deliveries runbridge answered with it}, zeros left out

    def raw_tls(self, request, read_until=b"\r\n\r\n"):
        """Sends raw bytes over TLS; returns what came back (up to the headers' end)."""
        raw = socket.create_connection(("127.0.0.1", self.nginx.port), timeout=10)
        s = self.ctx.wrap_socket(raw, server_hostname="localhost")
        try:
            try:
                s.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                pass
            reply = b""
            try:
                while read_until not in reply:
                    data = s.recv(4096)
                    if not data:
                        break
                    reply += data
            except (ConnectionResetError, ssl.SSLError):
                pass
            return reply
        finally:
            s.close()

    # -- the tests ---------------------------------------------------------

    def test_delivery_over_https_is_202_and_reaches_the_stream(self):
        body = fixture("run.started")
        status, data, _ = self.deliver(body)
        self.assertEqual(status, 202, data)
        self.assertEqual(json.loads(data), {"id": delivery_id(body), "duplicate": False})
        entries = wait_until(lambda: self.redis.stream("rb:ID"), what="stream entry")
        self.assertEqual(len(entries), 1)
        self.assertEqual(entries[0][1]["id"], delivery_id(body))
        self.assertEqual(entries[0][1]["type"], "run.started")
        self.assertEqual(self.logged("POST", "/webhooks/qase"), (202, "127.0.0.1:%d" % self.b.port))
        # A redelivery through the proxy is recognised as such.
        status, data, _ = self.deliver(body)
        self.assertEqual((status, json.loads(data)["duplicate"]), (202, True))

    def test_secret_and_signature_headers_pass_through(self):
        body = fixture("run.completed")
        status, data, _ = self.deliver(body, secret="wrong")
        self.assertEqual(status, 401, data)
        self.assertIn("X-Qase-Secret does not match", json.loads(data)["error"])
        status, data, _ = self.deliver(body, secret=None)
        self.assertEqual(status, 401, data)
        self.assertIn("X-Qase-Secret header is missing", json.loads(data)["error"])
        status, data, _ = self.deliver(body, sign=False)
        self.assertEqual(status, 401, data)
        self.assertIn("X-Signature header is missing", json.loads(data)["error"])
        self.assertEqual(self.runbridge_metrics().get(401), 3)
        self.assertEqual(self.deliver(body)[0], 202)
        self.assertEqual(self.b.status()["deliveries"], 1)
        self.assertNotIn(SECRET, self.b.logs())

    def test_chunked_delivery_is_buffered_by_nginx_and_accepted(self):
        body = fixture("run.updated")
        sig = "sha256=" + hmac.new(HMAC_KEY, body, hashlib.sha256).hexdigest()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 40]), body[i:i + 40])
                          for i in range(0, len(body), 40))
        reply = self.raw_tls(b"POST /webhooks/qase HTTP/1.1\r\nHost: localhost\r\n"
                             b"Content-Type: application/json\r\nX-Qase-Secret: " +
                             SECRET.encode() + b"\r\nX-Signature: " + sig.encode() +
                             b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                             chunks + b"0\r\n\r\n", read_until=b"}")
        self.assertTrue(reply.startswith(b"HTTP/1.1 202"), reply)
        self.assertIn(delivery_id(body).encode(), reply)

    def test_body_at_the_limit_passes_and_one_byte_more_is_413_from_nginx(self):
        head = b'{"event_name":"run.updated","payload":{"id":7},"project_code":"ID","pad":"'
        body = head + b"a" * (MAX_BODY - len(head) - 2) + b'"}'
        self.assertEqual(len(body), MAX_BODY)
        status, data, _ = self.deliver(body)
        self.assertEqual(status, 202, data)
        # One byte over: nginx refuses on Content-Length, before the body.
        reply = self.raw_tls(b"POST /webhooks/qase HTTP/1.1\r\nHost: localhost\r\n"
                             b"Content-Type: application/json\r\nX-Qase-Secret: " +
                             SECRET.encode() + b"\r\nContent-Length: %d\r\n\r\n{\"a\":"
                             % (MAX_BODY + 1))
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"),
                        "expected nginx's 413 before the body, got %r" % reply[:300])
        self.assertEqual(self.logged("POST", "/webhooks/qase")[0], 202)
        self.assertEqual(self.runbridge_metrics().get(413, 0), 0, "runbridge saw the 413")
        self.assertEqual(self.b.status()["deliveries"], 1)

    def test_admin_and_unknown_paths_are_404_and_never_forwarded(self):
        paths = ["/metrics", "/readyz", "/api/runs", "/api/", "/ui/", "/ui/index.html",
                 "/", "/webhooks/qase/", "/webhooks/qase/../../metrics", "/%6detrics",
                 "/webhooks/qase%2F..%2F..%2Fmetrics"]
        for path in paths:
            for method in ("GET", "POST"):
                status, data, _ = self.https(method, path, body=b"{}" if method == "POST" else None,
                                             headers={"Content-Type": "application/json"})
                self.assertEqual(status, 404, "%s %s: %r" % (method, path, data[:300]))
                self.assertNotIn(b"runbridge_", data)
                self.assertNotIn(b'"error"', data, "runbridge answered %s %s" % (method, path))
                self.assertEqual(self.logged(method, path), (404, "-"),
                                 "%s %s was forwarded" % (method, path))
        self.assertEqual(self.runbridge_metrics(), {}, "runbridge saw deliveries")

    def test_other_methods_on_the_webhook_path_are_405_from_nginx(self):
        for method in ("GET", "PUT", "DELETE"):
            status, _, _ = self.https(method, "/webhooks/qase")
            self.assertEqual(status, 405, method)
            self.assertEqual(self.logged(method, "/webhooks/qase"), (405, "-"))

    def test_healthz_is_forwarded(self):
        status, data, _ = self.https("GET", "/healthz")
        self.assertEqual((status, json.loads(data)), (200, {"status": "ok"}))
        self.assertEqual(self.logged("GET", "/healthz"), (200, "127.0.0.1:%d" % self.b.port))

    def test_plain_http_on_the_tls_port_is_refused(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.nginx.port, timeout=10)
        try:
            conn.request("POST", "/webhooks/qase", body=fixture("run.started"),
                         headers={"Content-Type": "application/json", "X-Qase-Secret": SECRET})
            r = conn.getresponse()
            status, data = r.status, r.read()
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            status, data = None, b""
        finally:
            conn.close()
        self.assertIn(status, (400, None), data)     # "The plain HTTP request was sent to HTTPS port"
        self.assertEqual(self.b.status()["deliveries"], 0)
        self.assertEqual(self.runbridge_metrics(), {})

    def test_only_tls_1_2_and_1_3(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = ssl.create_default_context(cafile=self.nginx.cert)
            ctx.minimum_version = ctx.maximum_version = version
            status, _, _ = self.https("GET", "/healthz", ctx=ctx)
            self.assertEqual(status, 200, version)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)
        for version in old:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")   # let this client offer the old versions
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ctx.maximum_version = version
            raw = socket.create_connection(("127.0.0.1", self.nginx.port), timeout=10)
            try:
                with self.assertRaises(ssl.SSLError, msg=str(version)) as cm:
                    ctx.wrap_socket(raw, server_hostname="localhost").close()
            finally:
                raw.close()
            # The server refused the version (not this client failing to offer it).
            self.assertRegex(str(cm.exception), "(?i)protocol.version|unsupported.protocol",
                             str(version))
        with open(CONF) as f:
            self.assertIn("ssl_protocols TLSv1.2 TLSv1.3;", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
