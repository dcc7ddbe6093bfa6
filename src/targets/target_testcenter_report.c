/*
 * target_testcenter_report: the testcenter kind's mode reporting
 * (target_testcenter.c).
 *
 * mode reporting: the /upload API, which only accepts elements and events
 * under the last element created on each level of a report, so everything
 * is reported depth-first and never goes back:
 *   run.started    POST /upload/suites (report + suite run, stored)
 *   run.updated    LOG event on the suite
 *   run.completed  with results: per result in case id order, POST
 *   run.aborted      /upload/cases (name: the case title, summary: the
 *                    suite path) and its events; then POST /upload/cases
 *                    "Qase run summary", a PASS or FAIL event on it with the
 *                    counts, a LOG event on the suite with the duration
 *   run.deleted    WARNING event on the suite
 * An event that finds no suite creates it first.  The map is saved after
 * every step, so a retry resumes where the last attempt stopped: results
 * progress is data.results {after: the last case id done, case, case_run,
 * step: the case being reported, its run and the events already sent},
 * kept per run, so no case is reported twice, whichever event carried it.
 * A case whose creation was answered but not saved (a crash, a lost
 * answer) is created again: the first copy is left empty.
 */
#include "targets/target_testcenter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/results.h"

#define TC_SUMMARY_CASE "Qase run summary"
#define TC_REPORT_PAGE  20    /* results copied out per store call in reporting */
#define TC_NAME_CHARS   1024  /* of a case title or suite path */
#define TC_MSG_CHARS    4096  /* of a result's message */
#define TC_TRACE_CHARS  32768 /* of a stack trace */

/* ---- the map's data ---------------------------------------------------------- */

