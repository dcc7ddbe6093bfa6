/*
 * retention: one pass walks the deliveries in receipt order (seq) from the
 * oldest, a batch a step, deletes those the policy lets go, and ends at the
 * end of the table or after RETENTION_BATCH deliveries in a row too young
 * for either age: receipt order is time order, so nothing past them can be
 * due.  The count of that run is carried from step to step (a batch starts
 * at RETENTION_BATCH_MIN rows and a cut for time can shrink it again) and
 * goes back to 0 at any delivery old enough for an age, so a few rows stamped
 * by a clock that jumped ahead cannot stop retention for good, even when
 * they are the oldest in the table and every pass starts at them.  Passes
 * repeat every RETENTION_PASS_EVERY_MS; what a pass keeps (open or recently
 * dead jobs) is looked at again by the next.  Each step is one transaction,
 * bounded in rows and in time, so the writer can go back to its queue
 * within a few milliseconds.
 */
#include "store/retention.h"
#include "store/store_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"

#define DAY_MS (86400LL * 1000)

enum { VACUUM_SLACK = 64 }; /* free pages left for the next inserts */

enum rstmt {
	R_MAXSEQ,
	R_LASTJOB,
	R_SCAN,
	R_DEL_ATTEMPTS,
	R_DEL_JOBS,
	R_DEL_ROUTED,
	R_DEL_DELIVERY,
	R_RUN_LEFT,
	R_DEL_RUN,
	R_DEL_RESULTS,
	R_DEL_FETCH,
	R_MAP_NEXT,
	R_DEL_MAP,
	R_COUNT_ADD,
	R_FREELIST,
	R_N
};

static const char *const rsql[R_N] = {
	[R_MAXSEQ] = "SELECT IFNULL(MAX(seq), 0) FROM deliveries",
	[R_LASTJOB] = "SELECT delivery_seq FROM jobs ORDER BY id DESC LIMIT 1",
	/* 2: an open job, 1: a dead one, 0 or NULL: all done or no job */
	[R_SCAN] = "SELECT d.seq, d.received_ms, d.project, d.run_id,"
		   " (SELECT MAX(CASE WHEN j.state < 2 THEN 2 WHEN j.state = 3 THEN 1"
		   " ELSE 0 END) FROM jobs j WHERE j.delivery_seq = d.seq)"
		   " FROM deliveries d WHERE d.seq > ?1 ORDER BY d.seq LIMIT ?2",
	[R_DEL_ATTEMPTS] = "DELETE FROM attempts WHERE job_id IN"
			   " (SELECT id FROM jobs WHERE delivery_seq = ?1)",
	[R_DEL_JOBS] = "DELETE FROM jobs WHERE delivery_seq = ?1",
	[R_DEL_ROUTED] = "DELETE FROM routed WHERE delivery_id ="
			 " (SELECT id FROM deliveries WHERE seq = ?1)",
	[R_DEL_DELIVERY] = "DELETE FROM deliveries WHERE seq = ?1",
	[R_RUN_LEFT] = "SELECT 1 FROM deliveries WHERE project IS ?1 AND run_id = ?2 LIMIT 1",
	[R_DEL_RUN] = "DELETE FROM runs WHERE project = ?1 AND run_id = ?2",
	[R_DEL_RESULTS] = "DELETE FROM results WHERE project = ?1 AND run_id = ?2",
	[R_DEL_FETCH] = "DELETE FROM fetches WHERE project = ?1 AND run_id = ?2",
	/* target_runs leads with (kind, target): walk its few distinct pairs */
	[R_MAP_NEXT] = "SELECT kind, target FROM target_runs WHERE (kind, target) > (?1, ?2)"
		       " ORDER BY kind, target LIMIT 1",
	[R_DEL_MAP] = "DELETE FROM target_runs WHERE kind = ?1 AND target = ?2"
		      " AND project = ?3 AND run_id = ?4",
	[R_COUNT_ADD] = "INSERT INTO meta(key, value) VALUES(?1, ?2) ON CONFLICT(key) DO UPDATE"
			" SET value = CAST(value AS INTEGER) + CAST(excluded.value AS INTEGER)",
	[R_FREELIST] = "PRAGMA freelist_count",
};

