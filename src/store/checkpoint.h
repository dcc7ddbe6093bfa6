/*
 * checkpoint: copies the write-ahead log into the database file on a thread
 * of its own, so that no commit of the writer does it.
 *
 * SQLite checkpoints inside a commit once the WAL holds 1,000 pages: the
 * delivery whose commit crosses the line waits while 4 MB are copied into
 * the database file and that file is fsynced.  The checkpointer replaces
 * that hook on the writer's connection.  After each commit the hook looks
 * at the WAL's size: past CHECKPOINT_PAGES it wakes the checkpointer, which
 * copies the WAL on its own connection with a PASSIVE checkpoint (the
 * writer goes on committing meanwhile).
 *
 * The WAL starts again from its beginning only when a write transaction
 * begins with every frame already copied, which a busy writer does not give
 * the checkpointer time for.  So once the checkpointer has copied all but
 * CHECKPOINT_CATCHUP_PAGES, the writer copies the rest itself the next
 * time nothing waits for it (a short copy and an fsync of little), and its
 * next transaction restarts the WAL.  Past CHECKPOINT_BOUND_PAGES (the
 * queue never empties, or the checkpointer cannot keep up) the writer
 * copies whatever is left after the commit's waiters are woken, so the WAL
 * stays bounded either way (at the bound and the group commit that crossed
 * it; only a reader's old snapshot, which no checkpoint may pass, holds it
 * longer).  No checkpoint runs inside a commit.
 *
 * SQLite lets one checkpoint run at a time and does not wait for another
 * to end (SQLITE_BUSY, whatever the busy timeout), so the thread and the
 * writer take turns on a mutex around their checkpoints.  At the bound the
 * writer waits for the thread's current copy, and the thread starts no
 * other while the writer waits: under load the bound slows the writer by
 * that copy at most, the back-pressure that keeps the WAL where it is.  The
 * writer's catch-up copy never waits: while the thread copies it leaves
 * the work to it.
 *
 * Durability is unchanged: a commit is on disk when its WAL frames are
 * (synchronous=FULL); the checkpoint only moves them.
 */
#ifndef RB_STORE_CHECKPOINT_H
#define RB_STORE_CHECKPOINT_H

#include "core/err.h"
#include "store/store.h"

enum {
	CHECKPOINT_PAGES = 1000,        /* SQLite's own threshold */
	CHECKPOINT_CATCHUP_PAGES = 256, /* what the writer copies to restart the WAL */
	CHECKPOINT_BOUND_PAGES = 8192,  /* the WAL's bound, about 32 MiB */
};

struct checkpointer;

/* What the checkpointer has done so far (any thread may ask). */
struct checkpoint_stats {
	long long background; /* checkpoints run on the checkpointer's thread */
	long long catchup;    /* the writer's, of the last CHECKPOINT_CATCHUP_PAGES */
	long long bound;      /* the writer's, at CHECKPOINT_BOUND_PAGES */
	long long failed;     /* checkpoints that returned an error (I/O, not busy) */
	long long busy;       /* the writer's that found another connection's
			       * checkpoint running (never the thread's; tried
			       * again after the next commit) */
	long long wal_pages;  /* the WAL's size after the writer's last commit */
};

/* Installs the commit hook on writer's connection (before any thread uses
 * it) and starts the thread, which owns own (a second writable store on
 * the same file; closed by checkpointer_stop).  0, or -1 with err set (own
 * is then closed, the hook not installed). */
int checkpointer_start(struct checkpointer **out, struct store *writer, struct store *own,
		       struct err *err);

/* Called by the writer's thread after each commit, once that commit's
 * waiters are woken; idle: nothing is queued for the writer.  Copies the
 * rest of the WAL when the bound or the catch-up above says so.  At the
 * bound it first waits for the thread's checkpoint if one runs; the
 * catch-up is skipped then. */
void checkpointer_writer_done(struct checkpointer *c, int idle);

void checkpointer_stats(struct checkpointer *c, struct checkpoint_stats *out);

/* Stops the thread (after its current checkpoint), copies what is left of
 * the WAL, and frees c.  Call after the writer's connection is closed (its
 * hook points at c) and its thread is done with checkpointer_writer_done.
 * NULL is a no-op. */
void checkpointer_stop(struct checkpointer *c);

#endif
