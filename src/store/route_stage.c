/*
 * route_stage: tickets in stripes, read-only connections in a pool, and the
 * work that used to sit on the writer thread (see route_stage.h for why the
 * layers stay true to the store).
 *
 * Lock order: a stripe, then the connection pool or the writer's queue (the
 * submit callback).  The writer takes a stripe only, never with its own
 * queue lock held.  The rules lock is a writer-preferring rwlock: routing
 * holds it shared, a reload waits for the routings in progress.
 */
#include "store/route_stage.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"

#define STRIPES 64
#define LANE_MAX 256

struct stripe {
	pthread_mutex_t mu;
	pthread_cond_t changed;    /* a ticket left or went to the writer */
	struct route_ticket *head, *tail;
};

struct route_stage {
	char *data_dir;
	pthread_rwlock_t rules_lock;
	const struct rules *rules;
	pthread_mutex_t conn_mu;
	struct store **conns;      /* idle read-only connections */
	size_t nconns, cap;
	struct stripe stripes[STRIPES];
};

/* ---- life cycle ---------------------------------------------------------- */

int route_stage_new(struct route_stage **out, const char *data_dir,
		    const struct rules *rules, struct err *err)
{
	struct route_stage *rs = calloc(1, sizeof(*rs));
	pthread_rwlockattr_t attr;

	*out = NULL;
	if (!rs || !(rs->data_dir = strdup(data_dir))) {
		free(rs);
		return err_set(err, "out of memory");
	}
	rs->rules = rules;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&rs->rules_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&rs->conn_mu, NULL);
	for (size_t i = 0; i < STRIPES; i++) {
		pthread_mutex_init(&rs->stripes[i].mu, NULL);
		pthread_cond_init(&rs->stripes[i].changed, NULL);
	}
	*out = rs;
	return 0;
}

void route_stage_free(struct route_stage *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->nconns; i++)
		store_close(rs->conns[i]);
	free(rs->conns);
	for (size_t i = 0; i < STRIPES; i++) {
		pthread_mutex_destroy(&rs->stripes[i].mu);
		pthread_cond_destroy(&rs->stripes[i].changed);
	}
	pthread_mutex_destroy(&rs->conn_mu);
	pthread_rwlock_destroy(&rs->rules_lock);
	free(rs->data_dir);
	free(rs);
}

const struct rules *route_stage_set_rules(struct route_stage *rs,
					  const struct rules *rules)
{
	pthread_rwlock_wrlock(&rs->rules_lock);
	const struct rules *old = rs->rules;
	rs->rules = rules;
	pthread_rwlock_unlock(&rs->rules_lock);
	return old;
}

/* ---- read-only connections ----------------------------------------------- */

static struct store *conn_take(struct route_stage *rs, struct err *err)
{
	struct store *st = NULL;

	pthread_mutex_lock(&rs->conn_mu);
	if (rs->nconns)
		st = rs->conns[--rs->nconns];
	pthread_mutex_unlock(&rs->conn_mu);
	if (!st && store_open(&st, rs->data_dir, STORE_RO, err) < 0)
		return NULL;
	return st;
}

/* At most one connection per thread that ever routed at once is kept. */
static void conn_give(struct route_stage *rs, struct store *st)
{
	pthread_mutex_lock(&rs->conn_mu);
	if (rs->nconns == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 16;
		struct store **v = realloc(rs->conns, cap * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&rs->conn_mu);
			store_close(st);
			return;
		}
		rs->conns = v;
		rs->cap = cap;
	}
	rs->conns[rs->nconns++] = st;
	pthread_mutex_unlock(&rs->conn_mu);
}

/* ---- tickets ------------------------------------------------------------- */

