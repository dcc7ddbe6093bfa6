/*
 * api: routing of /api/v1/..., the session endpoints, and the JSON helpers
 * the api modules share (api.h).
 *
 * One civetweb handler takes every path under /api/; it decides who may
 * ask (api_auth.h), which method the path takes (405 with Allow
 * otherwise), reads a POST body (at most max_body_bytes), and calls the
 * module that answers.  Paths route as sent (decode_url=no): each segment
 * is percent-decoded here, once.
 */
#include "api/api.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <civetweb.h>

#include "api/api_auth.h"
#include "api/api_query.h"
#include "api/api_stream.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "http/framing.h"
#include "http/reply.h"
#include "http/server.h"

enum { SEGMENTS_MAX = 6, SEGMENT_MAX = 256 };

static const struct config *api_cfg;
static struct http_status api_status;
static struct acceptor *api_acc;

/* ---- JSON helpers ------------------------------------------------------------ */

void api_iso(char *out, size_t len, long long ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char date[32];

	if (!gmtime_r(&t, &tm) || !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm)) {
		snprintf(out, len, "%s", "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(out, len, "%s.%03lldZ", date, ms % 1000);
}

json_object *api_time(long long ms)
{
	char t[40];
	if (ms <= 0)
		return NULL;
	api_iso(t, sizeof(t), ms);
	return json_object_new_string(t);
}

int api_parse_time(const char *s, long long *out)
{
	struct tm tm = { 0 };
	char *end;
	long long ms = 0;

	if (*s >= '0' && *s <= '9' && !strchr(s, '-')) {
		long long v = strtoll(s, &end, 10);
		if (*end)
			return -1;
		*out = v;
		return 0;
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end)
		return -1;
	if (*end == '.') {
		int digits = 0;
		for (end++; *end >= '0' && *end <= '9'; end++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*end - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
		return -1;
	*out = (long long)timegm(&tm) * 1000 + ms;
	return 0;
}

json_object *api_parse_json(const char *body, size_t len)
{
	json_tokener *t = len <= INT_MAX ? json_tokener_new_ex(32) : NULL;
	json_object *o = t ? json_tokener_parse_ex(t, body, (int)len) : NULL;

	if (t && (json_tokener_get_error(t) != json_tokener_success ||
		  json_tokener_get_parse_end(t) != len)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(t);
	return o;
}

json_object *api_raw_json(const char *text)
{
	char *copy = text ? strdup(text) : NULL;
	json_object *o = copy ? json_object_new_object() : NULL;

	if (!o) {
		free(copy);
		return NULL;
	}
	json_object_set_serializer(o, json_object_userdata_to_json_string, copy,
				   json_object_free_userdata);
	return o;
}

/* The most a list answer holds: 500 items of a few KiB, with room for
 * large run records. */
#define API_LIST_MAX (64u << 20)

void api_list_begin(struct api_list *l)
{
	buf_init(&l->b, API_LIST_MAX);
	l->n = 0;
	buf_adds(&l->b, "{\"items\":[");
}

void api_list_add(struct api_list *l, json_object *item)
{
	size_t len;
	const char *text = json_object_to_json_string_length(
		item, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);

	if (l->n++)
		buf_add(&l->b, ",", 1);
	buf_add(&l->b, text, len);
	json_object_put(item);
}

void api_list_free(struct api_list *l)
{
	buf_free(&l->b);
}

int api_list_reply(struct mg_connection *c, struct api_list *l, const char *next_cursor)
{
	json_object *next = next_cursor ? json_object_new_string(next_cursor) : NULL;
	int status;

	buf_adds(&l->b, "],\"next_cursor\":");
	buf_adds(&l->b, json_object_to_json_string_ext(
				next, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	buf_adds(&l->b, "}");
	json_object_put(next);
	if (buf_error(&l->b))
		status = api_reply_error(c, 503, "the answer is too large; ask for a smaller limit");
	else
		status = http_reply(c, 200, API_SECURITY_HEADERS, l->b.p);
	api_list_free(l);
	return status;
}

int api_reply_json(struct mg_connection *c, int status, json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE);
	int rc = http_reply(c, status, API_SECURITY_HEADERS, text);
	json_object_put(o);
	return rc;
}

int api_reply_error(struct mg_connection *c, int status, const char *msg)
{
	return http_reply_error(c, status, API_SECURITY_HEADERS, msg);
}

static int reply_405(struct mg_connection *c, const char *allow)
{
	char extra[256];
	snprintf(extra, sizeof(extra), "%sAllow: %s\r\n", API_SECURITY_HEADERS, allow);
	return http_reply_error(c, 405, extra, "method not allowed");
}

/* ---- the path -------------------------------------------------------------------- */

struct path {
	char seg[SEGMENTS_MAX][SEGMENT_MAX];
	int n;
};

/* "/api/v1/runs/DEMO/42" -> runs, DEMO, 42.  -1 for what is not ours. */
static int split(const char *uri, struct path *p)
{
	const char *s;

	if (strncmp(uri, "/api/v1/", 8) != 0)
		return -1;
	p->n = 0;
	for (s = uri + 8; *s;) {
		size_t n = strcspn(s, "/");
		if (p->n == SEGMENTS_MAX || n >= SEGMENT_MAX || n == 0)
			return -1;
		if (mg_url_decode(s, (int)n, p->seg[p->n], SEGMENT_MAX, 0) < 0)
			return -1;
		p->n++;
		s += n;
		if (*s == '/')
			s++;
	}
	return p->n ? 0 : -1;
}

static int parse_id(const char *s, long long *out)
{
	char *end;
	if (!*s || *s < '0' || *s > '9')
		return -1;
	*out = strtoll(s, &end, 10);
	return *end || *out <= 0 || *out == LLONG_MAX ? -1 : 0;
}

/* ---- bodies -------------------------------------------------------------------- */

/* The request body (NULL and 400/413 answered on failure). */
static char *read_body(struct mg_connection *c, size_t max, size_t *len, int *status)
{
	struct buf b;
	char chunk[4096];
	int n;

	buf_init(&b, max + 1);
	while ((n = mg_read(c, chunk, sizeof(chunk))) > 0)
		if (buf_add(&b, chunk, (size_t)n) < 0) {
			buf_free(&b);
			mg_disable_connection_keep_alive(c);
			*status = api_reply_error(c, 413, "body larger than max_body_bytes");
			return NULL;
		}
	char *body = buf_detach(&b, len);
	if (!body) {
		*status = api_reply_error(c, 400, "empty body");
		return NULL;
	}
	return body;
}

/* ---- sessions -------------------------------------------------------------------- */

static int login(struct mg_connection *c)
{
	size_t len;
	int status;
	char *body = read_body(c, 4096, &len, &status), token[512] = "";
	const char *ct = mg_get_header(c, "Content-Type");

	if (!body)
		return status;
	if (ct && strncmp(ct, "application/x-www-form-urlencoded", 33) == 0) {
		if (mg_get_var(body, len, "token", token, sizeof(token)) < 0)
			token[0] = '\0';
	} else {
		json_object *o = api_parse_json(body, len), *t;
		if (o && json_object_object_get_ex(o, "token", &t) &&
		    json_object_is_type(t, json_type_string))
			snprintf(token, sizeof(token), "%s", json_object_get_string(t));
		json_object_put(o);
	}
	free(body);
	if (!api_auth_token_ok(api_cfg, token))
		return api_reply_error(c, 401, "wrong token");
	char id[65], extra[512];
	if (api_session_new(id, sizeof(id)) < 0)
		return api_reply_error(c, 503, "no randomness for a session");
	snprintf(extra, sizeof(extra),
		 "%sSet-Cookie: " API_SESSION_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/%s\r\n",
		 API_SECURITY_HEADERS, id, mg_get_request_info(c)->is_ssl ? "; Secure" : "");
	return http_reply(c, 204, extra, "");
}

static int logout(struct mg_connection *c)
{
	api_session_end(c);
	return http_reply(c, 204,
			  API_SECURITY_HEADERS "Set-Cookie: " API_SESSION_COOKIE
					       "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0\r\n",
			  "");
}

static int session(struct mg_connection *c)
{
	char csrf[80];
	enum api_via via = api_auth_via(c, api_cfg, csrf, sizeof(csrf));
	json_object *o = json_object_new_object();

	json_object_object_add(o, "authenticated", json_object_new_boolean(1));
	json_object_object_add(o, "via", json_object_new_string(api_via_name(via)));
	json_object_object_add(o, "csrf", json_object_new_string(csrf));
	return api_reply_json(c, 200, o);
}

/* ---- routing ---------------------------------------------------------------------- */

/* What a path takes: its method, and whether it changes state. */
static const char *method_of(const struct path *p)
{
	const char *s0 = p->seg[0];

	if (p->n == 1 && (!strcmp(s0, "replay") || !strcmp(s0, "route") || !strcmp(s0, "login") ||
			  !strcmp(s0, "logout")))
		return "POST";
	if (p->n == 3 && !strcmp(s0, "jobs") && !strcmp(p->seg[2], "replay"))
		return "POST";
	return "GET";
}

static int known(const struct path *p)
{
	const char *s0 = p->seg[0];
	static const char *const one[] = { "summary", "runs",   "deliveries", "jobs",
					   "replay",  "rules",  "route",      "stream",
					   "login",   "logout", "session" };
	if (p->n == 1) {
		for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
			if (!strcmp(s0, one[i]))
				return 1;
		return 0;
	}
	if (p->n == 2)
		return !strcmp(s0, "deliveries") || !strcmp(s0, "jobs");
	if (p->n == 3)
		return !strcmp(s0, "runs") || (!strcmp(s0, "jobs") && !strcmp(p->seg[2], "replay"));
	return 0;
}

static int with_body(const struct api_req *r, const struct path *p)
{
	size_t len;
	int status;
	char *body = read_body(r->c, api_cfg->max_body_bytes, &len, &status);

	if (!body)
		return status;
	status = !strcmp(p->seg[0], "route") ? api_post_route(r, body, len)
					     : api_post_replay(r, body, len);
	free(body);
	return status;
}

static int route_get(const struct api_req *r, const struct path *p)
{
	const char *s0 = p->seg[0];
	long long id;

	if (p->n == 1) {
		if (!strcmp(s0, "summary"))
			return api_get_summary(r);
		if (!strcmp(s0, "runs"))
			return api_get_runs(r);
		if (!strcmp(s0, "deliveries"))
			return api_get_deliveries(r);
		if (!strcmp(s0, "jobs"))
			return api_get_jobs(r);
		if (!strcmp(s0, "rules"))
			return api_get_rules(r);
		if (!strcmp(s0, "session"))
			return session(r->c);
		return api_stream_serve(r->c, api_cfg->max_stream_clients, API_SECURITY_HEADERS);
	}
	if (p->n == 2 && !strcmp(s0, "deliveries"))
		return api_get_delivery(r, p->seg[1]);
	if (p->n == 2)
		return parse_id(p->seg[1], &id) < 0 ? api_reply_error(r->c, 404, "no such job")
						    : api_get_job(r, id);
	if (parse_id(p->seg[2], &id) < 0)
		return api_reply_error(r->c, 404, "no such run");
	return api_get_run(r, p->seg[1], id);
}

static int route_post(const struct api_req *r, const struct path *p)
{
	long long id;

	if (p->n == 3)
		return parse_id(p->seg[1], &id) < 0 ? api_reply_error(r->c, 404, "no such job")
						    : api_post_replay_job(r, id);
	if (!strcmp(p->seg[0], "logout"))
		return logout(r->c);
	return with_body(r, p);
}

/* civetweb serves from mg_start on: until every handler is registered a
 * request gets 503 "starting" (framing_refuse_starting); the handler then
 * waits for the indexes. */
static pthread_mutex_t ready_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cv = PTHREAD_COND_INITIALIZER;
static int ready; /* 1 ready, -1 failed */

static int wait_ready(void)
{
	struct timespec until = clock_deadline(30000);
	int rc = 0;

	pthread_mutex_lock(&ready_mu);
	while (!ready && rc == 0)
		rc = pthread_cond_timedwait(&ready_cv, &ready_mu, &until);
	int r = ready;
	pthread_mutex_unlock(&ready_mu);
	return r == 1 ? 0 : -1;
}

static int handle_api(struct mg_connection *c, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct path *p = malloc(sizeof(*p)); /* 1.5 KiB: off the small stack */
	struct api_req r = {
		.c = c, .cfg = api_cfg, .status = &api_status, .acc = api_acc, .qs = ri->query_string
	};
	char why[256];
	int status;

	(void)cbdata;
	if (wait_ready() < 0) {
		free(p);
		return api_reply_error(c, 503, "operator API not started (see the log)");
	}
	if (!p)
		return api_reply_error(c, 503, "out of memory");
	if (split(ri->local_uri_raw ? ri->local_uri_raw : ri->local_uri, p) < 0 || !known(p)) {
		free(p);
		return api_reply_error(c, 404, "no such path");
	}
	const char *want = method_of(p);
	int post = !strcmp(want, "POST");
	if (!strcmp(p->seg[0], "login")) {
		status = strcmp(ri->request_method, "POST") ? reply_405(c, "POST") : login(c);
	} else if (!api_auth_allowed(c, api_cfg, 0, why, sizeof(why))) {
		status = api_reply_error(c, 401, why);
	} else if (strcmp(ri->request_method, want) != 0) {
		status = reply_405(c, want);
	} else if (post && !api_auth_allowed(c, api_cfg, 1, why, sizeof(why))) {
		status = api_reply_error(c, 401, why);
	} else {
		status = post ? route_post(&r, p) : route_get(&r, p);
	}
	free(p);
	return status;
}

/* ---- life ------------------------------------------------------------------------ */

int api_register(struct mg_context *ctx, const struct config *cfg, const struct http_status *status,
		 struct acceptor *acc)
{
	api_cfg = cfg;
	api_status = *status;
	api_acc = acc;
	api_runs_started(clock_wall_ms());
	mg_set_request_handler(ctx, "/api/", handle_api, NULL);
	int ok = api_auth_init() == 0 && api_db_init(cfg->data_dir) == 0;
	pthread_mutex_lock(&ready_mu);
	ready = ok ? 1 : -1;
	pthread_cond_broadcast(&ready_cv);
	pthread_mutex_unlock(&ready_mu);
	return ok ? 0 : -1;
}

void api_stop(void)
{
	api_stream_stop();
}

void api_free(void)
{
	api_db_free();
	api_auth_cleanup();
}

static int ours(const char *uri)
{
	return uri && strncmp(uri, "/api/", 5) == 0;
}

int api_begin_request(struct mg_connection *c)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct framing_verdict v;

	if (!ours(ri->local_uri_raw))
		return framing_begin_request(c);
	framing_check(&v, ri, api_cfg ? api_cfg->max_header_bytes : 16384);
	if (v.status)
		return http_reply_error(c, v.status, "Connection: close\r\n", v.reason);
	int starting = framing_refuse_starting(c);
	if (starting)
		return starting;
	if (ri->num_headers == 0)
		mg_disable_connection_keep_alive(c);
	return 0;
}
