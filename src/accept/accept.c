/*
 * accept: normalizing and routing in the request thread, in receipt order
 * per run, with the registry read only where a run may exist (accept.h).
 */
#include "accept/accept.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_stream.h"
#include "event/event.h"
#include "rules/rules.h"
#include "actions/action.h"
#include "core/clock.h"
#include "store/ingest.h"
#include "store/results.h"
#include "store/store.h"

enum {
	RECENT_SLOTS = 1 << 16,      /* committed ids remembered (512 KiB) */
	BLOOM_FIRST_LOG2 = 23,       /* first filter: 2^23 bits (1 MiB) ... */
	BLOOM_BITS_PER_RUN_LOG2 = 3, /* ... for 2^20 runs: 8 bits a run */
	BLOOM_PROBES = 5,            /* about 2% false positives when full */
	BLOOM_MAX = 12,
	INFLIGHT_BUCKETS = 256,
	LANE_MAX = 256,
};

/* One Bloom filter; bits set with atomic OR, read without a lock. */
struct bloom {
	uint64_t nbits;    /* a power of two */
	uint64_t capacity; /* runs it is sized for */
	_Atomic uint64_t added;
	_Atomic uint64_t words[];
};

/* A run's in-flight slot: lives on the stack of the request holding it. */
struct slot {
	uint64_t hash;
	const char *project;
	long long run_id;
	struct slot *next;
};

struct acceptor {
	struct ingest *in;
	char *data_dir;

	pthread_rwlock_t rules_lock;
	const struct rules *rules;

	_Atomic uint64_t recent[RECENT_SLOTS];

	pthread_mutex_t bloom_mu; /* adding a filter */
	_Atomic(struct bloom *) blooms[BLOOM_MAX];
	_Atomic size_t nblooms;

	pthread_mutex_t inflight_mu;
	pthread_cond_t inflight_freed;
	size_t inflight_waiting;
	struct slot *inflight[INFLIGHT_BUCKETS];

	pthread_mutex_t pool_mu; /* read-only connections not in use */
	struct store **pool;
	size_t npool, cappool;

	/* runs with an event waiting in the results stage: their later events
	 * wait behind it (run hash -> how many) */
	pthread_mutex_t waiting_mu;
	struct waiting *waiting[INFLIGHT_BUCKETS];
};

struct waiting {
	uint64_t hash;
	long n;
	struct waiting *next;
};

/* ---- hashing ------------------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
	/* splitmix64's finalizer: every input bit reaches every output bit */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t run_hash(const char *project, long long run_id)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	if (project)
		h = fnv(h, project, strlen(project));
	h = fnv(h, "", 1);
	h = fnv(h, &run_id, sizeof(run_id));
	return mix(h);
}

/* Never 0, which marks an empty recent slot. */
static uint64_t delivery_hash(const char *project, long long run_id, const char *id)
{
	uint64_t h = mix(fnv(run_hash(project, run_id), id, strlen(id)));
	return h ? h : 1;
}

/* ---- committed ids ------------------------------------------------------- */

static int recent_has(struct acceptor *a, uint64_t h)
{
	return atomic_load_explicit(&a->recent[h & (RECENT_SLOTS - 1)], memory_order_acquire) == h;
}

static void recent_put(struct acceptor *a, uint64_t h)
{
	atomic_store_explicit(&a->recent[h & (RECENT_SLOTS - 1)], h, memory_order_release);
}

/* ---- the runs the registry may hold -------------------------------------- */

static struct bloom *bloom_new(unsigned log2_bits)
{
	uint64_t nbits = 1ULL << log2_bits;
	struct bloom *b = calloc(1, sizeof(*b) + nbits / 8);
	if (!b)
		return NULL;
	b->nbits = nbits;
	b->capacity = nbits >> BLOOM_BITS_PER_RUN_LOG2;
	return b;
}

