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

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/unconst.h"
#include "rules/template.h"
#include "store/store.h"
#include "targets/target.h"

static const struct config *live_config;

void action_set_config(const struct config *cfg)
{
	live_config = cfg;
}

#define MAX_TMPL   8
#define MAX_LABELS 32

struct target_spec {
	const char *kind;
	char *target;
	const char *keys[MAX_TMPL + 1]; /* the kind's templates, NULL-terminated */
	struct tmpl *tmpl[MAX_TMPL];    /* one per key; NULL = not set */
	char *label_keys[MAX_LABELS];   /* testcenter labels */
	struct tmpl *label_tmpl[MAX_LABELS];
	size_t n_labels;
};

void target_free_spec(void *p)
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

static int compile(struct tmpl **out, const char *src, const struct cfg_node *at, const char *kind,
		   const char *key, struct errlist *errs)
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
static int from_target(struct target_spec *s, const struct target_cfg *t, const struct cfg_node *at,
		       struct errlist *errs)
{
	int bad = 0;
	json_object *labels;

	for (int i = 0; s->keys[i]; i++) {
		json_object *v;
		if (json_object_object_get_ex(t->settings, s->keys[i], &v) &&
		    json_object_is_type(v, json_type_string))
			bad |= compile(&s->tmpl[i], json_object_get_string(v), at, s->kind,
				       s->keys[i], errs);
	}
	if (json_object_object_get_ex(t->settings, "labels", &labels) &&
	    json_object_is_type(labels, json_type_object)) {
		json_object_object_foreach(labels, k, v)
		{
			if (s->n_labels == MAX_LABELS)
				break;
			s->label_keys[s->n_labels] = strdup(k);
			bad |= compile(&s->label_tmpl[s->n_labels], json_object_get_string(v), at,
				       s->kind, "labels", errs);
			s->n_labels++;
		}
	}
	return bad;
}

/* "title, description" for messages. */
static const char *key_list(const struct target_spec *s, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; s->keys[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "", s->keys[i]);
	return buf;
}

static int parse_fields(struct target_spec *s, const struct cfg_node *node, struct errlist *errs)
{
	char where[300], list[256];
	int bad = 0;

	for (size_t i = 0; i < node->n; i++) {
		const char *k = node->keys[i]->value;
		const struct cfg_node *v = node->items[i];
		int idx = key_index(s, k);
		if (strcmp(k, "target") == 0)
			continue;
		if (idx < 0) {
			bad |= errlist_add(
				errs,
				"%s: %s: unknown key '%s'; expected target or one of the templates (%s)",
				cfg_where(node->keys[i], where, sizeof(where)), s->kind, k,
				key_list(s, list, sizeof(list)));
		} else if (v->type != CFG_SCALAR) {
			bad |= errlist_add(errs, "%s: %s: %s must be a string",
					   cfg_where(v, where, sizeof(where)), s->kind, k);
		} else {
			bad |= compile(&s->tmpl[idx], v->value, v, s->kind, k, errs);
		}
	}
	return bad;
}

/* The kind's templates: its AK_TEMPLATE settings. */
static void template_keys(struct target_spec *s, const struct action_ops *kind)
{
	size_t n = 0;

	for (const struct action_key *k = kind->settings; k && k->name; k++)
		if (k->type == AK_TEMPLATE && n < MAX_TMPL)
			s->keys[n++] = k->name;
	s->keys[n] = NULL;
}

int target_parse(const struct action_ops *ops, void **out, const struct cfg_node *node,
		 struct errlist *errs)
{
	const char *kind = ops->name;
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
		return errlist_add(
			errs,
			"%s: %s: unknown target '%s'; define it under targets.%s.%s in the config",
			cfg_where(t, where, sizeof(where)), kind, t->value, kind, t->value);
	if (!(s = calloc(1, sizeof(*s))) || !(s->target = strdup(t->value))) {
		free(s);
		return errlist_add(errs, "out of memory");
	}
	s->kind = kind;
	template_keys(s, ops);
	if (from_target(s, tc, t, errs) | parse_fields(s, node, errs)) {
		target_free_spec(s);
		return -1;
	}
	*out = s;
	return 0;
}

