/*
 * worker: one function per action kind that turns stored jobs into effects.
 * Everything a job needs is read from the store here, per attempt.
 */
#include "actions/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "actions/action_exec.h"
#include "actions/action_redis.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/store.h"

struct worker {
	struct pool *pool;
	const struct config *cfg;
	struct store *st;
	struct redis_conn *redis;   /* redis workers only */
	struct job *jobs;           /* redis: one per batch slot */
	struct redis_append *appends;
	char (*keys)[512];
	char (*run_ids)[24];
	json_object **params;
};

static void worker_clear(struct worker *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		job_free(&w->jobs[i]);
		json_object_put(w->params[i]);
		w->params[i] = NULL;
	}
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	store_close(w->st);
	redis_conn_free(w->redis);
	free(w->jobs);
	free(w->appends);
	free(w->keys);
	free(w->run_ids);
	free(w->params);
	free(w);
}

int worker_new(struct worker **out, struct pool *p, const struct config *cfg,
	       struct err *err)
{
	struct worker *w = calloc(1, sizeof(*w));
	size_t n = (size_t)cfg->redis_batch;

	*out = NULL;
	if (!w)
		return err_set(err, "out of memory");
	w->pool = p;
	w->cfg = cfg;
	if (store_open(&w->st, cfg->data_dir, STORE_RO, err) < 0)
		goto fail;
	if (strcmp(pool_kind(p), "redis") == 0) {
		w->jobs = calloc(n, sizeof(*w->jobs));
		w->appends = calloc(n, sizeof(*w->appends));
		w->keys = calloc(n, sizeof(*w->keys));
		w->run_ids = calloc(n, sizeof(*w->run_ids));
		w->params = calloc(n, sizeof(*w->params));
		if (!w->jobs || !w->appends || !w->keys || !w->run_ids || !w->params) {
			err_set(err, "out of memory");
			goto fail;
		}
		if (redis_conn_new(&w->redis, cfg, err) < 0)
			goto fail;
	}
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

static void result_set(struct work_result *r, enum work_outcome o,
		       const char *fmt, const char *detail)
{
	r->outcome = o;
	snprintf(r->detail, sizeof(r->detail), fmt, detail);
}

/* Loads a job and its params; on failure the item fails with the reason. */
static int load(struct worker *w, struct work_item *it, struct job *job,
		json_object **params)
{
	struct err err;

	if (store_job_load(w->st, it->job_id, job, &err) < 0) {
		result_set(&it->res, WORK_FAIL, "%s", err.msg);
		return -1;
	}
	snprintf(it->res.rule, sizeof(it->res.rule), "%s", job->rule);
	snprintf(it->res.delivery_id, sizeof(it->res.delivery_id), "%s", job->delivery_id);
	*params = json_tokener_parse(job->params_json);
	if (!*params || !json_object_is_type(*params, json_type_object)) {
		result_set(&it->res, WORK_PERMANENT, "%s", "stored params are not a JSON object");
		return -1;
	}
	return 0;
}

/* ---- redis ------------------------------------------------------------- */

static int prepare_append(struct worker *w, size_t i, struct work_item *it)
{
	struct job *job = &w->jobs[i];
	struct redis_append *a = &w->appends[i];
	json_object *v;

	if (load(w, it, job, &w->params[i]) < 0)
		return -1;
	if (!json_object_object_get_ex(w->params[i], "stream", &v) ||
	    !json_object_get_string(v)[0]) {
		result_set(&it->res, WORK_PERMANENT, "%s", "the rendered stream name is empty");
		return -1;
	}
	memset(a, 0, sizeof(*a));
	a->stream = json_object_get_string(v);
	a->maxlen = json_object_object_get_ex(w->params[i], "maxlen", &v)
			    ? json_object_get_int64(v) : 0;
	snprintf(w->keys[i], sizeof(w->keys[i]), "runbridge:dedup:%s:%s:%d",
		 job->delivery_id, job->rule, job->index);
	snprintf(w->run_ids[i], sizeof(w->run_ids[i]), "%lld", job->run_id);
	a->dedup_key = w->keys[i];
	a->id = job->delivery_id;
	a->type = job->type;
	a->project = job->project ? job->project : "";
	a->run_id = w->run_ids[i];
	a->event_json = job->event_json;
	return 0;
}

static int run_redis(struct worker *w, struct work_item *items, size_t n)
{
	struct dispatch *d = pool_dispatch(w->pool);
	struct redis_append *batch = w->appends;
	size_t map[n], m = 0;
	struct err err;

	if (redis_conn_ensure(w->redis, &err) < 0) {
		if (redis_conn_connected(w->redis) == 0)
			dispatch_set_redis_up(d, 0);
		for (size_t i = 0; i < n; i++)
			result_set(&items[i].res, WORK_DEFER, "%s", err.msg);
		return 1;
	}
	dispatch_set_redis_up(d, 1);
	/* Compact the loadable jobs to the front of the batch. */
	for (size_t i = 0; i < n; i++) {
		items[i].res.action = "redis";
		if (prepare_append(w, m, &items[i]) == 0) {
			map[m++] = i;
		} else {
			job_free(&w->jobs[m]);
			json_object_put(w->params[m]);
			w->params[m] = NULL;
		}
	}
	int rc = redis_append_batch(w->redis, batch, m, &err);
	if (rc < 0)
		dispatch_set_redis_up(d, 0);
	for (size_t k = 0; k < m; k++) {
		struct work_result *r = &items[map[k]].res;
		if (batch[k].ok)
			result_set(r, WORK_OK, "%s", batch[k].duplicate
				   ? "already in the stream" : "appended");
		else
			result_set(r, WORK_FAIL, "%s", rc < 0 ? err.msg : batch[k].error);
	}
	worker_clear(w, m);
	return 0;
}

/* ---- exec ---------------------------------------------------------------- */

static void exec_result(struct work_item *it, const struct exec_outcome *o,
			const char *delivery_id)
{
	char what[128];
	int ok = !o->timed_out && !o->signaled && o->exit_code == 0;

	exec_outcome_describe(o, what, sizeof(what));
	it->res.outcome = ok ? WORK_OK : WORK_FAIL;
	/* The output's tail tells most about a failure; it is cut to fit. */
	size_t room = sizeof(it->res.detail) - strlen(what) - 16;
	const char *out = o->output ? o->output : "";
	size_t olen = strlen(out);
	if (olen > room)
		out += olen - room;
	int n = snprintf(it->res.detail, sizeof(it->res.detail), "%s", what);
	if (olen)
		snprintf(it->res.detail + n, sizeof(it->res.detail) - (size_t)n,
			 "; output: %s", out);
	if (o->output_len)
		log_kv(LOG_INFO, "exec output", "delivery", delivery_id,
		       "rule", it->res.rule, "result", what,
		       "output", o->output, NULL);
}

static int run_exec(struct worker *w, struct work_item *it)
{
	struct job job;
	json_object *params = NULL;
	struct exec_outcome o;
	struct err err;

	it->res.action = "exec";
	memset(&o, 0, sizeof(o));
	if (load(w, it, &job, &params) < 0)
		goto done;
	metrics_exec_running(1);
	int rc = action_exec_run(params, job.event_json, job.delivery_id,
				 w->cfg->exec_output_max, &o, &err);
	metrics_exec_running(-1);
	if (rc < 0)
		result_set(&it->res, WORK_FAIL, "%s", err.msg);
	else
		exec_result(it, &o, job.delivery_id);
	free(o.output);
done:
	json_object_put(params);
	job_free(&job);
	return 0;
}

int worker_run(struct worker *w, struct work_item *items, size_t n)
{
	long long started = clock_wall_ms();
	int deferred = 0;

	if (w->redis) {
		deferred = run_redis(w, items, n);
	} else {
		for (size_t i = 0; i < n; i++)
			run_exec(w, &items[i]);
	}
	for (size_t i = 0; i < n; i++) {
		items[i].res.started_ms = started;
		items[i].res.finished_ms = clock_wall_ms();
		if (!items[i].res.action)
			items[i].res.action = pool_kind(w->pool);
	}
	return deferred;
}
