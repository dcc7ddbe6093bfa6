/*
 * api_runs: the run registry's view (GET /api/v1/runs, /runs/{p}/{id})
 * and the summary.
 *
 * Runs are listed by last change (runs_updated), or with project= by
 * run id within it (the registry's primary key).  A q= of digits is a run
 * id, looked up in every project (a skip-scan of the key: one probe per
 * project); any other q= is part of the title (case-insensitive),
 * examining at most RUNS_SCAN_BUDGET runs per request.  A run's targets are
 * looked up for each configured target (the target_runs key), not scanned,
 * with the link to the run there (url: run_url, or what the target said).
 *
 * A page of 500 runs is 500 lookups of the newest event and of each
 * target's mapping: each statement is prepared once per answer, the
 * registry's JSON goes out as stored, and items are written as they come
 * (api_list): a quarter of the CPU the same page took built as one tree
 * and parsed (docs/benchmarks.md).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>

#include "api/api.h"
#include "api/api_query.h"
#include "api/api_stream.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/redact.h"
#include "http/server.h"
#include "store/store.h"
#include "store/store_db.h"
#include "targets/target_cfg.h"

enum { RUN_EVENTS_MAX = 1000, RUNS_SCAN_BUDGET = 10000 };

static json_object *text_or_null(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);
	return t ? json_object_new_string(t) : NULL;
}

/* What every run of one answer looks up, each statement prepared once. */
struct run_reads {
	sqlite3 *db;
	const struct config *cfg;
	sqlite3_stmt *last;    /* the run's newest delivery */
	sqlite3_stmt *targets; /* one target's mapping of the run */
};

static int reads_open(struct run_reads *rr, sqlite3 *db, const struct config *cfg)
{
	*rr = (struct run_reads){ .db = db, .cfg = cfg };
	if (sqlite3_prepare_v2(db,
			       "SELECT id, type, received_ms FROM deliveries WHERE seq ="
			       " (SELECT MAX(seq) FROM deliveries WHERE project IS ?1 AND run_id = ?2)",
			       -1, &rr->last, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT remote_id, state, CASE WHEN json_valid(data)"
			       " THEN json_extract(data, '$.url') END FROM target_runs"
			       " WHERE kind = ?1 AND target = ?2 AND project = ?3 AND run_id = ?4",
			       -1, &rr->targets, NULL) != SQLITE_OK) {
		sqlite3_finalize(rr->last);
		rr->last = NULL;
		return -1;
	}
	return 0;
}

static void reads_close(struct run_reads *rr)
{
	sqlite3_finalize(rr->last);
	sqlite3_finalize(rr->targets);
}

/* A URL fit to show: http(s), no user:password@, and with mask_query its
 * query values masked (a server's answer might carry a key there; a
 * run_url the loader checked has none); NULL otherwise. */
static json_object *shown_url(const char *url, int mask_query)
{
	char masked[2048];

	if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
	    strlen(url) >= sizeof(masked))
		return NULL;
	const char *host = strstr(url, "://") + 3;
	if (memchr(host, '@', strcspn(host, "/?#")))
		return NULL;
	if (!mask_query || !strchr(url, '?'))
		return json_object_new_string(url);
	redact_url(url, masked, sizeof(masked));
	return json_object_new_string(masked);
}

/* The run's page in target t: its run_url, else the url Testomat.io's
 * create-run answer carried (target-apis.md 2.2; the mapping's data keeps
 * it), else null: no other vendor documents one. */
static json_object *run_link(const struct target_cfg *t, sqlite3_stmt *s, const char *project,
			     long long run_id)
{
	char url[2048];
	int rc = target_cfg_run_url(url, sizeof(url), t, (const char *)sqlite3_column_text(s, 0),
				    project, run_id);

	if (rc > 0)
		return shown_url(url, 0);
	if (rc < 0 || json_object_object_get_ex(t->settings, "run_url", NULL) ||
	    strcmp(t->kind, "testomat") != 0)
		return NULL; /* set but with no id for the run yet, or none */
	return shown_url((const char *)sqlite3_column_text(s, 2), 1);
}

