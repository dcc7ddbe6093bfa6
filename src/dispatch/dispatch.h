/*
 * dispatch: runs stored jobs, at least once, in order within a lane and in
 * parallel across lanes.
 *
 * A lane is "<project>#<run id>/<rule>/<action index>": the actions of one
 * run reach each target in receipt order, while different runs (and
 * different rules) proceed side by side.  Only a lane's head job may run; a
 * failed head waits for its retry (exponential backoff with jitter) and
 * holds the lane, then goes to dead letters after retry.max_attempts and
 * the lane moves on.
 *
 * Memory holds only a window of open jobs (queue.window, id + lane); the
 * rows themselves are loaded from the store per attempt.  Jobs beyond the
 * window are read from the store as the window drains.  Each registered
 * action kind has a pool of worker threads shaped by its ops (redis: one
 * thread, pipelined batches; exec: exec.workers threads; outbound kinds:
 * targets_workers threads).  Outcomes go to the writer as attempt rows.
 */
#ifndef RB_ACTIONS_DISPATCH_H
#define RB_ACTIONS_DISPATCH_H

#include <stddef.h>
#include <json-c/json.h>

#include "core/config.h"
#include "core/err.h"
#include "store/store.h"

struct dispatch;
struct ingest;

/* Opens its own store connection; threads start in dispatch_start. */
int dispatch_new(struct dispatch **out, const struct config *cfg, struct err *err);

/* Loads every open job from the store, then starts the scheduler and the
 * worker pools.  Attempts are recorded through in. */
int dispatch_start(struct dispatch *d, struct ingest *in, struct err *err);

/* New committed jobs (the writer's ingest_jobs_fn). */
void dispatch_push(void *d, const struct job_ref *jobs, size_t n);

/*
 * Reload: from now on attempts read the reloadable keys (targets and their
 * credentials, retry.*, exec.output_max_bytes) from cfg, which the caller
 * keeps alive until dispatch_free.  A job whose target cfg no longer has
 * (queued by the rules before the reload) finds it in the newest earlier
 * config that has it, so no job dies of a reload.  -1 on OOM.
 */
int dispatch_set_config(struct dispatch *d, const struct config *cfg);
const struct config *dispatch_config(struct dispatch *d);
const struct target_cfg *dispatch_target(struct dispatch *d, const char *kind, const char *name);

/* Routing of deferred events (the results stage): set before start by
 * whoever owns the rules (the accept stage).  dispatch_route calls it; -1
 * with err set when none is set. */
struct action_job;
typedef int (*dispatch_router_fn)(void *ctx, const struct action_job *j, json_object *event,
				  const char *status, struct err *err);
void dispatch_set_router(struct dispatch *d, dispatch_router_fn fn, void *ctx);
int dispatch_route(struct dispatch *d, const struct action_job *j, json_object *event,
		   const char *status, struct err *err);

/* 1 when the redis worker is connected. */
int dispatch_redis_up(struct dispatch *d);

struct dispatch_stats {
	size_t in_memory; /* open jobs in the window */
	size_t running;   /* handed to workers */
	int window_full;  /* more open jobs wait on disk */
};
void dispatch_stats(struct dispatch *d, struct dispatch_stats *out);

/* Stops taking work; waits up to timeout_s for running attempts to end.
 * Returns 0 when every worker stopped, -1 when some are still running (then
 * the dispatcher must not be freed). */
int dispatch_stop(struct dispatch *d, int timeout_s);
void dispatch_free(struct dispatch *d);

#endif
