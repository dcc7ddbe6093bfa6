/*
 * api_query: deliveries and jobs, and the connections every read uses
 * (api_query.h).
 *
 * Indexes.  The store's own indexes serve most reads: seq (deliveries in
 * receipt order), job ids, deliveries_key (the events of one run), jobs_open
 * and jobs_dead_by (the open and dead jobs), jobs_by_delivery (the jobs of a
 * delivery or run; retention needs it too) and runs_updated (runs by last
 * change, written only by run.* events): the last two grow at their
 * right-hand end, so a group commit writes a tail page more for each.
 *
 * A delivery is found by its id alone without an index keyed by the random
 * sha256 (which would write a random page per delivery): with the project
 * and run_id the lists give it is a deliveries_key lookup; without, the
 * newest API_ID_SCAN deliveries are searched.
 *
 * A filtered list reads its candidates in key order and stops at a full
 * page: a range of seq or job id (at most API_SCAN_BUDGET of them), or of
 * the state's partial index (its newest API_SCAN_BUDGET entries), never a
 * list of ids built first and joined back.  Reads map the database file
 * (mmap_size) rather than copy each page.
 */
#include "api/api_query.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>

#include "api/api.h"
#include "store/store.h"
#include "store/store_db.h"

enum { POOL_MAX = 8, API_ID_SCAN = 1000000 };

/* Address space, not memory: the file's pages stay the kernel's cache
 * (SQLite caps it at its SQLITE_MAX_MMAP_SIZE, 2 GiB by default). */
#define API_MMAP_BYTES "2147418112"

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct store *pool[POOL_MAX];
static size_t npool;
static char *data_dir;

/* The one writable connection (replays), opened at the first write and
 * kept: one write at a time, as SQLite takes them anyway. */
static pthread_mutex_t writer_mu = PTHREAD_MUTEX_INITIALIZER;
static struct store *writer;

/* The indexes the queries lean on (jobs_by_delivery, runs_updated,
 * jobs_dead_by) are the store's own (store.c's schema): the API adds none. */
int api_db_init(const char *dir)
{
	struct err err;

	if (!(data_dir = strdup(dir)))
		return -1;
	/* opened now, so that no replay waits for it (a failure here is
	 * tried again at the first write, which reports it) */
	api_db_writer_done(api_db_writer(&err), 0);
	return 0;
}

void api_db_free(void)
{
	pthread_mutex_lock(&pool_mu);
	while (npool)
		store_close(pool[--npool]);
	pthread_mutex_unlock(&pool_mu);
	pthread_mutex_lock(&writer_mu);
	store_close(writer);
	writer = NULL;
	pthread_mutex_unlock(&writer_mu);
	free(data_dir);
	data_dir = NULL;
}

struct store *api_db_get(void)
{
	struct store *st = NULL;
	struct err err;

	pthread_mutex_lock(&pool_mu);
	if (npool)
		st = pool[--npool];
	pthread_mutex_unlock(&pool_mu);
	if (!st && store_open(&st, data_dir, STORE_RO, &err) == 0)
		/* a page of 500 runs reads a few thousand pages of a large
		 * store: from the mapping, not a pread and a copy each */
		sqlite3_exec(store_sqlite(st), "PRAGMA mmap_size=" API_MMAP_BYTES, NULL, NULL, NULL);
	return st;
}

void api_db_put(struct store *st)
{
	pthread_mutex_lock(&pool_mu);
	if (st && npool < POOL_MAX) {
		pool[npool++] = st;
		st = NULL;
	}
	pthread_mutex_unlock(&pool_mu);
	store_close(st);
}

struct store *api_db_writer(struct err *err)
{
	pthread_mutex_lock(&writer_mu);
	if (!writer) {
		if (store_open(&writer, data_dir, STORE_RW, err) < 0) {
			pthread_mutex_unlock(&writer_mu);
			return NULL;
		}
		/* the checkpoint a large replay makes due runs after its
		 * answer (api_db_writer_done), not inside its commit */
		sqlite3_exec(store_sqlite(writer),
			     "PRAGMA wal_autocheckpoint=0; PRAGMA mmap_size=" API_MMAP_BYTES, NULL,
			     NULL, NULL);
	}
	return writer;
}