/* Each configured target's mapping of the run. */
static json_object *targets_of(struct run_reads *rr, const char *project, long long run_id)
{
	json_object *a = json_object_new_array();
	const struct config *cfg = rr->cfg;
	sqlite3_stmt *s = rr->targets;

	for (size_t i = 0; i < cfg->n_targets; i++) {
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, cfg->targets[i].kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, cfg->targets[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, project, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, run_id);
		if (sqlite3_step(s) != SQLITE_ROW)
			continue;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "kind", json_object_new_string(cfg->targets[i].kind));
		json_object_object_add(o, "name", json_object_new_string(cfg->targets[i].name));
		json_object_object_add(o, "remote_id", text_or_null(s, 0));
		json_object_object_add(o, "url", run_link(&cfg->targets[i], s, project, run_id));
		json_object_object_add(o, "state", text_or_null(s, 1));
		json_object_array_add(a, o);
	}
	sqlite3_reset(s);
	return a;
}

/* The run's newest event: {"id", "type", "received_at"} or null. */
static json_object *last_event(struct run_reads *rr, const char *project, long long run_id)
{
	sqlite3_stmt *s = rr->last;
	json_object *o = NULL;

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (project[0])
		sqlite3_bind_text(s, 1, project, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, run_id);
	if (sqlite3_step(s) == SQLITE_ROW) {
		o = json_object_new_object();
		json_object_object_add(o, "id", text_or_null(s, 0));
		json_object_object_add(o, "type", text_or_null(s, 1));
		json_object_object_add(o, "received_at", api_time(sqlite3_column_int64(s, 2)));
	}
	sqlite3_reset(s);
	return o;
}

/* The columns of a runs list: project, run_id, run, updated_ms, and the
 * title as JSON text (RUN_TITLE). */
#define RUN_TITLE "json_quote(json_extract(r.run, '$.title'))"

/* One run of a list.  The registry's JSON goes out as stored (the
 * biggest part of a page, parsed here for nothing otherwise). */
static json_object *run_item(struct run_reads *rr, sqlite3_stmt *s)
{
	json_object *o = json_object_new_object();
	const char *project = (const char *)sqlite3_column_text(s, 0);
	long long run_id = sqlite3_column_int64(s, 1);

	json_object_object_add(o, "project", project[0] ? json_object_new_string(project) : NULL);
	json_object_object_add(o, "run_id", json_object_new_int64(run_id));
	json_object_object_add(o, "title", api_raw_json((const char *)sqlite3_column_text(s, 4)));
	json_object_object_add(o, "run", api_raw_json((const char *)sqlite3_column_text(s, 2)));
	json_object_object_add(o, "updated_at", api_time(sqlite3_column_int64(s, 3)));
	json_object_object_add(o, "last_event", last_event(rr, project, run_id));
	json_object_object_add(o, "targets", targets_of(rr, project, run_id));
	return o;
}

/* "<updated_ms>:<run_id>:<project>", the position in runs_updated. */
struct run_pos {
	long long updated_ms, run_id;
	char project[256];
};

static int parse_pos(const char *s, struct run_pos *p)
{
	char *end;
	p->updated_ms = strtoll(s, &end, 10);
	if (*end != ':')
		return -1;
	p->run_id = strtoll(end + 1, &end, 10);
	if (*end != ':' || strlen(end + 1) >= sizeof(p->project))
		return -1;
	snprintf(p->project, sizeof(p->project), "%s", end + 1);
	return 0;
}

static int runs_args(const struct api_req *r, int *limit, char *project, int *has_project, char *q,
		     int *has_q, struct run_pos *pos, int *has_pos)
{
	char v[32], cur[320];

	*limit = API_LIMIT_DEFAULT;
	int got = api_arg(r, "limit", v, sizeof(v));
	char *end;
	long n = got > 0 ? strtol(v, &end, 10) : API_LIMIT_DEFAULT;
	if (got < 0 || (got && (*end || n < 1 || n > API_LIMIT_MAX)))
		return api_reply_error(r->c, 400, "limit must be an integer from 1 to 500");
	*limit = (int)n;
	*has_project = api_arg(r, "project", project, 256);
	*has_q = api_arg(r, "q", q, 256);
	*has_pos = api_arg(r, "cursor", cur, sizeof(cur));
	if (*has_project < 0 || *has_q < 0 || *has_pos < 0)
		return api_reply_error(r->c, 400, "a filter value is too long");
	if (*has_pos && parse_pos(cur, pos) < 0)
		return api_reply_error(r->c, 400, "cursor is not one this API gave");
	if (!*has_pos)
		*pos = (struct run_pos){ .updated_ms = LLONG_MAX, .run_id = LLONG_MAX };
	return 0;
}

