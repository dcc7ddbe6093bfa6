/*
 * dispatch: lanes, timers, the in-memory window and the worker pools.
 *
 * One mutex guards all scheduling state.  Lanes live in a hash table; a lane
 * whose head may run now sits on the ready list, one whose head waits for a
 * retry sits in a min-heap by due time, one whose head is with a worker is
 * busy and on neither.  Workers take jobs from their pool's queue, run them
 * without the lock, and report outcomes under it.
 */
#include "dispatch/dispatch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "actions/action.h"
#include "api/api_stream.h"
#include "dispatch/worker.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/ingest.h"

struct lane;

struct entry {
	long long id;
	int attempts;
	long long next_ms;
	struct pool *pool; /* NULL: a kind this build does not know */
	struct lane *lane;
	struct entry *next;  /* in the lane */
	struct entry *qnext; /* in the pool queue */
};

enum lane_where { LANE_IDLE, LANE_READY, LANE_TIMER, LANE_BUSY };

struct lane {
	char *key;
	unsigned long hash;
	struct entry *head, *tail;
	enum lane_where where;
	size_t hidx;        /* LANE_TIMER: index in the heap */
	struct lane *rnext; /* LANE_READY: next on the ready list */
	struct lane *hnext; /* hash chain */
};

struct pool {
	const char *kind;
	const struct action_ops *ops;
	struct dispatch *d;
	size_t batch_max;
	int nthreads;
	int nice;      /* > 0: the threads' CPU priority */
	atomic_int up; /* the kind's backend is reachable */
	pthread_t *threads;
	struct worker **workers;
	pthread_cond_t cv;
	struct entry *qhead, *qtail;
};

/* The configurations a reload installed, newest first (see
 * dispatch_set_config).  Nodes are only added while running, so a reader
 * needs no lock: it follows pointers that never change once published. */
struct cfg_rev {
	const struct config *cfg;
	struct cfg_rev *older;
};

struct dispatch {
	const struct config *cfg;       /* the start-up one: pools, window, store */
	_Atomic(struct cfg_rev *) live; /* reloadable keys: targets, retry, exec */
	struct store *st;               /* the scheduler thread's connection */
	struct ingest *in;

	pthread_mutex_t mu;
	pthread_cond_t cv; /* wakes the scheduler thread */
	pthread_t thread;
	int started, stopping;

	struct lane **buckets;
	size_t nbuckets, nlanes;
	struct lane *ready_head, *ready_tail;
	struct lane **heap;
	size_t nheap, heapcap;

	size_t count, running;
	long long max_loaded;
	int overflow;
	unsigned int seed;

	struct pool *pools; /* one per registered kind */
	size_t npools;

	dispatch_router_fn router; /* deferred events (the results stage) */
	void *router_ctx;
};

/* ---- lanes ---------------------------------------------------------------- */

static unsigned long hash_str(const char *s)
{
	unsigned long h = 1469598103934665603UL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211UL;
	return h;
}

static int grow_buckets(struct dispatch *d)
{
	size_t n = d->nbuckets ? d->nbuckets * 2 : 1024;
	struct lane **b = calloc(n, sizeof(*b));
	if (!b)
		return -1;
	for (size_t i = 0; i < d->nbuckets; i++) {
		for (struct lane *l = d->buckets[i], *next; l; l = next) {
			next = l->hnext;
			l->hnext = b[l->hash & (n - 1)];
			b[l->hash & (n - 1)] = l;
		}
	}
	free(d->buckets);
	d->buckets = b;
	d->nbuckets = n;
	return 0;
}

static struct lane *lane_get(struct dispatch *d, const char *key)
{
	unsigned long h = hash_str(key);
	struct lane *l;

