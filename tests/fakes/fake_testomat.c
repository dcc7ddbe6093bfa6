/*
 * fake_testomat: the Testomat.io reporter API (vendor guide + OpenAPI in
 * docs/api/testomatio-reporter-*.txt, target-apis.md section 2).
 *
 *   POST /api/reporter                 create a run (or join a shared one)
 *   PUT  /api/reporter/{uid}           update / finish
 *   POST /api/reporter/{uid}/testrun   one TestData or {"tests": [...]}
 *   GET  /api/test_grep?type=&id=      the tests a --filter selects (what the
 *                                      official reporter asks; read-only)
 *
 * The key may come as the api_key query parameter or the api_key body
 * field; every copy given must match.  No key is 401; a wrong one is 403,
 * which is what the official client (@testomatio/reporter 2.17) takes for
 * "invalid key" (target-apis.md 2.6).  Runs are kept as JSON objects, which
 * is also what GET /_state shows.
 *
 * A test's optional fields may be JSON null, as the official client sends
 * them (stack, steps, example, code; rid in JUnit imports): null means
 * absent, so it is neither checked nor kept.  Everything else stays strict.
 *
 * Batches have no documented size limit, so none is refused: each run
 * records every batch it took (run.batches: batch_index, how many tests,
 * body bytes) and each result how many times its rid came (sends), for the
 * tests to assert on.  A shared run counts its participants (the creator
 * and each join): a finish (finish, pass or fail) from one of them leaves
 * the run open while others have not finished, unless it says
 * force_finish_shared_run (target-apis.md 2.4, 2.6); a "fail" from any
 * participant makes the run failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_common.h"

#define SHARED_RUN_DEFAULT_MIN 20

struct tm_state {
	struct json_object *runs; /* array of run objects */
	unsigned counter;
};

static const char *const status_events[] = {
	"finish", "pass", "fail", "finish_parallel", "pass_parallel", "fail_parallel", NULL,
};
static const char *const test_statuses[] = { "passed", "failed", "skipped", NULL };
static const char *const run_kinds[] = { "automated", "manual", "mixed", "detect", NULL };

/* Fields of POST /api/reporter; PUT accepts them too (client re-attach). */
static const struct jfield run_fields[] = {
	{ "api_key", JT_STR, 0 },
	{ "title", JT_STR, 0 },
	{ "env", JT_STR, 0 },
	{ "group_title", JT_STR, 0 },
	{ "description", JT_STR, 0 },
	{ "label", JT_STR, 0 },
	{ "jira_id", JT_STR, 0 },
	{ "ci_build_url", JT_STR, 0 },
	{ "access_event", JT_STR, 0 },
	{ "shared_run", JT_BOOL, 0 },
	{ "shared_run_timeout", JT_POSINT, 0 },
	{ "shared_run_shards", JT_POSINT, 0 },
	{ "kind", JT_STR, 0 },
	{ "status", JT_STR, 0 },
	{ "configuration", JT_OBJ, 0 },
	{ "tags", JT_STRARR, 0 },
	{ "parallel", JT_BOOL, 0 },
};

static const struct jfield finish_fields[] = {
	{ "status_event", JT_STR, 0 },   { "duration", JT_NNNUM, 0 },
	{ "tests_count", JT_NNINT, 0 },  { "passed_count", JT_NNINT, 0 },
	{ "failed_count", JT_NNINT, 0 }, { "skipped_count", JT_NNINT, 0 },
	{ "tests", JT_ARR, 0 },          { "detach", JT_BOOL, 0 },
	{ "create_tests", JT_BOOL, 0 },  { "force_finish_shared_run", JT_BOOL, 0 },
};

