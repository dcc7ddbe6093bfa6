/*
 * cond: parsing and evaluating rule conditions.
 *
 * The whole `match:` map becomes one `all` group whose children are the
 * event and project globs and the all/any/not groups, so evaluation is a
 * single recursive walk.  Recursion depth is bounded by the YAML nesting
 * limit (CFG_MAX_DEPTH).
 *
 * Values keep their YAML typing: a plain 5 is a number, a quoted "5" a
 * string, and the two never compare equal.  Numbers compare by value across
 * int and double, exactly (no rounding of large ints through double).
 */
#include "rules/cond.h"

#include <fnmatch.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jpath.h"

enum cond_kind { C_ALL, C_ANY, C_NOT, C_GLOB, C_LEAF };

enum cond_op { OP_EQ, OP_NE, OP_IN, OP_GT, OP_GE, OP_LT, OP_LE, OP_EXISTS, OP_MATCHES };

static const char *const op_names[] = { "eq", "ne", "in",     "gt",      "ge",
					"lt", "le", "exists", "matches", NULL };

struct cond {
	enum cond_kind kind;
	struct cond **kids; /* C_ALL, C_ANY, C_NOT (one kid) */
	size_t n;
	const char *key; /* C_GLOB: "type" or "project" (static) */
	char **globs;
	size_t n_globs;
	struct jpath *field; /* C_LEAF */
	enum cond_op op;
	json_object *value; /* typed value (NULL: null); OP_IN: an array */
	int want;           /* OP_EXISTS */
	regex_t re;         /* OP_MATCHES */
	int has_re;
};

void cond_free(struct cond *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		cond_free(c->kids[i]);
	free(c->kids);
	for (size_t i = 0; i < c->n_globs; i++)
		free(c->globs[i]);
	free(c->globs);
	jpath_free(c->field);
	json_object_put(c->value);
	if (c->has_re)
		regfree(&c->re);
	free(c);
}

/* ---- messages ------------------------------------------------------------ */

struct ctx {
	const char *rule;
	struct errlist *errs;
};

/* Appends "file:line:col: rule 'r': msg"; returns -1. */
static int fail(struct ctx *cx, const struct cfg_node *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct ctx *cx, const struct cfg_node *at, const char *fmt, ...)
{
	char where[300], msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return errlist_add(cx->errs, "%s: rule '%s': %s", cfg_where(at, where, sizeof(where)),
			   cx->rule ? cx->rule : "?", msg);
}

static void join(char *buf, size_t len, const char *const *names)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; names[i] && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
}

static int in_list(const char *s, const char *const *names)
{
	for (size_t i = 0; names[i]; i++)
		if (strcmp(s, names[i]) == 0)
			return 1;
	return 0;
}

int cond_check_keys(const struct cfg_node *map, const char *const *allowed, const char *rule,
		    struct errlist *errs)
{
	char where[300], expected[256], in_rule[200] = "";
	int rc = 0;

	if (rule)
		snprintf(in_rule, sizeof(in_rule), " in rule '%s'", rule);
	join(expected, sizeof(expected), allowed);
	for (size_t i = 0; i < map->n; i++) {
		const struct cfg_node *k = map->keys[i];
		if (!in_list(k->value, allowed)) {
			rc = errlist_add(errs, "%s: unknown key '%s'%s; expected one of %s",
					 cfg_where(k, where, sizeof(where)), k->value, in_rule,
					 expected);
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(map->keys[j]->value, k->value) == 0) {
				rc = errlist_add(errs, "%s: duplicate key '%s'%s (first at line %d)",
						 cfg_where(k, where, sizeof(where)), k->value,
						 in_rule, map->keys[j]->line);
				break;
			}
	}
	return rc;
}

/* ---- parsing ------------------------------------------------------------- */

static struct cond *cond_new(enum cond_kind kind)
{
	struct cond *c = calloc(1, sizeof(*c));
	if (c)
		c->kind = kind;
	return c;
}

