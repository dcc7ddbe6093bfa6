/*
 * metrics: fixed tables of atomic counters.  Histograms use the same
 * buckets everywhere (seconds): fine enough for a commit (sub-millisecond)
 * and coarse enough for a hook (many seconds).
 */
#include "core/metrics.h"
#include "core/buf.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const types[] = {
	"run.started", "run.completed",      "run.aborted", "run.updated",
	"run.deleted", "run.report_changed", "other",
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

static const int statuses[] = { 202, 400, 401, 405, 408, 413, 415, 429, 503 };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))

static const char *const outcomes[] = { "ok", "failed", "dead", "deferred" };
#define NOUT (sizeof(outcomes) / sizeof(outcomes[0]))

static const double bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
				 0.25,   0.5,   1,      2.5,   5,    10,    30,   60 };
#define NB (sizeof(bounds) / sizeof(bounds[0]))

struct histogram {
	atomic_ullong bucket[NB]; /* non-cumulative; summed when rendered */
	atomic_ullong count;
	atomic_ullong sum_us;
};

static atomic_ullong deliveries[NTYPES][NSTATUS];
static atomic_ullong duplicates;
static struct histogram commit_hist;
static atomic_ullong commit_items;
/*
 * Attempts by (kind, target): a series is claimed on first use (or when
 * dispatch declares it) and never freed.  Kinds come from the registry and
 * targets from the config, so the set is small; past the bound a series
 * counts as kind "other", target "".  Lookups scan the published prefix
 * without a lock; claiming takes one.
 */
#define SERIES_MAX 128
#define KINDS_MAX  32

struct series {
	char kind[32], target[64];
	size_t k; /* index into kind_names */
	atomic_ullong n[NOUT];
};

static struct series series[SERIES_MAX + 1]; /* the last: "other" */
static atomic_size_t n_series;
static char kind_names[KINDS_MAX + 1][32]; /* the last: "other" */
static atomic_size_t n_kind_names;
static struct histogram action_hist[KINDS_MAX + 1];
static pthread_mutex_t series_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_llong exec_running;

/* The index of name, or n when it is not there. */
static size_t find(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (name && strcmp(names[i], name) == 0)
			return i;
	return n;
}

/* Same, but an unknown name counts as the last entry ("other"). */
static size_t index_of(const char *const *names, size_t n, const char *name)
{
	size_t i = find(names, n, name);
	return i < n ? i : n - 1;
}

static void observe(struct histogram *h, double seconds)
{
	size_t i = 0;
	while (i < NB && seconds > bounds[i])
		i++;
	if (i < NB)
		atomic_fetch_add(&h->bucket[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_us, (unsigned long long)(seconds * 1e6));
}

void metrics_delivery(const char *type, int status)
{
	for (size_t s = 0; s < NSTATUS; s++)
		if (statuses[s] == status)
			atomic_fetch_add(&deliveries[index_of(types, NTYPES, type)][s], 1);
}

void metrics_duplicate(void)
{
	atomic_fetch_add(&duplicates, 1);
}

void metrics_commit(double seconds, size_t batch)
{
	observe(&commit_hist, seconds);
	atomic_fetch_add(&commit_items, batch);
}

/* Called with series_mu held. */
static size_t kind_index(const char *kind)
{
	size_t n = atomic_load(&n_kind_names);

	for (size_t i = 0; i < n; i++)
		if (strcmp(kind_names[i], kind) == 0)
			return i;
	if (n == KINDS_MAX)
		return KINDS_MAX;
	snprintf(kind_names[n], sizeof(kind_names[n]), "%s", kind);
	atomic_store(&n_kind_names, n + 1);
	return n;
}

static struct series *series_scan(const char *kind, const char *target, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(series[i].kind, kind) == 0 && strcmp(series[i].target, target) == 0)
			return &series[i];
	return NULL;
}

static struct series *series_get(const char *kind, const char *target)
{
	struct series *s;

