/*
 * metrics: process-wide counters and histograms, rendered in the Prometheus
 * text exposition format for GET /metrics.
 *
 * Label sets are fixed and small on purpose: event types a webhook sender
 * controls are folded into "other" unless they are Qase's known names, so no
 * request can grow the metric set.  All updates are lock-free atomics.
 */
#ifndef RB_CORE_METRICS_H
#define RB_CORE_METRICS_H

#include <stddef.h>

/* HTTP outcome of one delivery. */
void metrics_delivery(const char *type, int status);
void metrics_duplicate(void);

/* One group commit of the writer: its duration and how many requests. */
void metrics_commit(double seconds, size_t batch);

/* One action attempt: kind ("redis", "testomat", ...), target (the
 * configured target's name, "" or NULL for none), outcome ("ok", "failed",
 * "dead", "deferred"), duration.  Kinds and targets are the registry's and
 * the config's, so the label set stays small (bounded; the excess counts as
 * kind "other"). */
void metrics_attempt(const char *kind, const char *target, const char *outcome, double seconds);

/* Makes the series exist (shown as 0) before any attempt. */
void metrics_attempt_declare(const char *kind, const char *target);

void metrics_exec_running(int delta);

/* Gauges read at scrape time. */
struct metrics_gauges {
	long long pending, retrying, dead, done; /* from the store */
	long long in_memory, running;            /* from the dispatcher */
	int redis_up;
};

/* Renders everything into a malloc'd string (caller frees), NULL on OOM. */
char *metrics_render(const struct metrics_gauges *g);

/* ---- QA Sphere ------------------------------------------------------------ */

/* n Qase results of a run that no QA Sphere test case took (target is the
 * configured target's name; past 32 targets they count as "other"):
 * runbridge_qasphere_unmapped_total{target="..."}. */
void metrics_qasphere_unmapped(const char *target, size_t n);

/* ---- retention ------------------------------------------------------------ */

/* What one retention step deleted (store/retention.h): deliveries, jobs, and
 * pages given back to the file system:
 * runbridge_retention_deleted_deliveries_total, ..._jobs_total,
 * runbridge_retention_vacuumed_pages_total. */
void metrics_retention(long long deliveries, long long jobs, long long pages);

/* A WAL checkpoint: on the checkpoint thread, by the writer (to restart
 * the WAL, or at its bound), or failed. */
enum metrics_ckpt { CKPT_BACKGROUND, CKPT_CATCHUP, CKPT_BOUND, CKPT_FAILED };
void metrics_checkpoint(enum metrics_ckpt where);

#endif
