/*
 * fake_qase: the read side of the Qase TestOps API v1 that runbridge pulls
 * a run's results from (the vendor's OpenAPI, qase-tms/specs testops-api/v1
 * at ea7334f; target-apis.md section 1.7).  Base URL http://127.0.0.1:P/v1.
 *
 *   GET /v1/run/{code}/{id}[?include=cases]        {"status":true,"result":Run}
 *   GET /v1/result/{code}?run=&status=&case_id=&from_end_time=&to_end_time=
 *                        &limit=&offset=          a page of Result
 *   GET /v1/result/{code}/{hash}                   one Result
 *   GET /v1/case/{code}?suite_id=&search=&limit=&offset=   a page of TestCase
 *   GET /v1/case/{code}/{id}                       one TestCase
 *   GET /v1/suite/{code}?search=&limit=&offset=    a page of Suite
 *   GET /v1/suite/{code}/{id}                      one Suite
 *
 * A page is {"status":true,"result":{"total","filtered","count","entities"}}:
 * total counts the project's entities of that kind, filtered those the
 * filters keep, count those on this page.  limit is 1..100 (default 10) and
 * offset 0..100000 (default 0), as the OpenAPI's Limit and Offset say;
 * anything else is 400 {"status":false,"errorMessage","errorFields":[{field,
 * error}]}.  Every request needs the header Token: <--token> (401 without it
 * or with another one).  An unknown project, run, result, case or suite is
 * 404; another method on these paths is 405.  Errors carry
 * {"status":false,"errorMessage":...}; the faults of the common layer (429,
 * 503, stall) answer in its own {message} shape.
 *
 * The data comes from /_control (seed, generate; fake_qase_data.c); what
 * Qase computes (a run's stats and cases, a suite's cases_count) is
 * computed here from it, at each request.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fake_qase.h"

#define LIMIT_DEFAULT 10
#define LIMIT_MAX     100
#define OFFSET_MAX    100000
#define IDS_MAX       256

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- replies ----------------------------------------------------------- */

static int qase_error(struct fake_req *r, int status, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int qase_error(struct fake_req *r, int status, const char *field, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_boolean(0));
	if (field) {
		struct json_object *fe = json_object_new_object();
		struct json_object *list = json_object_new_array();
		json_object_object_add(fe, "field", json_object_new_string(field));
		json_object_object_add(fe, "error", json_object_new_string(msg));
		json_object_array_add(list, fe);
		json_object_object_add(o, "errorMessage", json_object_new_string("Data is invalid."));
		json_object_object_add(o, "errorFields", list);
	} else {
		json_object_object_add(o, "errorMessage", json_object_new_string(msg));
	}
	return fake_reply(r, status, o);
}

static int ok_reply(struct fake_req *r, struct json_object *result)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_boolean(1));
	json_object_object_add(o, "result", result);
	return fake_reply(r, 200, o);
}

/* ---- query parameters -------------------------------------------------- */

/* A decimal in [min, max] from the query, dflt when absent; -1 after an
 * error reply. */
static int int_param(struct fake_req *r, const char *name, long dflt, long min, long max, long *out)
{
	char q[32], *end;
	int n = fake_query(r, name, q, sizeof(q));
	*out = dflt;
	if (n < 0)
		return 0;
	errno = 0;
	long v = strtol(q, &end, 10);
	if (n == 0 || *end || errno || q[0] == '+' || q[0] == ' ')
		return qase_error(r, 400, name, "The %s must be an integer.", name), -1;
	if (v < min)
		return qase_error(r, 400, name, "The %s must be at least %ld.", name, min), -1;
	if (v > max)
		return qase_error(r, 400, name, "The %s may not be greater than %ld.", name, max), -1;
	*out = v;
	return 0;
}

/* A comma-separated list of positive ids; count, 0 when absent, -1 after
 * an error reply. */
static int ids_param(struct fake_req *r, const char *name, long long *ids)
{
	char q[2048];
	int n = fake_query(r, name, q, sizeof(q)), count = 0;
	if (n < 0)
		return 0;
	for (char *p = q;;) {
		char *end;
		errno = 0;
		long long v = strtoll(p, &end, 10);
		if (end == p || errno || v <= 0 || (*end && *end != ',') || count == IDS_MAX ||
		    *p == '+' || *p == ' ')
			return qase_error(r, 400, name, "The %s must be a list of ids.", name), -1;
		ids[count++] = v;
		if (!*end)
			return count;
		p = end + 1;
	}
}