/*
 * A LIKE pattern that every run whose title holds q matches (as stored
 * JSON text), to skip parsing the others: "%q%" with % and _ escaped.
 * Only for q of printable ASCII that JSON writes as is (no quote,
 * backslash or slash, which a writer may escape); 0 otherwise (no
 * shortcut).  LIKE and lower() fold the same (ASCII) letters.
 */
static int title_pattern(const char *q, char *out, size_t len)
{
	size_t o = 0;

	out[o++] = '%';
	for (const char *p = q; *p; p++) {
		if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\' || *p == '/' || o + 4 > len)
			return 0;
		if (*p == '%' || *p == '_')
			out[o++] = '\\';
		out[o++] = *p;
	}
	out[o++] = '%';
	out[o] = '\0';
	return 1;
}

static void bind_runs(sqlite3_stmt *s, const char *project, const struct run_pos *pos, int limit,
		      long long budget, const char *q)
{
	char like[600];

	sqlite3_bind_text(s, 1, project, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, pos->updated_ms);
	sqlite3_bind_int64(s, 3, pos->run_id);
	sqlite3_bind_int64(s, 4, limit + 1);
	sqlite3_bind_int64(s, 5, budget);
	if (q) {
		sqlite3_bind_text(s, 6, q, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 7, strtoll(q, NULL, 10));
		if (title_pattern(q, like, sizeof(like)))
			sqlite3_bind_text(s, 8, like, -1, SQLITE_TRANSIENT);
	}
}

/* A full search window that found less than a page: its last position,
 * to go on from.  1 when there is one. */
static int window_tail(sqlite3 *db, const char *sql, const char *project, const struct run_pos *pos,
		       int limit, long long budget, char *next, size_t len)
{
	sqlite3_stmt *s = NULL;
	int more = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return 0;
	bind_runs(s, project, pos, limit, budget, NULL);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int64(s, 0) >= budget) {
		snprintf(next, len, "%lld:%lld:%s", sqlite3_column_int64(s, 1),
			 sqlite3_column_int64(s, 3), (const char *)sqlite3_column_text(s, 2));
		more = 1;
	}
	sqlite3_finalize(s);
	return more;
}

static int all_digits(const char *s)
{
	size_t n = strspn(s, "0123456789");
	return n > 0 && n < 19 && !s[n];
}

/* q= a run id: that run in each project (or the one given). */
static int runs_by_id(const struct api_req *r, const char *project, int has_project, const char *q)
{
	struct store *st = api_db_get();
	sqlite3_stmt *s = NULL;

	if (!st ||
	    sqlite3_prepare_v2(store_sqlite(st),
			       "WITH RECURSIVE p(x) AS (SELECT MIN(project) FROM runs UNION ALL"
			       " SELECT (SELECT MIN(project) FROM runs WHERE project > p.x)"
			       " FROM p WHERE p.x IS NOT NULL)"
			       " SELECT r.project, r.run_id, r.run, r.updated_ms, " RUN_TITLE " FROM p"
			       " JOIN runs r ON r.project = p.x AND r.run_id = ?1"
			       " WHERE ?2 IS NULL OR r.project = ?2"
			       " ORDER BY r.updated_ms DESC LIMIT 500",
			       -1, &s, NULL) != SQLITE_OK) {
		api_db_put(st);
		return api_reply_error(r->c, 503, "store: cannot read the runs");
	}
	sqlite3_bind_int64(s, 1, strtoll(q, NULL, 10));
	if (has_project)
		sqlite3_bind_text(s, 2, project, -1, SQLITE_STATIC);
	struct api_list list;
	struct run_reads rr;
	api_list_begin(&list);
	if (reads_open(&rr, store_sqlite(st), r->cfg) == 0) {
		while (sqlite3_step(s) == SQLITE_ROW)
			api_list_add(&list, run_item(&rr, s));
		reads_close(&rr);
	}
	sqlite3_finalize(s);
	api_db_put(st);
	return api_list_reply(r->c, &list, NULL);
}

/*
 * The page's query into sql, and with q the query of its window's end into
 * tail.  By project the key (project, run_id), else the updated index,
 * whose entries are (updated_ms, project, run_id): read in order, a page
 * stops at its last run.  A title search reads a window of the index
 * (RUNS_SCAN_BUDGET runs) and keeps the runs whose title holds q.
 */
