/*
 * worker: runs jobs of one action kind for the dispatcher.
 *
 * A worker owns what a thread needs to run its kind: a read connection to
 * the store (each attempt loads its job and event from disk) and, for redis,
 * the Redis connection.  worker_run never takes the dispatcher's lock.
 */
#ifndef RB_ACTIONS_WORKER_H
#define RB_ACTIONS_WORKER_H

#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

enum work_outcome {
	WORK_OK,
	WORK_FAIL,       /* failed; retried until retry.max_attempts */
	WORK_PERMANENT,  /* failed in a way retrying cannot fix: dead now */
	WORK_DEFER,      /* not attempted (backend unreachable): no attempt used */
};

struct work_result {
	enum work_outcome outcome;
	long long started_ms, finished_ms;
	const char *action;       /* kind name, static */
	char rule[128];
	char delivery_id[65];
	char detail[1024];        /* what happened, for logs and the attempt row */
	long long retry_after_ms; /* WORK_FAIL: the server asked to wait this long; -1 none */
};

struct work_item {
	long long job_id;
	int attempt;              /* 1-based number of this attempt */
	struct work_result res;   /* filled by worker_run */
};

struct pool;
struct dispatch;
struct worker;

int worker_new(struct worker **out, struct pool *p, const struct config *cfg,
	       struct err *err);
void worker_free(struct worker *w);
struct pool *worker_pool_of(struct worker *w);

/* Runs n jobs of the pool's kind.  Returns 1 when the backend was
 * unreachable and every item was deferred, else 0. */
int worker_run(struct worker *w, struct work_item *items, size_t n);

/* Provided by dispatch.c for its workers. */
struct dispatch *pool_dispatch(struct pool *p);
const char *pool_kind(const struct pool *p);
void dispatch_set_redis_up(struct dispatch *d, int up);
struct ingest *dispatch_ingest(struct dispatch *d);

#endif
