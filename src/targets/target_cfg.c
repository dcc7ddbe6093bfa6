/*
 * target_cfg: the targets: section, read through the registry.  Each kind
 * with targets has its config map in its ops (action.h: name, type,
 * default, required, description); this is the one loader of all of them.
 * Values are ${VAR}-expanded, checked with their file:line:column, and kept
 * as a typed JSON object that the kind's code reads at run time.  Templates
 * stay text: they are rendered per event.  run_url, which every kind has,
 * is checked here and filled in for the operator API (target_cfg.h).
 */
#include "targets/target_cfg.h"

#include "actions/action.h"
#include "targets/target_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add_error(struct errlist *errs, const struct cfg_node *at, const char *fmt,
		     const char *a, const char *b, const char *c)
{
	char where[300], msg[800];
	/* every caller passes a literal taking at most three strings */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(msg, sizeof(msg), fmt, a, b, c);
#pragma GCC diagnostic pop
	return errlist_add(errs, "%s: %s", cfg_where(at, where, sizeof(where)), msg);
}

static int enum_ok(const char *values, const char *v)
{
	size_t n = strlen(v);
	for (const char *p = values; *p;) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && strncmp(p, v, n) == 0)
			return 1;
		p += len + (bar != NULL);
	}
	return 0;
}

/* A scalar, expanded; NULL after reporting the problem. */
static char *scalar(const struct cfg_node *v, const char *path, struct errlist *errs)
{
	char why[256], *out = NULL;

	if (v->type != CFG_SCALAR) {
		add_error(errs, v, "%s: expected a single value, got %s", path, cfg_type_name(v), "");
		return NULL;
	}
	if (config_expand(v->value, &out, why, sizeof(why)) < 0) {
		add_error(errs, v, "%s: %s", path, why, "");
		return NULL;
	}
	return out;
}

/* YAML -> JSON for free-form maps (query_plan, labels). */
static json_object *to_json(const struct cfg_node *n)
{
	json_object *o;
	long long i;
	int b;

	switch (n->type) {
	case CFG_MAP:
		o = json_object_new_object();
		for (size_t k = 0; k < n->n; k++)
			json_object_object_add(o, n->keys[k]->value, to_json(n->items[k]));
		return o;
	case CFG_SEQ:
		o = json_object_new_array();
		for (size_t k = 0; k < n->n; k++)
			json_object_array_add(o, to_json(n->items[k]));
		return o;
	default:
		if (cfg_scalar_is_null(n) == 0)
			return NULL;
		if (cfg_scalar_int(n, &i) == 0)
			return json_object_new_int64(i);
		if (cfg_scalar_bool(n, &b) == 0)
			return json_object_new_boolean(b);
		return json_object_new_string(n->value);
	}
}

static json_object *typed(const struct action_key *s, const char *text, const struct cfg_node *at,
			  const char *path, struct errlist *errs)
{
	char *end;
	long long v;

	switch (s->type) {
	case AK_INT:
		errno = 0;
		v = strtoll(text, &end, 10);
		if (errno || !*text || *end || v < 0) {
			add_error(errs, at, "%s: expected a non-negative integer, got '%s'", path,
				  text, "");
			return NULL;
		}
		return json_object_new_int64(v);
	case AK_BOOL:
		if (strcmp(text, "true") && strcmp(text, "false")) {
			add_error(errs, at, "%s: expected true or false, got '%s'", path, text, "");
			return NULL;
		}
		return json_object_new_boolean(text[0] == 't');
	case AK_ENUM:
		if (!enum_ok(s->values, text)) {
			add_error(errs, at, "%s: expected one of %s, got '%s'", path, s->values,
				  text);
			return NULL;
		}
		break;
	case AK_URL:
		if (strncmp(text, "http://", 7) && strncmp(text, "https://", 8)) {
			add_error(errs, at, "%s: expected an http:// or https:// URL, got '%s'",
				  path, text, "");
			return NULL;
		}
		break;
	case AK_SECRET:
	case AK_STR:
		if (!*text) {
			add_error(errs, at, "%s: is empty%s%s", path,
				  s->type == AK_SECRET ? " (is its environment variable set?)" : "",
				  "");
			return NULL;
		}
		break;
	default: break;
	}
	return json_object_new_string(text);
}

/* ---- run_url -------------------------------------------------------------- */

static const char *const placeholders[] = { "remote_id", "project", "run_id", NULL };

