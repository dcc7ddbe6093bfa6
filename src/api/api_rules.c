/*
 * api_rules: the rules (GET /api/v1/rules, POST /api/v1/route) and the
 * re-queueing (POST /api/v1/jobs/{id}/replay, /api/v1/replay).
 *
 * Both rule endpoints read the rules the daemon routes by (the acceptor's,
 * through acceptor_with_rules): a rule file edited but not reloaded
 * changes nothing here until SIGHUP, as it changes nothing in routing.
 * The list shows name, file:line:col, action kinds, stop, and how many
 * deliveries matched the name since the process started; action params
 * are not shown (URLs and headers may be credentials).  POST
 * /api/v1/route is `runbridge route` (cli_route_report) against those
 * rules: nothing run, nothing stored, http secrets masked.
 *
 * Replay writes what `runbridge replay` writes (state pending, attempts 0,
 * the requeue flag) through the API's writable connection (api_db_writer)
 * and answers once that is committed; the WAL checkpoint a large replay
 * makes due runs after the answer.  The dispatcher takes flagged jobs
 * within a second (store_jobs_take_requeued).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>

#include "accept/accept.h"
#include "api/api.h"
#include "api/api_query.h"
#include "api/api_stream.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/redact.h"
#include "rules/rules.h"
#include "store/store.h"
#include "store/store_db.h"

static int list_rules(void *ctx, const struct rules *rules)
{
	json_object *items = ctx;

	for (size_t i = 0; i < rules_count(rules); i++) {
		json_object *o = json_object_new_object(), *kinds = json_object_new_array();
		struct rule_view v;

		rules_at(rules, i, &v);
		json_object_object_add(o, "name", json_object_new_string(v.name));
		json_object_object_add(o, "where", json_object_new_string(v.where));
		for (size_t k = 0; k < v.n_actions; k++)
			json_object_array_add(
				kinds, json_object_new_string(rules_action_kind(rules, i, k)));
		json_object_object_add(o, "actions", kinds);
		json_object_object_add(o, "stop", json_object_new_boolean(v.stop));
		json_object_object_add(o, "matched",
				       json_object_new_int64(api_stats_rule_matches(v.name)));
		json_object_array_add(items, o);
	}
	return 0;
}

int api_get_rules(const struct api_req *r)
{
	json_object *items = json_object_new_array();

	if (r->acc)
		acceptor_with_rules(r->acc, list_rules, items);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "items", items);
	json_object_object_add(o, "next_cursor", NULL);
	return api_reply_json(r->c, 200, o);
}

struct route_call {
	const struct config *cfg;
	const char *body;
	size_t len;
	char *out;
	struct err err;
};

static int route_loaded(void *ctx, const struct rules *rules)
{
	struct route_call *rc = ctx;
	struct rules *none = NULL;
	struct errlist errs = ERRLIST_INIT;

	/* a daemon without rules routes nothing: report it as zero rules */
	if (!rules && rules_load_string(&none, "(none)", "rules: []\n", &errs) < 0) {
		errlist_free(&errs);
		return err_set(&rc->err, "out of memory");
	}
	int status = cli_route_report(&rc->out, rc->cfg, rules ? rules : none, rc->body, rc->len, 0,
				      0, &rc->err);
	rules_free(none);
	return status;
}

int api_post_route(const struct api_req *r, const char *body, size_t len)
{
	struct route_call call = { .cfg = r->cfg, .body = body, .len = len };
	int rc = r->acc ? acceptor_with_rules(r->acc, route_loaded, &call)
			: route_loaded(&call, NULL);

	if (rc < 0)
		return api_reply_error(r->c, call.err.code == ERR_INVALID ? 400 : 503, call.err.msg);
	json_object *o = json_tokener_parse(call.out), *actions;
	free(call.out);
	if (!o)
		return api_reply_error(r->c, 503, "out of memory");
	/* http secrets are masked already; a hook's environment too */
	if (json_object_object_get_ex(o, "actions", &actions))
		for (size_t i = 0; i < json_object_array_length(actions); i++) {
			json_object *a = json_object_array_get_idx(actions, i), *p;
			if (json_object_object_get_ex(a, "exec", &p))
				json_object_object_add(a, "exec", api_params_masked("exec", p));
		}
	return api_reply_json(r->c, 200, o);
}

/* ---- masking -------------------------------------------------------------- */

json_object *api_params_masked(const char *kind, json_object *params)
{
	json_object *copy = NULL, *env;

	if (!params)
		return NULL;
	if (kind && strcmp(kind, "http") == 0)
		return cli_http_masked(params);
	if (json_object_deep_copy(params, &copy, NULL) < 0)
		return NULL;
	/* a hook's environment is where a rule puts a credential */
	if (json_object_object_get_ex(copy, "env", &env) &&
	    json_object_is_type(env, json_type_object)) {
		json_object_object_foreach(env, name, value)
		{
			(void)value;
			json_object_object_add(env, name, json_object_new_string(REDACT_MASK));
		}
	}
	return copy;
}

