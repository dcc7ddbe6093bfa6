/*
 * action_http: the http action kind.  Parsing and rendering a rule's
 * `http:` node, and sending stored params with outbound.
 *
 * The JSON guarantee is split between load and render: at load the body
 * with every placeholder read as x must parse (strict json-c), which puts
 * each placeholder inside a string literal or a key; at render TMPL_JSON
 * escapes every value for exactly that place.  The rendered body is
 * therefore valid JSON without being parsed again.
 *
 * Params are the only input at run time (the rule may have been reloaded
 * since the job was queued), so they are checked again there.
 */
#include "actions/action_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rules/template.h"

static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE" };
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

/* Headers outbound (libcurl) computes from the body itself. */
static const char *const reserved_headers[] = { "Content-Length", "Transfer-Encoding" };

struct http_header {
	char *name;
	struct tmpl *value;
};

struct http_spec {
	struct tmpl *url;
	const char *method; /* one of methods[] */
	struct http_header *headers;
	size_t nheaders;
	struct tmpl *body;                /* NULL: no body */
	const struct cfg_node *body_node; /* for messages; during parse only */
	long long timeout_s;
	int json; /* -1 until set or defaulted */
};

static void http_free_spec(void *p)
{
	struct http_spec *s = p;
	if (!s)
		return;
	tmpl_free(s->url);
	for (size_t i = 0; i < s->nheaders; i++) {
		free(s->headers[i].name);
		tmpl_free(s->headers[i].value);
	}
	free(s->headers);
	tmpl_free(s->body);
	free(s);
}

/* ---- shared checks --------------------------------------------------------- */

static int method_index(const char *m)
{
	for (size_t i = 0; i < NMETHODS; i++)
		if (strcasecmp(m, methods[i]) == 0)
			return (int)i;
	return -1;
}

/* An RFC 9110 token. */
static int header_name_valid(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
			return 0;
	return 1;
}

static int header_reserved(const char *s)
{
	for (size_t i = 0; i < sizeof(reserved_headers) / sizeof(*reserved_headers); i++)
		if (strcasecmp(s, reserved_headers[i]) == 0)
			return 1;
	return 0;
}

