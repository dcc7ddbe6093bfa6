/*
 * target_cfg: the targets: section.  Each kind has a table of settings
 * (name, type, default, required); values are ${VAR}-expanded, checked with
 * their file:line:column, and kept as a typed JSON object that the kind's
 * code reads at run time.  Templates stay text: they are rendered per event.
 */
#include "core/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum setting_type { T_STR, T_SECRET, T_URL, T_TEMPLATE, T_INT, T_BOOL, T_ENUM, T_MAP };

struct setting {
	const char *name;
	enum setting_type type;
	const char *def;          /* NULL: no default */
	int required;
	const char *values;       /* T_ENUM: "a|b|c" */
};

#define COMMON \
	{ "timeout_s", T_INT, "20", 0, NULL }, \
	{ "connect_timeout_s", T_INT, "5", 0, NULL }, \
	{ "verify_tls", T_BOOL, "true", 0, NULL }

static const struct setting testomat[] = {
	{ "base_url", T_URL, "https://app.testomat.io", 0, NULL },
	{ "api_key", T_SECRET, NULL, 1, NULL },
	{ "title", T_TEMPLATE, "[Qase {{project}}#{{run_id}}] {{run.title}}", 0, NULL },
	{ "group_title", T_TEMPLATE, "Qase {{project}}", 0, NULL },
	{ "description", T_TEMPLATE, "Mirrored from Qase run {{project}}#{{run_id}}", 0, NULL },
	{ "env", T_TEMPLATE, "{{run.environment}}", 0, NULL },
	{ "label", T_TEMPLATE, NULL, 0, NULL },
	{ "kind", T_ENUM, "manual", 0, "automated|manual|mixed" },
	{ "aborted_status", T_ENUM, "fail", 0, "fail|finish" },
	{ "api_key_in", T_ENUM, "both", 0, "body|query|both" },
	COMMON,
	{ NULL, 0, NULL, 0, NULL },
};

static const struct setting qasphere[] = {
	{ "base_url", T_URL, NULL, 1, NULL },
	{ "api_key", T_SECRET, NULL, 1, NULL },
	{ "project", T_STR, NULL, 1, NULL },
	{ "run_type", T_ENUM, "static_struct", 0, "static|static_struct|live" },
	{ "query_plan", T_MAP, NULL, 1, NULL },
	{ "auth_scheme", T_ENUM, "Bearer", 0, "Bearer|ApiKey" },
	{ "rate_limit_per_s", T_INT, "20", 0, NULL },
	{ "milestone_id", T_INT, NULL, 0, NULL },
	{ "title", T_TEMPLATE, "[Qase {{project}}#{{run_id}}] {{run.title}}", 0, NULL },
	{ "description", T_TEMPLATE, "Mirrored from Qase run {{project}}#{{run_id}}", 0, NULL },
	COMMON,
	{ NULL, 0, NULL, 0, NULL },
};

static const struct setting testcenter[] = {
	{ "base_url", T_URL, "http://localhost:8800", 0, NULL },
	{ "token", T_SECRET, NULL, 0, NULL },
	{ "user", T_STR, NULL, 0, NULL },
	{ "password", T_SECRET, NULL, 0, NULL },
	{ "project", T_STR, NULL, 1, NULL },
	{ "mode", T_ENUM, "import", 0, "import|reporting" },
	{ "batch", T_TEMPLATE, "Qase {{project}}#{{run_id}}", 0, NULL },
	{ "suite", T_TEMPLATE, "{{run.title}}", 0, NULL },
	{ "labels", T_MAP, NULL, 0, NULL },
	COMMON,
	{ NULL, 0, NULL, 0, NULL },
};