/* The placeholder {name} starting at p ('{'), its length with the
 * braces in *n: its index in placeholders, or -1. */
static int placeholder_at(const char *p, size_t *n)
{
	const char *close = strchr(p, '}');

	*n = close ? (size_t)(close - p) + 1 : strlen(p);
	for (int i = 0; close && placeholders[i]; i++)
		if (strlen(placeholders[i]) == *n - 2 && strncmp(p + 1, placeholders[i], *n - 2) == 0)
			return i;
	return -1;
}

/* A query parameter named like a credential (api_key, token, sig, ...). */
static int secret_name(const char *name, size_t n)
{
	static const char *const words[] = { "key", "token",   "secret", "pass", "auth",
					     "sig", "session", "cred",   NULL };
	char low[64];

	if (n >= sizeof(low))
		n = sizeof(low) - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[n] = '\0';
	for (int i = 0; words[i]; i++)
		if (strstr(low, words[i]))
			return 1;
	return 0;
}

/* NULL, or why url may not be a run_url. */
static const char *run_url_problem(const char *url, char *why, size_t len)
{
	const char *host = strstr(url, "://") + 3, *q = strchr(url, '?');
	size_t authority = strcspn(host, "/?#");

	if (memchr(host, '@', authority))
		return "may not carry credentials (user:password@)";
	for (const char *p = strchr(url, '{'); p; p = strchr(p + 1, '{')) {
		size_t n;
		if (placeholder_at(p, &n) < 0) {
			snprintf(why, len,
				 "unknown placeholder '%.*s'; expected {remote_id}, {project} or {run_id}",
				 (int)(n > 40 ? 40 : n), p);
			return why;
		}
	}
	for (const char *p = q; p && *p && *p != '#'; p += strcspn(p + 1, "&#") + 1) {
		size_t n = strcspn(p + 1, "=&#");
		if (secret_name(p + 1, n)) {
			snprintf(why, len,
				 "query parameter '%.*s' looks like a credential; everyone who may"
				 " read the operator API sees this URL",
				 (int)(n > 40 ? 40 : n), p + 1);
			return why;
		}
	}
	return NULL;
}

int target_cfg_run_url(char *out, size_t len, const struct target_cfg *t, const char *remote_id,
		       const char *project, long long run_id)
{
	json_object *v;
	char run[24], enc[1024];
	size_t o = 0, n;

	if (!json_object_object_get_ex(t->settings, "run_url", &v) ||
	    !json_object_is_type(v, json_type_string))
		return 0;
	snprintf(run, sizeof(run), "%lld", run_id);
	for (const char *p = json_object_get_string(v); *p; p += n) {
		int i = *p == '{' ? placeholder_at(p, &n) : -1;
		const char *piece = p, *val = i == 0 ? remote_id : i == 1 ? project : run;
		size_t plen;
		if (i < 0) {
			n = plen = strcspn(p + 1, "{") + 1; /* text up to the next placeholder */
		} else if (!val || !*val) {
			return 0;
		} else if (tu_pct_encode(val, enc, sizeof(enc)) < 0) {
			return -1;
		} else {
			piece = enc;
			plen = strlen(enc);
		}
		if (o + plen >= len)
			return -1;
		memcpy(out + o, piece, plen);
		o += plen;
	}
	out[o] = '\0';
	return 1;
}

/* ---- loading ---------------------------------------------------------------- */

static int load_setting(json_object *out, const struct action_key *s, const struct cfg_node *v,
			const char *path, struct errlist *errs)
{
	if (s->type == AK_MAP && !(v->type == CFG_SCALAR && (s->flags & AK_SCALAR_OK))) {
		if (v->type != CFG_MAP)
			return add_error(errs, v, "%s: expected a map, got %s", path,
					 cfg_type_name(v), "");
		json_object_object_add(out, s->name, to_json(v));
		return 0;
	}
	char *text = scalar(v, path, errs);
	if (!text)
		return -1;
	json_object *val = typed(s, text, v, path, errs);
	char why[200];
	const char *problem = val && strcmp(s->name, "run_url") == 0
				      ? run_url_problem(text, why, sizeof(why))
				      : NULL;
	free(text);
	if (problem) {
		json_object_put(val);
		return add_error(errs, v, "%s: %s", path, problem, "");
	}
	if (!val)
		return -1;
	json_object_object_add(out, s->name, val);
	return 0;
}

