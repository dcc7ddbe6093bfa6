/*
 * rules: loading rule files and routing events through them.
 *
 * Loading never stops at the first problem: every file is read and every
 * rule checked, and each problem is reported with its file:line:column, so
 * that one `runbridge -n` run shows everything to fix.  Conditions live in
 * cond.c; each action kind checks its own map (through actions/action_spec.h).
 *
 * Once loaded, rules are read-only: routing only reads them, and the YAML
 * documents are freed at the end of the load (action specs own their data).
 */
#include "rules/rules.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "actions/action_spec.h"
#include "core/cfgtree.h"
#include "rules/cond.h"
#include "rules/lint.h"

#define RULES_MAX     10000
#define RULE_NAME_MAX 128

#define RB_STR_(x) #x
#define RB_STR(x)  RB_STR_(x)

struct rule {
	char *name;
	char *where;        /* "file:line:col", for listing */
	struct cond *match; /* NULL: every event */
	struct action_spec **actions;
	size_t n_actions;
	int stop;
};

struct rules {
	struct rule *v;
	size_t n;
	struct errlist warnings; /* see lint.h */
};

/* State of one load, across all its files. */
struct loader {
	struct rules *rs;
	struct errlist *errs;
	json_object *names; /* rule name -> "file:line:col" of it */
	size_t seen;        /* rules met so far, valid or not */
	int bad;
};

static void rule_clear(struct rule *r)
{
	for (size_t i = 0; i < r->n_actions; i++)
		action_spec_free(r->actions[i]);
	free(r->actions);
	cond_free(r->match);
	free(r->name);
	free(r->where);
	memset(r, 0, sizeof(*r));
}

void rules_free(struct rules *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		rule_clear(&rs->v[i]);
	free(rs->v);
	errlist_free(&rs->warnings);
	free(rs);
}

size_t rules_count(const struct rules *rs)
{
	return rs ? rs->n : 0;
}

const struct errlist *rules_warnings(const struct rules *rs)
{
	return &rs->warnings;
}

void rules_at(const struct rules *rs, size_t i, struct rule_view *out)
{
	const struct rule *r = &rs->v[i];

	*out = (struct rule_view){
		.name = r->name,
		.where = r->where ? r->where : "",
		.n_actions = r->n_actions,
		.stop = r->stop,
	};
}

const char *rules_action_kind(const struct rules *rs, size_t i, size_t k)
{
	return action_spec_kind(rs->v[i].actions[k]);
}

/* The capacity an array of n items grows to before its next append, or 0
 * when it has room: capacities run 4, 8, 16, ... */
static size_t grown_cap(size_t n)
{
	if (n == 0)
		return 4;
	if (n < 4 || (n & (n - 1)) != 0)
		return 0;
	return n * 2;
}

/* ---- one rule ------------------------------------------------------------ */

/* Appends "where: msg" and marks the load failed. */
static void fail(struct loader *ld, const struct cfg_node *at, const char *msg, const char *rule)
{
	char where[300];

	ld->bad = 1;
	if (rule)
		errlist_add(ld->errs, "%s: rule '%s': %s", cfg_where(at, where, sizeof(where)),
			    rule, msg);
	else
		errlist_add(ld->errs, "%s: %s", cfg_where(at, where, sizeof(where)), msg);
}

/* Remembers the name; a second rule of the same name is an error naming both. */
static int claim_name(struct loader *ld, const struct cfg_node *v)
{
	char where[300], msg[ERR_MSG_MAX];
	json_object *first, *pos;

	cfg_where(v, where, sizeof(where));
	if (json_object_object_get_ex(ld->names, v->value, &first)) {
		snprintf(msg, sizeof(msg), "duplicate rule name '%s'; first defined at %s",
			 v->value, json_object_get_string(first));
		fail(ld, v, msg, NULL);
		return -1;
	}
	pos = json_object_new_string(where);
	if (!pos || json_object_object_add(ld->names, v->value, pos) < 0) {
		json_object_put(pos);
		fail(ld, v, "out of memory", NULL);
		return -1;
	}
	return 0;
}

static int parse_name(struct loader *ld, struct rule *r, const struct cfg_node *node)
{
	const struct cfg_node *v = cfg_get(node, "name");

	if (!v) {
		fail(ld, node, "a rule needs a name", NULL);
		return -1;
	}
	if (v->type != CFG_SCALAR || cfg_scalar_is_null(v) == 0 || !*v->value) {
		fail(ld, v, "name must be a non-empty string", NULL);
		return -1;
	}
	if (strlen(v->value) > RULE_NAME_MAX) {
		fail(ld, v, "name is longer than " RB_STR(RULE_NAME_MAX) " bytes", NULL);
		return -1;
	}
	if (!(r->name = strdup(v->value))) {
		fail(ld, v, "out of memory", NULL);
		return -1;
	}
	return claim_name(ld, v);
}