	if (!target)
		target = "";
	if ((s = series_scan(kind, target, atomic_load(&n_series))))
		return s;
	pthread_mutex_lock(&series_mu);
	size_t n = atomic_load(&n_series);
	if (!(s = series_scan(kind, target, n))) {
		s = &series[n < SERIES_MAX ? n : SERIES_MAX];
		if (n < SERIES_MAX) {
			snprintf(s->kind, sizeof(s->kind), "%s", kind);
			snprintf(s->target, sizeof(s->target), "%s", target);
			s->k = kind_index(s->kind);
			atomic_store(&n_series, n + 1);
		} else if (!s->kind[0]) {
			snprintf(s->kind, sizeof(s->kind), "other");
			s->k = KINDS_MAX;
		}
	}
	pthread_mutex_unlock(&series_mu);
	return s;
}

void metrics_attempt_declare(const char *kind, const char *target)
{
	series_get(kind, target);
}

void metrics_attempt(const char *kind, const char *target, const char *outcome, double seconds)
{
	size_t o = find(outcomes, NOUT, outcome);
	if (o == NOUT)
		return;
	struct series *s = series_get(kind ? kind : "other", target);
	atomic_fetch_add(&s->n[o], 1);
	if (strcmp(outcomes[o], "deferred") != 0)
		observe(&action_hist[s->k], seconds);
}

void metrics_exec_running(int delta)
{
	atomic_fetch_add(&exec_running, delta);
}

/* ---- rendering ------------------------------------------------------------ */

/* The rendered page is a few tens of KiB; past this something is wrong. */
#define RENDER_MAX (4u << 20)

static void put(struct buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A failed put sticks in the buffer: metrics_render checks once. */
static void put(struct buf *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(o, fmt, ap);
	va_end(ap);
}

static void put_histogram(struct buf *o, const char *name, const char *labels, struct histogram *h)
{
	unsigned long long cum = 0;
	const char *sep = labels[0] ? "," : "";
	for (size_t i = 0; i < NB; i++) {
		cum += atomic_load(&h->bucket[i]);
		put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, bounds[i], cum);
	}
	put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, atomic_load(&h->count));
	const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
	put(o, "%s_sum%s%s%s %.6f\n", name, open, labels, close, atomic_load(&h->sum_us) / 1e6);
	put(o, "%s_count%s%s%s %llu\n", name, open, labels, close, atomic_load(&h->count));
}

static void put_deliveries(struct buf *o)
{
	put(o, "# HELP runbridge_deliveries_total Webhook deliveries by event type and HTTP status.\n"
	       "# TYPE runbridge_deliveries_total counter\n");
	for (size_t t = 0; t < NTYPES; t++)
		for (size_t s = 0; s < NSTATUS; s++)
			put(o,
			    "runbridge_deliveries_total{source=\"qase\",type=\"%s\",status=\"%d\"} %llu\n",
			    types[t], statuses[s], atomic_load(&deliveries[t][s]));
	put(o,
	    "# HELP runbridge_duplicates_total Redeliveries recognised by delivery id.\n"
	    "# TYPE runbridge_duplicates_total counter\n"
	    "runbridge_duplicates_total %llu\n",
	    atomic_load(&duplicates));
	put(o, "# HELP runbridge_store_commit_seconds Duration of one group commit (fsync included).\n"
	       "# TYPE runbridge_store_commit_seconds histogram\n");
	put_histogram(o, "runbridge_store_commit_seconds", "", &commit_hist);
	put(o,
	    "# HELP runbridge_store_committed_total Requests committed by group commits.\n"
	    "# TYPE runbridge_store_committed_total counter\n"
	    "runbridge_store_committed_total %llu\n",
	    atomic_load(&commit_items));
}

