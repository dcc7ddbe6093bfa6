/*
 * ingest: the writer thread and its queue.
 *
 * HTTP threads put a request on the queue and sleep until its batch is
 * finished; the writer takes everything queued, runs one transaction over
 * all of it, commits once (one fsync for the whole group), then wakes the
 * whole group with one futex call.  One bad delivery fails alone (the group
 * runs again without it) while a failed COMMIT (disk full) fails them all:
 * nobody gets a 202 for a row that is not on disk.
 *
 * Retention runs on the same thread, one small step at a time, when the
 * queue is empty: a request that arrives during a step waits for that step
 * only (RETENTION_BUDGET_US plus its commit, which does not fsync).  While
 * deliveries come, steps take at most 1 / RETENTION_DUTY of the writer's
 * time, so most deliveries find it idle; once none came for
 * RETENTION_QUIET_US, steps follow each other.  A queue that never empties
 * still lets one step through a second, so the store cannot only grow.
 */
#include "store/ingest.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "store/checkpoint.h"
#include "store/retention.h"

enum req_type { REQ_ROWS, REQ_ATTEMPT, REQ_PROBE, REQ_MAP, REQ_SOURCE, REQ_CALL };

struct req {
	enum req_type type;
	struct req *next;
	const char *id; /* REQ_ROWS: rows->d.id, for the log */
	/* REQ_MAP (caller's stack) */
	const struct map_key *map_key;
	const struct map_rec *map;
	/* REQ_ROWS (caller's; id is rows->d.id) */
	const struct ingest_rows *rows;
	/* REQ_SOURCE (caller's) */
	const char *source, *source_json;
	/* REQ_CALL (caller's) */
	ingest_call_fn call;
	void *call_ctx;
	/* REQ_ATTEMPT (heap, one block with the records and their details,
	 * owned by the writer) */
	struct attempt_rec *attempts;
	size_t nattempts;
	/* the batch that takes it (waiters sleep until it is finished) and
	 * the results, written before that batch is published */
	uint32_t gen;
	int failed, duplicate;
	struct err err;
};

struct jobvec {
	struct job_ref *v;
	size_t n, cap;
};

struct ingest {
	struct store *st;
	ingest_jobs_fn on_jobs;
	void *ctx;

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work; /* the writer waits for requests */
	struct req *head, *tail;
	uint32_t taken; /* batches taken so far (under mu) */
	/* The last finished batch of each parity.  Waiters of batch g sleep on
	 * finished[g & 1]: batch g + 1 is taken only after g is finished, so
	 * one futex wake reaches exactly the requests of one batch, and they
	 * need no lock to go on. */
	_Atomic uint32_t finished[2];
	int stopping, stopped;
	struct jobvec jobs; /* writer-thread only */
	/* Writer-thread only: twice the bytes of the last group whose commit
	 * failed, until a commit of as much succeeds.  A probe writes that
	 * much, so readiness fails while deliveries would (a full disk still
	 * has room for a small write). */
	size_t failed_room;
	/* retention: the policy (set by any thread; -1 until set) and the
	 * writer's own state */
	_Atomic int ret_done_days, ret_dead_days;
	struct retention *ret;
	long long ret_last_us;             /* when the last step started (writer only) */
	long long ret_next_us;             /* the next step, while deliveries come */
	long long last_batch_us;           /* when the writer last finished a batch */
	_Atomic(struct checkpointer *) ck; /* borrowed; NULL: SQLite's own */
};

enum { FAILED_ROOM_MAX = 64 << 20 }; /* the largest probe */

/* What a delivery's rows put in the store, about. */
static size_t rows_bytes(const struct ingest_rows *rows)
{
	size_t n = rows->d.raw_len + strlen(rows->d.event_json ? rows->d.event_json : "");

	for (size_t i = 0; i < rows->njobs; i++)
		n += strlen(rows->jobs[i].params_json ? rows->jobs[i].params_json : "");
	return n + 512;
}

/* Twice what a batch would write, for the probe after it failed. */
static size_t batch_room(const struct req *batch)
{
	size_t n = 0;

	for (const struct req *r = batch; r; r = r->next)
		if (r->type == REQ_ROWS)
			n += rows_bytes(r->rows);
	return n > SIZE_MAX / 2 ? SIZE_MAX : 2 * n;
}

/* Sleeps while *word still holds `seen` (returns at once if it changed). */
static void futex_wait(_Atomic uint32_t *word, uint32_t seen)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void enqueue(struct ingest *in, struct req *r)
{
	r->next = NULL;
	if (in->tail)
		in->tail->next = r;
	else
		in->head = r;
	in->tail = r;
	pthread_cond_signal(&in->work);
}