static int parse_action(struct loader *ld, struct rule *r, const struct cfg_node *item,
			const char *label)
{
	char msg[ERR_MSG_MAX];
	int rc;

	if (item->type != CFG_MAP || item->n != 1) {
		fail(ld, item,
		     "an action is a map with one key, its kind, like '- redis: {stream: ...}'",
		     label);
		return -1;
	}
	rc = action_spec_parse(&r->actions[r->n_actions], item->keys[0]->value, item->items[0],
			       ld->errs);
	if (rc == ACTION_SPEC_UNKNOWN) {
		snprintf(msg, sizeof(msg), "unknown action kind '%s'; expected one of %s",
			 item->keys[0]->value, action_spec_kinds());
		fail(ld, item->keys[0], msg, label);
		return -1;
	}
	if (rc < 0) {
		ld->bad = 1;
		return -1;
	}
	r->n_actions++;
	return 0;
}

static int parse_actions(struct loader *ld, struct rule *r, const struct cfg_node *node,
			 const char *label)
{
	const struct cfg_node *v = cfg_get(node, "actions");
	int rc = 0;

	if (!v) {
		fail(ld, node, "a rule needs actions: a non-empty list", label);
		return -1;
	}
	if (v->type != CFG_SEQ || v->n == 0) {
		fail(ld, v, "actions must be a non-empty list", label);
		return -1;
	}
	if (!(r->actions = calloc(v->n, sizeof(*r->actions)))) {
		fail(ld, v, "out of memory", label);
		return -1;
	}
	for (size_t i = 0; i < v->n; i++)
		if (parse_action(ld, r, v->items[i], label) < 0)
			rc = -1;
	return rc;
}

static int parse_stop(struct loader *ld, struct rule *r, const struct cfg_node *node,
		      const char *label)
{
	const struct cfg_node *v = cfg_get(node, "stop");

	if (v && cfg_scalar_bool(v, &r->stop) < 0) {
		fail(ld, v, "stop must be true or false", label);
		return -1;
	}
	return 0;
}

static int parse_rule(struct loader *ld, struct rule *r, const struct cfg_node *node, size_t index)
{
	static const char *const keys[] = { "name", "match", "actions", "stop", NULL };
	char label[RULE_NAME_MAX + 32];
	int rc = 0;

	if (node->type != CFG_MAP) {
		fail(ld, node, "a rule must be a map with name, match, actions, stop", NULL);
		return -1;
	}
	if (parse_name(ld, r, node) < 0)
		rc = -1;
	if (r->name)
		snprintf(label, sizeof(label), "%s", r->name);
	else
		snprintf(label, sizeof(label), "#%zu", index + 1);
	if (cond_check_keys(node, keys, label, ld->errs) < 0)
		rc = -1;
	if (cond_parse_match(&r->match, cfg_get(node, "match"), label, ld->errs) < 0)
		rc = -1;
	if (parse_actions(ld, r, node, label) < 0)
		rc = -1;
	if (parse_stop(ld, r, node, label) < 0)
		rc = -1;
	if (rc < 0)
		ld->bad = 1;
	return rc;
}

/* Parses one rule and keeps it when it is valid. */
static void load_rule(struct loader *ld, const struct cfg_node *node, size_t index)
{
	struct rules *rs = ld->rs;
	struct rule r = { 0 };
	char where[300];
	size_t cap;

	if (++ld->seen > RULES_MAX) {
		if (ld->seen == RULES_MAX + 1)
			fail(ld, node, "more than " RB_STR(RULES_MAX) " rules", NULL);
		return;
	}
	if (parse_rule(ld, &r, node, index) < 0) {
		rule_clear(&r);
		return;
	}
	if (!(r.where = strdup(cfg_where(node, where, sizeof(where))))) {
		fail(ld, node, "out of memory", r.name);
		rule_clear(&r);
		return;
	}
	lint_rule(node, r.name, &rs->warnings);
	if ((cap = grown_cap(rs->n)) != 0) {
		struct rule *v = realloc(rs->v, cap * sizeof(*v));
		if (!v) {
			fail(ld, node, "out of memory", r.name);
			rule_clear(&r);
			return;
		}
		rs->v = v;
	}
	rs->v[rs->n++] = r;
}

/* ---- files --------------------------------------------------------------- */

static void load_doc(struct loader *ld, const struct cfg_doc *doc)
{
	static const char *const keys[] = { "rules", NULL };
	const struct cfg_node *root = doc->root, *list;

	if (!root)
		return; /* an empty file: no rules */
	if (root->type != CFG_MAP) {
		fail(ld, root, "expected a map with a top-level key 'rules'", NULL);
		return;
	}
	if (cond_check_keys(root, keys, NULL, ld->errs) < 0)
		ld->bad = 1;
	list = cfg_get(root, "rules");
	if (!list) {
		fail(ld, root, "missing the top-level key 'rules'", NULL);
		return;
	}
	if (cfg_scalar_is_null(list) == 0)
		return;
	if (list->type != CFG_SEQ) {
		fail(ld, list, "rules must be a list", NULL);
		return;
	}
	for (size_t i = 0; i < list->n; i++)
		load_rule(ld, list->items[i], i);
}

