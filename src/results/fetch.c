/*
 * fetch: one run's results from the Qase API into the store (fetch.h).
 * Each answer is written, with the progress it makes, in one commit
 * before the next request, so nothing is fetched twice and memory holds
 * one page at a time.
 */
#include "results/fetch.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "store/results.h"
#include "targets/target_util.h"

#define PAGE 100 /* the API's largest limit */

/* ---- reading Qase's entities ---------------------------------------------- */

static const char *str_of(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static long long int_of(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long long days_from_civil(long long y, int m, int d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* n decimal digits at *s into *out, moving *s past them; -1 if not. */
static int digits(const char **s, int n, int *out)
{
	*out = 0;
	for (int i = 0; i < n; i++, (*s)++) {
		if (!isdigit((unsigned char)**s))
			return -1;
		*out = *out * 10 + (**s - '0');
	}
	return 0;
}

/* *s is c: moves past it. */
static int expect(const char **s, const char *set)
{
	if (!**s || !strchr(set, **s))
		return -1;
	(*s)++;
	return 0;
}

long long fetch_parse_time(const char *s)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0;
	long long ms = 0, off = 0;

	if (!s || digits(&s, 4, &y) < 0 || expect(&s, "-") < 0 || digits(&s, 2, &mo) < 0 ||
	    expect(&s, "-") < 0 || digits(&s, 2, &d) < 0 || expect(&s, "T ") < 0 ||
	    digits(&s, 2, &h) < 0 || expect(&s, ":") < 0 || digits(&s, 2, &mi) < 0 ||
	    expect(&s, ":") < 0 || digits(&s, 2, &sec) < 0 || mo < 1 || mo > 12 || d < 1 ||
	    d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	if (*s == '.') {
		int n = 0;
		for (s++; isdigit((unsigned char)*s); s++)
			if (n++ < 3)
				ms = ms * 10 + (*s - '0');
		for (; n < 3; n++)
			ms *= 10;
	}
	if (*s == '+' || *s == '-') {
		int sign = *s++ == '-' ? -1 : 1;
		if (digits(&s, 2, &oh) < 0)
			return -1;
		if (*s == ':')
			s++;
		if (digits(&s, 2, &om) < 0)
			return -1;
		off = sign * (oh * 60LL + om) * 60;
	} else if (*s == 'Z') {
		s++;
	}
	if (*s)
		return -1;
	return (days_from_civil(y, mo, d) * 86400 + h * 3600LL + mi * 60LL + sec - off) * 1000 + ms;
}

/* Qase's numeric result statuses (older answers), as their names. */
static const char *status_name(json_object *e)
{
	static const char *const names[] = { [1] = "passed",  [2] = "failed",  [3] = "blocked",
					     [4] = "invalid", [5] = "skipped", [7] = "in_progress" };
	json_object *v;
	if (!json_object_object_get_ex(e, "status", &v))
		return NULL;
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	if (json_object_is_type(v, json_type_int)) {
		long long n = json_object_get_int64(v);
		if (n > 0 && n < (long long)(sizeof(names) / sizeof(names[0])) && names[n])
			return names[n];
	}
	return NULL;
}

/* custom_fields [{"id": 3, "value": "BD-7"}] as {"3": "BD-7"} (NULL: none). */
static char *fields_of(json_object *c)
{
	json_object *arr, *obj;
	char *out;

	if (!json_object_object_get_ex(c, "custom_fields", &arr) ||
	    !json_object_is_type(arr, json_type_array) || !json_object_array_length(arr))
		return NULL;
	if (!(obj = json_object_new_object()))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *f = json_object_array_get_idx(arr, i), *v;
		long long id = int_of(f, "id");
		char key[24];
		if (id < 0 || !json_object_object_get_ex(f, "value", &v))
			continue;
		snprintf(key, sizeof(key), "%lld", id);
		json_object_object_add(obj, key, json_object_get(v));
	}
	out = strdup(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN));
	json_object_put(obj);
	return out;
}

/* ---- writing, in the writer's transaction --------------------------------- */

enum page_kind { PAGE_RESULTS, PAGE_CASES, PAGE_SUITES, PAGE_NONE };

struct page_write {
	const char *project;
	long long run_id;
	enum page_kind kind;
	json_object *entities;  /* an array, or a single case (PAGE_CASES) */
	long long missing_case; /* PAGE_CASES without entities: a deleted case */
	int set_paths;
	struct fetch_rec next;
};

static int put_result(struct store *st, const struct page_write *w, json_object *e, struct err *err)
{
	struct result_row r = {
		.case_id = int_of(e, "case_id"),
		.status = status_name(e),
		.message = str_of(e, "comment"),
		.stacktrace = str_of(e, "stacktrace"),
		.end_time = str_of(e, "end_time"),
		.hash = str_of(e, "hash"),
		.duration_ms = int_of(e, "time_spent_ms"),
	};
	if (r.case_id <= 0 || !r.status)
		return 0; /* not a case's result: nothing to mirror */
	r.end_ms = fetch_parse_time(r.end_time);
	return store_result_put(st, w->project, w->run_id, &r, err);
}

static int put_case(struct store *st, const struct page_write *w, json_object *c, struct err *err)
{
	long long id = int_of(c, "id");
	int has = id > 0 ? store_run_has_case(st, w->project, w->run_id, id, err) : 0;
	char *fields;

	if (has <= 0)
		return has; /* a case of the project this run has no result of */
	fields = fields_of(c);
	int rc = store_case_put(st, w->project, id, str_of(c, "title"), int_of(c, "suite_id"),
				fields, err);
	free(fields);
	return rc;
}

static int write_page(struct ingest_tx *tx, void *ctx, struct err *err)
{
	const struct page_write *w = ctx;
	struct store *st = ingest_tx_store(tx);
	json_object *list = w->entities;
	size_t n = list && json_object_is_type(list, json_type_array)
			   ? json_object_array_length(list)
			   : 0;

	if (w->kind == PAGE_CASES && list && !json_object_is_type(list, json_type_array) &&
	    put_case(st, w, list, err) < 0)
		return -1;
	/* a case the API no longer has keeps an empty title: it is not
	 * looked up again */
	if (w->missing_case > 0 &&
	    store_case_put(st, w->project, w->missing_case, "", -1, NULL, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(list, i);
		int rc = 0;
		switch (w->kind) {
		case PAGE_RESULTS: rc = put_result(st, w, e, err); break;
		case PAGE_CASES: rc = put_case(st, w, e, err); break;
		case PAGE_SUITES:
			rc = store_suite_put(st, w->project, int_of(e, "id"), str_of(e, "title"),
					     int_of(e, "parent_id"), err);
			break;
		case PAGE_NONE: break;
		}
		if (rc < 0)
			return -1;
	}
	if (w->set_paths && store_cases_set_paths(st, w->project, w->run_id, err) < 0)
		return -1;
	return store_fetch_put(st, w->project, w->run_id, &w->next, clock_wall_ms(), err);
}

/* ---- the phases ------------------------------------------------------------ */

struct fetch {
	const struct fetch_io *io;
	const char *project;
	char code[200]; /* the project code, percent-encoded */
	long long run_id, deadline_ms;
	struct fetch_rec rec;
	struct fetch_outcome *out;
};

/* GET path; 0 with *result (caller puts), or -1 with out filled. */
static int get(struct fetch *f, const char *path, json_object **result, long *status)
{
	struct qase_answer a;

	qase_get(f->io->api, f->io->src, path, f->deadline_ms, &a);
	f->out->requests += a.status != 0;
	*status = a.status;
	*result = a.result;
	if (a.verdict == QASE_OK)
		return 0;
	f->out->verdict = a.verdict;
	f->out->retry_after_ms = a.retry_after_ms;
	snprintf(f->out->detail, sizeof(f->out->detail), "%s", a.detail);
	return -1;
}

static int commit(struct fetch *f, struct page_write *w)
{
	struct err err;

	w->project = f->project;
	w->run_id = f->run_id;
	w->next = f->rec;
	if (f->io->write(f->io->write_ctx, write_page, w, &err) == 0)
		return 0;
	f->out->verdict = QASE_RETRY;
	snprintf(f->out->detail, sizeof(f->out->detail), "results not stored: %s", err.msg);
	return -1;
}

static void next_phase(struct fetch *f, const char *phase)
{
	snprintf(f->rec.phase, sizeof(f->rec.phase), "%s", phase);
	f->rec.offset = 0;
	f->rec.total = -1;
}

/* A listing's page: its entities and how many the listing holds. */
static json_object *page_of(json_object *result, long long *total)
{
	json_object *list;
	long long filtered = int_of(result, "filtered");

	*total = filtered >= 0 ? filtered : int_of(result, "total");
	if (!json_object_object_get_ex(result, "entities", &list) ||
	    !json_object_is_type(list, json_type_array))
		return NULL;
	return list;
}

static int phase_run(struct fetch *f)
{
	char path[400];
	json_object *run;
	long status;
	struct page_write w = { .kind = PAGE_NONE };

	snprintf(path, sizeof(path), "/run/%s/%lld?include=cases", f->code, f->run_id);
	if (get(f, path, &run, &status) < 0)
		return -1;
	json_object_put(run);
	next_phase(f, "results");
	return commit(f, &w);
}

/* One page of a listing (results, cases or suites); *more when the listing
 * goes on. */
static int list_page(struct fetch *f, const char *what, const char *query, enum page_kind kind,
		     int *more)
{
	char path[400];
	json_object *result, *list;
	long status;
	long long total;

	snprintf(path, sizeof(path), "/%s/%s?%s%slimit=%d&offset=%lld", what, f->code,
		 query ? query : "", query ? "&" : "", PAGE, f->rec.offset);
	if (get(f, path, &result, &status) < 0)
		return -1;
	if (!(list = page_of(result, &total))) {
		json_object_put(result);
		f->out->verdict = QASE_RETRY;
		snprintf(f->out->detail, sizeof(f->out->detail),
			 "GET %.300s: the answer has no entities list", path);
		return -1;
	}
	size_t n = json_object_array_length(list);
	f->rec.offset += (long long)n;
	f->rec.total = total;
	*more = n == PAGE && (total < 0 || f->rec.offset < total);
	struct page_write w = { .kind = kind, .entities = list };
	int rc = commit(f, &w);
	json_object_put(result);
	return rc;
}

static int phase_results(struct fetch *f)
{
	char query[64];
	int more = 1;

	snprintf(query, sizeof(query), "run=%lld", f->run_id);
	while (more)
		if (list_page(f, "result", query, PAGE_RESULTS, &more) < 0)
			return -1;
	next_phase(f, "cases");
	struct page_write w = { .kind = PAGE_NONE };
	return commit(f, &w);
}

static int count_one(void *ctx, long long case_id)
{
	(void)case_id;
	++*(long long *)ctx;
	return 0;
}

/* How many of the run's cases have no title yet, counting up to limit. */
static long long missing(struct fetch *f, long long limit, struct err *err)
{
	long long n = 0;

	if (store_results_missing_cases(f->io->st, f->project, f->run_id, 0, (size_t)limit,
					count_one, &n, err) < 0)
		return -1;
	return n;
}

/* Pages while a page is cheaper than the lookups it replaces. */
static int phase_cases(struct fetch *f)
{
	struct err err;
	int more = 1;

	for (;;) {
		long long left, pages_left;
		if ((left = missing(f, 1000000, &err)) < 0)
			goto store_failed;
		pages_left = f->rec.total < 0 ? 1 : (f->rec.total - f->rec.offset + PAGE - 1) / PAGE;
		if (left == 0 || !more || (f->rec.total >= 0 && left <= pages_left))
			break;
		if (list_page(f, "case", NULL, PAGE_CASES, &more) < 0)
			return -1;
	}
	next_phase(f, "case");
	struct page_write w = { .kind = PAGE_NONE };
	return commit(f, &w);
store_failed:
	f->out->verdict = QASE_RETRY;
	snprintf(f->out->detail, sizeof(f->out->detail), "%s", err.msg);
	return -1;
}

static int first_id(void *ctx, long long case_id)
{
	*(long long *)ctx = case_id;
	return -1;
}

/* The cases still without a title, one request each. */
static int phase_case(struct fetch *f)
{
	struct err err;

	for (;;) {
		long long id = 0;
		char path[400];
		json_object *c;
		long status;
		if (store_results_missing_cases(f->io->st, f->project, f->run_id, f->rec.offset, 1,
						first_id, &id, &err) < 0) {
			f->out->verdict = QASE_RETRY;
			snprintf(f->out->detail, sizeof(f->out->detail), "%s", err.msg);
			return -1;
		}
		if (id == 0)
			break;
		snprintf(path, sizeof(path), "/case/%s/%lld", f->code, id);
		struct page_write w = { .kind = PAGE_CASES };
		if (get(f, path, &c, &status) < 0) {
			if (status != 404)
				return -1;
			w.missing_case = id; /* deleted since the run */
		}
		w.entities = c;
		f->rec.offset = id;
		int rc = commit(f, &w);
		json_object_put(c);
		if (rc < 0)
			return -1;
	}
	next_phase(f, "suites");
	struct page_write w = { .kind = PAGE_NONE };
	return commit(f, &w);
}

static int phase_suites(struct fetch *f)
{
	int more = 1;

	while (more)
		if (list_page(f, "suite", NULL, PAGE_SUITES, &more) < 0)
			return -1;
	next_phase(f, "done");
	struct page_write w = { .kind = PAGE_NONE, .set_paths = 1 };
	return commit(f, &w);
}

int fetch_run(const struct fetch_io *io, const char *project, long long run_id,
	      const char *delivery_id, long long deadline_ms, struct fetch_outcome *out)
{
	struct fetch f = {
		.io = io, .project = project, .run_id = run_id, .deadline_ms = deadline_ms, .out = out
	};
	struct err err;
	int found;

	*out = (struct fetch_outcome){ .verdict = QASE_RETRY, .retry_after_ms = -1 };
	if (tu_pct_encode(project ? project : "", f.code, sizeof(f.code)) < 0) {
		out->verdict = QASE_PERMANENT;
		snprintf(out->detail, sizeof(out->detail), "the project code is too long");
		return -1;
	}
	if (store_fetch_get(io->st, project, run_id, &f.rec, &found, &err) < 0) {
		snprintf(out->detail, sizeof(out->detail), "%s", err.msg);
		return -1;
	}
	if (!found || strcmp(f.rec.delivery_id, delivery_id) != 0) {
		snprintf(f.rec.delivery_id, sizeof(f.rec.delivery_id), "%s", delivery_id);
		next_phase(&f, "run");
	}
	static const struct {
		const char *name;
		int (*run)(struct fetch *f);
	} phases[] = { { "run", phase_run },
		       { "results", phase_results },
		       { "cases", phase_cases },
		       { "case", phase_case },
		       { "suites", phase_suites } };
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]); i++)
		if (strcmp(f.rec.phase, phases[i].name) == 0 && phases[i].run(&f) < 0)
			return -1;
	if (strcmp(f.rec.phase, "done") != 0) {
		out->verdict = QASE_PERMANENT;
		snprintf(out->detail, sizeof(out->detail), "unknown fetch phase '%s' in the store",
			 f.rec.phase);
		return -1;
	}
	out->complete = 1;
	out->verdict = QASE_OK;
	snprintf(out->detail, sizeof(out->detail), "results fetched (%d requests)", out->requests);
	return 0;
}
