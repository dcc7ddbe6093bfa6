/*
 * worker: runs jobs of one action kind for the dispatcher.
 *
 * A worker owns what a thread needs to run its kind: a read connection to
 * the store (each attempt loads its job and event from disk) and the kind's
 * own per-thread state (ops->open: a Redis connection, an HTTP handle).  It
 * knows no kind: it loads the jobs and hands them to ops->run.  worker_run
 * never takes the dispatcher's lock.
 */
#ifndef RB_ACTIONS_WORKER_H
#define RB_ACTIONS_WORKER_H

#include <stddef.h>

#include "actions/action.h"
#include "core/config.h"
#include "core/err.h"

struct work_item {
	long long job_id;
	int attempt;            /* 1-based number of this attempt */
	struct work_result res; /* filled by worker_run */
};

struct pool;
struct dispatch;
struct worker;

int worker_new(struct worker **out, struct pool *p, const struct config *cfg, struct err *err);
void worker_free(struct worker *w);
struct pool *worker_pool_of(struct worker *w);

/* Runs n jobs of the pool's kind.  Returns 1 when the backend was
 * unreachable and every item was deferred, else 0. */
int worker_run(struct worker *w, struct work_item *items, size_t n);

/* Provided by dispatch.c for its workers. */
struct dispatch *pool_dispatch(struct pool *p);
const struct action_ops *pool_ops(const struct pool *p);
size_t pool_batch(const struct pool *p);
/* The kind's backend is reachable (1) or not (0). */
void pool_set_up(struct pool *p, int up);
struct ingest *dispatch_ingest(struct dispatch *d);

#endif