static const struct jfield test_fields[] = {
	{ "status", JT_STR, 1 },         { "title", JT_STR, 0 },
	{ "test_id", JT_STR, 0 },        { "suite_title", JT_STR, 0 },
	{ "suite_id", JT_STR, 0 },       { "rid", JT_STR, 0 },
	{ "create", JT_BOOL, 0 },        { "run_time", JT_NNNUM, 0 },
	{ "message", JT_STR, 0 },        { "stack", JT_STR, 0 },
	{ "steps", JT_ARR, 0 },          { "artifacts", JT_STRARR, 0 },
	{ "example", JT_OBJ_OR_STR, 0 }, { "meta", JT_OBJ, 0 },
	{ "labels", JT_ARR, 0 },         { "tags", JT_ARR, 0 },
	{ "links", JT_ARR, 0 },          { "overwrite", JT_BOOL, 0 },
	{ "timestamp", JT_NNINT, 0 },    { "file", JT_STR, 0 },
	{ "code", JT_STR, 0 },           { "substatus", JT_STR, 0 },
	{ "root_suite_id", JT_STR, 0 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *str_field(struct json_object *o, const char *key)
{
	struct json_object *v = fake_get(o, key);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int bool_field(struct json_object *o, const char *key)
{
	struct json_object *v = fake_get(o, key);
	return json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* ---- auth and run lookup ----------------------------------------------- */

/* 0 if every key given matches and one was given; else the status to
 * answer: 401 for no key, 403 for a wrong one. */
static int auth_check(struct fake *f, struct fake_req *r)
{
	char q[512];
	int given = 0;
	if (fake_query(r, "api_key", q, sizeof(q)) >= 0) {
		given = 1;
		if (strcmp(q, f->opt.api_key) != 0)
			return 403;
	}
	if (fake_has(r->json, "api_key")) {
		const char *b = str_field(r->json, "api_key");
		given = 1;
		if (!b || strcmp(b, f->opt.api_key) != 0)
			return 403;
	}
	return given ? 0 : 401;
}

static int auth_error(struct fake_req *r, int status)
{
	return fake_error(r, status,
			  status == 401 ? "api_key is required" : "Invalid api_key: access denied");
}

static struct json_object *find_run(struct tm_state *s, const char *uid)
{
	for (size_t i = 0; i < json_object_array_length(s->runs); i++) {
		struct json_object *run = json_object_array_get_idx(s->runs, i);
		if (strcmp(str_field(run, "uid"), uid) == 0)
			return run;
	}
	return NULL;
}

/* Copies every body field except the key and the nulls (absent fields)
 * into a result. */
static void merge_fields(struct json_object *dst, struct json_object *body)
{
	json_object_object_foreach(body, key, val)
	{
		if (val && strcmp(key, "api_key") != 0)
			json_object_object_add(dst, key, fake_copy(val));
	}
}

/* Copies the documented run fields of a create or update body into the run;
 * the fake's own fields (status, finished, ...) are never overwritten. */
static void merge_run_fields(struct json_object *run, struct json_object *body)
{
	for (size_t i = 1; i < N(run_fields); i++) /* 0 is api_key */
		if (fake_has(body, run_fields[i].name) && strcmp(run_fields[i].name, "status") != 0)
			json_object_object_add(run, run_fields[i].name,
					       fake_copy(fake_get(body, run_fields[i].name)));
	for (size_t i = 0; i < N(finish_fields); i++)
		if (fake_has(body, finish_fields[i].name) &&
		    strcmp(finish_fields[i].name, "status_event") != 0 &&
		    strcmp(finish_fields[i].name, "tests") != 0)
			json_object_object_add(run, finish_fields[i].name,
					       fake_copy(fake_get(body, finish_fields[i].name)));
}

static int check_run_fields(struct fake_req *r, struct json_object *b)
{
	char err[256];
	if (fake_check(b, run_fields, N(run_fields), err, sizeof(err)) < 0) {
		fake_error(r, 400, "%s", err);
		return -1;
	}
	const char *ae = str_field(b, "access_event");
	const char *kind = str_field(b, "kind");
	const char *st = str_field(b, "status");
	if (ae && strcmp(ae, "publish") != 0) {
		fake_error(r, 400, "access_event must be \"publish\"");
		return -1;
	}
	if (kind && !fake_in(kind, run_kinds)) {
		fake_error(r, 400, "kind must be automated, manual, mixed or detect");
		return -1;
	}
	if (st && strcmp(st, "scheduled") != 0) {
		fake_error(r, 400, "status must be \"scheduled\"");
		return -1;
	}
	return 0;
}

/* ---- POST /api/reporter ------------------------------------------------ */

static struct json_object *run_reply(struct fake *f, struct json_object *run)
{
	const char *uid = str_field(run, "uid");
	char url[512];
	struct json_object *o = json_object_new_object();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/projects/%s/runs/%s", f->opt.port,
		 f->opt.project ? f->opt.project : "fake-project", uid);
	json_object_object_add(o, "uid", json_object_new_string(uid));
	json_object_object_add(o, "url", json_object_new_string(url));
	if (bool_field(run, "published")) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/public/runs/%s", f->opt.port, uid);
		json_object_object_add(o, "public_url", json_object_new_string(url));
	} else {
		json_object_object_add(o, "public_url", NULL);
	}
	return o;
}

/* An unfinished shared run with this title, still inside its join window. */
static struct json_object *find_shared(struct tm_state *s, const char *title)
{
	double now = fake_now();
	for (size_t i = 0; i < json_object_array_length(s->runs); i++) {
		struct json_object *run = json_object_array_get_idx(s->runs, i);
		const char *t = str_field(run, "title");
		struct json_object *to = fake_get(run, "shared_run_timeout");
		int minutes = to ? json_object_get_int(to) : SHARED_RUN_DEFAULT_MIN;
		double created = json_object_get_double(fake_get(run, "created_at"));
		if (bool_field(run, "shared_run") && t && strcmp(t, title) == 0 &&
		    !bool_field(run, "finished") && now - created < minutes * 60.0)
			return run;
	}
	return NULL;
}

static int create_run(struct fake *f, struct fake_req *r)
{
	struct tm_state *s = f->state;
	struct json_object *b = r->json;
	if (check_run_fields(r, b) < 0)
		return 0;
	const char *title = str_field(b, "title");
	if (bool_field(b, "shared_run") && title) {
		struct json_object *run = find_shared(s, title);
		if (run) {
			int joined = json_object_get_int(fake_get(run, "joined"));
			json_object_object_add(run, "joined", json_object_new_int(joined + 1));
			return fake_reply(r, 200, run_reply(f, run));
		}
	}
	char uid[16];
	s->counter++;
	snprintf(uid, sizeof(uid), "%08x", s->counter * 2654435761u);
	struct json_object *run = json_object_new_object();
	json_object_object_add(run, "uid", json_object_new_string(uid));
	merge_run_fields(run, b);
	json_object_object_add(run, "created_at", json_object_new_double(fake_now()));
	/* "scheduled" runs turn "running" with their first result */
	json_object_object_add(
		run, "status",
		json_object_new_string(str_field(b, "status") ? "scheduled" : "running"));
	json_object_object_add(run, "finished", json_object_new_boolean(0));
	json_object_object_add(run, "published",
			       json_object_new_boolean(str_field(b, "access_event") != NULL));
	json_object_object_add(run, "joined", json_object_new_int(0));
	json_object_object_add(run, "status_events", json_object_new_array());
	json_object_object_add(run, "results", json_object_new_array());
	json_object_object_add(run, "batch_indexes", json_object_new_array());
	json_object_object_add(run, "batches", json_object_new_array());
	json_object_object_add(run, "finishes", json_object_new_int(0));
	json_object_array_add(s->runs, run);
	return fake_reply(r, 200, run_reply(f, run));
}

/* ---- results ----------------------------------------------------------- */

/* t without its null members (borrowed references, t stays untouched so
 * that the record shows what was sent). */
static struct json_object *without_nulls(struct json_object *t)
{
	struct json_object *view = json_object_new_object();
	json_object_object_foreach(t, key, val) if (val)
		json_object_object_add(view, key, json_object_get(val));
	return view;
}

static int check_test_fields(struct fake_req *r, struct json_object *t, const char *where,
			     int create_default)
{
	char err[256];
	if (fake_check(t, test_fields, N(test_fields), err, sizeof(err)) < 0) {
		fake_error(r, 400, "%s%s", where, err);
		return -1;
	}
	if (!fake_in(str_field(t, "status"), test_statuses)) {
		fake_error(r, 400, "%sstatus must be passed, failed or skipped", where);
		return -1;
	}
	const char *title = str_field(t, "title");
	const char *id = str_field(t, "test_id");
	if ((!title || !*title) && (!id || !*id)) {
		fake_error(r, 400, "%stitle or test_id is required", where);
		return -1;
	}
	struct json_object *steps = fake_get(t, "steps");
	for (size_t i = 0; steps && i < json_object_array_length(steps); i++) {
		if (!json_object_is_type(json_object_array_get_idx(steps, i), json_type_object)) {
			fake_error(r, 400, "%ssteps must be objects", where);
			return -1;
		}
	}
	if ((!id || !*id) && !bool_field(t, "create") && !create_default) {
		fake_error(r, 400,
			   "%sTest \"%s\" could not be matched; "
			   "send create: true or a test_id",
			   where, title);
		return -1;
	}
	return 0;
}

static int check_test(struct fake_req *r, struct json_object *t, const char *where, int create_default)
{
	if (!json_object_is_type(t, json_type_object)) {
		fake_error(r, 400, "%stest must be an object", where);
		return -1;
	}
	struct json_object *view = without_nulls(t);
	int rc = check_test_fields(r, view, where, create_default);
	json_object_put(view);
	return rc;
}

/* Adds t to the run; a result with a known rid replaces that result. */
static void store_test(struct json_object *run, struct json_object *t, int batch_index)
{
	struct json_object *results = fake_get(run, "results");
	if (strcmp(str_field(run, "status"), "scheduled") == 0)
		json_object_object_add(run, "status", json_object_new_string("running"));
	struct json_object *copy = json_object_new_object();
	merge_fields(copy, t);
	if (batch_index > 0)
		json_object_object_add(copy, "batch_index", json_object_new_int(batch_index));
	const char *rid = str_field(t, "rid");
	int sends = 1;
	for (size_t i = 0; rid && i < json_object_array_length(results); i++) {
		struct json_object *old = json_object_array_get_idx(results, i);
		const char *old_rid = str_field(old, "rid");
		if (old_rid && strcmp(old_rid, rid) == 0) {
			sends += json_object_get_int(fake_get(old, "sends"));
			json_object_object_add(copy, "sends", json_object_new_int(sends));
			json_object_array_put_idx(results, i, copy);
			return;
		}
	}
	json_object_object_add(copy, "sends", json_object_new_int(sends));
	json_object_array_add(results, copy);
}

static int check_tests(struct fake_req *r, struct json_object *tests, int create_default)
{
	for (size_t i = 0; i < json_object_array_length(tests); i++) {
		char where[32];
		snprintf(where, sizeof(where), "tests[%zu]: ", i);
		if (check_test(r, json_object_array_get_idx(tests, i), where, create_default) < 0)
			return -1;
	}
	return 0;
}

/* run.batches gets {batch_index (null when none), tests, bytes}. */
static void record_batch(struct fake_req *r, struct json_object *run, int batch_index, size_t n)
{
	struct json_object *b = json_object_new_object();
	json_object_object_add(b, "batch_index",
			       batch_index ? json_object_new_int(batch_index) : NULL);
	json_object_object_add(b, "tests", json_object_new_int64((int64_t)n));
	json_object_object_add(b, "bytes", json_object_new_int64((int64_t)r->body_len));
	json_object_array_add(fake_get(run, "batches"), b);
}

static int post_results(struct fake_req *r, struct json_object *run)
{
	struct json_object *b = r->json;
	struct json_object *tests = fake_get(b, "tests");
	int batch_index = 0;
	if (fake_has(b, "tests")) {
		if (!json_object_is_type(tests, json_type_array))
			return fake_error(r, 400, "tests must be an array");
		struct json_object *bi = fake_get(b, "batch_index");
		if (fake_has(b, "batch_index") && !fake_jt_ok(bi, JT_POSINT))
			return fake_error(r, 400, "batch_index must be a positive integer");
		batch_index = bi ? json_object_get_int(bi) : 0;
		if (check_tests(r, tests, 0) < 0)
			return 0;
		for (size_t i = 0; i < json_object_array_length(tests); i++)
			store_test(run, json_object_array_get_idx(tests, i), batch_index);
		if (batch_index)
			json_object_array_add(fake_get(run, "batch_indexes"),
					      json_object_new_int(batch_index));
		record_batch(r, run, batch_index, json_object_array_length(tests));
	} else {
		if (check_test(r, b, "", 0) < 0)
			return 0;
		store_test(run, b, 0);
	}
	return fake_reply(r, 200, json_object_new_object());
}

/* ---- PUT /api/reporter/{uid} -------------------------------------------- */

static const char *computed_status(struct json_object *run)
{
	struct json_object *results = fake_get(run, "results");
	for (size_t i = 0; i < json_object_array_length(results); i++) {
		const char *st = str_field(json_object_array_get_idx(results, i), "status");
		if (st && strcmp(st, "failed") == 0)
			return "failed";
	}
	return "passed";
}

/* A shared run's participants: its creator and every join. */
static int participants(struct json_object *run)
{
	if (!bool_field(run, "shared_run"))
		return 1;
	return 1 + json_object_get_int(fake_get(run, "joined"));
}

static void apply_status_event(struct json_object *run, const char *ev, int force)
{
	json_object_array_add(fake_get(run, "status_events"), json_object_new_string(ev));
	const char *st = NULL;
	if (strcmp(ev, "finish") == 0)
		st = computed_status(run);
	else if (strcmp(ev, "pass") == 0)
		st = "passed";
	else if (strcmp(ev, "fail") == 0)
		st = "failed";
	if (!st)
		return; /* *_parallel: one part finished, the run goes on */
	if (strcmp(ev, "fail") == 0)
		json_object_object_add(run, "forced_fail", json_object_new_boolean(1));
	int finishes = json_object_get_int(fake_get(run, "finishes")) + 1;
	json_object_object_add(run, "finishes", json_object_new_int(finishes));
	if (!force && finishes < participants(run))
		return; /* others of the shared run have not finished */
	if (bool_field(run, "forced_fail"))
		st = "failed";
	json_object_object_add(run, "status", json_object_new_string(st));
	json_object_object_add(run, "finished", json_object_new_boolean(1));
}

static int update_run(struct fake_req *r, struct json_object *run)
{
	struct json_object *b = r->json;
	char err[256], q[16];
	if (check_run_fields(r, b) < 0)
		return 0;
	if (fake_check(b, finish_fields, N(finish_fields), err, sizeof(err)) < 0)
		return fake_error(r, 400, "%s", err);
	const char *ev = str_field(b, "status_event");
	if (ev && !fake_in(ev, status_events))
		return fake_error(r, 400,
				  "status_event must be one of finish, pass, fail, "
				  "finish_parallel, pass_parallel, fail_parallel");
	if (fake_query(r, "shared_run", q, sizeof(q)) >= 0 && strcmp(q, "true") != 0 &&
	    strcmp(q, "false") != 0)
		return fake_error(r, 400, "shared_run must be true or false");
	struct json_object *tests = fake_get(b, "tests");
	if (tests && check_tests(r, tests, bool_field(b, "create_tests")) < 0)
		return 0;
	for (size_t i = 0; tests && i < json_object_array_length(tests); i++)
		store_test(run, json_object_array_get_idx(tests, i), 0);
	merge_run_fields(run, b);
	if (str_field(b, "access_event"))
		json_object_object_add(run, "published", json_object_new_boolean(1));
	if (ev)
		apply_status_event(run, ev, bool_field(b, "force_finish_shared_run"));
	int updates = json_object_get_int(fake_get(run, "updates"));
	json_object_object_add(run, "updates", json_object_new_int(updates + 1));
	return fake_reply(r, 200, json_object_new_object());
}

/* ---- routing ----------------------------------------------------------- */

/* GET /api/test_grep?type=tag&id=smoke&api_key=K: the reporter's only
 * read-only call.  The fake keeps no tests, so the list is always empty. */
static int test_grep(struct fake *f, struct fake_req *r)
{
	static const char *const types[] = { "tag", "plan", "label", NULL };
	char type[64], id[256];

	if (r->body_len)
		return fake_error(r, 400, "GET takes no body");
	int denied = auth_check(f, r);
	if (denied)
		return auth_error(r, denied);
	if (fake_query(r, "type", type, sizeof(type)) <= 0 || !fake_in(type, types))
		return fake_error(r, 400, "type must be one of tag, plan, label");
	if (fake_query(r, "id", id, sizeof(id)) <= 0)
		return fake_error(r, 400, "id is required");
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "tests", json_object_new_array());
	return fake_reply(r, 200, o);
}

static int handle(struct fake *f, struct fake_req *r)
{
	struct tm_state *s = f->state;
	char buf[1024];
	char *seg[5];
	int n = fake_split(r->path, buf, sizeof(buf), seg, 5);
	int is_post = strcmp(r->method, "POST") == 0;
	int is_put = strcmp(r->method, "PUT") == 0;
	if (n == 2 && strcmp(seg[0], "api") == 0 && strcmp(seg[1], "test_grep") == 0 &&
	    strcmp(r->method, "GET") == 0)
		return test_grep(f, r);
	if (n < 2 || n > 4 || strcmp(seg[0], "api") != 0 || strcmp(seg[1], "reporter") != 0 ||
	    (n == 2 && !is_post) || (n == 3 && !is_put) ||
	    (n == 4 && (!is_post || strcmp(seg[3], "testrun") != 0)))
		return fake_error(r, 404, "Not found: %s %s", r->method, r->path);
	if (r->body_len && !fake_is_json_type(r))
		return fake_error(r, 415, "Content-Type must be application/json");
	if (r->body_len && !r->json_ok)
		return fake_error(r, 400, "body is not valid JSON");
	int denied = auth_check(f, r);
	if (denied)
		return auth_error(r, denied);
	if (r->body_len && !json_object_is_type(r->json, json_type_object))
		return fake_error(r, 400, "body must be a JSON object");
	if (!r->json)
		r->json = json_object_new_object();
	if (n == 2)
		return create_run(f, r);
	struct json_object *run = find_run(s, seg[2]);
	if (!run)
		return fake_error(r, 404, "Run %s not found", seg[2]);
	if (n == 3)
		return update_run(r, run);
	return post_results(r, run);
}

static int init(struct fake *f)
{
	if (!f->opt.api_key) {
		fprintf(stderr, "fake_targets: testomat needs --api-key\n");
		return -1;
	}
	struct tm_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->runs = json_object_new_array();
	f->state = s;
	return 0;
}

static struct json_object *state(struct fake *f)
{
	struct tm_state *s = f->state;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "runs", fake_copy(s->runs));
	return o;
}

static void destroy(struct fake *f)
{
	struct tm_state *s = f->state;
	json_object_put(s->runs);
	free(s);
	f->state = NULL;
}

const struct fake_kind fake_testomat = {
	.name = "testomat",
	.init = init,
	.handle = handle,
	.state = state,
	.destroy = destroy,
};
