/*
 * fake_qase_data: what the Qase fake holds, and how a test puts it there
 * (see fake_qase.h for the shape).
 *
 * POST /_control takes these settings (fakes.py: Fake.seed, Fake.generate):
 *
 *   seed: {"project": "DEMO", "run": Run, "results": [Result], "cases":
 *          [TestCase], "suites": [Suite]}   every part optional but project.
 *     Entities are checked against the vendor's schema (types, nullable
 *     fields; unknown fields are refused, so a typo such as time_ms fails
 *     loudly), then completed with defaults for every field left out.  A
 *     run (re)defines that run and drops its earlier results; results are
 *     appended, to run_id or else to the seed's run; cases and suites are
 *     replaced by id.
 *   generate: {"project", "run_id", "results": N, "retested": R,
 *              "suites": S (5), "custom_status": "flaky" (null: none),
 *              "case_id_start": 1, "title"}
 *     A completed run of N results over N - R cases: a fixed mix of passed,
 *     failed, blocked, skipped, invalid, in_progress and the custom slug;
 *     R cases (spread over the run, never in_progress ones) have a second,
 *     earlier, failed result that comes later in the list, so only the
 *     end_time tells which one counts.  S suites form a tree (parent_id).
 *   delete_run: {"project", "id"}  the run and its results are gone (404).
 *   wipe: true                     every project is gone.
 *   delay_seconds, delay_count     the next delay_count (1) API requests
 *                                  are answered normally after the delay.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_qase.h"

#define N(a)            (sizeof(a) / sizeof((a)[0]))
#define GEN_MAX_RESULTS 100000
#define GEN_MAX_SUITES  1000
#define GEN_BASE_TIME   1795168800 /* 2026-11-20T10:00:00Z */

const char *const qase_settings[] = {
	"seed", "generate", "delete_run", "wipe", "delay_seconds", "delay_count", NULL,
};

/* control() hands *err to the common layer after the lock is released. */
static _Thread_local char errbuf[256];

