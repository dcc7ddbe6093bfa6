/*
 * cw115_parse: civetweb 1.15's request-head parser, for the framing tests
 * (tests/unit/test_framing.c, tests/fuzz/fuzz_http.c), so that they feed
 * framing_check() exactly what the daemon's callbacks see.
 *
 * Copied from civetweb v1.15 src/civetweb.c (get_http_header_len,
 * skip_to_end_of_word_and_terminate, parse_http_headers, the method check
 * of parse_http_request, and the query split of handle_request step 1.1),
 * renamed and reformatted, logic unchanged.  civetweb is MIT licensed:
 * Copyright (c) 2013-2021 the Civetweb developers, (c) 2004-2013 Sergey
 * Lyubka.  Keep it in step with the civetweb the daemon links.
 */
#ifndef RB_TESTS_CW115_PARSE_H
#define RB_TESTS_CW115_PARSE_H

#include <ctype.h>
#include <string.h>
#include <civetweb.h>

static int cw115_header_len(const char *buf, int buflen)
{
	for (int i = 0; i < buflen; i++) {
		const unsigned char c = (unsigned char)buf[i];
		if ((c < 128) && ((char)c != '\r') && ((char)c != '\n') && !isprint(c))
			return -1;
		if (i < buflen - 1 && buf[i] == '\n' && buf[i + 1] == '\n')
			return i + 2;
		if (i < buflen - 3 && buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
		    buf[i + 3] == '\n')
			return i + 4;
	}
	return 0;
}

static int cw115_skip_word(char **ppw, int eol)
{
	while (isgraph((unsigned char)**ppw))
		(*ppw)++;
	if (eol) {
		if ((**ppw != '\r') && (**ppw != '\n'))
			return -1;
	} else if (**ppw != ' ') {
		return -1;
	}
	do {
		**ppw = 0;
		(*ppw)++;
	} while (isspace((unsigned char)**ppw));
	if (!eol && !isgraph((unsigned char)**ppw))
		return -1;
	return 1;
}

static int cw115_headers(char **buf, struct mg_header hdr[MG_MAX_HEADERS])
{
	int num_headers = 0;

	for (int i = 0; i < (int)MG_MAX_HEADERS; i++) {
		char *dp = *buf;
		while ((*dp != ':') && (*dp >= 33) && (*dp <= 126))
			dp++;
		if (dp == *buf)
			break;
		while (*dp == ' ') {
			*dp = 0;
			dp++;
		}
		if (*dp != ':')
			return -1;
		*dp = 0;
		hdr[i].name = *buf;
		do {
			dp++;
		} while ((*dp == ' ') || (*dp == '\t'));
		hdr[i].value = dp;
		while ((*dp != 0) && (*dp != '\r') && (*dp != '\n'))
			dp++;
		if (*dp == '\r') {
			*dp = 0;
			dp++;
			if (*dp != '\n')
				return -1;
		}
		num_headers = i + 1;
		if (*dp) {
			*dp = 0;
			dp++;
			*buf = dp;
			if ((dp[0] == '\r') || (dp[0] == '\n'))
				break;
		} else {
			*buf = dp;
			break;
		}
	}
	return num_headers;
}

static int cw115_method_known(const char *m)
{
	static const char *const known[] = {
		"GET",   "POST",     "PUT",   "DELETE", "HEAD",   "OPTIONS",   "CONNECT",
		"PATCH", "PROPFIND", "MKCOL", "LOCK",   "UNLOCK", "PROPPATCH", "REPORT",
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(known[i], m) == 0)
			return 1;
	return 0;
}

/*
 * Parses buf[0, len) (len <= cap, the buffer's size, as civetweb passes
 * its whole buffer) into ri as civetweb 1.15 does, then splits off the
 * query as handle_request does before begin_request.  Returns the head's
 * length, 0 when incomplete, -1 when civetweb refuses it (it answers 400
 * then, and the callbacks never see it).
 */
static int cw115_parse(char *buf, int len, struct mg_request_info *ri)
{
	int request_length, init_skip = 0;

	memset(ri, 0, sizeof(*ri));
	while ((len > 0) && isspace((unsigned char)*buf)) {
		buf++;
		len--;
		init_skip++;
	}
	if (len == 0)
		return 0;
	if (iscntrl((unsigned char)*buf))
		return -1;
	request_length = cw115_header_len(buf, len);
	if (request_length <= 0)
		return request_length;
	buf[request_length - 1] = '\0';
	if ((*buf == 0) || (*buf == '\r') || (*buf == '\n'))
		return -1;
	ri->request_method = buf;
	if (cw115_skip_word(&buf, 0) <= 0)
		return -1;
	ri->request_uri = buf;
	if (cw115_skip_word(&buf, 0) <= 0)
		return -1;
	ri->http_version = buf;
	if (cw115_skip_word(&buf, 1) <= 0)
		return -1;
	if (strncmp(ri->http_version, "HTTP/", 5) != 0)
		return -1;
	ri->http_version += 5;
	if (!cw115_method_known(ri->request_method))
		return -1;
	ri->num_headers = cw115_headers(&buf, ri->http_headers);
	if (ri->num_headers < 0)
		return -1;
	char *q = strchr(ri->request_uri, '?');
	if (q) {
		*q = '\0';
		ri->query_string = q + 1;
	}
	ri->local_uri_raw = ri->request_uri[0] == '/' ? ri->request_uri : NULL;
	return request_length + init_skip;
}

#endif
