/*
 * fake_qasphere: the QA Sphere public API, runs and results
 * (docs/api/qasphere-runs.txt, target-apis.md section 3).
 *
 *   GET  /api/public/v0/project/{p}/run                       list runs
 *   POST /api/public/v0/project/{p}/run                       create -> 201 {id}
 *   POST /api/public/v0/project/{p}/run/{id}/log              {comment} -> {id}
 *   POST /api/public/v0/project/{p}/run/{id}/close            -> {message}
 *   POST /api/public/v0/project/{p}/run/{id}/result/batch     {items} -> {ids}
 *   POST /api/public/v0/project/{p}/run/{id}/tcase/{t}/result one result -> {id}
 *   GET  /api/public/v0/project/{p}/run/{id}/tcase            {tcases: [RunTCase]}
 *   GET  /api/public/v0/project/{p}/run/{id}/tcase/{t}        RunTCase + results
 *   POST /api/public/v0/project/{p}/tcase/seq                 {seqIds} -> {data, total, page, limit}
 *
 * The project's test cases are set with /_control {"tcases": [{id, seq,
 * title?, folderId?, tagIds?, priority?}]}.  With some set, a run holds
 * exactly its cases (tcaseIds, each of which must exist, or the cases its
 * filters select), and a result for any other case is refused; with none
 * (the tests written before results), a filter-made run takes any tcaseId.
 * A result/batch holds 1 to batch_max (500, what qas-cli sends) items.
 * Every stored result (GET /_state: runs[].results) keeps what was sent,
 * with the apiKeyId of the key that sent it.
 *
 * Authorization: Bearer <key> or ApiKey <key>.  More than rate_limit (20)
 * authorised requests inside any one second answer 429 with Retry-After: 1.
 * /_control settings: conflict_status (duplicate title, default 400),
 * close_closed_status (closing a closed run, default 400), rate_limit,
 * tcases, batch_max.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake_common.h"

#define RATE_MAX 1000

struct qs_state {
	struct json_object *runs; /* array of run objects */
	int next_run, next_result, next_log;
	int conflict_status, close_closed_status, rate_limit, batch_max;
	struct json_object *tcases; /* the project's test cases */
	double admitted[RATE_MAX];  /* ring of the last rate_limit admissions */
	int ring_head, ring_len;
};

