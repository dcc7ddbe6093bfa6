/*
 * action_results: the kind of the jobs that hold an event back until its
 * run's results are stored (the results stage; never named by a rule).
 *
 * The accept stage stores an event of sources.<name>.api.fetch_on with one
 * job of this kind instead of its rule actions, in the run's lane
 * "<project>#<run>/results", and so does every later event of that run
 * while one is open: the run's events are routed in receipt order.  A job
 * with params {"fetch": true}:
 *
 *   1. fetches what is missing of the run's results (fetch.h), resuming
 *      where the last attempt stopped; a 429 with a short Retry-After is
 *      waited out within the attempt;
 *   2. once complete, or once api.wait_s has passed since the delivery,
 *      or on a permanent failure (401, 403, 404) or its last attempt:
 *      puts the "results" object (summary.h) into the event, stores it on
 *      the delivery and routes it by the rules (accept_route_deferred);
 *   3. ends done when complete, else dead with the reason (visible in
 *      `runbridge status --dead` and the attempt metrics): a replay
 *      fetches again and, once complete, routes the event again.
 *
 * Between attempts the wait is the usual backoff, or the server's
 * Retry-After, but never past the deadline.  A job {"fetch": false} (an
 * event that only waits for its turn) routes its event as stored.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actions/action.h"
#include "core/clock.h"
#include "results/fetch.h"
#include "results/summary.h"
#include "store/results.h"

#define SHORT_RETRY_MS 10000 /* a 429 waited out within the attempt */
#define SHORT_RETRIES  5

static int results_parse(void **out, const struct cfg_node *node, struct errlist *errs)
{
	(void)node;
	*out = NULL;
	return errlist_add(errs, "results: runbridge's own kind, not an action for rules");
}

static int results_render(json_object **out, const void *spec, json_object *event, struct err *err)
{
	(void)spec;
	(void)event;
	*out = NULL;
	return err_set(err, "results: not rendered from rules");
}

static void results_free_spec(void *spec)
{
	(void)spec;
}

static void results_pool(const struct config *cfg, struct action_pool *out)
{
	*out = (struct action_pool){ .threads = cfg->target_workers, .batch = 1 };
}

static int results_open(void **out, const struct action_ops *self, struct action_host *host,
			struct err *err)
{
	(void)self;
	(void)host;
	return qase_api_new((struct qase_api **)out, err);
}

static void results_close(void *state)
{
	qase_api_free(state);
}

static void set(struct work_result *r, enum work_outcome o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set(struct work_result *r, enum work_outcome o, const char *fmt, ...)
{
	va_list ap;

	r->outcome = o;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

static const struct source_cfg *source_of(const struct config *cfg, json_object *ev)
{
	json_object *v;
	const char *name = json_object_object_get_ex(ev, "source", &v) ? json_object_get_string(v)
								       : "";

	for (size_t i = 0; i < cfg->n_sources; i++)
		if (strcmp(cfg->sources[i].name, name) == 0)
			return &cfg->sources[i];
	return NULL;
}

static int write_through(void *ctx, ingest_call_fn fn, void *fn_ctx, struct err *err)
{
	struct action_host *h = ctx;
	return h->write(h, fn, fn_ctx, err);
}

/* Puts the results into the event and routes it.  0, or -1 with res set. */
static int route_with(struct action_host *host, struct action_job *j, json_object *ev,
		      const struct source_cfg *src, const char *status)
{
	json_object *summary;
	struct err err;

	if (results_summary(host->store, j->project, j->run_id, status, src->api_failed_max,
			    &summary, &err) < 0 ||
	    (json_object_object_add(ev, "results", summary), 0) ||
	    host->route(host, j, ev, status, &err) < 0) {
		set(j->res, WORK_FAIL, "results %s, but the event was not routed: %s", status,
		    err.msg);
		return -1;
	}
	return 0;
}

static void run_one(struct qase_api *api, struct action_host *host, struct action_job *j)
{
	json_object *ev = json_tokener_parse(j->event_json), *fetch = NULL;
	const struct source_cfg *src = ev ? source_of(host->cfg, ev) : NULL;
	struct fetch_outcome fo;
	struct err err;
	char routed[16];

	if (!ev || !json_object_is_type(ev, json_type_object)) {
		set(j->res, WORK_PERMANENT, "the stored event is not a JSON object");
		goto done;
	}
	json_object_object_get_ex(j->params, "fetch", &fetch);
	if (!json_object_get_boolean(fetch) || !src || !src->api_token) {
		/* waits only for its turn, or results are no longer pulled */
		if (host->route(host, j, ev, "", &err) < 0)
			set(j->res, WORK_FAIL, "not routed: %s", err.msg);
		else
			set(j->res, WORK_OK, "routed");
		goto done;
	}
	if (store_routed_get(host->store, j->delivery_id, routed, &err) < 0) {
		set(j->res, WORK_FAIL, "%s", err.msg);
		goto done;
	}
	if (strcmp(routed, "complete") == 0) {
		set(j->res, WORK_OK, "routed with its results already");
		goto done;
	}
	long long deadline = j->received_ms + src->api_wait_s * 1000LL;
	struct fetch_io io = {
		.api = api, .src = src, .st = host->store, .write = write_through, .write_ctx = host
	};
	int tries = 0;
	while (fetch_run(&io, j->project, j->run_id, j->delivery_id, deadline, &fo) < 0 &&
	       fo.verdict == QASE_RETRY && fo.retry_after_ms >= 0 &&
	       fo.retry_after_ms <= SHORT_RETRY_MS &&
	       clock_wall_ms() + fo.retry_after_ms < deadline && ++tries < SHORT_RETRIES)
		; /* qase_get paces the next request past the Retry-After */
	if (fo.complete) {
		if (route_with(host, j, ev, src, "complete") == 0)
			set(j->res, WORK_OK, "%s", fo.detail);
		goto done;
	}
	long long now = clock_wall_ms();
	int last = j->attempt >= host->cfg->retry_max_attempts;
	if (fo.verdict == QASE_RETRY && now < deadline && !last) {
		set(j->res, WORK_FAIL, "%s", fo.detail);
		j->res->retry_after_ms = fo.retry_after_ms;
		j->res->retry_within_ms = deadline - now;
		goto done;
	}
	/* give up waiting: the actions run with what is stored */
	long long stored = 0;
	if (store_results_count(host->store, j->project, j->run_id, &stored, &err) < 0) {
		set(j->res, WORK_FAIL, "%s", err.msg);
		goto done;
	}
	const char *status = stored ? "partial" : "unavailable";
	if (strcmp(routed, status) != 0 && route_with(host, j, ev, src, status) < 0)
		goto done;
	set(j->res, WORK_PERMANENT, "results %s (%s); the event's actions ran with them: %s", status,
	    fo.verdict == QASE_PERMANENT ? "the API refused"
	    : now >= deadline            ? "api.wait_s passed"
					 : "out of attempts",
	    fo.detail);
done:
	json_object_put(ev);
}

static void results_run(void *state, struct action_host *host, struct action_job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_one(state, host, &jobs[i]);
}

const struct action_ops action_results_ops = {
	.name = "results",
	.summary = "runbridge's own: holds an event until its run's results are stored",
	.internal = 1,
	.parse = results_parse,
	.render = results_render,
	.free_spec = results_free_spec,
	.pool = results_pool,
	.open = results_open,
	.close = results_close,
	.run = results_run,
};