static int url_scheme_ok(const char *s)
{
	return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

/* ---- parse ----------------------------------------------------------------- */

/* url: compiled with each placeholder's place in the URL (tmpl_compile_url). */
static int compile(struct tmpl **out, const struct cfg_node *v, const char *what, int url,
		   struct errlist *errs)
{
	char where[300];
	struct err e;

	if (v->type != CFG_SCALAR)
		return errlist_add(errs, "%s: http: %s must be a string, not %s",
				   cfg_where(v, where, sizeof(where)), what, cfg_type_name(v));
	if ((url ? tmpl_compile_url : tmpl_compile)(out, v->value, &e) < 0)
		return errlist_add(errs, "%s: http: %s: %s", cfg_where(v, where, sizeof(where)),
				   what, e.msg);
	return 0;
}

static int parse_url(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct http_spec *s = spec;
	char where[300];

	/* The scheme and host are literal (tmpl_compile_url refuses a
	 * placeholder before the path), so they are checked here, once. */
	if (compile(&s->url, v, "url", 1, errs) < 0)
		return -1;
	if (!url_scheme_ok(v->value))
		return errlist_add(errs, "%s: http: url must start with http:// or https://",
				   cfg_where(v, where, sizeof(where)));
	return 0;
}

static int parse_method(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct http_spec *s = spec;
	char where[300];
	int i = v->type == CFG_SCALAR ? method_index(v->value) : -1;

	if (i < 0)
		return errlist_add(errs,
				   "%s: http: method must be one of GET, POST, PUT, PATCH, DELETE",
				   cfg_where(v, where, sizeof(where)));
	s->method = methods[i];
	return 0;
}

static int parse_header(struct http_spec *s, const struct cfg_node *map, size_t i,
			struct errlist *errs)
{
	const struct cfg_node *k = map->keys[i];
	char where[300], what[300];
	struct http_header *h = &s->headers[s->nheaders];

	if (!header_name_valid(k->value))
		return errlist_add(errs, "%s: http: header name '%s' is not valid",
				   cfg_where(k, where, sizeof(where)), k->value);
	if (header_reserved(k->value))
		return errlist_add(errs, "%s: http: header '%s' is set by runbridge",
				   cfg_where(k, where, sizeof(where)), k->value);
	for (size_t j = 0; j < i; j++)
		if (strcasecmp(map->keys[j]->value, k->value) == 0)
			return errlist_add(errs, "%s: http: header '%s' appears twice",
					   cfg_where(k, where, sizeof(where)), k->value);
	snprintf(what, sizeof(what), "header %s", k->value);
	if (compile(&h->value, map->items[i], what, 0, errs) < 0)
		return -1;
	if (!(h->name = strdup(k->value))) {
		tmpl_free(h->value);
		return errlist_add(errs, "out of memory");
	}
	s->nheaders++;
	return 0;
}

static int parse_headers(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct http_spec *s = spec;
	char where[300];
	int bad = 0;

	if (cfg_scalar_is_null(v) == 0)
		return 0;
	if (v->type != CFG_MAP)
		return errlist_add(errs, "%s: http: headers must be a map of Name: value",
				   cfg_where(v, where, sizeof(where)));
	if (v->n > HTTP_HEADERS_MAX)
		return errlist_add(errs, "%s: http: at most %d headers",
				   cfg_where(v, where, sizeof(where)), HTTP_HEADERS_MAX);
	s->headers = calloc(v->n ? v->n : 1, sizeof(*s->headers));
	if (!s->headers)
		return errlist_add(errs, "out of memory");
	for (size_t i = 0; i < v->n; i++)
		if (parse_header(s, v, i, errs) < 0)
			bad = -1;
	return bad;
}

static int parse_body(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct http_spec *s = spec;
	if (cfg_scalar_is_null(v) == 0)
		return 0;
	s->body_node = v;
	return compile(&s->body, v, "body", 0, errs);
}

static int parse_timeout(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct http_spec *s = spec;
	char where[300];

	if (cfg_scalar_int(v, &s->timeout_s) < 0 || s->timeout_s < 1 ||
	    s->timeout_s > HTTP_TIMEOUT_MAX)
		return errlist_add(
			errs, "%s: http: timeout_s must be a whole number of seconds from 1 to %d",
			cfg_where(v, where, sizeof(where)), HTTP_TIMEOUT_MAX);
	return 0;
}

static int parse_json(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct http_spec *s = spec;
	char where[300];

	if (cfg_scalar_bool(v, &s->json) < 0)
		return errlist_add(errs, "%s: http: json must be true or false",
				   cfg_where(v, where, sizeof(where)));
	return 0;
}

/* One row per key; the order is the order in "expected ..." messages. */
static const struct cfg_key http_keys[] = {
	{ "url", parse_url },   { "method", parse_method },     { "headers", parse_headers },
	{ "body", parse_body }, { "timeout_s", parse_timeout }, { "json", parse_json },
};

#define HTTP_NKEYS (sizeof(http_keys) / sizeof(http_keys[0]))

/* The Content-Type header's template, or NULL. */
static const struct tmpl *content_type(const struct http_spec *s)
{
	for (size_t i = 0; i < s->nheaders; i++)
		if (strcasecmp(s->headers[i].name, "Content-Type") == 0)
			return s->headers[i].value;
	return NULL;
}

static int json_default(const struct http_spec *s)
{
	const struct tmpl *ct = content_type(s);
	const char *b;

	if (ct)
		return strcasestr(tmpl_source(ct), "json") != NULL;
	if (!s->body)
		return 0;
	for (b = tmpl_source(s->body); *b == ' ' || *b == '\t' || *b == '\n' || *b == '\r'; b++)
		;
	return *b == '{' || *b == '[';
}

/* 0 when text is exactly one JSON value (strict); else -1, *at the byte
 * offset json-c stopped at and *why its message. */
static int json_valid(const char *text, size_t *at, const char **why)
{
	struct json_tokener *tok = json_tokener_new();
	size_t len = strlen(text);
	json_object *o;
	enum json_tokener_error e;

	if (!tok) {
		*why = "out of memory";
		*at = 0;
		return -1;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len + 1); /* the NUL ends numbers */
	e = json_tokener_get_error(tok);
	*at = json_tokener_get_parse_end(tok);
	json_object_put(o);
	json_tokener_free(tok);
	if (e == json_tokener_success && *at >= len)
		return 0;
	*why = e == json_tokener_success    ? "text after the JSON value"
	       : e == json_tokener_continue ? "the JSON value is not complete"
					    : json_tokener_error_desc(e);
	if (*at > len)
		*at = len;
	return -1;
}

/* The probes of the body check: each list once, then every list empty,
 * then every list of two items (a section around "x" without a separator
 * passes the first and fails the last); the last two also show every
 * {{^section}}, so each literal is read at least once. */
static const struct {
	unsigned reps;
	int inverted;
	const char *how;
} body_probes[] = {
	{ 1, 0, "reading each {{...}} as x" },
	{ 0, 1, "reading each {{...}} as x and each {{#section}} as empty" },
	{ 2, 1,
	  "reading each {{...}} as x, each {{#section}} as two items and each {{^section}} as shown" },
};

/* -1 and a message when the body's probe for reps is not valid JSON. */
static int check_json_probe(const struct http_spec *s, size_t k, struct errlist *errs)
{
	char where[300], *probe;
	const char *src = tmpl_source(s->body), *why = NULL;
	size_t at = 0, *map;
	struct err e = { 0 };
	int line = 1, col = 1, rc = 0;

	cfg_where(s->body_node, where, sizeof(where));
	if (tmpl_probe(s->body, body_probes[k].reps, body_probes[k].inverted, &probe, &map, &e) < 0)
		return errlist_add(errs, "%s: http: body: %s", where, e.msg);
	if (json_valid(probe, &at, &why) < 0) {
		at = map[at];
		for (size_t i = 0; i < at; i++, col++)
			if (src[i] == '\n')
				line++, col = 0;
		rc = errlist_add(
			errs,
			"%s: http: body is not valid JSON (%s at line %d, column %d of the body, %s): put placeholders inside strings, or set json: false",
			where, why, line, col, body_probes[k].how);
	}
	free(probe);
	free(map);
	return rc;
}

static int check_json_body(const struct http_spec *s, struct errlist *errs)
{
	for (size_t k = 0; k < sizeof(body_probes) / sizeof(body_probes[0]); k++)
		if (check_json_probe(s, k, errs) < 0)
			return -1;
	return 0;
}

static int http_check(struct http_spec *s, const struct cfg_node *node, unsigned seen,
		      struct errlist *errs)
{
	char where[300];

	if (!(seen & 1u))
		return errlist_add(errs, "%s: http: url is required",
				   cfg_where(node, where, sizeof(where)));
	if (s->body && strcmp(s->method, "GET") == 0)
		return errlist_add(errs, "%s: http: a GET sends no body; use POST, PUT or PATCH",
				   cfg_where(s->body_node, where, sizeof(where)));
	if (s->json < 0)
		s->json = json_default(s);
	if (s->json && s->body)
		return check_json_body(s, errs);
	return 0;
}

static int http_parse(void **out, const struct cfg_node *node, struct errlist *errs)
{
	char where[300];
	struct http_spec *s;
	unsigned seen = 0;
	int bad = 0;

	*out = NULL;
	if (node->type != CFG_MAP)
		return errlist_add(
			errs,
			"%s: http: expected a map like { url: \"https://...\", body: '{\"text\": \"{{run.title}}\"}' }",
			cfg_where(node, where, sizeof(where)));
	s = calloc(1, sizeof(*s));
	if (!s)
		return errlist_add(errs, "out of memory");
	s->method = "POST";
	s->timeout_s = HTTP_TIMEOUT_DEFAULT;
	s->json = -1;
	if (cfg_parse_keys(s, node, http_keys, HTTP_NKEYS, "http", &seen, errs) < 0)
		bad = -1;
	if (!bad && http_check(s, node, seen, errs) < 0)
		bad = -1;
	if (bad) {
		http_free_spec(s);
		return -1;
	}
	s->body_node = NULL; /* the document is freed after loading */
	*out = s;
	return 0;
}

/* ---- render ------------------------------------------------------------------ */

/* Control characters would end the header line: spaces instead. */
static void header_clean(char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x20 || *v == 0x7f)
			*v = ' ';
}

