"""Every Qase event family on the one endpoint (target-apis 1.6): each is
accepted, normalized with its entity, kept out of the run registry, and
routed; the legacy envelope without project_code; the warning, metrics and
status line for a source that only refuses."""
import json
import os
import re
import time
import unittest

from rbtest import Case, FIXTURES, delivery_id, fixture, wait_until

# fixture -> (entity, entity_id)
FAMILIES = {
    "case.created": ("case", 1610),
    "case.updated": ("case", 1610),
    "case.cloned": ("case", 1611),
    "suite.created": ("suite", 12),
    "suite.cloned": ("suite", 13),
    "plan.created": ("plan", 2),
    "milestone.created": ("milestone", 3),
    "custom_field.created": ("custom_field", 174),
    "defect.resolved": ("defect", 7),
    "review.created": ("review", 1),
    "review.merged": ("review", 1),
    "shared_step.created": ("shared_step", "2563d587b756110934vea4185ce31b2b0dbf457c"),
    "shared_step.deleted": ("shared_step", "2563d587b756110934vea4185ce31b2b0dbf457c"),
}


def other(name):
    return fixture(os.path.join("other", name))


def run_event(name, run_id, project="ID", **payload):
    payload = dict({"id": run_id}, **payload)
    return json.dumps({"event_name": name, "timestamp": 1650540069,
                       "payload": payload, "team_member_id": 1,
                       "project_code": project}).encode()