static int bloom_test(const struct bloom *b, uint64_t h)
{
	uint64_t step = (h >> 32) | 1;
	for (int i = 0; i < BLOOM_PROBES; i++, h += step) {
		uint64_t bit = h & (b->nbits - 1);
		uint64_t w = atomic_load_explicit(&b->words[bit / 64], memory_order_relaxed);
		if (!(w & (1ULL << (bit % 64))))
			return 0;
	}
	return 1;
}

static void bloom_set(struct bloom *b, uint64_t h)
{
	uint64_t step = (h >> 32) | 1;
	for (int i = 0; i < BLOOM_PROBES; i++, h += step) {
		uint64_t bit = h & (b->nbits - 1);
		atomic_fetch_or_explicit(&b->words[bit / 64], 1ULL << (bit % 64),
					 memory_order_relaxed);
	}
}

static int run_maybe_known(struct acceptor *a, const char *project, long long run_id)
{
	uint64_t h = run_hash(project, run_id);
	size_t n = atomic_load_explicit(&a->nblooms, memory_order_acquire);

	for (size_t i = 0; i < n; i++)
		if (bloom_test(atomic_load_explicit(&a->blooms[i], memory_order_relaxed), h))
			return 1;
	return 0;
}

/* Records a run in the newest filter, adding a larger one when that one is
 * full.  Out of memory, or past the last filter, the newest takes more
 * than it was sized for: more false positives, never a false negative. */
static void run_known(struct acceptor *a, const char *project, long long run_id)
{
	size_t n = atomic_load_explicit(&a->nblooms, memory_order_acquire);
	struct bloom *b = atomic_load_explicit(&a->blooms[n - 1], memory_order_relaxed);

	if (atomic_load_explicit(&b->added, memory_order_relaxed) >= b->capacity && n < BLOOM_MAX) {
		pthread_mutex_lock(&a->bloom_mu);
		n = atomic_load_explicit(&a->nblooms, memory_order_acquire);
		b = atomic_load_explicit(&a->blooms[n - 1], memory_order_relaxed);
		if (atomic_load_explicit(&b->added, memory_order_relaxed) >= b->capacity &&
		    n < BLOOM_MAX) {
			struct bloom *next = bloom_new(BLOOM_FIRST_LOG2 + (unsigned)n);
			if (next) {
				atomic_store_explicit(&a->blooms[n], next, memory_order_relaxed);
				atomic_store_explicit(&a->nblooms, n + 1, memory_order_release);
				b = next;
			}
		}
		pthread_mutex_unlock(&a->bloom_mu);
	}
	bloom_set(b, run_hash(project, run_id));
	atomic_fetch_add_explicit(&b->added, 1, memory_order_relaxed);
}

static void learn_run(void *ctx, const char *project, long long run_id)
{
	run_known(ctx, project, run_id); /* "" and NULL hash alike */
}

/* ---- one run at a time --------------------------------------------------- */

static int same_run(const struct slot *s, uint64_t h, const char *project, long long run_id)
{
	return s->hash == h && s->run_id == run_id &&
	       strcmp(s->project ? s->project : "", project ? project : "") == 0;
}

/* Waits until no other request holds the run, then holds it. */
static void inflight_take(struct acceptor *a, struct slot *me, const char *project, long long run_id)
{
	uint64_t h = run_hash(project, run_id);
	struct slot **head = &a->inflight[h % INFLIGHT_BUCKETS];

	*me = (struct slot){ .hash = h, .project = project, .run_id = run_id };
	pthread_mutex_lock(&a->inflight_mu);
	for (;;) {
		const struct slot *s = *head;
		while (s && !same_run(s, h, project, run_id))
			s = s->next;
		if (!s)
			break;
		a->inflight_waiting++;
		pthread_cond_wait(&a->inflight_freed, &a->inflight_mu);
		a->inflight_waiting--;
	}
	me->next = *head;
	*head = me;
	pthread_mutex_unlock(&a->inflight_mu);
}

