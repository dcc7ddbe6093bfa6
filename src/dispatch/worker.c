/*
 * worker: loads stored jobs and hands them to their kind's run.  Everything
 * a job needs is read from the store here, per attempt; what the kind does
 * with it is the kind's (actions/action.h).
 */
#include "dispatch/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "core/clock.h"
#include "dispatch/dispatch.h"
#include "store/ingest.h"
#include "store/results.h"
#include "store/store.h"

struct worker {
	struct pool *pool;
	const struct action_ops *ops;
	const struct config *cfg;
	struct store *st;
	void *state; /* the kind's (ops->open) */
	struct action_host host;
	size_t batch;
	struct job *jobs; /* one per batch slot */
	json_object **params;
	struct action_job *loaded;
};

static void host_set_up(struct action_host *h, int up)
{
	struct worker *w = h->ctx;
	pool_set_up(w->pool, up);
}

static const struct target_cfg *host_target(struct action_host *h, const char *kind, const char *name)
{
	struct worker *w = h->ctx;
	return dispatch_target(pool_dispatch(w->pool), kind, name);
}

static int host_map_get(struct action_host *h, const struct map_key *k, struct map_rec *out,
			struct err *err)
{
	struct worker *w = h->ctx;
	return store_map_get(w->st, k, out, err);
}

static int host_map_put(struct action_host *h, const struct map_key *k, const struct map_rec *m,
			struct err *err)
{
	struct worker *w = h->ctx;
	return ingest_map(dispatch_ingest(pool_dispatch(w->pool)), k, m, err);
}

static int host_results_each(struct action_host *h, const char *project, long long run_id,
			     long long after_case, size_t limit,
			     int (*fn)(void *ctx, const struct result_row *r), void *fn_ctx,
			     size_t *n_out, struct err *err)
{
	struct worker *w = h->ctx;
	return store_results_each(w->st, project, run_id, after_case, limit, fn, fn_ctx, n_out, err);
}

static int host_route(struct action_host *h, const struct action_job *j, json_object *event,
		      const char *status, struct err *err)
{
	struct worker *w = h->ctx;
	return dispatch_route(pool_dispatch(w->pool), j, event, status, err);
}

static int host_write(struct action_host *h, ingest_call_fn fn, void *fn_ctx, struct err *err)
{
	struct worker *w = h->ctx;
	return ingest_call(dispatch_ingest(pool_dispatch(w->pool)), fn, fn_ctx, err);
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	if (w->ops->close)
		w->ops->close(w->state);
	store_close(w->st);
	free(w->jobs);
	free(w->params);
	free(w->loaded);
	free(w);
}

int worker_new(struct worker **out, struct pool *p, const struct config *cfg, struct err *err)
{
	struct worker *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (!w)
		return err_set(err, "out of memory");
	w->pool = p;
	w->ops = pool_ops(p);
	w->cfg = cfg;
	w->batch = pool_batch(p);
	w->host = (struct action_host){ .cfg = cfg,
					.set_up = host_set_up,
					.target = host_target,
					.map_get = host_map_get,
					.map_put = host_map_put,
					.results_each = host_results_each,
					.route = host_route,
					.write = host_write,
					.ctx = w };
	w->jobs = calloc(w->batch, sizeof(*w->jobs));
	w->params = calloc(w->batch, sizeof(*w->params));
	w->loaded = calloc(w->batch, sizeof(*w->loaded));
	if (!w->jobs || !w->params || !w->loaded) {
		err_set(err, "out of memory");
		goto fail;
	}
	if (store_open(&w->st, cfg->data_dir, STORE_RO, err) < 0)
		goto fail;
	w->host.store = w->st;
	if (w->ops->open && w->ops->open(&w->state, w->ops, &w->host, err) < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	worker_free(w);
	return -1;
}

struct pool *worker_pool_of(struct worker *w)
{
	return w->pool;
}

static void result_set(struct work_result *r, enum work_outcome o, const char *msg)
{
	r->outcome = o;
	snprintf(r->detail, sizeof(r->detail), "%s", msg);
}

/* Loads a job and its params into slot k; on failure the item fails with
 * the reason. */
static int load(struct worker *w, struct work_item *it, size_t k)
{
	struct job *job = &w->jobs[k];
	json_object *v;
	struct err err;

	if (store_job_load(w->st, it->job_id, job, &err) < 0) {
		result_set(&it->res, WORK_FAIL, err.msg);
		return -1;
	}
	snprintf(it->res.rule, sizeof(it->res.rule), "%s", job->rule);
	snprintf(it->res.delivery_id, sizeof(it->res.delivery_id), "%s", job->delivery_id);
	w->params[k] = json_tokener_parse(job->params_json);
	if (!w->params[k] || !json_object_is_type(w->params[k], json_type_object)) {
		result_set(&it->res, WORK_PERMANENT, "stored params are not a JSON object");
		return -1;
	}
	/* a configured target's name: bounded by the config, fit for a label */
	if (json_object_object_get_ex(w->params[k], "target", &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(it->res.target, sizeof(it->res.target), "%s", json_object_get_string(v));
	w->loaded[k] = (struct action_job){
		.id = job->id,
		.attempt = it->attempt,
		.delivery_id = job->delivery_id,
		.rule = job->rule,
		.type = job->type,
		.project = job->project,
		.index = job->index,
		.run_id = job->run_id,
		.received_ms = job->received_ms,
		.event_json = job->event_json,
		.params = w->params[k],
		.res = &it->res,
	};
	return 0;
}

static void clear(struct worker *w, size_t k)
{
	job_free(&w->jobs[k]);
	json_object_put(w->params[k]);
	w->params[k] = NULL;
}

int worker_run(struct worker *w, struct work_item *items, size_t n)
{
	long long started = clock_wall_ms();
	int deferred = 0;
	struct err err;
	size_t m = 0;

	for (size_t i = 0; i < n; i++)
		items[i].res.action = w->ops->name;
	if (w->ops->ready && w->ops->ready(w->state, &w->host, &err) < 0) {
		for (size_t i = 0; i < n; i++)
			result_set(&items[i].res, WORK_DEFER, err.msg);
		deferred = 1;
	} else {
		/* Compact the loadable jobs to the front of the batch. */
		for (size_t i = 0; i < n && m < w->batch; i++) {
			if (load(w, &items[i], m) == 0)
				m++;
			else
				clear(w, m);
		}
		/* the reloadable keys as of this batch (dispatch_set_config) */
		w->host.cfg = dispatch_config(pool_dispatch(w->pool));
		w->ops->run(w->state, &w->host, w->loaded, m);
		for (size_t k = 0; k < m; k++)
			clear(w, k);
	}
	for (size_t i = 0; i < n; i++) {
		items[i].res.started_ms = started;
		items[i].res.finished_ms = clock_wall_ms();
	}
	return deferred;
}
