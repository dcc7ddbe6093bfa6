/*
 * cfgtree: builds a position-carrying tree from libyaml's event stream.
 * The recursion is bounded by CFG_MAX_DEPTH; aliases are refused.
 */
#include "core/cfgtree.h"
#include "core/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static void node_free(struct cfg_node *n)
{
	if (!n)
		return;
	free(n->value);
	for (size_t i = 0; i < n->n; i++) {
		node_free(n->items[i]);
		if (n->keys)
			node_free(n->keys[i]);
	}
	free(n->items);
	free(n->keys);
	free(n);
}

void cfg_doc_free(struct cfg_doc *doc)
{
	if (!doc)
		return;
	node_free(doc->root);
	free(doc->file);
	free(doc);
}

static struct cfg_node *node_new(enum cfg_type t, const char *file, const yaml_mark_t *m)
{
	struct cfg_node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->type = t;
	n->file = file;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	return n;
}

static int push(struct cfg_node *parent, struct cfg_node *key, struct cfg_node *val)
{
	size_t n = parent->n + 1;
	struct cfg_node **items = realloc(parent->items, n * sizeof(*items));
	if (!items)
		return -1;
	parent->items = items;
	if (parent->type == CFG_MAP) {
		struct cfg_node **keys = realloc(parent->keys, n * sizeof(*keys));
		if (!keys)
			return -1;
		parent->keys = keys;
		keys[parent->n] = key;
	}
	items[parent->n] = val;
	parent->n = n;
	return 0;
}

struct parse {
	yaml_parser_t p;
	const char *file;
	const char *text; /* the whole input, for reader positions */
	size_t len;
	struct err *err;
};

/* 1-based line and column (in characters, as libyaml counts) of byte off. */
static void position(const char *text, size_t len, size_t off, size_t *line, size_t *col)
{
	*line = *col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			++*line;
			*col = 1;
		} else if (((unsigned char)text[i] & 0xC0) != 0x80) {
			++*col;
		}
	}
}

static int parse_error(struct parse *ps)
{
	size_t line = ps->p.problem_mark.line + 1;
	size_t col = ps->p.problem_mark.column + 1;

	/* The reader (encoding, control characters) sets an offset, no mark. */
	if (ps->p.error == YAML_READER_ERROR)
		position(ps->text, ps->len, ps->p.problem_offset, &line, &col);
	return err_set(ps->err, "%s:%zu:%zu: YAML syntax error: %s%s%s", ps->file, line, col,
		       ps->p.problem ? ps->p.problem : "invalid document", ps->p.context ? " " : "",
		       ps->p.context ? ps->p.context : "");
}

static int next(struct parse *ps, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&ps->p, ev))
		return parse_error(ps);
	return 0;
}

static int parse_node(struct parse *ps, yaml_event_t *ev, int depth, struct cfg_node **out);

/* Parses the children of a sequence or map until its end event. */
static int parse_children(struct parse *ps, struct cfg_node *n, int depth)
{
	for (;;) {
		yaml_event_t ev;
		struct cfg_node *key = NULL, *val = NULL;

		if (next(ps, &ev) < 0)
			return -1;
		if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
			yaml_event_delete(&ev);
			return 0;
		}
		if (n->type == CFG_MAP) {
			if (parse_node(ps, &ev, depth + 1, &key) < 0)
				return -1;
			if (key->type != CFG_SCALAR) {
				err_set(ps->err, "%s:%d:%d: map keys must be plain strings",
					ps->file, key->line, key->col);
				node_free(key);
				return -1;
			}
			if (next(ps, &ev) < 0) {
				node_free(key);
				return -1;
			}
		}
		if (parse_node(ps, &ev, depth + 1, &val) < 0 || push(n, key, val) < 0) {
			node_free(key);
			node_free(val);
			return -1;
		}
	}
}

