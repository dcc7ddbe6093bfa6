/*
 * fetch: pulls one Qase run's per-case results into the store, in phases
 * that each resume where the last attempt stopped (store/results.h's
 * fetches row):
 *
 *   run      GET /run/{code}/{id}?include=cases      the run exists
 *   results  GET /result/{code}?run={id}&limit=100&offset=N, every page;
 *            each page is written (with the next offset) as it comes, so
 *            memory holds one page and a retry never fetches a stored one
 *   cases    GET /case/{code}?limit=100&offset=N, while paging is cheaper
 *            than asking for the missing cases one by one ...
 *   case     ... GET /case/{code}/{id} for each case still without a title
 *            once fewer are missing than pages are left
 *   suites   GET /suite/{code}?limit=100&offset=N, every page, then each
 *            case's suite path
 *   done
 *
 * So a run costs 1 + result pages + case pages (or lookups, whichever is
 * fewer) + suite pages requests.  A case with several results in the run
 * keeps the one with the latest end_time.  A new event of the run (another
 * delivery id) fetches again from the start; the rows it finds replace the
 * stored ones.
 */
#ifndef RB_RESULTS_FETCH_H
#define RB_RESULTS_FETCH_H

#include "core/config.h"
#include "core/err.h"
#include "results/qase_api.h"
#include "store/ingest.h"
#include "store/store.h"

/* What a fetch reads and writes with. */
struct fetch_io {
	struct qase_api *api;
	const struct source_cfg *src; /* api.base_url, api.token, the rate */
	struct store *st;             /* a read connection */
	/* commits fn's rows in the writer's transaction (ingest_call) */
	int (*write)(void *ctx, ingest_call_fn fn, void *fn_ctx, struct err *err);
	void *write_ctx;
};

struct fetch_outcome {
	int complete;              /* 1: every phase done */
	enum qase_verdict verdict; /* not complete: retry or permanent */
	long long retry_after_ms;  /* a 429's Retry-After, -1 none */
	int requests;              /* sent by this call */
	char detail[600];
};

/* Fetches what is still missing of (project, run_id) for the event
 * delivery_id, until done, an error, or deadline_ms (Unix ms; then the
 * outcome is QASE_RETRY).  Always fills out; returns 0 when complete. */
int fetch_run(const struct fetch_io *io, const char *project, long long run_id,
	      const char *delivery_id, long long deadline_ms, struct fetch_outcome *out);

/* "2024-05-01T10:00:00+02:00", "2024-05-01 10:00:00" (UTC) and the like as
 * Unix ms; -1 when it is not such a time. */
long long fetch_parse_time(const char *s);

#endif
