/*
 * target_testcenter: Qase runs into Squish Test Center.
 *
 *   targets:
 *     testcenter:
 *       main: { base_url: http://tc:8800, token: ${TC_TOKEN}, project: Web,
 *               mode: import, batch: "Qase {{project}}#{{run_id}}",
 *               suite: "{{run.title}}", labels: { env: "{{run.environment}}" } }
 *
 * mode import (the default, and the safer one): nothing is sent until
 * run.completed or run.aborted; then one JUnit XML file built from the run's
 * counts (junit.h) goes to POST {base_url}/import, multipart, with the
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
 *   run.completed  POST /upload/cases "Qase run summary", a PASS or FAIL
 *   run.aborted      event on it with the counts, a LOG event on the suite
 *                    with the duration
 *   run.deleted    WARNING event on the suite
 * An event that finds no suite creates it first.  The map is saved after
 * every step, so a retry resumes where the last attempt stopped.
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

#include "targets/junit.h"
#include "targets/target_util.h"

#define TC_URL_MAX      2048
#define TC_LABELS_MAX   40 /* qase.* plus action_target's 32 */
#define TC_SUMMARY_CASE "Qase run summary"

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
	struct junit_run run = { .timestamp = event_str(c->a->event, "occurred_at") };
	struct import_req r = { 0 };
	const char *batch = param_nonempty(c, "batch");
	char suite[128], file[128];
	char *xml = NULL;
	size_t len;
	struct err err = { 0 };
	/* the last attempt saved its intent for this event but not the result */
	int resent = state_is(c, "importing") && tu_streq(data_str(data, "importing"), c->type);

	if (state_is(c, "imported") &&
	    tu_streq(data_str(data_get(data, "report"), "event"), c->type)) {
		outcome_set(c->out, WORK_OK, "run %s: %s already imported", c->ref, c->type);
		return;
	}
	run.suite = tc_suite(c, suite, sizeof(suite));
	run_counts(c, &run);
	if (junit_render(&xml, &len, &run, &err) < 0) {
		outcome_set(c->out, WORK_PERMANENT, "testcenter: %s", err.msg);
		return;
	}
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
	outcome_set(c->out, WORK_OK, "run %s: imported %s (%lld tests) into project %s%s", c->ref,
		    file, junit_tests(&run), target_str(c->a->target, "project"),
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

static int post_event(struct tc *c, long long run, const char *type, const char *message)
{
	json_object *b = json_object_new_object();
	int rc;

	data_set_int(b, "runId", run);
	json_object_object_add(b, "type", json_object_new_string(type));
	json_object_object_add(b, "message", json_object_new_string(message));
	rc = tc_post(c, "/upload/events", b, NULL, "event");
	json_object_put(b);
	return rc;
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
	json_object *b, *t, *resp = NULL;
	char msg[300];
	int rc;

	close_message(c, msg, sizeof(msg), fail);
	if (cas < 0) {
		b = json_object_new_object();
		t = json_object_new_object();
		data_set_int(b, "runId", suite);
		json_object_object_add(t, "name", json_object_new_string(TC_SUMMARY_CASE));
		json_object_object_add(b, "test", t);
		rc = tc_post(c, "/upload/cases", b, &resp, "case");
		json_object_put(b);
		cas = rc == 0 ? data_id(resp, "runId") : -1;
		json_object_put(resp);
		if (rc < 0)
			return -1;
		if (cas < 0) {
			outcome_set(c->out, WORK_PERMANENT,
				    "testcenter: POST /upload/cases answered without runId");
			return -1;
		}
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
		outcome_set(c->out, WORK_OK, "run %s: %s reported (%s) on suite run %lld", c->ref,
			    c->type, fail ? "FAIL" : "PASS", suite);
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