static int add_str(json_object *o, const char *key, const char *v)
{
	json_object *s = json_object_new_string(v);

	if (!s || json_object_object_add(o, key, s) < 0) {
		json_object_put(s);
		return -1;
	}
	return 0;
}

static int render_headers(json_object *params, const struct http_spec *s, json_object *event)
{
	json_object *h = json_object_new_object();

	if (!h || json_object_object_add(params, "headers", h) < 0) {
		json_object_put(h);
		return -1;
	}
	for (size_t i = 0; i < s->nheaders; i++) {
		char *v = tmpl_render(s->headers[i].value, event, TMPL_RAW, HTTP_HEADER_VALUE_MAX);
		int rc;
		if (!v)
			return -1;
		header_clean(v);
		rc = add_str(h, s->headers[i].name, v);
		free(v);
		if (rc < 0)
			return -1;
	}
	if (s->body && !content_type(s))
		return add_str(h, "Content-Type",
			       s->json ? "application/json" : "text/plain; charset=utf-8");
	return 0;
}

/* The body, or null and "error" when it rendered over HTTP_BODY_MAX (a
 * render error would refuse the whole delivery). */
static int render_body(json_object *params, const struct http_spec *s, json_object *event)
{
	char *b, msg[128];
	int rc;

	if (!s->body)
		return json_object_object_add(params, "body", NULL);
	/* A cut rendering ends within 6 bytes of its cap: one over the limit
	 * by more than that tells "too big" from "fits". */
	b = tmpl_render(s->body, event, s->json ? TMPL_JSON : TMPL_RAW, HTTP_BODY_MAX + 8);
	if (!b)
		return -1;
	if (strlen(b) <= HTTP_BODY_MAX) {
		rc = add_str(params, "body", b);
	} else {
		snprintf(msg, sizeof(msg), "the rendered body is over %d bytes", HTTP_BODY_MAX);
		rc = json_object_object_add(params, "body", NULL) < 0
			     ? -1
			     : add_str(params, "error", msg);
	}
	free(b);
	return rc;
}