static int add_kid(struct cond *g, struct cond *kid)
{
	struct cond **k = realloc(g->kids, (g->n + 1) * sizeof(*k));
	if (!k)
		return -1;
	g->kids = k;
	g->kids[g->n++] = kid;
	return 0;
}

static int parse_cond(struct ctx *cx, const struct cfg_node *node, struct cond **out);

/* A scalar as a typed JSON value; *out NULL for null. */
static int typed_value(struct ctx *cx, const struct cfg_node *v, const char *op, json_object **out)
{
	long long i;
	double d;
	int b;

	*out = NULL;
	if (v->type != CFG_SCALAR)
		return fail(cx, v, "%s needs a single value, not %s", op, cfg_type_name(v));
	if (cfg_scalar_is_null(v) == 0)
		return 0;
	if (cfg_scalar_bool(v, &b) == 0)
		*out = json_object_new_boolean(b);
	else if (cfg_scalar_int(v, &i) == 0)
		*out = json_object_new_int64(i);
	else if (cfg_scalar_double(v, &d) == 0 && isfinite(d))
		*out = json_object_new_double(d);
	else
		*out = json_object_new_string(v->value);
	if (!*out)
		return fail(cx, v, "out of memory");
	return 0;
}

static int parse_in(struct ctx *cx, struct cond *c, const struct cfg_node *v)
{
	int rc = 0;

	if (v->type != CFG_SEQ || v->n == 0)
		return fail(cx, v, "in needs a non-empty list of values, not %s", cfg_type_name(v));
	if (!(c->value = json_object_new_array()))
		return fail(cx, v, "out of memory");
	for (size_t i = 0; i < v->n; i++) {
		json_object *item;
		if (typed_value(cx, v->items[i], "each item of in", &item) < 0)
			rc = -1;
		else if (json_object_array_add(c->value, item) < 0)
			rc = fail(cx, v, "out of memory");
	}
	return rc;
}

static int parse_order(struct ctx *cx, struct cond *c, const struct cfg_node *v)
{
	if (typed_value(cx, v, op_names[c->op], &c->value) < 0)
		return -1;
	if (!json_object_is_type(c->value, json_type_int) &&
	    !json_object_is_type(c->value, json_type_double) &&
	    !json_object_is_type(c->value, json_type_string))
		return fail(cx, v, "%s needs a number or a string", op_names[c->op]);
	return 0;
}

/* ---- regular expressions -------------------------------------------------- */

/* Past a bracket expression starting at re[i] == '['.  Inside one, '\\' is
 * an ordinary character, a ']' first (or after '^') is literal, and
 * "[:name:]", "[.x.]", "[=x=]" are single items (their ']' closes nothing). */
static size_t skip_bracket(const char *re, size_t i)
{
	i++;
	if (re[i] == '^')
		i++;
	if (re[i] == ']')
		i++;
	while (re[i] && re[i] != ']') {
		char d = re[i + 1];
		if (re[i] == '[' && (d == ':' || d == '.' || d == '=')) {
			const char *end = strchr(re + i + 2, d);
			while (end && end[1] != ']')
				end = strchr(end + 1, d);
			if (!end)
				return strlen(re); /* regcomp refuses it */
			i = (size_t)(end - re) + 2;
			continue;
		}
		i++;
	}
	return re[i] ? i + 1 : i;
}

/*
 * The offset of the first backreference (\1..\9) in an extended regular
 * expression as glibc reads it, or -1.  Outside brackets '\\' escapes the
 * next character, so "\\\\1" is a backslash and a 1.
 */
static long backref_at(const char *re)
{
	size_t i = 0;

	while (re[i]) {
		if (re[i] == '[') {
			i = skip_bracket(re, i);
		} else if (re[i] == '\\') {
			if (re[i + 1] >= '1' && re[i + 1] <= '9')
				return (long)i;
			i += re[i + 1] ? 2 : 1;
		} else {
			i++;
		}
	}
	return -1;
}

