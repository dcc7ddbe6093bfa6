/*
 * target_testcenter: Qase runs into Squish Test Center.
 *
 *   targets:
 *     testcenter:
 *       main: { base_url: http://tc:8800, token: ${TC_TOKEN}, project: Web,
 *               mode: import, batch: "Qase {{project}}#{{run_id}}",
 *               suite: "{{run.title}}", labels: { env: "{{run.environment}}" } }
 *
 * Results: when the event carries a "results" object (runbridge fetched
 * the run's per-case results from the Qase API into the store), the
 * results are read from the store with a->results, a page at a time, and
 * mirrored case by case; without one (null or absent), only the run's
 * counts are.  Statuses as in target-apis.md 5.2: passed PASS, failed FAIL,
 * blocked ERROR (or WARNING: setting blocked_event), invalid ERROR, skipped LOG +
 * SKIPPED, untested and in_progress left out; a custom status is treated as
 * skipped, naming it.
 *
 * mode import (the default, and the safer one): nothing is sent until
 * run.completed or run.aborted; then one JUnit XML file (junit.h: one
 * testcase per result, or synthetic ones from the counts when the run has
 * no results stored) goes to POST {base_url}/import, multipart, with the
 * project, the batch and the labels qase.project, qase.run, qase.event plus
 * the configured ones.  An upload cannot be asked whether it arrived, so the
 * map records "importing" before it and "imported" (with the event type)
 * after the 2xx: a retry after the answer does nothing; only a crash
 * between the two sends the file again.
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
 *
 * Map states: import: (none) -> importing -> imported; reporting: (none) ->
 * creating -> open -> finished; both: -> deleted, a tombstone after which
 * every event of the run is ignored.
 */
#include "targets/target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nettle/base64.h>

#include "store/results.h"
#include "targets/junit.h"
#include "targets/target_util.h"

#define TC_URL_MAX      2048
#define TC_LABELS_MAX   40 /* qase.* plus action_target's 32 */
#define TC_SUMMARY_CASE "Qase run summary"
#define TC_JUNIT_PAGE   500   /* results read per store call for a JUnit file */
#define TC_REPORT_PAGE  20    /* results copied out per store call in reporting */
#define TC_NAME_CHARS   1024  /* of a case title or suite path */
#define TC_MSG_CHARS    4096  /* of a result's message */
#define TC_TRACE_CHARS  32768 /* of a stack trace */

/* One attempt's view of the event and the target. */
struct tc {
	struct target_attempt *a;
	struct target_outcome *out;
	const char *type;    /* "run.completed" */
	const char *project; /* Qase project code */
	long long run_id;
	char ref[96]; /* "DEMO#42", for names and messages */
	char *auth;   /* "Authorization: ..." (malloc'd) */
};

/* ---- setup ------------------------------------------------------------------ */

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* "Authorization: Token <t>" or "Authorization: Basic base64(user:pass)". */
static int tc_auth(struct tc *c)
{
	const struct target_cfg *t = c->a->target;
	const char *token = target_str(t, "token");
	const char *user = target_str(t, "user"), *pass = target_str(t, "password");
	size_t ul, pl, n;
	unsigned char *plain;

	if (token) {
		if (has_ctl(token) || asprintf(&c->auth, "Authorization: Token %s", token) < 0) {
			c->auth = NULL;
			outcome_set(c->out, WORK_PERMANENT, "testcenter: token is not usable");
			return -1;
		}
		return 0;
	}
	if (!user || !pass) {
		outcome_set(c->out, WORK_PERMANENT,
			    "testcenter: target '%s' has neither token nor user and password",
			    t->name);
		return -1;
	}
	ul = strlen(user), pl = strlen(pass), n = ul + 1 + pl;
	plain = malloc(n);
	c->auth = malloc(sizeof("Authorization: Basic ") + 4 * ((n + 2) / 3) + 1);
	if (!plain || !c->auth) {
		free(plain);
		outcome_set(c->out, WORK_FAIL, "out of memory");
		return -1;
	}
	memcpy(plain, user, ul);
	plain[ul] = ':';
	memcpy(plain + ul + 1, pass, pl);
	memcpy(c->auth, "Authorization: Basic ", sizeof("Authorization: Basic ") - 1);
	char *b64 = c->auth + sizeof("Authorization: Basic ") - 1;
	base64_encode_raw(b64, n, plain);
	b64[BASE64_ENCODE_RAW_LENGTH(n)] = '\0';
	explicit_bzero(plain, n);
	free(plain);
	return 0;
}

