/*
 * reply: how runbridge answers over HTTP, written once for the request
 * handlers (server.c) and the framing refusals (framing.c).
 *
 * Every answer is one write: status line, JSON content type, length,
 * Cache-Control: no-store, the caller's extra header lines, the body.  An
 * answer whose extra lines say "Connection: close" really closes: civetweb
 * reads the client's Connection header, not ours, and would otherwise keep
 * the socket (and read an unread body first).  Every answer also closes
 * while the worker pool is nearly full (pool.h), so that idle keep-alive
 * connections cannot hold every thread.
 */
#ifndef RB_HTTP_REPLY_H
#define RB_HTTP_REPLY_H

struct mg_connection;

/* The reason phrase of status ("Error" for one not listed). */
const char *http_reason(int status);

/* Writes the answer; extra is more header lines, each ending in \r\n, or
 * "".  Returns status (500 when out of memory: nothing was written). */
int http_reply(struct mg_connection *c, int status, const char *extra, const char *body);

/* Decides whether the answer being written closes its connection: ""
 * when it stays open or extra already says "Connection: close", else the
 * header line to add.  Either way a closing answer really closes. */
const char *http_reply_closing(struct mg_connection *c, const char *extra);

/* http_reply with {"error": msg} as the body (msg JSON-escaped). */
int http_reply_error(struct mg_connection *c, int status, const char *extra, const char *msg);

#endif