static void runs_sql(char *sql, size_t len, char *tail, size_t tlen, int has_project, int has_q)
{
	const char *by_project = "SELECT project, run_id, 0 AS u FROM runs WHERE project = ?1"
				 " AND run_id < ?3 ORDER BY run_id DESC LIMIT ?5";
	const char *by_update = "SELECT project, run_id, updated_ms AS u FROM runs INDEXED BY"
				" runs_updated WHERE (updated_ms, project, run_id) < (?2, ?1, ?3)"
				" ORDER BY updated_ms DESC, project DESC, run_id DESC LIMIT ?5";

	tail[0] = '\0';
	if (!has_q && has_project) {
		snprintf(sql, len,
			 "SELECT r.project, r.run_id, r.run, r.updated_ms, " RUN_TITLE ", 0"
			 " FROM runs r WHERE r.project = ?1 AND r.run_id < ?3"
			 " ORDER BY r.run_id DESC LIMIT ?4");
		return;
	}
	if (!has_q) {
		snprintf(sql, len,
			 "SELECT r.project, r.run_id, r.run, r.updated_ms, " RUN_TITLE ", r.updated_ms"
			 " FROM runs r INDEXED BY runs_updated"
			 " WHERE (r.updated_ms, r.project, r.run_id) < (?2, ?1, ?3)"
			 " ORDER BY r.updated_ms DESC, r.project DESC, r.run_id DESC LIMIT ?4");
		return;
	}
	const char *window = has_project ? by_project : by_update;
	snprintf(sql, len,
		 "SELECT r.project, r.run_id, r.run, r.updated_ms, " RUN_TITLE ", c.u FROM (%s) AS c"
		 " JOIN runs r ON r.project = c.project AND r.run_id = c.run_id"
		 " WHERE r.run_id = ?7 OR ((?8 IS NULL OR r.run LIKE ?8 ESCAPE '\\')"
		 " AND instr(lower(json_extract(r.run, '$.title')), lower(?6)) > 0)"
		 " ORDER BY c.u DESC, r.project DESC, r.run_id DESC LIMIT ?4",
		 window);
	snprintf(tail, tlen,
		 "SELECT COUNT(*) OVER (), u, project, run_id FROM (%s)"
		 " ORDER BY u, project, run_id LIMIT 1",
		 window);
}

int api_get_runs(const struct api_req *r)
{
	char project[256], q[256];
	struct run_pos pos;
	int limit = 0, has_project = 0, has_q = 0, has_pos = 0;
	int rc = runs_args(r, &limit, project, &has_project, q, &has_q, &pos, &has_pos);

	if (rc)
		return rc;
	if (has_q && all_digits(q))
		return runs_by_id(r, project, has_project, q);
	char sql[1600], tail[700];
	runs_sql(sql, sizeof(sql), tail, sizeof(tail), has_project, has_q);
	struct store *st = api_db_get();
	sqlite3_stmt *s = NULL;
	struct run_reads rr;
	if (!st || sqlite3_prepare_v2(store_sqlite(st), sql, -1, &s, NULL) != SQLITE_OK ||
	    reads_open(&rr, store_sqlite(st), r->cfg) < 0) {
		char msg[300];
		snprintf(msg, sizeof(msg), "store: %s",
			 st ? sqlite3_errmsg(store_sqlite(st)) : "cannot open");
		sqlite3_finalize(s);
		api_db_put(st);
		return api_reply_error(r->c, 503, msg);
	}
	sqlite3 *db = store_sqlite(st);
	long long budget = has_q ? RUNS_SCAN_BUDGET : limit + 1;
	bind_runs(s, has_project ? project : pos.project, &pos, limit, budget, has_q ? q : NULL);
	struct api_list list;
	char next[320] = "";
	int n = 0, more = 0;
	api_list_begin(&list);
	while (sqlite3_step(s) == SQLITE_ROW) {
		if (n == limit) {
			more = 1;
			break;
		}
		api_list_add(&list, run_item(&rr, s));
		snprintf(next, sizeof(next), "%lld:%lld:%s", sqlite3_column_int64(s, 5),
			 sqlite3_column_int64(s, 1), (const char *)sqlite3_column_text(s, 0));
		n++;
	}
	reads_close(&rr);
	sqlite3_finalize(s);
	if (!more && has_q &&
	    window_tail(db, tail, has_project ? project : pos.project, &pos, limit, budget, next,
			sizeof(next)))
		more = 1;
	api_db_put(st);
	return api_list_reply(r->c, &list, more ? next : NULL);
}

