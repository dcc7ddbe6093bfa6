/*
 * template: a template is compiled into a flat list of parts, each a
 * literal, a value, a section's start (which knows the index of its end)
 * or a section's end, so rendering is a walk with no parsing.
 *
 * Rendering writes into a buffer with a hard cap.  When the cap is reached
 * the output stops at a whole character and a whole escape sequence, so a
 * truncated JSON-escaped value is still valid inside a string literal and a
 * truncated URL never ends in half a %XX.  Only values are escaped: the
 * literal text is the rule author's.
 *
 * Sections repeat parts, so the output cap alone does not bound the time a
 * render takes (a list inside a list whose body renders nothing writes no
 * byte); a step budget does.  The scope stack is as deep as the sections
 * nest, which compile bounds, so recursion is bounded too.
 */
#include "rules/template.h"
#include "core/buf.h"
#include "core/utf8.h"

#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/jpath.h"

#define TMPL_DEFAULT_MAX (1u << 20)
#define TMPL_PROBE_MAX   (1u << 20)

enum part_kind {
	PART_LIT,
	PART_VALUE,
	PART_SECTION,  /* {{#path}} */
	PART_INVERTED, /* {{^path}} */
	PART_END,      /* {{/path}} */
};

/* Where a value stands in a URL; URL_SEGMENT, the strictest, by default. */
enum url_ctx { URL_SEGMENT, URL_QUERY, URL_FRAGMENT };

struct part {
	enum part_kind kind;
	enum url_ctx url; /* PART_VALUE under TMPL_URL */
	char *lit;        /* PART_LIT: the text */
	size_t len;
	struct jpath *path; /* values and sections; NULL for "." */
	size_t end;         /* section starts: the index of their PART_END */
	size_t off;         /* the part's offset in the source ("{{") */
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

struct parser {
	struct tmpl *t;
	const char *src;
	size_t open[TMPL_DEPTH_MAX]; /* the parts of the open sections */
	size_t depth;
	struct err *err;
};

/* 1-based line and column of offset off in src, for messages. */
static void line_col(const char *src, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off && src[i]; i++, (*col)++)
		if (src[i] == '\n') {
			(*line)++;
			*col = 0;
		}
}

static struct part *part_new(struct tmpl *t, enum part_kind kind, size_t off)
{
	struct part *p = realloc(t->parts, (t->n + 1) * sizeof(*p));
	if (!p)
		return NULL;
	t->parts = p;
	p = &t->parts[t->n++];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->off = off;
	return p;
}

static int add_literal(struct tmpl *t, const char *s, size_t len, size_t off, struct err *err)
{
	struct part *p;

	if (len == 0)
		return 0;
	p = part_new(t, PART_LIT, off);
	if (!p || !(p->lit = strndup(s, len)))
		return err_set(err, "out of memory");
	p->len = len;
	return 0;
}

/* A section's name as written, for messages and for matching its end. */
static const char *part_name(const struct part *p)
{
	return p->path ? jpath_text(p->path) : ".";
}

static char sigil(enum part_kind k)
{
	return k == PART_SECTION ? '#' : k == PART_INVERTED ? '^' : '/';
}

/* "{{/name}}": closes the innermost open section, which must be name. */
static int close_section(struct parser *ps, const char *name, size_t len, size_t off)
{
	const struct part *o;
	int line, col, oline, ocol;

	line_col(ps->src, off, &line, &col);
	if (ps->depth == 0)
		return err_set(ps->err, "'{{/%.*s}}' at line %d, column %d closes no section",
			       (int)(len > 100 ? 100 : len), name, line, col);
	o = &ps->t->parts[ps->open[ps->depth - 1]];
	if (strlen(part_name(o)) != len || memcmp(part_name(o), name, len) != 0) {
		line_col(ps->src, o->off, &oline, &ocol);
		return err_set(
			ps->err,
			"'{{/%.*s}}' at line %d, column %d does not close '{{%c%.100s}}' (line %d, column %d)",
			(int)(len > 100 ? 100 : len), name, line, col, sigil(o->kind), part_name(o),
			oline, ocol);
	}
	ps->t->parts[ps->open[--ps->depth]].end = ps->t->n;
	if (!part_new(ps->t, PART_END, off))
		return err_set(ps->err, "out of memory");
	return 0;
}

