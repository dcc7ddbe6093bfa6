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
	int ok;          /* appended, or already appended before */
	int duplicate;   /* the dedup key existed: nothing appended */
	char error[256]; /* when !ok */
};

/*
 * Pipelines all appends.  Returns 0 when the server answered every one (each
 * item's ok/error says how it went), -1 when the connection failed (the
 * handle is disconnected; items without an answer have ok = 0).
 */
int redis_append_batch(struct redis_conn *c, struct redis_append *items, size_t n, struct err *err);

#endif