static int parse_regex(struct ctx *cx, struct cond *c, const struct cfg_node *v)
{
	long at;
	char msg[256];
	int rc;

	if (v->type != CFG_SCALAR || cfg_scalar_is_null(v) == 0)
		return fail(cx, v, "matches needs a regular expression, not %s", cfg_type_name(v));
	if (strlen(v->value) > COND_REGEX_MAX)
		return fail(cx, v, "regular expression longer than %d bytes", COND_REGEX_MAX);
	if ((at = backref_at(v->value)) >= 0)
		return fail(cx, v,
			    "regular expression '%s': the backreference '\\%c' "
			    "at offset %ld is not supported (not regular: matching "
			    "can take exponential time)",
			    v->value, v->value[at + 1], at);
	rc = regcomp(&c->re, v->value, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		/* a failed regcomp leaves nothing to regfree */
		regerror(rc, &c->re, msg, sizeof(msg));
		return fail(cx, v, "invalid regular expression '%s': %s", v->value, msg);
	}
	c->has_re = 1;
	return 0;
}

static int parse_op(struct ctx *cx, struct cond *c, const struct cfg_node *v)
{
	switch (c->op) {
	case OP_EQ:
	case OP_NE: return typed_value(cx, v, op_names[c->op], &c->value);
	case OP_IN: return parse_in(cx, c, v);
	case OP_EXISTS:
		if (cfg_scalar_bool(v, &c->want) < 0)
			return fail(cx, v, "exists needs true or false");
		return 0;
	case OP_MATCHES: return parse_regex(cx, c, v);
	default: return parse_order(cx, c, v);
	}
}

/* Finds the one operator key of a condition map. */
static int find_op(struct ctx *cx, const struct cfg_node *node, struct cond *c,
		   const struct cfg_node **value)
{
	char ops[128];
	int found = 0;

	*value = NULL;
	for (size_t i = 0; i < node->n; i++) {
		for (int op = 0; op_names[op]; op++) {
			if (strcmp(node->keys[i]->value, op_names[op]) != 0)
				continue;
			if (found++)
				return fail(cx, node->keys[i],
					    "a condition takes one operator; found '%s' and '%s'",
					    op_names[c->op], op_names[op]);
			c->op = (enum cond_op)op;
			*value = node->items[i];
		}
	}
	if (found)
		return 0;
	join(ops, sizeof(ops), op_names);
	return fail(cx, node, "a condition needs one operator: %s", ops);
}

static const char *const leaf_keys[] = { "field", "eq", "ne",     "in",      "gt", "ge",
					 "lt",    "le", "exists", "matches", NULL };

static int parse_leaf(struct ctx *cx, const struct cfg_node *node, struct cond **out)
{
	const struct cfg_node *field = cfg_get(node, "field"), *v;
	struct cond *c = cond_new(C_LEAF);
	struct err e;
	int rc = -1;

	*out = NULL;
	if (!c) {
		fail(cx, node, "out of memory");
		goto done;
	}
	rc = cond_check_keys(node, leaf_keys, cx->rule, cx->errs);
	if (find_op(cx, node, c, &v) < 0)
		rc = -1;
	else if (parse_op(cx, c, v) < 0)
		rc = -1;
	if (!field) {
		rc = fail(cx, node, "a condition needs 'field: PATH'");
	} else if (field->type != CFG_SCALAR || cfg_scalar_is_null(field) == 0) {
		rc = fail(cx, field, "field needs a path like run.counts.failed");
	} else if (jpath_compile(&c->field, field->value, &e) < 0) {
		rc = fail(cx, field, "field: %s", e.msg);
	}
done:
	if (rc < 0)
		cond_free(c);
	else
		*out = c;
	return rc;
}

/* all: / any: a non-empty list of conditions or groups. */
static int parse_list(struct ctx *cx, const struct cfg_node *node, enum cond_kind kind,
		      struct cond **out)
{
	const char *name = kind == C_ALL ? "all" : "any";
	struct cond *g = cond_new(kind);
	int rc = 0;

