/*
 * api_stream: the notify hooks, the live figures and the SSE stream
 * (api_stream.h).
 */
#include "api/api_stream.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>

#include "api/api.h"
#include "core/clock.h"

enum {
	MINUTES = 60,
	KEYS_PER_MINUTE = 32, /* (type, status) pairs; the excess is "other" */
	TYPE_MAX = 64,
	TARGETS_MAX = 64,
	RULES_MAX_COUNTED = 1024,
	HEARTBEAT_MS = 3000, /* also how soon a gone client frees its slot */
	MSG_MAX = 4096,
};

/* ---- the ring of stream messages ------------------------------------------ */

static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cv;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;
static char *ring[STREAM_RING];
static unsigned long long ring_next = 1; /* seq of the next message */
static int stopping;
/* Stream clients connected.  Written under ring_mu; read without it by the
 * notify calls, which build no message while it is 0: a client starts at
 * the ring's next message, so none would ever read one. */
static atomic_int clients;

static void ring_init(void)
{
	pthread_condattr_t a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&ring_cv, &a);
	pthread_condattr_destroy(&a);
}

static void publish(const char *event, json_object *data)
{
	const char *json = json_object_to_json_string_ext(
		data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t n = strlen(json) + strlen(event) + 64;
	char *msg = n <= MSG_MAX ? malloc(n) : NULL;

	if (!msg)
		return;
	pthread_once(&ring_once, ring_init);
	pthread_mutex_lock(&ring_mu);
	snprintf(msg, n, "id: %llu\nevent: %s\ndata: %s\n\n", ring_next, event, json);
	free(ring[ring_next % STREAM_RING]);
	ring[ring_next % STREAM_RING] = msg;
	ring_next++;
	pthread_cond_broadcast(&ring_cv);
	pthread_mutex_unlock(&ring_mu);
}

void api_stream_stop(void)
{
	pthread_once(&ring_once, ring_init);
	pthread_mutex_lock(&ring_mu);
	stopping = 1;
	pthread_cond_broadcast(&ring_cv);
	pthread_mutex_unlock(&ring_mu);
}

/* The next message after *seq, copied (caller frees), or NULL after
 * waiting up to a second.  Called with ring_mu held. */
static char *next_locked(unsigned long long *seq)
{
	if (*seq >= ring_next) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&ring_cv, &ring_mu, &ts);
	}
	if (*seq >= ring_next || stopping)
		return NULL;
	if (ring_next - *seq > STREAM_RING) {
		*seq = ring_next - STREAM_RING; /* fell a ring behind */
		return strdup(": some events were skipped\n\n");
	}
	char *m = strdup(ring[*seq % STREAM_RING]);
	(*seq)++;
	return m;
}

static int stream_loop(struct mg_connection *c)
{
	long long beat = clock_mono_ms() + HEARTBEAT_MS;
	unsigned long long seq;
	int alive = 1;

	pthread_mutex_lock(&ring_mu);
	seq = ring_next;
	while (alive && !stopping) {
		char *m = next_locked(&seq);
		pthread_mutex_unlock(&ring_mu);
		if (m) {
			alive = mg_write(c, m, strlen(m)) > 0;
			free(m);
		} else if (clock_mono_ms() >= beat) {
			alive = mg_write(c, ": keep-alive\n\n", 14) > 0;
			beat = clock_mono_ms() + HEARTBEAT_MS;
		}
		pthread_mutex_lock(&ring_mu);
	}
	clients--;
	pthread_mutex_unlock(&ring_mu);
	return 200;
}

int api_stream_serve(struct mg_connection *c, int max_clients, const char *extra_headers)
{
	char head[512];

	pthread_once(&ring_once, ring_init);
	pthread_mutex_lock(&ring_mu);
	int full = clients >= max_clients || stopping;
	if (!full)
		clients++;
	pthread_mutex_unlock(&ring_mu);
	if (full)
		return api_reply_error(c, 503, "too many stream clients (http.max_stream_clients)");
	mg_disable_connection_keep_alive(c);
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\n"
			 "Content-Type: text/event-stream\r\n"
			 "Cache-Control: no-store\r\n"
			 "Connection: close\r\n"
			 "X-Accel-Buffering: no\r\n"
			 "%s\r\n"
			 ": runbridge stream\n\n",
			 extra_headers);
	if (mg_write(c, head, (size_t)n) <= 0) {
		pthread_mutex_lock(&ring_mu);
		clients--;
		pthread_mutex_unlock(&ring_mu);
		return 200;
	}
	return stream_loop(c);
}