static const char *const run_types[] = { "static", "static_struct", "live", NULL };
static const char *const priorities[] = { "low", "medium", "high", NULL };
static const char *const result_statuses[] = {
	"passed",  "failed",  "blocked", "skipped", "open",
	"custom1", "custom2", "custom3", "custom4", NULL,
};
static const char *const settings[] = {
	"conflict_status", "close_closed_status", "rate_limit", "tcases", "batch_max", NULL,
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *str_field(struct json_object *o, const char *key)
{
	struct json_object *v = fake_get(o, key);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* ---- auth and rate limit ----------------------------------------------- */

static int auth_ok(struct fake *f, struct fake_req *r)
{
	const char *h = fake_hdr(r, "authorization");
	if (!h)
		return 0;
	const char *key = NULL;
	if (strncasecmp(h, "Bearer ", 7) == 0)
		key = h + 7;
	else if (strncasecmp(h, "ApiKey ", 7) == 0)
		key = h + 7;
	return key && strcmp(key, f->opt.api_key) == 0;
}

/* Sliding one-second window over admitted requests. */
static int rate_ok(struct qs_state *s)
{
	if (s->rate_limit == 0)
		return 1;
	double now = fake_now();
	if (s->ring_len >= s->rate_limit) {
		int oldest = (s->ring_head - s->rate_limit + RATE_MAX) % RATE_MAX;
		if (now - s->admitted[oldest] < 1.0)
			return 0;
	}
	s->admitted[s->ring_head] = now;
	s->ring_head = (s->ring_head + 1) % RATE_MAX;
	if (s->ring_len < RATE_MAX)
		s->ring_len++;
	return 1;
}

static struct json_object *find_run(struct qs_state *s, const char *id)
{
	char *end;
	long n = strtol(id, &end, 10);
	if (*end || n <= 0)
		return NULL;
	for (size_t i = 0; i < json_object_array_length(s->runs); i++) {
		struct json_object *run = json_object_array_get_idx(s->runs, i);
		if (json_object_get_int(fake_get(run, "id")) == n)
			return run;
	}
	return NULL;
}

static int is_closed(struct json_object *run)
{
	return json_object_get_boolean(fake_get(run, "closed"));
}

/* ---- create ------------------------------------------------------------ */

static int check_plan(struct fake_req *r, struct json_object *plan, int live)
{
	static const struct jfield spec[] = {
		{ "tcaseIds", JT_STRARR, 0 },
		{ "folderIds", JT_INTARR, 0 },
		{ "tagIds", JT_INTARR, 0 },
		{ "priorities", JT_STRARR, 0 },
	};
	char err[256];
	if (!json_object_is_type(plan, json_type_object))
		return fake_error(r, 400, "queryPlans items must be objects"), -1;
	if (fake_check(plan, spec, N(spec), err, sizeof(err)) < 0)
		return fake_error(r, 400, "queryPlans: %s", err), -1;
	size_t set = 0;
	for (size_t i = 0; i < N(spec); i++) {
		struct json_object *a = fake_get(plan, spec[i].name);
		set += a && json_object_array_length(a) > 0;
	}
	if (!set)
		return fake_error(r, 400,
				  "queryPlans: each plan needs tcaseIds, folderIds, "
				  "tagIds or priorities"),
		       -1;
	struct json_object *pr = fake_get(plan, "priorities");
	for (size_t i = 0; pr && i < json_object_array_length(pr); i++)
		if (!fake_in(json_object_get_string(json_object_array_get_idx(pr, i)), priorities))
			return fake_error(r, 400,
					  "queryPlans: priorities must be low, medium "
					  "or high"),
			       -1;
	struct json_object *tc = fake_get(plan, "tcaseIds");
	for (size_t i = 0; tc && i < json_object_array_length(tc); i++)
		if (json_object_get_string_len(json_object_array_get_idx(tc, i)) == 0)
			return fake_error(r, 400,
					  "queryPlans: tcaseIds must not be empty "
					  "strings"),
			       -1;
	struct json_object *fo = fake_get(plan, "folderIds");
	if (live && tc)
		return fake_error(r, 400, "queryPlans: live runs cannot select tcaseIds"), -1;
	if (live && (!fo || json_object_array_length(fo) == 0))
		return fake_error(r, 400,
				  "queryPlans: live runs need at least one "
				  "folderId per plan"),
		       -1;
	return 0;
}

static int check_create(struct fake_req *r, struct json_object *b)
{
	static const struct jfield spec[] = {
		{ "title", JT_STR, 1 },           { "type", JT_STR, 1 },
		{ "queryPlans", JT_ARR, 1 },      { "description", JT_STR, 0 },
		{ "milestoneId", JT_POSINT, 0 },  { "assignmentId", JT_POSINT, 0 },
		{ "configurationId", JT_STR, 0 },
	};
	char err[256];
	if (fake_check(b, spec, N(spec), err, sizeof(err)) < 0)
		return fake_error(r, 400, "%s", err), -1;
	size_t tlen = fake_utf8_len(str_field(b, "title"));
	if (tlen < 1 || tlen > 255)
		return fake_error(r, 400, "title must be 1-255 characters long"), -1;
	const char *d = str_field(b, "description");
	if (d && fake_utf8_len(d) > 512)
		return fake_error(r, 400, "description must be at most 512 characters"), -1;
	const char *type = str_field(b, "type");
	if (!fake_in(type, run_types))
		return fake_error(r, 400, "type must be static, static_struct or live"), -1;
	int live = strcmp(type, "live") == 0;
	struct json_object *plans = fake_get(b, "queryPlans");
	size_t n = json_object_array_length(plans);
	if (n < 1)
		return fake_error(r, 400, "queryPlans must have at least one plan"), -1;
	if (!live && n != 1)
		return fake_error(r, 400,
				  "queryPlans: only one query plan is allowed for "
				  "non-live runs"),
		       -1;
	for (size_t i = 0; i < n; i++)
		if (check_plan(r, json_object_array_get_idx(plans, i), live) < 0)
			return -1;
	return 0;
}

static struct json_object *catalog_find(struct qs_state *s, const char *key)
{
	char *end;
	long seq = strtol(key, &end, 10);
	for (size_t i = 0; i < json_object_array_length(s->tcases); i++) {
		struct json_object *t = json_object_array_get_idx(s->tcases, i);
		if (strcmp(str_field(t, "id"), key) == 0 ||
		    (!*end && seq > 0 && json_object_get_int(fake_get(t, "seq")) == seq))
			return t;
	}
	return NULL;
}

static int int_in(struct json_object *arr, int v)
{
	for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
		if (json_object_get_int(json_object_array_get_idx(arr, i)) == v)
			return 1;
	return 0;
}

/* A catalogue case a filter plan selects (every filter given must match). */
static int plan_selects(struct json_object *plan, struct json_object *t)
{
	struct json_object *fo = fake_get(plan, "folderIds"), *tg = fake_get(plan, "tagIds");
	struct json_object *pr = fake_get(plan, "priorities"), *tags = fake_get(t, "tagIds");
	if (fo && !int_in(fo, json_object_get_int(fake_get(t, "folderId"))))
		return 0;
	if (pr) {
		int hit = 0;
		for (size_t i = 0; i < json_object_array_length(pr); i++)
			hit |= strcmp(json_object_get_string(json_object_array_get_idx(pr, i)),
				      str_field(t, "priority")) == 0;
		if (!hit)
			return 0;
	}
	if (tg) {
		int hit = 0;
		for (size_t i = 0; tags && i < json_object_array_length(tags); i++)
			hit |= int_in(tg, json_object_get_int(json_object_array_get_idx(tags, i)));
		if (!hit)
			return 0;
	}
	return 1;
}

/* The run's cases (copies of the catalogue's), or -1 after a 400; *any 1
 * when the catalogue is empty and the plan has filters. */
static int run_tcases(struct fake_req *r, struct qs_state *s, struct json_object *plan,
		      struct json_object **out, int *any)
{
	struct json_object *ids = fake_get(plan, "tcaseIds");
	size_t nc = json_object_array_length(s->tcases);
	*out = json_object_new_array();
	*any = 0;
	for (size_t i = 0; ids && i < json_object_array_length(ids); i++) {
		const char *id = json_object_get_string(json_object_array_get_idx(ids, i));
		struct json_object *t = nc ? catalog_find(s, id) : NULL;
		if (nc && (!t || strcmp(str_field(t, "id"), id) != 0)) {
			json_object_put(*out);
			return fake_error(r, 400, "queryPlans: test case %s not found", id), -1;
		}
		if (!t) {
			t = json_object_new_object();
			json_object_object_add(t, "id", json_object_new_string(id));
			json_object_object_add(t, "seq", json_object_new_int(0));
			json_object_array_add(*out, t);
		} else {
			json_object_array_add(*out, fake_copy(t));
		}
	}
	if (ids && !fake_has(plan, "folderIds") && !fake_has(plan, "tagIds") &&
	    !fake_has(plan, "priorities"))
		return 0;
	*any = nc == 0;
	for (size_t i = 0; i < nc; i++) {
		struct json_object *t = json_object_array_get_idx(s->tcases, i);
		if (plan_selects(plan, t))
			json_object_array_add(*out, fake_copy(t));
	}
	return 0;
}

static int create_run(struct fake *f, struct fake_req *r)
{
	struct qs_state *s = f->state;
	struct json_object *b = r->json, *tcases;
	int any;
	if (check_create(r, b) < 0)
		return 0;
	const char *title = str_field(b, "title");
	for (size_t i = 0; i < json_object_array_length(s->runs); i++) {
		struct json_object *run = json_object_array_get_idx(s->runs, i);
		if (strcmp(str_field(run, "title"), title) == 0)
			return fake_error(
				r, s->conflict_status,
				"run with the same title already exists, conflicting run id: %d",
				json_object_get_int(fake_get(run, "id")));
	}
	if (run_tcases(r, s, json_object_array_get_idx(fake_get(b, "queryPlans"), 0), &tcases,
		       &any) < 0)
		return 0;
	struct json_object *run = json_object_new_object();
	int id = s->next_run++;
	json_object_object_add(run, "tcases", tcases);
	json_object_object_add(run, "any_tcase", json_object_new_boolean(any));
	json_object_object_add(run, "id", json_object_new_int(id));
	json_object_object_add(run, "title", json_object_new_string(title));
	json_object_object_add(run, "description",
			       json_object_new_string(str_field(b, "description")
							      ? str_field(b, "description")
							      : ""));
	json_object_object_add(run, "type", json_object_new_string(str_field(b, "type")));
	json_object_object_add(run, "milestoneId", fake_copy(fake_get(b, "milestoneId")));
	json_object_object_add(run, "assignmentId", fake_copy(fake_get(b, "assignmentId")));
	json_object_object_add(run, "queryPlans", fake_copy(fake_get(b, "queryPlans")));
	char now[40];
	fake_iso_now(now, sizeof(now));
	json_object_object_add(run, "createdAt", json_object_new_string(now));
	json_object_object_add(run, "closed", json_object_new_boolean(0));
	json_object_object_add(run, "closedAt", NULL);
	json_object_object_add(run, "results", json_object_new_array());
	json_object_object_add(run, "logs", json_object_new_array());
	json_object_array_add(s->runs, run);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int(id));
	return fake_reply(r, 201, o);
}

/* ---- list -------------------------------------------------------------- */

static int list_runs(struct fake *f, struct fake_req *r)
{
	static const char *const keys[] = { "id",        "title",       "description",
					    "type",      "milestoneId", "assignmentId",
					    "createdAt", "closed",      "closedAt",
					    NULL };
	struct qs_state *s = f->state;
	char closed[16], limit[16];
	int want_closed = -1, max = -1;
	if (fake_query(r, "closed", closed, sizeof(closed)) >= 0) {
		if (strcmp(closed, "true") != 0 && strcmp(closed, "false") != 0)
			return fake_error(r, 400, "closed must be true or false");
		want_closed = strcmp(closed, "true") == 0;
	}
	if (fake_query(r, "limit", limit, sizeof(limit)) >= 0) {
		char *end;
		long n = strtol(limit, &end, 10);
		if (*end || !limit[0] || n < 1)
			return fake_error(r, 400, "limit must be a positive integer");
		max = (int)n;
	}
	struct json_object *list = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(s->runs); i++) {
		struct json_object *run = json_object_array_get_idx(s->runs, i);
		if (want_closed >= 0 && is_closed(run) != want_closed)
			continue;
		if (max >= 0 && (int)json_object_array_length(list) >= max)
			break;
		struct json_object *o = json_object_new_object();
		for (int k = 0; keys[k]; k++)
			json_object_object_add(o, keys[k], fake_copy(fake_get(run, keys[k])));
		json_object_array_add(list, o);
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "runs", list);
	return fake_reply(r, 200, o);
}