static const struct {
	const char *kind;
	const struct setting *settings;
} kinds[] = {
	{ "testomat", testomat },
	{ "qasphere", qasphere },
	{ "testcenter", testcenter },
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static int add_error(struct errlist *errs, const struct cfg_node *at,
		     const char *fmt, const char *a, const char *b, const char *c)
{
	char where[300], msg[800];
	snprintf(msg, sizeof(msg), fmt, a, b, c);
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
		add_error(errs, v, "%s: expected a single value, got %s", path,
			  cfg_type_name(v), "");
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

static json_object *typed(const struct setting *s, const char *text,
			  const struct cfg_node *at, const char *path,
			  struct errlist *errs)
{
	char *end;
	long long v;

	switch (s->type) {
	case T_INT:
		errno = 0;
		v = strtoll(text, &end, 10);
		if (errno || !*text || *end || v < 0) {
			add_error(errs, at, "%s: expected a non-negative integer, got '%s'", path, text, "");
			return NULL;
		}
		return json_object_new_int64(v);
	case T_BOOL:
		if (strcmp(text, "true") && strcmp(text, "false")) {
			add_error(errs, at, "%s: expected true or false, got '%s'", path, text, "");
			return NULL;
		}
		return json_object_new_boolean(text[0] == 't');
	case T_ENUM:
		if (!enum_ok(s->values, text)) {
			add_error(errs, at, "%s: expected one of %s, got '%s'", path, s->values, text);
			return NULL;
		}
		break;
	case T_URL:
		if (strncmp(text, "http://", 7) && strncmp(text, "https://", 8)) {
			add_error(errs, at, "%s: expected an http:// or https:// URL, got '%s'", path, text, "");
			return NULL;
		}
		break;
	case T_SECRET:
	case T_STR:
		if (!*text) {
			add_error(errs, at, "%s: is empty%s%s", path,
				  s->type == T_SECRET ? " (is its environment variable set?)" : "", "");
			return NULL;
		}
		break;
	default:
		break;
	}
	return json_object_new_string(text);
}

static int load_setting(json_object *out, const struct setting *s,
			const struct cfg_node *v, const char *path, struct errlist *errs)
{
	if (s->type == T_MAP) {
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
	free(text);
	if (!val)
		return -1;
	json_object_object_add(out, s->name, val);
	return 0;
}

static const struct setting *find_setting(const struct setting *tab, const char *name)
{
	for (; tab->name; tab++)
		if (strcmp(tab->name, name) == 0)
			return tab;
	return NULL;
}

static int load_target(struct target_cfg *t, const struct setting *tab,
		       const struct cfg_node *key, const struct cfg_node *map,
		       struct errlist *errs)
{
	char path[200];
	int bad = 0;

	t->settings = json_object_new_object();
	if (map->type != CFG_MAP)
		return add_error(errs, map, "targets.%s.%s: expected a map of settings, got %s",
				 t->kind, t->name, cfg_type_name(map));
	for (size_t i = 0; i < map->n; i++) {
		const char *k = map->keys[i]->value;
		const struct setting *s = find_setting(tab, k);
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
		if (tab->required)
			bad |= add_error(errs, key, "%s is required", path, "", "");
		else if (tab->def)
			json_object_object_add(t->settings, tab->name,
					       typed(tab, tab->def, key, path, errs));
	}
	return bad ? -1 : 0;
}

static int testcenter_auth(const struct target_cfg *t, const struct cfg_node *key,
			   struct errlist *errs)
{
	json_object *s = t->settings;
	int token = json_object_object_get_ex(s, "token", NULL);
	int user = json_object_object_get_ex(s, "user", NULL);
	int pass = json_object_object_get_ex(s, "password", NULL);

	if (token == (user || pass) || user != pass)
		return add_error(errs, key, "targets.testcenter.%s: give either token, "
				 "or user and password", t->name, "", "");
	return 0;
}

static int load_kind(struct config *cfg, const struct cfg_node *key,
		     const struct cfg_node *val, struct errlist *errs)
{
	const struct setting *tab = NULL;
	int bad = 0;

	for (size_t i = 0; i < NKINDS; i++)
		if (strcmp(kinds[i].kind, key->value) == 0)
			tab = kinds[i].settings;
	if (!tab)
		return add_error(errs, key, "unknown key 'targets.%s'; expected testomat, "
				 "qasphere or testcenter", key->value, "", "");
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
		if (!bad && strcmp(t->kind, "testcenter") == 0)
			bad |= testcenter_auth(t, val->keys[i], errs);
	}
	return bad ? -1 : 0;
}

int targets_load(struct config *cfg, const struct cfg_node *val,
		 struct errlist *errs)
{
	int bad = 0;

	if (cfg_scalar_is_null(val) == 0)
		return 0;
	if (val->type != CFG_MAP)
		return add_error(errs, val, "targets: expected a map (testomat, qasphere, "
				 "testcenter), got %s", cfg_type_name(val), "", "");
	for (size_t i = 0; i < val->n; i++)
		bad |= load_kind(cfg, val->keys[i], val->items[i], errs);
	return bad ? -1 : 0;
}

void targets_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_targets; i++) {
		free(cfg->targets[i].kind);
		free(cfg->targets[i].name);
		json_object_put(cfg->targets[i].settings);
	}
	free(cfg->targets);
	cfg->targets = NULL;
	cfg->n_targets = 0;
}