/* ---- live figures ---------------------------------------------------------- */

struct minute_key {
	char type[TYPE_MAX]; /* "" = not parsed */
	int status;
	long long n;
};

struct minute {
	long long minute; /* Unix minute this bucket holds */
	size_t n;
	struct minute_key k[KEYS_PER_MINUTE];
};

struct target_stat {
	char kind[16], target[64];
	long long ok_ms, fail_ms;
	char error[512];
};

struct rule_count {
	char *name;
	long long n;
};

static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static struct minute minutes[MINUTES];
static struct target_stat targets[TARGETS_MAX];
static size_t ntargets;
static struct rule_count rules[RULES_MAX_COUNTED];
static size_t nrules;

void api_notify_http(const char *type, int status)
{
	long long m = clock_wall_ms() / 60000;
	struct minute *b = &minutes[m % MINUTES];
	size_t i;

	pthread_mutex_lock(&stats_mu);
	if (b->minute != m)
		*b = (struct minute){ .minute = m };
	if (type && b->n == KEYS_PER_MINUTE - 1)
		type = "other";
	for (i = 0; i < b->n; i++)
		if (b->k[i].status == status && strcmp(b->k[i].type, type ? type : "") == 0)
			break;
	if (i == b->n && b->n < KEYS_PER_MINUTE) {
		snprintf(b->k[i].type, sizeof(b->k[i].type), "%s", type ? type : "");
		b->k[i].status = status;
		b->n++;
	}
	if (i < b->n)
		b->k[i].n++;
	pthread_mutex_unlock(&stats_mu);
}

json_object *api_stats_last_hour(void)
{
	long long now = clock_wall_ms() / 60000;
	json_object *o = json_object_new_object();

	pthread_mutex_lock(&stats_mu);
	for (size_t m = 0; m < MINUTES; m++) {
		const struct minute *b = &minutes[m];
		if (b->minute <= now - MINUTES || b->minute > now)
			continue;
		for (size_t i = 0; i < b->n; i++) {
			const char *type = b->k[i].type[0] ? b->k[i].type : "(unparsed)";
			char status[16];
			json_object *t, *v;
			if (!json_object_object_get_ex(o, type, &t)) {
				t = json_object_new_object();
				json_object_object_add(o, type, t);
			}
			snprintf(status, sizeof(status), "%d", b->k[i].status);
			long long n = json_object_object_get_ex(t, status, &v)
					      ? json_object_get_int64(v)
					      : 0;
			json_object_object_add(t, status, json_object_new_int64(n + b->k[i].n));
		}
	}
	pthread_mutex_unlock(&stats_mu);
	return o;
}

static void note_target(const struct api_job_event *ev)
{
	const char *kind = ev->kind ? ev->kind : "other", *target = ev->target ? ev->target : "";
	size_t i;

	for (i = 0; i < ntargets; i++)
		if (strcmp(targets[i].kind, kind) == 0 && strcmp(targets[i].target, target) == 0)
			break;
	if (i == ntargets) {
		if (ntargets == TARGETS_MAX)
			return;
		snprintf(targets[i].kind, sizeof(targets[i].kind), "%s", kind);
		snprintf(targets[i].target, sizeof(targets[i].target), "%s", target);
		ntargets++;
	}
	if (ev->ok) {
		targets[i].ok_ms = ev->at_ms;
	} else {
		targets[i].fail_ms = ev->at_ms;
		snprintf(targets[i].error, sizeof(targets[i].error), "%s",
			 ev->detail ? ev->detail : "");
	}
}

