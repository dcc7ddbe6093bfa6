/*
 * store: SQLite behind a small, explicit API.  Statements are prepared once
 * per connection and reset after each use.  Nothing here knows about HTTP,
 * rules or actions: it keeps rows.
 */
#include "store/store.h"
#include "store/store_db.h"
#include "core/unconst.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sqlite3.h>

/*
 * Schema 2.  Every index the writer touches for each delivery grows at its
 * right-hand end (receipt order, run ids, job ids), so a group commit
 * rewrites a few tail pages instead of one random page per delivery: the
 * dedup key leads with (project, run_id) rather than the random sha256 id,
 * and row ids are plain (no AUTOINCREMENT: retention never deletes the
 * newest delivery or job, so no id is handed out twice).  jobs_by_delivery
 * is retention's way from a delivery to its jobs (it grows at its end too).
 * Databases made with schema 1 keep their tables as they are (correct, a
 * little slower) and get the new indexes.
 */
static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE IF NOT EXISTS deliveries("
	" seq INTEGER PRIMARY KEY,"
	" id TEXT NOT NULL, source TEXT NOT NULL, type TEXT NOT NULL,"
	" project TEXT, run_id INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
	" raw BLOB NOT NULL, event TEXT NOT NULL);"
	"CREATE UNIQUE INDEX IF NOT EXISTS deliveries_key"
	" ON deliveries(project, run_id, id);"
	"CREATE TABLE IF NOT EXISTS runs("
	" project TEXT NOT NULL, run_id INTEGER NOT NULL, run TEXT NOT NULL,"
	" updated_ms INTEGER NOT NULL, PRIMARY KEY(project, run_id)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS jobs("
	" id INTEGER PRIMARY KEY,"
	" delivery_seq INTEGER NOT NULL, rule TEXT NOT NULL, idx INTEGER NOT NULL,"
	" kind TEXT NOT NULL, params TEXT NOT NULL, lane TEXT NOT NULL,"
	" state INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
	" next_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
	" requeue INTEGER NOT NULL DEFAULT 0,"
	" created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS jobs_open ON jobs(id) WHERE state < 2;"
	"CREATE INDEX IF NOT EXISTS jobs_requeue ON jobs(id) WHERE requeue = 1;"
	/* the dead jobs, with what a replay filters by: its scan reads no
	 * job row (the first version, jobs_dead, held the id alone) */
	"DROP INDEX IF EXISTS jobs_dead;"
	"CREATE INDEX IF NOT EXISTS jobs_dead_by"
	" ON jobs(id, rule, kind, updated_ms, state) WHERE state = 3;"
	"CREATE INDEX IF NOT EXISTS jobs_by_delivery ON jobs(delivery_seq);"
	/* the operator API's runs, newest change first */
	"CREATE INDEX IF NOT EXISTS runs_updated ON runs(updated_ms);"
	"DROP INDEX IF EXISTS jobs_delivery;"
	"DROP INDEX IF EXISTS jobs_state;"
	"CREATE TABLE IF NOT EXISTS attempts("
	" job_id INTEGER NOT NULL, n INTEGER NOT NULL, started_ms INTEGER,"
	" finished_ms INTEGER, ok INTEGER NOT NULL, detail TEXT,"
	" PRIMARY KEY(job_id, n)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS target_runs("
	" kind TEXT NOT NULL, target TEXT NOT NULL, project TEXT NOT NULL,"
	" run_id INTEGER NOT NULL, remote_id TEXT, state TEXT, data TEXT,"
	" updated_ms INTEGER NOT NULL,"
	" PRIMARY KEY(kind, target, project, run_id)) WITHOUT ROWID;"
	/* the results stage's (store/results.h) */
	"CREATE TABLE IF NOT EXISTS results("
	" project TEXT NOT NULL, run_id INTEGER NOT NULL, case_id INTEGER NOT NULL,"
	" status TEXT NOT NULL, hash TEXT, duration_ms INTEGER, end_ms INTEGER,"
	" end_time TEXT, message TEXT, stacktrace TEXT,"
	" PRIMARY KEY(project, run_id, case_id)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS cases("
	" project TEXT NOT NULL, case_id INTEGER NOT NULL, title TEXT,"
	" suite_id INTEGER, suite TEXT, fields TEXT,"
	" PRIMARY KEY(project, case_id)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS suites("
	" project TEXT NOT NULL, suite_id INTEGER NOT NULL, title TEXT,"
	" parent_id INTEGER, PRIMARY KEY(project, suite_id)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS fetches("
	" project TEXT NOT NULL, run_id INTEGER NOT NULL, delivery_id TEXT NOT NULL,"
	" phase TEXT NOT NULL, next_offset INTEGER NOT NULL, total INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL, PRIMARY KEY(project, run_id)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS routed("
	" delivery_id TEXT PRIMARY KEY, status TEXT NOT NULL,"
	" routed_ms INTEGER NOT NULL) WITHOUT ROWID;"
	"INSERT INTO meta(key, value) VALUES('schema', '2')"
	" ON CONFLICT(key) DO UPDATE SET value = '2' WHERE value <> '2';";

enum stmt_id {
	S_DELIVERY_EXISTS,
	S_DELIVERY_INSERT,
	S_RUN_GET,
	S_RUN_PUT,
	S_JOB_INSERT,
	S_JOB_UPDATE,
	S_ATTEMPT_INSERT,
	S_JOB_LOAD,
	S_JOBS_OPEN,
	S_TOUCH,
	S_MAP_GET,
	S_MAP_PUT,
	S_SOURCE_GET,
	S_SOURCE_PUT,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_DELIVERY_EXISTS] = "SELECT 1 FROM deliveries"
			      " WHERE project IS ?2 AND run_id = ?3 AND id = ?1",
	[S_DELIVERY_INSERT] = "INSERT INTO deliveries(id, source, type, project, run_id,"
			      " received_ms, raw, event) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
	[S_RUN_GET] = "SELECT run FROM runs WHERE project = ?1 AND run_id = ?2",
	[S_RUN_PUT] = "INSERT OR REPLACE INTO runs(project, run_id, run, updated_ms)"
		      " VALUES(?1,?2,?3,?4)",
	[S_JOB_INSERT] = "INSERT INTO jobs(delivery_seq, rule, idx, kind, params, lane,"
			 " created_ms, updated_ms) VALUES(?1,?2,?3,?4,?5,?6,?7,?7)",
	[S_JOB_UPDATE] = "UPDATE jobs SET state = ?2, attempts = ?3, next_ms = ?4,"
			 " last_error = ?5, updated_ms = ?6 WHERE id = ?1",
	[S_ATTEMPT_INSERT] = "INSERT OR REPLACE INTO attempts(job_id, n, started_ms, finished_ms,"
			     " ok, detail) VALUES(?1,?2,?3,?4,?5,?6)",
	[S_JOB_LOAD] = "SELECT j.id, j.rule, j.idx, j.kind, j.params, j.lane, j.state,"
		       " j.attempts, j.next_ms, d.id, d.type, d.project, d.run_id, d.event,"
		       " d.received_ms"
		       " FROM jobs j JOIN deliveries d ON d.seq = j.delivery_seq"
		       " WHERE j.id = ?1",
	[S_JOBS_OPEN] = "SELECT id, attempts, next_ms, lane, kind FROM jobs"
			" WHERE state < 2 AND id > ?1 ORDER BY id LIMIT ?2",
	/* As large as a big group commit (at least 64 KiB): a one-row write
	 * can still fit in the room a failed commit left at the end of the
	 * WAL, and readiness must fail where deliveries would. */
	[S_TOUCH] = "INSERT OR REPLACE INTO meta(key, value)"
		    " VALUES('probe', ?1), ('probe_room', zeroblob(?2))",
	[S_MAP_GET] = "SELECT remote_id, state, data FROM target_runs WHERE kind = ?1"
		      " AND target = ?2 AND project = ?3 AND run_id = ?4",
	[S_MAP_PUT] = "INSERT OR REPLACE INTO target_runs(kind, target, project,"
		      " run_id, remote_id, state, data, updated_ms)"
		      " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
	/* one meta row per source: what its endpoint last answered */
	[S_SOURCE_GET] = "SELECT value FROM meta WHERE key = 'source:' || ?1",
	[S_SOURCE_PUT] = "INSERT OR REPLACE INTO meta(key, value) VALUES('source:' || ?1, ?2)",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
};

