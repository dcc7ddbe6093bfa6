/*
 * retention: deleting what the store no longer needs, a small step at a
 * time, on the writer's connection (store/ingest.c runs the steps when its
 * queue is empty, so no acknowledgement waits behind more than one step).
 *
 * A delivery goes, with its jobs, their attempts and its `routed` row, once
 * every job of it is done or dead and it is older than the policy's age:
 * done_days when all its jobs are done (or it has none), dead_days when one
 * is dead; 0 keeps them forever.  A delivery with an open job is never
 * deleted.  A run's registry row, target mappings, results and fetch state
 * go when the run has no delivery left.  The `cases` and `suites` caches
 * are per project, not per run, and are kept (they are as large as the
 * Qase projects, not as the traffic).  The newest delivery and the owner of
 * the newest job are always kept, so row ids are never reused.
 *
 * Space: on a store with auto_vacuum=INCREMENTAL (every store created by
 * this version) each step also returns up to a few hundred free pages to
 * the file system; on an older store freed pages are reused by new rows.
 */
#ifndef RB_STORE_RETENTION_H
#define RB_STORE_RETENTION_H

#include "core/err.h"
#include "store/store.h"

struct retention;

/* Limits of one step: deliveries examined, time spent deleting, and pages
 * returned by incremental vacuum; and how the writer paces steps while
 * deliveries come (store/ingest.c). */
enum {
	RETENTION_BATCH = 500,    /* deliveries a scan reads, at most */
	RETENTION_BATCH_MIN = 16, /* and at least */
	RETENTION_BUDGET_US = 1000,
	RETENTION_VACUUM_PAGES = 64,
	RETENTION_VACUUM_DURING = 8192,      /* free pages that start vacuum mid-pass */
	RETENTION_PASS_EVERY_MS = 60 * 1000, /* a new pass over the store */
	RETENTION_DUTY = 4,                  /* at most 1/4 of the writer's time */
	RETENTION_QUIET_US = 100 * 1000,     /* no delivery that long: full speed */
};

/* What one step did. */
struct retention_step {
	long long deliveries, jobs; /* rows deleted */
	long long runs;             /* runs whose registry rows went */
	long long pages;            /* pages returned to the file system */
};

/* The state of the passes; belongs to the thread that owns st. */
int retention_new(struct retention **out, struct err *err);
void retention_free(struct retention *r);

/* The policy in force (days; 0 keeps forever).  A change starts a new pass
 * at once. */
void retention_set_policy(struct retention *r, int done_days, int dead_days);

/* Milliseconds until the next step is due: 0 now, -1 never (retention is
 * off: both ages 0). */
long long retention_due_in_ms(const struct retention *r, long long now_ms);

/* Runs one step in its own transaction on st (a writable connection, not
 * in a transaction), committed without an fsync: the next delivery's
 * commit syncs the WAL, and a step lost to a crash is only done again.  0, or -1 with err set (rolled back; the pass retries
 * after RETENTION_PASS_EVERY_MS). */
int retention_run(struct retention *r, struct store *st, long long now_ms,
		  struct retention_step *out, struct err *err);

#endif
