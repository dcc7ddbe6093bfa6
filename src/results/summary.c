/*
 * summary: a run's "results" object from the store (summary.h).
 */
#include "results/summary.h"

#include <stdlib.h>

#include "store/results.h"
#include "targets/target_util.h"

static void add_count(void *ctx, const char *status, long long n)
{
	json_object *counts = ctx, *v;
	long long before = 0;

	if (json_object_object_get_ex(counts, status, &v))
		before = json_object_get_int64(v);
	json_object_object_add(counts, status, json_object_new_int64(before + n));
}

static json_object *text_or_null(const char *s)
{
	char *cut;
	json_object *o;

	if (!s)
		return NULL;
	if (!(cut = tu_cut(s, SUMMARY_TEXT_MAX)))
		return NULL;
	o = json_object_new_string(cut);
	free(cut);
	return o;
}

static json_object *num_or_null(long long v)
{
	return v < 0 ? NULL : json_object_new_int64(v);
}

static int add_item(void *ctx, const struct result_row *r)
{
	json_object *list = ctx, *it = json_object_new_object();

	if (!it)
		return -1;
	json_object_object_add(it, "case_id", json_object_new_int64(r->case_id));
	json_object_object_add(it, "title",
			       r->title && *r->title ? json_object_new_string(r->title) : NULL);
	json_object_object_add(it, "suite", r->suite ? json_object_new_string(r->suite) : NULL);
	json_object_object_add(it, "status", json_object_new_string(r->status));
	json_object_object_add(it, "duration_ms", num_or_null(r->duration_ms));
	json_object_object_add(it, "message", text_or_null(r->message));
	json_object_object_add(it, "stacktrace", text_or_null(r->stacktrace));
	json_object_object_add(it, "end_time",
			       r->end_time ? json_object_new_string(r->end_time) : NULL);
	json_object_object_add(it, "hash", r->hash ? json_object_new_string(r->hash) : NULL);
	json_object_array_add(list, it);
	return 0;
}

int results_summary(struct store *st, const char *project, long long run_id, const char *status,
		    int failed_max, json_object **out, struct err *err)
{
	static const char *const known[] = { "passed",  "failed",  "blocked",
					     "invalid", "skipped", "in_progress" };
	json_object *o = json_object_new_object(), *counts = json_object_new_object(),
		    *failed = json_object_new_array();
	long long total = 0;

	*out = NULL;
	if (!o || !counts || !failed) {
		json_object_put(o);
		json_object_put(counts);
		json_object_put(failed);
		return err_set(err, "out of memory");
	}
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "total", NULL);
	json_object_object_add(o, "counts", counts);
	json_object_object_add(o, "failed", failed);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		json_object_object_add(counts, known[i], json_object_new_int64(0));
	if (store_results_by_status(st, project, run_id, add_count, counts, err) < 0 ||
	    (failed_max > 0 &&
	     store_results_with_status(st, project, run_id, "failed,blocked,invalid",
				       (size_t)failed_max, add_item, failed, err) < 0)) {
		json_object_put(o);
		return -1;
	}
	json_object_object_foreach(counts, k, v)
	{
		(void)k;
		total += json_object_get_int64(v);
	}
	json_object_object_add(o, "total", json_object_new_int64(total));
	long long bad = 0;
	for (size_t i = 1; i <= 3; i++) /* failed, blocked, invalid */
		bad += json_object_get_int64(json_object_object_get(counts, known[i]));
	bad -= (long long)json_object_array_length(failed);
	json_object_object_add(o, "failed_more", json_object_new_int64(bad > 0 ? bad : 0));
	*out = o;
	return 0;
}
