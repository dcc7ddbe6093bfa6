/*
 * checkpoint: the writer's commits never copy the WAL while the
 * checkpointer keeps up, the WAL stays near its threshold (it restarts from
 * its beginning once a checkpoint caught up), and nothing is lost.
 *
 * A real store in a temp dir, written through ingest as the daemon does:
 * 40 MB of deliveries one after another, enough for ten WALs of 1,000
 * pages, and for the WAL to reach its bound (CHECKPOINT_BOUND_PAGES) if the
 * checkpointer did nothing.  Then the same under sustained load: several
 * senders at once keep the writer's queue from ever emptying, and the WAL
 * still stays within its bound.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/checkpoint.h"
#include "store/ingest.h"
#include "store/store.h"
#include "store/store_db.h"
#include "store_query.h"

enum { N = 600, RAW = 64 << 10, PAGE = 4096 };

static void on_jobs(void *ctx, const struct job_ref *jobs, size_t n)
{
	(void)ctx;
	(void)jobs;
	(void)n;
}

static long long file_size(const char *dir, const char *name)
{
	char path[96];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

/* A store in a new temp dir, written through ingest with a checkpointer,
 * as serve wires them. */
struct rig {
	char dir[32];
	struct store *st, *own;
	struct checkpointer *ck;
	struct ingest *in;
	char *raw; /* RAW bytes of fill */
};

static void rig_start(struct rig *r, char fill)
{
	struct err e = { 0 };

	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/rb-ckpt-XXXXXX");
	assert_non_null(r->raw = malloc(RAW));
	memset(r->raw, fill, RAW);
	assert_non_null(mkdtemp(r->dir));
	assert_int_equal(store_open(&r->st, r->dir, STORE_RW, &e), 0);
	assert_int_equal(store_open(&r->own, r->dir, STORE_RW, &e), 0);
	assert_int_equal(checkpointer_start(&r->ck, r->st, r->own, &e), 0);
	assert_int_equal(ingest_start(&r->in, r->st, on_jobs, NULL, &e), 0);
	ingest_set_checkpointer(r->in, r->ck);
}

/* Stops it all, then checks that n deliveries of project and their jobs
 * are stored and the file is sound; removes the dir. */
static void rig_stop_and_check(struct rig *r, const char *project, int n)
{
	struct store *ro = NULL;
	struct err e = { 0 };
	char sql[96], cmd[64];

	ingest_stop(r->in);
	ingest_free(r->in);
	checkpointer_stop(r->ck);
	assert_int_equal(store_open(&ro, r->dir, STORE_RO, &e), 0);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM deliveries WHERE project = '%s'", project);
	assert_int_equal(store_query_one(ro, sql), n);
	assert_int_equal(store_query_one(ro, "SELECT COUNT(*) FROM jobs"), n);
	assert_int_equal(
		store_query_one(ro, "SELECT integrity_check = 'ok' FROM pragma_integrity_check"), 1);
	store_close(ro);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
	assert_int_equal(system(cmd), 0);
	free(r->raw);
}

/* One delivery of RAW bytes with one job, through the writer. */
static int write_one(struct ingest *in, const char *project, long long run_id, const char *id,
		     const char *raw, int *dup, struct err *e)
{
	struct ingest_job job = { .rule = "r", .kind = "redis", .lane = "l", .params_json = "{}" };
	struct ingest_rows rows = {
		.d = { .id = id,
		       .source = "qase",
		       .type = "run.started",
		       .project = project,
		       .run_id = run_id,
		       .received_ms = 1,
		       .raw = raw,
		       .raw_len = RAW,
		       .event_json = "{}" },
		.jobs = &job,
		.njobs = 1,
	};

	*dup = 0;
	return ingest_write(in, &rows, dup, e);
}

static void test_checkpoint__commits_leave_the_wal_to_the_checkpointer(void **state)
{
	struct rig r;
	char id[32];
	struct checkpoint_stats cs;
	struct err e = { 0 };
	long long wal_max = 0;

	(void)state;
	rig_start(&r, 'x');
	for (int i = 0; i < N; i++) {
		int dup;
		snprintf(id, sizeof(id), "ck-%d", i);
		if (write_one(r.in, "CK", i + 1, id, r.raw, &dup, &e) < 0)
			fail_msg("delivery %d: %s", i, e.msg);
		assert_false(dup);
		long long w = file_size(r.dir, "runbridge.db-wal");
		wal_max = w > wal_max ? w : wal_max;
	}
	checkpointer_stats(r.ck, &cs);
	print_message("background %lld catchup %lld bound %lld failed %lld, WAL at most %lld bytes\n",
		      cs.background, cs.catchup, cs.bound, cs.failed, wal_max);
	/* the thread did the copying; the writer only copied the last of
	 * each WAL, and never had to copy a WAL at its bound */
	assert_true(cs.background >= 1);
	assert_true(cs.catchup >= 1);
	assert_int_equal(cs.bound, 0);
	assert_int_equal(cs.failed, 0);
	/* 40 MB went through a WAL that started over before its bound
	 * (without restarts it would hold all of it, 10,000 pages and more) */
	assert_true(wal_max < (long long)CHECKPOINT_BOUND_PAGES * PAGE);
	rig_stop_and_check(&r, "CK", N);
}

