"""The command line: check, route, status, --help."""
import json
import os
import subprocess
import tempfile
import unittest

from rbtest import BIN, FIXTURES, SOURCE_DIR


def run(*args, cwd=None):
    return subprocess.run([BIN] + list(args), capture_output=True, text=True,
                          cwd=cwd, timeout=30)


class Cli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rbcli-")
        self.cfg = os.path.join(self.tmp, "c.yaml")
        self.rules = os.path.join(self.tmp, "rules")
        os.makedirs(self.rules)
        with open(self.cfg, "w") as f:
            f.write("data_dir: %s/data\nrules: %s\n" % (self.tmp, self.rules))

    def write_rules(self, name, text):
        with open(os.path.join(self.rules, name), "w") as f:
            f.write(text)

    def test_check_accepts_the_shipped_config_and_rules(self):
        p = run("check", "-c", "config/runbridge.yaml", cwd=SOURCE_DIR)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("OK", p.stdout)

    def test_check_names_file_line_and_column_of_a_broken_rule(self):
        self.write_rules("10-ok.yaml", "rules:\n  - name: a\n    actions: [ { redis: { stream: s } } ]\n")
        self.write_rules("20-bad.yaml", "rules:\n  - name: b\n    match:\n      all:\n"
                                        "        - { field: run.counts.failed, gtt: 0 }\n"
                                        "    actions: [ { redis: { stream: s } } ]\n")
        p = run("check", "-c", self.cfg)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"20-bad\.yaml:5:\d+: .*gtt")

    def test_check_reports_every_error(self):
        self.write_rules("r.yaml", "rules:\n  - name: a\n    actions: [ { nope: {} } ]\n"
                                   "  - name: a\n    actions: [ { redis: { stream: s } } ]\n")
        p = run("check", "-c", self.cfg)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"r\.yaml:3:\d+: .*nope")
        self.assertRegex(p.stderr, r"r\.yaml:4:\d+: .*a")

    def test_check_reports_config_errors_with_position(self):
        with open(self.cfg, "a") as f:
            f.write("max_body_bytes: lots\n")
        p = run("check", "-c", self.cfg)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"c\.yaml:3:\d+: .*max_body_bytes")

    def test_check_warns_of_a_secret_whose_variable_is_unset(self):
        with open(self.cfg, "a") as f:
            f.write("sources:\n  qase:\n    secret: ${RB_TEST_SURELY_UNSET}\n"
                    "redis:\n  url: redis://:${RB_TEST_SURELY_UNSET_PW}@127.0.0.1:6379/0\n")
        env = dict(os.environ)
        env.pop("RB_TEST_SURELY_UNSET", None)
        p = subprocess.run([BIN, "check", "-c", self.cfg], capture_output=True,
                           text=True, timeout=30, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"c\.yaml:5:\d+: warning: sources\.qase\.secret uses "
                                   r"\$\{RB_TEST_SURELY_UNSET\}, which is unset: authentication is off")
        self.assertRegex(p.stderr, r"c\.yaml:7:\d+: warning: redis\.url uses "
                                   r"\$\{RB_TEST_SURELY_UNSET_PW\}, which is unset")
        env["RB_TEST_SURELY_UNSET"] = "s3cret"
        env["RB_TEST_SURELY_UNSET_PW"] = "pw"
        p = subprocess.run([BIN, "check", "-c", self.cfg], capture_output=True,
                           text=True, timeout=30, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("warning", p.stderr)

    def test_route_prints_event_matches_and_rendered_actions(self):
        self.write_rules("r.yaml", 'rules:\n  - name: to-stream\n    match: { event: run.started }\n'
                                   '    actions:\n      - redis: { stream: "rb:{{project}}:{{run.title}}" }\n'
                                   '  - name: other\n    match: { event: run.completed }\n'
                                   '    actions: [ { redis: { stream: x } } ]\n')
        p = run("route", "-c", self.cfg, os.path.join(FIXTURES, "run.started.json"))
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["event"]["type"], "run.started")
        self.assertEqual(out["matched"], ["to-stream"])
        self.assertEqual(out["actions"][0]["redis"]["stream"], "rb:ID:Test run 2022/04/21")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "data")))

    def test_route_masks_the_secrets_of_http_actions_unless_asked(self):
        self.write_rules("r.yaml", 'rules:\n  - name: chat\n    actions:\n'
                                   '      - http:\n'
                                   '          url: "https://hooks.slack.com/services/T0/B0/SLACKSECRET"\n'
                                   '          body: "{}"\n'
                                   '      - http:\n'
                                   '          url: "https://ci.example.com/build?token=QUERYSECRET&job=nightly"\n'
                                   '          headers: { Authorization: "Bearer HEADERSECRET", X-Run: "r" }\n')
        delivery = os.path.join(FIXTURES, "run.started.json")
        p = run("route", "-c", self.cfg, delivery)
        self.assertEqual(p.returncode, 0, p.stderr)
        for secret in ("SLACKSECRET", "QUERYSECRET", "HEADERSECRET"):
            self.assertNotIn(secret, p.stdout)
        actions = [a["http"] for a in json.loads(p.stdout)["actions"]]
        self.assertEqual(actions[0]["url"], "https://hooks.slack.com/***")
        self.assertEqual(actions[1]["url"], "https://ci.example.com/build?token=***&job=***")
        self.assertEqual(actions[1]["headers"], {"Authorization": "***", "X-Run": "r"})
        p = run("route", "-c", self.cfg, delivery, "--show-secrets")
        self.assertEqual(p.returncode, 0, p.stderr)
        for secret in ("SLACKSECRET", "QUERYSECRET", "HEADERSECRET"):
            self.assertIn(secret, p.stdout)

    def test_route_refuses_an_invalid_delivery(self):
        bad = os.path.join(self.tmp, "bad.json")
        with open(bad, "w") as f:
            f.write('{"event_name": "run.started"}')
        p = run("route", "-c", self.cfg, bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn("payload", p.stderr)

    def test_status_on_an_empty_store(self):
        p = run("status", "-c", self.cfg)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("pending: 0", p.stdout)
        self.assertIn("dead: 0", p.stdout)

    def test_relative_rules_next_to_the_config_are_found_from_elsewhere(self):
        with open(self.cfg, "w") as f:
            f.write("data_dir: %s/data\nrules: rules\n" % self.tmp)
        self.write_rules("r.yaml", "rules:\n  - name: a\n    actions: [ { redis: { stream: s } } ]\n")
        p = run("check", "-c", self.cfg, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 rule from %s/rules" % self.tmp, p.stdout)

    def test_every_command_has_help(self):
        for cmd in ["serve", "check", "route", "replay", "status"]:
            p = run(cmd, "--help")
            self.assertEqual(p.returncode, 0)
            self.assertIn("usage: runbridge " + cmd, p.stdout)

    def test_unknown_command_is_usage_error(self):
        self.assertEqual(run("frobnicate").returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