/* A delivery the scan looked at. */
struct seen {
	long long seq, received_ms, run_id;
	int cls; /* 2 open job, 1 dead job, 0 all done */
	char *project;
};

/* A run that lost a delivery in this step. */
struct run_key {
	char *project; /* "" for none, as the registry keeps it */
	long long run_id;
};

struct retention {
	sqlite3 *db; /* the connection the statements belong to */
	sqlite3_stmt *s[R_N];
	int auto_vacuum; /* 2: incremental */
	int done_days, dead_days;
	int pass_active, vacuum_pending;
	int batch;     /* deliveries the next scan reads: what fitted the last budget */
	int young_run; /* deliveries too young in a row, up to the cursor */
	long long cursor, next_pass_ms;
	struct seen seen[RETENTION_BATCH];
	struct run_key runs[RETENTION_BATCH];
	size_t nseen, nruns;
};

int retention_new(struct retention **out, struct err *err)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : err_set(err, "out of memory");
}

static void forget_rows(struct retention *r)
{
	for (size_t i = 0; i < r->nseen; i++)
		free(r->seen[i].project);
	for (size_t i = 0; i < r->nruns; i++)
		free(r->runs[i].project);
	r->nseen = r->nruns = 0;
}

static void finalize_all(struct retention *r)
{
	for (int i = 0; i < R_N; i++) {
		sqlite3_finalize(r->s[i]);
		r->s[i] = NULL;
	}
	r->db = NULL;
}

void retention_free(struct retention *r)
{
	if (!r)
		return;
	forget_rows(r);
	finalize_all(r);
	free(r);
}

void retention_set_policy(struct retention *r, int done_days, int dead_days)
{
	if (r->done_days == done_days && r->dead_days == dead_days)
		return;
	r->done_days = done_days;
	r->dead_days = dead_days;
	r->pass_active = 0;
	r->next_pass_ms = 0; /* a new pass at once, from the oldest */
}

static int policy_on(const struct retention *r)
{
	return r->done_days > 0 || r->dead_days > 0;
}

long long retention_due_in_ms(const struct retention *r, long long now_ms)
{
	if (r->pass_active || r->vacuum_pending)
		return 0;
	if (!policy_on(r))
		return -1;
	return r->next_pass_ms > now_ms ? r->next_pass_ms - now_ms : 0;
}

/* ---- statements ----------------------------------------------------------- */

static int fail(sqlite3 *db, struct err *err, const char *what)
{
	return err_set(err, "retention: %s: %s", what, sqlite3_errmsg(db));
}

static sqlite3_stmt *rs(struct retention *r, enum rstmt id, struct err *err)
{
	if (!r->s[id] && sqlite3_prepare_v3(r->db, rsql[id], -1, SQLITE_PREPARE_PERSISTENT,
					    &r->s[id], NULL) != SQLITE_OK) {
		fail(r->db, err, "prepare");
		return NULL;
	}
	sqlite3_reset(r->s[id]);
	sqlite3_clear_bindings(r->s[id]);
	return r->s[id];
}

/* Steps s to its end (a write, or a one-row read whose value goes to *v). */
static int run_stmt(struct retention *r, sqlite3_stmt *s, long long *v, struct err *err,
		    const char *what)
{
	int rc;

	if (v)
		*v = -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		if (v && *v < 0)
			*v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : fail(r->db, err, what);
}

static int exec_seq(struct retention *r, enum rstmt id, long long seq, long long *changes,
		    struct err *err)
{
	sqlite3_stmt *s = rs(r, id, err);
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, seq);
	if (run_stmt(r, s, NULL, err, "delete") < 0)
		return -1;
	if (changes)
		*changes += sqlite3_changes(r->db);
	return 0;
}

static void bind_run(sqlite3_stmt *s, int i, const struct run_key *k)
{
	sqlite3_bind_text(s, i, k->project, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, i + 1, k->run_id);
}

/* ---- deleting deliveries ------------------------------------------------- */