/* ---- run actions ------------------------------------------------------- */

static int close_run(struct fake *f, struct fake_req *r, struct json_object *run)
{
	struct qs_state *s = f->state;
	if (is_closed(run) && s->close_closed_status != 200)
		return fake_error(r, s->close_closed_status, "Run is already closed");
	if (!is_closed(run)) {
		char now[40];
		fake_iso_now(now, sizeof(now));
		json_object_object_add(run, "closed", json_object_new_boolean(1));
		json_object_object_add(run, "closedAt", json_object_new_string(now));
	}
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "message", json_object_new_string("Run closed"));
	return fake_reply(r, 200, o);
}

static int add_log(struct fake *f, struct fake_req *r, struct json_object *run)
{
	struct qs_state *s = f->state;
	static const struct jfield spec[] = { { "comment", JT_NESTR, 1 } };
	char err[256], id[32];
	if (fake_check(r->json, spec, 1, err, sizeof(err)) < 0)
		return fake_error(r, 400, "%s", err);
	snprintf(id, sizeof(id), "log%d", s->next_log++);
	struct json_object *log = json_object_new_object();
	json_object_object_add(log, "id", json_object_new_string(id));
	json_object_object_add(log, "comment", fake_copy(fake_get(r->json, "comment")));
	json_object_array_add(fake_get(run, "logs"), log);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	return fake_reply(r, 200, o);
}

