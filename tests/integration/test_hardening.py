"""Issue 15, through the real binary: `check` refuses backreferences and
NUL bytes with their position and never prints a Redis password; an exec
argument too large for exec is dead after one attempt; a wrong Redis
password is logged once, not once per retry, and the recovery once.
"""
import json
import os
import time
import unittest

from rbtest import Case, Runbridge, fixture, wait_until

PW = "Zq9Xw7Kp"


class CheckCase(Case):
    """`runbridge check` on hostile configs and rules (no daemon)."""

    def checked(self, rules=None, extra="", redis_url=None):
        b = Runbridge(self.tmp, self.redis.port, extra=extra,
                      **({"rules": rules} if rules is not None else {}))
        if redis_url is not None:
            with open(b.config) as f:
                text = f.read()
            text = text.replace("redis://127.0.0.1:%d/0" % self.redis.port,
                                "'%s'" % redis_url)
            with open(b.config, "w") as f:
                f.write(text)
        return b, b.cli("check")

    def test_backreference_is_refused_with_position(self):
        rules = ("rules:\n  - name: slow\n    match:\n      all:\n"
                 "        - {field: run.title, matches: '^(a|aa)*(b|\\1)*c\\2$'}\n"
                 "    actions:\n      - redis: { stream: s }\n")
        b, p = self.checked(rules=rules)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("rules.yaml:5:39: rule 'slow': regular expression", p.stderr)
        self.assertIn("backreference '\\1' at offset 11 is not supported", p.stderr)

    def test_nul_byte_in_rules_is_refused_with_position(self):
        b = Runbridge(self.tmp, self.redis.port)
        with open(b.rules, "wb") as f:
            f.write(b"rules:\n  - name: a\n    actions:\n      - redis: { stream: s }\n"
                    b"\x00  - name: b\n    nonsense: [\n")
        p = b.cli("check")
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("rules.yaml:5:1: a NUL byte", p.stderr)

    def test_redis_password_never_printed_by_check(self):
        for url in ["rediss://:%s@127.0.0.1:6379/0" % PW, "redis//:%s@h" % PW,
                    "redis://:%s" % PW, "redis://h:%s" % PW, "redis:%s@h" % PW]:
            b, p = self.checked(redis_url=url)
            self.assertNotEqual(p.returncode, 0, url)
            self.assertIn("redis.url", p.stderr)
            self.assertNotIn(PW[:4], p.stdout + p.stderr, url)
            self.assertNotIn(PW[4:], p.stdout + p.stderr, url)


class ExecCase(Case):
    def test_argv_too_large_is_dead_after_one_attempt(self):
        rules = ("rules:\n  - name: big\n    actions:\n"
                 "      - exec: { argv: [/bin/echo, \"{{run.title}}\"] }\n")
        b = self.bridge(rules=rules, extra="retry:\n  max_attempts: 3\n")
        doc = json.loads(fixture("run.started"))
        doc["payload"]["title"] = "t" * (200 * 1024)
        status, _ = b.post(json.dumps(doc))
        self.assertEqual(status, 202)
        wait_until(lambda: b.status()["dead"] == 1, what="dead job")
        out = b.cli("status", "--dead", check=True).stdout
        self.assertIn("E2BIG", out)
        self.assertIn("argv[1]", out)
        self.assertEqual(b.logs().count("retry scheduled"), 0, b.logs()[-3000:])
        self.assertStopsCleanly(b)


class RedisAuthCase(Case):
    def test_wrong_password_is_logged_once_per_state_change(self):
        self.redis.cmd("CONFIG", "SET", "requirepass", "right-one")
        b = Runbridge(self.tmp, self.redis.port)
        with open(b.config) as f:
            text = f.read()
        text = text.replace("redis://127.0.0.1", "redis://:%s@127.0.0.1" % PW)
        with open(b.config, "w") as f:
            f.write(text)
        self.bridges.append(b)
        b.start()
        # the worker connects when there is something to append
        self.assertEqual(b.post(fixture("run.started"))[0], 202)
        wait_until(lambda: "redis refused authentication" in b.logs(), timeout=15,
                   what="the authentication error in the log")
        # several retries (one each ~0.5 s) later, still one line
        time.sleep(3)
        logs = b.logs()
        self.assertEqual(logs.count("redis refused authentication"), 1, logs[-3000:])
        self.assertIn("WRONGPASS", logs)
        self.assertNotIn(PW, logs)
        # fixed on the server: one line says so
        self._set_pass(PW)
        wait_until(lambda: "redis connected" in b.logs(), timeout=15,
                   what="the recovery in the log")
        wait_until(lambda: b.status()["done"] == 1, what="the append")
        time.sleep(1)
        self.assertEqual(b.logs().count("redis connected"), 1)
        self.assertEqual(b.logs().count("redis refused authentication"), 1)
        b.stop()

    def _set_pass(self, new):
        """CONFIG SET requirepass on a server that wants AUTH first."""
        import socket
        from rbtest import _read_reply
        with socket.create_connection(("127.0.0.1", self.redis.port), timeout=5) as s:
            f = s.makefile("rb")
            for args in (("AUTH", "right-one"), ("CONFIG", "SET", "requirepass", new)):
                out = b"*%d\r\n" % len(args)
                for a in args:
                    a = a.encode()
                    out += b"$%d\r\n%s\r\n" % (len(a), a)
                s.sendall(out)
                _read_reply(f)

    def tearDown(self):
        # the harness's redis client knows no password: clear it first
        try:
            import socket
            from rbtest import _read_reply
            with socket.create_connection(("127.0.0.1", self.redis.port), timeout=5) as s:
                f = s.makefile("rb")
                for pw in (PW, "right-one"):
                    s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw.encode()))
                    try:
                        _read_reply(f)
                        s.sendall(b"*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n$0\r\n\r\n")
                        _read_reply(f)
                        break
                    except RuntimeError:
                        continue
        except OSError:
            pass
        super().tearDown()


if __name__ == "__main__":
    unittest.main()
