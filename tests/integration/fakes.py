"""Strict fakes of the target APIs (and of the Qase API runbridge reads
results from), for integration tests.

    fake = Fake("qasphere", workdir).start()
    ... point runbridge at fake.api_url with fake.opts["api_key"] ...
    fake.requests()          # every API request it got, oldest first
    fake.control("503", count=2, retry_after=1)
    fake.state()             # runs, results, reports as the fake holds them
    fake.stop()

    qase = Fake("qase", workdir).start()     # base URL qase.api_url (.../v1)
    qase.generate("DEMO", run_id=42, results=237, retested=5)
    qase.seed("DEMO", run={"id": 7}, results=[{"case_id": 1, "status": "failed"}],
              cases=[{"id": 1, "title": "Login", "suite_id": 3}],
              suites=[{"id": 3, "title": "Auth", "parent_id": None}])

The binary is tests/fakes/fake_targets (one process per API kind).  It is
found through FAKE_TARGETS_BIN, else next to RUNBRIDGE_BIN in the build tree
(<build>/runbridge -> <build>/tests/fakes/fake_targets).
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import uuid

from rbtest import free_port, wait_until

KINDS = ("testomat", "qasphere", "testcenter", "qase")

# Credentials each kind is started with unless the caller overrides them
# (pass None to leave an option out).
DEFAULTS = {
    "testomat": {"api_key": "tstmt_fake_key_0123456789"},
    "qasphere": {"api_key": "t1.ak1.fake-token", "project": "DEMO"},
    "testcenter": {"token": "tc-fake-token", "user": "admin@example.com",
                   "password": "fake-pass"},
    "qase": {"token": "qase-fake-token"},
}

# Where each API lives under the fake's root URL.
API_PREFIX = {"testomat": "", "qasphere": "/api/public/v0", "testcenter": "/upload",
              "qase": "/v1"}

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def binary():
    explicit = os.environ.get("FAKE_TARGETS_BIN")
    if explicit:
        return explicit
    rb = os.environ.get("RUNBRIDGE_BIN", "runbridge")
    if not os.path.dirname(rb):
        rb = shutil.which(rb) or rb
    return os.path.join(os.path.dirname(os.path.abspath(rb)), "tests", "fakes", "fake_targets")


def multipart(fields=(), files=()):
    """Encodes multipart/form-data.

    fields: [(name, value)]; files: [(name, filename, content_type, data)],
    filename or content_type None to leave them out.  Returns (body, content_type).
    """
    boundary = "----fake" + uuid.uuid4().hex
    out = []
    for name, value in fields:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n"
                    % (boundary, name)).encode())
        out.append(value if isinstance(value, bytes) else str(value).encode())
        out.append(b"\r\n")
    for name, filename, ctype, data in files:
        disp = "form-data; name=\"%s\"" % name
        if filename is not None:
            disp += "; filename=\"%s\"" % filename
        head = "--%s\r\nContent-Disposition: %s\r\n" % (boundary, disp)
        if ctype is not None:
            head += "Content-Type: %s\r\n" % ctype
        out.append((head + "\r\n").encode())
        out.append(data if isinstance(data, bytes) else data.encode())
        out.append(b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary


class Fake:
    """One fake_targets process serving one API kind on 127.0.0.1."""

    def __init__(self, kind, workdir, port=None, **opts):
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % (KINDS,))
        self.kind = kind
        self.port = port or free_port()
        self.opts = dict(DEFAULTS[kind])
        self.opts.update(opts)
        self.record = os.path.join(workdir, "fake-%s-%d.jsonl" % (kind, self.port))
        self.log_path = os.path.join(workdir, "fake-%s-%d.log" % (kind, self.port))
        self.proc = None
        self.log = None

    # -- process -------------------------------------------------------------

    def start(self):
        exe = binary()
        if not os.access(exe, os.X_OK):
            raise AssertionError(
                "fake_targets not found at %s: build it (tests/CMakeLists.txt needs "
                "add_subdirectory(fakes)) or set FAKE_TARGETS_BIN" % exe)
        argv = [exe, "--kind", self.kind, "--port", str(self.port), "--record", self.record]
        for opt in ("api_key", "token", "user", "password", "project"):
            if self.opts.get(opt) is not None:
                argv += ["--" + opt.replace("_", "-"), self.opts[opt]]
        open(self.record, "ab").close()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log)
        wait_until(self._ready, what="fake %s on port %d" % (self.kind, self.port))
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("fake_targets exited %s:\n%s" % (self.proc.returncode, self.logs()))
        try:
            return self.request("GET", "/_state", prefix=False, auth=False)[0] == 200
        except OSError:
            return False

    def stop(self, timeout=15):
        """SIGTERM; returns the exit status.  Fails on a sanitizer report."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.proc = None
        self.log.close()
        log = self.logs()
        for marker in SANITIZER_MARKERS:
            if marker in log:
                raise AssertionError("sanitizer report from fake_targets:\n" + log[-6000:])
        return rc

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- addresses and credentials --------------------------------------------

    @property
    def url(self):
        """Root URL: http://127.0.0.1:PORT"""
        return "http://127.0.0.1:%d" % self.port

    @property
    def api_url(self):
        """Base URL of the API: root, root + /api/public/v0, root + /upload,
        root + /v1 (qase)."""
        return self.url + API_PREFIX[self.kind]

    def auth_headers(self):
        """Headers that authenticate against this fake (testomat: none, the
        key goes in the query or body)."""
        if self.kind == "qasphere":
            return {"Authorization": "Bearer " + self.opts["api_key"]}
        if self.kind == "testcenter":
            return {"Authorization": "Token " + self.opts["token"]}
        if self.kind == "qase":
            return {"Token": self.opts["token"]}
        return {}

    # -- inspection and control ---------------------------------------------

    def requests(self, path=None, method=None):
        """Recorded API requests, oldest first, each a dict: ts, method, path,
        query (raw string), headers (lower-case names), body (parsed JSON or
        None), raw (text, or multipart parts [{name, filename, content_type,
        data}]), status (None if dropped), fault (if a fault answered it)."""
        out = []
        with open(self.record, "rb") as f:
            for line in f:
                rec = json.loads(line.decode("utf-8", errors="replace"))
                if path is not None and rec["path"] != path:
                    continue
                if method is not None and rec["method"] != method:
                    continue
                out.append(rec)
        return out

    def wait_requests(self, n, timeout=10, **filters):
        """Waits until at least n requests (matching path/method) are recorded."""
        return wait_until(lambda: len(self.requests(**filters)) >= n and self.requests(**filters),
                          timeout=timeout, what="%d requests to the %s fake" % (n, self.kind))

    def control(self, mode=None, count=1, retry_after=None, **settings):
        """Queues a fault for the next `count` API requests (appended after
        those already queued): "ok", "429", "503", "500", "stall", "reset";
        "clear" empties the queue.  Settings: stall_seconds (all kinds);
        conflict_status, close_closed_status, rate_limit (qasphere); seed,
        generate, delete_run, wipe, delay_seconds, delay_count (qase: see
        tests/fakes/fake_qase_data.c, and seed/generate/delay below)."""
        body = dict(settings)
        if mode is not None:
            body["mode"] = mode
            body["count"] = count
        if retry_after is not None:
            body["retry_after"] = retry_after
        status, _, doc = self.request("POST", "/_control", body, prefix=False, auth=False)
        if status != 200:
            raise AssertionError("control %r failed: %s %r" % (body, status, doc))
        return doc

    # -- the Qase fake's data ---------------------------------------------------

    def seed(self, project, run=None, results=None, cases=None, suites=None):
        """Loads Qase entities into project (qase kind).  Each entity is
        checked against the vendor's schema and completed with defaults; a
        run drops that run's earlier results; results go to the seeded run
        unless they name a run_id; cases and suites replace those of the
        same id."""
        body = {"project": project}
        for key, val in (("run", run), ("results", results), ("cases", cases),
                         ("suites", suites)):
            if val is not None:
                body[key] = val
        return self.control(seed=body)

    def generate(self, project, run_id, results, **options):
        """Generates a completed run (qase kind): `results` results over
        results - retested cases with a mix of every status and a custom one,
        `retested` cases with a second, earlier, failed result listed after
        the others, and a suite tree.  Options: retested (0), suites (5),
        custom_status ("flaky", None for none), case_id_start (1), title.
        Returns the run's summary from state()."""
        body = {"project": project, "run_id": run_id, "results": results}
        body.update(options)
        self.control(generate=body)
        return self.state()["projects"][project]["runs"][str(run_id)]

    def delay(self, seconds, count=1):
        """The next `count` API requests (qase kind) are answered normally,
        after `seconds`."""
        return self.control(delay_seconds=seconds, delay_count=count)

    def state(self):
        status, _, doc = self.request("GET", "/_state", prefix=False, auth=False)
        if status != 200:
            raise AssertionError("state failed: %s %r" % (status, doc))
        return doc

    # -- a plain HTTP client for tests ----------------------------------------

    def request(self, method, path, body=None, headers=None, auth=True, prefix=True,
                timeout=10):
        """One request; returns (status, headers with lower-case names, doc).

        path is relative to api_url unless prefix=False.  body: dict/list ->
        JSON, bytes/str sent as is.  auth adds auth_headers()."""
        h = dict(self.auth_headers()) if auth else {}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode()
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, (API_PREFIX[self.kind] if prefix else "") + path,
                         body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            rh = {k.lower(): v for k, v in r.getheaders()}
            try:
                doc = json.loads(data) if data else None
            except ValueError:
                doc = data
            return r.status, rh, doc
        finally:
            conn.close()