/* The run's case for an id, sequence or legacy id; NULL when it has none. */
static struct json_object *run_tcase(struct json_object *run, const char *key)
{
	struct json_object *list = fake_get(run, "tcases");
	char *end;
	long seq = strtol(key, &end, 10);
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *t = json_object_array_get_idx(list, i);
		const char *legacy = str_field(t, "legacyId");
		if (strcmp(str_field(t, "id"), key) == 0 ||
		    (legacy && *legacy && !strcmp(legacy, key)) ||
		    (!*end && seq > 0 && json_object_get_int(fake_get(t, "seq")) == seq))
			return t;
	}
	return NULL;
}

/* A run knows its cases, unless made by filters with no catalogue set. */
static int run_has_tcase(struct json_object *run, const char *tcase)
{
	return json_object_get_boolean(fake_get(run, "any_tcase")) || run_tcase(run, tcase) != NULL;
}

static int check_result(struct fake_req *r, struct json_object *run, struct json_object *it,
			const char *where, int need_tcase)
{
	static const struct jfield spec[] = {
		{ "tcaseId", JT_NESTR, 1 }, { "status", JT_STR, 1 },
		{ "comment", JT_STR, 1 },   { "timeTaken", JT_NNINT_OR_NULL, 0 },
		{ "links", JT_ARR, 0 },
	};
	char err[256];
	if (!json_object_is_type(it, json_type_object))
		return fake_error(r, 400, "%sitem must be an object", where), -1;
	/* The single-result endpoint takes the case from its path: skip row 0. */
	if (fake_check(it, spec + !need_tcase, N(spec) - !need_tcase, err, sizeof(err)) < 0)
		return fake_error(r, 400, "%s%s", where, err), -1;
	if (!fake_in(str_field(it, "status"), result_statuses))
		return fake_error(r, 400,
				  "%sstatus must be passed, failed, blocked, skipped, "
				  "open or custom1-4",
				  where),
		       -1;
	struct json_object *links = fake_get(it, "links");
	for (size_t i = 0; links && i < json_object_array_length(links); i++) {
		struct json_object *l = json_object_array_get_idx(links, i);
		if (!json_object_is_type(fake_get(l, "url"), json_type_string) ||
		    (fake_has(l, "text") &&
		     !json_object_is_type(fake_get(l, "text"), json_type_string)))
			return fake_error(r, 400,
					  "%slinks must be objects with a url "
					  "string",
					  where),
			       -1;
	}
	const char *tc = str_field(it, "tcaseId");
	if (tc && !run_has_tcase(run, tc))
		return fake_error(r, 400, "%stest case %s is not part of run %d", where, tc,
				  json_object_get_int(fake_get(run, "id"))),
		       -1;
	return 0;
}

