/*
 * framing: RFC 9112 framing checks on civetweb 1.15's parsed request head,
 * exact path routing, and the answers civetweb would not give (framing.h).
 *
 * How civetweb 1.15 leaves its buffer (src/civetweb.c, parse_http_request
 * and parse_http_headers), which the checks below read:
 *
 *   "POST /p HTTP/1.1\r\nName: value\r\nLast: v\r\n\r\n"
 *     method, target and version are NUL-terminated where their single
 *     space or line end was; every whitespace byte after the version is
 *     overwritten with NUL up to the first header name.
 *   "Name: value\r\n"  the colon (and any spaces before it) become NUL;
 *     the value starts after the spaces and tabs that follow; its CR and
 *     LF become NUL.  A bare LF line end leaves one NUL, not two.
 *   the last LF of the head (request_len - 1) is NUL.
 *
 * So after the last parsed value v (length L) a complete head reads
 * v[L] = v[L+1] = 0, v[L+2] = '\r', v[L+3] = 0.  Anything else means
 * civetweb stopped before the blank line (the 65th header, an obs-fold
 * line, a line starting with ':' or a byte outside 33..126) and the lines
 * after it were dropped, or a line ended in a bare LF.
 */
#include "http/framing.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <civetweb.h>

#include "core/unconst.h"
#include "http/reply.h"

struct framing {
	size_t max_header_bytes;
	char **paths;
	size_t n_paths;
	_Atomic int ready; /* the handlers are registered */
};

/* The connection's user data once civetweb answered it with an error: the
 * close callback must not answer a second time. */
static const char answered_marker = 1;

int framing_new(struct framing **out, size_t max_header_bytes)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return -1;
	(*out)->max_header_bytes = max_header_bytes;
	return 0;
}

int framing_add_path(struct framing *f, const char *path)
{
	char **p = realloc(f->paths, (f->n_paths + 1) * sizeof(*p));
	if (!p)
		return -1;
	f->paths = p;
	if (!(p[f->n_paths] = strdup(path)))
		return -1;
	f->n_paths++;
	return 0;
}

void framing_free(struct framing *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_paths; i++)
		free(f->paths[i]);
	free(f->paths);
	free(f);
}

size_t framing_civetweb_buffer(size_t max_header_bytes)
{
	return 2 * max_header_bytes;
}

static int refuse(struct framing_verdict *out, int status, const char *reason)
{
	out->status = status;
	out->reason = reason;
	return -1;
}

/* RFC 9110 5.6.2: tchar */
static int is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* The request line: one space between its three parts, "HTTP/1.0" or
 * "HTTP/1.1", and an origin-form target. */
static int check_request_line(struct framing_verdict *out, const struct mg_request_info *ri)
{
	const char *uri_end = ri->query_string ? ri->query_string + strlen(ri->query_string)
					       : ri->request_uri + strlen(ri->request_uri);

	if (ri->request_uri != ri->request_method + strlen(ri->request_method) + 1 ||
	    ri->http_version - 5 != uri_end + 1)
		return refuse(out, 400, "request line must be method SP target SP version");
	if (strcmp(ri->http_version, "1.1") != 0 && strcmp(ri->http_version, "1.0") != 0)
		return refuse(out, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
	if (ri->request_uri[0] != '/')
		return refuse(out, 400, "request target must be a path (origin-form)");
	return 0;
}

/* One field line: a token name, a colon right after it, a CRLF line end
 * (next is where the following name starts). */
static int check_field(struct framing_verdict *out, const struct mg_header *h, const char *next)
{
	size_t nlen = strlen(h->name), vlen = strlen(h->value);

	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)h->name[i]))
			return refuse(out, 400, "header field name is not a token");
	/* the colon was at name[nlen]; a NUL after it that the value does not
	 * start at was a space before the colon */
	if (h->name[nlen + 1] == '\0' && h->value != h->name + nlen + 1)
		return refuse(out, 400, "whitespace between header field name and colon");
	if (next != h->value + vlen + 2)
		return refuse(out, 400, "header lines must end in CRLF");
	return 0;
}