static void inflight_give(struct acceptor *a, struct slot *me)
{
	struct slot **p = &a->inflight[me->hash % INFLIGHT_BUCKETS];

	pthread_mutex_lock(&a->inflight_mu);
	while (*p != me)
		p = &(*p)->next;
	*p = me->next;
	if (a->inflight_waiting)
		pthread_cond_broadcast(&a->inflight_freed);
	pthread_mutex_unlock(&a->inflight_mu);
}

/* ---- runs waiting for their results --------------------------------------- */

/* Adds delta to the run's count and returns the new count (0 when out of
 * memory: the event is then routed at once, out of the run's order). */
static long waiting_add(struct acceptor *a, const char *project, long long run_id, long delta)
{
	uint64_t h = run_hash(project, run_id);
	struct waiting **p = &a->waiting[h % INFLIGHT_BUCKETS], *w;
	long n = 0;

	pthread_mutex_lock(&a->waiting_mu);
	while (*p && (*p)->hash != h)
		p = &(*p)->next;
	if (!*p && delta > 0 && (w = calloc(1, sizeof(*w)))) {
		w->hash = h;
		*p = w;
	}
	if ((w = *p)) {
		w->n += delta;
		if ((n = w->n) <= 0) {
			*p = w->next;
			free(w);
			n = 0;
		}
	}
	pthread_mutex_unlock(&a->waiting_mu);
	return n;
}

static void learn_waiting(void *ctx, const char *project, long long run_id)
{
	waiting_add(ctx, project, run_id, 1);
}

/* ---- read-only connections ----------------------------------------------- */

static struct store *pool_get(struct acceptor *a, struct err *err)
{
	struct store *st = NULL;

	pthread_mutex_lock(&a->pool_mu);
	if (a->npool)
		st = a->pool[--a->npool];
	pthread_mutex_unlock(&a->pool_mu);
	if (!st && store_open(&st, a->data_dir, STORE_RO, err) < 0)
		return NULL;
	return st;
}

static void pool_put(struct acceptor *a, struct store *st)
{
	pthread_mutex_lock(&a->pool_mu);
	if (a->npool == a->cappool) {
		size_t cap = a->cappool ? a->cappool * 2 : 8;
		struct store **v = realloc(a->pool, cap * sizeof(*v));
		if (v) {
			a->pool = v;
			a->cappool = cap;
		}
	}
	if (a->npool < a->cappool) {
		a->pool[a->npool++] = st;
		st = NULL;
	}
	pthread_mutex_unlock(&a->pool_mu);
	store_close(st);
}

/* The registry's run, or NULL (*out) when it has none. */
static int prior_run(struct acceptor *a, const char *project, long long run_id, json_object **out,
		     struct err *err)
{
	char *text = NULL;
	struct store *st;
	int rc;

	*out = NULL;
	if (run_id <= 0 || !run_maybe_known(a, project, run_id))
		return 0;
	if (!(st = pool_get(a, err)))
		return -1;
	rc = store_run_get(st, project, run_id, &text, err);
	pool_put(a, st);
	if (text)
		*out = json_tokener_parse(text);
	free(text);
	return rc;
}

/* ---- routing ------------------------------------------------------------- */

