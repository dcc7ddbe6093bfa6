/*
 * summary: the event's "results" object, built from a run's stored results
 * (store/results.h):
 *
 *   {"status": "complete"|"partial"|"unavailable", "total": N,
 *    "counts": {"passed": n, "failed": n, "blocked": n, "skipped": n,
 *               "invalid": n, "in_progress": n, ...custom status slugs},
 *    "failed": [{"case_id", "title", "suite", "status", "duration_ms",
 *                "message", "stacktrace", "end_time", "hash"}, ...],
 *    "failed_more": n}
 *
 * total counts the cases with a result; failed lists the failed, blocked
 * and invalid ones in case id order, at most failed_max (failed_more says
 * how many more there are: "and 12 more"), each message and
 * stack trace cut at SUMMARY_TEXT_MAX characters (the targets read the
 * whole text from the store).
 */
#ifndef RB_RESULTS_SUMMARY_H
#define RB_RESULTS_SUMMARY_H

#include <json-c/json.h>

#include "core/err.h"
#include "store/store.h"

#define SUMMARY_TEXT_MAX 4096

/* status: "complete", "partial" or "unavailable".  0 with a new object, or
 * -1 with err set. */
int results_summary(struct store *st, const char *project, long long run_id, const char *status,
		    int failed_max, json_object **out, struct err *err);

#endif
