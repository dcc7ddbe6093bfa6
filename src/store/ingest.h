/*
 * ingest: the single writer.  One thread owns the store's write connection
 * and commits everything that is waiting at that moment in one transaction
 * with one fsync (group commit).  It only writes what it is given:
 *
 *   - deliveries already normalized and routed (the accept stage, in the
 *     HTTP threads): dedup by id, then the delivery row, the registry's run
 *     and one row per job.  The caller is woken only after the commit, so a
 *     202 always means "on disk".
 *   - attempt outcomes from action workers (no one waits for these).
 *   - target mappings, source state and readiness probes.
 *
 * After each commit the new jobs are handed to the on_jobs callback (the
 * dispatcher), so workers only ever see committed rows.
 */
#ifndef RB_STORE_INGEST_H
#define RB_STORE_INGEST_H

#include <stddef.h>

#include "core/err.h"
#include "store/store.h"

struct ingest;

/* One job row, rendered; strings borrowed. */
struct ingest_job {
	const char *rule, *kind, *params_json, *lane;
	int index;
};

/* One delivery's rows, for ingest_write (strings borrowed until it
 * returns). */
struct ingest_rows {
	struct delivery_rec d; /* d.event_json: the normalized event */
	const char *run_json;  /* the registry's new run, or NULL */
	const struct ingest_job *jobs;
	size_t njobs;
};

typedef void (*ingest_jobs_fn)(void *ctx, const struct job_ref *jobs, size_t n);

/* Takes ownership of st (closed by ingest_stop); on_jobs gets the jobs of
 * each commit, on the writer's thread. */
int ingest_start(struct ingest **out, struct store *st, ingest_jobs_fn on_jobs, void *ctx,
		 struct err *err);

/* Has the writer copy what the checkpointer leaves to it after its commits
 * (store/checkpoint.h); ck is borrowed and outlives in's writer thread.
 * Without a checkpointer on its store, SQLite checkpoints inside commits
 * as it does by default. */
struct checkpointer;
void ingest_set_checkpointer(struct ingest *in, struct checkpointer *ck);

/* Queues n attempt outcomes (copied, details too); returns at once.  Calls
 * from one thread reach the store in the order they were made. */
void ingest_attempts(struct ingest *in, const struct attempt_rec *v, size_t n);

/* Makes a write and waits for it to commit: 0 when the store is writable.
 * After a group's commit failed, the write is as large as twice that
 * group until a commit of that size succeeds: a store that still takes a
 * small write but refuses deliveries is not ready. */
int ingest_probe(struct ingest *in, struct err *err);

/* Writes a target mapping and waits for its commit: the next attempt of the
 * run, on whatever thread, reads it back. */
int ingest_map(struct ingest *in, const struct map_key *key, const struct map_rec *m,
	       struct err *err);

/* Saves what a source's endpoint last answered (store_source_put) and
 * waits for its commit. */
int ingest_source(struct ingest *in, const char *source, const char *json, struct err *err);

/* Stores one delivery's rows as they are, in the next group commit (a
 * delivery id already stored is a duplicate: nothing is written), and
 * waits for the commit.  0 with *duplicate set, or -1 when they could not
 * be stored (err->code ERR_UNAVAILABLE); a row that breaks the schema
 * fails alone, the rest of its group commits. */
int ingest_write(struct ingest *in, const struct ingest_rows *rows, int *duplicate, struct err *err);

/*
 * A write of the caller's own in the writer's next group commit: fn runs on
 * the writer thread with its connection (ingest_tx_store; the results
 * stage's tables) and may add jobs (ingest_tx_job), handed to on_jobs after
 * the commit.  fn may run more than once (when another request of its group
 * fails, the group runs again without that one), so it only writes rows and
 * keeps no other state.  fn failing fails this request alone.  Waits for
 * the commit: 0, or -1 with err set (fn's error, or the commit's with
 * ERR_UNAVAILABLE).
 */
struct ingest_tx;
typedef int (*ingest_call_fn)(struct ingest_tx *tx, void *ctx, struct err *err);
int ingest_call(struct ingest *in, ingest_call_fn fn, void *ctx, struct err *err);
struct store *ingest_tx_store(struct ingest_tx *tx);
int ingest_tx_job(struct ingest_tx *tx, long long delivery_seq, const struct ingest_job *j,
		  struct err *err);

/* The retention policy (store/retention.h) the writer applies, in days (0
 * keeps forever); it may change at any time (a reload).  Until it is first
 * called, nothing is deleted.  The writer runs one retention step (a few
 * milliseconds at most) only when its queue is empty, or at least once a
 * second when it never is. */
void ingest_set_retention(struct ingest *in, int done_days, int dead_days);

/* Requests queued for the writer and not taken yet (tests, diagnostics). */
size_t ingest_queued(struct ingest *in);

/* Commits what is queued, stops the thread, closes the store.  Later
 * ingest_attempt calls are dropped and ingest_write fails (ERR_UNAVAILABLE), so
 * a worker that outlived the shutdown deadline cannot touch freed memory. */
void ingest_stop(struct ingest *in);

/* Frees a stopped writer, once nothing can call it any more. */
void ingest_free(struct ingest *in);

#endif