void api_db_writer_done(struct store *st, int checkpoint)
{
	if (!st)
		return;
	/* PASSIVE: copies what no reader still needs, waits for no one
	 * (busy while the daemon's checkpoint thread copies: it then will) */
	if (checkpoint)
		sqlite3_wal_checkpoint_v2(store_sqlite(st), NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
					  NULL);
	pthread_mutex_unlock(&writer_mu);
}

/* ---- arguments ------------------------------------------------------------- */

int api_arg(const struct api_req *r, const char *name, char *out, size_t len)
{
	out[0] = '\0';
	if (!r->qs)
		return 0;
	int n = mg_get_var(r->qs, strlen(r->qs), name, out, len);
	if (n == -1)
		return 0;
	return n < 0 ? -1 : 1;
}

static int parse_nonneg(const char *s, long long *out)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return -1;
	long long v = strtoll(s, &end, 10);
	if (*end || v < 0 || v == LLONG_MAX)
		return -1;
	*out = v;
	return 0;
}

int api_page(const struct api_req *r, int *limit, long long *cursor)
{
	char v[32];
	long long n;

	*limit = API_LIMIT_DEFAULT;
	*cursor = LLONG_MAX;
	int got = api_arg(r, "limit", v, sizeof(v));
	if (got < 0 || (got && (parse_nonneg(v, &n) < 0 || n < 1 || n > API_LIMIT_MAX))) {
		api_reply_error(r->c, 400, "limit must be an integer from 1 to 500");
		return 400;
	}
	if (got)
		*limit = (int)n;
	got = api_arg(r, "cursor", v, sizeof(v));
	if (got < 0 || (got && parse_nonneg(v, cursor) < 0)) {
		api_reply_error(r->c, 400, "cursor is not one this API gave");
		return 400;
	}
	return 0;
}

/* ---- rows ------------------------------------------------------------------ */

const char *api_state_name(int state)
{
	static const char *const names[] = { "pending", "retrying", "done", "dead" };
	return state >= 0 && state < 4 ? names[state] : "unknown";
}

int api_state_of(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, api_state_name(i)) == 0)
			return i;
	return -1;
}

static json_object *col_str(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);
	return t && sqlite3_column_type(s, i) != SQLITE_NULL ? json_object_new_string(t) : NULL;
}

json_object *api_job_row(sqlite3_stmt *s)
{
	json_object *o = json_object_new_object();
	int state = sqlite3_column_int(s, 5);
	long long next = sqlite3_column_int64(s, 8);

	json_object_object_add(o, "id", json_object_new_int64(sqlite3_column_int64(s, 0)));
	json_object_object_add(o, "delivery_id", col_str(s, 1));
	json_object_object_add(o, "rule", col_str(s, 2));
	json_object_object_add(o, "kind", col_str(s, 3));
	json_object_object_add(o, "target", col_str(s, 4));
	json_object_object_add(o, "state", json_object_new_string(api_state_name(state)));
	json_object_object_add(o, "attempts", json_object_new_int(sqlite3_column_int(s, 6)));
	json_object_object_add(o, "last_error", col_str(s, 7));
	json_object_object_add(o, "next_attempt_at", state < 2 ? api_time(next) : NULL);
	json_object_object_add(o, "created_at", api_time(sqlite3_column_int64(s, 9)));
	json_object_object_add(o, "updated_at", api_time(sqlite3_column_int64(s, 10)));
	json_object_object_add(o, "project", col_str(s, 11));
	json_object_object_add(o, "run_id",
			       sqlite3_column_type(s, 12) == SQLITE_NULL ||
					       sqlite3_column_int64(s, 12) <= 0
				       ? NULL
				       : json_object_new_int64(sqlite3_column_int64(s, 12)));
	return o;
}

/* Answers the list with next (-1: none) as its cursor. */
static int page(const struct api_req *r, struct api_list *items, long long next)
{
	char cur[24];

	snprintf(cur, sizeof(cur), "%lld", next);
	return api_list_reply(r->c, items, next >= 0 ? cur : NULL);
}

static int db_fail(const struct api_req *r, struct store *st, sqlite3_stmt *s)
{
	char msg[300];
	snprintf(msg, sizeof(msg), "store: %s",
		 st ? sqlite3_errmsg(store_sqlite(st)) : "cannot open");
	sqlite3_finalize(s);
	api_db_put(st);
	return api_reply_error(r->c, 503, msg);
}

/* ---- deliveries -------------------------------------------------------------- */