/* The key's id: the middle part of {tenant}.{apiKeyId}.{token}. */
static struct json_object *api_key_id(struct fake *f)
{
	const char *k = f->opt.api_key, *a = strchr(k, '.'), *b = a ? strchr(a + 1, '.') : NULL;
	return a && b ? json_object_new_string_len(a + 1, (int)(b - a - 1))
		      : json_object_new_string(k);
}

static int store_result(struct fake *f, struct json_object *run, struct json_object *it,
			const char *tcase)
{
	struct qs_state *s = f->state;
	int id = s->next_result++;
	struct json_object *res = fake_copy(it);
	char now[40];
	json_object_object_add(res, "id", json_object_new_int(id));
	if (tcase)
		json_object_object_add(res, "tcaseId", json_object_new_string(tcase));
	fake_iso_now(now, sizeof(now));
	json_object_object_add(res, "apiKeyId", api_key_id(f));
	json_object_object_add(res, "internal", json_object_new_boolean(0));
	json_object_object_add(res, "createdAt", json_object_new_string(now));
	json_object_array_add(fake_get(run, "results"), res);
	return id;
}

static int add_results(struct fake *f, struct fake_req *r, struct json_object *run)
{
	struct qs_state *s = f->state;
	struct json_object *items = fake_get(r->json, "items");
	if (!json_object_is_type(items, json_type_array))
		return fake_error(r, 400, "items must be an array");
	size_t n = json_object_array_length(items);
	if (n < 1)
		return fake_error(r, 400, "items must have at least one item");
	if ((int)n > s->batch_max)
		return fake_error(r, 400, "items must have at most %d items", s->batch_max);
	if (is_closed(run))
		return fake_error(r, 400, "Run is closed");
	for (size_t i = 0; i < n; i++) {
		char where[32];
		snprintf(where, sizeof(where), "items[%zu]: ", i);
		if (check_result(r, run, json_object_array_get_idx(items, i), where, 1) < 0)
			return 0;
	}
	struct json_object *ids = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(ids,
				      json_object_new_int(store_result(
					      f, run, json_object_array_get_idx(items, i), NULL)));
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ids", ids);
	return fake_reply(r, 200, o);
}

static int add_result(struct fake *f, struct fake_req *r, struct json_object *run, const char *tcase)
{
	if (is_closed(run))
		return fake_error(r, 400, "Run is closed");
	if (fake_has(r->json, "tcaseId"))
		return fake_error(r, 400, "tcaseId belongs in the path");
	if (check_result(r, run, r->json, "", 0) < 0)
		return 0;
	if (!run_has_tcase(run, tcase))
		return fake_error(r, 404, "test case %s not found in run", tcase);
	/* the path may name the case by sequence: the result holds its id */
	struct json_object *t = run_tcase(run, tcase), *o = json_object_new_object();
	json_object_object_add(
		o, "id",
		json_object_new_int(store_result(f, run, r->json, t ? str_field(t, "id") : tcase)));
	return fake_reply(r, 200, o);
}

