/*
 * server: the HTTP side of runbridge, on civetweb.
 *
 *   POST <source path>  a webhook delivery: 202 {"id":"...","duplicate":false}
 *                       only after it is committed and synced; JSON errors
 *                       400 401 405 413 415 503 otherwise
 *   GET /healthz        200 while the process runs
 *   GET /readyz         200 when the store takes writes (503 if not); reports
 *                       the Redis connection
 *   GET /metrics        Prometheus text, with each source's last accepted
 *                       and refused times (srcstat.h)
 *   /api/v1/...         the operator API (api/api.h)
 *   GET /ui/            the operator console (ui/ui.h)
 *
 * Connections wait in the door (door.h) until their request has arrived,
 * and answers close while the worker pool is nearly full (pool.h).
 *
 * Request threads never run actions: they parse and check the delivery,
 * hand it to the accept stage (which normalizes, routes and waits for the
 * writer's commit), then answer.
 */
#ifndef RB_HTTP_SERVER_H
#define RB_HTTP_SERVER_H

#include "core/config.h"
#include "core/err.h"

struct acceptor;
struct ingest;
struct http_server;

/* What /readyz and /metrics tell of the stages after the store.  The
 * daemon wires it (serve.c); http knows no stage but the store. */
struct http_status {
	void *ctx;
	int (*redis_up)(void *ctx); /* 1 when connected */
	void (*jobs)(void *ctx, long long *in_memory, long long *running);
};

/* Listens on cfg->listen: deliveries go to acc, probes and source state
 * to in; status is copied.  -1 with err set when it cannot (the port is
 * taken, the TLS files are unreadable). */
int http_start(struct http_server **out, const struct config *cfg, struct ingest *in,
	       struct acceptor *acc, const struct http_status *status, struct err *err);

/* Once a second from the main loop: saves what each source's endpoint
 * answered and logs the refusal warning when due (see srcstat.h). */
void http_tick(struct http_server *s, long long now_ms);

/* Stops accepting and waits for requests in progress to be answered. */
void http_stop(struct http_server *s);

#endif