	if (d->nbuckets) {
		for (l = d->buckets[h & (d->nbuckets - 1)]; l; l = l->hnext)
			if (l->hash == h && strcmp(l->key, key) == 0)
				return l;
	}
	if (d->nlanes >= d->nbuckets && grow_buckets(d) < 0)
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l || !(l->key = strdup(key))) {
		free(l);
		return NULL;
	}
	l->hash = h;
	l->hnext = d->buckets[h & (d->nbuckets - 1)];
	d->buckets[h & (d->nbuckets - 1)] = l;
	d->nlanes++;
	return l;
}

static void lane_drop(struct dispatch *d, struct lane *l)
{
	struct lane **p = &d->buckets[l->hash & (d->nbuckets - 1)];
	while (*p != l)
		p = &(*p)->hnext;
	*p = l->hnext;
	d->nlanes--;
	free(l->key);
	free(l);
}

/* ---- the timer heap (min by head->next_ms) -------------------------------- */

static long long due(const struct lane *l)
{
	return l->head->next_ms;
}

static void heap_swap(struct dispatch *d, size_t a, size_t b)
{
	struct lane *t = d->heap[a];
	d->heap[a] = d->heap[b];
	d->heap[b] = t;
	d->heap[a]->hidx = a;
	d->heap[b]->hidx = b;
}