static int fail(const char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(const char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	*err = errbuf;
	return -1;
}

/* ---- schema checks ----------------------------------------------------- */

struct qfield {
	const char *name;
	enum jt type;
	int nullable;
	int required;
};

static const struct qfield run_spec[] = {
	{ "id", JT_POSINT, 0, 1 },
	{ "title", JT_STR, 0, 0 },
	{ "description", JT_STR, 1, 0 },
	{ "status", JT_NNINT, 0, 0 },
	{ "status_text", JT_STR, 0, 0 },
	{ "start_time", JT_STR, 1, 0 },
	{ "end_time", JT_STR, 1, 0 },
	{ "public", JT_BOOL, 0, 0 },
	{ "time_spent", JT_NNINT, 0, 0 },
	{ "elapsed_time", JT_NNINT, 0, 0 },
	{ "environment", JT_OBJ, 1, 0 },
	{ "milestone", JT_OBJ, 1, 0 },
	{ "custom_fields", JT_ARR, 0, 0 },
	{ "tags", JT_ARR, 0, 0 },
	{ "cases", JT_INTARR, 0, 0 },
	{ "plan_id", JT_POSINT, 1, 0 },
	{ "configurations", JT_INTARR, 0, 0 },
	{ "external_issue", JT_OBJ, 1, 0 },
};

static const struct qfield result_spec[] = {
	{ "hash", JT_NESTR, 0, 0 },         { "result_hash", JT_NESTR, 0, 0 },
	{ "comment", JT_STR, 1, 0 },        { "stacktrace", JT_STR, 1, 0 },
	{ "run_id", JT_POSINT, 0, 0 },      { "case_id", JT_POSINT, 0, 1 },
	{ "steps", JT_ARR, 1, 0 },          { "status", JT_NESTR, 0, 1 },
	{ "is_api_result", JT_BOOL, 0, 0 }, { "time_spent_ms", JT_NNINT, 0, 0 },
	{ "end_time", JT_STR, 1, 0 },       { "attachments", JT_ARR, 0, 0 },
};

static const struct qfield case_spec[] = {
	{ "id", JT_POSINT, 0, 1 },
	{ "title", JT_NESTR, 0, 1 },
	{ "position", JT_INT, 0, 0 },
	{ "description", JT_STR, 1, 0 },
	{ "preconditions", JT_STR, 1, 0 },
	{ "postconditions", JT_STR, 1, 0 },
	{ "severity", JT_INT, 0, 0 },
	{ "priority", JT_INT, 0, 0 },
	{ "type", JT_INT, 0, 0 },
	{ "layer", JT_INT, 0, 0 },
	{ "is_flaky", JT_INT, 0, 0 },
	{ "behavior", JT_INT, 0, 0 },
	{ "automation", JT_INT, 0, 0 },
	{ "isManual", JT_BOOL, 0, 0 },
	{ "isToBeAutomated", JT_BOOL, 0, 0 },
	{ "status", JT_INT, 0, 0 },
	{ "milestone_id", JT_POSINT, 1, 0 },
	{ "suite_id", JT_POSINT, 1, 0 },
	{ "custom_fields", JT_ARR, 0, 0 },
	{ "attachments", JT_ARR, 0, 0 },
	{ "steps_type", JT_STR, 1, 0 },
	{ "steps", JT_ARR, 0, 0 },
	{ "params", JT_ARR, 0, 0 },
	{ "parameters", JT_ARR, 0, 0 },
	{ "tags", JT_ARR, 0, 0 },
	{ "member_id", JT_POSINT, 0, 0 },
	{ "author_id", JT_POSINT, 0, 0 },
	{ "created_at", JT_STR, 0, 0 },
	{ "updated_at", JT_STR, 0, 0 },
	{ "deleted", JT_STR, 1, 0 },
	{ "created", JT_STR, 0, 0 },
	{ "updated", JT_STR, 0, 0 },
};

static const struct qfield suite_spec[] = {
	{ "id", JT_POSINT, 0, 1 },       { "title", JT_NESTR, 0, 1 },
	{ "description", JT_STR, 1, 0 }, { "preconditions", JT_STR, 1, 0 },
	{ "position", JT_INT, 0, 0 },    { "parent_id", JT_POSINT, 1, 0 },
	{ "created", JT_STR, 0, 0 },     { "updated", JT_STR, 1, 0 },
	{ "created_at", JT_STR, 0, 0 },  { "updated_at", JT_STR, 0, 0 },
};

static int check(struct json_object *o, const struct qfield *spec, size_t n, const char *what,
		 const char **err)
{
	if (!json_object_is_type(o, json_type_object))
		return fail(err, "%s must be an object", what);
	json_object_object_foreach(o, key, val)
	{
		size_t i;
		for (i = 0; i < n && strcmp(spec[i].name, key) != 0; i++)
			;
		if (i == n)
			return fail(err, "%s: unknown field %s", what, key);
		if (json_object_is_type(val, json_type_null) && spec[i].nullable)
			continue;
		if (!fake_jt_ok(val, spec[i].type))
			return fail(err, "%s: %s has the wrong type%s", what, key,
				    spec[i].nullable ? " (or null)" : "");
	}
	for (size_t i = 0; i < n; i++)
		if (spec[i].required && !fake_has(o, spec[i].name))
			return fail(err, "%s: %s is required", what, spec[i].name);
	return 0;
}

static int code_ok(const char *code)
{
	size_t n = code ? strlen(code) : 0;
	if (n < 2 || n > 10)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((code[i] >= 'A' && code[i] <= 'Z') || (code[i] >= '0' && code[i] <= '9') ||
		      (code[i] >= 'a' && code[i] <= 'z')))
			return 0;
	return 1;
}

static long long int_field(struct json_object *o, const char *key, long long dflt)
{
	struct json_object *v = fake_get(o, key);
	return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : dflt;
}

/* ---- defaults ---------------------------------------------------------- */