/* The first seq whose delivery arrived after ms (receipt order is seq
 * order to within the writer's group; SLACK rows either side cover it). */
/* One past the newest seq (or job id): where a scan from the top starts. */
static long long id_end(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s = NULL;
	long long end = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		end = sqlite3_column_int64(s, 0) + 1;
	sqlite3_finalize(s);
	return end;
}

#define SEQ_END_SQL    "SELECT IFNULL(MAX(seq), 0) FROM deliveries"
#define JOB_ID_END_SQL "SELECT IFNULL(MAX(id), 0) FROM jobs"

static long long seq_after(sqlite3 *db, long long ms)
{
	sqlite3_stmt *s = NULL;
	long long lo = 0, hi = id_end(db, SEQ_END_SQL);

	if (sqlite3_prepare_v2(db,
			       "SELECT received_ms FROM deliveries WHERE seq >= ?1"
			       " ORDER BY seq LIMIT 1",
			       -1, &s, NULL) != SQLITE_OK)
		return 0;
	while (lo < hi) {
		long long mid = lo + (hi - lo) / 2;
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, mid);
		if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) <= ms)
			lo = mid + 1;
		else
			hi = mid;
	}
	sqlite3_finalize(s);
	return lo;
}

#define SLACK 1000

struct dfilter {
	char type[128], project[128], run_id[24], since[40], until[40];
	int has_type, has_project, has_run;
	long long run, since_ms, until_ms, lo;
};

static int delivery_filters(const struct api_req *r, struct dfilter *f)
{
	f->has_type = api_arg(r, "type", f->type, sizeof(f->type));
	f->has_project = api_arg(r, "project", f->project, sizeof(f->project));
	f->has_run = api_arg(r, "run_id", f->run_id, sizeof(f->run_id));
	int since = api_arg(r, "since", f->since, sizeof(f->since));
	int until = api_arg(r, "until", f->until, sizeof(f->until));
	const char *bad = NULL;

	if (f->has_type < 0 || f->has_project < 0 || f->has_run < 0 || since < 0 || until < 0)
		bad = "a filter value is too long";
	else if (f->has_run && (parse_nonneg(f->run_id, &f->run) < 0 || f->run == 0))
		bad = "run_id must be a positive integer";
	else if (f->has_run && !f->has_project)
		bad = "run_id needs project (use project= with an empty value for none)";
	else if (since && api_parse_time(f->since, &f->since_ms) < 0)
		bad = "since must be an ISO 8601 UTC time or Unix milliseconds";
	else if (until && api_parse_time(f->until, &f->until_ms) < 0)
		bad = "until must be an ISO 8601 UTC time or Unix milliseconds";
	if (bad) {
		api_reply_error(r->c, 400, bad);
		return 400;
	}
	if (!since)
		f->since_ms = LLONG_MIN;
	if (!until)
		f->until_ms = LLONG_MAX;
	return 0;
}

static json_object *delivery_item(sqlite3_stmt *s)
{
	json_object *o = json_object_new_object();
	long long run = sqlite3_column_int64(s, 4);

	json_object_object_add(o, "id", col_str(s, 1));
	json_object_object_add(o, "type", col_str(s, 2));
	json_object_object_add(o, "project", col_str(s, 3));
	json_object_object_add(o, "run_id", run > 0 ? json_object_new_int64(run) : NULL);
	json_object_object_add(o, "received_at", api_time(sqlite3_column_int64(s, 5)));
	json_object_object_add(o, "title", col_str(s, 6));
	return o;
}

/*
 * A filtered list scans a window of ids, [from, hi): at most
 * API_SCAN_BUDGET of them below the cursor, by the key (a range of the
 * primary key, which stops at the page's last row), never a whole table.
 * from for a window below hi that ends no lower than lo.
 */
static long long window_from(long long hi, long long lo)
{
	return hi - lo > API_SCAN_BUDGET ? hi - API_SCAN_BUDGET : lo;
}

/* After a window gave fewer than a page: where to go on (from, when rows
 * remain below it, down to lo), or -1.  sql: "SELECT EXISTS(... id < ?1
 * AND id >= ?2)". */