/* Queues r and sleeps until the writer has committed (or failed) it. */
static void submit_wait(struct ingest *in, struct req *r)
{
	pthread_mutex_lock(&in->mu);
	if (in->stopped) {
		r->failed = 1;
		err_setc(&r->err, ERR_UNAVAILABLE, "store is shutting down");
		pthread_mutex_unlock(&in->mu);
		return;
	}
	r->gen = in->taken + 1;
	enqueue(in, r);
	pthread_mutex_unlock(&in->mu);

	_Atomic uint32_t *word = &in->finished[r->gen & 1];
	for (;;) {
		uint32_t seen = atomic_load_explicit(word, memory_order_acquire);
		if ((int32_t)(seen - r->gen) >= 0)
			break;
		futex_wait(word, seen);
	}
}

int ingest_write(struct ingest *in, const struct ingest_rows *rows, int *duplicate, struct err *err)
{
	struct req r = { .type = REQ_ROWS, .rows = rows, .id = rows->d.id };

	submit_wait(in, &r);
	*duplicate = r.duplicate;
	if (r.failed) {
		if (err)
			*err = r.err;
		return -1;
	}
	return 0;
}

size_t ingest_queued(struct ingest *in)
{
	size_t n = 0;

	pthread_mutex_lock(&in->mu);
	for (struct req *r = in->head; r; r = r->next)
		n++;
	pthread_mutex_unlock(&in->mu);
	return n;
}

void ingest_attempts(struct ingest *in, const struct attempt_rec *v, size_t n)
{
	size_t size = sizeof(struct req) + n * sizeof(*v);
	for (size_t i = 0; i < n; i++)
		size += v[i].detail ? strlen(v[i].detail) + 1 : 0;

	struct req *r = calloc(1, size);
	if (!r) {
		log_msg(LOG_ERROR, "out of memory recording %zu attempts (from job %lld)", n,
			v[0].job_id);
		return;
	}
	r->type = REQ_ATTEMPT;
	r->attempts = (struct attempt_rec *)(r + 1);
	r->nattempts = n;
	char *text = (char *)(r->attempts + n);
	for (size_t i = 0; i < n; i++) {
		r->attempts[i] = v[i];
		if (v[i].detail) {
			size_t len = strlen(v[i].detail) + 1;
			r->attempts[i].detail = memcpy(text, v[i].detail, len);
			text += len;
		}
	}
	pthread_mutex_lock(&in->mu);
	if (in->stopped) {
		pthread_mutex_unlock(&in->mu);
		free(r);
		return;
	}
	enqueue(in, r);
	pthread_mutex_unlock(&in->mu);
}

int ingest_probe(struct ingest *in, struct err *err)
{
	struct req r = { .type = REQ_PROBE };

	submit_wait(in, &r);
	if (r.failed) {
		if (err)
			*err = r.err;
		return -1;
	}
	return 0;
}

int ingest_map(struct ingest *in, const struct map_key *key, const struct map_rec *m, struct err *err)
{
	struct req r = { .type = REQ_MAP, .map_key = key, .map = m };

	submit_wait(in, &r);
	if (r.failed) {
		if (err)
			*err = r.err;
		return -1;
	}
	return 0;
}

int ingest_source(struct ingest *in, const char *source, const char *json, struct err *err)
{
	struct req r = { .type = REQ_SOURCE, .source = source, .source_json = json };

	submit_wait(in, &r);
	if (r.failed) {
		if (err)
			*err = r.err;
		return -1;
	}
	return 0;
}

int ingest_call(struct ingest *in, ingest_call_fn fn, void *ctx, struct err *err)
{
	struct req r = { .type = REQ_CALL, .call = fn, .call_ctx = ctx };

	submit_wait(in, &r);
	if (r.failed) {
		if (err)
			*err = r.err;
		return -1;
	}
	return 0;
}

/* ---- the writer thread --------------------------------------------------- */

static int jobs_push(struct jobvec *jv, long long id, const char *kind, const char *lane)
{
	if (jv->n == jv->cap) {
		size_t cap = jv->cap ? jv->cap * 2 : 64;
		struct job_ref *v = realloc(jv->v, cap * sizeof(*v));
		if (!v)
			return -1;
		jv->v = v;
		jv->cap = cap;
	}
	struct job_ref *r = &jv->v[jv->n++];
	r->id = id;
	r->attempts = 0;
	r->next_ms = 0;
	snprintf(r->kind, sizeof(r->kind), "%s", kind);
	snprintf(r->lane, sizeof(r->lane), "%s", lane);
	return 0;
}