/* The run's events in receipt order, their jobs, and the newest results. */
static void run_events(sqlite3 *db, const char *project, long long run_id, json_object *out)
{
	json_object *events = json_object_new_array(), *jobs = json_object_new_array();
	json_object *results = NULL;
	sqlite3_stmt *s = NULL, *j = NULL;

	if (sqlite3_prepare_v2(db,
			       "SELECT seq, id, type, received_ms, json_extract(event, '$.results')"
			       " FROM (SELECT seq FROM deliveries WHERE project IS ?1 AND run_id = ?2"
			       " ORDER BY seq DESC LIMIT ?3) JOIN deliveries USING (seq) ORDER BY seq",
			       -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db,
			       "SELECT " API_JOB_COLS " FROM jobs j JOIN deliveries d"
			       " ON d.seq = j.delivery_seq WHERE j.delivery_seq = ?1 ORDER BY j.id",
			       -1, &j, NULL) == SQLITE_OK) {
		if (project[0])
			sqlite3_bind_text(s, 1, project, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, run_id);
		sqlite3_bind_int(s, 3, RUN_EVENTS_MAX);
		while (sqlite3_step(s) == SQLITE_ROW) {
			json_object *e = json_object_new_object();
			json_object_object_add(e, "id", text_or_null(s, 1));
			json_object_object_add(e, "type", text_or_null(s, 2));
			json_object_object_add(e, "received_at",
					       api_time(sqlite3_column_int64(s, 3)));
			json_object_array_add(events, e);
			const char *res = (const char *)sqlite3_column_text(s, 4);
			if (res) {
				json_object_put(results);
				results = json_tokener_parse(res);
			}
			sqlite3_reset(j);
			sqlite3_bind_int64(j, 1, sqlite3_column_int64(s, 0));
			while (sqlite3_step(j) == SQLITE_ROW)
				json_object_array_add(jobs, api_job_row(j));
		}
	}
	sqlite3_finalize(s);
	sqlite3_finalize(j);
	json_object_object_add(out, "events", events);
	json_object_object_add(out, "jobs", jobs);
	json_object_object_add(out, "results", results);
}

int api_get_run(const struct api_req *r, const char *project, long long run_id)
{
	struct store *st = api_db_get();
	char *run = NULL;
	struct err err;

	if (!st)
		return api_reply_error(r->c, 503, "store: cannot open");
	if (store_run_get(st, project, run_id, &run, &err) < 0 || !run) {
		api_db_put(st);
		free(run);
		return api_reply_error(r->c, 404, "no such run");
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "project", project[0] ? json_object_new_string(project) : NULL);
	json_object_object_add(o, "run_id", json_object_new_int64(run_id));
	json_object_object_add(o, "run", json_tokener_parse(run));
	free(run);
	run_events(store_sqlite(st), project, run_id, o);
	struct run_reads rr;
	json_object *targets = NULL;
	if (reads_open(&rr, store_sqlite(st), r->cfg) == 0) {
		targets = targets_of(&rr, project, run_id);
		reads_close(&rr);
	}
	json_object_object_add(o, "targets", targets ? targets : json_object_new_array());
	api_db_put(st);
	return api_reply_json(r->c, 200, o);
}

static long long started_ms;

void api_runs_started(long long ms)
{
	started_ms = ms;
}

int api_get_summary(const struct api_req *r)
{
	struct store_counts sc = { 0 };
	struct err err;
	struct store *st = api_db_get();
	long long now = clock_wall_ms();

	if (!st || store_counts(st, &sc, &err) < 0) {
		api_db_put(st);
		return api_reply_error(r->c, 503, "store: cannot count");
	}
	api_db_put(st);
	json_object *o = json_object_new_object(), *jobs = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_string(RB_VERSION));
	json_object_object_add(o, "started_at", api_time(started_ms));
	json_object_object_add(o, "uptime_s", json_object_new_int64((now - started_ms) / 1000));
	json_object_object_add(o, "deliveries_total", json_object_new_int64(sc.deliveries));
	json_object_object_add(o, "deliveries_last_hour", api_stats_last_hour());
	json_object_object_add(jobs, "pending", json_object_new_int64(sc.pending));
	json_object_object_add(jobs, "retrying", json_object_new_int64(sc.retrying));
	json_object_object_add(jobs, "done", json_object_new_int64(sc.done));
	json_object_object_add(jobs, "dead", json_object_new_int64(sc.dead));
	json_object_object_add(o, "jobs", jobs);
	int up = r->status && r->status->redis_up ? r->status->redis_up(r->status->ctx) : 0;
	json_object_object_add(o, "redis", json_object_new_string(up ? "up" : "down"));
	json_object_object_add(o, "targets", api_stats_targets());
	return api_reply_json(r->c, 200, o);
}