static void heap_up(struct dispatch *d, size_t i)
{
	while (i > 0 && due(d->heap[(i - 1) / 2]) > due(d->heap[i])) {
		heap_swap(d, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct dispatch *d, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < d->nheap && due(d->heap[l]) < due(d->heap[m]))
			m = l;
		if (r < d->nheap && due(d->heap[r]) < due(d->heap[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(d, i, m);
		i = m;
	}
}

static int heap_push(struct dispatch *d, struct lane *l)
{
	if (d->nheap == d->heapcap) {
		size_t cap = d->heapcap ? d->heapcap * 2 : 256;
		struct lane **h = realloc(d->heap, cap * sizeof(*h));
		if (!h)
			return -1;
		d->heap = h;
		d->heapcap = cap;
	}
	l->hidx = d->nheap;
	d->heap[d->nheap++] = l;
	heap_up(d, l->hidx);
	l->where = LANE_TIMER;
	return 0;
}

static struct lane *heap_pop(struct dispatch *d)
{
	struct lane *top = d->heap[0];
	heap_swap(d, 0, d->nheap - 1);
	d->nheap--;
	if (d->nheap)
		heap_down(d, 0);
	top->where = LANE_IDLE;
	return top;
}

/* ---- scheduling ------------------------------------------------------------ */

static void ready_push(struct dispatch *d, struct lane *l)
{
	l->where = LANE_READY;
	l->rnext = NULL;
	if (d->ready_tail)
		d->ready_tail->rnext = l;
	else
		d->ready_head = l;
	d->ready_tail = l;
}

/* Puts an idle lane with a head where it belongs: ready now, or a timer. */
static void schedule(struct dispatch *d, struct lane *l, long long now)
{
	if (l->head->next_ms <= now || heap_push(d, l) < 0) {
		ready_push(d, l);
	} else {
		pthread_cond_signal(&d->cv);
	}
}

static struct pool *pool_for(struct dispatch *d, const char *kind)
{
	for (size_t i = 0; i < d->npools; i++)
		if (strcmp(d->pools[i].kind, kind) == 0)
			return &d->pools[i];
	return NULL;
}

static void add_entry(struct dispatch *d, const struct job_ref *r, long long now)
{
	struct lane *l = lane_get(d, r->lane);
	struct entry *e = calloc(1, sizeof(*e));

	if (!l || !e) {
		free(e);
		log_msg(LOG_ERROR, "out of memory queueing job %lld; it runs after a restart", r->id);
		return;
	}
	e->id = r->id;
	e->attempts = r->attempts;
	e->next_ms = r->next_ms;
	e->pool = pool_for(d, r->kind);
	e->lane = l;
	if (l->tail)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
	d->count++;
	if (l->head == e && l->where == LANE_IDLE)
		schedule(d, l, now);
}

/* Fills the attempt record the caller hands to the writer.  rec->detail
 * points into res, which must outlive the ingest_attempts call. */
static void record(struct attempt_rec *rec, const struct entry *e, enum job_state state,
		   const struct work_result *res)
{
	*rec = (struct attempt_rec){
		.job_id = e->id,
		.attempt = e->attempts,
		.state = state,
		.next_ms = state == JOB_RETRYING ? e->next_ms : 0,
		.started_ms = res->started_ms,
		.finished_ms = res->finished_ms,
		.ok = res->outcome == WORK_OK,
		.detail = res->detail,
	};
	api_notify_job(&(struct api_job_event){ .id = e->id,
						.state = (int)state,
						.attempts = e->attempts,
						.ok = res->outcome == WORK_OK,
						.kind = res->action,
						.target = res->target,
						.rule = res->rule,
						.delivery_id = res->delivery_id,
						.detail = res->detail,
						.at_ms = res->finished_ms });
}

static long long backoff_ms(struct dispatch *d, int attempts)
{
	const struct config *cfg = dispatch_config(d);
	long long delay = cfg->retry_base_ms;
	for (int i = 1; i < attempts && delay < cfg->retry_max_ms; i++)
		delay *= 2;
	if (delay > cfg->retry_max_ms)
		delay = cfg->retry_max_ms;
	/* "Equal jitter": at least half the delay, so retries stay spaced. */
	return delay / 2 + rand_r(&d->seed) % (delay / 2 + 1);
}

/* Removes a finished head and lets the lane move on. */
static void finish_head(struct dispatch *d, struct lane *l, long long now)
{
	struct entry *e = l->head;
	l->head = e->next;
	if (!l->head)
		l->tail = NULL;
	free(e);
	d->count--;
	l->where = LANE_IDLE;
	if (l->head)
		schedule(d, l, now);
	else
		lane_drop(d, l);
}

static void log_outcome(const char *msg, enum log_level lvl, const struct entry *e,
			const struct work_result *res)
{
	char job[24], attempt[16];
	snprintf(job, sizeof(job), "%lld", e->id);
	snprintf(attempt, sizeof(attempt), "%d", e->attempts);
	log_kv(lvl, msg, "delivery", res->delivery_id[0] ? res->delivery_id : NULL, "rule",
	       res->rule[0] ? res->rule : NULL, "action", res->action, "job", job, "attempt",
	       attempt, "detail", res->detail, NULL);
}

static const char *const outcome_names[] = {
	[WORK_OK] = "ok",
	[WORK_FAIL] = "failed",
	[WORK_PERMANENT] = "failed",
	[WORK_DEFER] = "deferred",
};

/* Applies an outcome to the job's lane.  Returns 1 when it filled *rec (an
 * attempt to record), 0 for a deferral, which is not an attempt. */
static int apply(struct dispatch *d, struct entry *e, const struct work_result *res,
		 struct attempt_rec *rec)
{
	struct lane *l = e->lane;
	long long now = clock_wall_ms();
	int dead = res->outcome == WORK_PERMANENT ||
		   (res->outcome == WORK_FAIL &&
		    e->attempts + 1 >= dispatch_config(d)->retry_max_attempts);

	metrics_attempt(res->action ? res->action : "other", res->target,
			dead ? "dead" : outcome_names[res->outcome],
			(double)(res->finished_ms - res->started_ms) / 1e3);

	switch (res->outcome) {
	case WORK_DEFER:
		e->next_ms = now + 1000;
		l->where = LANE_IDLE;
		schedule(d, l, now);
		return 0;
	case WORK_OK:
		e->attempts++;
		log_outcome("action succeeded", LOG_DEBUG, e, res);
		record(rec, e, JOB_DONE, res);
		finish_head(d, l, now);
		return 1;
	case WORK_FAIL:
	case WORK_PERMANENT:
		e->attempts++;
		if (res->outcome == WORK_FAIL &&
		    e->attempts < dispatch_config(d)->retry_max_attempts) {
			long long wait = backoff_ms(d, e->attempts);
			if (res->retry_after_ms > wait)
				wait = res->retry_after_ms;
			if (res->retry_within_ms > 0 && wait > res->retry_within_ms)
				wait = res->retry_within_ms;
			e->next_ms = now + wait;
			log_outcome("action failed, retry scheduled", LOG_WARN, e, res);
			record(rec, e, JOB_RETRYING, res);
			l->where = LANE_IDLE;
			schedule(d, l, now);
			return 1;
		}
		log_outcome("action failed, moved to dead letters", LOG_ERROR, e, res);
		record(rec, e, JOB_DEAD, res);
		finish_head(d, l, now);
		return 1;
	}
	return 0;
}

/* Hands every ready lane's head to its pool. */
static void pump(struct dispatch *d)
{
	while (d->ready_head && !d->stopping) {
		struct lane *l = d->ready_head;
		struct entry *e = l->head;
		d->ready_head = l->rnext;
		if (!d->ready_head)
			d->ready_tail = NULL;
		if (!e->pool) {
			struct work_result res = { .outcome = WORK_PERMANENT };
			struct attempt_rec rec;
			snprintf(res.detail, sizeof(res.detail), "unknown action kind (job %lld)",
				 e->id);
			if (apply(d, e, &res, &rec))
				ingest_attempts(d->in, &rec, 1);
			continue;
		}
		l->where = LANE_BUSY;
		e->qnext = NULL;
		if (e->pool->qtail)
			e->pool->qtail->qnext = e;
		else
			e->pool->qhead = e;
		e->pool->qtail = e;
		pthread_cond_signal(&e->pool->cv);
	}
}

void dispatch_push(void *ctx, const struct job_ref *jobs, size_t n)
{
	struct dispatch *d = ctx;
	long long now = clock_wall_ms();

	pthread_mutex_lock(&d->mu);
	for (size_t i = 0; i < n; i++) {
		if (jobs[i].id <= d->max_loaded)
			continue; /* the scheduler read it from the store already */
		if (d->overflow || d->count >= d->cfg->queue_window) {
			d->overflow = 1; /* on disk; read back as the window drains */
			continue;
		}
		add_entry(d, &jobs[i], now);
		d->max_loaded = jobs[i].id;
	}
	pump(d);
	pthread_mutex_unlock(&d->mu);
}

/* ---- workers ------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = worker_pool_of(w);
	struct dispatch *d = p->d;
	struct entry **batch = calloc(p->batch_max, sizeof(*batch));
	struct work_item *items = calloc(p->batch_max, sizeof(*items));
	struct attempt_rec *recs = calloc(p->batch_max, sizeof(*recs));

	if (!batch || !items || !recs) {
		log_msg(LOG_ERROR, "out of memory starting a %s worker", p->kind);
		goto done;
	}
	/* nice is per thread on Linux and a child inherits its spawning
	 * thread's, so this covers the worker and every process it starts
	 * (exec: hooks yield the CPU to intake). */
	if (p->nice > 0 && setpriority(PRIO_PROCESS, (id_t)gettid(), p->nice) < 0)
		log_kv(LOG_WARN, "worker priority (nice) not applied", "kind", p->kind, "error",
		       strerror(errno), NULL);
	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (!d->stopping && !p->qhead)
			pthread_cond_wait(&p->cv, &d->mu);
		if (d->stopping)
			break;
		size_t n = 0;
		while (p->qhead && n < p->batch_max) {
			batch[n] = p->qhead;
			p->qhead = p->qhead->qnext;
			items[n].job_id = batch[n]->id;
			items[n].attempt = batch[n]->attempts + 1;
			memset(&items[n].res, 0, sizeof(items[n].res));
			n++;
		}
		if (!p->qhead)
			p->qtail = NULL;
		d->running += n;
		pthread_mutex_unlock(&d->mu);

		int deferred = worker_run(w, items, n);

		size_t m = 0;
		pthread_mutex_lock(&d->mu);
		for (size_t i = 0; i < n; i++)
			m += apply(d, batch[i], &items[i].res, &recs[m]);
		/* One writer request for the whole batch's outcomes, queued
		 * before the lanes move on, so a job's records reach the
		 * store in the order they happened. */
		if (m)
			ingest_attempts(d->in, recs, m);
		d->running -= n;
		pump(d);
		if (deferred && !d->stopping) {
			/* The backend is down: new work must not make us hammer it. */
			pthread_mutex_unlock(&d->mu);
			struct timespec ts = { 0, 500 * 1000000 };
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&d->mu);
		}
	}
	pthread_mutex_unlock(&d->mu);
done:
	free(batch);
	free(items);
	free(recs);
	return NULL;
}