static int set_str(char **field, const char *v)
{
	char *copy = v ? strdup(v) : NULL;

	if (v && !copy)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

static void data_set_int(json_object *o, const char *key, long long v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

/* A positive id at o.key (a number, or digits in a string), else -1. */
static long long data_id(json_object *o, const char *key)
{
	json_object *v = tc_data_get(o, key);
	long long id = -1;

	if (json_object_is_type(v, json_type_int)) {
		id = json_object_get_int64(v);
	} else if (json_object_is_type(v, json_type_string)) {
		char *end;
		const char *s = json_object_get_string(v);
		id = strtoll(s, &end, 10);
		if (!*s || *end)
			id = -1;
	}
	return id >= 0 ? id : -1;
}

/* ---- calls ------------------------------------------------------------------- */

/* POSTs body as JSON to path; 0 on a 2xx (*resp_json: the answer parsed,
 * or NULL), -1 with out set. */
static int tc_post(struct tc *c, const char *path, json_object *body, json_object **resp_json,
		   const char *what)
{
	char url[TC_URL_MAX];
	const char *headers[] = { c->auth, "Content-Type: application/json",
				  "Accept: application/json", NULL };
	const char *text = json_object_to_json_string_ext(
		body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	struct outbound_req req = { .method = "POST",
				    .url = url,
				    .headers = headers,
				    .body = text,
				    .body_len = strlen(text) };
	struct outbound_resp resp;

	if (resp_json)
		*resp_json = NULL;
	if (tc_url(c, path, url, sizeof(url)) < 0)
		return -1;
	if (target_call(c->a, &req, &resp, c->out, what) < 0)
		return -1;
	if (resp_json && resp.body)
		*resp_json = json_tokener_parse(resp.body);
	outbound_resp_free(&resp);
	return 0;
}

/* ---- the suite, its events and cases ------------------------------------------ */

/* The suite request: the report is found again by batch + labels. */
static json_object *suite_body(struct tc *c)
{
	json_object *b = json_object_new_object(), *test = json_object_new_object();
	const char *batch = tc_param(c, "batch");
	char suite[128];

	json_object_object_add(b, "project",
			       json_object_new_string(target_str(c->a->target, "project")));
	if (batch)
		json_object_object_add(b, "batch", json_object_new_string(batch));
	json_object_object_add(b, "labels", tc_labels(c, 0));
	json_object_object_add(test, "name",
			       json_object_new_string(tc_suite(c, suite, sizeof(suite))));
	json_object_object_add(b, "test", test);
	return b;
}

static int suite_record(struct tc *c, json_object *resp)
{
	long long report = data_id(resp, "reportId"), run = data_id(resp, "runId");
	char id[32];

	if (report < 0 || run < 0) {
		outcome_set(c->out, WORK_PERMANENT,
			    "testcenter: POST /upload/suites answered without reportId and runId");
		return -1;
	}
	snprintf(id, sizeof(id), "%lld", report);
	if (set_str(&c->a->map.remote_id, id) < 0) {
		outcome_set(c->out, WORK_FAIL, "out of memory");
		return -1;
	}
	data_set_int(c->a->map.data, "suite_run_id", run);
	if (tc_data_str(resp, "batch"))
		json_object_object_add(c->a->map.data, "batch",
				       json_object_new_string(tc_data_str(resp, "batch")));
	return tc_save(c, "open");
}

/*
 * The suite run id, creating the suite when the map has none.  A retry in
 * state "creating" (a crash before the answer was saved) posts again with
 * the same batch and labels, which Test Center resolves to the same report.
 */
static long long ensure_suite(struct tc *c, int *created)
{
	long long run = data_id(c->a->map.data, "suite_run_id");
	json_object *body, *resp = NULL;
	int rc;

	*created = 0;
	if (run >= 0 && !tc_state_is(c, "creating"))
		return run;
	if (tc_save(c, "creating") < 0)
		return -1;
	body = suite_body(c);
	rc = tc_post(c, "/upload/suites", body, &resp, "suite");
	json_object_put(body);
	if (rc == 0)
		rc = suite_record(c, resp);
	json_object_put(resp);
	if (rc < 0)
		return -1;
	*created = 1;
	return data_id(c->a->map.data, "suite_run_id");
}

/* An event on run; detail may be NULL. */
static int post_event_detail(struct tc *c, long long run, const char *type, const char *message,
			     const char *detail)
{
	json_object *b = json_object_new_object();
	int rc;

	data_set_int(b, "runId", run);
	json_object_object_add(b, "type", json_object_new_string(type));
	json_object_object_add(b, "message", json_object_new_string(message));
	if (detail)
		json_object_object_add(b, "detail", json_object_new_string(detail));
	rc = tc_post(c, "/upload/events", b, NULL, "event");
	json_object_put(b);
	return rc;
}

static int post_event(struct tc *c, long long run, const char *type, const char *message)
{
	return post_event_detail(c, run, type, message, NULL);
}

/* POST /upload/cases under parent: the case's run id, or -1 with out set. */
static long long post_case(struct tc *c, long long parent, const char *name, const char *summary,
			   const char *description)
{
	json_object *b = json_object_new_object(), *t = json_object_new_object(), *resp = NULL;
	long long run;
	int rc;

	data_set_int(b, "runId", parent);
	json_object_object_add(t, "name", json_object_new_string(name));
	if (summary)
		json_object_object_add(t, "summary", json_object_new_string(summary));
	if (description)
		json_object_object_add(t, "description", json_object_new_string(description));
	json_object_object_add(b, "test", t);
	rc = tc_post(c, "/upload/cases", b, &resp, "case");
	json_object_put(b);
	run = rc == 0 ? data_id(resp, "runId") : -1;
	json_object_put(resp);
	if (rc == 0 && run < 0)
		outcome_set(c->out, WORK_PERMANENT,
			    "testcenter: POST /upload/cases answered without runId");
	return run;
}

static void rep_updated(struct tc *c, long long suite)
{
	long long added = event_int(c->a->event, "run.cases_added", -1);
	long long count = event_int(c->a->event, "run.cases_count", -1);
	char msg[128];

	if (added >= 0)
		snprintf(msg, sizeof(msg), "%lld cases added in Qase", added);
	else if (count >= 0)
		snprintf(msg, sizeof(msg), "cases added in Qase; the run has %lld", count);
	else
		snprintf(msg, sizeof(msg), "cases added in Qase");
	if (post_event(c, suite, "LOG", msg) == 0)
		outcome_set(c->out, WORK_OK, "run %s: LOG \"%s\" on suite run %lld", c->ref, msg,
			    suite);
}

static long long cnt(long long v)
{
	return v > 0 ? v : 0;
}

/* ---- reporting the results ------------------------------------------------------ */

/* One result copied out of the store (cut to the TC_*_CHARS caps), so that
 * no store read stays open while Test Center is called. */
struct tc_row {
	long long case_id, duration_ms;
	char *status, *title, *suite, *message, *trace;
};

struct tc_page {
	struct tc_row rows[TC_REPORT_PAGE];
	size_t n;
	int oom;
};

static void page_free(struct tc_page *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct tc_row *w = &p->rows[i];
		free(w->status);
		free(w->title);
		free(w->suite);
		free(w->message);
		free(w->trace);
	}
}

static int page_row(void *ctx, const struct result_row *r)
{
	struct tc_page *p = ctx;
	struct tc_row *w;

	if (p->n == TC_REPORT_PAGE)
		return -1;
	w = &p->rows[p->n++];
	w->case_id = r->case_id;
	w->duration_ms = r->duration_ms;
	w->status = tu_cut(r->status, 64);
	w->title = tu_cut(r->title, TC_NAME_CHARS);
	w->suite = tu_cut(r->suite, TC_NAME_CHARS);
	w->message = tu_cut(r->message, TC_MSG_CHARS);
	w->trace = tu_cut(r->stacktrace, TC_TRACE_CHARS);
	if (!w->status || !w->title || !w->suite || !w->message || !w->trace) {
		p->oom = 1;
		return -1;
	}
	return 0;
}

/* The event types a result is reported with (section 5.2); 0: not
 * reported (untested, in progress). */
static size_t row_events(const struct tc *c, const struct tc_row *w, const char *types[2])
{
	const char *blocked = target_str(c->a->target, "blocked_event");

	if (!*w->status || tu_streq(w->status, "untested") || tu_streq(w->status, "in_progress"))
		return 0;
	types[0] = tu_streq(w->status, "passed")    ? "PASS"
		   : tu_streq(w->status, "failed")  ? "FAIL"
		   : tu_streq(w->status, "invalid") ? "ERROR"
		   : tu_streq(w->status, "blocked")
			   ? (tu_streq(blocked, "warning") ? "WARNING" : "ERROR")
			   : NULL;
	if (types[0])
		return 1;
	types[0] = "LOG"; /* skipped, or a custom status */
	types[1] = "SKIPPED";
	return 2;
}

/* The verdict event (step 0): a failure's message is Qase's comment, the
 * others say what Qase called the result; the detail names the case, its
 * duration and the stack trace.  Step 1 (SKIPPED) only says skipped. */
static int row_event(struct tc *c, long long run, const struct tc_row *w, const char *type,
		     size_t step)
{
	char *msg = NULL, *detail = NULL, dur[48] = "";
	int rc = -1;

	if (step > 0 && tu_streq(w->status, "skipped"))
		return post_event(c, run, type, "skipped in Qase");
	if (step > 0) {
		if (asprintf(&msg, "%s in Qase: counted as skipped", w->status) < 0)
			return outcome_fail(c->out, WORK_FAIL, "out of memory");
		rc = post_event(c, run, type, msg);
		free(msg);
		return rc;
	}
	if (w->duration_ms >= 0)
		snprintf(dur, sizeof(dur), ", %lld.%03lld s", w->duration_ms / 1000,
			 w->duration_ms % 1000);
	if (tu_streq(w->status, "failed") && *w->message)
		msg = strdup(w->message);
	else if (asprintf(&msg, "%s in Qase%s%s", w->status, *w->message ? ": " : "", w->message) < 0)
		msg = NULL;
	if (asprintf(&detail, "Qase case %s-%lld: %s%s%s%s", c->project, w->case_id, w->status, dur,
		     *w->trace ? "\n\n" : "", w->trace) < 0)
		detail = NULL;
	if (!msg || !detail)
		outcome_set(c->out, WORK_FAIL, "out of memory");
	else
		rc = post_event_detail(c, run, type, msg, detail);
	free(msg);
	free(detail);
	return rc;
}

/* The case of w under the suite: its title (or "Qase case N"), the suite
 * path as summary, the Qase case as description. */
static long long row_case(struct tc *c, long long suite, const struct tc_row *w)
{
	char name[48], desc[128];

	snprintf(name, sizeof(name), "Qase case %lld", w->case_id);
	snprintf(desc, sizeof(desc), "Qase case %.60s-%lld", c->project, w->case_id);
	return post_case(c, suite, *w->title ? w->title : name, *w->suite ? w->suite : NULL, desc);
}

/* Reports w: its case (unless data.results has it open already), then its
 * events from the first one not sent; the map is saved after each call. */
static int report_row(struct tc *c, long long suite, json_object *rs, const struct tc_row *w)
{
	const char *types[2];
	size_t n = row_events(c, w, types), step = 0;
	long long run = -1;

	if (n == 0) {
		data_set_int(rs, "after", w->case_id); /* saved with the next save */
		return 0;
	}
	if (data_id(rs, "case") == w->case_id && (run = data_id(rs, "case_run")) >= 0)
		step = (size_t)(data_id(rs, "step") > 0 ? data_id(rs, "step") : 0);
	if (run < 0) {
		if ((run = row_case(c, suite, w)) < 0)
			return -1;
		data_set_int(rs, "case", w->case_id);
		data_set_int(rs, "case_run", run);
		data_set_int(rs, "step", 0);
		if (tc_save(c, NULL) < 0)
			return -1;
	}
	for (size_t i = step; i < n; i++) {
		if (row_event(c, run, w, types[i], i) < 0)
			return -1;
		data_set_int(rs, "step", (long long)i + 1);
		if (i + 1 < n && tc_save(c, NULL) < 0)
			return -1;
	}
	json_object_object_del(rs, "case");
	json_object_object_del(rs, "case_run");
	json_object_object_del(rs, "step");
	data_set_int(rs, "after", w->case_id);
	data_set_int(rs, "reported", (data_id(rs, "reported") > 0 ? data_id(rs, "reported") : 0) + 1);
	return tc_save(c, NULL);
}

/* data.results, created empty. */
static json_object *results_progress(struct tc *c)
{
	json_object *rs = tc_data_get(c->a->map.data, "results");

	if (json_object_is_type(rs, json_type_object))
		return rs;
	rs = json_object_new_object();
	json_object_object_add(c->a->map.data, "results", rs);
	return rs;
}

/* Every stored result after data.results.after, a page at a time. */
static int rep_results(struct tc *c, long long suite)
{
	json_object *rs = results_progress(c);
	struct err err = { 0 };
	size_t got;

	do {
		struct tc_page p = { .n = 0 };
		long long after = data_id(rs, "after");
		size_t n = 0;
		int rc = c->a->results(c->a, after > 0 ? after : 0, TC_REPORT_PAGE, page_row, &p,
				       &n, &err);
		if (rc < 0 || p.oom)
			outcome_set(c->out, WORK_FAIL, "testcenter: reading the results: %s",
				    rc < 0 ? err.msg : "out of memory");
		for (size_t i = 0; rc == 0 && !p.oom && i < p.n; i++)
			if (report_row(c, suite, rs, &p.rows[i]) < 0)
				rc = -1;
		got = p.n;
		page_free(&p);
		if (rc < 0 || p.oom)
			return -1;
	} while (got == TC_REPORT_PAGE);
	return tc_save(c, NULL);
}

/* The verdict's message, and whether it is a FAIL. */
static void close_message(struct tc *c, char *buf, size_t len, int *fail)
{
	struct junit_run r = { 0 };

	tc_run_counts(c, &r);
	*fail = cnt(r.failed) + cnt(r.blocked) > 0 || r.aborted;
	if (r.aborted)
		snprintf(buf, len,
			 "aborted in Qase: %lld cases, %lld passed, %lld failed, "
			 "%lld blocked, %lld skipped, %lld untested",
			 junit_tests(&r), cnt(r.passed), cnt(r.failed), cnt(r.blocked),
			 cnt(r.skipped), cnt(r.untested));
	else
		snprintf(buf, len,
			 "completed in Qase: %lld cases, %lld passed, %lld failed, "
			 "%lld blocked, %lld not run",
			 junit_tests(&r), cnt(r.passed), cnt(r.failed), cnt(r.blocked),
			 junit_skipped(&r));
}

/* data.close: the progress of closing for this event type; a new one when
 * the last close was for another type. */
static json_object *close_progress(struct tc *c)
{
	json_object *cl = tc_data_get(c->a->map.data, "close");

	if (json_object_is_type(cl, json_type_object) && tu_streq(tc_data_str(cl, "event"), c->type))
		return cl;
	cl = json_object_new_object();
	json_object_object_add(cl, "event", json_object_new_string(c->type));
	json_object_object_add(c->a->map.data, "close", cl);
	return cl;
}

/* The summary case and its verdict: steps already done are skipped. */
static int close_case(struct tc *c, json_object *cl, long long suite, int *fail)
{
	long long cas = data_id(cl, "case_run_id");
	char msg[300];

	close_message(c, msg, sizeof(msg), fail);
	if (cas < 0) {
		if ((cas = post_case(c, suite, TC_SUMMARY_CASE, NULL, NULL)) < 0)
			return -1;
		data_set_int(cl, "case_run_id", cas);
		if (tc_save(c, NULL) < 0)
			return -1;
	}
	if (json_object_get_boolean(tc_data_get(cl, "verdict")))
		return 0;
	if (post_event(c, cas, *fail ? "FAIL" : "PASS", msg) < 0)
		return -1;
	json_object_object_add(cl, "verdict", json_object_new_boolean(1));
	return tc_save(c, NULL);
}

static void rep_close(struct tc *c, long long suite)
{
	json_object *cl = close_progress(c);
	long long ms = event_int(c->a->event, "run.duration_ms", -1);
	char msg[96];
	int fail = 0;

	if (json_object_get_boolean(tc_data_get(cl, "done"))) {
		outcome_set(c->out, WORK_OK, "run %s: %s already reported", c->ref, c->type);
		return;
	}
	/* results first: once the summary case exists, their cases could not
	 * come before it */
	if (tc_results(c) && data_id(cl, "case_run_id") < 0 && rep_results(c, suite) < 0)
		return;
	if (close_case(c, cl, suite, &fail) < 0)
		return;
	if (ms >= 0)
		snprintf(msg, sizeof(msg), "Qase run took %lld.%03lld s", ms / 1000, ms % 1000);
	else
		snprintf(msg, sizeof(msg), "Qase run duration unknown");
	if (post_event(c, suite, "LOG", msg) < 0)
		return;
	json_object_object_add(cl, "done", json_object_new_boolean(1));
	if (tc_save(c, "finished") == 0)
		outcome_set(c->out, WORK_OK,
			    "run %s: %s reported (%s, %lld results) on suite run %lld", c->ref,
			    c->type, fail ? "FAIL" : "PASS",
			    data_id(tc_data_get(c->a->map.data, "results"), "reported") > 0
				    ? data_id(tc_data_get(c->a->map.data, "results"), "reported")
				    : 0,
			    suite);
}

/* run.deleted: a warning while the report is ours to write to, then the
 * tombstone; without a suite there is nothing to warn on. */
static void rep_deleted(struct tc *c)
{
	long long suite = data_id(c->a->map.data, "suite_run_id");

	if (suite >= 0 && !tc_state_is(c, "creating") &&
	    post_event(c, suite, "WARNING", "deleted in Qase") < 0)
		return;
	tc_tombstone(c, suite >= 0 ? "WARNING sent on the suite" : "no suite to warn on");
}

void tc_reporting(struct tc *c)
{
	int created;
	long long suite;

	if (tc_is_type(c, "run.deleted")) {
		rep_deleted(c);
		return;
	}
	if (!tc_is_type(c, "run.started") && !tc_is_type(c, "run.updated") &&
	    !tc_is_type(c, "run.completed") && !tc_is_type(c, "run.aborted")) {
		outcome_set(c->out, WORK_OK, "reporting mode: nothing to report for %s", c->type);
		return;
	}
	if ((suite = ensure_suite(c, &created)) < 0)
		return;
	if (tc_is_type(c, "run.started"))
		outcome_set(c->out, WORK_OK, "run %s: %s suite run %lld in report %s", c->ref,
			    created ? "created" : "already has", suite,
			    c->a->map.remote_id ? c->a->map.remote_id : "?");
	else if (tc_is_type(c, "run.updated"))
		rep_updated(c, suite);
	else
		rep_close(c, suite);
}