/* Every line civetweb parsed, and that it parsed up to the blank line. */
static int check_head(struct framing_verdict *out, const struct mg_request_info *ri,
		      size_t max_header_bytes)
{
	const char *vend = ri->http_version + strlen(ri->http_version);
	int n = ri->num_headers;

	if (n >= MG_MAX_HEADERS)
		return refuse(out, 431, "too many header fields");
	if (n == 0)
		return 0; /* nothing to drop framing from; the caller closes */
	if (ri->http_headers[0].name != vend + 2)
		return refuse(out, 400, "request line must end in CRLF, headers follow at once");
	for (int i = 0; i < n - 1; i++)
		if (check_field(out, &ri->http_headers[i], ri->http_headers[i + 1].name) < 0)
			return -1;
	const char *v = ri->http_headers[n - 1].value;
	size_t len = strlen(v);
	if (check_field(out, &ri->http_headers[n - 1], v + len + 2) < 0)
		return -1;
	/* Size first: the head is at least this long.  Then v[len] and
	 * v[len + 1], inside the head (the line's CR LF, or a bare LF and the
	 * head's last LF).  v[len + 3] is read only after v[len + 2] was a CR,
	 * which the head's last LF follows.  v[len + 2] itself is past the head
	 * only after a bare-LF last line ("v\n\n"): the first body byte, or one
	 * past civetweb's buffer if leading whitespace and the head fill it
	 * exactly (docs/reliability.md, "Request framing"). */
	if ((size_t)(v + len + 4 - ri->request_method) > max_header_bytes)
		return refuse(out, 431, "request header larger than http.max_header_bytes");
	if (v[len + 1] != '\0' || v[len + 2] != '\r' || v[len + 3] != '\0')
		return refuse(out, 400,
			      "header block not parsed to its end "
			      "(obs-fold, a line without a field name, or a bare LF)");
	return 0;
}

/* "1*DIGIT" with optional whitespace around it; -1 when it is not one. */
static long long parse_length(const char *s, const char *end)
{
	long long n = 0;

	while (s < end && is_ows(*s))
		s++;
	while (end > s && is_ows(end[-1]))
		end--;
	if (s == end)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n > (LLONG_MAX - 9) / 10 ? LLONG_MAX : n * 10 + (*s - '0');
	}
	return n;
}

/* Every Content-Length field, each a list: all elements digits and the
 * same number (RFC 9112 6.3 item 5). */
static int content_lengths_agree(const struct mg_request_info *ri)
{
	long long seen = -1;

	for (int i = 0; i < ri->num_headers; i++) {
		if (strcasecmp(ri->http_headers[i].name, "Content-Length") != 0)
			continue;
		const char *p = ri->http_headers[i].value;
		for (;;) {
			const char *comma = strchr(p, ',');
			const char *end = comma ? comma : p + strlen(p);
			long long n = parse_length(p, end);
			if (n < 0 || (seen >= 0 && n != seen))
				return 0;
			seen = n;
			if (!comma)
				break;
			p = comma + 1;
		}
	}
	return 1;
}

static int count_fields(const struct mg_request_info *ri, const char *name, const char **first)
{
	int count = 0;

	*first = NULL;
	for (int i = 0; i < ri->num_headers; i++)
		if (strcasecmp(ri->http_headers[i].name, name) == 0 && count++ == 0)
			*first = ri->http_headers[i].value;
	return count;
}

static int is_chunked(const char *v)
{
	size_t len = strlen(v);

	while (len > 0 && is_ows(v[len - 1]))
		len--;
	return len == 7 && strncasecmp(v, "chunked", 7) == 0;
}

static int valid_host(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v <= ' ' || (unsigned char)*v >= 127 ||
		    strchr("/?#@\\\"<>{}|^`", *v))
			return 0;
	return 1;
}

