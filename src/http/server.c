/*
 * server: request handlers.  Each response (status line, headers, body) is
 * written with one mg_write: civetweb sends a packet per header line
 * otherwise, and with keep-alive that halves throughput (platform notes).
 * Request bodies live on the heap: civetweb's worker stacks are small.
 */
#include "http/server.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <civetweb.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <json-c/json.h>

#include "accept/accept.h"
#include "api/api.h"
#include "api/api_stream.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "event/event.h"
#include "http/deadline.h"
#include "http/door.h"
#include "http/framing.h"
#include "http/pool.h"
#include "http/ratelimit.h"
#include "http/reply.h"
#include "http/srcstat.h"
#include "store/ingest.h"
#include "store/store.h"
#include "ui/ui.h"

struct route {
	struct http_server *srv;
	const struct source_cfg *src;
	size_t index; /* in cfg->sources */
};

struct http_server {
	const struct config *cfg;
	struct ingest *in;
	struct acceptor *acc;
	struct http_status status;
	struct mg_context *ctx;
	struct route *routes;
	struct ratelimit *rl;
	struct deadlines *deadlines;
	struct door *door; /* holds connections until their request is in */
	struct srcstat *stats;
	struct framing *framing; /* exact paths; the context's user_data */
	char *tls_pem;           /* key + certificate for civetweb, or NULL */
	int tls_pem_ours;        /* we wrote it: removed at shutdown */
};

static void sha256_of(const char *s, uint8_t out[SHA256_DIGEST_SIZE])
{
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, strlen(s), (const uint8_t *)s);
	sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
}

