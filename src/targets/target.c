/* target: helpers the translated kinds share. */
#include "targets/target.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jpath.h"

void outcome_set(struct target_outcome *o, enum work_outcome w, const char *fmt, ...)
{
	va_list ap;
	o->outcome = w;
	va_start(ap, fmt);
	vsnprintf(o->detail, sizeof(o->detail), fmt, ap);
	va_end(ap);
}

int outcome_fail(struct target_outcome *o, enum work_outcome w, const char *what)
{
	outcome_set(o, w, "%s", what);
	return -1;
}

int target_call(struct target_attempt *a, const struct outbound_req *req,
		struct outbound_resp *resp, struct target_outcome *out, const char *what)
{
	char desc[600];
	struct outbound_req r = *req;
	const struct target_cfg *t = a->target;

	if (!r.timeout_ms)
		r.timeout_ms = target_int(t, "timeout_s", 20) * 1000;
	if (!r.connect_timeout_ms)
		r.connect_timeout_ms = target_int(t, "connect_timeout_s", 5) * 1000;
	r.insecure = !target_bool(t, "verify_tls", 1);
	outbound_send(a->http, &r, resp);
	enum outbound_verdict v = outbound_classify(resp);
	if (v == VERDICT_OK)
		return 0;
	outbound_describe(resp, desc, sizeof(desc));
	out->retry_after_ms = resp->retry_after_ms;
	switch (v) {
	case VERDICT_RETRY:
		outcome_set(out, WORK_FAIL, "%s %s: %s", what, req->method, desc);
		break;
	case VERDICT_RETRY_FEW:
		outcome_set(out, a->attempt >= 3 ? WORK_PERMANENT : WORK_FAIL, "%s %s: %s", what,
			    req->method, desc);
		break;
	default: outcome_set(out, WORK_PERMANENT, "%s %s: %s", what, req->method, desc);
	}
	outbound_resp_free(resp);
	return -1;
}

const char *target_str(const struct target_cfg *t, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(t->settings, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

long long target_int(const struct target_cfg *t, const char *key, long long def)
{
	json_object *v;
	if (!json_object_object_get_ex(t->settings, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

int target_bool(const struct target_cfg *t, const char *key, int def)
{
	json_object *v;
	if (!json_object_object_get_ex(t->settings, key, &v) ||
	    !json_object_is_type(v, json_type_boolean))
		return def;
	return json_object_get_boolean(v);
}

static json_object *lookup(json_object *ev, const char *path)
{
	struct jpath *p;
	json_object *v;

	if (jpath_compile(&p, path, NULL) < 0)
		return NULL;
	v = jpath_get(p, ev);
	jpath_free(p);
	return v;
}

const char *event_str(json_object *ev, const char *path)
{
	json_object *v = lookup(ev, path);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

long long event_int(json_object *ev, const char *path, long long def)
{
	json_object *v = lookup(ev, path);
	if (!v ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return def;
	return json_object_get_int64(v);
}

int event_has(json_object *ev, const char *path)
{
	return lookup(ev, path) != NULL;
}

const char *param_str(json_object *params, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(params, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int target_map_set(struct target_attempt *a, struct target_outcome *out, char **field, const char *v)
{
	char *c = v ? strdup(v) : NULL;

	(void)a;
	if (v && !c) {
		outcome_set(out, WORK_FAIL, "out of memory");
		return -1;
	}
	free(*field);
	*field = c;
	return 0;
}

int target_map_commit(struct target_attempt *a, struct target_outcome *out)
{
	struct err e = { 0 };

	if (a->save && a->save(a, &e) < 0) {
		outcome_set(out, WORK_FAIL, "mapping not saved: %s", e.msg);
		return -1;
	}
	return 0;
}

int target_map_state(struct target_attempt *a, struct target_outcome *out, const char *state)
{
	if (state && target_map_set(a, out, &a->map.state, state) < 0)
		return -1;
	return target_map_commit(a, out);
}
