/*
 * action_redis: append events to Redis streams, idempotently and in batches.
 *
 *   - redis: { stream: "runbridge:{{project}}", maxlen: 100000 }
 *
 * Rendered params: {"stream":"runbridge:DEMO","maxlen":100000} (maxlen 0 =
 * no trimming).  Each entry has the fields id, type, project, run_id, event
 * (the normalized JSON).  One Lua script checks a dedup key
 * (runbridge:dedup:<job key>), appends with XADD MAXLEN ~, and records the
 * key with a TTL, atomically: a retry after a crash never appends twice.
 * Appends are pipelined, many jobs per round trip.
 *
 * An outage costs no attempt: when the link fails (reset, EOF, no answer
 * within REDIS_TIMEOUT_MS) the jobs Redis did not answer are deferred, and
 * the re-send of one that was applied before its answer was lost finds its
 * dedup key and appends nothing.  An error answer (WRONGTYPE, OOM, NOAUTH)
 * is an attempt.  A command timeout reports the backend down (/readyz)
 * until a command succeeds again.
 */
#ifndef RB_ACTIONS_ACTION_REDIS_H
#define RB_ACTIONS_ACTION_REDIS_H

#include <stddef.h>
#include <json-c/json.h>

#include "actions/action.h"
#include "core/config.h"
#include "core/err.h"

extern const struct action_ops action_redis_ops;

struct redis_conn;

/* Creates a disconnected handle; connecting happens in redis_conn_ensure. */
int redis_conn_new(struct redis_conn **out, const struct config *cfg, struct err *err);
void redis_conn_free(struct redis_conn *c);

/* Connect and command timeout: a healthy server answers a batch in
 * milliseconds, and a stall this long is treated as an outage (the batch
 * is deferred and re-sent, which the dedup keys make harmless). */
#define REDIS_TIMEOUT_MS 2000

/* Connects (AUTH, SELECT, SCRIPT LOAD) if not connected.  -1: unreachable. */
int redis_conn_ensure(struct redis_conn *c, struct err *err);
int redis_conn_connected(const struct redis_conn *c);

/* One append to do.  All pointers borrowed. */
struct redis_append {
	const char *stream;
	long long maxlen;
	const char *dedup_key; /* unique per job, stable across retries */
	const char *id, *type, *project, *run_id, *event_json;
	/* out */
	int answered;    /* Redis answered it (ok, or error says why) */
	int ok;          /* appended, or already appended before */
	int duplicate;   /* the dedup key existed: nothing appended */
	char error[256]; /* when !ok */
};

/*
 * Pipelines all appends.  Returns 0 when the server answered every one (each
 * item's ok/error says how it went), -1 when the connection failed (the
 * handle is disconnected; items without an answer have answered = 0: each
 * may or may not have been applied, and sending it again is safe).
 */
int redis_append_batch(struct redis_conn *c, struct redis_append *items, size_t n, struct err *err);

#endif