/* ---- test cases -------------------------------------------------------- */

/* The status of the case's latest result in the run, "open" without. */
static const char *tcase_status(struct json_object *run, const char *id)
{
	struct json_object *res = fake_get(run, "results");
	const char *st = "open";
	for (size_t i = 0; i < json_object_array_length(res); i++) {
		struct json_object *x = json_object_array_get_idx(res, i);
		if (strcmp(str_field(x, "tcaseId"), id) == 0)
			st = str_field(x, "status");
	}
	return st;
}

static struct json_object *run_tcase_json(struct json_object *run, struct json_object *t, int pos)
{
	struct json_object *o = json_object_new_object();
	const char *title = str_field(t, "title"), *pr = str_field(t, "priority");
	const char *legacy = str_field(t, "legacyId");
	json_object_object_add(o, "id", fake_copy(fake_get(t, "id")));
	json_object_object_add(o, "version", json_object_new_int(1));
	json_object_object_add(o, "legacyId", json_object_new_string(legacy ? legacy : ""));
	json_object_object_add(o, "folderId",
			       json_object_new_int(json_object_get_int(fake_get(t, "folderId"))));
	json_object_object_add(o, "pos", json_object_new_int(pos));
	json_object_object_add(o, "seq",
			       json_object_new_int(json_object_get_int(fake_get(t, "seq"))));
	json_object_object_add(o, "title", json_object_new_string(title ? title : ""));
	json_object_object_add(o, "priority", json_object_new_string(pr ? pr : "medium"));
	json_object_object_add(o, "status",
			       json_object_new_string(tcase_status(run, str_field(t, "id"))));
	json_object_object_add(o, "isAutomated", json_object_new_boolean(0));
	return o;
}

static int list_tcases(struct fake_req *r, struct json_object *run)
{
	struct json_object *list = fake_get(run, "tcases"), *out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(list); i++)
		json_object_array_add(
			out, run_tcase_json(run, json_object_array_get_idx(list, i), (int)i + 1));
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "tcases", out);
	return fake_reply(r, 200, o);
}

static int get_tcase(struct fake_req *r, struct json_object *run, const char *key)
{
	struct json_object *t = run_tcase(run, key);
	if (!t)
		return fake_error(r, 404, "test case %s not found in run", key);
	struct json_object *o = run_tcase_json(run, t, 1), *res = json_object_new_array();
	struct json_object *all = fake_get(run, "results");
	for (size_t i = 0; i < json_object_array_length(all); i++) {
		struct json_object *x = json_object_array_get_idx(all, i);
		if (strcmp(str_field(x, "tcaseId"), str_field(t, "id")) == 0)
			json_object_array_add(res, fake_copy(x));
	}
	json_object_object_add(o, "results", res);
	return fake_reply(r, 200, o);
}

/* POST /tcase/seq {seqIds: ["BD-023"], page?, limit?} (qas-cli's lookup). */
static int tcases_by_seq(struct fake *f, struct fake_req *r)
{
	struct qs_state *s = f->state;
	static const struct jfield spec[] = {
		{ "seqIds", JT_STRARR, 1 },
		{ "page", JT_POSINT, 0 },
		{ "limit", JT_POSINT, 0 },
	};
	char err[256];
	if (!json_object_is_type(r->json, json_type_object))
		return fake_error(r, 400, "body must be a JSON object");
	if (fake_check(r->json, spec, N(spec), err, sizeof(err)) < 0)
		return fake_error(r, 400, "%s", err);
	struct json_object *seqs = fake_get(r->json, "seqIds");
	int page = fake_has(r->json, "page") ? json_object_get_int(fake_get(r->json, "page")) : 1;
	int limit = fake_has(r->json, "limit") ? json_object_get_int(fake_get(r->json, "limit")) : 10;
	size_t cl = strlen(f->opt.project);
	struct json_object *hits = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(seqs); i++) {
		const char *m = json_object_get_string(json_object_array_get_idx(seqs, i));
		char *end;
		long seq;
		if (strncasecmp(m, f->opt.project, cl) != 0 || m[cl] != '-' ||
		    (seq = strtol(m + cl + 1, &end, 10)) <= 0 || *end) {
			json_object_put(hits);
			return fake_error(r, 400, "seqIds: %s is not a %s-<sequence> marker", m,
					  f->opt.project);
		}
		char key[32];
		snprintf(key, sizeof(key), "%ld", seq);
		struct json_object *t = catalog_find(s, key);
		if (t)
			json_object_array_add(hits, fake_copy(t));
	}
	struct json_object *data = json_object_new_array();
	size_t total = json_object_array_length(hits);
	for (size_t i = (size_t)(page - 1) * (size_t)limit;
	     i < total && i < (size_t)page * (size_t)limit; i++)
		json_object_array_add(data, fake_copy(json_object_array_get_idx(hits, i)));
	json_object_put(hits);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "data", data);
	json_object_object_add(o, "total", json_object_new_int((int)total));
	json_object_object_add(o, "page", json_object_new_int(page));
	json_object_object_add(o, "limit", json_object_new_int(limit));
	return fake_reply(r, 200, o);
}

