/*
 * store: the durable state of runbridge, in one SQLite database
 * (<data_dir>/runbridge.db, WAL mode, synchronous=FULL: a commit is on disk
 * when it returns).
 *
 *   deliveries  every accepted delivery: id (the idempotency key), raw body,
 *               normalized event, in receipt order (seq)
 *   runs        the run registry: the latest `run` object per (project, run id)
 *   jobs        one row per action to run: rendered params, lane, state,
 *               attempts, next retry time, last error
 *   attempts    one row per failed attempt of a job: when, detail (a
 *               job's last outcome is on its own row)
 *   target_runs the mapping of each Qase run on each target (remote id,
 *               state, kind-defined data as JSON)
 *
 * A `struct store` is one connection and belongs to one thread.  The daemon
 * writes through exactly one connection (the writer thread); workers and the
 * CLI read through their own.
 */
#ifndef RB_STORE_STORE_H
#define RB_STORE_STORE_H

#include <stddef.h>

#include "core/err.h"

enum job_state {
	JOB_PENDING = 0,  /* never attempted, waiting */
	JOB_RETRYING = 1, /* failed at least once, waiting for next_ms */
	JOB_DONE = 2,
	JOB_DEAD = 3, /* out of attempts or permanently failed */
};

struct store;

enum store_mode { STORE_RW, STORE_RO };

/* Opens (creating data_dir and the schema in RW mode). RO mode fails with
 * ERR_NOTFOUND when no database exists yet. */
int store_open(struct store **out, const char *data_dir, enum store_mode mode, struct err *err);
void store_close(struct store *st);

int store_begin(struct store *st, struct err *err);
/* 1 inside a transaction (it may have ended on its own after SQLITE_FULL). */
int store_in_txn(struct store *st);
int store_commit(struct store *st, struct err *err);
void store_rollback(struct store *st);

/* 1 when a delivery with this id is stored, 0 when not, -1 on error. */
int store_delivery_exists(struct store *st, const char *project, long long run_id, const char *id,
			  struct err *err);

struct delivery_rec {
	const char *id, *source, *type, *project; /* project may be NULL */
	long long run_id, received_ms;
	const char *raw;
	size_t raw_len;
	const char *event_json;
};
int store_delivery_insert(struct store *st, const struct delivery_rec *d, long long *out_seq,
			  struct err *err);

/* The registry's run JSON for (project, run id): *out is malloc'd, or NULL
 * when the run is unknown. */
int store_run_get(struct store *st, const char *project, long long run_id, char **out,
		  struct err *err);
int store_run_put(struct store *st, const char *project, long long run_id, const char *run_json,
		  long long now_ms, struct err *err);
/* Calls fn once per run in the registry ("" for no project), in key order;
 * the accept stage learns at start which runs exist.  0, or -1 (err set). */
int store_runs_each(struct store *st, void (*fn)(void *ctx, const char *project, long long run_id),
		    void *ctx, struct err *err);

struct job_rec {
	long long delivery_seq;
	const char *rule;
	int index;
	const char *kind;
	const char *params_json;
	const char *lane;
};
int store_job_insert(struct store *st, const struct job_rec *j, long long now_ms, long long *out_id,
		     struct err *err);

/* A finished attempt: the job's new state, and the attempt row. */
struct attempt_rec {
	long long job_id;
	int attempt;          /* 1-based number of this attempt */
	enum job_state state; /* JOB_DONE, JOB_RETRYING or JOB_DEAD */
	long long next_ms;    /* JOB_RETRYING: when to try again */
	long long started_ms, finished_ms;
	int ok;
	const char *detail; /* outcome text, may be NULL */
};
int store_attempt_record(struct store *st, const struct attempt_rec *a, struct err *err);

/* Everything an action needs to run, loaded per attempt (the backlog lives
 * on disk, not in memory).  Strings are malloc'd; free with job_free. */
