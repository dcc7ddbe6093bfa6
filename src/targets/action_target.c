/*
 * action_target: the rule side of the translated kinds.
 *
 *   - testomat: { target: main }
 *   - qasphere: { target: main, title: "Nightly {{run.title}}" }
 *
 * A rule names a configured target; the kind's templates (title,
 * description, ...) come from the target's settings unless the rule
 * overrides them.  They are compiled at load and rendered into the job's
 * params at ingest, so a job runs with the words it was queued with.
 * Secrets and URLs are not copied into params: they are read from the live
 * config when the job runs.
 */
#include "targets/action_target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/template.h"

static const struct config *live_config;

void action_set_config(const struct config *cfg)
{
	live_config = cfg;
}

/* The template settings of each kind, as named in target_cfg.c. */
static const char *const testomat_keys[] = { "title", "group_title", "description", "env", "label", NULL };
static const char *const qasphere_keys[] = { "title", "description", NULL };
static const char *const testcenter_keys[] = { "batch", "suite", NULL };

#define MAX_TMPL 8
#define MAX_LABELS 32

struct target_spec {
	const char *kind;
	char *target;
	const char *const *keys;
	struct tmpl *tmpl[MAX_TMPL];            /* one per key; NULL = not set */
	char *label_keys[MAX_LABELS];           /* testcenter labels */
	struct tmpl *label_tmpl[MAX_LABELS];
	size_t n_labels;
};

static void spec_free(void *p)
{
	struct target_spec *s = p;
	if (!s)
		return;
	free(s->target);
	for (size_t i = 0; i < MAX_TMPL; i++)
		tmpl_free(s->tmpl[i]);
	for (size_t i = 0; i < s->n_labels; i++) {
		free(s->label_keys[i]);
		tmpl_free(s->label_tmpl[i]);
	}
	free(s);
}

static int key_index(const struct target_spec *s, const char *key)
{
	for (int i = 0; s->keys[i]; i++)
		if (strcmp(s->keys[i], key) == 0)
			return i;
	return -1;
}

static int compile(struct tmpl **out, const char *src, const struct cfg_node *at,
		   const char *kind, const char *key, struct errlist *errs)
{
	char where[300];
	struct err e;

	tmpl_free(*out);
	*out = NULL;
	if (tmpl_compile(out, src, &e) < 0)
		return errlist_add(errs, "%s: %s: %s: %s", cfg_where(at, where, sizeof(where)),
				   kind, key, e.msg);
	return 0;
}

/* Templates from the target's settings: the defaults a rule may override. */
static int from_target(struct target_spec *s, const struct target_cfg *t,
		       const struct cfg_node *at, struct errlist *errs)
{
	int bad = 0;
	json_object *labels;

	for (int i = 0; s->keys[i]; i++) {
		json_object *v;
		if (json_object_object_get_ex(t->settings, s->keys[i], &v) &&
		    json_object_is_type(v, json_type_string))
			bad |= compile(&s->tmpl[i], json_object_get_string(v), at,
				       s->kind, s->keys[i], errs);
	}
	if (json_object_object_get_ex(t->settings, "labels", &labels) &&
	    json_object_is_type(labels, json_type_object)) {
		json_object_object_foreach(labels, k, v) {
			if (s->n_labels == MAX_LABELS)
				break;
			s->label_keys[s->n_labels] = strdup(k);
			bad |= compile(&s->label_tmpl[s->n_labels], json_object_get_string(v),
				       at, s->kind, "labels", errs);
			s->n_labels++;
		}
	}
	return bad;
}

static int parse_fields(struct target_spec *s, const struct cfg_node *node,
			struct errlist *errs)
{
	char where[300];
	int bad = 0;

	for (size_t i = 0; i < node->n; i++) {
		const char *k = node->keys[i]->value;
		const struct cfg_node *v = node->items[i];
		int idx = key_index(s, k);
		if (strcmp(k, "target") == 0)
			continue;
		if (idx < 0) {
			bad |= errlist_add(errs, "%s: %s: unknown key '%s'; expected target or one of the templates (%s)",
					   cfg_where(node->keys[i], where, sizeof(where)), s->kind, k,
					   s->keys == testomat_keys ? "title, group_title, description, env, label"
					   : s->keys == qasphere_keys ? "title, description" : "batch, suite");
		} else if (v->type != CFG_SCALAR) {
			bad |= errlist_add(errs, "%s: %s: %s must be a string",
					   cfg_where(v, where, sizeof(where)), s->kind, k);
		} else {
			bad |= compile(&s->tmpl[idx], v->value, v, s->kind, k, errs);
		}
	}
	return bad;
}

static int parse(const char *kind, const char *const *keys, void **out,
		 const struct cfg_node *node, struct errlist *errs)
{
	char where[300];
	const struct cfg_node *t = cfg_get(node, "target");
	const struct target_cfg *tc;
	struct target_spec *s;

	*out = NULL;
	if (node->type != CFG_MAP)
		return errlist_add(errs, "%s: %s: expected a map like { target: main }",
				   cfg_where(node, where, sizeof(where)), kind);
	if (!t || t->type != CFG_SCALAR || !*t->value)
		return errlist_add(errs, "%s: %s: target is required (a name under targets.%s)",
				   cfg_where(t ? t : node, where, sizeof(where)), kind, kind);
	tc = live_config ? config_target(live_config, kind, t->value) : NULL;
	if (!tc)
		return errlist_add(errs, "%s: %s: unknown target '%s'; define it under targets.%s.%s in the config",
				   cfg_where(t, where, sizeof(where)), kind, t->value, kind, t->value);
	if (!(s = calloc(1, sizeof(*s))) || !(s->target = strdup(t->value))) {
		free(s);
		return errlist_add(errs, "out of memory");
	}
	s->kind = kind;
	s->keys = keys;
	if (from_target(s, tc, t, errs) | parse_fields(s, node, errs)) {
		spec_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

static int render(json_object **out, const void *spec, json_object *event,
		  struct err *err)
{
	const struct target_spec *s = spec;
	json_object *o = json_object_new_object();

	*out = NULL;
	if (!o)
		return err_set(err, "out of memory");
	json_object_object_add(o, "target", json_object_new_string(s->target));
	for (int i = 0; s->keys[i]; i++) {
		if (!s->tmpl[i])
			continue;
		char *v = tmpl_render(s->tmpl[i], event, TMPL_RAW, 0);
		if (!v)
			goto oom;
		json_object_object_add(o, s->keys[i], json_object_new_string(v));
		free(v);
	}
	if (s->n_labels) {
		json_object *labels = json_object_new_object();
		json_object_object_add(o, "labels", labels);
		for (size_t i = 0; i < s->n_labels; i++) {
			char *v = tmpl_render(s->label_tmpl[i], event, TMPL_RAW, 0);
			if (!v)
				goto oom;
			json_object_object_add(labels, s->label_keys[i], json_object_new_string(v));
			free(v);
		}
	}
	*out = o;
	return 0;
oom:
	json_object_put(o);
	return err_set(err, "out of memory");
}

#define KIND(NAME, KEYS)                                                     \
	static int NAME##_parse(void **out, const struct cfg_node *node,    \
				struct errlist *errs)                        \
	{                                                                    \
		return parse(#NAME, KEYS, out, node, errs);                  \
	}                                                                    \
	const struct action_ops action_##NAME##_ops = {                      \
		.name = #NAME, .parse = NAME##_parse, .render = render,      \
		.free_spec = spec_free,                                      \
	};

KIND(testomat, testomat_keys)
KIND(qasphere, qasphere_keys)
KIND(testcenter, testcenter_keys)