static void iso(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

static void add_str(struct json_object *o, const char *key, const char *val)
{
	json_object_object_add(o, key, val ? json_object_new_string(val) : NULL);
}

static void add_int(struct json_object *o, const char *key, long long val)
{
	json_object_object_add(o, key, json_object_new_int64(val));
}

static void add_arr(struct json_object *o, const char *key)
{
	json_object_object_add(o, key, json_object_new_array());
}

/* A result hash as Qase shows one: 40 hex digits, stable per input. */
static void make_hash(const char *code, long long run, long long seq, char out[41])
{
	char in[96];
	snprintf(in, sizeof(in), "%s/%lld/%lld", code, run, seq);
	unsigned long long h[3] = { 14695981039346656037ull, 1099511628211ull, 0x9e3779b97f4a7c15ull };
	for (int k = 0; k < 3; k++)
		for (const char *p = in; *p; p++) {
			h[k] ^= (unsigned char)*p;
			h[k] *= 1099511628211ull;
		}
	char full[64];
	snprintf(full, sizeof(full), "%016llx%016llx%016llx", h[0], h[1], h[2]);
	memcpy(out, full, 40);
	out[40] = '\0';
}

static struct json_object *run_defaults(long long id)
{
	char title[64], start[40];
	struct json_object *o = json_object_new_object();
	snprintf(title, sizeof(title), "Run %lld", id);
	iso(GEN_BASE_TIME, start, sizeof(start));
	add_int(o, "id", id);
	add_int(o, "run_id", id);
	add_str(o, "title", title);
	add_str(o, "description", NULL);
	add_int(o, "status", 0); /* 0 active, 1 complete, 2 abort */
	add_str(o, "status_text", "active");
	add_str(o, "start_time", start);
	add_str(o, "end_time", NULL);
	json_object_object_add(o, "public", json_object_new_boolean(0));
	add_int(o, "time_spent", 0);
	add_int(o, "elapsed_time", 0);
	add_str(o, "environment", NULL);
	add_str(o, "milestone", NULL);
	add_arr(o, "custom_fields");
	add_arr(o, "tags");
	add_str(o, "plan_id", NULL);
	add_arr(o, "configurations");
	add_str(o, "external_issue", NULL);
	return o;
}

static struct json_object *result_defaults(long long run_id, long long case_id, const char *hash)
{
	struct json_object *o = json_object_new_object();
	add_str(o, "hash", hash);
	add_str(o, "result_hash", hash);
	add_str(o, "comment", NULL);
	add_str(o, "stacktrace", NULL);
	add_int(o, "run_id", run_id);
	add_int(o, "case_id", case_id);
	add_str(o, "steps", NULL);
	add_str(o, "status", "passed");
	json_object_object_add(o, "is_api_result", json_object_new_boolean(1));
	add_int(o, "time_spent_ms", 0);
	add_str(o, "end_time", NULL);
	add_arr(o, "attachments");
	return o;
}

static struct json_object *case_defaults(long long id)
{
	static const char *const ints[] = { "severity", "priority",   "layer",
					    "is_flaky", "automation", "status" };
	char title[64];
	struct json_object *o = json_object_new_object();
	snprintf(title, sizeof(title), "Case %lld", id);
	add_int(o, "id", id);
	add_int(o, "position", id);
	add_str(o, "title", title);
	add_str(o, "description", NULL);
	add_str(o, "preconditions", NULL);
	add_str(o, "postconditions", NULL);
	for (size_t i = 0; i < N(ints); i++)
		add_int(o, ints[i], 0);
	add_int(o, "type", 1);
	add_int(o, "behavior", 1);
	json_object_object_add(o, "isManual", json_object_new_boolean(1));
	json_object_object_add(o, "isToBeAutomated", json_object_new_boolean(0));
	add_str(o, "milestone_id", NULL);
	add_str(o, "suite_id", NULL);
	add_arr(o, "custom_fields");
	add_arr(o, "attachments");
	add_str(o, "steps_type", "classic");
	add_arr(o, "steps");
	add_arr(o, "params");
	add_arr(o, "parameters");
	add_arr(o, "tags");
	add_int(o, "member_id", 1);
	add_int(o, "author_id", 1);
	add_str(o, "created_at", "2026-01-05T09:00:00+00:00");
	add_str(o, "updated_at", "2026-01-05T09:00:00+00:00");
	add_str(o, "deleted", NULL);
	add_str(o, "created", "2026-01-05T09:00:00.000000Z");
	add_str(o, "updated", "2026-01-05T09:00:00.000000Z");
	return o;
}

static struct json_object *suite_defaults(long long id)
{
	char title[64];
	struct json_object *o = json_object_new_object();
	snprintf(title, sizeof(title), "Suite %lld", id);
	add_int(o, "id", id);
	add_str(o, "title", title);
	add_str(o, "description", NULL);
	add_str(o, "preconditions", NULL);
	add_int(o, "position", id);
	add_str(o, "parent_id", NULL);
	add_str(o, "created", "2026-01-05 09:00:00");
	add_str(o, "updated", NULL);
	add_str(o, "created_at", "2026-01-05T09:00:00+00:00");
	add_str(o, "updated_at", "2026-01-05T09:00:00+00:00");
	return o;
}

/* Given fields win over the defaults. */
static struct json_object *overlay(struct json_object *dst, struct json_object *src)
{
	json_object_object_foreach(src, key, val) json_object_object_add(dst, key, fake_copy(val));
	return dst;
}

/* ---- projects ---------------------------------------------------------- */

struct json_object *qase_project(struct qase_state *s, const char *code)
{
	return fake_get(s->projects, code);
}

static struct json_object *project_make(struct qase_state *s, const char *code)
{
	struct json_object *p = qase_project(s, code);
	if (p)
		return p;
	p = json_object_new_object();
	json_object_object_add(p, "runs", json_object_new_object());
	json_object_object_add(p, "results", json_object_new_array());
	json_object_object_add(p, "cases", json_object_new_object());
	json_object_object_add(p, "suites", json_object_new_object());
	json_object_object_add(s->projects, code, p);
	return p;
}

static void drop_results(struct json_object *p, long long run_id)
{
	struct json_object *old = fake_get(p, "results");
	struct json_object *kept = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(old); i++) {
		struct json_object *r = json_object_array_get_idx(old, i);
		if (int_field(r, "run_id", 0) != run_id)
			json_object_array_add(kept, json_object_get(r));
	}
	json_object_object_add(p, "results", kept);
}

