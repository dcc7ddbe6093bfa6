/*
 * results: the tables of fetched Qase results (see results.h).  Statements
 * are prepared per call: a run's rows are written a page (100) at a time,
 * far from the delivery path, where a prepare costs nothing that shows.
 */
#include "store/results.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_db.h"

static int fail(sqlite3 *db, struct err *err, const char *what)
{
	return err_set(err, "store: %s: %s", what, sqlite3_errmsg(db));
}

static sqlite3_stmt *prep(struct store *st, const char *sql, struct err *err)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(store_sqlite(st), sql, -1, &s, NULL) != SQLITE_OK) {
		fail(store_sqlite(st), err, "prepare");
		return NULL;
	}
	return s;
}

static void text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static void num(sqlite3_stmt *s, int i, long long v)
{
	if (v >= 0)
		sqlite3_bind_int64(s, i, v);
	else
		sqlite3_bind_null(s, i);
}

/* Steps a write to its end and finalizes it. */
static int done(struct store *st, sqlite3_stmt *s, struct err *err, const char *what)
{
	int rc = sqlite3_step(s);

	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fail(store_sqlite(st), err, what);
}

static const char *col(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

static long long col_num(sqlite3_stmt *s, int i)
{
	return sqlite3_column_type(s, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, i);
}

int store_result_put(struct store *st, const char *project, long long run_id,
		     const struct result_row *r, struct err *err)
{
	/* the latest end_time wins; an unknown one (-1) loses to any */
	sqlite3_stmt *s = prep(st,
			       "INSERT INTO results(project, run_id, case_id, status, hash,"
			       " duration_ms, end_ms, end_time, message, stacktrace)"
			       " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
			       " ON CONFLICT(project, run_id, case_id) DO UPDATE SET"
			       " status = excluded.status, hash = excluded.hash,"
			       " duration_ms = excluded.duration_ms, end_ms = excluded.end_ms,"
			       " end_time = excluded.end_time, message = excluded.message,"
			       " stacktrace = excluded.stacktrace"
			       " WHERE coalesce(excluded.end_ms, -1) >= coalesce(results.end_ms, -1)",
			       err);
	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, run_id);
	sqlite3_bind_int64(s, 3, r->case_id);
	text(s, 4, r->status ? r->status : "");
	text(s, 5, r->hash);
	num(s, 6, r->duration_ms);
	num(s, 7, r->end_ms);
	text(s, 8, r->end_time);
	text(s, 9, r->message);
	text(s, 10, r->stacktrace);
	return done(st, s, err, "result");
}

#define ROW_COLS                                                                              \
	"r.case_id, r.status, c.title, c.suite, r.message, r.stacktrace, r.end_time, r.hash," \
	" r.duration_ms, r.end_ms, c.fields"
#define ROW_FROM                                                     \
	" FROM results r LEFT JOIN cases c ON c.project = r.project" \
	" AND c.case_id = r.case_id WHERE r.project = ?1 AND r.run_id = ?2"

static void row_of(sqlite3_stmt *s, struct result_row *r)
{
	*r = (struct result_row){
		.case_id = sqlite3_column_int64(s, 0),
		.status = col(s, 1),
		.title = col(s, 2),
		.suite = col(s, 3),
		.message = col(s, 4),
		.stacktrace = col(s, 5),
		.end_time = col(s, 6),
		.hash = col(s, 7),
		.duration_ms = col_num(s, 8),
		.end_ms = col_num(s, 9),
		.case_fields = col(s, 10),
	};
}

/* Runs a query of result rows to its end (or until fn says stop). */
static int rows_each(struct store *st, sqlite3_stmt *s, result_fn fn, void *ctx, size_t *n_out,
		     struct err *err)
{
	struct result_row r;
	size_t n = 0;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row_of(s, &r);
		n++;
		if (fn(ctx, &r) < 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(s);
	if (n_out)
		*n_out = n;
	return rc == SQLITE_DONE ? 0 : fail(store_sqlite(st), err, "results");
}

int store_results_each(struct store *st, const char *project, long long run_id, long long after_case,
		       size_t limit, result_fn fn, void *ctx, size_t *n_out, struct err *err)
{
	sqlite3_stmt *s = prep(
		st, "SELECT " ROW_COLS ROW_FROM " AND r.case_id > ?3 ORDER BY r.case_id LIMIT ?4",
		err);

	if (n_out)
		*n_out = 0;
	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, run_id);
	sqlite3_bind_int64(s, 3, after_case);
	sqlite3_bind_int64(s, 4, limit ? (long long)limit : -1);
	return rows_each(st, s, fn, ctx, n_out, err);
}