static void load_file(struct loader *ld, const char *path)
{
	struct cfg_doc *doc;
	struct err e;

	if (cfg_load_file(&doc, path, &e) < 0) {
		ld->bad = 1;
		errlist_add(ld->errs, "%s", e.msg);
		return;
	}
	load_doc(ld, doc);
	cfg_doc_free(doc);
}

/* Rule files: *.yaml and *.yml; hidden files (editor leftovers) are not. */
static int is_rule_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	if (d->d_name[0] == '.')
		return 0;
	return (n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0) ||
	       (n > 4 && strcmp(d->d_name + n - 4, ".yml") == 0);
}

/* Byte order, whatever the locale, so that load order is predictable. */
static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void load_dir(struct loader *ld, const char *dir)
{
	struct dirent **list = NULL;
	int n = scandir(dir, &list, is_rule_file, by_name);

	if (n < 0) {
		ld->bad = 1;
		errlist_add(ld->errs, "%s: cannot read the directory: %s", dir, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(dir) + strlen(list[i]->d_name) + 2;
		char *path = malloc(len);
		struct stat st;
		if (!path) {
			ld->bad = 1;
			errlist_add(ld->errs, "%s: out of memory", dir);
		} else {
			snprintf(path, len, "%s/%s", dir, list[i]->d_name);
			/* a subdirectory named x.yaml is not a rule file */
			if (stat(path, &st) < 0 || S_ISREG(st.st_mode))
				load_file(ld, path);
		}
		free(path);
		free(list[i]);
	}
	free(list);
}

static int loader_init(struct loader *ld, struct rules **out, struct errlist *errs)
{
	*out = NULL;
	memset(ld, 0, sizeof(*ld));
	ld->errs = errs;
	ld->rs = calloc(1, sizeof(*ld->rs));
	ld->names = json_object_new_object();
	if (ld->rs && ld->names)
		return 0;
	free(ld->rs);
	json_object_put(ld->names);
	return errlist_add(errs, "rules: out of memory");
}

static int loader_finish(struct loader *ld, struct rules **out)
{
	json_object_put(ld->names);
	if (ld->bad) {
		rules_free(ld->rs);
		return -1;
	}
	*out = ld->rs;
	return 0;
}

int rules_load(struct rules **out, const char *path, struct errlist *errs)
{
	struct loader ld;
	struct stat st;

	if (loader_init(&ld, out, errs) < 0)
		return -1;
	if (stat(path, &st) < 0) {
		ld.bad = 1;
		errlist_add(errs, "%s: %s", path, strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		load_dir(&ld, path);
	} else {
		load_file(&ld, path);
	}
	return loader_finish(&ld, out);
}

int rules_load_string(struct rules **out, const char *name, const char *text, struct errlist *errs)
{
	struct loader ld;
	struct cfg_doc *doc;
	struct err e;

	if (loader_init(&ld, out, errs) < 0)
		return -1;
	if (cfg_load_string(&doc, name, text, strlen(text), &e) < 0) {
		ld.bad = 1;
		errlist_add(errs, "%s", e.msg);
	} else {
		load_doc(&ld, doc);
		cfg_doc_free(doc);
	}
	return loader_finish(&ld, out);
}

/* ---- routing ------------------------------------------------------------- */

void route_result_free(struct route_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		json_object_put(r->v[i].params);
	free(r->v);
	free(r->matched);
	memset(r, 0, sizeof(*r));
}

static int push_matched(struct route_result *out, const char *name)
{
	size_t cap = grown_cap(out->n_matched);

	if (cap) {
		const char **v = realloc(out->matched, cap * sizeof(*v));
		if (!v)
			return -1;
		out->matched = v;
	}
	out->matched[out->n_matched++] = name;
	return 0;
}

static int push_action(struct route_result *out, const struct rule *r, size_t index,
		       json_object *event, struct err *err)
{
	const struct action_spec *a = r->actions[index];
	size_t cap = grown_cap(out->n);
	json_object *params;

	if (cap) {
		struct routed_action *v = realloc(out->v, cap * sizeof(*v));
		if (!v)
			return err_set(err, "out of memory");
		out->v = v;
	}
	if (action_spec_render(&params, a, event, err) < 0)
		return -1;
	out->v[out->n++] = (struct routed_action){
		.rule = r->name,
		.index = (int)index,
		.kind = action_spec_kind(a),
		.params = params,
	};
	return 0;
}

static int route_rule(const struct rule *r, json_object *event, struct route_result *out,
		      struct err *err)
{
	if (push_matched(out, r->name) < 0)
		return err_set(err, "out of memory");
	for (size_t i = 0; i < r->n_actions; i++)
		if (push_action(out, r, i, event, err) < 0)
			return -1;
	return 0;
}

int rules_route(const struct rules *rs, json_object *event, struct route_result *out, struct err *err)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *r = &rs->v[i];
		if (!cond_eval(r->match, event))
			continue;
		if (route_rule(r, event, out, err) < 0) {
			route_result_free(out);
			return -1;
		}
		if (r->stop)
			break;
	}
	return 0;
}