/* A value or a section start; "." is the current item. */
static int open_part(struct parser *ps, enum part_kind kind, const char *s, size_t len, size_t off)
{
	struct part *p;
	char *text;
	int line, col, rc = 0;

	if (kind != PART_VALUE && ps->depth == TMPL_DEPTH_MAX) {
		line_col(ps->src, off, &line, &col);
		return err_set(ps->err, "section at line %d, column %d nests deeper than %d sections",
			       line, col, TMPL_DEPTH_MAX);
	}
	if (!(text = strndup(s, len)) || !(p = part_new(ps->t, kind, off))) {
		free(text);
		return err_set(ps->err, "out of memory");
	}
	if (strcmp(text, ".") != 0)
		rc = jpath_compile(&p->path, text, ps->err);
	free(text);
	ps->t->has_paths = 1;
	if (rc == 0 && kind != PART_VALUE)
		ps->open[ps->depth++] = ps->t->n - 1;
	return rc;
}

/* The text between the braces, trimmed; spaces inside a path are refused
 * so that "{{ run title }}" is caught at load, not rendered empty. */
static int add_tag(struct parser *ps, const char *s, size_t len, size_t off)
{
	enum part_kind kind = PART_VALUE;
	int line, col;

	while (len && isspace((unsigned char)*s))
		s++, len--;
	if (len && (*s == '#' || *s == '^' || *s == '/')) {
		kind = *s == '#' ? PART_SECTION : *s == '^' ? PART_INVERTED : PART_END;
		s++, len--;
		while (len && isspace((unsigned char)*s))
			s++, len--;
	}
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	for (size_t i = 0; i < len; i++)
		if (isspace((unsigned char)s[i]) || s[i] == '{' || s[i] == '}')
			return err_set(ps->err, "invalid path '%.*s' in template",
				       (int)(len > 100 ? 100 : len), s);
	if (len == 0) {
		line_col(ps->src, off, &line, &col);
		return err_set(ps->err, "empty path in template at line %d, column %d ('{{%s}}')",
			       line, col,
			       kind == PART_VALUE     ? ""
			       : kind == PART_END     ? "/"
			       : kind == PART_SECTION ? "#"
						      : "^");
	}
	if (kind == PART_END)
		return close_section(ps, s, len, off);
	return open_part(ps, kind, s, len, off);
}

static int unclosed(const struct parser *ps)
{
	const struct part *o = &ps->t->parts[ps->open[ps->depth - 1]];
	int line, col;

	line_col(ps->src, o->off, &line, &col);
	return err_set(ps->err,
		       "section '{{%c%.100s}}' at line %d, column %d has no closing '{{/%.100s}}'",
		       sigil(o->kind), part_name(o), line, col, part_name(o));
}

static int parse(struct parser *ps)
{
	const char *src = ps->src, *s = src;
	int line, col;

	for (;;) {
		const char *open = strstr(s, "{{"), *close;
		if (!open) {
			if (add_literal(ps->t, s, strlen(s), (size_t)(s - src), ps->err) < 0)
				return -1;
			return ps->depth ? unclosed(ps) : 0;
		}
		if (add_literal(ps->t, s, (size_t)(open - s), (size_t)(s - src), ps->err) < 0)
			return -1;
		close = strstr(open + 2, "}}");
		if (!close) {
			line_col(src, (size_t)(open - src), &line, &col);
			return err_set(ps->err, "'{{' at line %d, column %d has no closing '}}'",
				       line, col);
		}
		if (add_tag(ps, open + 2, (size_t)(close - open - 2), (size_t)(open - src)) < 0)
			return -1;
		s = close + 2;
	}
}

int tmpl_compile(struct tmpl **out, const char *src, struct err *err)
{
	struct tmpl *t = calloc(1, sizeof(*t));
	struct parser ps = { .t = t, .src = src, .err = err };
	int rc = -1;

	*out = NULL;
	if (!t || !(t->src = strdup(src))) {
		err_set(err, "out of memory");
		goto done;
	}
	rc = parse(&ps);
done:
	if (rc < 0)
		tmpl_free(t);
	else
		*out = t;
	return rc;
}

/* ---- URLs ------------------------------------------------------------------ */

/* What the literal text read so far has reached. */
enum url_state { US_SCHEME, US_AUTHORITY, US_PATH, US_QUERY, US_FRAGMENT };

struct url_scan {
	enum url_state st;
	size_t matched; /* bytes of "://" matched, in US_SCHEME */
};

static void url_scan(struct url_scan *u, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		switch (u->st) {
		case US_SCHEME:
			u->matched = c == "://"[u->matched] ? u->matched + 1 : c == ':';
			if (u->matched == 3)
				u->st = US_AUTHORITY;
			break;
		case US_AUTHORITY:
		case US_PATH:
			if (c == '/' && u->st == US_AUTHORITY)
				u->st = US_PATH;
			else if (c == '?')
				u->st = US_QUERY;
			else if (c == '#')
				u->st = US_FRAGMENT;
			break;
		case US_QUERY:
			if (c == '#')
				u->st = US_FRAGMENT;
			break;
		case US_FRAGMENT: break;
		}
	}
}

