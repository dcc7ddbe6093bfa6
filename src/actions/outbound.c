/*
 * outbound: a thin layer over a reused libcurl easy handle.  Everything
 * that varies per request is set again each time (curl_easy_reset keeps
 * the connection cache and the DNS cache).
 */
#include "actions/outbound.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#define BODY_MAX (64 * 1024)

struct outbound {
	CURL *curl;
};

int outbound_new(struct outbound **out, struct err *err)
{
	static int inited;
	struct outbound *o;

	*out = NULL;
	/* Called from the main thread before workers start (dispatch_start). */
	if (!inited && curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return err_set(err, "cannot initialise libcurl");
	inited = 1;
	o = calloc(1, sizeof(*o));
	if (!o || !(o->curl = curl_easy_init())) {
		free(o);
		return err_set(err, "cannot create a libcurl handle");
	}
	*out = o;
	return 0;
}

void outbound_free(struct outbound *o)
{
	if (!o)
		return;
	curl_easy_cleanup(o->curl);
	free(o);
}

void outbound_resp_free(struct outbound_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct outbound_resp *r = ctx;
	size_t len = size * n, keep = len;

	if (r->body_len + keep > BODY_MAX)
		keep = BODY_MAX - r->body_len;
	if (keep) {
		char *b = realloc(r->body, r->body_len + keep + 1);
		if (!b)
			return 0;
		memcpy(b + r->body_len, data, keep);
		r->body = b;
		r->body_len += keep;
		r->body[r->body_len] = '\0';
	}
	return len;
}

/* Retry-After: delay-seconds or an HTTP date. */
static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	struct outbound_resp *r = ctx;
	size_t len = size * n;
	static const char name[] = "retry-after:";

	if (len > sizeof(name) && strncasecmp(data, name, sizeof(name) - 1) == 0) {
		char v[64];
		size_t vl = len - (sizeof(name) - 1);
		if (vl >= sizeof(v))
			vl = sizeof(v) - 1;
		memcpy(v, data + sizeof(name) - 1, vl);
		v[vl] = '\0';
		char *p = v;
		while (isspace((unsigned char)*p))
			p++;
		if (isdigit((unsigned char)*p)) {
			r->retry_after_ms = strtoll(p, NULL, 10) * 1000;
		} else {
			time_t t = curl_getdate(p, NULL);
			time_t now = time(NULL);
			if (t > 0)
				r->retry_after_ms = t > now ? (long long)(t - now) * 1000 : 0;
		}
	}
	return len;
}

static struct curl_slist *headers_of(const struct outbound_req *req)
{
	struct curl_slist *h = NULL;

	/* No "Expect: 100-continue" round trip for bodies. */
	h = curl_slist_append(h, "Expect:");
	for (const char *const *p = req->headers; p && *p; p++)
		h = curl_slist_append(h, *p);
	return h;
}

static curl_mime *mime_of(CURL *c, const struct outbound_req *req)
{
	curl_mime *m = curl_mime_init(c);
	for (size_t i = 0; m && i < req->n_parts; i++) {
		const struct outbound_part *p = &req->parts[i];
		curl_mimepart *part = curl_mime_addpart(m);
		curl_mime_name(part, p->name);
		curl_mime_data(part, p->data, p->len);
		if (p->filename)
			curl_mime_filename(part, p->filename);
		if (p->content_type)
			curl_mime_type(part, p->content_type);
	}
	return m;
}

int outbound_send(struct outbound *o, const struct outbound_req *req,
		  struct outbound_resp *resp)
{
	CURL *c = o->curl;
	struct curl_slist *h = headers_of(req);
	curl_mime *mime = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";

	memset(resp, 0, sizeof(*resp));
	resp->retry_after_ms = -1;
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, req->url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "runbridge/" RB_VERSION);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 req->connect_timeout_ms ? req->connect_timeout_ms : 5000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : 20000L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, req->insecure ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, req->insecure ? 0L : 2L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (req->n_parts) {
		mime = mime_of(c, req);
		curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
	} else if (req->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	else
		snprintf(resp->error, sizeof(resp->error), "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
	curl_mime_free(mime);
	curl_slist_free_all(h);
	return rc == CURLE_OK ? 0 : -1;
}

enum outbound_verdict outbound_classify(const struct outbound_resp *r)
{
	if (r->status == 0)
		return VERDICT_RETRY;
	if (r->status >= 200 && r->status < 300)
		return VERDICT_OK;
	switch (r->status) {
	case 408:
	case 425:
	case 429:
	case 502:
	case 503:
	case 504:
		return VERDICT_RETRY;
	case 500:
		return VERDICT_RETRY_FEW;
	default:
		return r->status >= 500 ? VERDICT_RETRY_FEW : VERDICT_PERMANENT;
	}
}

void outbound_describe(const struct outbound_resp *r, char *buf, size_t len)
{
	if (r->status == 0)
		snprintf(buf, len, "no response: %s", r->error);
	else
		snprintf(buf, len, "HTTP %ld%s%.400s", r->status,
			 r->body_len ? ": " : "", r->body ? r->body : "");
}