static void put_by_id(struct json_object *map, struct json_object *o)
{
	char key[24];
	snprintf(key, sizeof(key), "%lld", int_field(o, "id", 0));
	json_object_object_add(map, key, o);
}

/* What a seed or a generator adds, complete and checked. */
struct batch {
	struct json_object *run;     /* or NULL */
	struct json_object *results; /* arrays of complete entities */
	struct json_object *cases;
	struct json_object *suites;
};

static void batch_init(struct batch *b)
{
	b->run = NULL;
	b->results = json_object_new_array();
	b->cases = json_object_new_array();
	b->suites = json_object_new_array();
}

static void batch_free(struct batch *b)
{
	json_object_put(b->run);
	json_object_put(b->results);
	json_object_put(b->cases);
	json_object_put(b->suites);
}

/* Moves the batch's entities into project code (the batch keeps nothing). */
static void batch_apply(struct qase_state *s, const char *code, struct batch *b)
{
	struct json_object *p = project_make(s, code);
	if (b->run) {
		drop_results(p, int_field(b->run, "id", 0));
		put_by_id(fake_get(p, "runs"), json_object_get(b->run));
	}
	struct json_object *results = fake_get(p, "results");
	for (size_t i = 0; i < json_object_array_length(b->results); i++)
		json_object_array_add(results,
				      json_object_get(json_object_array_get_idx(b->results, i)));
	for (size_t i = 0; i < json_object_array_length(b->cases); i++)
		put_by_id(fake_get(p, "cases"),
			  json_object_get(json_object_array_get_idx(b->cases, i)));
	for (size_t i = 0; i < json_object_array_length(b->suites); i++)
		put_by_id(fake_get(p, "suites"),
			  json_object_get(json_object_array_get_idx(b->suites, i)));
}