/* ---- replay ----------------------------------------------------------------- */

static int replay_fail(const struct api_req *r, struct store *st, const char *what)
{
	char msg[400];
	snprintf(msg, sizeof(msg), "%s: %s", what, sqlite3_errmsg(store_sqlite(st)));
	api_db_writer_done(st, 0);
	return api_reply_error(r->c, 503, msg);
}

static int replayed(const struct api_req *r, struct store *st, long long n)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "replayed", json_object_new_int64(n));
	int status = api_reply_json(r->c, 200, o);
	api_db_writer_done(st, n > 0);
	return status;
}

int api_post_replay_job(const struct api_req *r, long long id)
{
	struct err err;
	struct store *st = api_db_writer(&err);
	sqlite3_stmt *s = NULL;
	char ids[24];
	long long n = 0;

	if (!st)
		return api_reply_error(r->c, 503, err.msg);
	if (sqlite3_prepare_v2(store_sqlite(st), "SELECT 1 FROM jobs WHERE id = ?1", -1, &s, NULL) !=
	    SQLITE_OK)
		return replay_fail(r, st, "replay");
	sqlite3_bind_int64(s, 1, id);
	int found = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	if (!found) {
		api_db_writer_done(st, 0);
		return api_reply_error(r->c, 404, "no such job");
	}
	snprintf(ids, sizeof(ids), "%lld", id);
	/* as `runbridge replay --id N`: a done or dead job runs again */
	if (store_replay(st, 0, ids, clock_wall_ms(), &n, &err) < 0) {
		api_db_writer_done(st, 0);
		return api_reply_error(r->c, 503, err.msg);
	}
	return replayed(r, st, n);
}

static const char *str_field(json_object *o, const char *key, int *bad)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*bad = 1;
		return NULL;
	}
	return json_object_get_string(v);
}

/*
 * What store_replay writes, for the dead jobs that match, in one statement,
 * with only the filters given: the matches are found first in the
 * jobs_dead_by index, which holds rule, kind and updated_ms, so a replay
 * by those reads no job row (target and project read the matches' rows;
 * a read cursor, served from the file's mapping); then only the matches
 * are written.  A replay's cost is the rows it changes: dead jobs lie one
 * to a page of the jobs table, so 20,000 of them are 20,000 pages (80 MB)
 * to write and sync (docs/benchmarks.md has the figures).
 */
static void replay_sql(char *sql, size_t len, int rule, int kind, int target, int project)
{
	snprintf(sql, len,
		 "UPDATE jobs SET state = 0, attempts = 0, next_ms = 0, requeue = 1, updated_ms = ?1"
		 " WHERE id IN (SELECT j.id FROM jobs j WHERE j.state = 3%s%s%s%s"
		 " AND j.updated_ms >= ?6)",
		 rule ? " AND j.rule = ?2" : "", kind ? " AND j.kind = ?3" : "",
		 target ? " AND json_extract(j.params, '$.target') = ?4" : "",
		 project ? " AND (SELECT d.project FROM deliveries d WHERE d.seq = j.delivery_seq)"
			   " IS NULLIF(?5, '')"
			 : "");
}

int api_post_replay(const struct api_req *r, const char *body, size_t len)
{
	json_object *o = api_parse_json(body, len);
	int bad = !o || !json_object_is_type(o, json_type_object);
	const char *state = bad ? NULL : str_field(o, "state", &bad);
	const char *rule = bad ? NULL : str_field(o, "rule", &bad);
	const char *kind = bad ? NULL : str_field(o, "kind", &bad);
	const char *target = bad ? NULL : str_field(o, "target", &bad);
	const char *project = bad ? NULL : str_field(o, "project", &bad);
	const char *since = bad ? NULL : str_field(o, "since", &bad);
	long long since_ms = 0;

	if (bad || !state || strcmp(state, "dead") != 0 ||
	    (since && api_parse_time(since, &since_ms) < 0)) {
		json_object_put(o);
		return api_reply_error(r->c, 400,
				       "want a JSON object {\"state\": \"dead\"} with optional string"
				       " rule, kind, target, project and since (ISO 8601 UTC)");
	}
	struct err err;
	struct store *st = api_db_writer(&err);
	sqlite3_stmt *s = NULL;
	if (!st) {
		json_object_put(o);
		return api_reply_error(r->c, 503, err.msg);
	}
	char sql[640];
	replay_sql(sql, sizeof(sql), rule != NULL, kind != NULL, target != NULL, project != NULL);
	if (sqlite3_prepare_v2(store_sqlite(st), sql, -1, &s, NULL) != SQLITE_OK) {
		json_object_put(o);
		return replay_fail(r, st, "replay");
	}
	sqlite3_bind_int64(s, 1, clock_wall_ms());
	sqlite3_bind_text(s, 2, rule, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 3, kind, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 4, target, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, project, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 6, since_ms);
	json_object_put(o);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return replay_fail(r, st, "replay");
	return replayed(r, st, sqlite3_changes(store_sqlite(st)));
}
