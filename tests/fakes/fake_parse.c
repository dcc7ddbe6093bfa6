/*
 * fake_parse: turning request bytes into something to check (strict JSON,
 * multipart/form-data, path segments) and the table-driven field checks
 * the fakes validate bodies with.
 */
#include "fake_common.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PARTS 256

/* ---- JSON, multipart, paths -------------------------------------------- */

struct json_object *fake_parse_json(const char *text, size_t len, int *ok)
{
	*ok = 0;
	struct json_tokener *tok = json_tokener_new_ex(64);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	struct json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error e = json_tokener_get_error(tok);
	size_t end = json_tokener_get_parse_end(tok);
	if (e == json_tokener_continue) {
		/* All input consumed; a bare number still needs to see its end. */
		o = json_tokener_parse_ex(tok, "", 1);
		e = json_tokener_get_error(tok);
		end = len;
	}
	if (e == json_tokener_success) {
		*ok = 1;
		for (size_t i = end; i < len; i++)
			if (!isspace((unsigned char)text[i]))
				*ok = 0;
	}
	json_tokener_free(tok);
	if (!*ok) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Copies the value of param (e.g. "boundary", "name") out of a header value
 * like `form-data; name="x"; filename="y"`.  Returns 1 if found. */
static int header_param(const char *h, const char *param, char *out, size_t outlen)
{
	size_t plen = strlen(param);
	const char *p = strchr(h, ';');
	while (p) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, param, plen) == 0 && p[plen] == '=') {
			p += plen + 1;
			size_t n = 0;
			if (*p == '"') {
				p++;
				while (p[n] && p[n] != '"')
					n++;
			} else {
				while (p[n] && p[n] != ';' && p[n] != ' ')
					n++;
			}
			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, p, n);
			out[n] = '\0';
			return 1;
		}
		p = strchr(p, ';');
	}
	return 0;
}

static void copy_line_value(const char *v, const char *end, char *out, size_t outlen)
{
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	size_t n = (size_t)(end - v);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, v, n);
	out[n] = '\0';
}

/* Parses one part's header block [h, hend) into p.  0 or -1. */
static int part_headers(const char *h, const char *hend, struct fake_part *p)
{
	char disp[1024] = "";
	while (h < hend) {
		const char *eol = memmem(h, (size_t)(hend - h), "\r\n", 2);
		if (!eol)
			eol = hend;
		const char *colon = memchr(h, ':', (size_t)(eol - h));
		if (colon) {
			size_t nlen = (size_t)(colon - h);
			if (nlen == 19 && strncasecmp(h, "Content-Disposition", 19) == 0)
				copy_line_value(colon + 1, eol, disp, sizeof(disp));
			else if (nlen == 12 && strncasecmp(h, "Content-Type", 12) == 0)
				copy_line_value(colon + 1, eol, p->content_type,
						sizeof(p->content_type));
		}
		h = eol + 2;
	}
	if (strncasecmp(disp, "form-data", 9) != 0)
		return -1;
	if (!header_param(disp, "name", p->name, sizeof(p->name)))
		return -1;
	p->has_filename = header_param(disp, "filename", p->filename, sizeof(p->filename));
	return 0;
}

int fake_parse_multipart(struct fake_req *r)
{
	char boundary[256], delim[264];
	if (strncasecmp(r->content_type, "multipart/form-data", 19) != 0)
		return -1;
	if (!header_param(r->content_type, "boundary", boundary, sizeof(boundary)) || !boundary[0])
		return -1;
	int dlen = snprintf(delim, sizeof(delim), "--%s", boundary);
	const char *end = r->body + r->body_len;
	const char *p = memmem(r->body, r->body_len, delim, (size_t)dlen);
	struct fake_part *parts = calloc(MAX_PARTS, sizeof(*parts));
	size_t n = 0;
	if (!parts || !p)
		goto fail;
	for (;;) {
		p += dlen;
		if (end - p >= 2 && p[0] == '-' && p[1] == '-')
			break; /* closing delimiter */
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n' || n == MAX_PARTS)
			goto fail;
		p += 2;
		const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		if (!hend)
			goto fail;
		if (part_headers(p, hend + 2, &parts[n]) < 0)
			goto fail;
		const char *data = hend + 4;
		char next[268];
		int nlen = snprintf(next, sizeof(next), "\r\n%s", delim);
		const char *q = memmem(data, (size_t)(end - data), next, (size_t)nlen);
		if (!q)
			goto fail;
		parts[n].data = data;
		parts[n].len = (size_t)(q - data);
		n++;
		p = q + 2;
	}
	r->parts = parts;
	r->nparts = n;
	return 0;
fail:
	free(parts);
	return -1;
}