static int run_known(struct qase_state *s, const char *code, const struct batch *b, long long id)
{
	char key[24];
	if (b->run && int_field(b->run, "id", 0) == id)
		return 1;
	snprintf(key, sizeof(key), "%lld", id);
	return fake_has(fake_get(qase_project(s, code), "runs"), key);
}

/* ---- seed -------------------------------------------------------------- */

static int seed_list(struct json_object *sd, const char *key, const struct qfield *spec, size_t n,
		     struct json_object *out, const char **err,
		     struct json_object *(*dflt)(long long id))
{
	struct json_object *list = fake_get(sd, key);
	if (!list)
		return 0;
	if (!json_object_is_type(list, json_type_array))
		return fail(err, "seed: %s must be an array", key);
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		char what[48];
		struct json_object *e = json_object_array_get_idx(list, i);
		snprintf(what, sizeof(what), "seed: %s[%zu]", key, i);
		if (check(e, spec, n, what, err) < 0)
			return -1;
		json_object_array_add(out, overlay(dflt(int_field(e, "id", 0)), e));
	}
	return 0;
}

static int seed_results(struct qase_state *s, const char *code, struct json_object *list,
			struct batch *b, const char **err)
{
	struct json_object *p = qase_project(s, code);
	size_t base = p ? json_object_array_length(fake_get(p, "results")) : 0;
	if (!json_object_is_type(list, json_type_array))
		return fail(err, "seed: results must be an array");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		char what[48], hash[41];
		struct json_object *e = json_object_array_get_idx(list, i);
		snprintf(what, sizeof(what), "seed: results[%zu]", i);
		if (check(e, result_spec, N(result_spec), what, err) < 0)
			return -1;
		long long run_id = int_field(e, "run_id", b->run ? int_field(b->run, "id", 0) : 0);
		if (!run_id)
			return fail(err, "%s: run_id is required without a run", what);
		if (!run_known(s, code, b, run_id))
			return fail(err, "%s: run %lld is not seeded", what, run_id);
		long long case_id = int_field(e, "case_id", 0);
		make_hash(code, run_id, (long long)(base + i), hash);
		json_object_array_add(b->results, overlay(result_defaults(run_id, case_id, hash), e));
	}
	return 0;
}

static int seed(struct qase_state *s, struct json_object *sd, const char **err)
{
	static const char *const keys[] = { "project", "run", "results", "cases", "suites", NULL };
	if (!json_object_is_type(sd, json_type_object))
		return fail(err, "seed must be an object");
	json_object_object_foreach(sd, key, val)
	{
		(void)val;
		if (!fake_in(key, keys))
			return fail(err, "seed: unknown key %s", key);
	}
	const char *code = json_object_get_string(fake_get(sd, "project"));
	if (!json_object_is_type(fake_get(sd, "project"), json_type_string) || !code_ok(code))
		return fail(err, "seed: project must be a code of 2 to 10 letters or digits");
	struct batch b;
	batch_init(&b);
	int rc = -1;
	struct json_object *run = fake_get(sd, "run");
	if (run && check(run, run_spec, N(run_spec), "seed: run", err) < 0)
		goto done;
	if (run)
		b.run = overlay(run_defaults(int_field(run, "id", 0)), run);
	if (fake_has(sd, "results") && seed_results(s, code, fake_get(sd, "results"), &b, err) < 0)
		goto done;
	if (seed_list(sd, "cases", case_spec, N(case_spec), b.cases, err, case_defaults) < 0 ||
	    seed_list(sd, "suites", suite_spec, N(suite_spec), b.suites, err, suite_defaults) < 0)
		goto done;
	batch_apply(s, code, &b);
	rc = 0;
done:
	batch_free(&b);
	return rc;
}

