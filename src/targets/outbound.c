/*
 * outbound: a thin layer over a reused libcurl easy handle.  Everything
 * that varies per request is set again each time (curl_easy_reset keeps
 * the connection cache and the DNS cache).
 *
 * libcurl is loaded with dlopen at the first request, not linked: with the
 * libraries it pulls in (GnuTLS, Kerberos, LDAP, SSH, RTMP: 28 of them) it
 * is 4.4 MB of resident memory that a runbridge with only redis and exec
 * actions never uses.
 */
#include "targets/outbound.h"

#include <ctype.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "core/buf.h"

#define BODY_MAX (64 * 1024)
#define LIBCURL  "libcurl.so.4"

/* The libcurl functions used here, as pointers filled by dlsym. */
/* clang-format off */
#define CURL_FUNCS(X)                                                        \
	X(global_init) X(easy_init) X(easy_cleanup) X(easy_reset)            \
	X(easy_setopt) X(easy_perform) X(easy_getinfo) X(easy_strerror)      \
	X(slist_append) X(slist_free_all) X(mime_init) X(mime_free)          \
	X(mime_addpart) X(mime_name) X(mime_data) X(mime_filename)           \
	X(mime_type) X(getdate)
/* clang-format on */

static struct {
#define X(f) __typeof__(curl_##f) *f;
	CURL_FUNCS(X)
#undef X
	char error[256]; /* empty when loaded */
} api;

static pthread_once_t api_once = PTHREAD_ONCE_INIT;

static void api_load(void)
{
	void *h = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL);

	if (!h) {
		snprintf(api.error, sizeof(api.error), "cannot load %s: %s", LIBCURL, dlerror());
		return;
	}
#define X(f)                                                             \
	if (!api.error[0] && !(*(void **)&api.f = dlsym(h, "curl_" #f))) \
		snprintf(api.error, sizeof(api.error), "%s has no curl_" #f, LIBCURL);
	CURL_FUNCS(X)
#undef X
	if (!api.error[0] && api.global_init(CURL_GLOBAL_DEFAULT) != 0)
		snprintf(api.error, sizeof(api.error), "cannot initialise libcurl");
}

struct outbound {
	CURL *curl; /* made at the first request */
};

int outbound_new(struct outbound **out, struct err *err)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : err_set(err, "out of memory");
}

void outbound_free(struct outbound *o)
{
	if (!o)
		return;
	if (o->curl)
		api.easy_cleanup(o->curl);
	free(o);
}

void outbound_resp_free(struct outbound_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

/* The first BODY_MAX bytes are kept, the rest read and dropped; out of
 * memory ends the transfer. */
struct sink {
	struct buf b;
	int cut;
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct sink *k = ctx;
	struct buf *b = &k->b;
	size_t len = size * n, keep = len;

	if (keep > buf_room(b)) {
		keep = buf_room(b);
		k->cut = 1;
	}
	if (keep && buf_add(b, data, keep) < 0)
		return 0;
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
			time_t t = api.getdate(p, NULL);
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
	h = api.slist_append(h, "Expect:");
	for (const char *const *p = req->headers; p && *p; p++)
		h = api.slist_append(h, *p);
	return h;
}

static curl_mime *mime_of(CURL *c, const struct outbound_req *req)
{
	curl_mime *m = api.mime_init(c);
	for (size_t i = 0; m && i < req->n_parts; i++) {
		const struct outbound_part *p = &req->parts[i];
		curl_mimepart *part = api.mime_addpart(m);
		api.mime_name(part, p->name);
		api.mime_data(part, p->data, p->len);
		if (p->filename)
			api.mime_filename(part, p->filename);
		if (p->content_type)
			api.mime_type(part, p->content_type);
	}
	return m;
}

int outbound_send(struct outbound *o, const struct outbound_req *req, struct outbound_resp *resp)
{
	struct curl_slist *h;
	curl_mime *mime = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct sink sink = { .cut = 0 };
	struct buf *body = &sink.b;

	memset(resp, 0, sizeof(*resp));
	buf_init(body, req->body_max ? req->body_max : BODY_MAX);
	resp->retry_after_ms = -1;
	pthread_once(&api_once, api_load);
	if (api.error[0]) {
		snprintf(resp->error, sizeof(resp->error), "%s", api.error);
		return -1;
	}
	if (!o->curl && !(o->curl = api.easy_init())) {
		snprintf(resp->error, sizeof(resp->error), "cannot create a libcurl handle");
		return -1;
	}
	CURL *c = o->curl;
	h = headers_of(req);
	api.easy_reset(c);
	api.easy_setopt(c, CURLOPT_URL, req->url);
	api.easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
	api.easy_setopt(c, CURLOPT_HTTPHEADER, h);
	api.easy_setopt(c, CURLOPT_USERAGENT, "runbridge/" RB_VERSION);
	api.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	api.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			req->connect_timeout_ms ? req->connect_timeout_ms : 5000L);
	api.easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : 20000L);
	api.easy_setopt(c, CURLOPT_SSL_VERIFYPEER, req->insecure ? 0L : 1L);
	api.easy_setopt(c, CURLOPT_SSL_VERIFYHOST, req->insecure ? 0L : 2L);
	api.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	api.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	api.easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	api.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	api.easy_setopt(c, CURLOPT_HEADERDATA, resp);
	api.easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	if (req->n_parts) {
		mime = mime_of(c, req);
		api.easy_setopt(c, CURLOPT_MIMEPOST, mime);
	} else if (req->body) {
		api.easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
		api.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	CURLcode rc = api.easy_perform(c);
	if (rc == CURLE_OK)
		api.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	else
		snprintf(resp->error, sizeof(resp->error), "%s",
			 errbuf[0] ? errbuf : api.easy_strerror(rc));
	api.mime_free(mime);
	api.slist_free_all(h);
	/* NULL when nothing came (outbound_describe and the targets test it) */
	if (body->len)
		resp->body = buf_detach(body, &resp->body_len);
	buf_free(body);
	resp->cut = sink.cut;
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
	case 504: return VERDICT_RETRY;
	case 500: return VERDICT_RETRY_FEW;
	default: return r->status >= 500 ? VERDICT_RETRY_FEW : VERDICT_PERMANENT;
	}
}

void outbound_describe(const struct outbound_resp *r, char *buf, size_t len)
{
	if (r->status == 0)
		snprintf(buf, len, "no response: %s", r->error);
	else
		snprintf(buf, len, "HTTP %ld%s%.400s", r->status, r->body_len ? ": " : "",
			 r->body ? r->body : "");
}