sqlite3 *store_sqlite(struct store *st)
{
	return st->db;
}

static int step_done(struct store *st, sqlite3_stmt *s, struct err *err, const char *what);

static int db_error(struct store *st, struct err *err, const char *what)
{
	return err_set(err, "store: %s: %s", what, sqlite3_errmsg(st->db));
}

static int exec_sql(struct store *st, const char *sql, struct err *err)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		err_set(err, "store: %s", msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static sqlite3_stmt *stmt(struct store *st, enum stmt_id id, struct err *err)
{
	if (!st->stmt[id] && sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
						&st->stmt[id], NULL) != SQLITE_OK) {
		db_error(st, err, "prepare");
		return NULL;
	}
	return st->stmt[id];
}

static int make_dir(const char *dir, struct err *err)
{
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return err_set(err, "store: cannot create %s: %s", dir, strerror(errno));
	return 0;
}

int store_open(struct store **out, const char *data_dir, enum store_mode mode, struct err *err)
{
	char path[PATH_MAX];
	struct store *st;
	int flags = mode == STORE_RW ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
				     : SQLITE_OPEN_READONLY;

	*out = NULL;
	if (snprintf(path, sizeof(path), "%s/runbridge.db", data_dir) >= (int)sizeof(path))
		return err_set(err, "store: data_dir path too long");
	if (mode == STORE_RW && make_dir(data_dir, err) < 0)
		return -1;
	st = calloc(1, sizeof(*st));
	if (!st)
		return err_set(err, "out of memory");
	if (sqlite3_open_v2(path, &st->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		int rc = mode == STORE_RO
				 ? err_setc(err, ERR_NOTFOUND, "store: no database at %s yet", path)
				 : db_error(st, err, path);
		store_close(st);
		return rc;
	}
	sqlite3_busy_timeout(st->db, 5000);
	/* auto_vacuum takes effect only on a database without tables yet (a
	 * new store): retention then gives freed pages back to the file
	 * system.  secure_delete=FAST zeroes deleted content where that costs
	 * no extra write (Debian's default, ON, writes every freed page). */
	if (mode == STORE_RW &&
	    (exec_sql(st,
		      "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA secure_delete=FAST;"
		      " PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		      " PRAGMA cache_size=-8192; PRAGMA journal_size_limit=67108864;",
		      err) < 0 ||
	     exec_sql(st, schema, err) < 0)) {
		store_close(st);
		return -1;
	}
	*out = st;
	return 0;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st);
}