int target_render(json_object **out, const void *spec, json_object *event, struct err *err)
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

/* ---- the running side ------------------------------------------------------ */

/* Per thread: the kind and an HTTP handle. */
struct target_worker {
	const struct action_ops *kind;
	struct outbound *http;
};

int target_open(void **out, const struct action_ops *self, struct action_host *host, struct err *err)
{
	struct target_worker *w = calloc(1, sizeof(*w));

	(void)host;
	*out = NULL;
	if (!w)
		return err_set(err, "out of memory");
	w->kind = self;
	if (outbound_new(&w->http, err) < 0) {
		free(w);
		return -1;
	}
	*out = w;
	return 0;
}

void target_close(void *state)
{
	struct target_worker *w = state;
	if (!w)
		return;
	outbound_free(w->http);
	free(w);
}

struct map_ctx {
	struct action_host *host;
	struct map_key key;
};

static int save_map(struct target_attempt *a, struct err *err)
{
	struct map_ctx *mc = a->save_ctx;
	struct map_rec rec = {
		.remote_id = a->map.remote_id,
		.state = a->map.state,
		.data = RB_UNCONST(
			json_object_to_json_string_ext(a->map.data, JSON_C_TO_STRING_PLAIN)),
	};
	return mc->host->map_put(mc->host, &mc->key, &rec, err);
}

static int read_results(struct target_attempt *a, long long after_case, size_t limit,
			int (*fn)(void *ctx, const struct result_row *r), void *fn_ctx,
			size_t *n_out, struct err *err)
{
	struct map_ctx *mc = a->results_ctx;
	return mc->host->results_each(mc->host, a->project, a->run_id, after_case, limit, fn,
				      fn_ctx, n_out, err);
}

static int load_map(struct map_ctx *mc, struct target_attempt *a, struct err *err)
{
	struct map_rec rec;

	if (mc->host->map_get(mc->host, &mc->key, &rec, err) < 0)
		return -1;
	a->map.remote_id = rec.remote_id;
	a->map.state = rec.state;
	a->map.data = rec.data ? json_tokener_parse(rec.data) : NULL;
	free(rec.data);
	if (!a->map.data || !json_object_is_type(a->map.data, json_type_object)) {
		json_object_put(a->map.data);
		a->map.data = json_object_new_object();
	}
	return 0;
}

static void result(struct work_result *r, enum work_outcome o, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void result(struct work_result *r, enum work_outcome o, const char *fmt, ...)
{
	va_list ap;

	r->outcome = o;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

static void run_one(struct target_worker *w, struct action_host *host, struct action_job *j)
{
	const char *kind = w->kind->name, *name = param_str(j->params, "target");
	struct target_attempt a = { 0 };
	struct target_outcome out = { .outcome = WORK_FAIL, .retry_after_ms = -1 };
	struct map_ctx mc = { .host = host };
	struct err err;

	a.target = name ? host->target(host, kind, name) : NULL;
	if (!a.target) {
		result(j->res, WORK_PERMANENT, "unknown target '%s' (not in the running config)",
		       name ? name : "");
		return;
	}
	mc.key = (struct map_key){
		.kind = kind, .target = name, .project = j->project, .run_id = j->run_id
	};
	a.params = j->params;
	a.event = json_tokener_parse(j->event_json);
	a.delivery_id = j->delivery_id;
	a.job_id = j->id;
	a.attempt = j->attempt;
	a.http = w->http;
	a.save = save_map;
	a.save_ctx = &mc;
	a.project = j->project;
	a.run_id = j->run_id;
	a.results = read_results;
	a.results_ctx = &mc;
	if (load_map(&mc, &a, &err) < 0) {
		result(j->res, WORK_FAIL, "%s", err.msg);
	} else {
		w->kind->attempt(&a, &out);
		j->res->outcome = out.outcome;
		j->res->retry_after_ms = out.retry_after_ms;
		snprintf(j->res->detail, sizeof(j->res->detail), "%s", out.detail);
	}
	json_object_put(a.event);
	json_object_put(a.map.data);
	free(a.map.remote_id);
	free(a.map.state);
}

void target_run(void *state, struct action_host *host, struct action_job *jobs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_one(state, host, &jobs[i]);
}
