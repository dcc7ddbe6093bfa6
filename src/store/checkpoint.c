/*
 * checkpoint: the WAL is copied into the database file on the
 * checkpointer's thread (checkpoint.h says why and how it stays bounded).
 */
#include "store/checkpoint.h"
#include "store/store_db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/metrics.h"

struct checkpointer {
	struct store *own; /* the thread's connection */
	sqlite3 *writer;   /* the writer's (used on the writer's thread only) */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t wake;
	int stopping;       /* under mu */
	_Atomic int wanted; /* set by the hook, taken by the thread */
	/* Held around every checkpoint of the thread and of the writer, so
	 * that neither finds SQLite's checkpoint lock taken by the other
	 * (SQLite does not wait for that lock: it answers SQLITE_BUSY).  At
	 * the bound the writer waits for it with writer_turn set, and the
	 * thread starts no copy while it is set: the writer waits for the
	 * thread's current copy at most.  copied is written under it. */
	pthread_mutex_t copy_mu;
	_Atomic int writer_turn;
	_Atomic long long background, catchup, bound, failed, busy, wal_pages;
	_Atomic long long copied; /* frames the thread's last checkpoint copied */
};

/* SQLite's WAL hook on the writer's connection: runs on the writer's thread
 * inside each COMMIT, with the WAL's size in pages (frames).  It copies
 * nothing (the committed batch's waiters are not woken yet): it wakes the
 * thread, and checkpointer_writer_done copies what the writer must. */
static int on_commit(void *arg, sqlite3 *db, const char *schema, int pages)
{
	struct checkpointer *c = arg;

	(void)db;
	(void)schema;
	atomic_store_explicit(&c->wal_pages, pages, memory_order_relaxed);
	if (pages >= CHECKPOINT_PAGES && !atomic_exchange(&c->wanted, 1)) {
		pthread_mutex_lock(&c->mu);
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

void checkpointer_writer_done(struct checkpointer *c, int idle)
{
	long long pages = atomic_load_explicit(&c->wal_pages, memory_order_relaxed);
	long long copied = atomic_load(&c->copied);
	_Atomic long long *count;
	enum metrics_ckpt what;

	if (pages >= CHECKPOINT_BOUND_PAGES) {
		/* waits for the thread's copy, if one runs, then copies the
		 * rest: the back-pressure that keeps the WAL at its bound */
		atomic_store(&c->writer_turn, 1);
		pthread_mutex_lock(&c->copy_mu);
		count = &c->bound;
		what = CKPT_BOUND;
	} else if (idle && pages >= CHECKPOINT_PAGES && copied > 0 && copied <= pages &&
		   pages - copied <= CHECKPOINT_CATCHUP_PAGES) {
		/* (copied > pages: counted in a WAL since restarted) */
		if (pthread_mutex_trylock(&c->copy_mu) != 0)
			return; /* the thread copies: that does the same */
		count = &c->catchup;
		what = CKPT_CATCHUP;
	} else {
		return;
	}
	int rc = sqlite3_wal_checkpoint_v2(c->writer, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc == SQLITE_BUSY) {
		/* another connection's checkpoint (the operator API's, a
		 * CLI's): look again after the next commit */
		atomic_fetch_add(&c->busy, 1);
	} else {
		atomic_fetch_add(rc == SQLITE_OK ? count : &c->failed, 1);
		metrics_checkpoint(rc == SQLITE_OK ? what : CKPT_FAILED);
		atomic_store(&c->copied, 0);
		atomic_store_explicit(&c->wal_pages, 0, memory_order_relaxed);
	}
	atomic_store(&c->writer_turn, 0);
	pthread_mutex_unlock(&c->copy_mu);
}

static void *checkpointer_main(void *arg)
{
	struct checkpointer *c = arg;
	sqlite3 *db = store_sqlite(c->own);
	int logged = 0;

	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (!c->stopping && !atomic_load(&c->wanted))
			pthread_cond_wait(&c->wake, &c->mu);
		int stop = c->stopping;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		atomic_store(&c->wanted, 0);
		pthread_mutex_lock(&c->copy_mu);
		if (atomic_load(&c->writer_turn)) {
			/* the writer waits to copy all of it at the bound */
			pthread_mutex_unlock(&c->copy_mu);
			continue;
		}
		int log = 0, done = 0;
		int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
		if (rc == SQLITE_OK) {
			atomic_store(&c->copied, done);
			atomic_fetch_add(&c->background, 1);
			metrics_checkpoint(CKPT_BACKGROUND);
		} else if (rc != SQLITE_BUSY) {
			atomic_fetch_add(&c->failed, 1);
			metrics_checkpoint(CKPT_FAILED);
		}
		pthread_mutex_unlock(&c->copy_mu);
		/* busy: another connection's checkpoint runs (the operator
		 * API's, a CLI's); the next commit wakes the thread again */
		if (rc == SQLITE_OK)
			logged = 0;
		else if (rc != SQLITE_BUSY && !logged++) /* once per run of failures */
			log_kv(LOG_WARN, "store checkpoint failed; the writer will copy the WAL",
			       "error", sqlite3_errmsg(db), NULL);
	}
	return NULL;
}

int checkpointer_start(struct checkpointer **out, struct store *writer, struct store *own,
		       struct err *err)
{
	struct checkpointer *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c) {
		store_close(own);
		return err_set(err, "out of memory");
	}
	c->own = own;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->wake, NULL);
	pthread_mutex_init(&c->copy_mu, NULL);
	/* the commits of its own connection never need a checkpoint */
	sqlite3_wal_autocheckpoint(store_sqlite(own), 0);
	if (pthread_create(&c->thread, NULL, checkpointer_main, c) != 0) {
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->wake);
		pthread_mutex_destroy(&c->copy_mu);
		store_close(own);
		free(c);
		return err_set(err, "cannot start the checkpoint thread");
	}
	pthread_setname_np(c->thread, "rb-checkpoint");
	/* replaces SQLite's own checkpoint-in-commit on the writer */
	c->writer = store_sqlite(writer);
	sqlite3_wal_hook(c->writer, on_commit, c);
	*out = c;
	return 0;
}

void checkpointer_stats(struct checkpointer *c, struct checkpoint_stats *out)
{
	out->background = atomic_load(&c->background);
	out->catchup = atomic_load(&c->catchup);
	out->bound = atomic_load(&c->bound);
	out->failed = atomic_load(&c->failed);
	out->busy = atomic_load(&c->busy);
	out->wal_pages = atomic_load(&c->wal_pages);
}

void checkpointer_stop(struct checkpointer *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stopping = 1;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->mu);
	/* the thread never waits for the writer (which is gone): it ends
	 * after its current copy at most */
	pthread_join(c->thread, NULL);
	/* the writer is gone: copy the rest, so that the file holds every
	 * commit and is cut to its pages (after retention's vacuum) */
	sqlite3_wal_checkpoint_v2(store_sqlite(c->own), NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	store_close(c->own);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->copy_mu);
	free(c);
}