int store_in_txn(struct store *st)
{
	return !sqlite3_get_autocommit(st->db);
}

int store_begin(struct store *st, struct err *err)
{
	return exec_sql(st, "BEGIN IMMEDIATE", err);
}

int store_commit(struct store *st, struct err *err)
{
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		db_error(st, err, "commit");
		store_rollback(st);
		return -1;
	}
	return 0;
}

void store_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Steps a write statement to completion and resets it. */
static int step_done(struct store *st, sqlite3_stmt *s, struct err *err, const char *what)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return db_error(st, err, what);
	return 0;
}

static void bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, i);
}

int store_delivery_exists(struct store *st, const char *project, long long run_id, const char *id,
			  struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_DELIVERY_EXISTS, err);
	int rc;
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	bind_text_or_null(s, 2, project);
	sqlite3_bind_int64(s, 3, run_id);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return db_error(st, err, "delivery lookup");
}

int store_delivery_insert(struct store *st, const struct delivery_rec *d, long long *out_seq,
			  struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_DELIVERY_INSERT, err);
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, d->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, d->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, d->type, -1, SQLITE_STATIC);
	bind_text_or_null(s, 4, d->project);
	sqlite3_bind_int64(s, 5, d->run_id);
	sqlite3_bind_int64(s, 6, d->received_ms);
	sqlite3_bind_blob64(s, 7, d->raw, d->raw_len, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, d->event_json, -1, SQLITE_STATIC);
	if (step_done(st, s, err, "delivery insert") < 0)
		return -1;
	*out_seq = sqlite3_last_insert_rowid(st->db);
	return 0;
}