	*out = NULL;
	if (!g)
		return fail(cx, node, "out of memory");
	if (node->type != CFG_SEQ || node->n == 0)
		rc = fail(cx, node, "%s needs a non-empty list of conditions, not %s", name,
			  cfg_type_name(node));
	for (size_t i = 0; node->type == CFG_SEQ && i < node->n; i++) {
		struct cond *kid;
		if (parse_cond(cx, node->items[i], &kid) < 0)
			rc = -1;
		else if (add_kid(g, kid) < 0)
			rc = fail(cx, node, "out of memory");
	}
	if (rc < 0) {
		cond_free(g);
		return -1;
	}
	*out = g;
	return 0;
}

/* not: one condition or group. */
static int parse_not(struct ctx *cx, const struct cfg_node *node, struct cond **out)
{
	struct cond *g = cond_new(C_NOT), *kid;

	*out = NULL;
	if (!g)
		return fail(cx, node, "out of memory");
	if (parse_cond(cx, node, &kid) < 0) {
		cond_free(g);
		return -1;
	}
	if (add_kid(g, kid) < 0) {
		cond_free(kid);
		cond_free(g);
		return fail(cx, node, "out of memory");
	}
	*out = g;
	return 0;
}

/* A condition map, or a group map ({all: ...}, {any: ...}, {not: ...}). */
static int parse_cond(struct ctx *cx, const struct cfg_node *node, struct cond **out)
{
	static const char *const groups[] = { "all", "any", "not", NULL };

	*out = NULL;
	if (node->type != CFG_MAP)
		return fail(cx, node,
			    "a condition must be a map like {field: PATH, eq: VALUE}, not %s",
			    cfg_type_name(node));
	for (size_t i = 0; i < node->n; i++) {
		const char *k = node->keys[i]->value;
		if (!in_list(k, groups))
			continue;
		if (node->n != 1)
			return fail(cx, node->keys[i], "'%s' must be the only key of its map", k);
		if (strcmp(k, "not") == 0)
			return parse_not(cx, node->items[0], out);
		return parse_list(cx, node->items[0], strcmp(k, "all") == 0 ? C_ALL : C_ANY, out);
	}
	return parse_leaf(cx, node, out);
}

/* event: / project: a glob or a non-empty list of globs. */
static int parse_globs(struct ctx *cx, const struct cfg_node *node, const char *name,
		       const char *key, struct cond **out)
{
	const struct cfg_node *const *items = &node;
	size_t n = 1;
	struct cond *g = cond_new(C_GLOB);
	int rc = 0;

	*out = NULL;
	if (!g)
		return fail(cx, node, "out of memory");
	g->key = key;
	if (node->type == CFG_SEQ) {
		items = (const struct cfg_node *const *)node->items;
		n = node->n;
	}
	if (n == 0 || node->type == CFG_MAP)
		rc = fail(cx, node, "%s needs a pattern or a non-empty list of patterns, not %s",
			  name, cfg_type_name(node));
	if (rc == 0 && !(g->globs = calloc(n, sizeof(*g->globs))))
		rc = fail(cx, node, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (items[i]->type != CFG_SCALAR || cfg_scalar_is_null(items[i]) == 0)
			rc = fail(cx, items[i], "%s patterns must be strings, not %s", name,
				  cfg_type_name(items[i]));
		else if (!(g->globs[g->n_globs++] = strdup(items[i]->value)))
			rc = fail(cx, items[i], "out of memory");
	}
	if (rc < 0) {
		cond_free(g);
		return -1;
	}
	*out = g;
	return 0;
}

static int parse_match_key(struct ctx *cx, const char *k, const struct cfg_node *v, struct cond **out)
{
	if (strcmp(k, "event") == 0)
		return parse_globs(cx, v, "event", "type", out);
	if (strcmp(k, "project") == 0)
		return parse_globs(cx, v, "project", "project", out);
	if (strcmp(k, "all") == 0)
		return parse_list(cx, v, C_ALL, out);
	if (strcmp(k, "any") == 0)
		return parse_list(cx, v, C_ANY, out);
	return parse_not(cx, v, out);
}