/* Host, Content-Length and Transfer-Encoding: one reading only. */
static int check_fields(struct framing_verdict *out, const struct mg_request_info *ri)
{
	const char *host, *te, *cl;
	int hosts = count_fields(ri, "Host", &host);
	int tes = count_fields(ri, "Transfer-Encoding", &te);
	int cls = count_fields(ri, "Content-Length", &cl);
	int v11 = strcmp(ri->http_version, "1.1") == 0;

	if (hosts > 1 || (v11 && hosts == 0) || (host && !valid_host(host)))
		return refuse(out, 400, "HTTP/1.1 needs exactly one valid Host header");
	if (tes && cls)
		return refuse(out, 400, "both Content-Length and Transfer-Encoding");
	if (tes && (!v11 || tes > 1 || !is_chunked(te)))
		return refuse(out, 400, "Transfer-Encoding must be one \"chunked\" (HTTP/1.1)");
	if (cls && !content_lengths_agree(ri))
		return refuse(out, 400, "Content-Length must be one decimal number");
	return 0;
}

void framing_check(struct framing_verdict *out, const struct mg_request_info *ri,
		   size_t max_header_bytes)
{
	out->status = 0;
	out->reason = NULL;
	if (!ri->request_method || !ri->request_uri || !ri->http_version) {
		refuse(out, 400, "malformed request");
		return;
	}
	if (check_request_line(out, ri) < 0 || check_head(out, ri, max_header_bytes) < 0)
		return;
	check_fields(out, ri);
}

int framing_path_is(const struct mg_request_info *ri, const char *path)
{
	return ri->local_uri_raw && strcmp(ri->local_uri_raw, path) == 0;
}

/* Refusals close; reason is one of this file's constants. */
static int answer(struct mg_connection *c, int status, const char *reason, int close)
{
	return http_reply_error(c, status, close ? "Connection: close\r\n" : "", reason);
}

void framing_set_ready(struct framing *f)
{
	atomic_store(&f->ready, 1);
}

int framing_refuse_starting(struct mg_connection *c)
{
	const struct framing *f = mg_get_request_info(c)->user_data;

	if (atomic_load(&f->ready))
		return 0;
	return http_reply_error(c, 503, "Connection: close\r\nRetry-After: 1\r\n", "starting");
}

int framing_begin_request(struct mg_connection *c)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	const struct framing *f = ri->user_data;
	struct framing_verdict v;

	framing_check(&v, ri, f->max_header_bytes);
	if (v.status)
		return answer(c, v.status, v.reason, 1);
	int starting = framing_refuse_starting(c);
	if (starting)
		return starting;
	if (ri->num_headers == 0)
		/* nothing parsed tells whether header lines were dropped: no
		 * second request on this connection */
		mg_disable_connection_keep_alive(c);
	for (size_t i = 0; i < f->n_paths; i++)
		if (framing_path_is(ri, f->paths[i]))
			return 0;
	return answer(c, 404, "no such path", 0);
}

int framing_http_error(struct mg_connection *c, int status, const char *msg)
{
	const char *reason = "malformed request (or a header block over twice "
			     "http.max_header_bytes)";
	(void)msg; /* civetweb's wording, which can quote the request */

	if (status == 413) {
		status = 431;
		reason = "request header larger than http.max_header_bytes";
	} else if (status == 411) {
		status = 400;
		reason = "Content-Length must be one decimal number";
	} else if (status == 505) {
		reason = "only HTTP/1.0 and HTTP/1.1 are supported";
	} else if (status != 400) {
		reason = "request refused";
	}
	mg_set_user_connection_data(c, RB_UNCONST(&answered_marker));
	answer(c, status, reason, 1);
	return 0;
}

void framing_connection_close(const struct mg_connection *c)
{
	const struct mg_request_info *ri = mg_get_request_info(c);

	/* A request was parsed, civetweb found no local path for it (an
	 * absolute-form target naming another host, or "*") and it was not
	 * answered with an error: civetweb closes such a connection silently. */
	if (!ri || !ri->request_method || !ri->http_version || ri->local_uri ||
	    mg_get_user_connection_data(c) == &answered_marker)
		return;
	answer(RB_UNCONST(c), 400, "request target must be a path (origin-form)", 1);
}
