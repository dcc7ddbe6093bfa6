"""The operator console (/ui/) in a real browser: Debian's headless Chromium
driven by python3-selenium, against the real binary and its real API.

Each test starts runbridge with two rules: every event to a Redis stream,
and a CI hook for run.completed that fails (exit 1, retry.max_attempts: 1,
so its job goes dead) until a "fixed" file exists.  Then:

  - every page loads, with no error and nothing the CSP refused;
  - the overview's live list shows a delivery posted while it is open;
  - run DEMO#42 is found by id and by title, with its events, its jobs and
    their attempts, and a link to the run it made in (fake) Testomat.io;
  - a dead letter is replayed with a click (after the hook is fixed) and
    leaves the dead list for good; "replay all" re-queues what matches;
  - a run titled <img src=x onerror=alert(1)> shows those characters: no
    img element, no alert;
  - with http.admin_trust_loopback: false the page asks for the token, signs
    in (HttpOnly cookie, nothing in web storage) and out.

Screenshots (console-overview.png, console-run.png) go to the test's temp
dir, or to $RB_SCREENSHOT_DIR: RB_SCREENSHOT_DIR=$PWD/docs/img refreshes
the two the README shows.

Selenium comes from Debian (python3-selenium), which only /usr/bin/python3
imports: under another python3 this file runs itself again with that one.
Without chromium (or its driver) the tests are skipped, saying so.
"""
import json
import os
import shutil
import sys
import time
import unittest

SYSTEM_PYTHON = "/usr/bin/python3"

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    if (os.path.exists(SYSTEM_PYTHON) and not os.environ.get("RB_CONSOLE_REEXEC")
            and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)):
        os.environ["RB_CONSOLE_REEXEC"] = "1"
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    webdriver = None

from rbtest import Case, SOURCE_DIR, wait_until  # noqa: E402
from fakes import Fake  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
NO_BROWSER = None if CHROMIUM and DRIVER else (
    "headless Chromium is not installed (apt-get install chromium chromium-driver "
    "python3-selenium; scripts/deps.sh does it): the console's browser tests are skipped")
if NO_BROWSER:
    sys.stderr.write("test_console: SKIPPED: %s\n" % NO_BROWSER)

HOSTILE = "<img src=x onerror=alert(1)>"
WAIT_S = 15

RULES = """
rules:
  - name: all-to-stream
    actions:
      - redis: { stream: "rb:{{project}}", maxlen: 1000 }
  - name: ci-on-completed
    match: { event: run.completed }
    actions:
      - exec:
          argv: ["/bin/sh", "-c", "test -e %(fixed)s || { echo 'ci refused the run: 503 Service Unavailable'; exit 1; }"]
          timeout_s: 10
"""

# With a (fake) Testomat.io: every run event mirrored there.
MIRROR = """
  - name: mirror-to-testomat
    match: { event: "run.*" }
    actions:
      - testomat: { target: main }
"""


def run_event(name, project, run_id, **payload):
    body = {"event_name": name, "timestamp": 1764600000 + run_id, "team_member_id": 40,
            "project_code": project, "payload": dict({"id": run_id}, **payload)}
    return json.dumps(body).encode()


def started(project, run_id, title):
    return run_event("run.started", project, run_id, title=title, description=None,
                     plan={"id": 3, "title": "Release 5.2"}, cases_count=14,
                     environment="staging")


def completed(project, run_id, failed=3):
    return run_event("run.completed", project, run_id, cases=14, passed=14 - failed - 1,
                     failed=failed, blocked=1, duration=31200)


