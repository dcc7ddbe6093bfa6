#!/usr/bin/env python3
"""bench/results.py: one Qase run of N results (default 5,000) mirrored to
the three target fakes through the real daemon (issue 14's benchmark).

    bench/results.sh [N]       builds what it needs, then runs this

Measures the time from run.completed's 202 to the last target call, the
requests made to the Qase API by kind (run, result pages, case pages, case
lookups, suite pages) against the bound pages + case pages + suite pages,
and the daemon's peak RSS (VmHWM).  Prints a Markdown section for
docs/benchmarks.md.  Everything runs on loopback and is stopped at the end.
"""
import json
import math
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from fakes import Fake  # noqa: E402
from rbtest import Redis, Runbridge, fixture, wait_until  # noqa: E402

RULES = """
rules:
  - name: mirror
    match: { event: ["run.*"] }
    actions:
      - testomat: { target: main }
      - qasphere: { target: main }
      - testcenter: { target: main }
"""


def delivery(event, run, project="DEMO"):
    doc = json.loads(fixture(event))
    doc["payload"]["id"] = run
    doc["project_code"] = project
    return json.dumps(doc)


def vmhwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    tmp = tempfile.mkdtemp(prefix="rb-bench-results-")
    redis = Redis(tmp).start()
    qase = Fake("qase", tmp).start()
    tm = Fake("testomat", tmp).start()
    qs = Fake("qasphere", tmp).start()
    tc = Fake("testcenter", tmp).start()
    b = None
    try:
        run = qase.generate("DEMO", 42, n, retested=n // 50, suites=20)
        source = ("    api:\n      base_url: %s\n      token: qase-fake-token\n"
                  "      rate_limit_per_min: 60000\n" % qase.api_url)
        extra = """targets:
  testomat:
    main: { base_url: "%s", api_key: "%s" }
  qasphere:
    main: { base_url: "%s", api_key: "%s", project: DEMO, query_plan: { folderIds: [1] } }
  testcenter:
    main: { base_url: "%s", token: "%s", project: DEMO }
""" % (tm.url, tm.opts["api_key"], qs.url, qs.opts["api_key"], tc.url, tc.opts["token"])
        b = Runbridge(tmp, redis.port, rules=RULES, extra=extra, source=source).start()
        b.post(delivery("run.started", 42))
        wait_until(lambda: b.status()["done"] >= 3, timeout=60, what="run.started mirrored")
        t0 = time.time()
        b.post(delivery("run.completed", 42))
        wait_until(lambda: b.status()["done"] + b.status()["dead"] >= 7, timeout=600,
                   interval=0.1, what="run.completed mirrored")
        last = max(r["ts"] for f in (tm, qs, tc) for r in f.requests())
        hwm = vmhwm_kb(b.proc.pid)
        gets = [r for r in qase.requests() if r["method"] == "GET"]
        kinds = {"run": 0, "result pages": 0, "case pages": 0, "case lookups": 0,
                 "suite pages": 0}
        for r in gets:
            parts = r["path"].split("/")
            if parts[2] == "run":
                kinds["run"] += 1
            elif parts[2] == "result":
                kinds["result pages"] += 1
            elif parts[2] == "case":
                kinds["case lookups" if len(parts) > 4 else "case pages"] += 1
            elif parts[2] == "suite":
                kinds["suite pages"] += 1
        cases = n - n // 50
        state = qase.state()["projects"]["DEMO"]
        bound = (1 + math.ceil(n / 100) + math.ceil(state["cases"] / 100)
                 + math.ceil(state["suites"] / 100))
        st = b.status()
        print("| results | cases | run.completed → last target call | Qase requests "
              "(run / result pages / case pages / case lookups / suite pages) | bound "
              "(1 + pages) | peak RSS | jobs done / dead |")
        print("|---|---|---|---|---|---|---|")
        print("| %d | %d | %.2f s | %d (%d / %d / %d / %d / %d) | %d | %.1f MB | %d / %d |" % (
            n, cases, last - t0, len(gets), kinds["run"], kinds["result pages"],
            kinds["case pages"], kinds["case lookups"], kinds["suite pages"], bound,
            hwm / 1024.0, st["done"], st["dead"]))
        return 0 if len(gets) <= bound and hwm < 64 * 1024 and st["dead"] == 0 else 1
    finally:
        if b:
            b.stop()
        for f in (qase, tm, qs, tc):
            f.stop()
        redis.stop()


if __name__ == "__main__":
    sys.exit(main())
