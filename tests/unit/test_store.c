/*
 * store: deduplication by (project, run id, delivery id), job states and
 * their counts, attempt rows, replay by delivery id, and the upgrade of a
 * database made with schema 1 (which must keep every row and keep working).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"

struct fixture {
	char dir[32];
	char db[64];
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rb-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/runbridge.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[96];
	store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void open_rw(struct fixture *f)
{
	struct err e = { 0 };
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(&f->st, f->dir, STORE_RW, &e), 0);
}

static long long add_delivery(struct store *st, const char *id, const char *project, long long run_id)
{
	struct delivery_rec d = {
		.id = id,
		.source = "qase",
		.type = "run.started",
		.project = project,
		.run_id = run_id,
		.received_ms = 1000,
		.raw = "{}",
		.raw_len = 2,
		.event_json = "{\"x\":1}",
	};
	long long seq = 0;
	struct err e = { 0 };
	assert_int_equal(store_delivery_insert(st, &d, &seq, &e), 0);
	return seq;
}

static long long add_job(struct store *st, long long seq)
{
	struct job_rec j = {
		.delivery_seq = seq,
		.rule = "r",
		.index = 0,
		.kind = "redis",
		.params_json = "{\"stream\":\"s\"}",
		.lane = "lane",
	};
	long long id = 0;
	struct err e = { 0 };
	assert_int_equal(store_job_insert(st, &j, 1000, &id, &e), 0);
	return id;
}

static void record(struct store *st, long long job, int n, enum job_state state, const char *detail)
{
	struct attempt_rec a = {
		.job_id = job,
		.attempt = n,
		.state = state,
		.started_ms = 1,
		.finished_ms = 2,
		.ok = state == JOB_DONE,
		.detail = detail,
	};
	struct err e = { 0 };
	assert_int_equal(store_attempt_record(st, &a, &e), 0);
}

static long long query_int(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	long long v = -1;
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

/* Whether SQLite's plan for sql has a step that mentions needle. */
static int plan_has(const char *db, const char *sql, const char *needle)
{
	char eqp[512];
	sqlite3 *h = NULL;
	sqlite3_stmt *s = NULL;
	int found = 0;

	snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, eqp, -1, &s, NULL), SQLITE_OK);
	while (sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *d = sqlite3_column_text(s, 3);
		found |= d && strstr((const char *)d, needle) != NULL;
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
	return found;
}

static void test_dedup_key_is_project_run_and_id(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	open_rw(f);
	add_delivery(f->st, "aaaa", "DEMO", 7);
	add_delivery(f->st, "bbbb", NULL, 0);
	assert_int_equal(store_delivery_exists(f->st, "DEMO", 7, "aaaa", &e), 1);
	assert_int_equal(store_delivery_exists(f->st, NULL, 0, "bbbb", &e), 1);
	assert_int_equal(store_delivery_exists(f->st, "DEMO", 7, "bbbb", &e), 0);
	assert_int_equal(store_delivery_exists(f->st, "DEMO", 8, "aaaa", &e), 0);
	assert_int_equal(store_delivery_exists(f->st, "OTHER", 7, "aaaa", &e), 0);
	/* The same key twice is refused by the database too. */
	struct delivery_rec d = {
		.id = "aaaa",
		.source = "qase",
		.type = "run.started",
		.project = "DEMO",
		.run_id = 7,
		.raw = "{}",
		.raw_len = 2,
		.event_json = "{}",
	};
	long long seq;
	assert_int_equal(store_delivery_insert(f->st, &d, &seq, &e), -1);
	assert_non_null(strstr(e.msg, "UNIQUE"));
}

static void test_counts_and_attempt_rows(void **state)
{
	struct fixture *f = *state;
	struct store_counts c;
	struct err e = { 0 };
	open_rw(f);
	long long seq = add_delivery(f->st, "d1", "DEMO", 1);
	long long done = add_job(f->st, seq), dead = add_job(f->st, seq);
	long long retrying = add_job(f->st, seq);
	add_job(f->st, seq); /* stays pending */
	record(f->st, done, 1, JOB_DONE, "appended");
	record(f->st, retrying, 1, JOB_RETRYING, "connection refused");
	record(f->st, dead, 1, JOB_RETRYING, "HTTP 500");
	record(f->st, dead, 2, JOB_DEAD, "HTTP 500 again");

	assert_int_equal(store_counts(f->st, &c, &e), 0);
	assert_int_equal(c.deliveries, 1);
	assert_int_equal(c.pending, 1);
	assert_int_equal(c.retrying, 1);
	assert_int_equal(c.done, 1);
	assert_int_equal(c.dead, 1);

	/* Failures have rows of their own; a success lives on the job row. */
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM attempts"), 3);
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM attempts WHERE job_id = %lld", done);
	assert_int_equal(query_int(f->db, sql), 0);
	snprintf(sql, sizeof(sql), "SELECT state * 10 + attempts FROM jobs WHERE id = %lld", done);
	assert_int_equal(query_int(f->db, sql), JOB_DONE * 10 + 1);
}