struct job {
	long long id;
	char *rule;
	int index;
	char *kind;
	char *params_json;
	char *lane;
	int state, attempts;
	long long next_ms;
	char *delivery_id, *type, *project; /* project may be NULL */
	long long run_id;
	char *event_json;
	long long received_ms; /* the delivery's */
};
int store_job_load(struct store *st, long long id, struct job *out, struct err *err);
void job_free(struct job *j);

/* The scheduler's view of an open job. */
struct job_ref {
	long long id;
	int attempts;
	long long next_ms;
	char kind[16];
	char lane[256]; /* longer lanes are cut: that only adds ordering */
};

/* Calls fn for each open job (pending or retrying) with id > after_id, in id
 * order, at most limit; *n_out counts them.  fn returning -1 stops early. */
int store_jobs_open(struct store *st, long long after_id, size_t limit,
		    int (*fn)(void *ctx, const struct job_ref *r), void *ctx, size_t *n_out,
		    struct err *err);

/* Jobs that `runbridge replay` re-queued while the daemon ran: returns them
 * and clears their flag, in one transaction (needs a writable connection). */
int store_jobs_take_requeued(struct store *st, int (*fn)(void *ctx, const struct job_ref *r),
			     void *ctx, struct err *err);
int store_jobs_clear_requeued(struct store *st, struct err *err);

struct store_counts {
	long long deliveries, pending, retrying, done, dead;
};
int store_counts(struct store *st, struct store_counts *out, struct err *err);

/* How large the store is on disk: the database file and its WAL, its
 * pages and how many are free (reused by new rows; given back to the file
 * system by retention only with incremental vacuum, which stores created
 * before retention existed do not have), and how many deliveries retention
 * has deleted so far. */
struct store_size {
	long long file_bytes, wal_bytes;
	long long page_bytes, pages, free_pages;
	int incremental_vacuum; /* 1: auto_vacuum=INCREMENTAL */
	long long deleted_deliveries;
};
int store_size(struct store *st, struct store_size *out, struct err *err);

/* Re-queues jobs: every dead one (dead_only), or those chosen by id (a job
 * number, or a delivery id: all its actions), done or dead.  Open jobs are
 * left alone: they are queued already. */
int store_replay(struct store *st, int dead_only, const char *id, long long now_ms,
		 long long *n_out, struct err *err);

/* Lists dead jobs with their last error (runbridge status --dead). */
int store_dead_list(struct store *st, size_t limit,
		    void (*fn)(void *ctx, long long id, const char *rule, const char *kind,
			       const char *delivery_id, int attempts, const char *last_error),
		    void *ctx, struct err *err);

/* The mapping of one Qase run on one target. */
struct map_key {
	const char *kind, *target, *project; /* project NULL = "" */
	long long run_id;
};
struct map_rec {
	char *remote_id, *state, *data; /* each may be NULL; data is JSON */
};
int store_map_get(struct store *st, const struct map_key *k, struct map_rec *out, struct err *err);
int store_map_put(struct store *st, const struct map_key *k, const struct map_rec *m,
		  long long now_ms, struct err *err);
void map_rec_free(struct map_rec *m);
/* Every target mapping of one Qase run (runbridge status --run). */
int store_map_list(struct store *st, const char *project, long long run_id,
		   void (*fn)(void *ctx, const char *kind, const char *target,
			      const struct map_rec *m, long long updated_ms),
		   void *ctx, struct err *err);

/* Jobs of one target (kind and target name) not finished yet: pending,
 * retrying or running.  A reload may not remove a target that has some. */
int store_target_open_jobs(struct store *st, const char *kind, const char *target, long long *out,
			   struct err *err);

/* What a source's endpoint last answered (http/srcstat.h's JSON), kept in
 * the meta table: *out is malloc'd, or NULL when nothing is saved. */
int store_source_get(struct store *st, const char *source, char **out, struct err *err);
int store_source_put(struct store *st, const char *source, const char *json, struct err *err);

/* A write that proves the database is writable (readiness probe): room
 * bytes, at least 64 KiB (the size of a large group commit). */
int store_touch(struct store *st, long long now_ms, size_t room, struct err *err);

#endif