static long long window_next(sqlite3 *db, const char *sql, long long from, long long lo)
{
	sqlite3_stmt *m = NULL;
	int more = 0;

	if (from > lo && sqlite3_prepare_v2(db, sql, -1, &m, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(m, 1, from);
		sqlite3_bind_int64(m, 2, lo);
		more = sqlite3_step(m) == SQLITE_ROW && sqlite3_column_int(m, 0);
	}
	sqlite3_finalize(m);
	return more ? from : -1;
}

/* Steps s, adding row(s) to items until limit; the cursor after them. */
static int collect(sqlite3_stmt *s, struct api_list *items, int limit,
		   json_object *(*row)(sqlite3_stmt *s), long long *next)
{
	long long last = -1;
	int n = 0, step;

	*next = -1;
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == limit) {
			*next = last;
			return n;
		}
		api_list_add(items, row(s));
		last = sqlite3_column_int64(s, 0);
		n++;
	}
	return step == SQLITE_DONE ? n : -1;
}

/* The candidates: a run's deliveries by deliveries_key (at most a page
 * below the cursor), else the window [?7, ?1) of seq. */
static void deliveries_sql(char *sql, size_t len, int by_run)
{
	snprintf(sql, len,
		 "SELECT d.seq, d.id, d.type, d.project, d.run_id, d.received_ms,"
		 " json_extract(d.event, '$.run.title') FROM %s"
		 " (?3 IS NULL OR d.type = ?3) AND (?4 IS NULL OR d.project IS ?8)"
		 " AND d.received_ms >= ?5 AND d.received_ms <= ?6"
		 " ORDER BY d.seq DESC LIMIT ?9",
		 /* every delivery of the run (the dedup index), then the
		  * filters: a limit before them would lose older matches */
		 by_run ? "(SELECT seq FROM deliveries WHERE project IS ?8 AND run_id = ?10"
			  " AND seq < ?1 AND seq >= ?7) AS c"
			  " JOIN deliveries d ON d.seq = c.seq WHERE"
			: "deliveries d WHERE d.seq < ?1 AND d.seq >= ?7 AND");
}