@unittest.skipIf(NO_BROWSER, NO_BROWSER or "")
class Console(Case):
    def setUp(self):
        if webdriver is None:
            self.fail("chromium is installed but selenium cannot be imported by %s nor %s "
                      "(apt-get install python3-selenium)" % (sys.executable, SYSTEM_PYTHON))
        super().setUp()
        self.fixed = os.path.join(self.tmp, "ci-fixed")
        self.driver = None
        self.testomat = None

    def tearDown(self):
        if self.driver:
            self.driver.quit()
        if self.testomat:
            self.testomat.stop()
        super().tearDown()

    # ---- fixtures --------------------------------------------------------

    def start(self, extra="", testomat=False):
        rules = RULES % {"fixed": self.fixed}
        if testomat:
            self.testomat = Fake("testomat", self.tmp).start()
            rules += MIRROR
            extra += ("targets:\n  testomat:\n    main: { base_url: \"%s\", api_key: \"%s\" }\n"
                      % (self.testomat.url, self.testomat.opts["api_key"]))
        self.b = self.bridge(rules=rules,
                             extra="retry:\n  max_attempts: 1\n  base_ms: 50\n  max_ms: 100\n"
                             + extra)
        return self.b

    def post(self, body):
        status, doc = self.b.post(body)
        self.assertEqual(status, 202, doc)
        return doc["id"]

    def populate(self):
        """Three runs; DEMO#42's completion and WEB#7's go dead."""
        self.post(started("DEMO", 42, "Nightly regression: checkout"))
        self.post(started("WEB", 7, "Smoke on staging"))
        self.post(started("DEMO", 43, HOSTILE))
        self.post(run_event("run.updated", "WEB", 7, cases_count=20))
        self.post(completed("DEMO", 42))
        self.post(completed("WEB", 7, failed=0))
        wait_until(lambda: self.api("/jobs?state=dead")[1].get("items", []).__len__() == 2,
                   timeout=WAIT_S, what="two dead jobs")

    def api(self, path, method="GET", body=None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self.b.request(method, "/api/v1" + path, body=body, headers=headers)

    # ---- the browser -----------------------------------------------------

    def browser(self):
        opts = Options()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,860", "--lang=en-US", "--no-first-run"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
        # Counts alert() calls in every page before its scripts run (the
        # CSP does not apply to what the driver injects).
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (
            "window.__rbAlerts = 0; window.alert = function () { window.__rbAlerts++; };")})
        return self.driver

    def open(self, route, ready):
        """Loads /ui/#<route>; waits for the CSS selector ready."""
        d = self.driver or self.browser()
        d.get("http://127.0.0.1:%d/ui/#%s" % (self.b.port, route))
        return self.wait_for(ready)

    def wait_for(self, css, text=None, gone=False):
        def found(d):
            els = d.find_elements(By.CSS_SELECTOR, css)
            if gone:
                return not els
            if text is not None:
                els = [e for e in els if text in e.text]
            return els[0] if els else None
        try:
            return WebDriverWait(self.driver, WAIT_S, 0.1).until(found)
        except Exception:
            errors = [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, ".error")]
            self.fail("no %r%s on %s (errors on the page: %r; log: %r)" % (
                css, " with %r" % text if text else "", self.driver.current_url, errors,
                self.driver.get_log("browser")))

    def assertCleanPage(self, allow=()):
        """No error shown, nothing logged as severe (CSP refusals are) but
        the favicon's 404 and what allow names."""
        self.assertEqual([e.text for e in self.driver.find_elements(By.CSS_SELECTOR, ".error")
                          if e.is_displayed()], [])
        severe = [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"
                  and not any(a in e["message"] for a in ("favicon.ico",) + tuple(allow))]
        self.assertEqual(severe, [])

    def screenshot(self, name):
        out = os.environ.get("RB_SCREENSHOT_DIR") or os.path.join(self.tmp, "screenshots")
        os.makedirs(out, exist_ok=True)
        # the whole page, up to a height a README can show
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, min(max(height, 800), 1400) + 90)
        time.sleep(0.3)
        self.assertTrue(self.driver.save_screenshot(os.path.join(out, name)))
        self.driver.set_window_size(1280, 860)

    def texts(self, css):
        return [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css)]

    # ---- the tests -------------------------------------------------------

    def test_every_page_loads_and_the_overview_is_live(self):
        self.start()
        self.populate()
        self.open("/", "#live-rows tr.delivery")
        self.wait_for("#jobs-by-state .state-dead strong", text="2")
        titles = self.texts("#live-rows td.title")
        self.assertIn("Nightly regression: checkout", titles)
        self.wait_for("#live-state.live")
        # posted while the page is open: arrives over /api/v1/stream
        self.post(started("OPS", 5, "Posted while watching"))
        row = self.wait_for("#live-rows tr.delivery", text="Posted while watching")
        self.assertIn("run.started", row.text)
        self.assertIn("OPS#5", row.text)
        self.assertCleanPage()
        self.screenshot("console-overview.png")

        for route, ready in (("/runs", "#runs tr.run"), ("/deliveries", "#deliveries tr.delivery"),
                             ("/dead", "#dead tr.job"), ("/rules", "tr.rule"),
                             ("/runs/DEMO/42", "#timeline li.event")):
            self.open(route, ready)
            self.assertCleanPage()
        # every nav link leads to its page
        self.open("/", "#live-rows tr.delivery")
        for page in ("runs", "deliveries", "dead", "rules", "overview"):
            self.driver.find_element(By.CSS_SELECTOR, '#nav a[data-page="%s"]' % page).click()
            self.wait_for('main[data-page="%s"] h1' % page)
        self.assertCleanPage()

    def test_find_a_run_and_see_its_events_jobs_and_attempts(self):
        self.start(testomat=True)
        self.populate()
        wait_until(lambda: self.api("/jobs?state=done&kind=testomat")[1]["items"].__len__() == 6,
                   timeout=WAIT_S, what="every run mirrored to Testomat.io")
        # by id
        self.open("/runs", "#run-search")
        self.driver.find_element(By.ID, "run-search-project").send_keys("DEMO")
        self.driver.find_element(By.ID, "run-search-q").send_keys("42")
        self.driver.find_element(By.CSS_SELECTOR, "#run-search button").click()
        link = self.wait_for("#runs tr.run a", text="DEMO#42")
        self.assertEqual(len(self.driver.find_elements(By.CSS_SELECTOR, "#runs tr.run")), 1)
        # by title
        self.open("/runs?q=Nightly", "#runs tr.run")
        remote = self.api("/runs/DEMO/42")[1]["targets"][0]
        self.assertTrue(remote["url"].startswith(self.testomat.url + "/projects/"), remote)
        listed = self.wait_for("#runs tr.run a.remote", text="testomat main")
        self.assertEqual(listed.get_attribute("href"), remote["url"])
        link = self.wait_for("#runs tr.run a", text="DEMO#42")
        link.click()
        self.assertEqual(self.wait_for("#run-title").text, "Nightly regression: checkout")
        self.wait_for("#timeline li.event")
        self.assertEqual(self.texts("#timeline li.event .type"), ["run.started", "run.completed"])
        done = self.wait_for("#timeline li.job.job-done", text="all-to-stream")
        self.assertIn("redis", done.text)
        dead = self.wait_for("#timeline li.job.job-dead", text="ci-on-completed")
        self.assertIn("exec", dead.text)
        self.assertIn("1 attempt", dead.text)
        attempt = self.wait_for("#timeline li.job.job-dead tr.attempt.failed")
        self.assertIn("ci refused the run: 503", attempt.text)
        self.wait_for("#timeline li.job.job-done", text="mirror-to-testomat")
        # which targets got it: Testomat.io, with the run it made there
        target = self.wait_for("ul.targets li.target", text="testomat main")
        self.assertRegex(target.text, r"remote (id|run) \S+")
        # ...and a link to the run there, opened apart from the console
        link = target.find_element(By.CSS_SELECTOR, "a.remote")
        self.assertEqual(link.get_attribute("href"), remote["url"])
        self.assertEqual(link.text, "remote run " + remote["remote_id"])
        self.assertEqual(link.get_attribute("rel"), "noopener noreferrer")
        self.assertEqual(link.get_attribute("target"), "_blank")
        self.assertCleanPage()
        self.screenshot("console-run.png")

    def test_replay_a_dead_letter_with_a_click(self):
        self.start()
        self.populate()
        self.open("/dead", "#dead tr.job")
        rows = self.texts("#dead tr.job")
        self.assertEqual(len(rows), 2)
        demo = self.wait_for("#dead tr.job", text="DEMO#42")
        job_id = demo.get_attribute("data-id")
        open(self.fixed, "w").close()          # the operator fixes the CI endpoint...
        demo.find_element(By.CSS_SELECTOR, "button.replay").click()   # ...and replays
        self.wait_for('#dead tr.job[data-id="%s"]' % job_id, gone=True)
        self.wait_for("#flash", text="queued again")
        wait_until(lambda: self.api("/jobs/%s" % job_id)[1].get("state") == "done",
                   timeout=WAIT_S, what="the replayed job done")
        # it stays gone; the other one is still dead
        self.open("/dead", "#dead tr.job")
        self.assertEqual(len(self.texts("#dead tr.job")), 1)
        self.assertNotIn(job_id, [e.get_attribute("data-id") for e in
                                  self.driver.find_elements(By.CSS_SELECTOR, "#dead tr.job")])
        # the run page shows the failed attempt and the job done
        self.open("/runs/DEMO/42", "#timeline li.job.job-done")
        self.wait_for("#timeline li.job.job-done", text="ci-on-completed")

        # replay all that match a filter: the WEB run's dead job
        self.open("/dead?project=WEB", "#dead tr.job")
        button = self.driver.find_element(By.ID, "replay-all")
        button.click()                         # asks to be sure
        self.assertFalse(self.texts("#flash") and "Queued" in self.texts("#flash")[0])
        button.click()
        self.wait_for("#flash", text="Queued 1 dead job")
        wait_until(lambda: self.api("/jobs?state=dead")[1].get("items") == [],
                   timeout=WAIT_S, what="no dead job left")
        self.open("/dead", "#dead p.empty")
        self.assertCleanPage()

    def test_a_hostile_title_is_shown_as_text(self):
        self.start()
        self.populate()
        self.open("/", "#live-rows tr.delivery")
        self.wait_for("#live-rows td.title", text=HOSTILE)
        self.open("/runs?q=img", "#runs tr.run")
        self.wait_for("#runs td.title", text=HOSTILE)
        self.open("/runs/DEMO/43", "#run-title")
        self.assertEqual(self.driver.find_element(By.ID, "run-title").text, HOSTILE)
        self.open("/deliveries?project=DEMO", "#deliveries tr.delivery")
        self.wait_for("#deliveries td.title", text=HOSTILE).find_element(
            By.XPATH, "..").find_element(By.CSS_SELECTOR, "td:last-child a").click()
        self.wait_for("#raw", text="onerror=alert(1)")
        self.assertIn(HOSTILE, self.driver.find_element(By.ID, "normalized").text)
        time.sleep(0.3)   # an onerror would have fired by now
        self.assertEqual(self.driver.find_elements(By.TAG_NAME, "img"), [])
        self.assertEqual(self.driver.execute_script("return window.__rbAlerts"), 0)
        with self.assertRaises(NoAlertPresentException):
            self.driver.switch_to.alert.text
        self.assertCleanPage()

    def test_rules_show_matches_and_what_would_run(self):
        self.start()
        self.populate()
        self.open("/rules", "tr.rule")
        rows = {r.find_element(By.CSS_SELECTOR, "td strong").text: r.text
                for r in self.driver.find_elements(By.CSS_SELECTOR, "tr.rule")}
        self.assertEqual(sorted(rows), ["all-to-stream", "ci-on-completed"])
        self.assertTrue(rows["all-to-stream"].endswith("6"), rows)
        self.assertTrue(rows["ci-on-completed"].endswith("2"), rows)
        box = self.driver.find_element(By.ID, "route-input")
        box.send_keys(completed("DEMO", 99).decode())
        self.driver.find_element(By.CSS_SELECTOR, "#route-form button").click()
        out = self.wait_for("#route-output pre.json")
        self.assertIn("ci-on-completed", self.driver.find_element(By.ID, "route-output").text)
        self.assertIn("all-to-stream", out.text)
        # nothing ran, nothing was stored
        self.assertEqual(self.api("/runs/DEMO/99")[0], 404)
        box.clear()
        box.send_keys("{not json")
        self.driver.find_element(By.CSS_SELECTOR, "#route-form button").click()
        self.wait_for("#route-output .error", text="Not JSON")

    def test_sign_in_when_loopback_is_not_trusted(self):
        self.start(extra="http:\n  admin_token: s3cret-token\n  admin_trust_loopback: false\n")
        self.post(started("DEMO", 42, "Nightly regression: checkout"))
        self.assertEqual(self.api("/summary")[0], 401)
        self.open("/", "#login-form")
        self.assertTrue(self.driver.find_element(By.ID, "nav").get_attribute("hidden"))
        token = self.driver.find_element(By.ID, "token")
        token.send_keys("wrong")
        token.submit()
        self.wait_for("#login-form .error", text="not right")
        token.send_keys("s3cret-token")
        token.submit()
        self.wait_for("#live-rows tr.delivery", text="Nightly regression")
        self.assertEqual(self.driver.find_element(By.ID, "who").text, "signed in")
        # the token is nowhere in the page; the cookie is HttpOnly
        cookie = self.driver.get_cookie("rb_session")
        self.assertTrue(cookie and cookie["httpOnly"], cookie)
        self.assertEqual(cookie.get("sameSite"), "Strict")
        self.assertNotIn("rb_session", self.driver.execute_script("return document.cookie"))
        self.assertEqual(self.driver.execute_script(
            "return localStorage.length + sessionStorage.length"), 0)
        self.assertNotIn("s3cret-token", self.driver.page_source)
        # a POST with the session and its CSRF token works from the page
        self.open("/rules", "tr.rule")
        self.driver.find_element(By.ID, "route-input").send_keys(completed("DEMO", 1).decode())
        self.driver.find_element(By.CSS_SELECTOR, "#route-form button").click()
        self.wait_for("#route-output pre.json", text="ci-on-completed")
        self.driver.find_element(By.ID, "logout").click()
        self.wait_for("#login-form")
        self.open("/runs", "#login-form")
        # the 401s that showed the sign-in form
        self.assertCleanPage(allow=("status of 401",))


if __name__ == "__main__":
    unittest.main(verbosity=2)