int dispatch_redis_up(struct dispatch *d)
{
	struct pool *p = pool_for(d, "redis");
	return p ? atomic_load(&p->up) : 0;
}

void pool_set_up(struct pool *p, int up)
{
	atomic_store(&p->up, up);
}

const struct action_ops *pool_ops(const struct pool *p)
{
	return p->ops;
}

size_t pool_batch(const struct pool *p)
{
	return p->batch_max;
}

struct ingest *dispatch_ingest(struct dispatch *d)
{
	return d->in;
}

struct dispatch *pool_dispatch(struct pool *p)
{
	return p->d;
}

/* ---- the scheduler thread ------------------------------------------------- */

static int load_ref(void *ctx, const struct job_ref *r)
{
	struct dispatch *d = ctx;
	add_entry(d, r, clock_wall_ms());
	if (r->id > d->max_loaded)
		d->max_loaded = r->id;
	return 0;
}

/* Called without the lock held (the store read runs unlocked). */
static int add_requeued_locked(void *ctx, const struct job_ref *r)
{
	struct dispatch *d = ctx;
	char job[24];

	pthread_mutex_lock(&d->mu);
	add_entry(d, r, clock_wall_ms());
	pthread_mutex_unlock(&d->mu);
	snprintf(job, sizeof(job), "%lld", r->id);
	log_kv(LOG_INFO, "job re-queued by replay", "job", job, "lane", r->lane, NULL);
	return 0;
}