static int http_render(json_object **out, const void *spec, json_object *event, struct err *err)
{
	const struct http_spec *s = spec;
	json_object *o = json_object_new_object(), *t = NULL;
	char *url = NULL;

	*out = NULL;
	if (!o || !(url = tmpl_render(s->url, event, TMPL_URL, HTTP_URL_MAX)) ||
	    add_str(o, "url", url) < 0 || add_str(o, "method", s->method) < 0 ||
	    render_headers(o, s, event) < 0 || render_body(o, s, event) < 0)
		goto oom;
	t = json_object_new_int64(s->timeout_s);
	if (!t || json_object_object_add(o, "timeout_s", t) < 0)
		goto oom;
	free(url);
	*out = o;
	return 0;
oom:
	json_object_put(t);
	json_object_put(o);
	free(url);
	return err_set(err, "out of memory");
}

/* ---- run --------------------------------------------------------------------- */

/* What a run allocates; the strings are the params' own but the header
 * lines. */
struct http_run {
	const char *url, *method, *body;
	size_t body_len;
	char **headers; /* "Name: value", NULL-terminated */
	size_t nheaders;
	long long timeout_s;
	char host[256]; /* for messages: never the path (a secret) */
};

static void http_run_free(struct http_run *r)
{
	for (size_t i = 0; i < r->nheaders; i++)
		free(r->headers[i]);
	free(r->headers);
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;
	json_object_object_get_ex(o, key, &v);
	return v;
}