static int in_ids(long long v, const long long *ids, int n)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == v)
			return 1;
	return 0;
}

/* "Y-m-d H:i:s" as the OpenAPI allows it; -1 after an error reply. */
static int time_param(struct fake_req *r, const char *name, char out[20])
{
	static const char shape[] = "dddd-dd-dd dd:dd:dd";
	char q[32];
	int n = fake_query(r, name, q, sizeof(q));
	out[0] = '\0';
	if (n < 0)
		return 0;
	int ok = n == 19;
	for (int i = 0; ok && i < 19; i++)
		ok = shape[i] == 'd' ? (q[i] >= '0' && q[i] <= '9') : q[i] == shape[i];
	if (!ok)
		return qase_error(r, 400, name, "The %s does not match the format Y-m-d H:i:s.",
				  name),
		       -1;
	memcpy(out, q, 20);
	return 0;
}

static long long int_of(struct json_object *o, const char *key)
{
	struct json_object *v = fake_get(o, key);
	return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

/* ---- pages ------------------------------------------------------------- */

struct page {
	long limit, offset;
	long long total, filtered;
	struct json_object *entities;
};

static int page_init(struct fake_req *r, struct page *p)
{
	p->total = p->filtered = 0;
	p->entities = NULL;
	if (int_param(r, "limit", LIMIT_DEFAULT, 1, LIMIT_MAX, &p->limit) < 0 ||
	    int_param(r, "offset", 0, 0, OFFSET_MAX, &p->offset) < 0)
		return -1;
	p->entities = json_object_new_array();
	return 0;
}

/* Counts e as kept by the filters; a copy goes on the page if it falls there. */
static struct json_object *page_keep(struct page *p, struct json_object *e)
{
	struct json_object *copy = NULL;
	if (p->filtered >= p->offset && (long)json_object_array_length(p->entities) < p->limit) {
		copy = fake_copy(e);
		json_object_array_add(p->entities, copy);
	}
	p->filtered++;
	return copy;
}

static int page_reply(struct fake_req *r, struct page *p)
{
	struct json_object *res = json_object_new_object();
	json_object_object_add(res, "total", json_object_new_int64(p->total));
	json_object_object_add(res, "filtered", json_object_new_int64(p->filtered));
	json_object_object_add(res, "count",
			       json_object_new_int((int)json_object_array_length(p->entities)));
	json_object_object_add(res, "entities", p->entities);
	p->entities = NULL;
	return ok_reply(r, res);
}

/* ---- computed parts ---------------------------------------------------- */

static struct json_object *run_cases(struct json_object *project, struct json_object *run)
{
	struct json_object *given = fake_get(run, "cases");
	if (given)
		return fake_copy(given);
	long long id = int_of(run, "id");
	struct json_object *seen = json_object_new_object();
	struct json_object *out = json_object_new_array();
	struct json_object *results = fake_get(project, "results");
	for (size_t i = 0; i < json_object_array_length(results); i++) {
		struct json_object *r = json_object_array_get_idx(results, i);
		char key[24];
		if (int_of(r, "run_id") != id)
			continue;
		snprintf(key, sizeof(key), "%lld", int_of(r, "case_id"));
		if (fake_has(seen, key))
			continue;
		json_object_object_add(seen, key, NULL);
		json_object_array_add(out, json_object_new_int64(int_of(r, "case_id")));
	}
	json_object_put(seen);
	return out;
}

/* 1 if b ended at or after a (no end_time sorts first; ISO 8601 strings
 * with the same offset sort as text). */
static int not_earlier(struct json_object *a, struct json_object *b)
{
	struct json_object *ea = fake_get(a, "end_time"), *eb = fake_get(b, "end_time");
	if (!json_object_is_type(ea, json_type_string))
		return 1;
	if (!json_object_is_type(eb, json_type_string))
		return 0;
	return strcmp(json_object_get_string(eb), json_object_get_string(ea)) >= 0;
}

static void add_int(struct json_object *o, const char *key, long long val)
{
	json_object_object_add(o, key, json_object_new_int64(val));
}

static void bump(struct json_object *o, const char *key)
{
	add_int(o, key, int_of(o, key) + 1);
}

static struct json_object *run_stats(struct json_object *project, struct json_object *run)
{
	static const char *const legacy[] = { "untested", "passed", "failed",      "blocked",
					      "skipped",  "retest", "in_progress", "invalid" };
	static const char *const counted[] = { "untested", "passed",      "failed",  "blocked",
					       "skipped",  "in_progress", "invalid", NULL };
	long long id = int_of(run, "id");
	struct json_object *latest = json_object_new_object();
	struct json_object *results = fake_get(project, "results");
	for (size_t i = 0; i < json_object_array_length(results); i++) {
		struct json_object *r = json_object_array_get_idx(results, i);
		char key[24];
		if (int_of(r, "run_id") != id)
			continue;
		snprintf(key, sizeof(key), "%lld", int_of(r, "case_id"));
		struct json_object *cur = fake_get(latest, key);
		if (!cur || not_earlier(cur, r))
			json_object_object_add(latest, key, json_object_get(r));
	}
	struct json_object *cases = run_cases(project, run);
	struct json_object *stats = json_object_new_object();
	struct json_object *statuses = json_object_new_object();
	add_int(stats, "total", (long long)json_object_array_length(cases));
	for (size_t i = 0; i < N(legacy); i++)
		add_int(stats, legacy[i], 0);
	for (size_t i = 0; i < json_object_array_length(cases); i++) {
		char key[24];
		snprintf(key, sizeof(key), "%lld",
			 (long long)json_object_get_int64(json_object_array_get_idx(cases, i)));
		struct json_object *r = fake_get(latest, key);
		const char *st = r ? json_object_get_string(fake_get(r, "status")) : "untested";
		if (r)
			bump(statuses, st);
		if (fake_in(st, counted))
			bump(stats, st);
	}
	json_object_object_add(stats, "statuses", statuses);
	json_object_put(cases);
	json_object_put(latest);
	return stats;
}

static int suite_cases(struct json_object *project, long long suite_id)
{
	int n = 0;
	json_object_object_foreach(fake_get(project, "cases"), key, c)
	{
		(void)key;
		if (int_of(c, "suite_id") == suite_id)
			n++;
	}
	return n;
}

static struct json_object *summary(struct qase_state *s)
{
	struct json_object *o = json_object_new_object();
	struct json_object *projects = json_object_new_object();
	json_object_object_foreach(s->projects, code, p)
	{
		struct json_object *sp = json_object_new_object();
		struct json_object *runs = json_object_new_object();
		struct json_object *results = fake_get(p, "results");
		json_object_object_foreach(fake_get(p, "runs"), id, run)
		{
			struct json_object *sr = json_object_new_object();
			long long n = 0;
			for (size_t i = 0; i < json_object_array_length(results); i++)
				n += int_of(json_object_array_get_idx(results, i), "run_id") ==
				     int_of(run, "id");
			add_int(sr, "results", n);
			json_object_object_add(sr, "stats", run_stats(p, run));
			json_object_object_add(runs, id, sr);
		}
		json_object_object_add(sp, "runs", runs);
		add_int(sp, "results", (long long)json_object_array_length(results));
		add_int(sp, "cases", json_object_object_length(fake_get(p, "cases")));
		add_int(sp, "suites", json_object_object_length(fake_get(p, "suites")));
		json_object_object_add(projects, code, sp);
	}
	json_object_object_add(o, "projects", projects);
	json_object_object_add(o, "delay_seconds", json_object_new_double(s->delay_seconds));
	add_int(o, "delay_count", s->delay_count);
	return o;
}

/* ---- runs -------------------------------------------------------------- */

static int get_run(struct fake_req *r, struct json_object *project, const char *id)
{
	static const char *const includes[] = { "cases", "defects", "external_issue", NULL };
	char inc[256];
	int with_cases = 0;
	if (fake_query(r, "include", inc, sizeof(inc)) > 0) {
		for (char *t = inc, *comma; t; t = comma ? comma + 1 : NULL) {
			comma = strchr(t, ',');
			if (comma)
				*comma = '\0';
			if (!fake_in(t, includes))
				return qase_error(r, 400, "include",
						  "The selected include is invalid.");
			with_cases |= strcmp(t, "cases") == 0;
		}
	}
	struct json_object *run = fake_get(fake_get(project, "runs"), id);
	if (!run)
		return qase_error(r, 404, NULL, "Run not found");
	struct json_object *o = fake_copy(run);
	json_object_object_del(o, "cases");
	json_object_object_add(o, "stats", run_stats(project, run));
	if (with_cases)
		json_object_object_add(o, "cases", run_cases(project, run));
	return ok_reply(r, o);
}

/* ---- results ----------------------------------------------------------- */

struct result_filter {
	long long runs[IDS_MAX], cases[IDS_MAX];
	int nruns, ncases;
	char status[64];
	int has_status;
	char from[20], to[20];
};

static int result_filter_init(struct fake_req *r, struct result_filter *rf)
{
	rf->has_status = fake_query(r, "status", rf->status, sizeof(rf->status)) >= 0;
	if ((rf->nruns = ids_param(r, "run", rf->runs)) < 0 ||
	    (rf->ncases = ids_param(r, "case_id", rf->cases)) < 0 ||
	    time_param(r, "from_end_time", rf->from) < 0 || time_param(r, "to_end_time", rf->to) < 0)
		return -1;
	return 0;
}

static int result_kept(const struct result_filter *rf, struct json_object *res)
{
	if (rf->nruns && !in_ids(int_of(res, "run_id"), rf->runs, rf->nruns))
		return 0;
	if (rf->ncases && !in_ids(int_of(res, "case_id"), rf->cases, rf->ncases))
		return 0;
	if (rf->has_status && strcmp(json_object_get_string(fake_get(res, "status")), rf->status) != 0)
		return 0;
	if (!rf->from[0] && !rf->to[0])
		return 1;
	struct json_object *et = fake_get(res, "end_time");
	if (!json_object_is_type(et, json_type_string) || json_object_get_string_len(et) < 19)
		return 0;
	char when[20]; /* 2026-11-20T10:00:00+00:00 -> 2026-11-20 10:00:00 */
	memcpy(when, json_object_get_string(et), 19);
	when[10] = ' ';
	when[19] = '\0';
	return (!rf->from[0] || strcmp(when, rf->from) >= 0) &&
	       (!rf->to[0] || strcmp(when, rf->to) <= 0);
}

static int list_results(struct fake_req *r, struct json_object *project)
{
	struct page p;
	struct result_filter *rf = calloc(1, sizeof(*rf));
	if (!rf)
		return qase_error(r, 500, NULL, "out of memory");
	if (page_init(r, &p) == 0 && result_filter_init(r, rf) == 0) {
		struct json_object *results = fake_get(project, "results");
		p.total = (long long)json_object_array_length(results);
		for (size_t i = 0; i < json_object_array_length(results); i++) {
			struct json_object *res = json_object_array_get_idx(results, i);
			if (result_kept(rf, res))
				page_keep(&p, res);
		}
		page_reply(r, &p);
	}
	json_object_put(p.entities);
	free(rf);
	return 0;
}

static int get_result(struct fake_req *r, struct json_object *project, const char *hash)
{
	struct json_object *results = fake_get(project, "results");
	for (size_t i = 0; i < json_object_array_length(results); i++) {
		struct json_object *res = json_object_array_get_idx(results, i);
		if (strcmp(json_object_get_string(fake_get(res, "hash")), hash) == 0)
			return ok_reply(r, fake_copy(res));
	}
	return qase_error(r, 404, NULL, "Test run result not found");
}

/* ---- cases and suites -------------------------------------------------- */

static int title_matches(struct json_object *e, const char *search)
{
	const char *t = json_object_get_string(fake_get(e, "title"));
	size_t n = strlen(search);
	for (; t && *t; t++)
		if (strncasecmp(t, search, n) == 0)
			return 1;
	return n == 0;
}

static int list_cases(struct fake_req *r, struct json_object *project)
{
	struct page p;
	long suite = 0;
	char search[256];
	int has_search = fake_query(r, "search", search, sizeof(search)) >= 0;
	if (page_init(r, &p) < 0 || int_param(r, "suite_id", 0, 1, 1L << 30, &suite) < 0) {
		json_object_put(p.entities);
		return 0;
	}
	struct json_object *cases = fake_get(project, "cases");
	p.total = json_object_object_length(cases);
	json_object_object_foreach(cases, key, c)
	{
		(void)key;
		if ((suite && int_of(c, "suite_id") != suite) ||
		    (has_search && !title_matches(c, search)))
			continue;
		page_keep(&p, c);
	}
	return page_reply(r, &p);
}

static void add_cases_count(struct json_object *project, struct json_object *suite)
{
	if (suite)
		json_object_object_add(suite, "cases_count",
				       json_object_new_int(suite_cases(project, int_of(suite, "id"))));
}

static int list_suites(struct fake_req *r, struct json_object *project)
{
	struct page p;
	char search[256];
	int has_search = fake_query(r, "search", search, sizeof(search)) >= 0;
	if (page_init(r, &p) < 0)
		return 0;
	struct json_object *suites = fake_get(project, "suites");
	p.total = json_object_object_length(suites);
	json_object_object_foreach(suites, key, su)
	{
		(void)key;
		if (!has_search || title_matches(su, search))
			add_cases_count(project, page_keep(&p, su));
	}
	return page_reply(r, &p);
}

static int get_one(struct fake_req *r, struct json_object *project, const char *kind, const char *id)
{
	struct json_object *e = fake_get(fake_get(project, kind), id);
	if (!e)
		return qase_error(r, 404, NULL, "%s not found",
				  strcmp(kind, "cases") == 0 ? "Test case" : "Suite");
	struct json_object *o = fake_copy(e);
	if (strcmp(kind, "suites") == 0)
		add_cases_count(project, o);
	return ok_reply(r, o);
}

/* ---- routing ----------------------------------------------------------- */

/* Waits out a delay queued by /_control; the lock is released meanwhile,
 * so other requests (and /_control) go on. */
static void delay(struct fake *f, double secs)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)secs;
	until.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!f->stopping)
		if (pthread_cond_timedwait(&f->wake, &f->lock, &until) == ETIMEDOUT)
			break;
}