/* Consumes ev (always deleted) and whatever belongs to it. */
static int parse_node(struct parse *ps, yaml_event_t *ev, int depth, struct cfg_node **out)
{
	struct cfg_node *n = NULL;
	int rc = -1;

	*out = NULL;
	if (depth > CFG_MAX_DEPTH) {
		err_set(ps->err, "%s:%zu:%zu: nesting deeper than %d levels", ps->file,
			ev->start_mark.line + 1, ev->start_mark.column + 1, CFG_MAX_DEPTH);
		goto done;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		/* "\0", "\x00" in a double-quoted scalar: the value would end
		 * there for everything that reads it as a C string. */
		if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length)) {
			err_set(ps->err,
				"%s:%zu:%zu: a NUL character (\"\\0\") in a value is not allowed",
				ps->file, ev->start_mark.line + 1, ev->start_mark.column + 1);
			goto done;
		}
		n = node_new(CFG_SCALAR, ps->file, &ev->start_mark);
		if (!n || !(n->value = strndup((const char *)ev->data.scalar.value,
					       ev->data.scalar.length)))
			goto oom;
		n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
		rc = 0;
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		n = node_new(ev->type == YAML_SEQUENCE_START_EVENT ? CFG_SEQ : CFG_MAP, ps->file,
			     &ev->start_mark);
		if (!n)
			goto oom;
		rc = parse_children(ps, n, depth);
		break;
	case YAML_ALIAS_EVENT:
		err_set(ps->err, "%s:%zu:%zu: YAML aliases are not supported", ps->file,
			ev->start_mark.line + 1, ev->start_mark.column + 1);
		goto done;
	default:
		err_set(ps->err, "%s:%zu:%zu: unexpected YAML event", ps->file,
			ev->start_mark.line + 1, ev->start_mark.column + 1);
		goto done;
	}
done:
	yaml_event_delete(ev);
	if (rc < 0)
		node_free(n);
	else
		*out = n;
	return rc;
oom:
	err_set(ps->err, "%s: out of memory", ps->file);
	goto done;
}

static int parse_stream(struct parse *ps, struct cfg_doc *doc)
{
	yaml_event_t ev;

	for (;;) {
		if (next(ps, &ev) < 0)
			return -1;
		switch (ev.type) {
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_START_EVENT:
		case YAML_DOCUMENT_END_EVENT: yaml_event_delete(&ev); continue;
		case YAML_STREAM_END_EVENT: yaml_event_delete(&ev); return 0;
		default:
			if (doc->root) {
				err_set(ps->err, "%s:%zu:%zu: only one YAML document is allowed",
					ps->file, ev.start_mark.line + 1, ev.start_mark.column + 1);
				yaml_event_delete(&ev);
				return -1;
			}
			if (parse_node(ps, &ev, 0, &doc->root) < 0)
				return -1;
		}
	}
}

int cfg_load_string(struct cfg_doc **out, const char *name, const char *text, size_t len,
		    struct err *err)
{
	struct parse ps = { .file = NULL, .text = text, .len = len, .err = err };
	const char *nul = memchr(text, 0, len);
	struct cfg_doc *doc;
	int rc;

	*out = NULL;
	/* Said plainly and where: not libyaml's "control characters". */
	if (nul) {
		size_t line, col;
		position(text, len, (size_t)(nul - text), &line, &col);
		return err_set(err,
			       "%s:%zu:%zu: a NUL byte: a YAML file is text "
			       "and cannot hold one",
			       name, line, col);
	}
	doc = calloc(1, sizeof(*doc));
	if (!doc || !(doc->file = strdup(name))) {
		free(doc);
		return err_set(err, "%s: out of memory", name);
	}
	ps.file = doc->file;
	if (!yaml_parser_initialize(&ps.p)) {
		cfg_doc_free(doc);
		return err_set(err, "%s: cannot initialise the YAML parser", name);
	}
	yaml_parser_set_input_string(&ps.p, (const unsigned char *)text, len);
	rc = parse_stream(&ps, doc);
	yaml_parser_delete(&ps.p);
	if (rc < 0) {
		cfg_doc_free(doc);
		return -1;
	}
	*out = doc;
	return 0;
}