int cond_parse_match(struct cond **out, const struct cfg_node *node, const char *rule,
		     struct errlist *errs)
{
	static const char *const keys[] = { "event", "project", "all", "any", "not", NULL };
	struct ctx cx = { .rule = rule, .errs = errs };
	struct cond *top = NULL;
	int rc = -1;

	*out = NULL;
	if (!node || cfg_scalar_is_null(node) == 0)
		return 0;
	if (node->type != CFG_MAP) {
		fail(&cx, node, "match must be a map, not %s", cfg_type_name(node));
		goto done;
	}
	if (!(top = cond_new(C_ALL))) {
		fail(&cx, node, "out of memory");
		goto done;
	}
	rc = cond_check_keys(node, keys, rule, errs);
	for (size_t i = 0; i < node->n; i++) {
		struct cond *kid;
		if (!in_list(node->keys[i]->value, keys))
			continue;
		if (parse_match_key(&cx, node->keys[i]->value, node->items[i], &kid) < 0)
			rc = -1;
		else if (add_kid(top, kid) < 0)
			rc = fail(&cx, node, "out of memory");
	}
done:
	if (rc < 0)
		cond_free(top);
	else
		*out = top;
	return rc;
}

/* ---- evaluation ---------------------------------------------------------- */

#define UNORDERED 2

struct num {
	int is_int;
	long long i;
	double d;
};

static int num_of(json_object *o, struct num *n)
{
	if (json_object_is_type(o, json_type_double)) {
		n->is_int = 0;
		n->d = json_object_get_double(o);
		return 0;
	}
	if (!json_object_is_type(o, json_type_int))
		return -1;
	n->is_int = 1;
	n->i = json_object_get_int64(o);
	if (n->i == INT64_MAX && json_object_get_uint64(o) > (uint64_t)INT64_MAX) {
		/* past int64: compare by value, as a double */
		n->is_int = 0;
		n->d = (double)json_object_get_uint64(o);
	}
	return 0;
}

static int sign(long long a, long long b)
{
	return a < b ? -1 : a > b;
}

/* Exact: the double is split into its integer and fractional parts. */
static int cmp_int_double(long long i, double d)
{
	long long t;

	if (isnan(d))
		return UNORDERED;
	if (d >= 9223372036854775808.0)
		return -1;
	if (d < -9223372036854775808.0)
		return 1;
	t = (long long)d;
	if (i != t)
		return sign(i, t);
	d -= (double)t;
	return d > 0 ? -1 : d < 0;
}

static int num_cmp(const struct num *a, const struct num *b)
{
	if (a->is_int && b->is_int)
		return sign(a->i, b->i);
	if (a->is_int)
		return cmp_int_double(a->i, b->d);
	if (b->is_int) {
		int r = cmp_int_double(b->i, a->d);
		return r == UNORDERED ? r : -r;
	}
	if (isnan(a->d) || isnan(b->d))
		return UNORDERED;
	return a->d < b->d ? -1 : a->d > b->d;
}

static int str_cmp(json_object *a, json_object *b)
{
	size_t la = (size_t)json_object_get_string_len(a);
	size_t lb = (size_t)json_object_get_string_len(b);
	int r = memcmp(json_object_get_string(a), json_object_get_string(b), la < lb ? la : lb);
	if (r != 0)
		return r < 0 ? -1 : 1;
	return sign((long long)la, (long long)lb);
}

/* Orders got against want (a number or a string): 0 and *r, or -1 when
 * they are not comparable (missing, or of different kinds). */