/* ---- sustained load ------------------------------------------------------ */

enum { SENDERS = 8, PER_SENDER = 400 }; /* 200 MiB of raw, 51,200 pages of it */

/* What one delivery writes to the WAL at most: its raw in overflow pages
 * (4,092 bytes each, the last one partial) and one page of each b-tree it
 * touches, with room for the splits (deliveries, deliveries_key, runs,
 * runs_updated, jobs and its four indexes, page 1: 10 trees, 16 pages). */
enum { DELIVERY_PAGES = RAW / (PAGE - 4) + 1 + 16 };

/* One group commit: every sender waits for its answer before it sends
 * again, so a group holds at most SENDERS deliveries. */
enum { GROUP_PAGES = SENDERS * DELIVERY_PAGES };

struct sender {
	pthread_t thread;
	struct ingest *in;
	struct checkpointer *ck;
	const char *dir, *raw;
	int n;
	int failed;            /* the first failed delivery + 1, or 0 */
	char msg[ERR_MSG_MAX]; /* its error */
	long long wal_max;     /* the -wal file's size, at most */
	long long pages_max;   /* checkpoint_stats' wal_pages, at most */
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	char id[32];
	struct checkpoint_stats cs;

	for (int i = 0; i < PER_SENDER; i++) {
		struct err e = { 0 };
		int dup;
		snprintf(id, sizeof(id), "ld-%d-%d", s->n, i);
		if (write_one(s->in, "LD", s->n * PER_SENDER + i + 1, id, s->raw, &dup, &e) < 0 ||
		    dup) {
			s->failed = i + 1;
			snprintf(s->msg, sizeof(s->msg), "%s", dup ? "duplicate" : e.msg);
			break;
		}
		long long w = file_size(s->dir, "runbridge.db-wal");
		s->wal_max = w > s->wal_max ? w : s->wal_max;
		checkpointer_stats(s->ck, &cs);
		s->pages_max = cs.wal_pages > s->pages_max ? cs.wal_pages : s->pages_max;
	}
	return NULL;
}

static void test_checkpoint__the_wal_stays_bounded_under_sustained_load(void **state)
{
	struct rig r;
	struct checkpoint_stats cs;
	struct sender s[SENDERS];
	long long wal_max = 0, pages_max = 0;

	(void)state;
	rig_start(&r, 'y');
	for (int t = 0; t < SENDERS; t++) {
		s[t] = (struct sender){ .in = r.in, .ck = r.ck, .dir = r.dir, .raw = r.raw, .n = t };
		assert_int_equal(pthread_create(&s[t].thread, NULL, sender_main, &s[t]), 0);
	}
	for (int t = 0; t < SENDERS; t++) {
		assert_int_equal(pthread_join(s[t].thread, NULL), 0);
		if (s[t].failed)
			fail_msg("sender %d, delivery %d: %s", t, s[t].failed - 1, s[t].msg);
		wal_max = s[t].wal_max > wal_max ? s[t].wal_max : wal_max;
		pages_max = s[t].pages_max > pages_max ? s[t].pages_max : pages_max;
	}
	/* the file is never cut below its largest size while that stays
	 * under journal_size_limit (64 MiB), so this sees the peak */
	long long w = file_size(r.dir, "runbridge.db-wal");
	wal_max = w > wal_max ? w : wal_max;
	checkpointer_stats(r.ck, &cs);
	/* a WAL of n frames: a 32-byte header and n frames of 24 + PAGE */
	long long wal_frames = wal_max > 32 ? (wal_max - 32) / (24 + PAGE) : 0;
	print_message("background %lld catchup %lld bound %lld failed %lld busy %lld;"
		      " WAL at most %lld frames (%lld bytes), wal_pages at most %lld;"
		      " allowed %d\n",
		      cs.background, cs.catchup, cs.bound, cs.failed, cs.busy, wal_frames, wal_max,
		      pages_max, CHECKPOINT_BOUND_PAGES + GROUP_PAGES);
	/* The writer copies the WAL after the commit that takes it to its
	 * bound, and the next commit starts it again from its beginning: the
	 * WAL holds at most the bound and the one group that crossed it. */
	assert_true(wal_frames <= CHECKPOINT_BOUND_PAGES + GROUP_PAGES);
	assert_true(pages_max <= CHECKPOINT_BOUND_PAGES + GROUP_PAGES);
	assert_int_equal(cs.failed, 0);
	/* the thread's copies never make the writer's fail */
	assert_int_equal(cs.busy, 0);
	rig_stop_and_check(&r, "LD", SENDERS * PER_SENDER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint__commits_leave_the_wal_to_the_checkpointer),
		cmocka_unit_test(test_checkpoint__the_wal_stays_bounded_under_sustained_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