int cfg_load_file(struct cfg_doc **out, const char *path, struct err *err)
{
	FILE *f;
	struct buf b;
	int rc = 0;

	*out = NULL;
	f = fopen(path, "rb");
	if (!f)
		return err_set(err, "%s: cannot open: %s", path, strerror(errno));
	buf_init(&b, 64u << 20);
	for (;;) {
		if (buf_reserve(&b, 4096 < buf_room(&b) ? 4096 : 1) < 0)
			break;
		size_t r = fread(b.p + b.len, 1, b.cap - b.len - 1, f);
		buf_commit(&b, r);
		if (r == 0)
			break;
	}
	if (buf_error(&b) == ERR_TOOLARGE)
		rc = err_set(err, "%s: larger than 64 MiB", path);
	else if (buf_error(&b))
		rc = err_set(err, "%s: out of memory", path);
	else if (ferror(f))
		rc = err_set(err, "%s: read error", path);
	fclose(f);
	if (rc == 0)
		rc = cfg_load_string(out, path, b.p ? b.p : "", b.len, err);
	buf_free(&b);
	return rc;
}

const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key)
{
	if (!map || map->type != CFG_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->keys[i]->value, key) == 0)
			return map->items[i];
	return NULL;
}

const char *cfg_where(const struct cfg_node *node, char *buf, size_t len)
{
	snprintf(buf, len, "%s:%d:%d", node->file, node->line, node->col);
	return buf;
}

const char *cfg_type_name(const struct cfg_node *node)
{
	if (!node)
		return "nothing";
	switch (node->type) {
	case CFG_SEQ: return "a list";
	case CFG_MAP: return "a map";
	default: return cfg_scalar_is_null(node) == 0 ? "null" : "a scalar";
	}
}

int cfg_scalar_is_null(const struct cfg_node *n)
{
	if (!n || n->type != CFG_SCALAR || n->quoted)
		return -1;
	const char *v = n->value;
	return (!*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
		!strcmp(v, "NULL"))
		       ? 0
		       : -1;
}

int cfg_scalar_bool(const struct cfg_node *n, int *out)
{
	if (!n || n->type != CFG_SCALAR || n->quoted)
		return -1;
	const char *v = n->value;
	if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) {
		*out = 1;
		return 0;
	}
	if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) {
		*out = 0;
		return 0;
	}
	return -1;
}

int cfg_scalar_int(const struct cfg_node *n, long long *out)
{
	char *end;
	if (!n || n->type != CFG_SCALAR || n->quoted || !*n->value)
		return -1;
	errno = 0;
	long long v = strtoll(n->value, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int cfg_scalar_double(const struct cfg_node *n, double *out)
{
	char *end;
	if (!n || n->type != CFG_SCALAR || n->quoted || !*n->value)
		return -1;
	errno = 0;
	double v = strtod(n->value, &end);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static void key_list(const struct cfg_key *keys, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", keys[i].name);
}

int cfg_parse_keys(void *spec, const struct cfg_node *map, const struct cfg_key *keys, size_t nkeys,
		   const char *what, unsigned *seen, struct errlist *errs)
{
	char where[300], expected[256];
	int bad = 0;

	for (size_t i = 0; i < map->n; i++) {
		const struct cfg_node *k = map->keys[i];
		size_t j = 0;

		while (j < nkeys && strcmp(k->value, keys[j].name) != 0)
			j++;
		if (j == nkeys) {
			key_list(keys, nkeys, expected, sizeof(expected));
			bad = errlist_add(errs, "%s: %s: unknown key '%s'; expected %s",
					  cfg_where(k, where, sizeof(where)), what, k->value,
					  expected);
		} else if (*seen & (1u << j)) {
			bad = errlist_add(errs, "%s: %s: key '%s' appears twice",
					  cfg_where(k, where, sizeof(where)), what, k->value);
		} else {
			*seen |= 1u << j;
			if (keys[j].parse(spec, map->items[i], errs) < 0)
				bad = -1;
		}
	}
	return bad;
}