static const char *to_json(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							 JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Calls to one target for one run go in receipt order whatever rule queued
 * them (create before finish); other actions are ordered per rule action. */
static void lane_of(char *lane, const struct routed_action *ra, const char *project, long long run_id)
{
	json_object *target;

	if (json_object_object_get_ex(ra->params, "target", &target))
		snprintf(lane, LANE_MAX, "%s#%lld/%s:%s", project ? project : "", run_id, ra->kind,
			 json_object_get_string(target));
	else
		snprintf(lane, LANE_MAX, "%s#%lld/%s/%d", project ? project : "", run_id, ra->rule,
			 ra->index);
}

/* The job rows of routed actions, their lanes in the same block (the
 * caller frees it); NULL when out of memory. */
static struct ingest_job *jobs_of(const struct route_result *rr, const char *project, long long run_id)
{
	struct ingest_job *jobs = calloc(rr->n, sizeof(*jobs) + LANE_MAX);
	char *lanes = (char *)(jobs + rr->n);

	for (size_t i = 0; jobs && i < rr->n; i++) {
		const struct routed_action *ra = &rr->v[i];
		char *lane = lanes + i * LANE_MAX;
		lane_of(lane, ra, project, run_id);
		jobs[i] = (struct ingest_job){
			.rule = ra->rule,
			.index = ra->index,
			.kind = ra->kind,
			.params_json = to_json(ra->params),
			.lane = lane,
		};
	}
	return jobs;
}

struct delivery {
	const struct source_cfg *src;
	const char *id, *project, *raw;
	json_object *json;
	size_t raw_len;
	long long run_id, received_ms;
};

/* The one job of an event that waits in the results stage. */
static void results_job(struct ingest_job *job, char *lane, int fetch, const struct delivery *dv)
{
	snprintf(lane, LANE_MAX, "%s#%lld/results", dv->project ? dv->project : "", dv->run_id);
	*job = (struct ingest_job){
		.rule = "results",
		.index = 0,
		.kind = "results",
		.params_json = fetch ? "{\"fetch\":true}" : "{\"fetch\":false}",
		.lane = lane,
	};
}

/* Normalizes, routes and writes one delivery (its run held, if any).  An
 * event whose results are pulled, and any later event of its run while one
 * waits, is stored with one results job instead of its actions: the
 * results stage routes it (accept_route_deferred). */
static int route_write(struct acceptor *a, const struct delivery *dv, int *duplicate, struct err *err)
{
	json_object *prior = NULL, *ev = NULL;
	struct route_result rr = { 0 };
	struct ingest_job *jobs = NULL, wait_job;
	char wait_lane[LANE_MAX];
	int rc = -1, fetch = 0, wait = 0;

	if (dv->run_id > 0) {
		fetch = source_fetches(dv->src, event_name_of(dv->json));
		wait = fetch || waiting_add(a, dv->project, dv->run_id, 0) > 0;
	}
	if (prior_run(a, dv->project, dv->run_id, &prior, err) < 0 ||
	    event_normalize(&ev, dv->json, dv->src, dv->id, dv->received_ms, prior, err) < 0 ||
	    (!wait && a->rules && rules_route(a->rules, ev, &rr, err) < 0))
		goto done;
	if (rr.n && !(jobs = jobs_of(&rr, dv->project, dv->run_id))) {
		err_set(err, "out of memory");
		goto done;
	}
	/* only a run event may change what later run events are enriched
	 * with: a plan's or a review's id is not a run id */
	struct ingest_rows rows = {
		.d = { .id = dv->id,
		       .source = dv->src->name,
		       .type = event_name_of(dv->json),
		       .project = dv->project,
		       .run_id = dv->run_id,
		       .received_ms = dv->received_ms,
		       .raw = dv->raw,
		       .raw_len = dv->raw_len,
		       .event_json = to_json(ev) },
		.run_json = event_is_run(dv->json) ? to_json(json_object_object_get(ev, "run")) : NULL,
		.jobs = jobs,
		.njobs = rr.n,
	};
	if (wait) {
		results_job(&wait_job, wait_lane, fetch, dv);
		rows.jobs = &wait_job;
		rows.njobs = 1;
		waiting_add(a, dv->project, dv->run_id, 1);
	}
	rc = ingest_write(a->in, &rows, duplicate, err);
	if (rc == 0 && !*duplicate)
		api_notify_delivery(ev, rr.matched, rr.n_matched);
	if (wait && (rc < 0 || *duplicate))
		waiting_add(a, dv->project, dv->run_id, -1);
done:
	free(jobs);
	route_result_free(&rr);
	json_object_put(prior);
	json_object_put(ev);
	return rc;
}

int accept_delivery(struct acceptor *a, const struct source_cfg *src, const char *id,
		    json_object *delivery, const char *raw, size_t raw_len, long long received_ms,
		    int *duplicate, struct err *err)
{
	struct delivery dv = {
		.src = src,
		.id = id,
		.json = delivery,
		.raw = raw,
		.raw_len = raw_len,
		.received_ms = received_ms,
		.project = event_project_of(delivery, src),
		.run_id = event_run_id_of(delivery),
	};
	uint64_t key = delivery_hash(dv.project, dv.run_id, id);
	struct event_bytes bytes = { raw, raw_len };
	struct slot slot;
	int rc = 0;

	*duplicate = recent_has(a, key);
	if (*duplicate)
		goto done;
	event_keep_bytes(delivery, &bytes); /* "raw" is the delivery as received */
	pthread_rwlock_rdlock(&a->rules_lock);
	if (dv.run_id > 0) {
		inflight_take(a, &slot, dv.project, dv.run_id);
		/* the same body may have committed while we waited for its run */
		*duplicate = recent_has(a, key);
	}
	if (!*duplicate && (rc = route_write(a, &dv, duplicate, err)) == 0) {
		recent_put(a, key);
		if (!*duplicate && dv.run_id > 0 && event_is_run(delivery))
			run_known(a, dv.project, dv.run_id);
	} else if (rc < 0) {
		err->code = ERR_UNAVAILABLE;
	}
	if (dv.run_id > 0)
		inflight_give(a, &slot);
	pthread_rwlock_unlock(&a->rules_lock);
done:
	json_object_put(delivery);
	return rc;
}

/* ---- deferred routing (the results stage) -------------------------------- */

struct deferred {
	const struct action_job *job;
	const char *status;     /* "complete", "partial", "unavailable", or "routed" */
	const char *event_json; /* the event with its results, or NULL: as stored */
	const struct ingest_job *jobs;
	size_t njobs;
	int first, skipped; /* out */
};

/* A routed event is routed again only with better results (a replay that
 * completed what was partial); once complete, or routed without results,
 * never again. */
static int route_again(const char *before, const char *now)
{
	return !*before || (strcmp(before, "complete") != 0 && strcmp(before, "routed") != 0 &&
			    strcmp(before, now) != 0);
}

static int write_deferred(struct ingest_tx *tx, void *ctx, struct err *err)
{
	struct deferred *w = ctx;
	struct store *st = ingest_tx_store(tx);
	const struct action_job *j = w->job;
	char before[16];
	long long seq;

	if (store_routed_get(st, j->delivery_id, before, err) < 0)
		return -1;
	w->first = !before[0];
	w->skipped = !route_again(before, w->status);
	if (w->skipped)
		return 0;
	if (store_routed_put(st, j->project, j->run_id, j->delivery_id, w->status, w->event_json,
			     clock_wall_ms(), err) < 0 ||
	    store_delivery_seq(st, j->project, j->run_id, j->delivery_id, &seq, err) < 0)
		return -1;
	if (seq < 0)
		return err_set(err, "delivery %s is not in the store", j->delivery_id);
	for (size_t i = 0; i < w->njobs; i++)
		if (ingest_tx_job(tx, seq, &w->jobs[i], err) < 0)
			return -1;
	return 0;
}

int accept_route_deferred(void *ctx, const struct action_job *j, json_object *event,
			  const char *status, struct err *err)
{
	struct acceptor *a = ctx;
	struct route_result rr = { 0 };
	struct ingest_job *jobs = NULL;
	struct slot slot;
	int rc = -1;

	pthread_rwlock_rdlock(&a->rules_lock);
	if (j->run_id > 0)
		inflight_take(a, &slot, j->project, j->run_id);
	if (a->rules && rules_route(a->rules, event, &rr, err) < 0)
		goto done;
	if (rr.n && !(jobs = jobs_of(&rr, j->project, j->run_id))) {
		err_set(err, "out of memory");
		goto done;
	}
	struct deferred w = {
		.job = j,
		.status = *status ? status : "routed",
		.event_json = *status ? to_json(event) : NULL,
		.jobs = jobs,
		.njobs = rr.n,
	};
	rc = ingest_call(a->in, write_deferred, &w, err);
	if (rc == 0 && w.first)
		api_notify_matched(rr.matched, rr.n_matched);
	/* the run's next events route at once when none waits any more */
	if (rc == 0 && w.first && j->run_id > 0)
		waiting_add(a, j->project, j->run_id, -1);
done:
	if (j->run_id > 0)
		inflight_give(a, &slot);
	pthread_rwlock_unlock(&a->rules_lock);
	free(jobs);
	route_result_free(&rr);
	return rc;
}

/* ---- life ---------------------------------------------------------------- */

const struct rules *acceptor_set_rules(struct acceptor *a, const struct rules *rules)
{
	pthread_rwlock_wrlock(&a->rules_lock);
	const struct rules *old = a->rules;
	a->rules = rules;
	pthread_rwlock_unlock(&a->rules_lock);
	return old;
}

int acceptor_with_rules(struct acceptor *a, int (*fn)(void *ctx, const struct rules *rules), void *ctx)
{
	pthread_rwlock_rdlock(&a->rules_lock);
	int rc = fn(ctx, a->rules);
	pthread_rwlock_unlock(&a->rules_lock);
	return rc;
}

int acceptor_new(struct acceptor **out, const char *data_dir, struct ingest *in,
		 const struct rules *rules, struct err *err)
{
	struct acceptor *a = calloc(1, sizeof(*a));
	struct bloom *first = bloom_new(BLOOM_FIRST_LOG2);
	pthread_rwlockattr_t attr;
	struct store *st;

	*out = NULL;
	if (!a || !first || !(a->data_dir = strdup(data_dir))) {
		free(a);
		free(first);
		return err_set(err, "out of memory");
	}
	a->in = in;
	a->rules = rules;
	a->blooms[0] = first;
	a->nblooms = 1;
	/* a reload must not wait behind a steady stream of deliveries */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&a->rules_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&a->bloom_mu, NULL);
	pthread_mutex_init(&a->inflight_mu, NULL);
	pthread_cond_init(&a->inflight_freed, NULL);
	pthread_mutex_init(&a->pool_mu, NULL);
	pthread_mutex_init(&a->waiting_mu, NULL);
	if (!(st = pool_get(a, err))) {
		acceptor_free(a);
		return -1;
	}
	int rc = store_runs_each(st, learn_run, a, err);
	if (rc == 0)
		rc = store_deferred_each(st, learn_waiting, a, err);
	pool_put(a, st);
	if (rc < 0) {
		acceptor_free(a);
		return -1;
	}
	*out = a;
	return 0;
}

void acceptor_free(struct acceptor *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->npool; i++)
		store_close(a->pool[i]);
	free(a->pool);
	for (size_t i = 0; i < a->nblooms; i++)
		free(a->blooms[i]);
	pthread_rwlock_destroy(&a->rules_lock);
	pthread_mutex_destroy(&a->bloom_mu);
	pthread_mutex_destroy(&a->inflight_mu);
	pthread_cond_destroy(&a->inflight_freed);
	pthread_mutex_destroy(&a->pool_mu);
	for (size_t i = 0; i < INFLIGHT_BUCKETS; i++)
		for (struct waiting *w = a->waiting[i], *next; w; w = next) {
			next = w->next;
			free(w);
		}
	pthread_mutex_destroy(&a->waiting_mu);
	free(a->data_dir);
	free(a);
}
