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

/* One action attempt: kind ("redis", "exec"), outcome ("ok", "failed",
 * "dead", "deferred"), duration. */
void metrics_attempt(const char *kind, const char *outcome, double seconds);

void metrics_exec_running(int delta);

/* Gauges read at scrape time. */
struct metrics_gauges {
	long long pending, retrying, dead, done;   /* from the store */
	long long in_memory, running;               /* from the dispatcher */
	int redis_up;
};

/* Renders everything into a malloc'd string (caller frees), NULL on OOM. */
char *metrics_render(const struct metrics_gauges *g);

#endif