struct json_object *fake_parts_json(const struct fake_req *r)
{
	struct json_object *a = json_object_new_array();
	for (size_t i = 0; i < r->nparts; i++) {
		const struct fake_part *p = &r->parts[i];
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(p->name));
		json_object_object_add(o, "filename",
				       p->has_filename ? json_object_new_string(p->filename) : NULL);
		json_object_object_add(o, "content_type",
				       p->content_type[0] ? json_object_new_string(p->content_type)
							  : NULL);
		json_object_object_add(o, "data", json_object_new_string_len(p->data, (int)p->len));
		json_object_array_add(a, o);
	}
	return a;
}

int fake_split(const char *path, char *buf, size_t buflen, char **seg, int max)
{
	if (path[0] != '/' || strlen(path) >= buflen)
		return -1;
	memcpy(buf, path + 1, strlen(path));
	int n = 0;
	char *p = buf;
	if (!*p)
		return 0;
	for (;;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		if (!*p || n == max)
			return -1;
		seg[n++] = p;
		if (!slash)
			return n;
		p = slash + 1;
	}
}

/* ---- validation -------------------------------------------------------- */

struct json_object *fake_get(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;
	if (!obj || !json_object_is_type(obj, json_type_object))
		return NULL;
	json_object_object_get_ex(obj, key, &v);
	return v;
}

struct json_object *fake_copy(struct json_object *v)
{
	struct json_object *out = NULL;
	if (v && json_object_deep_copy(v, &out, NULL) != 0)
		return NULL;
	return out;
}

int fake_has(struct json_object *obj, const char *key)
{
	if (!obj || !json_object_is_type(obj, json_type_object))
		return 0;
	return json_object_object_get_ex(obj, key, NULL);
}

int fake_in(const char *s, const char *const *list)
{
	for (; s && *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

size_t fake_utf8_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

static int arr_of(struct json_object *v, enum json_type t)
{
	if (!json_object_is_type(v, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(v); i++)
		if (!json_object_is_type(json_object_array_get_idx(v, i), t))
			return 0;
	return 1;
}

int fake_jt_ok(struct json_object *v, enum jt type)
{
	enum json_type t = json_object_get_type(v);
	switch (type) {
	case JT_STR: return t == json_type_string;
	case JT_NESTR: return t == json_type_string && json_object_get_string_len(v) > 0;
	case JT_INT: return t == json_type_int;
	case JT_NNINT: return t == json_type_int && json_object_get_int64(v) >= 0;
	case JT_POSINT: return t == json_type_int && json_object_get_int64(v) > 0;
	case JT_NUM: return t == json_type_int || t == json_type_double;
	case JT_NNNUM:
		return (t == json_type_int || t == json_type_double) &&
		       json_object_get_double(v) >= 0;
	case JT_BOOL: return t == json_type_boolean;
	case JT_OBJ: return t == json_type_object;
	case JT_ARR: return t == json_type_array;
	case JT_STRARR: return arr_of(v, json_type_string);
	case JT_INTARR: return arr_of(v, json_type_int);
	case JT_OBJ_OR_STR: return t == json_type_object || t == json_type_string;
	case JT_NNINT_OR_NULL:
		return t == json_type_null || (t == json_type_int && json_object_get_int64(v) >= 0);
	}
	return 0;
}

static const char *jt_name(enum jt type)
{
	switch (type) {
	case JT_STR: return "a string";
	case JT_NESTR: return "a non-empty string";
	case JT_INT: return "an integer";
	case JT_NNINT: return "a non-negative integer";
	case JT_POSINT: return "a positive integer";
	case JT_NUM: return "a number";
	case JT_NNNUM: return "a non-negative number";
	case JT_BOOL: return "a boolean";
	case JT_OBJ: return "an object";
	case JT_ARR: return "an array";
	case JT_STRARR: return "an array of strings";
	case JT_INTARR: return "an array of integers";
	case JT_OBJ_OR_STR: return "an object or a string";
	case JT_NNINT_OR_NULL: return "a non-negative integer or null";
	}
	return "?";
}

int fake_check(struct json_object *obj, const struct jfield *spec, size_t n, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		if (!fake_has(obj, spec[i].name)) {
			if (spec[i].required) {
				snprintf(err, errlen, "%s is required", spec[i].name);
				return -1;
			}
			continue;
		}
		if (!fake_jt_ok(fake_get(obj, spec[i].name), spec[i].type)) {
			snprintf(err, errlen, "%s must be %s", spec[i].name, jt_name(spec[i].type));
			return -1;
		}
	}
	return 0;
}
