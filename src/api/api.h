/*
 * api: the operator JSON API under /api/v1 (README "Operator API"), on the
 * daemon's civetweb context.
 *
 * Every answer is JSON with API_SECURITY_HEADERS; errors are
 * {"error": "..."} with 400, 401, 404, 405 (and 503 when the store cannot
 * be read or too many streams are open).  Who may call it: api_auth.h.
 * Reads go through read-only store connections of a small pool
 * (api_query.h); the re-queueing of POST .../replay writes through its own
 * connection, as `runbridge replay` does, and the dispatcher picks the
 * jobs up within a second.
 */
#ifndef RB_API_API_H
#define RB_API_API_H

#include <stddef.h>
#include <json-c/json.h>

struct mg_connection;
struct mg_context;
struct config;
struct http_status;

/* Registers /api/v1/ on ctx.  cfg and status are borrowed for the
 * server's lifetime.  -1 when out of memory or randomness. */
int api_register(struct mg_context *ctx, const struct config *cfg, const struct http_status *status);

/* Before mg_stop: ends the streams, then (after mg_stop) api_free. */
void api_stop(void);
void api_free(void);

/*
 * civetweb's begin_request for the whole server: paths under /api/ get
 * the framing checks (framing.h) but route by prefix; every other
 * path goes to framing_begin_request (exact paths).
 */
int api_begin_request(struct mg_connection *c);

/* ---- shared by the api modules ------------------------------------------ */

/* "2026-12-02T10:00:00.123Z" into out (at least 32 bytes). */
void api_iso(char *out, size_t len, long long ms);
/* That string, or null for ms <= 0. */
json_object *api_time(long long ms);
/* Parses an ISO 8601 UTC time ("2026-12-02T10:00:00Z", with or without
 * .mmm) or integer Unix milliseconds.  -1 when it is neither. */
int api_parse_time(const char *s, long long *out);

/* A JSON text of len bytes (depth 32), or NULL. */
json_object *api_parse_json(const char *body, size_t len);

/* Writes o as the answer (o is released). */
int api_reply_json(struct mg_connection *c, int status, json_object *o);
int api_reply_error(struct mg_connection *c, int status, const char *msg);

#endif
