/*
 * checkpoint: the writer's commits never copy the WAL while the
 * checkpointer keeps up, the WAL stays near its threshold (it restarts from
 * its beginning once a checkpoint caught up), and nothing is lost.
 *
 * A real store in a temp dir, written through ingest as the daemon does:
 * 40 MB of deliveries one after another, enough for ten WALs of 1,000
 * pages, and for the WAL to reach its bound (CHECKPOINT_BOUND_PAGES) if the
 * checkpointer did nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

static void test_checkpoint__commits_leave_the_wal_to_the_checkpointer(void **state)
{
	char dir[32] = "/tmp/rb-ckpt-XXXXXX", id[32], cmd[64];
	struct store *st = NULL, *own = NULL, *ro = NULL;
	struct checkpointer *ck = NULL;
	struct ingest *in = NULL;
	struct checkpoint_stats cs;
	struct err e = { 0 };
	char *raw = malloc(RAW);
	long long wal_max = 0;

	(void)state;
	assert_non_null(raw);
	memset(raw, 'x', RAW);
	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_open(&st, dir, STORE_RW, &e), 0);
	assert_int_equal(store_open(&own, dir, STORE_RW, &e), 0);
	assert_int_equal(checkpointer_start(&ck, st, own, &e), 0);
	assert_int_equal(ingest_start(&in, st, on_jobs, NULL, &e), 0);
	ingest_set_checkpointer(in, ck);
	for (int i = 0; i < N; i++) {
		struct ingest_job job = {
			.rule = "r", .kind = "redis", .lane = "l", .params_json = "{}"
		};
		struct ingest_rows rows = {
			.d = { .id = id,
			       .source = "qase",
			       .type = "run.started",
			       .project = "CK",
			       .run_id = i + 1,
			       .received_ms = 1,
			       .raw = raw,
			       .raw_len = RAW,
			       .event_json = "{}" },
			.jobs = &job,
			.njobs = 1,
		};
		int dup = 0;
		snprintf(id, sizeof(id), "ck-%d", i);
		if (ingest_write(in, &rows, &dup, &e) < 0)
			fail_msg("delivery %d: %s", i, e.msg);
		assert_false(dup);
		long long w = file_size(dir, "runbridge.db-wal");
		wal_max = w > wal_max ? w : wal_max;
	}
	checkpointer_stats(ck, &cs);
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

	ingest_stop(in);
	ingest_free(in);
	checkpointer_stop(ck);
	assert_int_equal(store_open(&ro, dir, STORE_RO, &e), 0);
	assert_int_equal(store_query_one(ro, "SELECT COUNT(*) FROM deliveries WHERE project = 'CK'"),
			 N);
	assert_int_equal(store_query_one(ro, "SELECT COUNT(*) FROM jobs"), N);
	assert_int_equal(
		store_query_one(ro, "SELECT integrity_check = 'ok' FROM pragma_integrity_check"), 1);
	store_close(ro);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpoint__commits_leave_the_wal_to_the_checkpointer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