class Families(Case):
    RULES = """
rules:
  - name: all
    actions:
      - redis: { stream: "rb:all", maxlen: 1000 }
  - name: cases
    match: { event: "case.*" }
    actions:
      - redis: { stream: "rb:cases" }
  - name: deletes
    match: { event: "*.deleted" }
    actions:
      - redis: { stream: "rb:deletes" }
"""

    def events(self, stream, n):
        entries = wait_until(lambda: len(self.redis.stream(stream)) >= n and
                             self.redis.stream(stream), what="%d in %s" % (n, stream))
        return [(f, json.loads(f["event"])) for _, f in entries]

    def test_every_family_fixture_is_accepted_with_its_entity(self):
        b = self.bridge(rules=self.RULES)
        for name in FAMILIES:
            status, doc = b.post(other(name))
            self.assertEqual(status, 202, "%s: %s" % (name, doc))
            self.assertEqual(doc["id"], delivery_id(other(name)))
        got = self.events("rb:all", len(FAMILIES))
        self.assertEqual([e["type"] for _, e in got], list(FAMILIES))
        for (fields, ev), (name, (entity, entity_id)) in zip(got, FAMILIES.items()):
            self.assertEqual(ev["entity"], entity, name)
            self.assertEqual(ev["entity_id"], entity_id, name)
            self.assertIsNone(ev["run_id"], name)
            self.assertIsNone(ev["run"], name)
            self.assertEqual(ev["project"], "ID")
            self.assertEqual(fields["run_id"], "", name)
            self.assertEqual(ev["raw"], json.loads(other(name)))
        cases = [e["type"] for _, e in self.events("rb:cases", 3)]
        self.assertEqual(cases, ["case.created", "case.updated", "case.cloned"])
        deletes = [e["type"] for _, e in self.events("rb:deletes", 1)]
        self.assertEqual(deletes, ["shared_step.deleted"])
        self.assertEqual(b.status()["deliveries"], len(FAMILIES))
        self.assertStopsCleanly(b)

    def test_unknown_names_and_id_less_payloads_are_accepted(self):
        b = self.bridge(rules=self.RULES)
        for body in (b'{"event_name":"something.new","payload":{}}',
                     b'{"event_name":"case.deleted","payload":{"id":"x"}}',
                     b'{"event":"ping","payload":{"hash":"h"}}'):
            self.assertEqual(b.post(body)[0], 202, body)
        got = self.events("rb:all", 3)
        self.assertEqual([(e["entity"], e["entity_id"]) for _, e in got],
                         [("something", None), ("case", None), ("ping", "h")])
        # a run event still needs its run id
        status, doc = b.post(b'{"event_name":"run.started","payload":{"hash":"h"}}')
        self.assertEqual(status, 400)
        self.assertIn("payload.id", doc["error"])

    def test_other_families_never_change_a_runs_title(self):
        b = self.bridge(rules=self.RULES)
        self.assertEqual(b.post(run_event("run.started", 2, title="Nightly",
                                          description="the real run"))[0], 202)
        # Qase's own plan.created, review.created and case.created: ids 2, 1, 1610
        plan = json.loads(other("plan.created"))
        self.assertEqual(plan["payload"]["id"], 2)
        for name in ("plan.created", "review.created", "case.created", "milestone.created"):
            self.assertEqual(b.post(other(name))[0], 202)
        self.assertEqual(b.post(run_event("run.completed", 2, cases=3, passed=2, failed=1))[0], 202)
        got = self.events("rb:all", 6)
        done = got[-1][1]
        self.assertEqual(done["type"], "run.completed")
        self.assertEqual(done["run"]["title"], "Nightly")
        self.assertEqual(done["run"]["description"], "the real run")
        # the route dry run reads the same registry
        path = os.path.join(self.tmp, "completed.json")
        with open(path, "wb") as f:
            f.write(run_event("run.completed", 2))
        b.stop()
        out = json.loads(b.cli("route", path, check=True).stdout)
        self.assertEqual(out["event"]["run"]["title"], "Nightly")

    def test_result_event_reads_its_run_from_the_registry(self):
        b = self.bridge(rules=self.RULES)
        b.post(run_event("run.started", 1, title="Nightly"))
        self.assertEqual(b.post(other("result.created"))[0], 202)
        b.post(run_event("run.completed", 1, cases=1, failed=1))
        (_, started), (_, result), (_, done) = self.events("rb:all", 3)
        self.assertEqual(result["entity"], "result")
        self.assertEqual(result["run_id"], 1)
        self.assertEqual(result["run"]["title"], "Nightly")
        self.assertEqual(result["result"]["status"], "failed")
        self.assertEqual(result["result"]["case_id"], 1610)
        self.assertEqual(result["result"]["time_ms"], 1520)
        self.assertEqual(done["run"]["title"], "Nightly")

    def test_aborted_cases_and_plan_id(self):
        b = self.bridge(rules=self.RULES)
        b.post(run_event("run.started", 5, title="T", plan_id=9))
        b.post(fixture("run.aborted"))
        (_, started), (_, aborted) = self.events("rb:all", 2)
        self.assertEqual(started["run"]["plan"], {"id": 9, "title": None})
        self.assertEqual(aborted["run"]["cases_count"], 14)
        self.assertEqual(aborted["run"]["counts"]["total"], 14)


class Legacy(Case):
    """The 2021 envelope: legacy `event`, no project_code."""

    def test_without_project_setting_project_is_null_and_apart(self):
        b = self.bridge()
        # a run 1 of project ID with a title; the legacy run 1 has no project
        b.post(run_event("run.started", 1, title="Project run"))
        self.assertEqual(b.post(other("run.completed.2021"))[0], 202)
        wait_until(lambda: self.redis.stream("rb:"), what="entry in rb:")
        (_, f), = self.redis.stream("rb:")
        ev = json.loads(f["event"])
        self.assertIsNone(ev["project"])
        self.assertEqual(f["project"], "")
        self.assertEqual(ev["run_id"], 1)
        self.assertEqual(ev["run"]["cases_count"], 40)
        self.assertIsNone(ev["run"]["title"], "a run without a project shares nothing")
        self.assertEqual(ev["run"]["duration_ms"], 600)

    def test_project_setting_names_the_project(self):
        b = self.bridge(source="    project: LEGACY\n")
        self.assertEqual(b.post(other("run.completed.2021"))[0], 202)
        (_, f), = wait_until(lambda: self.redis.stream("rb:LEGACY"), what="entry")
        self.assertEqual(json.loads(f["event"])["project"], "LEGACY")
        self.assertEqual(f["project"], "LEGACY")