/* ---- generate ---------------------------------------------------------- */

struct gen {
	const char *code;
	long long run_id, results, retested, suites, case_start;
	const char *custom;
	const char *title;
};

static const char *gen_status(const struct gen *g, long long k)
{
	static const char *const cycle[20] = {
		"passed", "passed",      "passed", "failed",  "passed", "passed", "skipped",
		"passed", "blocked",     "passed", "passed",  "failed", "passed", "invalid",
		"passed", "in_progress", "passed", "skipped", "passed", "failed",
	};
	if (g->custom && k % 50 == 49)
		return g->custom;
	return cycle[k % 20];
}

static void gen_suites(const struct gen *g, struct batch *b)
{
	static const char *const names[] = { "Authentication", "Checkout",     "Search",
					     "Profile",        "Payments",     "Admin",
					     "Public API",     "Notifications" };
	for (long long i = 1; i <= g->suites; i++) {
		char title[64];
		struct json_object *o = suite_defaults(i);
		if (i <= (long long)N(names))
			snprintf(title, sizeof(title), "%s", names[i - 1]);
		else
			snprintf(title, sizeof(title), "%s %lld", names[(i - 1) % N(names)], i);
		add_str(o, "title", title);
		if (i > 2)
			add_int(o, "parent_id", i / 2);
		json_object_array_add(b->suites, o);
	}
}

static void gen_case(const struct gen *g, long long k, struct batch *b)
{
	static const char *const acts[] = { "User can log in",
					    "Cart keeps its items",
					    "Search finds by title",
					    "Avatar upload resizes",
					    "Refund reaches the card",
					    "Role change applies at once",
					    "Token expires after an hour" };
	char title[96];
	long long id = g->case_start + k;
	struct json_object *o = case_defaults(id);
	snprintf(title, sizeof(title), "%s (case %lld)", acts[k % (long long)N(acts)], id);
	add_str(o, "title", title);
	if (g->suites && k % 23 != 22) /* a few cases live outside any suite */
		add_int(o, "suite_id", 1 + k % g->suites);
	json_object_array_add(b->cases, o);
}

static struct json_object *gen_steps(const char *status)
{
	struct json_object *steps = json_object_new_array();
	int last = strcmp(status, "failed") == 0 ? 2 : strcmp(status, "blocked") == 0 ? 3 : 1;
	for (int i = 0; i < 2; i++) {
		struct json_object *st = json_object_new_object();
		add_int(st, "status", i == 1 ? last : 1);
		add_int(st, "position", i + 1);
		add_str(st, "comment", i == 1 && last != 1 ? "step did not pass" : "");
		add_str(st, "start_time", NULL);
		add_str(st, "end_time", NULL);
		add_int(st, "duration_ms", 40 + 10 * i);
		add_arr(st, "attachments");
		struct json_object *nested = json_object_new_array();
		if (i == 1) {
			struct json_object *n = json_object_new_object();
			add_int(n, "status", last);
			add_str(n, "comment", "nested check");
			add_str(n, "duration_ms", NULL);
			add_arr(n, "attachments");
			add_arr(n, "steps");
			json_object_array_add(nested, n);
		}
		json_object_object_add(st, "steps", nested);
		json_object_array_add(steps, st);
	}
	return steps;
}