struct store *ingest_tx_store(struct ingest_tx *tx)
{
	return ((struct ingest *)tx)->st;
}

/* One job row, handed to the dispatcher after the commit. */
static int insert_job(struct ingest *in, long long delivery_seq, const struct ingest_job *jb,
		      long long now_ms, struct err *err)
{
	struct job_rec j = {
		.delivery_seq = delivery_seq,
		.rule = jb->rule,
		.index = jb->index,
		.kind = jb->kind,
		.params_json = jb->params_json,
		.lane = jb->lane,
	};
	long long id;

	if (store_job_insert(in->st, &j, now_ms, &id, err) < 0)
		return -1;
	if (jobs_push(&in->jobs, id, jb->kind, jb->lane) < 0)
		return err_set(err, "out of memory");
	return 0;
}

int ingest_tx_job(struct ingest_tx *tx, long long delivery_seq, const struct ingest_job *jb,
		  struct err *err)
{
	return insert_job((struct ingest *)tx, delivery_seq, jb, clock_wall_ms(), err);
}

/* Rows routed by the accept stage: dedup, then insert as they are. */
static int store_rows(struct ingest *in, struct req *r)
{
	const struct ingest_rows *rows = r->rows;
	const struct delivery_rec *d = &rows->d;
	struct err *err = &r->err;
	long long seq;

	int exists = store_delivery_exists(in->st, d->project, d->run_id, d->id, err);
	if (exists != 0) {
		r->duplicate = exists == 1;
		return exists < 0 ? -1 : 0;
	}
	if (store_delivery_insert(in->st, d, &seq, err) < 0 ||
	    (rows->run_json &&
	     store_run_put(in->st, d->project, d->run_id, rows->run_json, d->received_ms, err) < 0))
		return -1;
	for (size_t i = 0; i < rows->njobs; i++)
		if (insert_job(in, seq, &rows->jobs[i], d->received_ms, err) < 0)
			return -1;
	return 0;
}

/* One pass over the batch inside one transaction.  Returns 1 when every
 * request ran (failed deliveries are skipped), 0 when a delivery failed and
 * the transaction is still open (roll back and run the batch again without
 * it), -1 when the transaction is gone (SQLITE_FULL and friends end it;
 * *why says what ended it). */
static int run_pass(struct ingest *in, struct req *batch, struct err *why)
{
	struct err err = { 0 };

	in->jobs.n = 0;
	for (struct req *r = batch; r; r = r->next) {
		switch (r->type) {
		case REQ_ROWS:
			if (r->failed)
				break;
			r->duplicate = 0;
			if (store_rows(in, r) == 0)
				break;
			log_kv(LOG_ERROR, "delivery not stored", "id", r->id, "error", r->err.msg,
			       NULL);
			*why = r->err;
			r->failed = 1;
			err_setc(&r->err, ERR_UNAVAILABLE, "store unavailable: %s", why->msg);
			return store_in_txn(in->st) ? 0 : -1;
		case REQ_ATTEMPT:
			for (size_t i = 0; i < r->nattempts; i++)
				if (store_attempt_record(in->st, &r->attempts[i], &err) < 0)
					log_kv(LOG_ERROR, "attempt not recorded", "error", err.msg,
					       NULL);
			break;
		case REQ_PROBE:
			r->failed = store_touch(in->st, clock_wall_ms(), in->failed_room, &r->err) <
				    0;
			break;
		case REQ_MAP:
			r->failed = store_map_put(in->st, r->map_key, r->map, clock_wall_ms(),
						  &r->err) < 0;
			break;
		case REQ_SOURCE:
			r->failed = store_source_put(in->st, r->source, r->source_json, &r->err) < 0;
			break;
		case REQ_CALL:
			if (r->failed)
				break;
			if (r->call((struct ingest_tx *)in, r->call_ctx, &r->err) == 0)
				break;
			/* fails alone, like a delivery: the group runs again
			 * without it */
			log_kv(LOG_ERROR, "write not stored", "error", r->err.msg, NULL);
			*why = r->err;
			r->failed = 1;
			return store_in_txn(in->st) ? 0 : -1;
		}
		if (!store_in_txn(in->st)) {
			*why = r->type == REQ_ATTEMPT ? err : r->err;
			return -1;
		}
	}
	return 1;
}