/* Reads the next batch past the cursor; *end: it reaches the end of the
 * table. */
static int scan(struct retention *r, int *end, struct err *err)
{
	sqlite3_stmt *s = rs(r, R_SCAN, err);
	int rc;

	*end = 0;
	if (!s)
		return -1;
	sqlite3_bind_int64(s, 1, r->cursor);
	sqlite3_bind_int(s, 2, r->batch);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct seen *v = &r->seen[r->nseen];
		const unsigned char *p = sqlite3_column_text(s, 2);
		v->seq = sqlite3_column_int64(s, 0);
		v->received_ms = sqlite3_column_int64(s, 1);
		v->run_id = sqlite3_column_int64(s, 3);
		v->cls = sqlite3_column_int(s, 4);
		v->project = strdup(p ? (const char *)p : "");
		if (!v->project) {
			sqlite3_reset(s);
			return err_set(err, "out of memory");
		}
		r->nseen++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(r->db, err, "scan");
	if (r->nseen < (size_t)r->batch)
		*end = 1;
	return 0;
}

static int expired(const struct retention *r, const struct seen *v, long long now_ms)
{
	int days = v->cls == 1 ? r->dead_days : r->done_days;
	return v->cls != 2 && days > 0 && v->received_ms <= now_ms - days * DAY_MS;
}

static int delete_delivery(struct retention *r, const struct seen *v, struct retention_step *out,
			   struct err *err)
{
	long long deleted = 0;

	if (exec_seq(r, R_DEL_ATTEMPTS, v->seq, NULL, err) < 0 ||
	    exec_seq(r, R_DEL_JOBS, v->seq, &out->jobs, err) < 0 ||
	    exec_seq(r, R_DEL_ROUTED, v->seq, NULL, err) < 0 ||
	    exec_seq(r, R_DEL_DELIVERY, v->seq, &deleted, err) < 0)
		return -1;
	out->deliveries += deleted;
	if (v->run_id <= 0 || (r->nruns && r->runs[r->nruns - 1].run_id == v->run_id &&
			       !strcmp(r->runs[r->nruns - 1].project, v->project)))
		return 0;
	struct run_key *k = &r->runs[r->nruns];
	if (!(k->project = strdup(v->project)))
		return err_set(err, "out of memory");
	k->run_id = v->run_id;
	r->nruns++;
	return 0;
}

/* The seq of the newest delivery and of the newest job's: never deleted,
 * so SQLite never hands out a row id again. */
static int newest(struct retention *r, long long *seq, long long *job_seq, struct err *err)
{
	sqlite3_stmt *a = rs(r, R_MAXSEQ, err);
	if (!a || run_stmt(r, a, seq, err, "newest delivery") < 0)
		return -1;
	sqlite3_stmt *b = rs(r, R_LASTJOB, err);
	return b ? run_stmt(r, b, job_seq, err, "newest job") : -1;
}

static int delete_batch(struct retention *r, long long now_ms, struct retention_step *out,
			struct err *err)
{
	int young_days = r->done_days > 0 && (r->dead_days <= 0 || r->done_days < r->dead_days)
				 ? r->done_days
				 : r->dead_days;
	long long t0 = clock_mono_us(), young_ms = now_ms - young_days * DAY_MS, keep_seq,
		  keep_job_seq;
	int end;

	if (newest(r, &keep_seq, &keep_job_seq, err) < 0 || scan(r, &end, err) < 0)
		return -1;
	for (size_t i = 0; i < r->nseen; i++) {
		const struct seen *v = &r->seen[i];
		if (v->seq != keep_seq && v->seq != keep_job_seq && expired(r, v, now_ms) &&
		    delete_delivery(r, v, out, err) < 0)
			return -1;
		r->cursor = v->seq;
		r->young_run = v->received_ms > young_ms ? r->young_run + 1 : 0;
		if (r->young_run >= RETENTION_BATCH) {
			end = 1; /* nothing past them can be due */
			goto done;
		}
		if (clock_mono_us() - t0 > RETENTION_BUDGET_US && i + 1 < r->nseen) {
			end = 0; /* the rest of this batch in the next step */
			/* scan no more than the budget deletes (rows it
			 * reads and leaves are read again) */
			r->batch = (int)(i + 1) < RETENTION_BATCH_MIN ? RETENTION_BATCH_MIN
								      : (int)(i + 1);
			goto done;
		}
	}
	if (r->nseen == (size_t)r->batch)
		r->batch = r->batch * 2 < RETENTION_BATCH ? r->batch * 2 : RETENTION_BATCH;
done:
	if (end)
		r->pass_active = 0;
	return 0;
}