/* The authority of url without user info: "hooks.slack.com". */
static void url_host(const char *url, char *buf, size_t len)
{
	const char *p = strstr(url, "://");
	size_t n;

	p = p ? p + 3 : url;
	n = strcspn(p, "/?#");
	for (size_t i = n; i > 0; i--)
		if (p[i - 1] == '@') {
			p += i;
			n -= i;
			break;
		}
	snprintf(buf, len, "%.*s", (int)n, p);
}

static int no_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == ' ')
			return 0;
	return 1;
}

static int params_basic(struct http_run *r, json_object *params, struct err *err)
{
	json_object *u = member(params, "url"), *m = member(params, "method");
	json_object *b = member(params, "body"), *t = member(params, "timeout_s");
	json_object *e = member(params, "error");

	if (e)
		return err_set(err, "http: %s", json_object_get_string(e));
	if (!json_object_is_type(u, json_type_string) ||
	    !url_scheme_ok(r->url = json_object_get_string(u)) || !no_ctl(r->url))
		return err_set(err,
			       "http params: url must be an http:// or https:// URL without spaces");
	url_host(r->url, r->host, sizeof(r->host));
	if (!json_object_is_type(m, json_type_string) || method_index(json_object_get_string(m)) < 0)
		return err_set(err, "http params: method must be GET, POST, PUT, PATCH or DELETE");
	r->method = methods[method_index(json_object_get_string(m))];
	if (b && !json_object_is_type(b, json_type_string))
		return err_set(err, "http params: body must be a string or null");
	r->body = b ? json_object_get_string(b) : NULL;
	r->body_len = b ? (size_t)json_object_get_string_len(b) : 0;
	r->timeout_s = t ? json_object_get_int64(t) : HTTP_TIMEOUT_DEFAULT;
	if ((t && !json_object_is_type(t, json_type_int)) || r->timeout_s < 1 ||
	    r->timeout_s > HTTP_TIMEOUT_MAX)
		return err_set(err, "http params: timeout_s must be 1 to %d", HTTP_TIMEOUT_MAX);
	return 0;
}

static int header_add(struct http_run *r, const char *name, const char *value, struct err *err)
{
	if (asprintf(&r->headers[r->nheaders], "%s: %s", name, value) < 0) {
		r->headers[r->nheaders] = NULL;
		return err_set(err, "out of memory");
	}
	r->nheaders++;
	return 0;
}

/* Header lines, checked again; a request without a body but with a method
 * that usually has one gets Content-Length: 0 and no Content-Type. */
static int params_headers(struct http_run *r, json_object *params, struct err *err)
{
	json_object *h = member(params, "headers");
	size_t n = json_object_is_type(h, json_type_object) ? (size_t)json_object_object_length(h)
							    : 0;
	int has_ct = 0;

	if (h && !json_object_is_type(h, json_type_object))
		return err_set(err, "http params: headers must be an object");
	if (n > HTTP_HEADERS_MAX + 1)
		return err_set(err, "http params: too many headers");
	if (!(r->headers = calloc(n + 2, sizeof(*r->headers))))
		return err_set(err, "out of memory");
	if (h) {
		json_object_object_foreach(h, name, v)
		{
			const char *s = json_object_get_string(v);
			if (!json_object_is_type(v, json_type_string) || !header_name_valid(name) ||
			    header_reserved(name) || strpbrk(s, "\r\n"))
				return err_set(err, "http params: header '%s' is not allowed", name);
			has_ct |= strcasecmp(name, "Content-Type") == 0;
			if (header_add(r, name, s, err) < 0)
				return -1;
		}
	}
	if (!r->body && strcmp(r->method, "GET") != 0) {
		r->body = "";
		/* "Name:" with nothing after it keeps libcurl from adding its
		 * form Content-Type to an empty body. */
		if (!has_ct && !(r->headers[r->nheaders++] = strdup("Content-Type:")))
			return err_set(err, "out of memory");
	}
	return 0;
}