static int value_cmp(json_object *got, json_object *want, int *r)
{
	struct num a = { 0 }, b = { 0 };

	if (json_object_is_type(want, json_type_string)) {
		if (!json_object_is_type(got, json_type_string))
			return -1;
		*r = str_cmp(got, want);
		return 0;
	}
	if (num_of(got, &a) < 0 || num_of(want, &b) < 0)
		return -1;
	*r = num_cmp(&a, &b);
	return *r == UNORDERED ? -1 : 0;
}

static int value_eq(json_object *got, json_object *want)
{
	int r;

	if (!want)
		return got == NULL;
	if (json_object_is_type(want, json_type_boolean))
		return json_object_is_type(got, json_type_boolean) &&
		       !json_object_get_boolean(got) == !json_object_get_boolean(want);
	return value_cmp(got, want, &r) == 0 && r == 0;
}

static int in_eval(json_object *got, json_object *list)
{
	size_t n = json_object_array_length(list);

	for (size_t i = 0; i < n; i++)
		if (value_eq(got, json_object_array_get_idx(list, i)))
			return 1;
	return 0;
}

/* The first COND_MATCH_MAX bytes of s (n long), cut back so that they do
 * not end inside a UTF-8 character, as a malloc'd string (NULL: OOM). */
static char *match_prefix(const char *s)
{
	size_t n = COND_MATCH_MAX;
	char *p;

	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	if (!(p = malloc(n + 1)))
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Strings as they are, numbers as their decimal text; others never match.
 * A value longer than COND_MATCH_MAX is matched by its prefix (cond.h). */
static int regex_eval(const regex_t *re, json_object *got)
{
	const char *s;
	char *cut = NULL;
	int rc;

	if (json_object_is_type(got, json_type_string))
		s = json_object_get_string(got);
	else if (json_object_is_type(got, json_type_int) ||
		 json_object_is_type(got, json_type_double))
		s = json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN);
	else
		return 0;
	/* strnlen: a NUL ends the text for regexec anyway */
	if (strnlen(s, COND_MATCH_MAX + 1) > COND_MATCH_MAX && !(s = cut = match_prefix(s)))
		return 0;
	rc = regexec(re, s, 0, NULL, 0) == 0;
	free(cut);
	return rc;
}

static int leaf_eval(const struct cond *c, json_object *ev)
{
	json_object *got;
	int r;

	if (c->op == OP_EXISTS)
		return jpath_exists(c->field, ev) == c->want;
	got = jpath_get(c->field, ev);
	switch (c->op) {
	case OP_EQ: return value_eq(got, c->value);
	case OP_NE: return !value_eq(got, c->value);
	case OP_IN: return in_eval(got, c->value);
	case OP_MATCHES: return regex_eval(&c->re, got);
	default: break;
	}
	if (value_cmp(got, c->value, &r) < 0)
		return 0;
	switch (c->op) {
	case OP_GT: return r > 0;
	case OP_GE: return r >= 0;
	case OP_LT: return r < 0;
	default: return r <= 0;
	}
}

/* An event whose type or project is missing or not a string never matches. */
static int glob_eval(const struct cond *c, json_object *ev)
{
	json_object *v;
	const char *s;

	if (!json_object_object_get_ex(ev, c->key, &v) || !json_object_is_type(v, json_type_string))
		return 0;
	s = json_object_get_string(v);
	for (size_t i = 0; i < c->n_globs; i++)
		if (fnmatch(c->globs[i], s, 0) == 0)
			return 1;
	return 0;
}

int cond_eval(const struct cond *c, json_object *event)
{
	if (!c)
		return 1;
	switch (c->kind) {
	case C_ALL:
		for (size_t i = 0; i < c->n; i++)
			if (!cond_eval(c->kids[i], event))
				return 0;
		return 1;
	case C_ANY:
		for (size_t i = 0; i < c->n; i++)
			if (cond_eval(c->kids[i], event))
				return 1;
		return 0;
	case C_NOT: return !cond_eval(c->kids[0], event);
	case C_GLOB: return glob_eval(c, event);
	default: return leaf_eval(c, event);
	}
}
