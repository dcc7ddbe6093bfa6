/*
 * worker: one function per action kind that turns stored jobs into effects.
 * Everything a job needs is read from the store here, per attempt.
 */
#include "dispatch/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "actions/action_exec.h"
#include "actions/action_http.h"
#include "actions/action_redis.h"
#include "targets/outbound.h"
#include "targets/target.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/ingest.h"
#include "store/store.h"

struct worker {
	struct pool *pool;
	const struct config *cfg;
	struct store *st;
	struct redis_conn *redis;   /* redis workers only */
	struct outbound *http;      /* outbound kinds only */
	const struct target_kind *target; /* translated kinds only */
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
	outbound_free(w->http);
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
	} else if (strcmp(pool_kind(p), "exec") != 0) {
		static const struct target_kind *const kinds[] = {
			&target_testomat, &target_qasphere, &target_testcenter,
		};
		for (size_t i = 0; i < 3; i++)
			if (strcmp(kinds[i]->name, pool_kind(p)) == 0)
				w->target = kinds[i];
		if (outbound_new(&w->http, err) < 0)
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
	/* events about no run (case.*, plan.*, ...) are stored with run id 0:
	 * their entry's run_id is empty, as their event's is null */
	if (job->run_id > 0)
		snprintf(w->run_ids[i], sizeof(w->run_ids[i]), "%lld", job->run_id);
	else
		w->run_ids[i][0] = '\0';
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

/* ---- http ------------------------------------------------------------------ */

static void run_http(struct worker *w, struct work_item *it)
{
	struct job job;
	json_object *params = NULL;

	it->res.action = "http";
	if (load(w, it, &job, &params) == 0) {
		struct target_outcome out = { .outcome = WORK_FAIL, .retry_after_ms = -1 };
		action_http_run(params, w->http, it->attempt, &out);
		it->res.outcome = out.outcome;
		it->res.retry_after_ms = out.retry_after_ms;
		snprintf(it->res.detail, sizeof(it->res.detail), "%s", out.detail);
	}
	json_object_put(params);
	job_free(&job);
}

/* ---- translated targets ----------------------------------------------- */

struct map_ctx {
	struct worker *w;
	struct map_key key;
};

static int save_map(struct target_attempt *a, struct err *err)
{
	struct map_ctx *mc = a->save_ctx;
	struct map_rec rec = {
		.remote_id = a->map.remote_id, .state = a->map.state,
		.data = (char *)json_object_to_json_string_ext(a->map.data,
							       JSON_C_TO_STRING_PLAIN),
	};
	return ingest_map(dispatch_ingest(pool_dispatch(mc->w->pool)), &mc->key,
			  &rec, err);
}

static int load_map(struct worker *w, struct map_ctx *mc, struct target_attempt *a,
		    struct err *err)
{
	struct map_rec rec;

	if (store_map_get(w->st, &mc->key, &rec, err) < 0)
		return -1;
	a->map.remote_id = rec.remote_id;
	a->map.state = rec.state;
	a->map.data = rec.data ? json_tokener_parse(rec.data) : NULL;
	free(rec.data);
	if (!a->map.data || !json_object_is_type(a->map.data, json_type_object)) {
		json_object_put(a->map.data);
		a->map.data = json_object_new_object();
	}
	return 0;
}

static void run_target(struct worker *w, struct work_item *it)
{
	struct job job;
	json_object *params = NULL;
	struct target_attempt a = { 0 };
	struct target_outcome out = { .outcome = WORK_FAIL, .retry_after_ms = -1 };
	struct map_ctx mc = { .w = w };
	struct err err;

	it->res.action = w->target->name;
	if (load(w, it, &job, &params) < 0)
		goto done;
	const char *name = param_str(params, "target");
	a.target = name ? config_target(w->cfg, w->target->name, name) : NULL;
	if (!a.target) {
		result_set(&it->res, WORK_PERMANENT, "unknown target '%s' (not in the running config)",
			   name ? name : "");
		goto done;
	}
	mc.key = (struct map_key){ .kind = w->target->name, .target = name,
				   .project = job.project, .run_id = job.run_id };
	a.params = params;
	a.event = json_tokener_parse(job.event_json);
	a.delivery_id = job.delivery_id;
	a.job_id = job.id;
	a.attempt = it->attempt;
	a.http = w->http;
	a.save = save_map;
	a.save_ctx = &mc;
	if (load_map(w, &mc, &a, &err) < 0) {
		result_set(&it->res, WORK_FAIL, "%s", err.msg);
		goto done;
	}
	w->target->run(&a, &out);
	it->res.outcome = out.outcome;
	it->res.retry_after_ms = out.retry_after_ms;
	snprintf(it->res.detail, sizeof(it->res.detail), "%s", out.detail);
done:
	json_object_put(a.event);
	json_object_put(a.map.data);
	free(a.map.remote_id);
	free(a.map.state);
	json_object_put(params);
	job_free(&job);
}

int worker_run(struct worker *w, struct work_item *items, size_t n)
{
	long long started = clock_wall_ms();
	int deferred = 0;

	if (w->redis) {
		deferred = run_redis(w, items, n);
	} else if (w->target) {
		for (size_t i = 0; i < n; i++)
			run_target(w, &items[i]);
	} else if (w->http) {
		for (size_t i = 0; i < n; i++)
			run_http(w, &items[i]);
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