/*
 * Returns 1 when the batch committed.  One delivery that cannot be stored
 * fails alone: the transaction is rolled back and the batch runs again
 * without it.  That costs nothing when all goes well, where a savepoint per
 * delivery would copy every page it touches into the statement journal.
 */
static int run_batch(struct ingest *in, struct req *batch)
{
	struct err err = { 0 };
	int pass;

	do {
		if (store_begin(in->st, &err) < 0) {
			pass = -1;
			break;
		}
		pass = run_pass(in, batch, &err);
		if (pass == 0)
			store_rollback(in->st);
	} while (pass == 0);
	if (pass == 1 && store_commit(in->st, &err) == 0) {
		/* sizes are counted only while a failure is remembered: the
		 * commit path of a healthy store does no extra work */
		int probed = 0;
		for (struct req *r = batch; r && in->failed_room && !probed; r = r->next)
			probed = r->type == REQ_PROBE && !r->failed;
		if (in->failed_room && (probed || batch_room(batch) >= in->failed_room))
			in->failed_room = 0;
		return 1;
	}
	size_t room = batch_room(batch);
	if (room > in->failed_room)
		in->failed_room = room < FAILED_ROOM_MAX ? room : FAILED_ROOM_MAX;
	if (!err.msg[0])
		err_set(&err, "the transaction ended");
	log_kv(LOG_ERROR, "store commit failed", "error", err.msg, NULL);
	store_rollback(in->st);
	in->jobs.n = 0;
	for (struct req *r = batch; r; r = r->next) {
		r->failed = 1;
		err_setc(&r->err, ERR_UNAVAILABLE, "store unavailable: %s", err.msg);
	}
	return 0;
}

/* Finishes batch `gen`: frees attempt records (failed ones go back on the
 * queue: the next commit may succeed), then wakes the waiters, all with one
 * call.  The list is not touched after that: its other requests live on
 * their waiters' stacks. */
static void finish_batch(struct ingest *in, struct req *batch, uint32_t gen)
{
	struct req *retry = NULL;

	pthread_mutex_lock(&in->mu);
	for (struct req *r = batch, *next; r; r = next) {
		next = r->next;
		if (r->type != REQ_ATTEMPT)
			continue;
		if (r->failed && !in->stopping) {
			r->failed = 0;
			r->next = retry;
			retry = r;
		} else {
			free(r);
		}
	}
	for (struct req *r = retry, *next; r; r = next) {
		next = r->next;
		enqueue(in, r);
	}
	pthread_mutex_unlock(&in->mu);
	atomic_store_explicit(&in->finished[gen & 1], gen, memory_order_release);
	futex_wake_all(&in->finished[gen & 1]);
}

void ingest_set_checkpointer(struct ingest *in, struct checkpointer *ck)
{
	atomic_store(&in->ck, ck);
}

/* After a commit, its waiters woken: what the checkpointer leaves to the
 * writer (checkpoint.h). */
static void checkpoint_after(struct ingest *in)
{
	struct checkpointer *ck = atomic_load(&in->ck);

	if (!ck)
		return;
	pthread_mutex_lock(&in->mu);
	int idle = !in->head;
	pthread_mutex_unlock(&in->mu);
	checkpointer_writer_done(ck, idle);
}

void ingest_set_retention(struct ingest *in, int done_days, int dead_days)
{
	atomic_store(&in->ret_done_days, done_days < 0 ? 0 : done_days);
	atomic_store(&in->ret_dead_days, dead_days < 0 ? 0 : dead_days);
	pthread_mutex_lock(&in->mu);
	pthread_cond_signal(&in->work); /* a new policy starts a pass at once */
	pthread_mutex_unlock(&in->mu);
}

/* Milliseconds until a retention step is due: 0 now, -1 never. */
static long long retention_due(struct ingest *in)
{
	int done = atomic_load(&in->ret_done_days), dead = atomic_load(&in->ret_dead_days);

	if (!in->ret || done < 0 || dead < 0)
		return -1;
	retention_set_policy(in->ret, done, dead);
	return retention_due_in_ms(in->ret, clock_wall_ms());
}

static void retention_step(struct ingest *in)
{
	struct retention_step rs;
	struct err err = { 0 };

	in->ret_last_us = clock_mono_us();
	int rc = retention_run(in->ret, in->st, clock_wall_ms(), &rs, &err);
	long long end = clock_mono_us();
	/* the writer spends at most 1 / RETENTION_DUTY of its time on it */
	in->ret_next_us = end + (RETENTION_DUTY - 1) * (end - in->ret_last_us);
	if (rc < 0) {
		log_kv(LOG_WARN, "retention step failed; next pass in a minute", "error", err.msg,
		       NULL);
		return;
	}
	if (rs.deliveries || rs.pages)
		metrics_retention(rs.deliveries, rs.jobs, rs.pages);
	checkpoint_after(in);
}