static int url_refuse(const struct tmpl *t, const struct part *p, struct err *err)
{
	const char *tag = t->src + p->off, *close = strstr(tag, "}}");
	int line, col, n = close ? (int)(close - tag) + 2 : 2;

	line_col(t->src, p->off, &line, &col);
	return err_set(
		err,
		"'%.*s' at line %d, column %d is in the URL's scheme or host, which must be literal text; values may fill the path, the query and the fragment",
		n > 100 ? 100 : n, tag, line, col);
}

/* Each value's place, from the literal text before it in source order. */
static int url_contexts(struct tmpl *t, struct err *err)
{
	struct url_scan u = { US_SCHEME, 0 };

	for (size_t i = 0; i < t->n; i++) {
		struct part *p = &t->parts[i];
		if (p->kind == PART_LIT) {
			url_scan(&u, p->lit, p->len);
			continue;
		}
		if (u.st < US_PATH)
			return url_refuse(t, p, err);
		p->url = u.st == US_PATH    ? URL_SEGMENT
			 : u.st == US_QUERY ? URL_QUERY
					    : URL_FRAGMENT;
	}
	return 0;
}

int tmpl_compile_url(struct tmpl **out, const char *src, struct err *err)
{
	struct tmpl *t;

	*out = NULL;
	if (tmpl_compile(&t, src, err) < 0)
		return -1;
	if (url_contexts(t, err) < 0) {
		tmpl_free(t);
		return -1;
	}
	*out = t;
	return 0;
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

/* RFC 3986 unreserved characters; everything else is percent-encoded. */
static int url_plain(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static void put_url(struct buf *o, const char *s, size_t n, enum url_ctx ctx)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		/* a dot at either end of a path value could make a dot segment
		 * ("..", or "." next to another value's ".") */
		int edge_dot = c == '.' && ctx == URL_SEGMENT && (i == 0 || i == n - 1);
		char esc[3] = { '%', hex[c >> 4], hex[c & 0xf] };

		if (!(url_plain(c) && !edge_dot ? put(o, s + i, 1) : put(o, esc, 3)))
			return;
	}
}

/* Strings are their text; everything else is json-c's compact JSON.
 * *cut_nul is set when raw output had to stop a string at a NUL byte. */
static void put_value(struct buf *o, json_object *v, enum tmpl_escape esc, enum url_ctx ctx,
		      int *cut_nul)
{
	const char *s;
	size_t n;

	if (!v)
		return;
	if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		n = (size_t)json_object_get_string_len(v);
		/* a C string cannot carry a NUL: raw output stops at one */
		if (esc == TMPL_RAW && strlen(s) != n) {
			n = strlen(s);
			*cut_nul = 1;
		}
	} else {
		s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
		n = strlen(s);
	}
	if (esc == TMPL_JSON)
		put_json(o, s, n);
	else if (esc == TMPL_URL)
		put_url(o, s, n, ctx);
	else
		put_raw(o, s, n);
}

struct render {
	const struct tmpl *t;
	struct buf o;
	enum tmpl_escape esc;
	json_object *scope[TMPL_DEPTH_MAX + 1]; /* [0] is the event */
	size_t nscope;
	size_t budget; /* steps left */
	int cut_nul;   /* a raw string value stopped at a NUL byte */
};

/* The innermost scope in which the whole path exists gives the value. */
static json_object *lookup(const struct render *r, const struct jpath *p)
{
	if (!p)
		return r->scope[r->nscope - 1];
	for (size_t i = r->nscope; i-- > 0;) {
		json_object *v = jpath_get(p, r->scope[i]);
		if (v || jpath_exists(p, r->scope[i]))
			return v;
	}
	return NULL;
}

static int truthy(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return 0;
	case json_type_boolean: return json_object_get_boolean(v);
	case json_type_int: return json_object_get_int64(v) != 0;
	case json_type_double: return json_object_get_double(v) != 0.0;
	case json_type_string: return json_object_get_string_len(v) > 0;
	case json_type_array: return json_object_array_length(v) > 0;
	default: return 1;
	}
}

/* One step of the budget; 0 when rendering must stop. */
static int step(struct render *r)
{
	if (r->budget == 0 || buf_error(&r->o))
		return 0;
	r->budget--;
	return 1;
}

static void render_parts(struct render *r, size_t from, size_t to);

static void render_section(struct render *r, size_t i)
{
	const struct part *p = &r->t->parts[i];
	json_object *v = lookup(r, p->path);
	int list = json_object_is_type(v, json_type_array);
	size_t n = list ? json_object_array_length(v) : 1;

	if (p->kind == PART_INVERTED) {
		if (!truthy(v))
			render_parts(r, i + 1, p->end);
		return;
	}
	if (!truthy(v))
		return;
	assert(r->nscope <= TMPL_DEPTH_MAX);
	for (size_t k = 0; k < n && step(r); k++) {
		r->scope[r->nscope++] = list ? json_object_array_get_idx(v, k) : v;
		render_parts(r, i + 1, p->end);
		r->nscope--;
	}
}