static void bind_deliveries(sqlite3_stmt *s, const struct dfilter *f, int limit, long long hi,
			    long long from)
{
	sqlite3_bind_int64(s, 1, hi);
	if (f->has_type)
		sqlite3_bind_text(s, 3, f->type, -1, SQLITE_STATIC);
	if (f->has_project) {
		sqlite3_bind_int(s, 4, 1);
		if (f->project[0])
			sqlite3_bind_text(s, 8, f->project, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(s, 5, f->since_ms);
	sqlite3_bind_int64(s, 6, f->until_ms);
	sqlite3_bind_int64(s, 7, from);
	sqlite3_bind_int64(s, 9, limit + 1);
	if (f->has_run)
		sqlite3_bind_int64(s, 10, f->run);
}

int api_get_deliveries(const struct api_req *r)
{
	struct dfilter f = { 0 };
	int limit, rc;
	long long cursor;

	if ((rc = api_page(r, &limit, &cursor)) || (rc = delivery_filters(r, &f)))
		return rc;
	int filtered = !f.has_run && (f.has_type || f.has_project || f.until_ms != LLONG_MAX ||
				      f.since_ms != LLONG_MIN);
	char sql[1024];
	deliveries_sql(sql, sizeof(sql), f.has_run);
	struct store *st = api_db_get();
	sqlite3_stmt *s = NULL;
	if (!st || sqlite3_prepare_v2(store_sqlite(st), sql, -1, &s, NULL) != SQLITE_OK)
		return db_fail(r, st, s);
	sqlite3 *db = store_sqlite(st);
	/* a window counts down from the newest seq, or from until's */
	long long hi = cursor, lo = 0, end = filtered ? id_end(db, SEQ_END_SQL) : hi;
	if (f.until_ms != LLONG_MAX) {
		long long after = seq_after(db, f.until_ms) + SLACK;
		if (after < end)
			end = after;
	}
	if (end < hi)
		hi = end;
	if (f.since_ms != LLONG_MIN && (lo = seq_after(db, f.since_ms - 1) - SLACK) < 0)
		lo = 0;
	long long from = filtered ? window_from(hi, lo) : lo;
	bind_deliveries(s, &f, limit, hi, from);
	struct api_list items;
	long long next;
	api_list_begin(&items);
	int n = collect(s, &items, limit, delivery_item, &next);
	if (n < 0) {
		api_list_free(&items);
		return db_fail(r, st, s);
	}
	sqlite3_finalize(s);
	/* the window ended (a full page of it or less): go on below it */
	if (next < 0 && filtered)
		next = window_next(
			db, "SELECT EXISTS(SELECT 1 FROM deliveries WHERE seq < ?1 AND seq >= ?2)",
			from, lo);
	api_db_put(st);
	return page(r, &items, next);
}

/* The jobs of delivery seq, into a new array (jobs_by_delivery). */
static json_object *jobs_of(sqlite3 *db, long long seq)
{
	sqlite3_stmt *s = NULL;
	json_object *a = json_object_new_array();

	if (sqlite3_prepare_v2(db,
			       "SELECT " API_JOB_COLS " FROM jobs j JOIN deliveries d"
			       " ON d.seq = j.delivery_seq WHERE j.delivery_seq = ?1 ORDER BY j.id",
			       -1, &s, NULL) != SQLITE_OK)
		return a;
	sqlite3_bind_int64(s, 1, seq);
	while (sqlite3_step(s) == SQLITE_ROW)
		json_object_array_add(a, api_job_row(s));
	sqlite3_finalize(s);
	return a;
}

static int is_hex64(const char *id)
{
	size_t n = strspn(id, "0123456789abcdef");
	return n == 64 && !id[n];
}

/* The seq of delivery id (with project and run_id when given), or -1. */
static long long find_delivery(sqlite3 *db, const struct api_req *r, const char *id)
{
	char project[128], run[24];
	int has_p = api_arg(r, "project", project, sizeof(project)) > 0;
	int has_r = api_arg(r, "run_id", run, sizeof(run)) > 0;
	long long run_id = 0, seq = -1;
	sqlite3_stmt *s = NULL;

	if (has_p && has_r && parse_nonneg(run, &run_id) == 0) {
		if (sqlite3_prepare_v2(db,
				       "SELECT seq FROM deliveries WHERE project IS ?2 AND"
				       " run_id = ?3 AND id = ?1",
				       -1, &s, NULL) != SQLITE_OK)
			return -1;
		if (project[0])
			sqlite3_bind_text(s, 2, project, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, run_id);
	} else if (sqlite3_prepare_v2(db,
				      "SELECT seq FROM (SELECT seq, id FROM deliveries ORDER BY seq"
				      " DESC LIMIT ?2) WHERE id = ?1 LIMIT 1",
				      -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(s, 2, API_ID_SCAN);
	} else {
		return -1;
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		seq = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return seq;
}

int api_get_delivery(const struct api_req *r, const char *id)
{
	if (!is_hex64(id))
		return api_reply_error(r->c, 404, "no such delivery (ids are 64 hex digits)");
	struct store *st = api_db_get();
	sqlite3_stmt *s = NULL;
	if (!st)
		return db_fail(r, st, s);
	sqlite3 *db = store_sqlite(st);
	long long seq = find_delivery(db, r, id);
	if (seq < 0 || sqlite3_prepare_v2(db,
					  "SELECT seq, id, type, project, run_id, received_ms, source,"
					  " raw, event FROM deliveries WHERE seq = ?1",
					  -1, &s, NULL) != SQLITE_OK) {
		api_db_put(st);
		return api_reply_error(r->c, 404, "no such delivery");
	}
	sqlite3_bind_int64(s, 1, seq);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		api_db_put(st);
		return api_reply_error(r->c, 404, "no such delivery");
	}
	json_object *o = delivery_item(s);
	json_object_object_del(o, "title");
	json_object_object_add(o, "source", col_str(s, 6));
	json_object_object_add(o, "raw",
			       json_object_new_string_len((const char *)sqlite3_column_blob(s, 7),
							  sqlite3_column_bytes(s, 7)));
	const char *ev = (const char *)sqlite3_column_text(s, 8);
	json_object_object_add(o, "event", ev ? json_tokener_parse(ev) : NULL);
	sqlite3_finalize(s);
	json_object_object_add(o, "jobs", jobs_of(db, seq));
	api_db_put(st);
	return api_reply_json(r->c, 200, o);
}

/* ---- jobs ---------------------------------------------------------------------- */

struct jfilter {
	char state[16], rule[128], kind[32], target[128], project[128];
	int has_state, has_rule, has_kind, has_target, has_project;
	int st;
};

static int job_filters(const struct api_req *r, struct jfilter *f)
{
	f->has_state = api_arg(r, "state", f->state, sizeof(f->state));
	f->has_rule = api_arg(r, "rule", f->rule, sizeof(f->rule));
	f->has_kind = api_arg(r, "kind", f->kind, sizeof(f->kind));
	f->has_target = api_arg(r, "target", f->target, sizeof(f->target));
	f->has_project = api_arg(r, "project", f->project, sizeof(f->project));
	f->st = -1;
	if (f->has_state < 0 || f->has_rule < 0 || f->has_kind < 0 || f->has_target < 0 ||
	    f->has_project < 0) {
		api_reply_error(r->c, 400, "a filter value is too long");
		return 400;
	}
	if (f->has_state && (f->st = api_state_of(f->state)) < 0) {
		api_reply_error(r->c, 400, "state must be pending, retrying, done or dead");
		return 400;
	}
	return 0;
}

/* The state's condition, naming the partial index that holds its jobs
 * (jobs_open, jobs_dead_by) as the planner needs to see it; done jobs have
 * none. */
static const char *state_clause(int state)
{
	switch (state) {
	case 0: return "j.state < 2 AND j.state = 0 AND";
	case 1: return "j.state < 2 AND j.state = 1 AND";
	case 2: return "j.state = 2 AND";
	case 3: return "j.state = 3 AND";
	default: return "";
	}
}

/*
 * The window [*from, hi) a filtered list of jobs scans: the newest
 * API_SCAN_BUDGET entries of the state's partial index below hi (an
 * index-only count), else as many job ids.  Returns 1 when rows may
 * remain below *from.
 */
static int jobs_window(sqlite3 *db, int state, long long hi, long long *from)
{
	char sql[300];
	sqlite3_stmt *s = NULL;
	int full = 0;

	if (state == 2 || state < 0) {
		*from = window_from(hi, 0);
		return window_next(db, "SELECT EXISTS(SELECT 1 FROM jobs WHERE id < ?1 AND id >= ?2)",
				   *from, 0) >= 0;
	}
	*from = 0;
	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*), MIN(id) FROM (SELECT j.id FROM jobs j WHERE %s j.id < ?1"
		 " ORDER BY j.id DESC LIMIT ?2)",
		 state_clause(state));
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, hi);
		sqlite3_bind_int64(s, 2, API_SCAN_BUDGET);
		if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) >= API_SCAN_BUDGET) {
			*from = sqlite3_column_int64(s, 1);
			full = 1;
		}
	}
	sqlite3_finalize(s);
	return full;
}