static void gen_failure(struct json_object *o, const char *status, long long id)
{
	char text[256];
	if (strcmp(status, "failed") == 0) {
		snprintf(text, sizeof(text), "Expected status 200, got 500 (case %lld)", id);
		add_str(o, "comment", text);
		snprintf(text, sizeof(text),
			 "AssertionError: expected 500 to equal 200\n"
			 "    at Context.<anonymous> (test/case_%lld.spec.js:42:11)\n"
			 "    at processImmediate (node:internal/timers:476:21)",
			 id);
		add_str(o, "stacktrace", text);
		struct json_object *att = json_object_new_object();
		add_int(att, "size", 48213);
		add_str(att, "mime", "image/png");
		add_str(att, "filename", "screenshot.png");
		snprintf(text, sizeof(text),
			 "https://qase-attachments.example/DEMO/%lld/screenshot.png", id);
		add_str(att, "url", text);
		json_object_array_add(fake_get(o, "attachments"), att);
	} else if (strcmp(status, "blocked") == 0) {
		snprintf(text, sizeof(text), "Blocked by the outage of the payment sandbox");
		add_str(o, "comment", text);
	} else if (strcmp(status, "invalid") == 0) {
		add_str(o, "comment", "Fixture file is missing");
		add_str(o, "stacktrace", "FileNotFoundError: fixtures/users.json");
	} else if (strcmp(status, "skipped") == 0) {
		add_str(o, "comment", "Skipped: feature flag off");
	}
}

static struct json_object *gen_result(const struct gen *g, long long k, long long seq,
				      const char *status, long long end)
{
	char hash[41], when[40];
	long long id = g->case_start + k;
	make_hash(g->code, g->run_id, seq, hash);
	struct json_object *o = result_defaults(g->run_id, id, hash);
	add_str(o, "status", status);
	if (strcmp(status, "in_progress") != 0) {
		iso(end, when, sizeof(when));
		add_str(o, "end_time", when);
		add_int(o, "time_spent_ms", 100 + (k * 137) % 4900);
	}
	if (k % 3 != 0 || strcmp(status, "failed") == 0)
		json_object_object_add(o, "steps", gen_steps(status));
	gen_failure(o, status, id);
	return o;
}

/* Marks which cases get an earlier, failed attempt: spread evenly, never
 * an in_progress case (its result has no end_time to order by). */
static char *gen_retests(const struct gen *g, long long ncases)
{
	char *mark = calloc((size_t)ncases + 1, 1);
	if (!mark)
		return NULL;
	for (long long j = 0; j < g->retested; j++) {
		long long k = j * ncases / g->retested;
		while (k < ncases && (mark[k] || strcmp(gen_status(g, k), "in_progress") == 0))
			k++;
		if (k == ncases)
			for (k = 0; mark[k] || strcmp(gen_status(g, k), "in_progress") == 0; k++)
				;
		mark[k] = 1;
	}
	return mark;
}

static int gen_build(const struct gen *g, struct batch *b, const char **err)
{
	long long ncases = g->results - g->retested;
	char *mark = gen_retests(g, ncases);
	if (!mark)
		return fail(err, "generate: out of memory");
	long long seq = 0, spent = 0;
	gen_suites(g, b);
	for (long long k = 0; k < ncases; k++) {
		gen_case(g, k, b);
		struct json_object *r = gen_result(g, k, seq++, gen_status(g, k),
						   GEN_BASE_TIME + 3600 + 7 * k);
		spent += int_field(r, "time_spent_ms", 0);
		json_object_array_add(b->results, r);
	}
	for (long long k = 0; k < ncases; k++) /* the earlier attempts come last */
		if (mark[k]) {
			struct json_object *r = gen_result(g, k, seq++, "failed",
							   GEN_BASE_TIME + 7 * k);
			spent += int_field(r, "time_spent_ms", 0);
			json_object_array_add(b->results, r);
		}
	free(mark);
	char when[40];
	b->run = run_defaults(g->run_id);
	if (g->title)
		add_str(b->run, "title", g->title);
	add_int(b->run, "status", 1);
	add_str(b->run, "status_text", "complete");
	iso(GEN_BASE_TIME + 3600 + 7 * ncases + 60, when, sizeof(when));
	add_str(b->run, "end_time", when);
	add_int(b->run, "time_spent", spent);
	add_int(b->run, "elapsed_time", (3600 + 7 * ncases + 60) * 1000);
	return 0;
}