/* Constant time whatever the lengths: compare digests, not the strings. */
static int secret_matches(const char *given, const char *want)
{
	uint8_t a[SHA256_DIGEST_SIZE], b[SHA256_DIGEST_SIZE];

	sha256_of(given, a);
	sha256_of(want, b);
	return memeql_sec(a, b, sizeof(a));
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The sender's HMAC-SHA256 of the body, hex, optionally "sha256=<hex>"
 * (GitHub's form).  Compared in constant time after decoding.
 */
static int signature_matches(const char *given, const struct source_cfg *src, const char *body,
			     size_t len)
{
	uint8_t mac[SHA256_DIGEST_SIZE], want[SHA256_DIGEST_SIZE];
	struct hmac_sha256_ctx h;

	if (strncasecmp(given, "sha256=", 7) == 0)
		given += 7;
	if (strlen(given) != 64)
		return 0;
	for (int i = 0; i < 32; i++) {
		int hi = hex_digit(given[2 * i]), lo = hex_digit(given[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return 0;
		want[i] = (unsigned char)(hi << 4 | lo);
	}
	hmac_sha256_set_key(&h, strlen(src->hmac_secret), (const uint8_t *)src->hmac_secret);
	hmac_sha256_update(&h, len, (const uint8_t *)body);
	hmac_sha256_digest(&h, sizeof(mac), mac);
	return memeql_sec(mac, want, sizeof(mac));
}

static int is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	if (!ct || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return 0;
	ct += sizeof(want) - 1;
	return *ct == '\0' || *ct == ';' || *ct == ' ';
}

/*
 * Reads the body into a heap buffer of at most max bytes.  Returns 0, or the
 * HTTP status to refuse with (413 past max, 400 when it ends early).
 */
static int read_body(struct mg_connection *c, long long declared, size_t max, int timeout_ms,
		     char **out, size_t *out_len)
{
	struct buf b;
	/* civetweb's timeout is per read: a sender trickling a byte at a time
	 * would hold this thread forever without a deadline for the whole body */
	long long deadline = clock_mono_ms() + timeout_ms;
	int status = 0;

	*out = NULL;
	/* Without Content-Length one byte past max is read to see it is over;
	 * the caller refused a declared length over max already. */
	buf_init(&b, declared >= 0 ? (size_t)declared : max + 1);
	/* declared: all of it at once; otherwise 16 KiB, then doubling */
	if (buf_reserve(&b, declared >= 0 ? (size_t)declared : 16384 - 1) < 0)
		status = 503;
	while (!status && buf_room(&b) > 0) {
		if (clock_mono_ms() > deadline) {
			status = 408;
			break;
		}
		if (buf_reserve(&b, 1) < 0) {
			status = 503;
			break;
		}
		int r = mg_read(c, b.p + b.len, b.cap - 1 - b.len);
		if (r <= 0)
			break;
		buf_commit(&b, (size_t)r);
	}
	if (!status && b.len > max)
		status = 413;
	else if (!status && declared >= 0 && b.len < (size_t)declared)
		status = 400;
	if (status) {
		buf_free(&b);
		return status;
	}
	*out = buf_detach(&b, out_len);
	return *out ? 0 : 503;
}

/* Counts what a source's endpoint answered. */
static void outcome(const struct route *rt, const char *type, int status)
{
	metrics_delivery(type, status);
	api_notify_http(type, status);
	srcstat_note(rt->srv->stats, rt->index, status, clock_wall_ms());
}

static int take_delivery(struct mg_connection *c, struct route *rt, char *body, size_t len,
			 long long received_ms)
{
	struct err err = { 0 };
	json_object *delivery;
	char id[65], resp[128];
	int dup;

	if (event_parse(&delivery, body, len, rt->srv->cfg->max_json_depth, &err) < 0) {
		log_kv(LOG_INFO, "delivery refused", "source", rt->src->name, "status", "400",
		       "error", err.msg, NULL);
		outcome(rt, NULL, 400);
		return http_reply_error(c, 400, "", err.msg);
	}
	event_delivery_id(id, rt->src->name, body, len);
	char type[128], project[128], run[24];
	snprintf(type, sizeof(type), "%s", event_name_of(delivery));
	const char *pc = event_project_of(delivery, rt->src);
	long long run_id = event_run_id_of(delivery);
	snprintf(project, sizeof(project), "%s", pc ? pc : "");
	if (run_id > 0)
		snprintf(run, sizeof(run), "%lld", run_id);
	else
		snprintf(run, sizeof(run), "null");
	if (accept_delivery(rt->srv->acc, rt->src, id, delivery, body, len, received_ms, &dup,
			    &err) < 0) {
		log_kv(LOG_ERROR, "delivery refused", "id", id, "status", "503", "error", err.msg,
		       NULL);
		outcome(rt, type, 503);
		return http_reply_error(c, 503, "Retry-After: 5\r\n", "store unavailable");
	}
	log_kv(LOG_INFO, "delivery accepted", "id", id, "source", rt->src->name, "type", type,
	       "project", project, "run_id", run, "duplicate", dup ? "true" : "false", NULL);
	outcome(rt, type, 202);
	if (dup)
		metrics_duplicate();
	snprintf(resp, sizeof(resp), "{\"id\":\"%s\",\"duplicate\":%s}", id, dup ? "true" : "false");
	return http_reply(c, 202, "", resp);
}

static int refuse(struct mg_connection *c, const struct route *rt, int status, const char *extra,
		  const char *msg)
{
	char st[8];
	snprintf(st, sizeof(st), "%d", status);
	log_kv(LOG_INFO, "delivery refused", "source", rt->src->name, "status", st, "error", msg,
	       NULL);
	outcome(rt, NULL, status);
	return http_reply_error(c, status, extra, msg);
}

static int handle_source(struct mg_connection *c, void *cbdata)
{
	struct route *rt = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(c);
	const struct config *cfg = rt->srv->cfg;
	long long received_ms = clock_wall_ms();
	char *body = NULL, msg[160];
	size_t len = 0;

	if (!ratelimit_allow(rt->srv->rl, ri->remote_addr, received_ms))
		return refuse(c, rt, 429, "Retry-After: 1\r\n",
			      "too many requests from this address (http.rate_limit_per_s)");
	if (strcmp(ri->request_method, "POST") != 0)
		return refuse(c, rt, 405, "Allow: POST\r\n", "only POST is allowed here");
	if (!is_json_type(mg_get_header(c, "Content-Type")))
		return refuse(c, rt, 415, "", "Content-Type must be application/json");
	if (rt->src->secret && rt->src->secret[0]) {
		const char *given = mg_get_header(c, "X-Qase-Secret");
		if (!given || !secret_matches(given, rt->src->secret))
			return refuse(c, rt, 401, "",
				      given ? "X-Qase-Secret does not match"
					    : "X-Qase-Secret header is missing");
	}
	snprintf(msg, sizeof(msg), "body larger than max_body_bytes (%zu)", cfg->max_body_bytes);
	if (ri->content_length > (long long)cfg->max_body_bytes)
		return refuse(c, rt, 413, "Connection: close\r\n", msg);
	int slot = deadline_arm(rt->srv->deadlines, ri->server_port, ri->remote_port,
				clock_mono_ms() + cfg->request_timeout_ms);
	int status = read_body(c, ri->content_length, cfg->max_body_bytes, cfg->request_timeout_ms,
			       &body, &len);
	if (deadline_disarm(rt->srv->deadlines, slot)) {
		free(body);
		log_kv(LOG_INFO, "delivery refused", "source", rt->src->name, "status", "408",
		       "error", "request body not received within http.request_timeout_ms", NULL);
		outcome(rt, NULL, 408);
		return 408; /* the socket is shut: nothing can be answered */
	}
	if (status == 413)
		return refuse(c, rt, 413, "Connection: close\r\n", msg);
	if (status == 400)
		return refuse(c, rt, 400, "Connection: close\r\n",
			      "request body ended before Content-Length bytes");
	if (status == 408)
		return refuse(c, rt, 408, "Connection: close\r\n",
			      "request body not received within http.request_timeout_ms");
	if (status)
		return refuse(c, rt, 503, "", "out of memory");
	if (rt->src->hmac_header) {
		const char *sig = mg_get_header(c, rt->src->hmac_header);
		if (!sig || !signature_matches(sig, rt->src, body, len)) {
			free(body);
			snprintf(msg, sizeof(msg), "%s %s", rt->src->hmac_header,
				 sig ? "does not match the body" : "header is missing");
			return refuse(c, rt, 401, "", msg);
		}
	}
	status = take_delivery(c, rt, body, len, received_ms);
	free(body);
	return status;
}

static int handle_healthz(struct mg_connection *c, void *cbdata)
{
	(void)cbdata;
	return http_reply(c, 200, "", "{\"status\":\"ok\"}");
}

static int handle_readyz(struct mg_connection *c, void *cbdata)
{
	struct http_server *s = cbdata;
	struct err err = { 0 };
	const char *redis = s->status.redis_up(s->status.ctx) ? "up" : "down";
	json_object *o = json_object_new_object();
	int ok = ingest_probe(s->in, &err) == 0;

	json_object_object_add(o, "status", json_object_new_string(ok ? "ready" : "not ready"));
	json_object_object_add(o, "store", json_object_new_string(ok ? "ok" : err.msg));
	json_object_object_add(o, "redis", json_object_new_string(redis));
	int status = http_reply(c, ok ? 200 : 503, "",
				json_object_to_json_string_ext(
					o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return status;
}

/* Admin data stays on this machine unless a token is configured. */
static int admin_allowed(struct mg_connection *c, const struct config *cfg)
{
	const char *addr = mg_get_request_info(c)->remote_addr;
	const char *auth = mg_get_header(c, "Authorization");

	if (strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0)
		return 1;
	return cfg->admin_token && auth && strncmp(auth, "Bearer ", 7) == 0 &&
	       secret_matches(auth + 7, cfg->admin_token);
}

static int handle_metrics(struct mg_connection *c, void *cbdata)
{
	struct http_server *s = cbdata;
	struct metrics_gauges g = { .redis_up = s->status.redis_up(s->status.ctx) };
	struct store_counts sc = { 0 };
	struct store *st;
	struct err err;

	if (!admin_allowed(c, s->cfg))
		return http_reply_error(c, 403, "",
					"metrics need a loopback client or http.admin_token");
	s->status.jobs(s->status.ctx, &g.in_memory, &g.running);
	if (store_open(&st, s->cfg->data_dir, STORE_RO, &err) == 0) {
		store_counts(st, &sc, &err);
		store_close(st);
	}
	g.pending = sc.pending;
	g.retrying = sc.retrying;
	g.dead = sc.dead;
	g.done = sc.done;
	char *text = metrics_render(&g), *sources = srcstat_render(s->stats);
	if (!text || !sources) {
		free(text);
		free(sources);
		return http_reply_error(c, 503, "", "out of memory");
	}
	char head[192];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 200 OK\r\n"
			 "Content-Type: text/plain; version=0.0.4\r\n"
			 "Content-Length: %zu\r\n%s\r\n",
			 strlen(text) + strlen(sources), http_reply_closing(c, ""));
	mg_write(c, head, (size_t)n);
	mg_write(c, text, strlen(text));
	mg_write(c, sources, strlen(sources));
	free(text);
	free(sources);
	return 200;
}

static int handle_not_found(struct mg_connection *c, void *cbdata)
{
	(void)cbdata;
	return http_reply_error(c, 404, "", "no such path");
}

static int on_log(const struct mg_connection *c, const char *message)
{
	(void)c;
	log_kv(LOG_WARN, "http", "detail", message, NULL);
	return 1;
}

static void on_connection_close(const struct mg_connection *c)
{
	framing_connection_close(c);
	pool_leave();
}

static void http_free(struct http_server *s)
{
	deadlines_stop(s->deadlines);
	if (s->tls_pem_ours)
		unlink(s->tls_pem);
	free(s->tls_pem);
	ratelimit_free(s->rl);
	srcstat_free(s->stats);
	framing_free(s->framing);
	free(s->routes);
	free(s);
}

/* What each source's endpoint answered before this start, if the store
 * has it (a new store has nothing). */
static void load_srcstat(struct http_server *s)
{
	struct store *st;
	struct err err;

	if (store_open(&st, s->cfg->data_dir, STORE_RO, &err) < 0)
		return;
	for (size_t i = 0; i < s->cfg->n_sources; i++) {
		char *json = NULL;
		if (store_source_get(st, s->cfg->sources[i].name, &json, &err) == 0)
			srcstat_load(s->stats, i, json);
		free(json);
	}
	store_close(st);
}

static int append_file(FILE *out, const char *path, struct err *err)
{
	char buf[4096];
	size_t n;
	FILE *in = fopen(path, "rb");

	if (!in)
		return err_set(err, "tls: cannot read %s: %s", path, strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	fclose(in);
	return 0;
}

/* civetweb wants the key and the certificate in one PEM: with a separate
 * tls.key both are joined into <data_dir>/tls.pem (0600). */
static int tls_pem(struct http_server *s, const struct config *cfg, struct err *err)
{
	if (!cfg->tls_key)
		return (s->tls_pem = strdup(cfg->tls_certificate)) ? 0
								   : err_set(err, "out of memory");
	if (asprintf(&s->tls_pem, "%s/tls.pem", cfg->data_dir) < 0) {
		s->tls_pem = NULL;
		return err_set(err, "out of memory");
	}
	s->tls_pem_ours = 1;
	int fd = open(s->tls_pem, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!out) {
		if (fd >= 0)
			close(fd);
		return err_set(err, "tls: cannot write %s: %s", s->tls_pem, strerror(errno));
	}
	int bad = append_file(out, cfg->tls_key, err) < 0 ||
		  append_file(out, cfg->tls_certificate, err) < 0;
	if (fclose(out) != 0 && !bad)
		bad = err_set(err, "tls: cannot write %s", s->tls_pem) != 0;
	return bad ? -1 : 0;
}

/* The shim (src/http/tls_shim.c) next to the binary (build tree), or in
 * ../lib/runbridge (installed), loaded before civetweb looks for libssl.so. */
static int tls_shim(struct err *err)
{
	static const char *const rel[] = { "libssl.so", "../lib/runbridge/libssl.so" };
	char exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return err_set(err, "tls: cannot find the runbridge binary");
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", exe, rel[i]);
		if (dlopen(path, RTLD_NOW | RTLD_GLOBAL))
			return 0;
	}
	return err_set(err,
		       "tls: the OpenSSL shim (libssl.so from this build) is "
		       "not next to runbridge nor in ../lib/runbridge: %s",
		       dlerror());
}

/* The paths that route: framing_begin_request answers 404 to any other. */
static int http_paths(struct http_server *s)
{
	static const char *const fixed[] = { "/healthz", "/readyz", "/metrics" };

	if (framing_new(&s->framing, s->cfg->max_header_bytes) < 0)
		return -1;
	for (size_t i = 0; i < s->cfg->n_sources; i++)
		if (framing_add_path(s->framing, s->cfg->sources[i].path) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (framing_add_path(s->framing, fixed[i]) < 0)
			return -1;
	for (const char *const *p = ui_paths; *p; p++)
		if (framing_add_path(s->framing, *p) < 0)
			return -1;
	return 0;
}

/* Descriptors kept for all but waiting connections: civetweb's threads
 * and queue, the store, Redis, hooks and outbound calls. */
#define FDS_RESERVED 512

static int open_door(struct http_server *s, struct err *err)
{
	const struct config *cfg = s->cfg;
	struct door_opts o = {
		.head_max = framing_civetweb_buffer(cfg->max_header_bytes),
		.body_max = cfg->max_body_bytes,
		.timeout_ms = cfg->request_timeout_ms,
		.max_per_address = cfg->max_connections_per_address,
		.room_max = door_room_for_fds((size_t)cfg->http_threads + FDS_RESERVED),
	};
	return door_open(&s->door, s->ctx, &o, err);
}

int http_start(struct http_server **out, const struct config *cfg, struct ingest *in,
	       struct acceptor *acc, const struct http_status *status, struct err *err)
{
	struct http_server *s = calloc(1, sizeof(*s));
	struct mg_callbacks cb = {
		.log_message = on_log,
		.begin_request = api_begin_request, /* framing, and /api/ by prefix */
		.http_error = framing_http_error,
		.init_connection = pool_enter,
		.connection_close = on_connection_close,
	};
	struct mg_init_data init = { .callbacks = &cb };
	struct mg_error_data edata;
	char ebuf[256] = "", threads[16], timeout[16], keep_alive[16];

	*out = NULL;
	if (!s || !(s->routes = calloc(cfg->n_sources, sizeof(*s->routes)))) {
		free(s);
		return err_set(err, "out of memory");
	}
	s->cfg = cfg;
	s->in = in;
	s->acc = acc;
	s->status = *status;
	char header_max[24];
	snprintf(threads, sizeof(threads), "%d", cfg->http_threads);
	snprintf(timeout, sizeof(timeout), "%d", cfg->request_timeout_ms);
	snprintf(keep_alive, sizeof(keep_alive), "%d", cfg->keep_alive_timeout_ms);
	pool_init(cfg->http_threads);
	snprintf(header_max, sizeof(header_max), "%zu",
		 framing_civetweb_buffer(cfg->max_header_bytes));
	s->rl = ratelimit_new(cfg->rate_limit_per_s);
	s->deadlines = deadlines_start(cfg->http_threads);
	if (!s->rl || !s->deadlines || http_paths(s) < 0 || srcstat_new(&s->stats, cfg, err) < 0) {
		http_free(s);
		return err_set(err, "out of memory");
	}
	load_srcstat(s);
	if (cfg->tls_certificate && (tls_shim(err) < 0 || tls_pem(s, cfg, err) < 0)) {
		http_free(s);
		return -1;
	}
	const char *options[] = {
		"listening_ports",
		cfg->listen,
		"num_threads",
		threads,
		"request_timeout_ms",
		timeout,
		"max_request_size",
		header_max,
		"enable_keep_alive",
		cfg->keep_alive_timeout_ms > 0 ? "yes" : "no",
		/* an idle keep-alive connection holds a worker thread this long;
		 * past the pool's mark answers close instead (pool.h) */
		"keep_alive_timeout_ms",
		keep_alive,
		"tcp_nodelay",
		"1",
		/* paths route as sent (framing_path_is) */
		"decode_url",
		"no",
		s->tls_pem ? "ssl_certificate" : NULL,
		s->tls_pem,
		NULL,
	};
	init.configuration_options = options;
	init.user_data = s->framing;
	memset(&edata, 0, sizeof(edata));
	edata.text = ebuf;
	edata.text_buffer_size = sizeof(ebuf);
	if (s->tls_pem)
		mg_init_library(MG_FEATURES_TLS); /* its return value means nothing */
	s->ctx = mg_start2(&init, &edata);
	if (!s->ctx) {
		http_free(s);
		return err_set(err, "cannot listen on %s: %s", cfg->listen,
			       ebuf[0] ? ebuf : "unknown error");
	}
	for (size_t i = 0; i < cfg->n_sources; i++) {
		char uri[512];
		s->routes[i] = (struct route){ .srv = s, .src = &cfg->sources[i], .index = i };
		snprintf(uri, sizeof(uri), "%s$", cfg->sources[i].path);
		mg_set_request_handler(s->ctx, uri, handle_source, &s->routes[i]);
	}
	mg_set_request_handler(s->ctx, "/healthz$", handle_healthz, s);
	mg_set_request_handler(s->ctx, "/readyz$", handle_readyz, s);
	mg_set_request_handler(s->ctx, "/metrics$", handle_metrics, s);
	ui_register(s->ctx, cfg);
	if (api_register(s->ctx, cfg, &s->status, acc) < 0)
		log_kv(LOG_ERROR, "operator API not started (store or randomness)", NULL);
	mg_set_request_handler(s->ctx, "/", handle_not_found, s);
	/* served from here: the door's take-over below waits up to tens of ms
	 * for civetweb's master, which meanwhile accepts on its own */
	framing_set_ready(s->framing);
	if (open_door(s, err) < 0) {
		api_stop(); /* a stream may be open already: mg_stop waits for it */
		mg_stop(s->ctx);
		api_free();
		http_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void http_tick(struct http_server *s, long long now_ms)
{
	struct err err = { 0 };

	for (size_t i = 0; s && i < s->cfg->n_sources; i++) {
		char *json = srcstat_save_due(s->stats, i);
		if (json && ingest_source(s->in, s->cfg->sources[i].name, json, &err) < 0)
			log_kv(LOG_WARN, "source state not saved", "source",
			       s->cfg->sources[i].name, "error", err.msg, NULL);
		free(json);
	}
	if (s)
		srcstat_warn_due(s->stats, now_ms);
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	door_close(s->door);
	api_stop(); /* streams end, or mg_stop would wait for them */
	mg_stop(s->ctx);
	api_free();
	http_free(s);
}
