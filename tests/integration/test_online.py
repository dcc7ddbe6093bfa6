"""runbridge check --online (Redis, targets, store) and runbridge --version."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from fakes import SANITIZER_MARKERS, Fake
from rbtest import BIN, Redis, free_port

RULES = "rules:\n  - name: a\n    actions: [ { redis: { stream: s } } ]\n"


def run(*args, timeout=60):
    p = subprocess.run([BIN] + list(args), capture_output=True, text=True, timeout=timeout)
    for marker in SANITIZER_MARKERS:
        if marker in p.stderr:
            raise AssertionError("sanitizer report from runbridge:\n" + p.stderr[-6000:])
    return p


def lines_of(stdout, prefix):
    return [l for l in stdout.splitlines() if l.startswith(prefix)]


class Online(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rbonline-")
        self.redis = Redis(self.tmp).start()
        self.tm = Fake("testomat", self.tmp).start()
        self.qs = Fake("qasphere", self.tmp).start()
        self.tc = Fake("testcenter", self.tmp).start()
        self.cfg = os.path.join(self.tmp, "c.yaml")
        with open(os.path.join(self.tmp, "rules.yaml"), "w") as f:
            f.write(RULES)

    def tearDown(self):
        for fake in (self.tm, self.qs, self.tc):
            fake.stop()
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write_config(self, redis_url=None, tm_key=None, qs_key=None, data_dir=None,
                     tm_url=None):
        tc = self.tc.opts
        with open(self.cfg, "w") as f:
            f.write("data_dir: %s\nrules: %s/rules.yaml\n" % (data_dir or self.tmp + "/data", self.tmp))
            f.write("redis: { url: \"%s\" }\n" % (redis_url or "redis://127.0.0.1:%d/0" % self.redis.port))
            f.write("targets:\n  testomat:\n")
            f.write("    tm: { base_url: \"%s\", api_key: \"%s\" }\n"
                    % (tm_url or self.tm.url, tm_key or self.tm.opts["api_key"]))
            f.write("  qasphere:\n")
            f.write("    qs: { base_url: \"%s\", api_key: \"%s\", project: DEMO,"
                    " query_plan: { folderIds: [1] } }\n" % (self.qs.url, qs_key or self.qs.opts["api_key"]))
            f.write("  testcenter:\n")
            f.write("    tc: { base_url: \"%s\", token: \"%s\", project: DEMO }\n" % (self.tc.url, tc["token"]))
            f.write("    tcbasic: { base_url: \"%s\", user: \"%s\", password: \"%s\", project: DEMO }\n"
                    % (self.tc.url, tc["user"], tc["password"]))

    def check(self, *extra):
        return run("check", "-c", self.cfg, "--online", *extra)

    def assertNoWrites(self):
        for fake in (self.tm, self.qs, self.tc):
            methods = {r["method"] for r in fake.requests()}
            self.assertEqual(methods, {"GET"}, "%s got %s" % (fake.kind, methods))

    # -- all answer -------------------------------------------------------------

    def test_every_line_says_ok_when_everything_answers(self):
        self.write_config()
        p = self.check()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = p.stdout.splitlines()
        self.assertRegex(out[0], r"c\.yaml: OK \(1 rule from ")
        self.assertEqual(lines_of(p.stdout, "redis "),
                         ["redis redis://127.0.0.1:%d/0: ok (SELECT 0, PING)" % self.redis.port])
        self.assertEqual(lines_of(p.stdout, "target testomat 'tm' "),
                         ["target testomat 'tm' %s: ok (GET /api/test_grep 200)" % self.tm.url])
        self.assertEqual(lines_of(p.stdout, "target qasphere 'qs' "),
                         ["target qasphere 'qs' %s: ok (GET /api/public/v0/project/DEMO/run?limit=1 200)"
                          % self.qs.url])
        for name in ("tc", "tcbasic"):
            self.assertEqual(lines_of(p.stdout, "target testcenter '%s' " % name),
                             ["target testcenter '%s' %s: ok (GET /api/v1/batches?project0=DEMO 200)"
                              % (name, self.tc.url)])
        store = lines_of(p.stdout, "store ")
        self.assertEqual(len(store), 1)
        self.assertRegex(store[0], r"^store .*/data: ok \(writable, serve creates it in .*, "
                                   r"\d+\.\d (GiB|MiB) free\)$")
        self.assertEqual(len(out), 7, p.stdout)
        self.assertNoWrites()
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "data")))
        # credentials went where each API wants them
        self.assertIn("api_key=" + self.tm.opts["api_key"], self.tm.requests()[0]["query"])
        self.assertEqual(self.qs.requests()[0]["headers"]["authorization"],
                         "Bearer " + self.qs.opts["api_key"])
        auths = sorted(r["headers"]["authorization"].split()[0] for r in self.tc.requests())
        self.assertEqual(auths, ["Basic", "Token"])

    def test_existing_data_dir_is_written_and_left_as_it_was(self):
        data = os.path.join(self.tmp, "data")
        os.makedirs(data)
        self.write_config()
        p = self.check()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(lines_of(p.stdout, "store ")[0],
                         r"^store %s: ok \(writable, \d+\.\d (GiB|MiB) free\)$" % re.escape(data))
        self.assertEqual(os.listdir(data), [])

    # -- redis -----------------------------------------------------------------

    def test_redis_password_is_sent_with_auth_and_never_printed(self):
        self.redis.cmd("CONFIG", "SET", "requirepass", "right-pass")
        self.write_config(redis_url="redis://:right-pass@127.0.0.1:%d/3" % self.redis.port)
        p = self.check()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        line = lines_of(p.stdout, "redis ")[0]
        self.assertTrue(line.endswith(": ok (AUTH, SELECT 3, PING)"), line)
        self.assertNotIn("right-pass", p.stdout + p.stderr)

    def test_wrong_redis_password_fails_naming_auth(self):
        self.redis.cmd("CONFIG", "SET", "requirepass", "right-pass")
        self.write_config(redis_url="redis://:wrong-pass@127.0.0.1:%d/0" % self.redis.port)
        p = self.check()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        line = lines_of(p.stdout, "redis ")[0]
        self.assertIn(": FAILED: AUTH: ", line)
        self.assertNotIn("wrong-pass", p.stdout + p.stderr)
        # the other checks still ran and passed
        self.assertEqual(len([l for l in p.stdout.splitlines() if ": ok (" in l]), 5, p.stdout)

    def test_missing_redis_password_says_the_url_has_none(self):
        self.redis.cmd("CONFIG", "SET", "requirepass", "right-pass")
        self.write_config()
        p = self.check()
        self.assertEqual(p.returncode, 1)
        line = lines_of(p.stdout, "redis ")[0]
        self.assertRegex(line, r": FAILED: SELECT: NOAUTH .*the URL has no password")

    def test_redis_port_nothing_listens_on_fails_quickly(self):
        port = free_port()
        self.write_config(redis_url="redis://127.0.0.1:%d/0" % port)
        t0 = time.monotonic()
        p = self.check()
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(lines_of(p.stdout, "redis "),
                         ["redis redis://127.0.0.1:%d/0: FAILED: connect: Connection refused" % port])

    # -- targets ---------------------------------------------------------------

    def test_wrong_target_keys_fail_with_the_target_and_its_refusal(self):
        self.write_config(tm_key="tstmt_wrong_key_000", qs_key="t1.ak1.wrong")
        p = self.check()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(lines_of(p.stdout, "target testomat 'tm' "),
                         ["target testomat 'tm' %s: FAILED: 403 Forbidden (check api_key)"
                          % self.tm.url])
        self.assertEqual(lines_of(p.stdout, "target qasphere 'qs' "),
                         ["target qasphere 'qs' %s: FAILED: 401 Unauthorized "
                          "(check api_key and auth_scheme)" % self.qs.url])
        self.assertIn(": ok (", lines_of(p.stdout, "target testcenter 'tc' ")[0])
        self.assertNotIn("wrong", p.stdout + p.stderr)
        self.assertNoWrites()

    def test_a_target_that_never_answers_times_out(self):
        self.tm.control("stall", count=5, stall_seconds=30)
        self.write_config()
        t0 = time.monotonic()
        p = self.check()
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 1)
        self.assertLess(took, 15)
        line = lines_of(p.stdout, "target testomat 'tm' ")[0]
        self.assertRegex(line, r": FAILED: .*[Tt]imed? ?out")

    def test_a_target_nothing_listens_on(self):
        url = "http://127.0.0.1:%d" % free_port()
        self.write_config(tm_url=url)
        p = self.check()
        self.assertEqual(p.returncode, 1)
        self.assertRegex(lines_of(p.stdout, "target testomat 'tm' ")[0],
                         r"^target testomat 'tm' %s: FAILED: .*(refused|connect)" % re.escape(url))

    # -- store -----------------------------------------------------------------

    def test_data_dir_under_a_regular_file_fails(self):
        blocker = os.path.join(self.tmp, "a-file")
        with open(blocker, "w") as f:
            f.write("x")
        self.write_config(data_dir=blocker + "/data")
        p = self.check()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(lines_of(p.stdout, "store "),
                         ["store %s/data: FAILED: Not a directory" % blocker])

    def test_data_dir_that_is_a_file_fails(self):
        blocker = os.path.join(self.tmp, "a-file")
        with open(blocker, "w") as f:
            f.write("x")
        self.write_config(data_dir=blocker)
        p = self.check()
        self.assertEqual(p.returncode, 1)
        self.assertEqual(lines_of(p.stdout, "store "), ["store %s: FAILED: not a directory" % blocker])

    # -- offline stays as it was ------------------------------------------------

    def test_plain_check_reaches_nothing_and_prints_one_line(self):
        self.write_config(redis_url="redis://127.0.0.1:%d/0" % free_port(), tm_key="tstmt_wrong")
        p = run("check", "-c", self.cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "%s: OK (1 rule from %s/rules.yaml)\n" % (self.cfg, self.tmp))
        self.assertEqual(p.stderr, "")
        for fake in (self.tm, self.qs, self.tc):
            self.assertEqual(fake.requests(), [])

    def test_online_after_a_config_error_reaches_nothing(self):
        self.write_config()
        with open(self.cfg, "a") as f:
            f.write("max_body_bytes: lots\n")
        p = self.check()
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertIn("max_body_bytes", p.stderr)
        self.assertEqual(self.tm.requests(), [])

    def test_help_names_online(self):
        p = run("check", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: runbridge check -c FILE [--online]", p.stdout)


class Version(unittest.TestCase):
    def test_version_prints_version_commit_and_libraries(self):
        p = run("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.splitlines()
        self.assertRegex(out[0], r"^runbridge \d+\.\d+\.\d+ \(commit ([0-9a-f]{7,}|unknown)\)$")
        for lib, pattern in (("civetweb", r"\d+\.\d+"), ("json-c", r"\d+\.\d+"),
                             ("hiredis", r"0\.14\.\d+"), ("libyaml", r"\d+\.\d+\.\d+"),
                             ("SQLite", r"3\.\d+\.\d+ \(run time 3\.\d+\.\d+\)"),
                             ("nettle", r"\d+\.\d+"), ("libcurl", r"\d+\.\d+\.\d+")):
            self.assertTrue([l for l in out[1:] if re.match(r"^%s %s" % (re.escape(lib), pattern), l)],
                            "no %s line in:\n%s" % (lib, p.stdout))
        self.assertEqual(run("version").stdout, p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