static int tc_init(struct tc *c, struct target_attempt *a, struct target_outcome *out)
{
	c->a = a;
	c->out = out;
	c->type = event_str(a->event, "type");
	c->project = event_str(a->event, "project");
	c->run_id = event_int(a->event, "run_id", -1);
	if (!c->type || !c->project || c->run_id < 0) {
		outcome_set(out, WORK_PERMANENT,
			    "testcenter: the event has no type, project or run_id");
		return -1;
	}
	snprintf(c->ref, sizeof(c->ref), "%.60s#%lld", c->project, c->run_id);
	if (!target_str(a->target, "project")) {
		outcome_set(out, WORK_PERMANENT, "testcenter: target '%s' has no project",
			    a->target->name);
		return -1;
	}
	return tc_auth(c);
}

/* {base_url}{path}; a trailing slash of base_url is not doubled. */
static int tc_url(struct tc *c, const char *path, char *buf, size_t len)
{
	const char *base = target_str(c->a->target, "base_url");
	size_t bl = base ? strlen(base) : 0;
	int n;

	while (bl && base[bl - 1] == '/')
		bl--;
	n = snprintf(buf, len, "%.*s%s", (int)bl, base ? base : "", path);
	if (!base || n < 0 || (size_t)n >= len) {
		outcome_set(c->out, WORK_PERMANENT, "testcenter: base_url is missing or too long");
		return -1;
	}
	return 0;
}

/* The rendered param, or NULL when missing or empty. */
static const char *param_nonempty(struct tc *c, const char *key)
{
	const char *v = param_str(c->a->params, key);
	return v && *v ? v : NULL;
}

/* The suite name; a run whose title never reached us gets "Qase DEMO#42". */
static const char *tc_suite(struct tc *c, char *buf, size_t len)
{
	const char *s = param_nonempty(c, "suite");

	if (s)
		return s;
	snprintf(buf, len, "Qase %s", c->ref);
	return buf;
}

static int is_type(const struct tc *c, const char *type)
{
	return tu_streq(c->type, type);
}

/* ---- the map ----------------------------------------------------------------- */

static int state_is(const struct tc *c, const char *state)
{
	return tu_streq(c->a->map.state, state);
}

static int set_str(char **field, const char *v)
{
	char *copy = v ? strdup(v) : NULL;

	if (v && !copy)
		return -1;
	free(*field);
	*field = copy;
	return 0;
}

/* Sets the state (unless NULL) and commits the map; -1 with out set (a retry). */
static int tc_save(struct tc *c, const char *state)
{
	return target_map_state(c->a, c->out, state);
}