static int generate(struct qase_state *s, struct json_object *gd, const char **err)
{
	static const struct qfield spec[] = {
		{ "project", JT_STR, 0, 1 },          { "run_id", JT_POSINT, 0, 1 },
		{ "results", JT_NNINT, 0, 1 },        { "retested", JT_NNINT, 0, 0 },
		{ "suites", JT_NNINT, 0, 0 },         { "custom_status", JT_NESTR, 1, 0 },
		{ "case_id_start", JT_POSINT, 0, 0 }, { "title", JT_NESTR, 0, 0 },
	};
	if (check(gd, spec, N(spec), "generate", err) < 0)
		return -1;
	struct gen g = {
		.code = json_object_get_string(fake_get(gd, "project")),
		.run_id = int_field(gd, "run_id", 0),
		.results = int_field(gd, "results", 0),
		.retested = int_field(gd, "retested", 0),
		.suites = int_field(gd, "suites", 5),
		.case_start = int_field(gd, "case_id_start", 1),
		.custom = "flaky",
		.title = json_object_get_string(fake_get(gd, "title")),
	};
	if (fake_has(gd, "custom_status"))
		g.custom = json_object_get_string(fake_get(gd, "custom_status"));
	if (!code_ok(g.code))
		return fail(err, "generate: project must be a code of 2 to 10 letters or digits");
	if (g.results > GEN_MAX_RESULTS || g.suites > GEN_MAX_SUITES)
		return fail(err, "generate: at most %d results and %d suites", GEN_MAX_RESULTS,
			    GEN_MAX_SUITES);
	if (g.retested * 2 > g.results)
		return fail(err, "generate: retested must be at most half of results");
	struct batch b;
	batch_init(&b);
	int rc = gen_build(&g, &b, err);
	if (rc == 0)
		batch_apply(s, g.code, &b);
	batch_free(&b);
	return rc;
}

/* ---- control ----------------------------------------------------------- */

static int delete_run(struct qase_state *s, struct json_object *d, const char **err)
{
	static const struct qfield spec[] = {
		{ "project", JT_STR, 0, 1 },
		{ "id", JT_POSINT, 0, 1 },
	};
	char key[24];
	if (check(d, spec, N(spec), "delete_run", err) < 0)
		return -1;
	struct json_object *p = qase_project(s, json_object_get_string(fake_get(d, "project")));
	long long id = int_field(d, "id", 0);
	snprintf(key, sizeof(key), "%lld", id);
	if (!p || !fake_has(fake_get(p, "runs"), key))
		return fail(err, "delete_run: no such run");
	json_object_object_del(fake_get(p, "runs"), key);
	drop_results(p, id);
	return 0;
}

int qase_control(struct fake *f, struct json_object *body, const char **err)
{
	struct qase_state *s = f->state;
	struct json_object *v;
	if ((v = fake_get(body, "wipe")) != NULL) {
		if (!json_object_is_type(v, json_type_boolean))
			return fail(err, "wipe must be true or false");
		if (json_object_get_boolean(v)) {
			json_object_put(s->projects);
			s->projects = json_object_new_object();
		}
	}
	if (fake_has(body, "seed") && seed(s, fake_get(body, "seed"), err) < 0)
		return -1;
	if (fake_has(body, "generate") && generate(s, fake_get(body, "generate"), err) < 0)
		return -1;
	if (fake_has(body, "delete_run") && delete_run(s, fake_get(body, "delete_run"), err) < 0)
		return -1;
	v = fake_get(body, "delay_seconds");
	if (fake_has(body, "delay_seconds") && !fake_jt_ok(v, JT_NNNUM))
		return fail(err, "delay_seconds must be a non-negative number");
	struct json_object *c = fake_get(body, "delay_count");
	if (fake_has(body, "delay_count") && !fake_jt_ok(c, JT_NNINT))
		return fail(err, "delay_count must be a non-negative integer");
	if (v) {
		s->delay_seconds = json_object_get_double(v);
		s->delay_count = c ? json_object_get_int(c) : 1;
	} else if (c) {
		s->delay_count = json_object_get_int(c);
	}
	return 0;
}