static void test_replay_by_delivery_id(void **state)
{
	struct fixture *f = *state;
	struct store_counts c;
	long long n = 0;
	struct err e = { 0 };
	open_rw(f);
	long long s1 = add_delivery(f->st, "first", "DEMO", 1);
	long long s2 = add_delivery(f->st, "second", "DEMO", 2);
	long long j1 = add_job(f->st, s1), j2 = add_job(f->st, s2);
	record(f->st, j1, 1, JOB_DEAD, "gone");
	record(f->st, j2, 1, JOB_DEAD, "gone");
	assert_int_equal(store_replay(f->st, 1, "second", 5, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_counts(f->st, &c, &e), 0);
	assert_int_equal(c.dead, 1);
	assert_int_equal(c.pending, 1);
	assert_int_equal(store_replay(f->st, 1, "unknown", 5, &n, &e), 0);
	assert_int_equal(n, 0);
}

/* The schema of runbridge 0.1, as it created databases. */
static const char schema_v1[] =
	"PRAGMA journal_mode=WAL;"
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE deliveries("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL UNIQUE, source TEXT NOT NULL, type TEXT NOT NULL,"
	" project TEXT, run_id INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
	" raw BLOB NOT NULL, event TEXT NOT NULL);"
	"CREATE TABLE runs("
	" project TEXT NOT NULL, run_id INTEGER NOT NULL, run TEXT NOT NULL,"
	" updated_ms INTEGER NOT NULL, PRIMARY KEY(project, run_id)) WITHOUT ROWID;"
	"CREATE TABLE jobs("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" delivery_seq INTEGER NOT NULL, rule TEXT NOT NULL, idx INTEGER NOT NULL,"
	" kind TEXT NOT NULL, params TEXT NOT NULL, lane TEXT NOT NULL,"
	" state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
	" next_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
	" requeue INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
	"CREATE INDEX jobs_open ON jobs(id) WHERE state < 2;"
	"CREATE INDEX jobs_requeue ON jobs(id) WHERE requeue = 1;"
	"CREATE INDEX jobs_delivery ON jobs(delivery_seq);"
	"CREATE INDEX jobs_state ON jobs(state);"
	"CREATE TABLE attempts("
	" job_id INTEGER NOT NULL, n INTEGER NOT NULL, started_ms INTEGER,"
	" finished_ms INTEGER, ok INTEGER NOT NULL, detail TEXT,"
	" PRIMARY KEY(job_id, n)) WITHOUT ROWID;"
	"CREATE TABLE target_runs("
	" kind TEXT NOT NULL, target TEXT NOT NULL, project TEXT NOT NULL,"
	" run_id INTEGER NOT NULL, remote_id TEXT, state TEXT, data TEXT,"
	" updated_ms INTEGER NOT NULL,"
	" PRIMARY KEY(kind, target, project, run_id)) WITHOUT ROWID;"
	"INSERT INTO meta(key, value) VALUES('schema', '1');"
	"INSERT INTO deliveries(id, source, type, project, run_id, received_ms,"
	" raw, event) VALUES('old1', 'qase', 'run.started', 'DEMO', 5, 1, '{}', '{}'),"
	" ('old2', 'qase', 'run.completed', 'DEMO', 5, 2, '{}', '{}');"
	"INSERT INTO jobs(delivery_seq, rule, idx, kind, params, lane, state,"
	" created_ms, updated_ms) VALUES(1, 'r', 0, 'redis', '{}', 'l', 2, 1, 1),"
	" (2, 'r', 0, 'redis', '{}', 'l', 3, 2, 2), (2, 'r', 1, 'redis', '{}', 'l', 0, 2, 2);";

static void test_schema_1_database_is_upgraded_in_place(void **state)
{
	struct fixture *f = *state;
	struct store_counts c;
	struct err e = { 0 };
	sqlite3 *h = NULL;

	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, schema_v1, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);

	open_rw(f);
	assert_int_equal(store_counts(f->st, &c, &e), 0);
	assert_int_equal(c.deliveries, 2);
	assert_int_equal(c.done, 1);
	assert_int_equal(c.dead, 1);
	assert_int_equal(c.pending, 1);
	assert_int_equal(store_delivery_exists(f->st, "DEMO", 5, "old2", &e), 1);
	assert_int_equal(store_delivery_exists(f->st, "DEMO", 5, "new", &e), 0);
	long long seq = add_delivery(f->st, "new", "DEMO", 5);
	assert_int_equal(seq, 3);
	assert_int_equal(add_job(f->st, seq), 4);
	assert_int_equal(store_delivery_exists(f->st, "DEMO", 5, "new", &e), 1);

	assert_int_equal(query_int(f->db, "SELECT value FROM meta WHERE key = 'schema'"), 2);
	assert_int_equal(query_int(f->db,
				   "SELECT COUNT(*) FROM sqlite_master"
				   " WHERE name IN ('jobs_state', 'jobs_delivery', 'jobs_dead')"),
			 0);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM sqlite_master"
					  " WHERE name IN ('deliveries_key', 'jobs_dead_by')"),
			 2);
	/* a replay's scan of the dead jobs by rule, kind and time reads the
	 * index alone (api_post_replay) */
	assert_true(plan_has(f->db,
			     "SELECT j.id FROM jobs j WHERE j.state = 3 AND j.rule = 'r'"
			     " AND j.kind = 'k' AND j.updated_ms >= 0",
			     "COVERING INDEX jobs_dead_by"));
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM jobs WHERE state = 3"), 1);

	/* Reopening an upgraded database changes nothing. */
	open_rw(f);
	assert_int_equal(store_counts(f->st, &c, &e), 0);
	assert_int_equal(c.deliveries, 3);
	assert_int_equal(c.pending, 2);
}

static void test_probe_writes(void **state)
{
	struct fixture *f = *state;
	struct err e = { 0 };
	open_rw(f);
	assert_int_equal(store_touch(f->st, 42, 0, &e), 0);
	assert_int_equal(query_int(f->db, "SELECT value FROM meta WHERE key = 'probe'"), 42);
	assert_int_equal(query_int(f->db, "SELECT length(value) FROM meta"
					  " WHERE key = 'probe_room'"),
			 65536);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dedup_key_is_project_run_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counts_and_attempt_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_by_delivery_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_1_database_is_upgraded_in_place, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_probe_writes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