/* The outcome of a response (the retry policy in action_http.h). */
static void http_verdict(const struct http_run *r, struct outbound_resp *resp, int attempt,
			 struct target_outcome *out)
{
	char desc[600];
	enum outbound_verdict v = outbound_classify(resp);
	enum work_outcome w;

	outbound_describe(resp, desc, sizeof(desc));
	switch (v) {
	case VERDICT_OK:
		outcome_set(out, WORK_OK, "%s %s: HTTP %ld", r->method, r->host, resp->status);
		return;
	case VERDICT_RETRY: w = WORK_FAIL; break;
	case VERDICT_RETRY_FEW: w = attempt >= 3 ? WORK_PERMANENT : WORK_FAIL; break;
	default: w = WORK_PERMANENT;
	}
	out->retry_after_ms = resp->retry_after_ms;
	outcome_set(out, w, "%s %s: %s", r->method, r->host, desc);
}

void action_http_run(json_object *params, struct outbound *http, int attempt,
		     struct target_outcome *out)
{
	struct http_run r = { 0 };
	struct outbound_req req = { 0 };
	struct outbound_resp resp;
	struct err err = { 0 };

	out->retry_after_ms = -1;
	if (params_basic(&r, params, &err) < 0 || params_headers(&r, params, &err) < 0) {
		outcome_set(out, WORK_PERMANENT, "%s", err.msg);
		goto done;
	}
	req.method = r.method;
	req.url = r.url;
	req.headers = (const char *const *)r.headers;
	req.body = r.body;
	req.body_len = r.body_len;
	req.timeout_ms = r.timeout_s * 1000;
	req.connect_timeout_ms = req.timeout_ms < 5000 ? req.timeout_ms : 5000;
	outbound_send(http, &req, &resp);
	http_verdict(&r, &resp, attempt, out);
	outbound_resp_free(&resp);
done:
	http_run_free(&r);
}

/* ---- the kind: targets_workers threads, each with its HTTP handle ------- */

static int http_open(void **out, const struct action_ops *self, struct action_host *host,
		     struct err *err)
{
	struct outbound *h;

	(void)self;
	(void)host;
	*out = NULL;
	if (outbound_new(&h, err) < 0)
		return -1;
	*out = h;
	return 0;
}

static void http_close(void *state)
{
	outbound_free(state);
}

static void http_run_jobs(void *state, struct action_host *host, struct action_job *jobs, size_t n)
{
	(void)host;
	for (size_t i = 0; i < n; i++) {
		struct target_outcome out = { .outcome = WORK_FAIL, .retry_after_ms = -1 };
		struct work_result *res = jobs[i].res;

		action_http_run(jobs[i].params, state, jobs[i].attempt, &out);
		res->outcome = out.outcome;
		res->retry_after_ms = out.retry_after_ms;
		snprintf(res->detail, sizeof(res->detail), "%s", out.detail);
	}
}

const struct action_ops action_http_ops = {
	.name = "http",
	.summary = "a templated HTTP call (chat webhooks and anything else)",
	.parse = http_parse,
	.render = http_render,
	.free_spec = http_free_spec,
	.pool = action_pool_outbound,
	.open = http_open,
	.close = http_close,
	.run = http_run_jobs,
};