static void bind_jobs(sqlite3_stmt *s, const struct jfilter *f, int limit, long long hi,
		      long long from)
{
	sqlite3_bind_int64(s, 1, hi);
	sqlite3_bind_int64(s, 3, from);
	if (f->has_rule)
		sqlite3_bind_text(s, 5, f->rule, -1, SQLITE_STATIC);
	if (f->has_kind)
		sqlite3_bind_text(s, 6, f->kind, -1, SQLITE_STATIC);
	if (f->has_target)
		sqlite3_bind_text(s, 7, f->target, -1, SQLITE_STATIC);
	if (f->has_project) {
		sqlite3_bind_int(s, 8, 1);
		if (f->project[0])
			sqlite3_bind_text(s, 9, f->project, -1, SQLITE_STATIC);
	}
	sqlite3_bind_int64(s, 10, limit + 1);
}

int api_get_jobs(const struct api_req *r)
{
	struct jfilter f = { 0 };
	int limit, rc;
	long long cursor;

	if ((rc = api_page(r, &limit, &cursor)) || (rc = job_filters(r, &f)))
		return rc;
	int filtered = f.has_rule || f.has_kind || f.has_target || f.has_project || f.st == 2;
	char sql[1400];
	snprintf(sql, sizeof(sql),
		 "SELECT " API_JOB_COLS " FROM jobs j LEFT JOIN deliveries d"
		 " ON d.seq = j.delivery_seq WHERE %s j.id < ?1 AND j.id >= ?3"
		 " AND (?5 IS NULL OR j.rule = ?5) AND (?6 IS NULL OR j.kind = ?6)"
		 " AND (?7 IS NULL OR json_extract(j.params, '$.target') = ?7)"
		 " AND (?8 IS NULL OR d.project IS ?9)"
		 " ORDER BY j.id DESC LIMIT ?10",
		 state_clause(f.st));
	struct store *st = api_db_get();
	sqlite3_stmt *s = NULL;
	if (!st || sqlite3_prepare_v2(store_sqlite(st), sql, -1, &s, NULL) != SQLITE_OK)
		return db_fail(r, st, s);
	sqlite3 *db = store_sqlite(st);
	long long hi = cursor, from = 0, end = filtered ? id_end(db, JOB_ID_END_SQL) : hi;
	if (end < hi)
		hi = end;
	int more_below = filtered && jobs_window(db, f.st, hi, &from);
	bind_jobs(s, &f, limit, hi, from);
	struct api_list items;
	long long next;
	api_list_begin(&items);
	int n = collect(s, &items, limit, api_job_row, &next);
	if (n < 0) {
		api_list_free(&items);
		return db_fail(r, st, s);
	}
	sqlite3_finalize(s);
	if (next < 0 && filtered)
		next = more_below ? from : -1;
	api_db_put(st);
	return page(r, &items, next);
}