static void put_actions(struct buf *o, const struct metrics_gauges *g)
{
	put(o,
	    "# HELP runbridge_queue_jobs Actions by state.\n"
	    "# TYPE runbridge_queue_jobs gauge\n"
	    "runbridge_queue_jobs{state=\"pending\"} %lld\n"
	    "runbridge_queue_jobs{state=\"retrying\"} %lld\n"
	    "runbridge_queue_jobs{state=\"dead\"} %lld\n"
	    "runbridge_queue_jobs{state=\"done\"} %lld\n",
	    g->pending, g->retrying, g->dead, g->done);
	put(o,
	    "# HELP runbridge_queue_in_memory Queued actions held in memory (the rest wait on disk).\n"
	    "# TYPE runbridge_queue_in_memory gauge\n"
	    "runbridge_queue_in_memory %lld\n"
	    "# HELP runbridge_actions_running Attempts in progress.\n"
	    "# TYPE runbridge_actions_running gauge\n"
	    "runbridge_actions_running %lld\n",
	    g->in_memory, g->running);
	put(o, "# HELP runbridge_action_attempts_total Action attempts by kind and outcome.\n"
	       "# TYPE runbridge_action_attempts_total counter\n");
	size_t ns = atomic_load(&n_series), nk = atomic_load(&n_kind_names);
	for (size_t k = 0; k <= SERIES_MAX; k++) {
		const struct series *s = &series[k];
		if (k == SERIES_MAX && !s->kind[0])
			continue;
		if (k >= ns && k < SERIES_MAX)
			continue;
		for (size_t i = 0; i < NOUT; i++)
			put(o,
			    "runbridge_action_attempts_total{kind=\"%s\",target=\"%s\",outcome=\"%s\"} %llu\n",
			    s->kind[0] ? s->kind : "other", s->target, outcomes[i],
			    atomic_load(&s->n[i]));
	}
	put(o, "# HELP runbridge_action_duration_seconds Duration of action attempts.\n"
	       "# TYPE runbridge_action_duration_seconds histogram\n");
	for (size_t k = 0; k <= KINDS_MAX; k++) {
		char labels[64];
		if (k >= nk && k < KINDS_MAX)
			continue;
		if (k == KINDS_MAX && !atomic_load(&action_hist[k].count))
			continue;
		snprintf(labels, sizeof(labels), "kind=\"%s\"",
			 k < KINDS_MAX ? kind_names[k] : "other");
		put_histogram(o, "runbridge_action_duration_seconds", labels, &action_hist[k]);
	}
	put(o,
	    "# HELP runbridge_exec_running Exec hooks running now.\n"
	    "# TYPE runbridge_exec_running gauge\n"
	    "runbridge_exec_running %lld\n",
	    atomic_load(&exec_running));
	put(o,
	    "# HELP runbridge_redis_connected 1 when the Redis connection is up.\n"
	    "# TYPE runbridge_redis_connected gauge\n"
	    "runbridge_redis_connected %d\n",
	    g->redis_up);
}

static void put_qasphere(struct buf *o);
static void put_retention(struct buf *o);
static void put_checkpoints(struct buf *o);

char *metrics_render(const struct metrics_gauges *g)
{
	struct buf o;

	buf_init(&o, RENDER_MAX);
	if (buf_reserve(&o, 16384) < 0)
		return NULL;
	put_deliveries(&o);
	put_actions(&o, g);
	put_qasphere(&o);
	put_retention(&o);
	put_checkpoints(&o);
	put(&o,
	    "# HELP runbridge_build_info Build information.\n"
	    "# TYPE runbridge_build_info gauge\n"
	    "runbridge_build_info{version=\"%s\"} 1\n",
	    RB_VERSION);
	if (buf_error(&o)) {
		buf_free(&o);
		return NULL;
	}
	return buf_detach(&o, NULL);
}

/* ---- QA Sphere ------------------------------------------------------------ */

/* Unmapped results by target: a slot is claimed on first use and never
 * freed; targets come from the config, so 32 is plenty, and the excess
 * counts in the last slot as "other". */
#define QS_TARGETS 32

static struct {
	char target[64];
	atomic_ullong n;
} qs_unmapped[QS_TARGETS + 1];
static atomic_size_t n_qs_unmapped;
static pthread_mutex_t qs_mu = PTHREAD_MUTEX_INITIALIZER;