static char *column_dup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? strdup((const char *)t) : NULL;
}

int store_run_get(struct store *st, const char *project, long long run_id, char **out, struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_RUN_GET, err);
	int rc;

	*out = NULL;
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, project ? project : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, run_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = column_dup(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(st, err, "run lookup");
	return 0;
}

int store_runs_each(struct store *st, void (*fn)(void *ctx, const char *project, long long run_id),
		    void *ctx, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db, "SELECT project, run_id FROM runs", -1, &s, NULL) != SQLITE_OK)
		return db_error(st, err, "prepare");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const unsigned char *project = sqlite3_column_text(s, 0);
		fn(ctx, project ? (const char *)project : "", sqlite3_column_int64(s, 1));
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_error(st, err, "runs");
	return 0;
}

int store_run_put(struct store *st, const char *project, long long run_id, const char *run_json,
		  long long now_ms, struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_RUN_PUT, err);
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, project ? project : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, run_id);
	sqlite3_bind_text(s, 3, run_json, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, now_ms);
	return step_done(st, s, err, "run update");
}

int store_job_insert(struct store *st, const struct job_rec *j, long long now_ms, long long *out_id,
		     struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_JOB_INSERT, err);
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, j->delivery_seq);
	sqlite3_bind_text(s, 2, j->rule, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, j->index);
	sqlite3_bind_text(s, 4, j->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, j->params_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 6, j->lane, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 7, now_ms);
	if (step_done(st, s, err, "job insert") < 0)
		return -1;
	*out_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int store_attempt_record(struct store *st, const struct attempt_rec *a, struct err *err)
{
	sqlite3_stmt *u = stmt(st, S_JOB_UPDATE, err);
	sqlite3_stmt *i = u ? stmt(st, S_ATTEMPT_INSERT, err) : NULL;
	if (!i)
		return -1;
	sqlite3_bind_int64(u, 1, a->job_id);
	sqlite3_bind_int(u, 2, a->state);
	sqlite3_bind_int(u, 3, a->attempt);
	sqlite3_bind_int64(u, 4, a->next_ms);
	bind_text_or_null(u, 5, a->ok ? NULL : a->detail);
	sqlite3_bind_int64(u, 6, a->finished_ms);
	if (step_done(st, u, err, "job update") < 0)
		return -1;
	/* The job row holds the outcome of its last attempt; only failures
	 * get a row of their own, with what went wrong. */
	if (a->ok)
		return 0;
	sqlite3_bind_int64(i, 1, a->job_id);
	sqlite3_bind_int(i, 2, a->attempt);
	sqlite3_bind_int64(i, 3, a->started_ms);
	sqlite3_bind_int64(i, 4, a->finished_ms);
	sqlite3_bind_int(i, 5, a->ok);
	bind_text_or_null(i, 6, a->detail);
	return step_done(st, i, err, "attempt insert");
}

void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->rule);
	free(j->kind);
	free(j->params_json);
	free(j->lane);
	free(j->delivery_id);
	free(j->type);
	free(j->project);
	free(j->event_json);
	memset(j, 0, sizeof(*j));
}

static void job_from_row(sqlite3_stmt *s, struct job *j)
{
	j->id = sqlite3_column_int64(s, 0);
	j->rule = column_dup(s, 1);
	j->index = sqlite3_column_int(s, 2);
	j->kind = column_dup(s, 3);
	j->params_json = column_dup(s, 4);
	j->lane = column_dup(s, 5);
	j->state = sqlite3_column_int(s, 6);
	j->attempts = sqlite3_column_int(s, 7);
	j->next_ms = sqlite3_column_int64(s, 8);
	j->delivery_id = column_dup(s, 9);
	j->type = column_dup(s, 10);
	j->project = column_dup(s, 11);
	j->run_id = sqlite3_column_int64(s, 12);
	j->event_json = column_dup(s, 13);
	j->received_ms = sqlite3_column_int64(s, 14);
}