/* Microseconds to wait before a due retention step: none while no
 * delivery came for RETENTION_QUIET_US, else what keeps its duty cycle. */
static long long retention_gap_us(struct ingest *in)
{
	long long now = clock_mono_us();

	if (now - in->last_batch_us >= RETENTION_QUIET_US || in->ret_next_us <= now)
		return 0;
	return in->ret_next_us - now;
}

/* Waits for requests (under mu); 1 when a retention step is due instead. */
static int wait_for_work(struct ingest *in)
{
	while (!in->head && !in->stopping) {
		long long due = retention_due(in), wait_us;
		if (due == 0 && (wait_us = retention_gap_us(in)) == 0)
			return 1;
		if (due < 0) {
			pthread_cond_wait(&in->work, &in->mu);
			continue;
		}
		if (due == 0)
			due = (wait_us + 999) / 1000;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		long long ns = ts.tv_nsec + (due > 1000 ? 1000 : due) * 1000000LL;
		ts.tv_sec += ns / 1000000000LL;
		ts.tv_nsec = ns % 1000000000LL;
		pthread_cond_timedwait(&in->work, &in->mu, &ts);
	}
	return 0;
}

static void *writer_main(void *arg)
{
	struct ingest *in = arg;

	for (;;) {
		pthread_mutex_lock(&in->mu);
		if (wait_for_work(in)) {
			pthread_mutex_unlock(&in->mu);
			retention_step(in);
			continue;
		}
		struct req *batch = in->head;
		uint32_t gen = batch ? ++in->taken : 0;
		in->head = in->tail = NULL;
		int stop = in->stopping && !batch;
		pthread_mutex_unlock(&in->mu);
		if (stop)
			break;
		long long t0 = clock_mono_us();
		size_t n = 0;
		for (struct req *r = batch; r; r = r->next)
			n++;
		int ok = run_batch(in, batch);
		metrics_commit((double)(clock_mono_us() - t0) / 1e6, n);
		finish_batch(in, batch, gen);
		in->last_batch_us = clock_mono_us();
		if (in->jobs.n && in->on_jobs)
			in->on_jobs(in->ctx, in->jobs.v, in->jobs.n);
		if (ok)
			checkpoint_after(in);
		/* a queue that never empties still lets retention through */
		if (ok && !stop && clock_mono_us() - in->ret_last_us > 1000000 &&
		    retention_due(in) == 0)
			retention_step(in);
		if (!ok) {
			/* The store refused a commit: do not spin on it. */
			struct timespec ts = { 0, 100 * 1000000 };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

int ingest_start(struct ingest **out, struct store *st, ingest_jobs_fn on_jobs, void *ctx,
		 struct err *err)
{
	struct ingest *in = calloc(1, sizeof(*in));

	*out = NULL;
	if (!in)
		return err_set(err, "out of memory");

	in->st = st;
	in->on_jobs = on_jobs;
	in->ctx = ctx;
	in->ret_done_days = in->ret_dead_days = -1;
	if (retention_new(&in->ret, err) < 0) {
		free(in);
		return -1;
	}
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* retention's timed waits */
	pthread_mutex_init(&in->mu, NULL);
	pthread_cond_init(&in->work, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&in->thread, NULL, writer_main, in) != 0) {
		pthread_mutex_destroy(&in->mu);
		pthread_cond_destroy(&in->work);
		retention_free(in->ret);
		free(in);
		return err_set(err, "cannot start the writer thread");
	}
	pthread_setname_np(in->thread, "rb-writer");
	*out = in;
	return 0;
}

void ingest_stop(struct ingest *in)
{
	if (!in)
		return;
	pthread_mutex_lock(&in->mu);
	in->stopping = 1;
	pthread_cond_signal(&in->work);
	pthread_mutex_unlock(&in->mu);
	pthread_join(in->thread, NULL);
	pthread_mutex_lock(&in->mu);
	in->stopped = 1;
	pthread_mutex_unlock(&in->mu);
	retention_free(in->ret); /* its statements belong to the store */
	in->ret = NULL;
	store_close(in->st);
	in->st = NULL;
}

void ingest_free(struct ingest *in)
{
	if (!in)
		return;
	free(in->jobs.v);
	pthread_mutex_destroy(&in->mu);
	pthread_cond_destroy(&in->work);
	free(in);
}
