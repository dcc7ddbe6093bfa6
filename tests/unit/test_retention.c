/*
 * retention, one step at a time on a real store: what is expired goes
 * (deliveries with every job done, the run they leave empty), what is open
 * or young stays, and a step commits without an fsync but leaves the
 * connection as it found it, synchronous=FULL, so the deliveries committed
 * after it are on disk when they are acknowledged.
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

#include "core/clock.h"
#include "store/retention.h"
#include "store/store.h"
#include "store/store_db.h"
#include "store_query.h"

#define DAY_MS (86400LL * 1000)

/* One delivery of run (project, run) received age_days ago, with one job in
 * state (enum job_state). */
static void put(struct store *st, const char *id, const char *project, long long run,
		long long age_days, int state)
{
	long long now = clock_wall_ms(), seq, job;
	struct err e = { 0 };
	struct delivery_rec d = { .id = id,
				  .source = "qase",
				  .type = "run.completed",
				  .project = project,
				  .run_id = run,
				  .received_ms = now - age_days * DAY_MS,
				  .raw = "{}",
				  .raw_len = 2,
				  .event_json = "{}" };
	struct job_rec j = { .rule = "r", .kind = "redis", .params_json = "{}", .lane = "l" };
	char sql[96];

	assert_int_equal(store_begin(st, &e), 0);
	assert_int_equal(store_delivery_insert(st, &d, &seq, &e), 0);
	j.delivery_seq = seq;
	assert_int_equal(store_job_insert(st, &j, now, &job, &e), 0);
	assert_int_equal(store_run_put(st, project, run, "{}", now, &e), 0);
	assert_int_equal(store_commit(st, &e), 0);
	snprintf(sql, sizeof(sql), "UPDATE jobs SET state = %d WHERE id = %lld", state, job);
	assert_int_equal(sqlite3_exec(store_sqlite(st), sql, NULL, NULL, NULL), SQLITE_OK);
}

static void test_retention__a_step_deletes_the_expired_and_leaves_the_store_synchronous(void **s)
{
	char dir[32] = "/tmp/rb-ret-XXXXXX", cmd[64];
	struct store *st = NULL;
	struct retention *r = NULL;
	struct retention_step rs;
	struct err e = { 0 };

	(void)s;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_open(&st, dir, STORE_RW, &e), 0);
	put(st, "old-done", "OLD", 1, 40, JOB_DONE);
	put(st, "old-open", "OPEN", 2, 40, JOB_PENDING);
	put(st, "old-dead", "DEAD", 3, 40, JOB_DEAD);
	put(st, "young-done", "YOUNG", 4, 1, JOB_DONE);
	put(st, "newest", "NEW", 5, 0, JOB_DONE);
	assert_int_equal(retention_new(&r, &e), 0);
	retention_set_policy(r, 30, 90);
	assert_int_equal(retention_due_in_ms(r, clock_wall_ms()), 0);
	assert_int_equal(retention_run(r, st, clock_wall_ms(), &rs, &e), 0);

	assert_int_equal(rs.deliveries, 1);
	assert_int_equal(
		store_query_one(st, "SELECT COUNT(*) FROM deliveries WHERE id = 'old-done'"), 0);
	assert_int_equal(store_query_one(st, "SELECT COUNT(*) FROM runs WHERE project = 'OLD'"), 0);
	assert_int_equal(store_query_one(st, "SELECT COUNT(*) FROM deliveries"), 4);
	assert_int_equal(store_query_one(st, "SELECT COUNT(*) FROM runs WHERE project = 'OPEN'"), 1);
	/* 2 is FULL: a delivery committed next is fsynced, deletions with it */
	assert_int_equal(store_query_one(st, "PRAGMA synchronous"), 2);
	assert_false(store_in_txn(st));

	retention_free(r);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Steps until the pass (and the vacuum after it) is over at now_ms. */
static void run_pass(struct retention *r, struct store *st, long long now_ms)
{
	struct retention_step rs;
	struct err e = { 0 };
	int steps = 0;

	do
		assert_int_equal(retention_run(r, st, now_ms, &rs, &e), 0);
	while (retention_due_in_ms(r, now_ms) == 0 && ++steps < 100000);
	assert_true(steps < 100000);
}

static void put_many(struct store *st, const char *prefix, int n, long long age_days)
{
	char id[32];

	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s-%d", prefix, i);
		put(st, id, "P", 1, age_days, JOB_DONE);
	}
}

/* A clock that once jumped ahead stamped 20 deliveries 400 days in the
 * future; once what was older is gone they are the oldest in the table,
 * and every pass starts at them: they must not end the pass before the
 * expired deliveries received after them. */
static void test_retention__rows_stamped_in_the_future_do_not_stop_the_next_passes(void **s)
{
	char dir[32] = "/tmp/rb-ret-XXXXXX", cmd[64];
	struct store *st = NULL;
	struct retention *r = NULL;
	struct err e = { 0 };
	long long now = clock_wall_ms();

	(void)s;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(store_open(&st, dir, STORE_RW, &e), 0);
	assert_int_equal(retention_new(&r, &e), 0);
	retention_set_policy(r, 30, 90);

	put_many(st, "before", 10, 40);
	put_many(st, "future", 20, -400);
	run_pass(r, st, now);
	assert_int_equal(
		store_query_one(st, "SELECT COUNT(*) FROM deliveries WHERE id LIKE 'before-%'"), 0);
	assert_int_equal(store_query_one(st, "SELECT COUNT(*) FROM deliveries"), 20);

	put_many(st, "expired", 50, 40);
	put(st, "newest", "NEW", 2, 0, JOB_DONE);
	now += RETENTION_PASS_EVERY_MS + 1;
	assert_int_equal(retention_due_in_ms(r, now), 0);
	run_pass(r, st, now);
	assert_int_equal(
		store_query_one(st, "SELECT COUNT(*) FROM deliveries WHERE id LIKE 'expired-%'"), 0);
	assert_int_equal(
		store_query_one(st, "SELECT COUNT(*) FROM deliveries WHERE id LIKE 'future-%'"), 20);
	assert_int_equal(store_query_one(st, "SELECT COUNT(*) FROM deliveries WHERE id = 'newest'"),
			 1);

	retention_free(r);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_retention__a_step_deletes_the_expired_and_leaves_the_store_synchronous),
		cmocka_unit_test(
			test_retention__rows_stamped_in_the_future_do_not_stop_the_next_passes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
