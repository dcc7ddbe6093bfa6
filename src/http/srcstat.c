/*
 * srcstat: see srcstat.h.  A fixed array per source; every field a request
 * thread writes is an atomic long long, and everything else belongs to the
 * main loop.
 */
#include "http/srcstat.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "core/log.h"

/* The refusals a source's endpoint can answer (see server.c). */
const int srcstat_statuses[SRCSTAT_NSTATUS] = { 400, 401, 405, 408, 413, 415, 429, 503 };

#define WARN_EVERY_MS 3600000LL

struct entry {
	const struct source_cfg *src;
	_Atomic long long accepted_ms;
	_Atomic long long refusing_since_ms; /* 0: accepted since the last refusal */
	_Atomic long long refused_ms[SRCSTAT_NSTATUS];
	struct srcstat_view saved; /* main loop: what was last saved */
	long long warned_ms;       /* main loop */
};

struct srcstat {
	struct entry *v;
	size_t n;
};

int srcstat_new(struct srcstat **out, const struct config *cfg, struct err *err)
{
	struct srcstat *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s || !(s->v = calloc(cfg->n_sources ? cfg->n_sources : 1, sizeof(*s->v)))) {
		free(s);
		return err_set(err, "out of memory");
	}
	s->n = cfg->n_sources;
	for (size_t i = 0; i < s->n; i++)
		s->v[i].src = &cfg->sources[i];
	*out = s;
	return 0;
}

void srcstat_free(struct srcstat *s)
{
	if (!s)
		return;
	free(s->v);
	free(s);
}

static int status_index(int status)
{
	for (int k = 0; k < SRCSTAT_NSTATUS; k++)
		if (srcstat_statuses[k] == status)
			return k;
	return -1;
}

static long long ll_member(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)
		       ? json_object_get_int64(v)
		       : 0;
}

int srcstat_parse(struct srcstat_view *out, const char *json)
{
	json_object *o = json ? json_tokener_parse(json) : NULL, *refused;

	memset(out, 0, sizeof(*out));
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -1;
	}
	out->accepted_ms = ll_member(o, "accepted_ms");
	out->refusing_since_ms = ll_member(o, "refusing_since_ms");
	if (json_object_object_get_ex(o, "refused_ms", &refused))
		for (int k = 0; k < SRCSTAT_NSTATUS; k++) {
			char key[8];
			snprintf(key, sizeof(key), "%d", srcstat_statuses[k]);
			out->refused_ms[k] = ll_member(refused, key);
		}
	json_object_put(o);
	return 0;
}

void srcstat_load(struct srcstat *s, size_t i, const char *json)
{
	struct entry *e = &s->v[i];
	struct srcstat_view v;

	if (srcstat_parse(&v, json) < 0)
		return;
	atomic_store(&e->accepted_ms, v.accepted_ms);
	atomic_store(&e->refusing_since_ms, v.refusing_since_ms);
	for (int k = 0; k < SRCSTAT_NSTATUS; k++)
		atomic_store(&e->refused_ms[k], v.refused_ms[k]);
	e->saved = v;
}

void srcstat_note(struct srcstat *s, size_t i, int status, long long now_ms)
{
	struct entry *e;
	int k;

	if (!s || i >= s->n)
		return;
	e = &s->v[i];
	if (status == 202) {
		atomic_store_explicit(&e->accepted_ms, now_ms, memory_order_relaxed);
		if (atomic_load_explicit(&e->refusing_since_ms, memory_order_relaxed))
			atomic_store(&e->refusing_since_ms, 0);
		return;
	}
	if ((k = status_index(status)) < 0)
		return;
	atomic_store_explicit(&e->refused_ms[k], now_ms, memory_order_relaxed);
	long long zero = 0;
	atomic_compare_exchange_strong(&e->refusing_since_ms, &zero, now_ms);
}

static void current(struct entry *e, struct srcstat_view *v)
{
	v->accepted_ms = atomic_load(&e->accepted_ms);
	v->refusing_since_ms = atomic_load(&e->refusing_since_ms);
	for (int k = 0; k < SRCSTAT_NSTATUS; k++)
		v->refused_ms[k] = atomic_load(&e->refused_ms[k]);
}

