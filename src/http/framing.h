/*
 * framing: refuses requests whose framing two HTTP parsers could read
 * differently (RFC 9112), so that nothing in front of runbridge can be
 * desynchronized from it, and routes only paths that match exactly.
 *
 * civetweb 1.15 parses the request head in place in its connection buffer
 * and hands the callbacks pointers into it (mg_request_info).  On the way it
 * loses what matters here: it stops at the 64th header, at an obs-fold line
 * or any line whose first byte is not a name character, and drops the rest
 * silently; it strips spaces before a colon; it reads Content-Length with
 * strtoll ("+5", "5abc", "0x10" and " -0" pass); the first of two
 * Content-Length or Host fields wins; Transfer-Encoding beats
 * Content-Length.  framing_check() finds each of these from the parsed
 * request, reading the header block through the pointers civetweb gives:
 * the bytes between a name and its value, and the line ends that civetweb
 * overwrote with NULs (see framing.c for what each pattern means).  That
 * layout is civetweb 1.15's (Debian 12); tests/integration/test_framing.py
 * runs against the real library, so a change of layout fails the tests.
 *
 * What can only be answered from a callback is answered here too:
 * framing_begin_request() (civetweb's begin_request) refuses badly framed
 * requests and unknown paths before civetweb routes them;
 * framing_http_error() turns civetweb's own refusals (a malformed head,
 * HTTP/2.0) into JSON answers; framing_connection_close() answers the
 * requests civetweb closes silently (absolute-form targets of another
 * host, "*").  Every refusal here closes the connection.
 */
#ifndef RB_HTTP_FRAMING_H
#define RB_HTTP_FRAMING_H

#include <stddef.h>

struct mg_connection;
struct mg_request_info;

/* What framing_check() decided: status 0 (well framed) or the status to
 * refuse with (400, 431, 505) and a constant reason without quotes. */
struct framing_verdict {
	int status;
	const char *reason;
};

/* The exact paths that route, and the header limit.  Its address is the
 * civetweb context's user_data (mg_init_data.user_data). */
struct framing;

/* Paths are copied.  -1 when out of memory. */
int framing_new(struct framing **out, size_t max_header_bytes);
int framing_add_path(struct framing *f, const char *path);
void framing_free(struct framing *f);

/* Requests get 503 ("starting", connection closed) until this is called:
 * civetweb serves from mg_start on, before the handlers are registered,
 * and an early delivery must not read as "no such path". */
void framing_set_ready(struct framing *f);

/* Before framing_set_ready: answers that 503 and returns 503; else 0.
 * framing_begin_request does it; other begin_request hooks call it too. */
int framing_refuse_starting(struct mg_connection *c);

/* civetweb's buffer must hold more than max_header_bytes so that a head
 * between the two is parsed and refused with 431 here, not cut off as
 * malformed (civetweb answers a head that fills its buffer with 400). */
size_t framing_civetweb_buffer(size_t max_header_bytes);

/* Decides on a request as civetweb 1.15 parsed it (in place: NULs where
 * it ended names, values and lines) and after civetweb split off the
 * query string.  Reads only the request head. */
void framing_check(struct framing_verdict *out, const struct mg_request_info *ri,
		   size_t max_header_bytes);

/* 1 when the request's path, as sent (not percent-decoded, no dot
 * segments removed, any case), is exactly path.  Needs civetweb's
 * decode_url=no. */
int framing_path_is(const struct mg_request_info *ri, const char *path);

/* mg_callbacks.begin_request: 0 to let civetweb route the request, or the
 * status already answered. */
int framing_begin_request(struct mg_connection *c);

/* mg_callbacks.http_error: answers civetweb's own refusals (0: handled). */
int framing_http_error(struct mg_connection *c, int status, const char *msg);

/* mg_callbacks.connection_close: answers a parsed request that civetweb
 * is closing without an answer. */
void framing_connection_close(const struct mg_connection *c);

#endif