static json_object *attempts_of(sqlite3 *db, long long id, json_object *job)
{
	sqlite3_stmt *s = NULL;
	json_object *a = json_object_new_array(), *state;
	int last = 0;

	if (sqlite3_prepare_v2(db,
			       "SELECT n, started_ms, finished_ms, ok, detail FROM attempts"
			       " WHERE job_id = ?1 ORDER BY n",
			       -1, &s, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, id);
		while (sqlite3_step(s) == SQLITE_ROW) {
			json_object *o = json_object_new_object();
			last = sqlite3_column_int(s, 0);
			json_object_object_add(o, "n", json_object_new_int(last));
			json_object_object_add(o, "started_at", api_time(sqlite3_column_int64(s, 1)));
			json_object_object_add(o, "finished_at",
					       api_time(sqlite3_column_int64(s, 2)));
			json_object_object_add(o, "ok",
					       json_object_new_boolean(sqlite3_column_int(s, 3)));
			json_object_object_add(o, "detail", col_str(s, 4));
			json_object_array_add(a, o);
		}
	}
	sqlite3_finalize(s);
	/* a success has no row of its own: the job row is its outcome */
	json_object_object_get_ex(job, "state", &state);
	if (strcmp(json_object_get_string(state), "done") == 0) {
		json_object *o = json_object_new_object(), *at = NULL, *n = NULL;
		json_object_object_get_ex(job, "updated_at", &at);
		json_object_object_get_ex(job, "attempts", &n);
		json_object_object_add(o, "n", json_object_new_int(json_object_get_int(n)));
		json_object_object_add(o, "started_at", NULL);
		json_object_object_add(o, "finished_at", json_object_get(at));
		json_object_object_add(o, "ok", json_object_new_boolean(1));
		json_object_object_add(o, "detail", NULL);
		if (json_object_get_int(n) > last)
			json_object_array_add(a, o);
		else
			json_object_put(o);
	}
	return a;
}

int api_get_job(const struct api_req *r, long long id)
{
	struct store *st = api_db_get();
	sqlite3_stmt *s = NULL;

	if (!st || sqlite3_prepare_v2(store_sqlite(st),
				      "SELECT " API_JOB_COLS ", j.params, j.lane FROM jobs j"
				      " LEFT JOIN deliveries d ON d.seq = j.delivery_seq"
				      " WHERE j.id = ?1",
				      -1, &s, NULL) != SQLITE_OK)
		return db_fail(r, st, s);
	sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) != SQLITE_ROW) {
		sqlite3_finalize(s);
		api_db_put(st);
		return api_reply_error(r->c, 404, "no such job");
	}
	json_object *o = api_job_row(s);
	const char *params = (const char *)sqlite3_column_text(s, 13);
	json_object *p = params ? json_tokener_parse(params) : NULL;
	json_object_object_add(o, "params",
			       api_params_masked((const char *)sqlite3_column_text(s, 3), p));
	json_object_put(p);
	json_object_object_add(o, "lane", col_str(s, 14));
	sqlite3_finalize(s);
	json_object *n = NULL;
	json_object_object_get_ex(o, "attempts", &n);
	json_object_object_add(o, "attempt_count", json_object_get(n));
	json_object_object_add(o, "attempts", attempts_of(store_sqlite(st), id, o));
	api_db_put(st);
	return api_reply_json(r->c, 200, o);
}