int store_results_with_status(struct store *st, const char *project, long long run_id,
			      const char *statuses, size_t limit, result_fn fn, void *ctx,
			      struct err *err)
{
	/* instr over ",a,b," keeps the statement one text for any list */
	sqlite3_stmt *s = prep(st,
			       "SELECT " ROW_COLS ROW_FROM
			       " AND instr(',' || ?3 || ',', ',' || r.status || ',') > 0"
			       " ORDER BY r.case_id LIMIT ?4",
			       err);

	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, run_id);
	text(s, 3, statuses);
	sqlite3_bind_int64(s, 4, limit ? (long long)limit : -1);
	return rows_each(st, s, fn, ctx, NULL, err);
}

int store_results_count(struct store *st, const char *project, long long run_id, long long *out,
			struct err *err)
{
	sqlite3_stmt *s = prep(st, "SELECT count(*) FROM results WHERE project = ?1 AND run_id = ?2",
			       err);
	int rc;

	*out = 0;
	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, run_id);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : fail(store_sqlite(st), err, "count");
}

int store_results_by_status(struct store *st, const char *project, long long run_id,
			    void (*fn)(void *ctx, const char *status, long long n), void *ctx,
			    struct err *err)
{
	sqlite3_stmt *s = prep(st,
			       "SELECT status, count(*) FROM results WHERE project = ?1"
			       " AND run_id = ?2 GROUP BY status ORDER BY status",
			       err);
	int rc;

	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, run_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(ctx, col(s, 0), sqlite3_column_int64(s, 1));
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fail(store_sqlite(st), err, "counts");
}

int store_results_missing_cases(struct store *st, const char *project, long long run_id,
				long long after_case, size_t limit,
				int (*fn)(void *ctx, long long case_id), void *ctx, struct err *err)
{
	sqlite3_stmt *s = prep(st,
			       "SELECT r.case_id" ROW_FROM " AND r.case_id > ?3 AND c.title IS NULL"
			       " ORDER BY r.case_id LIMIT ?4",
			       err);
	int rc;

	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, run_id);
	sqlite3_bind_int64(s, 3, after_case);
	sqlite3_bind_int64(s, 4, limit ? (long long)limit : -1);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (fn(ctx, sqlite3_column_int64(s, 0)) < 0) {
			rc = SQLITE_DONE;
			break;
		}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fail(store_sqlite(st), err, "missing cases");
}

int store_run_has_case(struct store *st, const char *project, long long run_id, long long case_id,
		       struct err *err)
{
	sqlite3_stmt *s = prep(st,
			       "SELECT 1 FROM results WHERE project = ?1 AND run_id = ?2"
			       " AND case_id = ?3",
			       err);
	int rc;

	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, run_id);
	sqlite3_bind_int64(s, 3, case_id);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : fail(store_sqlite(st), err, "case");
}

int store_case_put(struct store *st, const char *project, long long case_id, const char *title,
		   long long suite_id, const char *fields_json, struct err *err)
{
	/* the suite path is written once the suites are known */
	sqlite3_stmt *s = prep(st,
			       "INSERT INTO cases(project, case_id, title, suite_id, fields)"
			       " VALUES(?1,?2,?3,?4,?5) ON CONFLICT(project, case_id) DO UPDATE"
			       " SET title = excluded.title, suite_id = excluded.suite_id,"
			       " fields = excluded.fields",
			       err);

	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, case_id);
	text(s, 3, title ? title : "");
	num(s, 4, suite_id);
	text(s, 5, fields_json);
	return done(st, s, err, "case");
}

int store_suite_put(struct store *st, const char *project, long long suite_id, const char *title,
		    long long parent_id, struct err *err)
{
	sqlite3_stmt *s = prep(st,
			       "INSERT OR REPLACE INTO suites(project, suite_id, title, parent_id)"
			       " VALUES(?1,?2,?3,?4)",
			       err);

	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, suite_id);
	text(s, 3, title ? title : "");
	num(s, 4, parent_id);
	return done(st, s, err, "suite");
}

int store_cases_set_paths(struct store *st, const char *project, long long run_id, struct err *err)
{
	/* each suite's path from its root, at most 32 levels (a cycle in
	 * the parents ends there), then every case of the run gets its own */
	sqlite3_stmt *s = prep(
		st,
		"WITH RECURSIVE up(leaf, parent, path, depth) AS ("
		" SELECT s.suite_id, s.parent_id, s.title, 1 FROM suites s WHERE s.project = ?1"
		"  AND s.suite_id IN (SELECT c.suite_id FROM cases c JOIN results r"
		"   ON r.project = c.project AND r.case_id = c.case_id"
		"   WHERE r.project = ?1 AND r.run_id = ?2)"
		" UNION ALL"
		" SELECT up.leaf, s.parent_id, s.title || ' / ' || up.path, up.depth + 1"
		"  FROM up JOIN suites s ON s.project = ?1 AND s.suite_id = up.parent"
		"  WHERE up.depth < 32)"
		" UPDATE cases SET suite = (SELECT path FROM up WHERE up.leaf = cases.suite_id"
		"  ORDER BY depth DESC LIMIT 1)"
		" WHERE project = ?1 AND case_id IN (SELECT case_id FROM results"
		"  WHERE project = ?1 AND run_id = ?2)",
		err);

	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, run_id);
	return done(st, s, err, "suite paths");
}