static int positive_id(const char *s)
{
	if (!*s || strlen(s) > 18 || *s == '0')
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

static int dispatch(struct fake_req *r, struct json_object *project, char **seg, int n)
{
	const char *what = seg[1];
	if (strcmp(what, "result") == 0)
		return n == 3 ? list_results(r, project) : get_result(r, project, seg[3]);
	if (n == 4 && !positive_id(seg[3]))
		return qase_error(r, 404, NULL, "Not found");
	if (strcmp(what, "run") == 0)
		return n == 4 ? get_run(r, project, seg[3])
			      : qase_error(r, 404, NULL, "GET /run/{code} is not faked");
	if (strcmp(what, "case") == 0)
		return n == 3 ? list_cases(r, project) : get_one(r, project, "cases", seg[3]);
	return n == 3 ? list_suites(r, project) : get_one(r, project, "suites", seg[3]);
}

static int handle(struct fake *f, struct fake_req *r)
{
	static const char *const kinds[] = { "run", "result", "case", "suite", NULL };
	struct qase_state *s = f->state;
	char buf[1024];
	char *seg[5];
	if (s->delay_count > 0) {
		s->delay_count--;
		delay(f, s->delay_seconds);
	}
	int n = fake_split(r->path, buf, sizeof(buf), seg, 5);
	if (n < 3 || n > 4 || strcmp(seg[0], "v1") != 0 || !fake_in(seg[1], kinds))
		return qase_error(r, 404, NULL, "Not found");
	const char *token = fake_hdr(r, "token");
	if (!token || strcmp(token, f->opt.token) != 0)
		return qase_error(r, 401, NULL, "Unauthenticated.");
	if (strcmp(r->method, "GET") != 0)
		return qase_error(r, 405, NULL, "The fake serves only GET on %s", r->path);
	struct json_object *project = qase_project(s, seg[2]);
	if (!project)
		return qase_error(r, 404, NULL, "Project not found");
	return dispatch(r, project, seg, n);
}

static int init(struct fake *f)
{
	if (!f->opt.token) {
		fprintf(stderr, "fake_targets: qase needs --token\n");
		return -1;
	}
	struct qase_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->projects = json_object_new_object();
	f->state = s;
	return 0;
}

static struct json_object *state(struct fake *f)
{
	return summary(f->state);
}

static void destroy(struct fake *f)
{
	struct qase_state *s = f->state;
	json_object_put(s->projects);
	free(s);
	f->state = NULL;
}

const struct fake_kind fake_qase = {
	.name = "qase",
	.init = init,
	.handle = handle,
	.state = state,
	.control = qase_control,
	.settings = qase_settings,
	.destroy = destroy,
};
