/*
 * api_rules: the rules (GET /api/v1/rules, POST /api/v1/route) and the
 * re-queueing (POST /api/v1/jobs/{id}/replay, /api/v1/replay).
 *
 * The rule list is read from the rule files (rules_path) as `runbridge
 * route` reads them: name, file:line, action kinds, stop, and how many
 * deliveries matched the name since the process started.  Action params are
 * not shown (URLs and headers may be credentials).  POST /api/v1/route is
 * `runbridge route` (cli_route_report): the rules as the files have them,
 * nothing run, nothing stored, http secrets masked.
 *
 * Replay writes what `runbridge replay` writes (state pending, attempts 0,
 * the requeue flag) through its own writable connection; the dispatcher
 * takes flagged jobs within a second (store_jobs_take_requeued).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>

#include "api/api.h"
#include "api/api_query.h"
#include "api/api_stream.h"
#include "cli/cli.h"
#include "core/cfgtree.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/redact.h"
#include "rules/rules.h"
#include "store/store.h"
#include "store/store_db.h"

enum { RULE_FILES_MAX = 256 };

static void list_doc(json_object *out, const struct cfg_doc *doc)
{
	const struct cfg_node *list = doc->root ? cfg_get(doc->root, "rules") : NULL;

	for (size_t i = 0; list && list->type == CFG_SEQ && i < list->n; i++) {
		const struct cfg_node *r = list->items[i], *name = cfg_get(r, "name");
		const struct cfg_node *actions = cfg_get(r, "actions"), *stop = cfg_get(r, "stop");
		json_object *o = json_object_new_object(), *kinds = json_object_new_array();
		char where[512];
		int stops = 0;

		if (!name || name->type != CFG_SCALAR)
			continue;
		json_object_object_add(o, "name", json_object_new_string(name->value));
		json_object_object_add(o, "where",
				       json_object_new_string(cfg_where(r, where, sizeof(where))));
		for (size_t k = 0; actions && actions->type == CFG_SEQ && k < actions->n; k++) {
			const struct cfg_node *a = actions->items[k];
			if (a->type == CFG_MAP && a->n > 0)
				json_object_array_add(kinds,
						      json_object_new_string(a->keys[0]->value));
		}
		json_object_object_add(o, "actions", kinds);
		if (stop)
			cfg_scalar_bool(stop, &stops);
		json_object_object_add(o, "stop", json_object_new_boolean(stops));
		json_object_object_add(o, "matched",
				       json_object_new_int64(api_stats_rule_matches(name->value)));
		json_object_array_add(out, o);
	}
}

static void list_file(json_object *out, const char *path)
{
	struct cfg_doc *doc;
	struct err err;

	if (cfg_load_file(&doc, path, &err) == 0) {
		list_doc(out, doc);
		cfg_doc_free(doc);
	}
}

static int is_rule_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return d->d_name[0] != '.' && ((n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0) ||
				       (n > 4 && strcmp(d->d_name + n - 4, ".yml") == 0));
}

int api_get_rules(const struct api_req *r)
{
	json_object *items = json_object_new_array();
	struct dirent **names = NULL;
	const char *path = r->cfg->rules_path;
	int n = scandir(path, &names, is_rule_file, alphasort);

	if (n < 0) {
		list_file(items, path); /* one file */
	} else {
		for (int i = 0; i < n; i++) {
			char file[4096];
			if (i < RULE_FILES_MAX) {
				snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
				list_file(items, file);
			}
			free(names[i]);
		}
		free(names);
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "items", items);
	json_object_object_add(o, "next_cursor", NULL);
	return api_reply_json(r->c, 200, o);
}

int api_post_route(const struct api_req *r, const char *body, size_t len)
{
	struct rules *rules = NULL;
	struct errlist errs = ERRLIST_INIT;
	struct err err = { 0 };
	char *out = NULL;

	if (rules_load(&rules, r->cfg->rules_path, &errs) < 0) {
		errlist_free(&errs);
		return api_reply_error(r->c, 503, "the rule files have errors (runbridge check)");
	}
	errlist_free(&errs);
	int rc = cli_route_report(&out, r->cfg, rules, body, len, 0, 0, &err);
	rules_free(rules);
	if (rc < 0)
		return api_reply_error(r->c, err.code == ERR_INVALID ? 400 : 503, err.msg);
	json_object *o = json_tokener_parse(out), *actions;
	free(out);
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
	snprintf(msg, sizeof(msg), "%s: %s", what, st ? sqlite3_errmsg(store_sqlite(st)) : "");
	store_close(st);
	return api_reply_error(r->c, 503, msg);
}

int api_post_replay_job(const struct api_req *r, long long id)
{
	struct store *st = NULL;
	struct err err;
	sqlite3_stmt *s = NULL;
	char ids[24];
	long long n = 0;

	if (store_open(&st, r->cfg->data_dir, STORE_RW, &err) < 0)
		return api_reply_error(r->c, 503, err.msg);
	if (sqlite3_prepare_v2(store_sqlite(st), "SELECT 1 FROM jobs WHERE id = ?1", -1, &s, NULL) !=
	    SQLITE_OK)
		return replay_fail(r, st, "replay");
	sqlite3_bind_int64(s, 1, id);
	int found = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	if (!found) {
		store_close(st);
		return api_reply_error(r->c, 404, "no such job");
	}
	snprintf(ids, sizeof(ids), "%lld", id);
	/* as `runbridge replay --id N`: a done or dead job runs again */
	if (store_replay(st, 0, ids, clock_wall_ms(), &n, &err) < 0) {
		store_close(st);
		return api_reply_error(r->c, 503, err.msg);
	}
	store_close(st);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "replayed", json_object_new_int64(n));
	return api_reply_json(r->c, 200, o);
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
	struct store *st = NULL;
	struct err err;
	sqlite3_stmt *s = NULL;
	if (store_open(&st, r->cfg->data_dir, STORE_RW, &err) < 0) {
		json_object_put(o);
		return api_reply_error(r->c, 503, err.msg);
	}
	/* what store_replay writes, for the dead jobs (jobs_dead) that match */
	if (sqlite3_prepare_v2(store_sqlite(st),
			       "UPDATE jobs SET state = 0, attempts = 0, next_ms = 0, requeue = 1,"
			       " updated_ms = ?1 WHERE id IN (SELECT j.id FROM jobs j WHERE j.state = 3"
			       " AND (?2 IS NULL OR j.rule = ?2) AND (?3 IS NULL OR j.kind = ?3)"
			       " AND (?4 IS NULL OR json_extract(j.params, '$.target') = ?4)"
			       " AND (?5 IS NULL OR (SELECT d.project FROM deliveries d"
			       " WHERE d.seq = j.delivery_seq) IS NULLIF(?5, ''))"
			       " AND j.updated_ms >= ?6)",
			       -1, &s, NULL) != SQLITE_OK) {
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
	long long n = sqlite3_changes(store_sqlite(st));
	store_close(st);
	json_object *out = json_object_new_object();
	json_object_object_add(out, "replayed", json_object_new_int64(n));
	return api_reply_json(r->c, 200, out);
}