int store_job_load(struct store *st, long long id, struct job *out, struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_JOB_LOAD, err);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		job_from_row(s, out);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return err_set(err, "store: job %lld not found", id);
	if (rc != SQLITE_ROW)
		return db_error(st, err, "job load");
	if (!out->rule || !out->kind || !out->params_json || !out->lane || !out->delivery_id ||
	    !out->type || !out->event_json) {
		job_free(out);
		return err_set(err, "out of memory");
	}
	return 0;
}

static void ref_from_row(sqlite3_stmt *s, struct job_ref *r)
{
	const unsigned char *lane = sqlite3_column_text(s, 3);
	r->id = sqlite3_column_int64(s, 0);
	r->attempts = sqlite3_column_int(s, 1);
	r->next_ms = sqlite3_column_int64(s, 2);
	const unsigned char *kind = sqlite3_column_text(s, 4);
	snprintf(r->lane, sizeof(r->lane), "%s", lane ? (const char *)lane : "");
	snprintf(r->kind, sizeof(r->kind), "%s", kind ? (const char *)kind : "");
}

int store_jobs_open(struct store *st, long long after_id, size_t limit,
		    int (*fn)(void *ctx, const struct job_ref *r), void *ctx, size_t *n_out,
		    struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_JOBS_OPEN, err);
	struct job_ref r;
	int rc;

	*n_out = 0;
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, after_id);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ref_from_row(s, &r);
		(*n_out)++;
		if (fn(ctx, &r) < 0)
			break;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(st, err, "open jobs scan");
	return 0;
}

static int query_each(struct store *st, const char *sql,
		      int (*fn)(void *ctx, const struct job_ref *r), void *ctx, struct err *err)
{
	sqlite3_stmt *s = NULL;
	struct job_ref r;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_error(st, err, "prepare");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ref_from_row(s, &r);
		if (fn(ctx, &r) < 0)
			break;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(st, err, "scan");
	return 0;
}

int store_jobs_take_requeued(struct store *st, int (*fn)(void *ctx, const struct job_ref *r),
			     void *ctx, struct err *err)
{
	sqlite3_stmt *probe = NULL;
	int any;

	/* Cheap, lock-free look first: this runs every second and must not
	 * take the write lock from the ingest writer for nothing. */
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM jobs WHERE requeue = 1 LIMIT 1", -1, &probe,
			       NULL) != SQLITE_OK)
		return db_error(st, err, "prepare");
	any = sqlite3_step(probe) == SQLITE_ROW;
	sqlite3_finalize(probe);
	if (!any)
		return 0;
	if (store_begin(st, err) < 0)
		return -1;
	if (query_each(st,
		       "SELECT id, attempts, next_ms, lane, kind FROM jobs"
		       " WHERE requeue = 1 AND state < 2 ORDER BY id",
		       fn, ctx, err) < 0 ||
	    exec_sql(st, "UPDATE jobs SET requeue = 0 WHERE requeue = 1", err) < 0) {
		store_rollback(st);
		return -1;
	}
	return store_commit(st, err);
}

int store_jobs_clear_requeued(struct store *st, struct err *err)
{
	return exec_sql(st, "UPDATE jobs SET requeue = 0 WHERE requeue = 1", err);
}

int store_target_open_jobs(struct store *st, const char *kind, const char *target, long long *out,
			   struct err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*out = 0;
	/* jobs_open serves state < 2; a reload is rare, the scan is fine */
	if (sqlite3_prepare_v2(st->db,
			       "SELECT COUNT(*) FROM jobs WHERE state < 2 AND kind = ?1"
			       " AND json_extract(params, '$.target') = ?2",
			       -1, &s, NULL) != SQLITE_OK)
		return db_error(st, err, "prepare");
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, target, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return db_error(st, err, "open jobs of a target");
	return 0;
}

