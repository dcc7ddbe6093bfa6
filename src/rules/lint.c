/*
 * lint: see lint.h.  Works on the YAML tree of a rule that loaded: a scan
 * of the text, not of compiled conditions, so that every warning can name
 * the line and column of the use.
 */
#include "rules/lint.h"

#include <stdio.h>
#include <string.h>

/* A glob that can only match run.* names: it starts with "run." itself. */
static int run_only_glob(const char *g)
{
	return strncmp(g, "run.", 4) == 0;
}

/* The first glob of match.event that can match another family, or "" when
 * there is no event key (every family), or NULL when all are run.* only. */
static const char *other_family_glob(const struct cfg_node *match)
{
	const struct cfg_node *ev = cfg_get(match, "event");

	if (!ev)
		return "";
	if (ev->type == CFG_SCALAR)
		return run_only_glob(ev->value) ? NULL : ev->value;
	for (size_t i = 0; ev->type == CFG_SEQ && i < ev->n; i++)
		if (ev->items[i]->type == CFG_SCALAR && !run_only_glob(ev->items[i]->value))
			return ev->items[i]->value;
	return NULL;
}

/* Length of the run field path at p ("run", "run.x.y", "run_id"), or 0. */
static size_t run_path_len(const char *p)
{
	size_t n;

	if (strncmp(p, "run_id", 6) == 0)
		n = 6;
	else if (strncmp(p, "run", 3) == 0)
		n = 3;
	else
		return 0;
	if (p[n] == '.')
		n += strcspn(p + n, " }");
	else if (p[n] != '\0' && p[n] != ' ' && p[n] != '}')
		return 0; /* runner, run_x: another name */
	return n;
}

struct lint {
	const char *rule, *glob;
	struct errlist *out;
};

static void warn(struct lint *l, const struct cfg_node *at, const char *path, size_t len)
{
	char where[300];

	errlist_add(l->out,
		    "%s: warning: rule '%s': %.*s is null on events "
		    "other than run.* (%s matches them)",
		    cfg_where(at, where, sizeof(where)), l->rule, (int)len, path, l->glob);
}

/* Every {{ run... }} in a template scalar. */
static void scan_template(struct lint *l, const struct cfg_node *s)
{
	for (const char *p = strstr(s->value, "{{"); p; p = strstr(p, "{{")) {
		p += 2;
		p += strspn(p, " ");
		size_t n = run_path_len(p);
		if (n)
			warn(l, s, p, n);
	}
}

/* Walks a subtree: `field:` values in conditions, templates everywhere. */
static void scan(struct lint *l, const struct cfg_node *n, int conditions)
{
	if (!n)
		return;
	if (n->type == CFG_SCALAR) {
		scan_template(l, n);
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct cfg_node *v = n->items[i];
		if (conditions && n->type == CFG_MAP && v->type == CFG_SCALAR &&
		    strcmp(n->keys[i]->value, "field") == 0) {
			size_t len = run_path_len(v->value);
			if (len && v->value[len] == '\0')
				warn(l, v, v->value, len);
			continue;
		}
		scan(l, v, conditions);
	}
}

void lint_rule(const struct cfg_node *node, const char *rule, struct errlist *warnings)
{
	const struct cfg_node *match = cfg_get(node, "match");
	const char *glob = other_family_glob(match);
	char what[160];

	if (!glob)
		return;
	if (*glob)
		snprintf(what, sizeof(what), "match.event '%s'", glob);
	else
		snprintf(what, sizeof(what), "a rule without match.event");
	struct lint l = { .rule = rule, .glob = what, .out = warnings };
	scan(&l, match, 1);
	scan(&l, cfg_get(node, "actions"), 0);
}