/* ---- what a run leaves behind -------------------------------------------- */

static int run_has_delivery(struct retention *r, const struct run_key *k, int *out, struct err *err)
{
	long long v;

	/* deliveries keep a missing project as NULL, the registry as "" */
	for (int pass = 0; pass < (k->project[0] ? 1 : 2); pass++) {
		sqlite3_stmt *s = rs(r, R_RUN_LEFT, err);
		if (!s)
			return -1;
		if (pass == 0)
			sqlite3_bind_text(s, 1, k->project, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, k->run_id);
		if (run_stmt(r, s, &v, err, "run lookup") < 0)
			return -1;
		if (v > 0) {
			*out = 1;
			return 0;
		}
	}
	*out = 0;
	return 0;
}

static int delete_maps(struct retention *r, const struct run_key *k, struct err *err)
{
	char *kind = strdup(""), *target = strdup("");
	int rc = -1;

	if (!kind || !target) {
		err_set(err, "out of memory");
		goto done;
	}
	for (;;) {
		sqlite3_stmt *s = rs(r, R_MAP_NEXT, err);
		if (!s)
			goto done;
		sqlite3_bind_text(s, 1, kind, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 2, target, -1, SQLITE_TRANSIENT);
		int step = sqlite3_step(s);
		if (step == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			fail(r->db, err, "mappings");
			goto done;
		}
		free(kind);
		free(target);
		kind = strdup((const char *)sqlite3_column_text(s, 0));
		target = strdup((const char *)sqlite3_column_text(s, 1));
		sqlite3_reset(s);
		sqlite3_stmt *d = kind && target ? rs(r, R_DEL_MAP, err) : NULL;
		if (!d) {
			if (!kind || !target)
				err_set(err, "out of memory");
			goto done;
		}
		sqlite3_bind_text(d, 1, kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(d, 2, target, -1, SQLITE_STATIC);
		bind_run(d, 3, k);
		if (run_stmt(r, d, NULL, err, "mapping delete") < 0)
			goto done;
	}
	rc = 0;
done:
	if (r->s[R_MAP_NEXT])
		sqlite3_reset(r->s[R_MAP_NEXT]);
	free(kind);
	free(target);
	return rc;
}

static int delete_run_rows(struct retention *r, const struct run_key *k, struct err *err)
{
	static const enum rstmt per_run[] = { R_DEL_RUN, R_DEL_RESULTS, R_DEL_FETCH };

	for (size_t i = 0; i < sizeof(per_run) / sizeof(per_run[0]); i++) {
		sqlite3_stmt *s = rs(r, per_run[i], err);
		if (!s)
			return -1;
		bind_run(s, 1, k);
		if (run_stmt(r, s, NULL, err, "run delete") < 0)
			return -1;
	}
	return delete_maps(r, k, err);
}

static int delete_runs(struct retention *r, struct retention_step *out, struct err *err)
{
	for (size_t i = 0; i < r->nruns; i++) {
		int left;
		if (run_has_delivery(r, &r->runs[i], &left, err) < 0)
			return -1;
		if (left)
			continue;
		if (delete_run_rows(r, &r->runs[i], err) < 0)
			return -1;
		out->runs++;
	}
	return 0;
}

static int count_add(struct retention *r, const char *key, long long n, struct err *err)
{
	sqlite3_stmt *s = n ? rs(r, R_COUNT_ADD, err) : NULL;
	if (!n)
		return 0;
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, n);
	return run_stmt(r, s, NULL, err, "counters");
}