static json_object *data_get(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

static void data_set_int(json_object *o, const char *key, long long v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

static const char *data_str(json_object *o, const char *key)
{
	json_object *v = data_get(o, key);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A positive id at o.key (a number, or digits in a string), else -1. */
static long long data_id(json_object *o, const char *key)
{
	json_object *v = data_get(o, key);
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

/* Tombstone: later events of the run are ignored. */
static void tc_tombstone(struct tc *c, const char *what)
{
	if (tc_save(c, "deleted") == 0)
		outcome_set(c->out, WORK_OK, "run %s deleted in Qase: %s", c->ref, what);
}

/* ---- labels ------------------------------------------------------------------ */

static int label_has(json_object *arr, const char *key)
{
	size_t n = json_object_array_length(arr);

	for (size_t i = 0; i < n; i++)
		if (tu_streq(data_str(json_object_array_get_idx(arr, i), "key"), key))
			return 1;
	return 0;
}

/* Test Center refuses newlines, commas and double quotes in labels, and a
 * key cannot hold the '=' of "key=value": those become spaces in values,
 * '_' in keys (so do other control characters). */
static json_object *label_text(const char *s, int is_key)
{
	char *copy = strdup(s);
	json_object *o;

	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ',' || *p == '"' ||
		    (is_key && *p == '='))
			*p = is_key ? '_' : ' ';
	o = json_object_new_string(copy);
	free(copy);
	return o;
}

static void label_add(json_object *arr, const char *key, const char *value)
{
	json_object *l = json_object_new_object();

	json_object_object_add(l, "key", label_text(key, 1));
	json_object_object_add(l, "value", label_text(value, 0));
	json_object_array_add(arr, l);
}

/*
 * [{key, value}...]: qase.project, qase.run (and qase.event for imports:
 * one report per event), then the configured labels.  The qase.* keys
 * identify the report, so a configured label cannot replace them; a label
 * that rendered empty (a field the event lacks) is left out.
 */
static json_object *tc_labels(struct tc *c, int with_event)
{
	json_object *arr = json_object_new_array(), *conf;
	char id[32];

	snprintf(id, sizeof(id), "%lld", c->run_id);
	label_add(arr, "qase.project", c->project);
	label_add(arr, "qase.run", id);
	if (with_event)
		label_add(arr, "qase.event", c->type);
	conf = data_get(c->a->params, "labels");
	if (!json_object_is_type(conf, json_type_object))
		return arr;
	json_object_object_foreach(conf, k, v)
	{
		const char *s = json_object_get_string(v);
		if (!v || !s || !*s || label_has(arr, k))
			continue;
		if (json_object_array_length(arr) >= TC_LABELS_MAX)
			break;
		label_add(arr, k, s);
	}
	return arr;
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

/* ---- mode import -------------------------------------------------------------- */

static void run_counts(struct tc *c, struct junit_run *r)
{
	json_object *ev = c->a->event;

	r->total = event_int(ev, "run.counts.total", -1);
	if (r->total < 0)
		r->total = event_int(ev, "run.cases_count", -1);
	r->passed = event_int(ev, "run.counts.passed", -1);
	r->failed = event_int(ev, "run.counts.failed", -1);
	r->blocked = event_int(ev, "run.counts.blocked", -1);
	r->skipped = event_int(ev, "run.counts.skipped", -1);
	r->untested = event_int(ev, "run.counts.untested", -1);
	r->duration_ms = event_int(ev, "run.duration_ms", -1);
	r->aborted = is_type(c, "run.aborted");
}

/* The event's results object, or NULL when none were fetched (today's
 * counts-only behaviour). */
static json_object *tc_results(struct tc *c)
{
	json_object *r = data_get(c->a->event, "results");

	return c->a->results && json_object_is_type(r, json_type_object) ? r : NULL;
}

/* Streams the stored results into a JUnit document. */
struct doc_ctx {
	struct junit_doc *doc;
	struct err *err;
	long long last; /* case id of the last row read */
	int failed;     /* the document refused a row (err set) */
};

static int doc_row(void *ctx, const struct result_row *r)
{
	struct doc_ctx *x = ctx;

	x->last = r->case_id;
	if (junit_doc_case(x->doc, r, x->err) < 0) {
		x->failed = 1;
		return -1;
	}
	return 0;
}

/* All pages of the run's results into d; -1 with out set (a store read
 * failure is retried, a document over its caps is not). */
static int doc_fill(struct tc *c, struct junit_doc *d)
{
	struct err err = { 0 };
	struct doc_ctx x = { .doc = d, .err = &err };
	size_t n;

	do {
		n = 0;
		if (c->a->results(c->a, x.last, TC_JUNIT_PAGE, doc_row, &x, &n, &err) < 0 &&
		    !x.failed) {
			outcome_set(c->out, WORK_FAIL, "testcenter: reading the results: %s",
				    err.msg);
			return -1;
		}
		if (x.failed) {
			outcome_set(c->out, WORK_PERMANENT, "testcenter: %s", err.msg);
			return -1;
		}
	} while (n == TC_JUNIT_PAGE);
	return 0;
}

/*
 * The JUnit file of the results: 0 with *xml (NULL when nothing reportable
 * is stored: the caller falls back to the counts) and *tests, or -1 with
 * out set.
 */
static int import_results_xml(struct tc *c, json_object *res, const char *suite, char **xml,
			      size_t *len, long long *tests)
{
	struct junit_doc d;
	struct err err = { 0 };
	json_object *ev = c->a->event;
	int rc = -1;

	*xml = NULL;
	if (junit_doc_begin(&d, suite, event_str(ev, "occurred_at"),
			    event_int(ev, "run.duration_ms", -1), data_str(res, "status"), &err) < 0) {
		outcome_set(c->out, WORK_FAIL, "testcenter: %s", err.msg);
		goto done;
	}
	if (doc_fill(c, &d) < 0)
		goto done;
	*tests = d.tests;
	if (d.tests > 0 && junit_doc_end(&d, xml, len, &err) < 0) {
		outcome_set(c->out, WORK_PERMANENT, "testcenter: %s", err.msg);
		goto done;
	}
	rc = 0;
done:
	junit_doc_free(&d);
	return rc;
}

/* The file to import, from the results or the counts; -1 with out set. */
static int import_xml(struct tc *c, char **xml, size_t *len, long long *tests, int *from_results)
{
	struct junit_run run = { .timestamp = event_str(c->a->event, "occurred_at") };
	json_object *res = tc_results(c);
	char suite[128];
	struct err err = { 0 };

	run.suite = tc_suite(c, suite, sizeof(suite));
	*from_results = 0;
	if (res && import_results_xml(c, res, run.suite, xml, len, tests) < 0)
		return -1;
	if (*xml) {
		*from_results = 1;
		return 0;
	}
	run_counts(c, &run);
	if (junit_render(xml, len, &run, &err) < 0) {
		outcome_set(c->out, WORK_PERMANENT, "testcenter: %s", err.msg);
		return -1;
	}
	*tests = junit_tests(&run);
	return 0;
}

/* "qase-DEMO-42.xml"; the code is reduced to characters safe in a
 * Content-Disposition filename. */
static void import_filename(const struct tc *c, char *buf, size_t len)
{
	char code[64];
	size_t i = 0;

	for (const char *p = c->project; *p && i < sizeof(code) - 1; p++)
		code[i++] = (strchr("-_.", *p) || (*p >= '0' && *p <= '9') ||
			     (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
				    ? *p
				    : '_';
	code[i] = '\0';
	snprintf(buf, len, "qase-%s-%lld.xml", code, c->run_id);
}

/* What an import sends besides the file. */
struct import_req {
	struct outbound_part parts[3 + TC_LABELS_MAX];
	size_t n;
	char *labels[TC_LABELS_MAX]; /* "key=value", malloc'd */
	size_t n_labels;
};

static void import_req_free(struct import_req *r)
{
	for (size_t i = 0; i < r->n_labels; i++)
		free(r->labels[i]);
}

static void part_add(struct import_req *r, const char *name, const char *data, size_t len)
{
	r->parts[r->n++] = (struct outbound_part){ .name = name, .data = data, .len = len };
}

static int import_fields(struct tc *c, struct import_req *r, const char *batch)
{
	const char *project = target_str(c->a->target, "project");
	json_object *labels;
	size_t n;
	int rc = 0;

	labels = tc_labels(c, 1);
	n = json_object_array_length(labels);
	part_add(r, "project", project, strlen(project));
	if (batch)
		part_add(r, "batch", batch, strlen(batch));
	for (size_t i = 0; i < n && r->n_labels < TC_LABELS_MAX; i++) {
		json_object *l = json_object_array_get_idx(labels, i);
		char *kv;
		if (asprintf(&kv, "%s=%s", data_str(l, "key"), data_str(l, "value")) < 0) {
			outcome_set(c->out, WORK_FAIL, "out of memory");
			rc = -1;
			break;
		}
		r->labels[r->n_labels++] = kv;
		part_add(r, "label[]", kv, strlen(kv));
	}
	json_object_put(labels);
	return rc;
}

/* data.report after a 2xx: which event was imported, as what, and Test
 * Center's answer when it is JSON. */
static void import_record(struct tc *c, const char *file, const char *batch,
			  const struct outbound_resp *resp)
{
	json_object *rep = json_object_new_object();
	json_object *answer = resp->body ? json_tokener_parse(resp->body) : NULL;

	json_object_object_add(rep, "event", json_object_new_string(c->type));
	json_object_object_add(rep, "file", json_object_new_string(file));
	json_object_object_add(rep, "batch", batch ? json_object_new_string(batch) : NULL);
	json_object_object_add(rep, "status", json_object_new_int64(resp->status));
	if (json_object_is_type(answer, json_type_object))
		json_object_object_add(rep, "response", json_object_get(answer));
	json_object_put(answer);
	json_object_object_add(c->a->map.data, "report", rep);
	json_object_object_del(c->a->map.data, "importing");
}

static int import_send(struct tc *c, struct import_req *r, const char *file, const char *batch)
{
	char url[TC_URL_MAX];
	const char *headers[] = { c->auth, "Accept: application/json", NULL };
	struct outbound_req req = {
		.method = "POST", .url = url, .headers = headers, .parts = r->parts, .n_parts = r->n
	};
	struct outbound_resp resp;

	if (tc_url(c, "/import", url, sizeof(url)) < 0 ||
	    target_call(c->a, &req, &resp, c->out, "import") < 0)
		return -1;
	import_record(c, file, batch, &resp);
	outbound_resp_free(&resp);
	return 0;
}

static void tc_import(struct tc *c)
{
	json_object *data = c->a->map.data;
	struct import_req r = { 0 };
	const char *batch = param_nonempty(c, "batch");
	char file[128];
	char *xml = NULL;
	size_t len = 0;
	long long tests = 0;
	int from_results;
	/* the last attempt saved its intent for this event but not the result */
	int resent = state_is(c, "importing") && tu_streq(data_str(data, "importing"), c->type);

	if (state_is(c, "imported") &&
	    tu_streq(data_str(data_get(data, "report"), "event"), c->type)) {
		outcome_set(c->out, WORK_OK, "run %s: %s already imported", c->ref, c->type);
		return;
	}
	if (import_xml(c, &xml, &len, &tests, &from_results) < 0)
		return;
	import_filename(c, file, sizeof(file));
	if (import_fields(c, &r, batch) < 0)
		goto done;
	r.parts[r.n++] = (struct outbound_part){ .name = "result[]",
						 .filename = file,
						 .content_type = "application/xml",
						 .data = xml,
						 .len = len };
	json_object_object_add(data, "importing", json_object_new_string(c->type));
	if (tc_save(c, "importing") < 0 || import_send(c, &r, file, batch) < 0 ||
	    tc_save(c, "imported") < 0)
		goto done;
	outcome_set(c->out, WORK_OK,
		    "run %s: imported %s (%lld tests, from the %s) into project %s%s", c->ref, file,
		    tests, from_results ? "results" : "counts", target_str(c->a->target, "project"),
		    resent ? "; re-sent: an earlier upload's outcome was unknown" : "");
done:
	import_req_free(&r);
	free(xml);
}

/* ---- mode reporting ------------------------------------------------------------ */

/* The suite request: the report is found again by batch + labels. */
static json_object *suite_body(struct tc *c)
{
	json_object *b = json_object_new_object(), *test = json_object_new_object();
	const char *batch = param_nonempty(c, "batch");
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
	if (data_str(resp, "batch"))
		json_object_object_add(c->a->map.data, "batch",
				       json_object_new_string(data_str(resp, "batch")));
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
	if (run >= 0 && !state_is(c, "creating"))
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
	json_object *rs = data_get(c->a->map.data, "results");

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

	run_counts(c, &r);
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
	json_object *cl = data_get(c->a->map.data, "close");

	if (json_object_is_type(cl, json_type_object) && tu_streq(data_str(cl, "event"), c->type))
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
	if (json_object_get_boolean(data_get(cl, "verdict")))
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

	if (json_object_get_boolean(data_get(cl, "done"))) {
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
			    data_id(data_get(c->a->map.data, "results"), "reported") > 0
				    ? data_id(data_get(c->a->map.data, "results"), "reported")
				    : 0,
			    suite);
}

/* run.deleted: a warning while the report is ours to write to, then the
 * tombstone; without a suite there is nothing to warn on. */
static void rep_deleted(struct tc *c)
{
	long long suite = data_id(c->a->map.data, "suite_run_id");

	if (suite >= 0 && !state_is(c, "creating") &&
	    post_event(c, suite, "WARNING", "deleted in Qase") < 0)
		return;
	tc_tombstone(c, suite >= 0 ? "WARNING sent on the suite" : "no suite to warn on");
}

static void tc_reporting(struct tc *c)
{
	int created;
	long long suite;

	if (is_type(c, "run.deleted")) {
		rep_deleted(c);
		return;
	}
	if (!is_type(c, "run.started") && !is_type(c, "run.updated") &&
	    !is_type(c, "run.completed") && !is_type(c, "run.aborted")) {
		outcome_set(c->out, WORK_OK, "reporting mode: nothing to report for %s", c->type);
		return;
	}
	if ((suite = ensure_suite(c, &created)) < 0)
		return;
	if (is_type(c, "run.started"))
		outcome_set(c->out, WORK_OK, "run %s: %s suite run %lld in report %s", c->ref,
			    created ? "created" : "already has", suite,
			    c->a->map.remote_id ? c->a->map.remote_id : "?");
	else if (is_type(c, "run.updated"))
		rep_updated(c, suite);
	else
		rep_close(c, suite);
}

/* ---- entry ------------------------------------------------------------------- */

static void testcenter_attempt(struct target_attempt *a, struct target_outcome *out)
{
	struct tc c = { 0 };
	const char *mode;

	if (tc_init(&c, a, out) < 0)
		goto done;
	mode = target_str(a->target, "mode");
	if (state_is(&c, "deleted"))
		outcome_set(out, WORK_OK, "run %s was deleted in Qase: %s ignored", c.ref, c.type);
	else if (mode && strcmp(mode, "reporting") == 0)
		tc_reporting(&c);
	else if (is_type(&c, "run.deleted"))
		tc_tombstone(&c, "nothing to delete in Test Center");
	else if (is_type(&c, "run.completed") || is_type(&c, "run.aborted"))
		tc_import(&c);
	else
		outcome_set(out, WORK_OK, "import mode: uploaded at completion (%s)", c.type);
done:
	free(c.auth);
}

/* targets.testcenter.<name> */
static const struct action_key testcenter_keys[] = {
	{ "base_url", AK_URL, "http://localhost:8800", 0, NULL, "the Test Center server" },
	{ "token", AK_SECRET, NULL, 0, NULL, "API token (or user and password)" },
	{ "user", AK_STR, NULL, 0, NULL, "user name, with password" },
	{ "password", AK_SECRET, NULL, 0, NULL, "password, with user" },
	{ "project", AK_STR, NULL, AK_REQUIRED, NULL, "Test Center project" },
	{ "mode", AK_ENUM, "import", 0, "import|reporting", "upload at completion, or report live" },
	{ "batch", AK_TEMPLATE, "Qase {{project}}#{{run_id}}", AK_RELOAD, NULL, "the report's batch" },
	{ "suite", AK_TEMPLATE, "{{run.title}}", AK_RELOAD, NULL, "the JUnit suite name" },
	{ "labels", AK_MAP, NULL, AK_RELOAD, NULL, "label name -> template" },
	{ "blocked_event", AK_ENUM, "error", 0, "error|warning",
	  "reporting: a blocked result's event type" },
	TARGET_COMMON_KEYS,
	{ NULL, 0, NULL, 0, NULL, NULL },
};

/* Exactly one way to log in. */
static int testcenter_check(const struct target_cfg *t, const struct cfg_node *key,
			    struct errlist *errs)
{
	char where[300];
	json_object *s = t->settings;
	int token = json_object_object_get_ex(s, "token", NULL);
	int user = json_object_object_get_ex(s, "user", NULL);
	int pass = json_object_object_get_ex(s, "password", NULL);

	if (token == (user || pass) || user != pass)
		return errlist_add(errs,
				   "%s: targets.testcenter.%s: give either token, "
				   "or user and password",
				   cfg_where(key, where, sizeof(where)), t->name);
	return 0;
}

TARGET_KIND(testcenter, "report Qase runs to Test Center as JUnit", testcenter_check);