void metrics_qasphere_unmapped(const char *target, size_t n)
{
	size_t i, count;

	if (!target)
		target = "";
	pthread_mutex_lock(&qs_mu);
	count = atomic_load(&n_qs_unmapped);
	for (i = 0; i < count; i++)
		if (strcmp(qs_unmapped[i].target, target) == 0)
			break;
	if (i == count && count < QS_TARGETS) {
		snprintf(qs_unmapped[i].target, sizeof(qs_unmapped[i].target), "%s", target);
		atomic_store(&n_qs_unmapped, count + 1);
	} else if (i == count) {
		snprintf(qs_unmapped[QS_TARGETS].target, sizeof(qs_unmapped[0].target), "other");
		i = QS_TARGETS;
	}
	pthread_mutex_unlock(&qs_mu);
	atomic_fetch_add(&qs_unmapped[i].n, n);
}

static void put_qasphere(struct buf *o)
{
	size_t count = atomic_load(&n_qs_unmapped);

	put(o, "# HELP runbridge_qasphere_unmapped_total Qase results no QA Sphere test case took.\n"
	       "# TYPE runbridge_qasphere_unmapped_total counter\n");
	for (size_t i = 0; i <= QS_TARGETS; i++) {
		if (i >= count && (i < QS_TARGETS || !atomic_load(&qs_unmapped[i].n)))
			continue;
		put(o, "runbridge_qasphere_unmapped_total{target=\"%s\"} %llu\n",
		    qs_unmapped[i].target, atomic_load(&qs_unmapped[i].n));
	}
}

/* ---- retention ------------------------------------------------------------ */

static atomic_ullong ret_deliveries, ret_jobs, ret_pages;

void metrics_retention(long long n_deliveries, long long jobs, long long pages)
{
	atomic_fetch_add(&ret_deliveries, (unsigned long long)(n_deliveries > 0 ? n_deliveries : 0));
	atomic_fetch_add(&ret_jobs, (unsigned long long)(jobs > 0 ? jobs : 0));
	atomic_fetch_add(&ret_pages, (unsigned long long)(pages > 0 ? pages : 0));
}

static void put_retention(struct buf *o)
{
	put(o,
	    "# HELP runbridge_retention_deleted_deliveries_total Deliveries deleted by retention.\n"
	    "# TYPE runbridge_retention_deleted_deliveries_total counter\n"
	    "runbridge_retention_deleted_deliveries_total %llu\n"
	    "# HELP runbridge_retention_deleted_jobs_total Jobs deleted by retention.\n"
	    "# TYPE runbridge_retention_deleted_jobs_total counter\n"
	    "runbridge_retention_deleted_jobs_total %llu\n"
	    "# HELP runbridge_retention_vacuumed_pages_total Store pages given back to the file"
	    " system.\n"
	    "# TYPE runbridge_retention_vacuumed_pages_total counter\n"
	    "runbridge_retention_vacuumed_pages_total %llu\n",
	    atomic_load(&ret_deliveries), atomic_load(&ret_jobs), atomic_load(&ret_pages));
}

/* ---- checkpoints ---------------------------------------------------------- */

static atomic_ullong ckpt[CKPT_FAILED + 1];

void metrics_checkpoint(enum metrics_ckpt where)
{
	atomic_fetch_add(&ckpt[where], 1);
}

static void put_checkpoints(struct buf *o)
{
	put(o,
	    "# HELP runbridge_store_checkpoints_total WAL checkpoints: on the checkpoint thread"
	    " (background), by the writer to restart the WAL (catchup) or at its bound (bound),"
	    " or failed.\n"
	    "# TYPE runbridge_store_checkpoints_total counter\n"
	    "runbridge_store_checkpoints_total{where=\"background\"} %llu\n"
	    "runbridge_store_checkpoints_total{where=\"catchup\"} %llu\n"
	    "runbridge_store_checkpoints_total{where=\"bound\"} %llu\n"
	    "runbridge_store_checkpoints_total{where=\"failed\"} %llu\n",
	    atomic_load(&ckpt[CKPT_BACKGROUND]), atomic_load(&ckpt[CKPT_CATCHUP]),
	    atomic_load(&ckpt[CKPT_BOUND]), atomic_load(&ckpt[CKPT_FAILED]));
}
