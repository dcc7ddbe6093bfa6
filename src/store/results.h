/*
 * results: the per-case results of Qase runs, as the results stage
 * (results/fetch.c) pulls them from the Qase REST API, in the same store.
 *
 *   results  one row per (project, run id, case id): the case's latest
 *            result in the run (by end_time; a retest replaces the result
 *            it follows, an older one never replaces a newer)
 *   cases    per (project, case id): title, suite id, suite path ("A / B"),
 *            custom fields as a JSON object {"<field id>": "value"}
 *   suites   per (project, suite id): title, parent id
 *   fetches  per (project, run id): how far the fetch of the run got (the
 *            phase and next offset), so a retry or a restart resumes
 *   routed   per delivery: it was routed with its results (status), so a
 *            retried or replayed results job never routes an event twice
 *            with the same results
 *
 * Writes run inside the writer's transaction (ingest_call); reads use any
 * connection.  Every function returns 0, or -1 with err set.
 */
#ifndef RB_STORE_RESULTS_H
#define RB_STORE_RESULTS_H

#include <stddef.h>

#include "core/err.h"
#include "store/store.h"

/* One case's result in a run, with its case's title and suite (NULL when
 * not known).  Strings are borrowed for the callback. */
struct result_row {
	long long case_id;
	const char *status;      /* passed, failed, blocked, skipped, invalid,
				    in_progress, or a custom status slug */
	const char *title;       /* the case title */
	const char *suite;       /* the suite path, " / " joined, or NULL */
	const char *message;     /* Qase's comment */
	const char *stacktrace;  /* may be NULL */
	const char *end_time;    /* as Qase wrote it, may be NULL */
	const char *hash;        /* the result's hash */
	long long duration_ms;   /* -1 unknown */
	long long end_ms;        /* end_time as Unix ms, -1 unknown */
	const char *case_fields; /* JSON object of the case's custom fields, or NULL */
};

typedef int (*result_fn)(void *ctx, const struct result_row *r);

/* Keeps r unless a later result of its case is stored (end_ms larger; an
 * unknown end_time is older than any known one). */
int store_result_put(struct store *st, const char *project, long long run_id,
		     const struct result_row *r, struct err *err);

/* Calls fn for each stored result of the run with case_id > after_case, in
 * case id order, at most limit (0: all); *n_out counts them.  fn returning
 * -1 stops early (not an error). */
int store_results_each(struct store *st, const char *project, long long run_id, long long after_case,
		       size_t limit, result_fn fn, void *ctx, size_t *n_out, struct err *err);

/* How many results the run has stored. */
int store_results_count(struct store *st, const char *project, long long run_id, long long *out,
			struct err *err);

/* The run's counts by status: fn once per status with its number. */
int store_results_by_status(struct store *st, const char *project, long long run_id,
			    void (*fn)(void *ctx, const char *status, long long n), void *ctx,
			    struct err *err);

/* Results with one of the statuses (comma-joined), in case id order, at
 * most limit. */
int store_results_with_status(struct store *st, const char *project, long long run_id,
			      const char *statuses, size_t limit, result_fn fn, void *ctx,
			      struct err *err);

/* Case ids of the run's results whose case has no title stored yet, in
 * order, after after_case, at most limit. */
int store_results_missing_cases(struct store *st, const char *project, long long run_id,
				long long after_case, size_t limit,
				int (*fn)(void *ctx, long long case_id), void *ctx, struct err *err);

int store_case_put(struct store *st, const char *project, long long case_id, const char *title,
		   long long suite_id, const char *fields_json, struct err *err);
/* 1 when the run has a result for case_id, 0 when not. */
int store_run_has_case(struct store *st, const char *project, long long run_id, long long case_id,
		       struct err *err);
int store_suite_put(struct store *st, const char *project, long long suite_id, const char *title,
		    long long parent_id, struct err *err);
/* Writes each case's suite path (from the stored suites) for the cases of
 * the run's results. */
int store_cases_set_paths(struct store *st, const char *project, long long run_id, struct err *err);

/* How far a run's fetch got. */
struct fetch_rec {
	char delivery_id[65]; /* the event that started it */
	char phase[16];       /* "run", "results", "cases", "case", "suites", "done" */
	long long offset;     /* next page offset (or case id) in that phase */
	long long total;      /* what the phase's listing said it holds, -1 unknown */
};
/* *found 0 when the run was never fetched. */
int store_fetch_get(struct store *st, const char *project, long long run_id, struct fetch_rec *out,
		    int *found, struct err *err);
int store_fetch_put(struct store *st, const char *project, long long run_id,
		    const struct fetch_rec *f, long long now_ms, struct err *err);

/* The results status a delivery was routed with: *out "" when never. */
int store_routed_get(struct store *st, const char *delivery_id, char out[16], struct err *err);
/* Records it; the event's stored JSON is replaced by event_json (with its
 * results) when not NULL. */
int store_routed_put(struct store *st, const char *project, long long run_id, const char *delivery_id,
		     const char *status, const char *event_json, long long now_ms, struct err *err);
/* The delivery's seq (for its jobs' rows), -1 when unknown; project may be
 * NULL (no project). */
int store_delivery_seq(struct store *st, const char *project, long long run_id,
		       const char *delivery_id, long long *out, struct err *err);

/* Calls fn for each open results job's run whose event is not routed yet
 * (the accept stage counts them at start). */
int store_deferred_each(struct store *st,
			void (*fn)(void *ctx, const char *project, long long run_id), void *ctx,
			struct err *err);

#endif