int store_counts(struct store *st, struct store_counts *out, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	/* Row ids are never reused (retention keeps the newest rows), so the
	 * largest one less what retention deleted is the count; open and dead
	 * jobs come from their partial indexes, done is the rest. */
	if (sqlite3_prepare_v2(st->db,
			       "SELECT state, COUNT(*) FROM jobs WHERE state < 2"
			       " GROUP BY state"
			       " UNION ALL SELECT 3, COUNT(*) FROM jobs WHERE state = 3"
			       " UNION ALL SELECT -2, IFNULL(MAX(id), 0) - IFNULL((SELECT"
			       " CAST(value AS INTEGER) FROM meta WHERE key = 'deleted_jobs'), 0)"
			       " FROM jobs"
			       " UNION ALL SELECT -1, IFNULL(MAX(seq), 0) - IFNULL((SELECT"
			       " CAST(value AS INTEGER) FROM meta WHERE key = 'deleted_deliveries'),"
			       " 0) FROM deliveries",
			       -1, &s, NULL) != SQLITE_OK)
		return db_error(st, err, "prepare");
	long long jobs = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		long long n = sqlite3_column_int64(s, 1);
		switch (sqlite3_column_int(s, 0)) {
		case -2: jobs = n; break;
		case -1: out->deliveries = n; break;
		case JOB_PENDING: out->pending = n; break;
		case JOB_RETRYING: out->retrying = n; break;
		case JOB_DEAD: out->dead = n; break;
		}
	}
	out->done = jobs - out->pending - out->retrying - out->dead;
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_error(st, err, "counts");
	return 0;
}

static int is_number(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int store_replay(struct store *st, int dead_only, const char *id, long long now_ms,
		 long long *n_out, struct err *err)
{
	const char *sql;
	sqlite3_stmt *s = NULL;
	int rc;

	*n_out = 0;
	if (!id)
		sql = "UPDATE jobs SET state = 0, attempts = 0, next_ms = 0,"
		      " requeue = 1, updated_ms = ?1 WHERE state = 3";
	else if (is_number(id))
		sql = "UPDATE jobs SET state = 0, attempts = 0, next_ms = 0,"
		      " requeue = 1, updated_ms = ?1 WHERE id = ?2"
		      " AND (state = 3 OR (?3 = 0 AND state = 2))";
	else
		sql = "UPDATE jobs SET state = 0, attempts = 0, next_ms = 0,"
		      " requeue = 1, updated_ms = ?1 WHERE delivery_seq ="
		      " (SELECT seq FROM deliveries WHERE id = ?2)"
		      " AND (state = 3 OR (?3 = 0 AND state = 2))";
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_error(st, err, "prepare");
	sqlite3_bind_int64(s, 1, now_ms);
	if (id) {
		if (is_number(id))
			sqlite3_bind_int64(s, 2, strtoll(id, NULL, 10));
		else
			sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 3, dead_only);
	}
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_error(st, err, "replay");
	*n_out = sqlite3_changes(st->db);
	return 0;
}

int store_dead_list(struct store *st, size_t limit,
		    void (*fn)(void *ctx, long long id, const char *rule, const char *kind,
			       const char *delivery_id, int attempts, const char *last_error),
		    void *ctx, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT j.id, j.rule, j.kind, d.id, j.attempts,"
			       " j.last_error FROM jobs j JOIN deliveries d"
			       " ON d.seq = j.delivery_seq WHERE j.state = 3"
			       " ORDER BY j.id LIMIT ?1",
			       -1, &s, NULL) != SQLITE_OK)
		return db_error(st, err, "prepare");
	sqlite3_bind_int64(s, 1, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(ctx, sqlite3_column_int64(s, 0), (const char *)sqlite3_column_text(s, 1),
		   (const char *)sqlite3_column_text(s, 2), (const char *)sqlite3_column_text(s, 3),
		   sqlite3_column_int(s, 4), (const char *)sqlite3_column_text(s, 5));
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_error(st, err, "dead list");
	return 0;
}

int store_touch(struct store *st, long long now_ms, size_t room, struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_TOUCH, err);
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, now_ms);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)(room < 65536 ? 65536 : room));
	return step_done(st, s, err, "probe");
}

int store_source_get(struct store *st, const char *source, char **out, struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_SOURCE_GET, err);
	int rc;

	*out = NULL;
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = column_dup(s, 0);
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(st, err, "source lookup");
	return 0;
}