json_object *api_stats_targets(void)
{
	json_object *a = json_object_new_array();

	pthread_mutex_lock(&stats_mu);
	for (size_t i = 0; i < ntargets; i++) {
		const struct target_stat *t = &targets[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "kind", json_object_new_string(t->kind));
		json_object_object_add(o, "target",
				       t->target[0] ? json_object_new_string(t->target) : NULL);
		json_object_object_add(o, "last_success_at", api_time(t->ok_ms));
		json_object_object_add(o, "last_failure_at", api_time(t->fail_ms));
		json_object_object_add(o, "last_error",
				       t->fail_ms ? json_object_new_string(t->error) : NULL);
		json_object_array_add(a, o);
	}
	pthread_mutex_unlock(&stats_mu);
	return a;
}

void api_notify_matched(const char *const *matched, size_t n_matched)
{
	pthread_mutex_lock(&stats_mu);
	for (size_t m = 0; m < n_matched; m++) {
		size_t i;
		for (i = 0; i < nrules; i++)
			if (strcmp(rules[i].name, matched[m]) == 0)
				break;
		if (i == nrules && nrules < RULES_MAX_COUNTED &&
		    (rules[i].name = strdup(matched[m])) != NULL)
			nrules++;
		if (i < nrules)
			rules[i].n++;
	}
	pthread_mutex_unlock(&stats_mu);
}

long long api_stats_rule_matches(const char *name)
{
	long long n = 0;

	pthread_mutex_lock(&stats_mu);
	for (size_t i = 0; i < nrules; i++)
		if (strcmp(rules[i].name, name) == 0)
			n = rules[i].n;
	pthread_mutex_unlock(&stats_mu);
	return n;
}

/* ---- what is published ------------------------------------------------------ */

static json_object *field(json_object *o, const char *key)
{
	json_object *v = NULL;
	return json_object_object_get_ex(o, key, &v) ? json_object_get(v) : NULL;
}

static int listened(void)
{
	return atomic_load_explicit(&clients, memory_order_relaxed) > 0;
}

void api_notify_delivery(json_object *event, const char *const *matched, size_t n_matched)
{
	json_object *o, *run = NULL, *names;

	api_notify_matched(matched, n_matched);
	if (!listened())
		return;
	o = json_object_new_object();
	json_object_object_add(o, "id", field(event, "id"));
	json_object_object_add(o, "type", field(event, "type"));
	json_object_object_add(o, "project", field(event, "project"));
	json_object_object_add(o, "run_id", field(event, "run_id"));
	json_object_object_add(o, "received_at", field(event, "received_at"));
	json_object_object_get_ex(event, "run", &run);
	json_object_object_add(o, "title", field(run, "title"));
	names = json_object_new_array();
	for (size_t i = 0; i < n_matched; i++)
		json_object_array_add(names, json_object_new_string(matched[i]));
	json_object_object_add(o, "matched", names);
	publish("delivery", o);
	json_object_put(o);
}

static const char *state_name(int state)
{
	static const char *const names[] = { "pending", "retrying", "done", "dead" };
	return state >= 0 && state < 4 ? names[state] : "unknown";
}

void api_notify_job(const struct api_job_event *ev)
{
	json_object *o;
	char at[32];

	pthread_mutex_lock(&stats_mu);
	note_target(ev);
	pthread_mutex_unlock(&stats_mu);
	if (!listened())
		return;
	o = json_object_new_object();
	api_iso(at, sizeof(at), ev->at_ms);
	json_object_object_add(o, "id", json_object_new_int64(ev->id));
	json_object_object_add(o, "delivery_id",
			       ev->delivery_id && ev->delivery_id[0]
				       ? json_object_new_string(ev->delivery_id)
				       : NULL);
	json_object_object_add(o, "rule", json_object_new_string(ev->rule ? ev->rule : ""));
	json_object_object_add(o, "kind", json_object_new_string(ev->kind ? ev->kind : ""));
	json_object_object_add(
		o, "target", ev->target && ev->target[0] ? json_object_new_string(ev->target) : NULL);
	json_object_object_add(o, "state", json_object_new_string(state_name(ev->state)));
	json_object_object_add(o, "attempts", json_object_new_int(ev->attempts));
	json_object_object_add(o, "at", json_object_new_string(at));
	publish("job", o);
	json_object_put(o);
}