/* ---- routing ----------------------------------------------------------- */

static int is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* seg[0..2] = api public v0; seg[3] = project; seg[4] = {p}; seg[5] = run
 * (or tcase) */
static int route(struct fake *f, struct fake_req *r, char **seg, int n)
{
	struct qs_state *s = f->state;
	int post = is(r->method, "POST");
	int get = is(r->method, "GET");
	if (n < 6 || !is(seg[3], "project"))
		return fake_error(r, 404, "Not found: %s %s", r->method, r->path);
	if (n == 7 && post && is(seg[5], "tcase") && is(seg[6], "seq")) {
		if (strcmp(seg[4], f->opt.project) != 0)
			return fake_error(r, 404, "Project %s not found", seg[4]);
		return tcases_by_seq(f, r);
	}
	if (!is(seg[5], "run"))
		return fake_error(r, 404, "Not found: %s %s", r->method, r->path);
	int known = (n == 6 && (get || post)) ||
		    (n == 8 && post && (is(seg[7], "log") || is(seg[7], "close"))) ||
		    (n == 8 && get && is(seg[7], "tcase")) ||
		    (n == 9 && get && is(seg[7], "tcase")) ||
		    (n == 9 && post && is(seg[7], "result") && is(seg[8], "batch")) ||
		    (n == 10 && post && is(seg[7], "tcase") && is(seg[9], "result"));
	if (!known)
		return fake_error(r, 404, "Not found: %s %s", r->method, r->path);
	if (strcmp(seg[4], f->opt.project) != 0)
		return fake_error(r, 404, "Project %s not found", seg[4]);
	if (n == 6 && get)
		return list_runs(f, r);
	int needs_body = post && !(n == 8 && is(seg[7], "close"));
	if (needs_body && !json_object_is_type(r->json, json_type_object))
		return fake_error(r, 400, "body must be a JSON object");
	if (n == 6)
		return create_run(f, r);
	struct json_object *run = find_run(s, seg[6]);
	if (!run)
		return fake_error(r, 404, "Run %s not found", seg[6]);
	if (get && n == 8)
		return list_tcases(r, run);
	if (get)
		return get_tcase(r, run, seg[8]);
	if (n == 9)
		return add_results(f, r, run);
	if (n == 10)
		return add_result(f, r, run, seg[8]);
	if (is(seg[7], "log"))
		return add_log(f, r, run);
	return close_run(f, r, run);
}

static int handle(struct fake *f, struct fake_req *r)
{
	struct qs_state *s = f->state;
	char buf[1024];
	char *seg[11];
	int n = fake_split(r->path, buf, sizeof(buf), seg, 11);
	if (n < 3 || !is(seg[0], "api") || !is(seg[1], "public") || !is(seg[2], "v0"))
		return fake_error(r, 404, "Not found: %s %s", r->method, r->path);
	if (!auth_ok(f, r))
		return fake_error(r, 401, "Invalid or missing API key");
	if (!rate_ok(s)) {
		fake_header(r, "Retry-After", "1");
		return fake_error(r, 429, "Too many requests, please try again later.");
	}
	if (r->body_len && !fake_is_json_type(r))
		return fake_error(r, 415, "Content-Type must be application/json");
	if (r->body_len && !r->json_ok)
		return fake_error(r, 400, "body is not valid JSON");
	return route(f, r, seg, n);
}

/* ---- lifecycle and control --------------------------------------------- */

