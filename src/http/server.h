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
 *
 * Request threads never run actions: they parse, check and hand the delivery
 * to the writer, then answer.
 */
#ifndef RB_HTTP_SERVER_H
#define RB_HTTP_SERVER_H

#include "core/config.h"
#include "core/err.h"

struct ingest;
struct dispatch;
struct http_server;

int http_start(struct http_server **out, const struct config *cfg,
	       struct ingest *in, struct dispatch *d, struct err *err);

/* Once a second from the main loop: saves what each source's endpoint
 * answered and logs the refusal warning when due (see srcstat.h). */
void http_tick(struct http_server *s, long long now_ms);

/* Stops accepting and waits for requests in progress to be answered. */
void http_stop(struct http_server *s);

#endif
