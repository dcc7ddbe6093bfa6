/*
 * template: a template is compiled into a list of parts, each a literal
 * or a path, so rendering is a walk with no parsing.
 *
 * Rendering writes into a buffer with a hard cap.  When the cap is reached
 * the output stops at a whole character and a whole escape sequence, so a
 * truncated JSON-escaped value is still valid inside a string literal.
 * Only values are escaped: the literal text is the rule author's.
 */
#include "rules/template.h"
#include "core/buf.h"
#include "core/utf8.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jpath.h"

#define TMPL_DEFAULT_MAX (1u << 20)

struct part {
	char *lit;           /* literal text, or NULL for a path */
	size_t len;
	struct jpath *path;
};

struct tmpl {
	char *src;
	struct part *parts;
	size_t n;
	int has_paths;
};

void tmpl_free(struct tmpl *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->parts[i].lit);
		jpath_free(t->parts[i].path);
	}
	free(t->parts);
	free(t->src);
	free(t);
}

int tmpl_is_constant(const struct tmpl *t)
{
	return !t->has_paths;
}

const char *tmpl_source(const struct tmpl *t)
{
	return t->src;
}

/* ---- compile ------------------------------------------------------------- */

static struct part *part_new(struct tmpl *t)
{
	struct part *p = realloc(t->parts, (t->n + 1) * sizeof(*p));
	if (!p)
		return NULL;
	t->parts = p;
	p = &t->parts[t->n++];
	memset(p, 0, sizeof(*p));
	return p;
}

static int add_literal(struct tmpl *t, const char *s, size_t len,
		       struct err *err)
{
	struct part *p;

	if (len == 0)
		return 0;
	p = part_new(t);
	if (!p || !(p->lit = strndup(s, len)))
		return err_set(err, "out of memory");
	p->len = len;
	return 0;
}

/* The text between the braces, trimmed; spaces inside a path are refused
 * so that "{{ run title }}" is caught at load, not rendered empty. */
static int add_path(struct tmpl *t, const char *s, size_t len,
		    struct err *err)
{
	char *text;
	struct part *p;
	int rc;

	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	for (size_t i = 0; i < len; i++)
		if (isspace((unsigned char)s[i]) || s[i] == '{' || s[i] == '}')
			return err_set(err, "invalid path '%.*s' in template",
				       (int)len, s);
	if (len == 0)
		return err_set(err, "empty path in template '{{}}'");
	if (!(text = strndup(s, len)) || !(p = part_new(t))) {
		free(text);
		return err_set(err, "out of memory");
	}
	rc = jpath_compile(&p->path, text, err);
	free(text);
	t->has_paths = 1;
	return rc;
}

static int parse(struct tmpl *t, const char *src, struct err *err)
{
	const char *s = src;

	for (;;) {
		const char *open = strstr(s, "{{"), *close;
		if (!open)
			return add_literal(t, s, strlen(s), err);
		if (add_literal(t, s, (size_t)(open - s), err) < 0)
			return -1;
		close = strstr(open + 2, "}}");
		if (!close)
			return err_set(err, "'{{' at offset %zu has no closing '}}'",
				       (size_t)(open - src));
		if (add_path(t, open + 2, (size_t)(close - open - 2), err) < 0)
			return -1;
		s = close + 2;
	}
}

int tmpl_compile(struct tmpl **out, const char *src, struct err *err)
{
	struct tmpl *t = calloc(1, sizeof(*t));
	int rc = -1;

	*out = NULL;
	if (!t || !(t->src = strdup(src))) {
		err_set(err, "out of memory");
		goto done;
	}
	rc = parse(t, src, err);
done:
	if (rc < 0)
		tmpl_free(t);
	else
		*out = t;
	return rc;
}

/* ---- render -------------------------------------------------------------- */

/* All n bytes or none of them: once one put does not fit (or memory runs
 * out) the buffer refuses every later one, so output stops there. */
static int put(struct buf *o, const char *s, size_t n)
{
	return buf_add(o, s, n) == 0;
}


/* Raw text: cut at a character boundary when the cap is reached. */
static void put_raw(struct buf *o, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t l = utf8_char((const unsigned char *)s + i, n - i, NULL);
		if (l == 0)
			l = 1; /* not UTF-8: copied byte for byte, as it is */
		if (!put(o, s + i, l))
			return;
		i += l;
	}
}

/* The inside of a JSON string literal: quote, backslash and control
 * characters escaped; bytes that are not UTF-8 become U+FFFD. */
static void put_json(struct buf *o, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t l = utf8_char((const unsigned char *)s + i, n - i, NULL);
		char esc[8];
		int ok;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			ok = put(o, esc, 2);
		} else if (c < 0x20) {
			static const char hex[] = "0123456789abcdef";
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			ok = put(o, esc, 6);
		} else if (l == 0) {
			ok = put(o, "\\ufffd", 6);
			l = 1;
		} else {
			ok = put(o, s + i, l);
		}
		if (!ok)
			return;
		i += l;
	}
}

/* Strings are their text; everything else is json-c's compact JSON. */
static void put_value(struct buf *o, json_object *v, enum tmpl_escape esc)
{
	const char *s;
	size_t n;

	if (!v)
		return;
	if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		/* a C string cannot carry a NUL: raw output stops at one */
		n = esc == TMPL_JSON ? (size_t)json_object_get_string_len(v)
				     : strlen(s);
	} else {
		s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
		n = strlen(s);
	}
	if (esc == TMPL_JSON)
		put_json(o, s, n);
	else
		put_raw(o, s, n);
}

char *tmpl_render(const struct tmpl *t, json_object *event,
		  enum tmpl_escape esc, size_t max_len)
{
	struct buf o;

	buf_init(&o, max_len ? max_len : TMPL_DEFAULT_MAX);
	if (buf_add(&o, "", 0) < 0)
		return NULL;
	for (size_t i = 0; i < t->n && !buf_error(&o); i++) {
		const struct part *p = &t->parts[i];
		if (p->lit)
			put_raw(&o, p->lit, p->len);
		else
			put_value(&o, jpath_get(p->path, event), esc);
	}
	if (buf_error(&o) == ERR_NOMEM) {
		buf_free(&o);
		return NULL;
	}
	return buf_detach(&o, NULL); /* ERR_TOOLARGE: truncated, as documented */
}