/* Reads more open jobs from the store when the window has drained. */
static void refill(struct dispatch *d)
{
	size_t want = d->cfg->queue_window - d->count, got = 0;
	struct err err;

	if (store_jobs_open(d->st, d->max_loaded, want, load_ref, d, &got, &err) < 0) {
		log_kv(LOG_ERROR, "cannot read queued jobs", "error", err.msg, NULL);
		return;
	}
	if (got < want)
		d->overflow = 0;
}

static void fire_timers(struct dispatch *d, long long now)
{
	while (d->nheap && due(d->heap[0]) <= now)
		ready_push(d, heap_pop(d));
}

static void *sched_main(void *arg)
{
	struct dispatch *d = arg;
	long long next_poll = 0;
	struct err err;

	pthread_mutex_lock(&d->mu);
	while (!d->stopping) {
		long long now = clock_wall_ms();
		fire_timers(d, now);
		if (d->overflow && d->count < d->cfg->queue_window / 2)
			refill(d);
		pump(d);
		if (now >= next_poll) {
			pthread_mutex_unlock(&d->mu);
			/* Jobs `runbridge replay` re-queued from another process. */
			if (store_jobs_take_requeued(d->st, add_requeued_locked, d, &err) < 0)
				log_kv(LOG_WARN, "cannot read replayed jobs", "error", err.msg, NULL);
			pthread_mutex_lock(&d->mu);
			pump(d);
			next_poll = clock_wall_ms() + 1000;
		}
		long long wake = next_poll;
		if (d->nheap && due(d->heap[0]) < wake)
			wake = due(d->heap[0]);
		long long wait = wake - clock_wall_ms();
		if (wait > 0) {
			struct timespec ts = clock_deadline(wait);
			pthread_cond_timedwait(&d->cv, &d->mu, &ts);
		}
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* ---- life cycle ----------------------------------------------------------- */

/* One pool per registered kind, shaped by the kind: a slow kind never
 * holds up another. */
static int make_pools(struct dispatch *d)
{
	size_t n = action_count();

	if (!(d->pools = calloc(n, sizeof(*d->pools))))
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct action_ops *ops = action_at(i);
		struct action_pool shape = { .threads = 1, .batch = 1 };
		ops->pool(d->cfg, &shape);
		d->pools[i] = (struct pool){
			.kind = ops->name,
			.ops = ops,
			.d = d,
			.batch_max = shape.batch ? shape.batch : 1,
			.nthreads = shape.threads > 0 ? shape.threads : 1,
			.nice = shape.nice,
		};
		metrics_attempt_declare(ops->name, "");
		for (size_t t = 0; t < d->cfg->n_targets; t++)
			if (strcmp(d->cfg->targets[t].kind, ops->name) == 0)
				metrics_attempt_declare(ops->name, d->cfg->targets[t].name);
		d->npools++;
	}
	return 0;
}

int dispatch_set_config(struct dispatch *d, const struct config *cfg)
{
	struct cfg_rev *r = malloc(sizeof(*r));

	if (!r)
		return -1;
	r->cfg = cfg;
	r->older = atomic_load(&d->live);
	atomic_store(&d->live, r);
	return 0;
}

const struct config *dispatch_config(struct dispatch *d)
{
	return atomic_load(&d->live)->cfg;
}

const struct target_cfg *dispatch_target(struct dispatch *d, const char *kind, const char *name)
{
	const struct target_cfg *t = NULL;

	for (struct cfg_rev *r = atomic_load(&d->live); r && !t; r = r->older)
		t = config_target(r->cfg, kind, name);
	return t;
}

int dispatch_new(struct dispatch **out, const struct config *cfg, struct err *err)
{
	struct dispatch *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (!d)
		return err_set(err, "out of memory");
	d->cfg = cfg;
	if (dispatch_set_config(d, cfg) < 0) {
		free(d);
		return err_set(err, "out of memory");
	}
	d->seed = (unsigned int)clock_mono_ms();
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	if (store_open(&d->st, cfg->data_dir, STORE_RW, err) < 0) {
		dispatch_free(d);
		return -1;
	}
	if (make_pools(d) < 0) {
		dispatch_free(d);
		return err_set(err, "out of memory");
	}
	for (size_t i = 0; i < d->npools; i++)
		pthread_cond_init(&d->pools[i].cv, NULL);
	*out = d;
	return 0;
}

static int start_pool(struct pool *p, struct err *err)
{
	p->threads = calloc((size_t)p->nthreads, sizeof(*p->threads));
	p->workers = calloc((size_t)p->nthreads, sizeof(*p->workers));
	if (!p->threads || !p->workers)
		return err_set(err, "out of memory");
	for (int i = 0; i < p->nthreads; i++) {
		if (worker_new(&p->workers[i], p, p->d->cfg, err) < 0)
			return -1;
		if (pthread_create(&p->threads[i], NULL, worker_main, p->workers[i]) == 0) {
			char name[16];
			snprintf(name, sizeof(name), "rb-%s", p->kind);
			pthread_setname_np(p->threads[i], name);
		} else {
			worker_free(p->workers[i]);
			p->workers[i] = NULL;
			return err_set(err, "cannot start a %s worker thread", p->kind);
		}
	}
	return 0;
}

int dispatch_start(struct dispatch *d, struct ingest *in, struct err *err)
{
	size_t got = 0;

	d->in = in;
	/* Flags set by a replay while we were down: the scan below sees those
	 * jobs as open already. */
	if (store_jobs_clear_requeued(d->st, err) < 0)
		return -1;
	pthread_mutex_lock(&d->mu);
	int rc = store_jobs_open(d->st, 0, d->cfg->queue_window, load_ref, d, &got, err);
	if (got >= d->cfg->queue_window)
		d->overflow = 1;
	pthread_mutex_unlock(&d->mu);
	if (rc < 0)
		return -1;
	if (got)
		log_msg(LOG_INFO, "resuming %zu queued action(s)%s", got,
			d->overflow ? " (more wait on disk)" : "");
	for (size_t i = 0; i < d->npools; i++)
		if (start_pool(&d->pools[i], err) < 0)
			return -1;
	if (pthread_create(&d->thread, NULL, sched_main, d) != 0)
		return err_set(err, "cannot start the scheduler thread");
	pthread_setname_np(d->thread, "rb-sched");
	d->started = 1;
	pthread_mutex_lock(&d->mu);
	pump(d);
	pthread_mutex_unlock(&d->mu);
	return 0;
}

void dispatch_stats(struct dispatch *d, struct dispatch_stats *out)
{
	pthread_mutex_lock(&d->mu);
	out->in_memory = d->count;
	out->running = d->running;
	out->window_full = d->overflow;
	pthread_mutex_unlock(&d->mu);
}

static int join_by(pthread_t t, const struct timespec *deadline)
{
	return pthread_timedjoin_np(t, NULL, deadline) == 0 ? 0 : -1;
}

int dispatch_stop(struct dispatch *d, int timeout_s)
{
	struct timespec deadline = clock_deadline((long long)timeout_s * 1000);
	int rc = 0;

	pthread_mutex_lock(&d->mu);
	d->stopping = 1;
	pthread_cond_broadcast(&d->cv);
	for (size_t i = 0; i < d->npools; i++)
		pthread_cond_broadcast(&d->pools[i].cv);
	pthread_mutex_unlock(&d->mu);
	if (d->started && join_by(d->thread, &deadline) < 0)
		rc = -1;
	d->started = 0;
	for (size_t i = 0; i < d->npools; i++) {
		struct pool *p = &d->pools[i];
		for (int t = 0; p->workers && t < p->nthreads; t++) {
			if (!p->workers[t])
				continue;
			if (join_by(p->threads[t], &deadline) < 0) {
				rc = -1;
				continue;
			}
			worker_free(p->workers[t]);
			p->workers[t] = NULL;
		}
	}
	if (rc < 0)
		log_msg(LOG_WARN, "actions still running after %d s; they run again after a restart",
			timeout_s);
	return rc;
}

void dispatch_free(struct dispatch *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nbuckets; i++) {
		for (struct lane *l = d->buckets[i], *next; l; l = next) {
			next = l->hnext;
			for (struct entry *e = l->head, *en; e; e = en) {
				en = e->next;
				free(e);
			}
			free(l->key);
			free(l);
		}
	}
	for (size_t i = 0; i < d->npools; i++) {
		free(d->pools[i].threads);
		free(d->pools[i].workers);
		pthread_cond_destroy(&d->pools[i].cv);
	}
	free(d->pools);
	free(d->buckets);
	free(d->heap);
	for (struct cfg_rev *r = atomic_load(&d->live), *older; r; r = older) {
		older = r->older;
		free(r);
	}
	store_close(d->st);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d);
}

void dispatch_set_router(struct dispatch *d, dispatch_router_fn fn, void *ctx)
{
	d->router = fn;
	d->router_ctx = ctx;
}

int dispatch_route(struct dispatch *d, const struct action_job *j, json_object *event,
		   const char *status, struct err *err)
{
	if (!d->router)
		return err_set(err, "no router: deferred events cannot be routed");
	return d->router(d->router_ctx, j, event, status, err);
}
