/*
 * api: the operator JSON API under /api/v1 (README "Operator API"), on the
 * daemon's civetweb context.
 *
 * Every answer is JSON with API_SECURITY_HEADERS; errors are
 * {"error": "..."} with 400, 401, 404, 405 (and 503 when the store cannot
 * be read or too many streams are open).  Who may call it: api_auth.h.
 * Reads go through read-only store connections of a small pool
 * (api_query.h); the re-queueing of POST .../replay writes what `runbridge
 * replay` writes through the API's one writable connection, and the
 * dispatcher picks the jobs up within a second.  /rules and /route read
 * the acceptor's loaded rules (acceptor_with_rules).
 */
#ifndef RB_API_API_H
#define RB_API_API_H

#include <stddef.h>
#include <json-c/json.h>

#include "core/buf.h"

struct mg_connection;
struct mg_context;
struct acceptor;
struct config;
struct http_status;

/* Registers /api/v1/ on ctx.  cfg, status and acc (whose loaded rules
 * /rules and /route read; NULL: none) are borrowed for the server's
 * lifetime.  -1 when out of memory or randomness. */
int api_register(struct mg_context *ctx, const struct config *cfg, const struct http_status *status,
		 struct acceptor *acc);

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

/* A value that serializes as text, verbatim: JSON the store holds (which
 * json-c or SQLite wrote), put in an answer without parsing it into a
 * tree.  NULL (JSON null) for NULL text. */
json_object *api_raw_json(const char *text);

/*
 * A list answer, {"items": [...], "next_cursor": "..." | null}, written
 * item by item: each item is serialized and released as it is added, so a
 * page of 500 never exists as one tree (building and freeing that tree
 * was most of the CPU a large page cost).
 */
struct api_list {
	struct buf b;
	size_t n;
};
void api_list_begin(struct api_list *l);
/* Appends item (released; NULL is JSON null). */
void api_list_add(struct api_list *l, json_object *item);
/* Answers 200 with the list (next_cursor NULL: null) and frees it. */
int api_list_reply(struct mg_connection *c, struct api_list *l, const char *next_cursor);
/* Frees a list not answered with. */
void api_list_free(struct api_list *l);

/* Writes o as the answer (o is released). */
int api_reply_json(struct mg_connection *c, int status, json_object *o);
int api_reply_error(struct mg_connection *c, int status, const char *msg);

#endif