class Refusals(Case):
    """Qase disables a webhook after 2 days of failures: see it coming."""

    def metric(self, b, name, labels):
        text = b.request("GET", "/metrics")[1].decode()
        m = re.search(r"^%s\{%s\} ([0-9.]+)$" % (re.escape(name), re.escape(labels)),
                      text, re.M)
        return float(m.group(1)) if m else None

    def test_refusals_warn_once_and_show_in_metrics_and_status(self):
        b = self.bridge(secret="s3cret", source="    refusal_warn_after_s: 1\n")
        before = time.time()
        self.assertEqual(b.post(fixture("run.started"),
                                headers={"X-Qase-Secret": "s3cret"})[0], 202)
        accepted = self.metric(b, "runbridge_source_last_accepted_timestamp_seconds",
                               'source="qase"')
        self.assertGreaterEqual(accepted, before - 1)
        self.assertIsNone(self.metric(b, "runbridge_source_last_refused_timestamp_seconds",
                                      'source="qase",status="401"'))
        # a rotated secret: every delivery refused
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            self.assertEqual(b.post(fixture("run.completed"),
                                    headers={"X-Qase-Secret": "old"})[0], 401)
            time.sleep(0.2)
        refused = self.metric(b, "runbridge_source_last_refused_timestamp_seconds",
                              'source="qase",status="401"')
        self.assertGreater(refused, accepted)
        logs = wait_until(lambda: "source refuses every delivery" in b.logs() and b.logs(),
                          what="the refusal warning")
        line = [l for l in logs.splitlines() if "source refuses every delivery" in l]
        self.assertEqual(len(line), 1, "once an hour, not once a second")
        self.assertIn("2 days", line[0])
        self.assertIn("401", line[0])
        self.assertIn("qase", line[0])
        self.assertStopsCleanly(b)
        out = b.cli("status", check=True).stdout
        src = [l for l in out.splitlines() if l.startswith("source qase:")]
        self.assertEqual(len(src), 1, out)
        self.assertRegex(src[0], r"last accepted \d{4}-\d\d-\d\dT")
        self.assertIn("last refused 401 ", src[0])
        self.assertIn("refusing every delivery since", src[0])
        # kept across a restart, and an accepted delivery ends the refusal
        b.start()
        self.assertEqual(self.metric(b, "runbridge_source_last_refused_timestamp_seconds",
                                     'source="qase",status="401"'), refused)
        self.assertEqual(b.post(fixture("run.deleted"),
                                headers={"X-Qase-Secret": "s3cret"})[0], 202)
        self.assertStopsCleanly(b)
        out = b.cli("status", check=True).stdout
        self.assertNotIn("refusing every delivery", out)

    def test_no_warning_while_deliveries_are_accepted(self):
        b = self.bridge(secret="s3cret", source="    refusal_warn_after_s: 1\n")
        deadline = time.monotonic() + 2.5
        i = 0
        while time.monotonic() < deadline:
            i += 1
            good = run_event("run.updated", 1, cases_added=i)
            self.assertEqual(b.post(good, headers={"X-Qase-Secret": "s3cret"})[0], 202)
            self.assertEqual(b.post(good, headers={"X-Qase-Secret": "bad"})[0], 401)
            time.sleep(0.2)
        self.assertEqual(b.post(run_event("run.updated", 1, cases_added=0),
                                headers={"X-Qase-Secret": "s3cret"})[0], 202)
        time.sleep(1.5)
        self.assertNotIn("source refuses every delivery", b.logs())


class CheckWarnings(Case):
    def test_check_warns_of_run_fields_on_other_families(self):
        rules = """
rules:
  - name: case-titles
    match: { event: "case.*" }
    actions:
      - redis: { stream: "rb:{{run.title}}" }
"""
        b = self.bridge(rules=rules)
        b.stop()
        p = b.cli("check")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"rules.yaml:6:\d+: warning: rule 'case-titles': "
                                   r"run.title is null on events other than run\.\*")


if __name__ == "__main__":
    unittest.main()