static unsigned stripe_of(const char *project, long long run_id)
{
	unsigned long h = 1469598103934665603UL;
	for (const char *s = project; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211UL;
	h = (h ^ (unsigned long)run_id) * 1099511628211UL;
	return (unsigned)(h >> 32) % STRIPES;
}

static int same_run(const struct route_ticket *t, const char *project,
		    long long run_id)
{
	return t->rows.d.run_id == run_id && strcmp(t->key_project, project) == 0;
}

/* A live ticket with this delivery's key (its group is not finished). */
static struct route_ticket *find_live(struct stripe *s, const char *project,
				      long long run_id, const char *id)
{
	for (struct route_ticket *t = s->head; t; t = t->next)
		if (same_run(t, project, run_id) && strcmp(t->rows.d.id, id) == 0)
			return t;
	return NULL;
}

/* The newest live run.* ticket of the run that may still commit. */
static struct route_ticket *newest_run(struct stripe *s, const char *project,
				       long long run_id)
{
	for (struct route_ticket *t = s->tail; t; t = t->prev)
		if (t->rows.run_json && !t->failed && !t->doomed &&
		    same_run(t, project, run_id))
			return t;
	return NULL;
}

static void link_tail(struct stripe *s, struct route_ticket *t)
{
	t->prev = s->tail;
	t->next = NULL;
	if (s->tail)
		s->tail->next = t;
	else
		s->head = t;
	s->tail = t;
	t->linked = 1;
}

static void unlink_ticket(struct stripe *s, struct route_ticket *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		s->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		s->tail = t->prev;
	t->prev = t->next = NULL;
	t->linked = 0;
}

/* ---- preparing one delivery ---------------------------------------------- */

static const char *to_json(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						 JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* The prior run: from the newest live run.* ticket (t->basis), else from the
 * store.  Called with the stripe locked. */
static int prior_run(struct stripe *s, struct store *st, struct route_ticket *t,
		     json_object **out, struct err *err)
{
	const struct delivery_rec *d = &t->rows.d;
	char *text = NULL;

	*out = NULL;
	if (d->run_id <= 0)
		return 0;
	t->basis = newest_run(s, t->key_project, d->run_id);
	if (t->basis) {
		*out = json_tokener_parse(t->basis->rows.run_json);
		return 0;
	}
	if (store_run_get(st, d->project, d->run_id, &text, err) < 0)
		return -1;
	if (text)
		*out = json_tokener_parse(text);
	free(text);
	return 0;
}

/* One job row per routed action.  Calls to one target for one run go in
 * receipt order whatever rule queued them (create before finish). */
static int build_jobs(struct route_ticket *t, struct err *err)
{
	const struct delivery_rec *d = &t->rows.d;
	size_t n = t->rr.n;

	if (!n)
		return 0;
	t->jobs = calloc(n, sizeof(*t->jobs) + LANE_MAX);
	if (!t->jobs)
		return err_set(err, "out of memory");
	char *lanes = (char *)(t->jobs + n);
	for (size_t i = 0; i < n; i++) {
		struct routed_action *a = &t->rr.v[i];
		char *lane = lanes + i * LANE_MAX;
		json_object *target;
		if (json_object_object_get_ex(a->params, "target", &target))
			snprintf(lane, LANE_MAX, "%s#%lld/%s:%s", t->key_project,
				 d->run_id, a->kind, json_object_get_string(target));
		else
			snprintf(lane, LANE_MAX, "%s#%lld/%s/%d", t->key_project,
				 d->run_id, a->rule, a->index);
		t->jobs[i] = (struct ingest_job){
			.rule = a->rule, .index = a->index, .kind = a->kind,
			.params_json = to_json(a->params), .lane = lane,
		};
	}
	t->rows.jobs = t->jobs;
	t->rows.njobs = n;
	return 0;
}

static int route(struct route_stage *rs, struct route_ticket *t, struct err *err)
{
	int rc = 0;

	pthread_rwlock_rdlock(&rs->rules_lock);
	if (rs->rules)
		rc = rules_route(rs->rules, t->ev, &t->rr, err);
	pthread_rwlock_unlock(&rs->rules_lock);
	if (rc < 0 || build_jobs(t, err) < 0)
		return -1;
	t->rows.d.event_json = to_json(t->ev);
	return 0;
}

/* Under the stripe lock: the prior run, the normalized event, and for a
 * run.* event the registry row later tickets of the run read. */
static int enrich(struct stripe *s, struct store *st, struct route_ticket *t,
		  const struct route_input *in, struct err *err)
{
	json_object *prior = NULL;
	int rc = -1;

	if (prior_run(s, st, t, &prior, err) < 0 ||
	    event_normalize(&t->ev, in->delivery, in->src, in->id,
			    in->received_ms, prior, err) < 0)
		goto done;
	/* only a run event may change what later run events are enriched
	 * with: a plan's or a review's id is not a run id */
	if (event_is_run(in->delivery)) {
		const char *run = to_json(json_object_object_get(t->ev, "run"));
		if (!(t->run_text = strdup(run))) {
			err_set(err, "out of memory");
			goto done;
		}
		t->rows.run_json = t->run_text;
	}
	rc = 0;
done:
	json_object_put(prior);
	return rc;
}

static void ticket_init(struct route_ticket *t, const struct route_input *in)
{
	const char *project = event_project_of(in->delivery, in->src);

	memset(t, 0, sizeof(*t));
	t->rows.d = (struct delivery_rec){
		.id = in->id, .source = in->src->name,
		.type = event_name_of(in->delivery), .project = project,
		.run_id = event_run_id_of(in->delivery),
		.received_ms = in->received_ms, .raw = in->raw,
		.raw_len = in->raw_len,
	};
	t->key_project = project ? project : "";
	t->stripe = stripe_of(t->key_project, t->rows.d.run_id);
}

/* Under the stripe lock: waits out a live ticket with the same key, then
 * asks the store.  1 duplicate, 0 new, -1 error. */
static int dedup(struct stripe *s, struct store *st, struct route_ticket *t,
		 struct err *err)
{
	const struct delivery_rec *d = &t->rows.d;

	while (find_live(s, t->key_project, d->run_id, d->id))
		pthread_cond_wait(&s->changed, &s->mu);
	return store_delivery_exists(st, d->project, d->run_id, d->id, err);
}

/* Under the stripe lock: t leaves the stage.  When it failed, whatever was
 * enriched from it is doomed first. */
static void settle(struct stripe *s, struct route_ticket *t)
{
	for (struct route_ticket *n = t->next; n; n = n->next) {
		if (n->basis != t)
			continue;
		if (t->failed)
			n->doomed = 1;
		/* nobody may compare against t's address once its stack is
		 * reused */
		n->basis = NULL;
	}
	unlink_ticket(s, t);
	pthread_cond_broadcast(&s->changed);
}

/* Under the stripe lock: waits until every earlier ticket of t's run went
 * to the writer (or left). */
static void wait_turn(struct stripe *s, struct route_ticket *t)
{
	for (;;) {
		struct route_ticket *p = t->prev;
		while (p && (p->submitted ||
			     !same_run(p, t->key_project, t->rows.d.run_id)))
			p = p->prev;
		if (!p)
			return;
		pthread_cond_wait(&s->changed, &s->mu);
	}
}

/* Dedup and enrichment, under the lock: t gets its place in the stripe.
 * 0 admitted, 1 a duplicate (submitted already), -1 error. */
static int admit(struct route_stage *rs, struct stripe *s,
		 struct route_ticket *t, const struct route_input *in,
		 route_submit_fn submit, void *ctx, struct err *err)
{
	struct store *st = conn_take(rs, err);
	int rc;

	if (!st)
		return -1;
	pthread_mutex_lock(&s->mu);
	rc = dedup(s, st, t, err);
	if (rc == 1) {
		t->duplicate = 1;
		rc = submit(ctx, t, err) < 0 ? -1 : 1;
	} else if (rc == 0 && (rc = enrich(s, st, t, in, err)) == 0) {
		link_tail(s, t);
	}
	pthread_mutex_unlock(&s->mu);
	conn_give(rs, st);
	return rc;
}

int route_stage_prepare(struct route_stage *rs, struct route_ticket *t,
			const struct route_input *in, route_submit_fn submit,
			void *ctx, struct err *err)
{
	ticket_init(t, in);
	struct stripe *s = &rs->stripes[t->stripe];
	int rc = admit(rs, s, t, in, submit, ctx, err);

	if (rc != 0)
		return rc < 0 ? -1 : 0;
	rc = route(rs, t, err);
	pthread_mutex_lock(&s->mu);
	if (rc == 0) {
		wait_turn(s, t);
		rc = submit(ctx, t, err);
	}
	if (rc == 0) {
		t->submitted = 1;
		pthread_cond_broadcast(&s->changed);
	} else {
		t->failed = 1;
		settle(s, t);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* ---- the writer's side ---------------------------------------------------- */

int route_stage_doomed(struct route_stage *rs, struct route_ticket *t)
{
	struct stripe *s = &rs->stripes[t->stripe];

	pthread_mutex_lock(&s->mu);
	int doomed = t->doomed;
	pthread_mutex_unlock(&s->mu);
	return doomed;
}

void route_stage_fail(struct route_stage *rs, struct route_ticket *t)
{
	struct stripe *s = &rs->stripes[t->stripe];

	pthread_mutex_lock(&s->mu);
	t->failed = 1;
	/* what was enriched from it may be in this very group: doom it now,
	 * the rerun of the group must not store it */
	for (struct route_ticket *n = t->next; n; n = n->next)
		if (n->basis == t)
			n->doomed = 1;
	pthread_mutex_unlock(&s->mu);
}

void route_stage_done(struct route_stage *rs, struct route_ticket *t)
{
	struct stripe *s = &rs->stripes[t->stripe];

	pthread_mutex_lock(&s->mu);
	settle(s, t);
	pthread_mutex_unlock(&s->mu);
}

void route_stage_clear(struct route_ticket *t)
{
	route_result_free(&t->rr);
	json_object_put(t->ev);
	free(t->jobs);
	free(t->run_text);
	t->ev = NULL;
	t->jobs = NULL;
	t->run_text = NULL;
}