/* ---- space ------------------------------------------------------------- */

/* Gives free pages back to the file system, RETENTION_VACUUM_PAGES a step:
 * once a pass has ended, or during one when the free list has grown past
 * RETENTION_VACUUM_DURING (new deliveries reuse free pages meanwhile, and
 * moving pages costs the writer more than deleting rows). */
static int vacuum(struct retention *r, struct retention_step *out, struct err *err)
{
	long long before, after;
	char sql[64];

	sqlite3_stmt *s = rs(r, R_FREELIST, err);
	if (!s || run_stmt(r, s, &before, err, "freelist") < 0)
		return -1;
	r->vacuum_pending = 0;
	if (r->pass_active && before <= RETENTION_VACUUM_DURING) {
		r->vacuum_pending = before > VACUUM_SLACK; /* after the pass */
		return 0;
	}
	if (before <= VACUUM_SLACK)
		return 0;
	long long n = before - VACUUM_SLACK;
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)",
		 n < RETENTION_VACUUM_PAGES ? n : (long long)RETENTION_VACUUM_PAGES);
	if (sqlite3_exec(r->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return fail(r->db, err, "incremental vacuum");
	if (!(s = rs(r, R_FREELIST, err)) || run_stmt(r, s, &after, err, "freelist") < 0)
		return -1;
	out->pages += before - after;
	r->vacuum_pending = after > VACUUM_SLACK;
	return 0;
}

static int attach(struct retention *r, sqlite3 *db, struct err *err)
{
	sqlite3_stmt *s = NULL;

	if (r->db == db)
		return 0;
	finalize_all(r);
	r->db = db;
	if (sqlite3_prepare_v2(db, "PRAGMA auto_vacuum", -1, &s, NULL) != SQLITE_OK)
		return fail(db, err, "prepare");
	r->auto_vacuum = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);
	return 0;
}

/* ---- one step -------------------------------------------------------------- */

static int step_in_txn(struct retention *r, long long now_ms, struct retention_step *out,
		       struct err *err)
{
	if (r->pass_active && (delete_batch(r, now_ms, out, err) < 0 || delete_runs(r, out, err) < 0 ||
			       count_add(r, "deleted_deliveries", out->deliveries, err) < 0 ||
			       count_add(r, "deleted_jobs", out->jobs, err) < 0))
		return -1;
	if (r->auto_vacuum == 2 && vacuum(r, out, err) < 0)
		return -1;
	return 0;
}

int retention_run(struct retention *r, struct store *st, long long now_ms,
		  struct retention_step *out, struct err *err)
{
	memset(out, 0, sizeof(*out));
	if (attach(r, store_sqlite(st), err) < 0)
		return -1;
	if (!r->pass_active && policy_on(r) && now_ms >= r->next_pass_ms) {
		r->pass_active = 1;
		r->cursor = 0;
		r->batch = RETENTION_BATCH_MIN;
		r->young_run = 0;
	}
	if (!r->pass_active && !r->vacuum_pending)
		return 0;
	int was_active = r->pass_active;
	/* no fsync for deletions: a FULL commit after them syncs them too */
	sqlite3_exec(r->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
	int rc = store_begin(st, err);
	if (rc == 0 && (rc = step_in_txn(r, now_ms, out, err)) == 0)
		rc = store_commit(st, err);
	if (rc < 0)
		store_rollback(st);
	if (sqlite3_exec(r->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK) {
		/* a writer that would acknowledge without an fsync must not go on */
		log_kv(LOG_ERROR, "store: cannot set synchronous=FULL again; stopping", "error",
		       sqlite3_errmsg(r->db), NULL);
		abort();
	}
	forget_rows(r);
	if (rc < 0) {
		memset(out, 0, sizeof(*out));
		r->pass_active = r->vacuum_pending = 0;
		r->next_pass_ms = now_ms + RETENTION_PASS_EVERY_MS;
		return -1;
	}
	if (was_active && !r->pass_active)
		r->next_pass_ms = now_ms + RETENTION_PASS_EVERY_MS;
	return 0;
}