static const struct action_key *find_setting(const struct action_key *tab, const char *name)
{
	for (; tab->name; tab++)
		if (strcmp(tab->name, name) == 0)
			return tab;
	return NULL;
}

static int load_target(struct target_cfg *t, const struct action_key *tab,
		       const struct cfg_node *key, const struct cfg_node *map, struct errlist *errs)
{
	char path[200];
	int bad = 0;

	t->settings = json_object_new_object();
	if (map->type != CFG_MAP)
		return add_error(errs, map, "targets.%s.%s: expected a map of settings, got %s",
				 t->kind, t->name, cfg_type_name(map));
	for (size_t i = 0; i < map->n; i++) {
		const char *k = map->keys[i]->value;
		const struct action_key *s = find_setting(tab, k);
		snprintf(path, sizeof(path), "targets.%s.%s.%.60s", t->kind, t->name, k);
		if (!s)
			bad |= add_error(errs, map->keys[i], "unknown key '%s'", path, "", "");
		else
			bad |= load_setting(t->settings, s, map->items[i], path, errs);
	}
	for (; tab->name; tab++) {
		if (json_object_object_get_ex(t->settings, tab->name, NULL))
			continue;
		snprintf(path, sizeof(path), "targets.%s.%s.%s", t->kind, t->name, tab->name);
		if (tab->flags & AK_REQUIRED)
			bad |= add_error(errs, key, "%s is required", path, "", "");
		else if (tab->def)
			json_object_object_add(t->settings, tab->name,
					       typed(tab, tab->def, key, path, errs));
	}
	return bad ? -1 : 0;
}

/* "testomat, qasphere or testcenter" (last = " or "): the kinds that have
 * targets. */
static const char *kinds_with_targets(char *buf, size_t len, const char *last)
{
	size_t n = 0, k = 0, total = 0;

	for (size_t i = 0; i < action_count(); i++)
		total += action_at(i)->settings != NULL;
	buf[0] = '\0';
	for (size_t i = 0; i < action_count() && n < len; i++) {
		const struct action_ops *ops = action_at(i);
		if (!ops->settings)
			continue;
		k++;
		n += (size_t)snprintf(buf + n, len - n, "%s%s",
				      k == 1       ? ""
				      : k == total ? last
						   : ", ",
				      ops->name);
	}
	return buf;
}

static int load_kind(struct config *cfg, const struct cfg_node *key, const struct cfg_node *val,
		     struct errlist *errs)
{
	const struct action_ops *ops = action_find(key->value);
	const struct action_key *tab = ops ? ops->settings : NULL;
	char list[256];
	int bad = 0;

	if (!tab)
		return add_error(errs, key, "unknown key 'targets.%s'; expected %s", key->value,
				 kinds_with_targets(list, sizeof(list), " or "), "");
	if (val->type != CFG_MAP)
		return add_error(errs, val, "targets.%s: expected a map of named targets, got %s",
				 key->value, cfg_type_name(val), "");
	for (size_t i = 0; i < val->n; i++) {
		struct target_cfg *grown = realloc(cfg->targets,
						   (cfg->n_targets + 1) * sizeof(*grown));
		if (!grown)
			return errlist_add(errs, "out of memory");
		cfg->targets = grown;
		struct target_cfg *t = &cfg->targets[cfg->n_targets++];
		memset(t, 0, sizeof(*t));
		t->kind = strdup(key->value);
		t->name = strdup(val->keys[i]->value);
		if (config_target(cfg, t->kind, t->name) != t)
			bad |= add_error(errs, val->keys[i], "targets.%s.%s: defined twice",
					 t->kind, t->name, "");
		bad |= load_target(t, tab, val->keys[i], val->items[i], errs);
		if (!bad && ops->check)
			bad |= ops->check(t, val->keys[i], errs);
	}
	return bad ? -1 : 0;
}

int target_cfg_load(struct config *cfg, const struct cfg_node *val, struct errlist *errs)
{
	char list[256];
	int bad = 0;

	if (cfg_scalar_is_null(val) == 0)
		return 0;
	if (val->type != CFG_MAP)
		return add_error(errs, val, "targets: expected a map (%s), got %s",
				 kinds_with_targets(list, sizeof(list), ", "), cfg_type_name(val),
				 "");
	for (size_t i = 0; i < val->n; i++)
		bad |= load_kind(cfg, val->keys[i], val->items[i], errs);
	return bad ? -1 : 0;
}

const struct config_section target_cfg_section = {
	.name = "targets",
	.load = target_cfg_load,
};