static void render_parts(struct render *r, size_t from, size_t to)
{
	for (size_t i = from; i < to && step(r); i++) {
		const struct part *p = &r->t->parts[i];
		switch (p->kind) {
		case PART_LIT: put_raw(&r->o, p->lit, p->len); break;
		case PART_VALUE:
			put_value(&r->o, lookup(r, p->path), r->esc, p->url, &r->cut_nul);
			break;
		case PART_SECTION:
		case PART_INVERTED:
			render_section(r, i);
			i = p->end;
			break;
		case PART_END: break;
		}
	}
}

char *tmpl_render(const struct tmpl *t, json_object *event, enum tmpl_escape esc, size_t max_len)
{
	int cut_nul;

	return tmpl_render_cut(t, event, esc, max_len, &cut_nul);
}

char *tmpl_render_cut(const struct tmpl *t, json_object *event, enum tmpl_escape esc,
		      size_t max_len, int *cut_nul)
{
	struct render *r = calloc(1, sizeof(*r)); /* the heap: small stacks */
	char *out = NULL;

	*cut_nul = 0;
	if (!r)
		return NULL;
	r->t = t;
	r->esc = esc;
	r->scope[0] = event;
	r->nscope = 1;
	r->budget = TMPL_WORK_MAX;
	buf_init(&r->o, max_len ? max_len : TMPL_DEFAULT_MAX);
	if (buf_add(&r->o, "", 0) < 0)
		goto done;
	render_parts(r, 0, t->n);
	if (buf_error(&r->o) != ERR_NOMEM)
		out = buf_detach(&r->o, NULL); /* ERR_TOOLARGE: truncated */
	*cut_nul = r->cut_nul;
done:
	buf_free(&r->o);
	free(r);
	return out;
}

/* ---- probe --------------------------------------------------------------- */

struct probe {
	const struct tmpl *t;
	unsigned reps;
	int inverted;
	struct buf text, map;
};

static void probe_put(struct probe *pr, const char *s, size_t n, size_t off, int advance)
{
	for (size_t i = 0; i < n; i++) {
		size_t at = off + (advance ? i : 0);
		if (buf_add(&pr->text, s + i, 1) < 0 || buf_add(&pr->map, &at, sizeof(at)) < 0)
			return;
	}
}

static void probe_parts(struct probe *pr, size_t from, size_t to)
{
	for (size_t i = from; i < to && !buf_error(&pr->text) && !buf_error(&pr->map); i++) {
		const struct part *p = &pr->t->parts[i];
		unsigned n = pr->reps;

		if (p->kind == PART_LIT)
			probe_put(pr, p->lit, p->len, p->off, 1);
		else if (p->kind == PART_VALUE)
			probe_put(pr, "x", 1, p->off, 0);
		if (p->kind != PART_SECTION && p->kind != PART_INVERTED)
			continue;
		if (p->kind == PART_INVERTED)
			n = pr->inverted != 0;
		for (unsigned k = 0; k < n; k++)
			probe_parts(pr, i + 1, p->end);
		i = p->end;
	}
}

int tmpl_probe(const struct tmpl *t, unsigned reps, int inverted, char **out, size_t **map,
	       struct err *err)
{
	struct probe pr = { .t = t, .reps = reps, .inverted = inverted };
	size_t end = strlen(t->src);
	int rc = -1;

	*out = NULL;
	*map = NULL;
	buf_init(&pr.text, TMPL_PROBE_MAX);
	buf_init(&pr.map, (TMPL_PROBE_MAX + 1) * sizeof(size_t));
	buf_add(&pr.text, "", 0);
	probe_parts(&pr, 0, t->n);
	buf_add(&pr.map, &end, sizeof(end));
	if (buf_error(&pr.text) || buf_error(&pr.map)) {
		err_setc(err,
			 buf_error(&pr.text) == ERR_NOMEM || buf_error(&pr.map) == ERR_NOMEM
				 ? ERR_NOMEM
				 : ERR_TOOLARGE,
			 "the template's sections repeat over %u bytes of text: too much to check",
			 TMPL_PROBE_MAX);
		goto done;
	}
	*out = buf_detach(&pr.text, NULL);
	*map = (size_t *)(void *)buf_detach(&pr.map, NULL);
	if (!*out || !*map) {
		free(*out);
		free(*map);
		*out = NULL;
		*map = NULL;
		err_set(err, "out of memory");
		goto done;
	}
	rc = 0;
done:
	buf_free(&pr.text);
	buf_free(&pr.map);
	return rc;
}
