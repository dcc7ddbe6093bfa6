/*
 * outbound: HTTP requests to target APIs, with libcurl.
 *
 * One `struct outbound` per worker thread: it keeps its curl handle, so
 * connections to the same host are reused.  Timeouts (connect and total)
 * are per request; TLS peers are verified unless a target turns it off.
 * Response bodies are kept up to 64 KiB (enough for every error message
 * the targets send) unless a request asks for more (a page of Qase
 * results).
 */
#ifndef RB_ACTIONS_OUTBOUND_H
#define RB_ACTIONS_OUTBOUND_H

#include <stddef.h>

#include "core/err.h"

struct outbound;

int outbound_new(struct outbound **out, struct err *err);
void outbound_free(struct outbound *o);

/* One part of a multipart/form-data body. */
struct outbound_part {
	const char *name;         /* form field name, e.g. "result[]" */
	const char *filename;     /* NULL for a plain field */
	const char *content_type; /* NULL: text/plain for fields */
	const char *data;
	size_t len;
};

struct outbound_req {
	const char *method; /* "GET", "POST", "PUT" */
	const char *url;
	const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
	const char *body;           /* sent as is (set Content-Type in headers) */
	size_t body_len;
	const struct outbound_part *parts; /* multipart/form-data instead of body */
	size_t n_parts;
	long connect_timeout_ms; /* 0: 5000 */
	long timeout_ms;         /* 0: 20000 */
	int insecure;            /* 1: do not verify the TLS peer */
	size_t body_max;         /* response bytes kept; 0: 64 KiB */
};

struct outbound_resp {
	long status; /* 0: no HTTP response (see error) */
	char *body;  /* malloc'd, NUL-terminated, may be cut */
	size_t body_len;
	long long retry_after_ms; /* from Retry-After (seconds or date); -1 absent */
	int cut;                  /* 1: the body was longer than body_max */
	char error[256];          /* transport error when status == 0 */
};

/* Sends req.  Returns 0 when an HTTP response arrived (whatever its
 * status), -1 on a transport error (refused, reset, timeout: resp->error). */
int outbound_send(struct outbound *o, const struct outbound_req *req, struct outbound_resp *resp);
void outbound_resp_free(struct outbound_resp *r);

/* How a target's answer should be treated (the retry policy of issue 4). */
enum outbound_verdict {
	VERDICT_OK,        /* 2xx */
	VERDICT_RETRY,     /* 429, 502, 503, 504, transport errors */
	VERDICT_RETRY_FEW, /* 500: a few retries only */
	VERDICT_PERMANENT, /* 400, 401, 403, 404 and other 4xx: dead letters now */
};
enum outbound_verdict outbound_classify(const struct outbound_resp *r);

/* "429 Too many requests: <body, cut>" or the transport error, for logs. */
void outbound_describe(const struct outbound_resp *r, char *buf, size_t len);

#endif