char *srcstat_save_due(struct srcstat *s, size_t i)
{
	struct srcstat_view v;
	char *out, *p;
	size_t cap = 128 + SRCSTAT_NSTATUS * 32;

	current(&s->v[i], &v);
	if (memcmp(&v, &s->v[i].saved, sizeof(v)) == 0 || !(out = malloc(cap)))
		return NULL;
	p = out + snprintf(out, cap,
			   "{\"accepted_ms\":%lld,\"refusing_since_ms\":%lld,"
			   "\"refused_ms\":{",
			   v.accepted_ms, v.refusing_since_ms);
	for (int k = 0, first = 1; k < SRCSTAT_NSTATUS; k++) {
		if (!v.refused_ms[k])
			continue;
		p += snprintf(p, cap - (size_t)(p - out), "%s\"%d\":%lld", first ? "" : ",",
			      srcstat_statuses[k], v.refused_ms[k]);
		first = 0;
	}
	snprintf(p, cap - (size_t)(p - out), "}}");
	s->v[i].saved = v;
	return out;
}

/* The status of the source's latest refusal. */
static int last_status(const struct srcstat_view *v)
{
	int best = 0;

	for (int k = 1; k < SRCSTAT_NSTATUS; k++)
		if (v->refused_ms[k] > v->refused_ms[best])
			best = k;
	return srcstat_statuses[best];
}

void srcstat_warn_due(struct srcstat *s, long long now_ms)
{
	for (size_t i = 0; s && i < s->n; i++) {
		struct entry *e = &s->v[i];
		struct srcstat_view v;
		char status[8], secs[24];

		current(e, &v);
		if (!v.refusing_since_ms ||
		    now_ms - v.refusing_since_ms < e->src->refusal_warn_after_s * 1000LL ||
		    (e->warned_ms && now_ms - e->warned_ms < WARN_EVERY_MS))
			continue;
		e->warned_ms = now_ms;
		snprintf(status, sizeof(status), "%d", last_status(&v));
		snprintf(secs, sizeof(secs), "%lld", (now_ms - v.refusing_since_ms) / 1000);
		log_kv(LOG_WARN,
		       "source refuses every delivery: Qase disables a webhook "
		       "after 2 days without a successful delivery (check the secret, "
		       "the HMAC key and the body size)",
		       "source", e->src->name, "status", status, "refusing_for_s", secs, NULL);
	}
}

static size_t put_ts(char *p, size_t room, const char *name, const char *source, int status,
		     long long ms)
{
	char st[24] = "";

	if (status)
		snprintf(st, sizeof(st), ",status=\"%d\"", status);
	return (size_t)snprintf(p, room, "%s{source=\"%s\"%s} %lld.%03lld\n", name, source, st,
				ms / 1000, ms % 1000);
}

char *srcstat_render(const struct srcstat *s)
{
	static const char acc[] = "runbridge_source_last_accepted_timestamp_seconds";
	static const char ref[] = "runbridge_source_last_refused_timestamp_seconds";
	/* a source name is at most 64 characters (config.c) */
	size_t cap = 256 + s->n * (SRCSTAT_NSTATUS + 1) * 192, len = 0;
	char *out = malloc(cap);

	if (!out)
		return NULL;
	len += (size_t)snprintf(
		out + len, cap - len,
		"# HELP %s Unix time of the last delivery a source's endpoint accepted (0: none).\n"
		"# TYPE %s gauge\n",
		acc, acc);
	for (size_t i = 0; i < s->n; i++)
		len += put_ts(out + len, cap - len, acc, s->v[i].src->name, 0,
			      atomic_load(&s->v[i].accepted_ms));
	len += (size_t)snprintf(
		out + len, cap - len,
		"# HELP %s Unix time of the last delivery a source's endpoint refused, by status.\n"
		"# TYPE %s gauge\n",
		ref, ref);
	for (size_t i = 0; i < s->n; i++)
		for (int k = 0; k < SRCSTAT_NSTATUS; k++) {
			long long ms = atomic_load(&s->v[i].refused_ms[k]);
			if (ms)
				len += put_ts(out + len, cap - len, ref, s->v[i].src->name,
					      srcstat_statuses[k], ms);
		}
	return out;
}