int store_source_put(struct store *st, const char *source, const char *json, struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_SOURCE_PUT, err);
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, json, -1, SQLITE_STATIC);
	return step_done(st, s, err, "source update");
}

void map_rec_free(struct map_rec *m)
{
	if (!m)
		return;
	free(m->remote_id);
	free(m->state);
	free(m->data);
	m->remote_id = m->state = m->data = NULL;
}

static void bind_key(sqlite3_stmt *s, const struct map_key *k)
{
	sqlite3_bind_text(s, 1, k->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, k->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, k->project ? k->project : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, k->run_id);
}

int store_map_get(struct store *st, const struct map_key *k, struct map_rec *out, struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_MAP_GET, err);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!s)
		return -1;
	bind_key(s, k);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->remote_id = column_dup(s, 0);
		out->state = column_dup(s, 1);
		out->data = column_dup(s, 2);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(st, err, "mapping lookup");
	return 0;
}

int store_map_put(struct store *st, const struct map_key *k, const struct map_rec *m,
		  long long now_ms, struct err *err)
{
	sqlite3_stmt *s = stmt(st, S_MAP_PUT, err);
	if (!s)
		return -1;
	bind_key(s, k);
	bind_text_or_null(s, 5, m->remote_id);
	bind_text_or_null(s, 6, m->state);
	bind_text_or_null(s, 7, m->data);
	sqlite3_bind_int64(s, 8, now_ms);
	return step_done(st, s, err, "mapping update");
}

int store_map_list(struct store *st, const char *project, long long run_id,
		   void (*fn)(void *ctx, const char *kind, const char *target,
			      const struct map_rec *m, long long updated_ms),
		   void *ctx, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db,
			       "SELECT kind, target, remote_id, state, data,"
			       " updated_ms FROM target_runs WHERE project = ?1"
			       " AND run_id = ?2 ORDER BY kind, target",
			       -1, &s, NULL) != SQLITE_OK)
		return db_error(st, err, "prepare");
	sqlite3_bind_text(s, 1, project, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, run_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct map_rec m = {
			/* borrowed for fn; struct map_rec is also the owner
			 * store_map_get fills, hence not const */
			.remote_id = RB_UNCONST(sqlite3_column_text(s, 2)),
			.state = RB_UNCONST(sqlite3_column_text(s, 3)),
			.data = RB_UNCONST(sqlite3_column_text(s, 4)),
		};
		fn(ctx, (const char *)sqlite3_column_text(s, 0),
		   (const char *)sqlite3_column_text(s, 1), &m, sqlite3_column_int64(s, 5));
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return db_error(st, err, "mapping list");
	return 0;
}

static long long file_bytes(const char *path, const char *suffix)
{
	char name[PATH_MAX];
	struct stat sb;

	if (!path || snprintf(name, sizeof(name), "%s%s", path, suffix) >= (int)sizeof(name) ||
	    stat(name, &sb) < 0)
		return 0;
	return (long long)sb.st_size;
}

int store_size(struct store *st, struct store_size *out, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (sqlite3_prepare_v2(st->db,
			       "SELECT page_size, page_count, freelist_count, auto_vacuum,"
			       " IFNULL((SELECT CAST(value AS INTEGER) FROM meta"
			       " WHERE key = 'deleted_deliveries'), 0)"
			       " FROM pragma_page_size(), pragma_page_count(),"
			       " pragma_freelist_count(), pragma_auto_vacuum()",
			       -1, &s, NULL) != SQLITE_OK)
		return db_error(st, err, "prepare");
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		out->page_bytes = sqlite3_column_int64(s, 0);
		out->pages = sqlite3_column_int64(s, 1);
		out->free_pages = sqlite3_column_int64(s, 2);
		out->incremental_vacuum = sqlite3_column_int(s, 3) == 2;
		out->deleted_deliveries = sqlite3_column_int64(s, 4);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return db_error(st, err, "size");
	const char *path = sqlite3_db_filename(st->db, "main");
	out->file_bytes = file_bytes(path, "");
	out->wal_bytes = file_bytes(path, "-wal");
	return 0;
}
