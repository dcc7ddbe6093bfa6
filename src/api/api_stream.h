/*
 * api_stream: what the pipeline tells the operator API as it happens, and
 * GET /api/v1/stream (Server-Sent Events) that passes it on.
 *
 * The pipeline calls the api_notify_* functions (accept after a delivery
 * commits, dispatch as an attempt's outcome is applied, http for every
 * answer of a source's endpoint).  While a stream client is connected each
 * costs a mutex and a copy of a few hundred bytes; none blocks on a client:
 * events go to a ring of STREAM_RING messages that every stream client
 * reads at its own pace, from the message after its connect (a client that
 * falls a ring behind skips ahead and is told so).  With no client
 * connected no message is built (it was 9% of a request thread's CPU).
 *
 * The same calls keep the in-memory figures of GET /api/v1/summary and
 * /rules: deliveries per minute by type and status for the last hour, each
 * target's last success and last failure, and each rule's matches, all
 * since the process started (bounded tables; the excess counts as other).
 */
#ifndef RB_API_API_STREAM_H
#define RB_API_API_STREAM_H

#include <stddef.h>
#include <json-c/json.h>

struct mg_connection;

#define STREAM_RING 512

/* A delivery was committed: event is its normalized event (read only),
 * matched the rules it matched (names copied). */
void api_notify_delivery(json_object *event, const char *const *matched, size_t n_matched);

/* A deferred event (the results stage) was routed: counts its matches. */
void api_notify_matched(const char *const *matched, size_t n_matched);

/* A job's attempt outcome (dispatch), before its row is committed. */
struct api_job_event {
	long long id;
	int state; /* enum job_state */
	int attempts, ok;
	const char *kind, *target, *rule, *delivery_id; /* target "" = none */
	const char *detail;                             /* what went wrong, or NULL */
	long long at_ms;
};
void api_notify_job(const struct api_job_event *ev);

/* A source's endpoint answered: type NULL when the body was not parsed. */
void api_notify_http(const char *type, int status);

/* Serves one stream client until it goes away or api_stream_stop; answers
 * 503 when max_clients are connected already.  Returns the status. */
int api_stream_serve(struct mg_connection *c, int max_clients, const char *extra_headers);

/* Makes every stream client return (before mg_stop waits for them). */
void api_stream_stop(void);

/* {"<type>": {"<status>": n, ...}, ...} for the last 60 minutes. */
json_object *api_stats_last_hour(void);
/* [{"kind", "target", "last_success_at", "last_failure_at", "last_error"}] */
json_object *api_stats_targets(void);
/* How many deliveries matched rule name since start. */
long long api_stats_rule_matches(const char *name);

#endif