int store_fetch_get(struct store *st, const char *project, long long run_id, struct fetch_rec *out,
		    int *found, struct err *err)
{
	sqlite3_stmt *s = prep(st,
			       "SELECT delivery_id, phase, next_offset, total FROM fetches"
			       " WHERE project = ?1 AND run_id = ?2",
			       err);
	int rc;

	*found = 0;
	memset(out, 0, sizeof(*out));
	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, run_id);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*found = 1;
		snprintf(out->delivery_id, sizeof(out->delivery_id), "%s", col(s, 0));
		snprintf(out->phase, sizeof(out->phase), "%s", col(s, 1));
		out->offset = sqlite3_column_int64(s, 2);
		out->total = sqlite3_column_int64(s, 3);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(store_sqlite(st), err, "fetch");
}

int store_fetch_put(struct store *st, const char *project, long long run_id,
		    const struct fetch_rec *f, long long now_ms, struct err *err)
{
	sqlite3_stmt *s = prep(st,
			       "INSERT OR REPLACE INTO fetches(project, run_id, delivery_id, phase,"
			       " next_offset, total, updated_ms) VALUES(?1,?2,?3,?4,?5,?6,?7)",
			       err);

	if (!s)
		return -1;
	text(s, 1, project ? project : "");
	sqlite3_bind_int64(s, 2, run_id);
	text(s, 3, f->delivery_id);
	text(s, 4, f->phase);
	sqlite3_bind_int64(s, 5, f->offset);
	sqlite3_bind_int64(s, 6, f->total);
	sqlite3_bind_int64(s, 7, now_ms);
	return done(st, s, err, "fetch");
}

int store_routed_get(struct store *st, const char *delivery_id, char out[16], struct err *err)
{
	sqlite3_stmt *s = prep(st, "SELECT status FROM routed WHERE delivery_id = ?1", err);
	int rc;

	out[0] = '\0';
	if (!s)
		return -1;
	text(s, 1, delivery_id);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		snprintf(out, 16, "%s", col(s, 0));
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(store_sqlite(st), err, "routed");
}

int store_routed_put(struct store *st, const char *project, long long run_id, const char *delivery_id,
		     const char *status, const char *event_json, long long now_ms, struct err *err)
{
	sqlite3_stmt *s = prep(st,
			       "INSERT OR REPLACE INTO routed(delivery_id, status, routed_ms)"
			       " VALUES(?1,?2,?3)",
			       err);

	if (!s)
		return -1;
	text(s, 1, delivery_id);
	text(s, 2, status);
	sqlite3_bind_int64(s, 3, now_ms);
	if (done(st, s, err, "routed") < 0)
		return -1;
	if (!event_json)
		return 0;
	long long seq;
	if (store_delivery_seq(st, project, run_id, delivery_id, &seq, err) < 0)
		return -1;
	if (!(s = prep(st, "UPDATE deliveries SET event = ?2 WHERE seq = ?1", err)))
		return -1;
	sqlite3_bind_int64(s, 1, seq);
	text(s, 2, event_json);
	return done(st, s, err, "event");
}

int store_delivery_seq(struct store *st, const char *project, long long run_id,
		       const char *delivery_id, long long *out, struct err *err)
{
	/* the dedup index leads with (project, run id) */
	sqlite3_stmt *s = prep(st,
			       "SELECT seq FROM deliveries WHERE project IS ?2 AND run_id = ?3"
			       " AND id = ?1",
			       err);
	int rc;

	*out = -1;
	if (!s)
		return -1;
	text(s, 1, delivery_id);
	text(s, 2, project);
	sqlite3_bind_int64(s, 3, run_id);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fail(store_sqlite(st), err, "delivery");
}

int store_deferred_each(struct store *st,
			void (*fn)(void *ctx, const char *project, long long run_id), void *ctx,
			struct err *err)
{
	/* jobs_open (state < 2) keeps this to the open jobs */
	sqlite3_stmt *s = prep(st,
			       "SELECT d.project, d.run_id FROM jobs j JOIN deliveries d"
			       " ON d.seq = j.delivery_seq WHERE j.state < 2 AND j.kind = 'results'"
			       " AND NOT EXISTS (SELECT 1 FROM routed WHERE delivery_id = d.id)",
			       err);
	int rc;

	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		fn(ctx, col(s, 0), sqlite3_column_int64(s, 1));
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : fail(store_sqlite(st), err, "deferred");
}