/* /_control tcases: the project's test cases, replacing those before. */
static int set_tcases(struct qs_state *s, struct json_object *v, const char **err)
{
	static const struct jfield spec[] = {
		{ "id", JT_NESTR, 1 },        { "seq", JT_POSINT, 1 },    { "title", JT_STR, 0 },
		{ "folderId", JT_POSINT, 0 }, { "tagIds", JT_INTARR, 0 }, { "priority", JT_STR, 0 },
		{ "legacyId", JT_STR, 0 },
	};
	char why[256];
	if (!json_object_is_type(v, json_type_array))
		return *err = "tcases must be a list", -1;
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		struct json_object *t = json_object_array_get_idx(v, i);
		if (!json_object_is_type(t, json_type_object) ||
		    fake_check(t, spec, N(spec), why, sizeof(why)) < 0)
			return *err = "tcases: each needs an id string and a positive seq", -1;
		if (fake_has(t, "priority") && !fake_in(str_field(t, "priority"), priorities))
			return *err = "tcases: priority must be low, medium or high", -1;
		for (size_t k = 0; k < i; k++) {
			struct json_object *o = json_object_array_get_idx(v, k);
			if (!strcmp(str_field(o, "id"), str_field(t, "id")) ||
			    json_object_get_int(fake_get(o, "seq")) ==
				    json_object_get_int(fake_get(t, "seq")))
				return *err = "tcases: ids and seqs must be unique", -1;
		}
	}
	json_object_put(s->tcases);
	s->tcases = fake_copy(v);
	return 0;
}

static int control(struct fake *f, struct json_object *b, const char **err)
{
	struct qs_state *s = f->state;
	struct json_object *v;
	if ((v = fake_get(b, "conflict_status")) || fake_has(b, "conflict_status")) {
		if (!fake_jt_ok(v, JT_INT) || json_object_get_int(v) < 200 ||
		    json_object_get_int(v) > 599)
			return *err = "conflict_status must be an HTTP status", -1;
		s->conflict_status = json_object_get_int(v);
	}
	if ((v = fake_get(b, "close_closed_status")) || fake_has(b, "close_closed_status")) {
		if (!fake_jt_ok(v, JT_INT) || json_object_get_int(v) < 200 ||
		    json_object_get_int(v) > 599)
			return *err = "close_closed_status must be an HTTP status", -1;
		s->close_closed_status = json_object_get_int(v);
	}
	if ((v = fake_get(b, "rate_limit")) || fake_has(b, "rate_limit")) {
		if (!fake_jt_ok(v, JT_NNINT) || json_object_get_int(v) > RATE_MAX)
			return *err = "rate_limit must be 0-1000", -1;
		s->rate_limit = json_object_get_int(v);
		s->ring_len = 0;
	}
	if ((v = fake_get(b, "batch_max")) || fake_has(b, "batch_max")) {
		if (!fake_jt_ok(v, JT_POSINT) || json_object_get_int(v) > 100000)
			return *err = "batch_max must be 1-100000", -1;
		s->batch_max = json_object_get_int(v);
	}
	if ((v = fake_get(b, "tcases")) || fake_has(b, "tcases"))
		return set_tcases(s, v, err);
	return 0;
}

static int init(struct fake *f)
{
	if (!f->opt.api_key || !f->opt.project) {
		fprintf(stderr, "fake_targets: qasphere needs --api-key and --project\n");
		return -1;
	}
	struct qs_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->runs = json_object_new_array();
	s->tcases = json_object_new_array();
	s->batch_max = 500;
	s->next_run = 1;
	s->next_result = 1001;
	s->next_log = 1;
	s->conflict_status = 400;
	s->close_closed_status = 400;
	s->rate_limit = 20;
	f->state = s;
	return 0;
}

static struct json_object *state(struct fake *f)
{
	struct qs_state *s = f->state;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "runs", fake_copy(s->runs));
	json_object_object_add(o, "conflict_status", json_object_new_int(s->conflict_status));
	json_object_object_add(o, "close_closed_status", json_object_new_int(s->close_closed_status));
	json_object_object_add(o, "rate_limit", json_object_new_int(s->rate_limit));
	json_object_object_add(o, "tcases", fake_copy(s->tcases));
	json_object_object_add(o, "batch_max", json_object_new_int(s->batch_max));
	return o;
}

static void destroy(struct fake *f)
{
	struct qs_state *s = f->state;
	json_object_put(s->runs);
	json_object_put(s->tcases);
	free(s);
	f->state = NULL;
}

const struct fake_kind fake_qasphere = {
	.name = "qasphere",
	.init = init,
	.handle = handle,
	.state = state,
	.control = control,
	.settings = settings,
	.destroy = destroy,
};
