/*
 * jpath: a path is split once into segments, so a lookup is a walk of
 * json-c's own hash tables and arrays with no parsing on the hot path.
 *
 * A numeric segment ("items.0") indexes an array; on an object it is an
 * ordinary key, since events may well carry keys like "0".
 */
#include "core/jpath.h"

#include <stdlib.h>
#include <string.h>

/* Paths come from rule files and templates; nothing needs more than this. */
#define JPATH_MAX_LEN 1024

struct seg {
	const char *key; /* points into jpath.buf */
	long long index; /* array index, or -1 when the key is not numeric */
};

struct jpath {
	char *text; /* the path as written */
	char *buf;  /* a copy of text with the dots turned into NULs */
	struct seg *segs;
	size_t n;
};

void jpath_free(struct jpath *p)
{
	if (!p)
		return;
	free(p->text);
	free(p->buf);
	free(p->segs);
	free(p);
}

const char *jpath_text(const struct jpath *p)
{
	return p->text;
}

/* Digits only (no sign, no spaces), small enough for any real array. */
static long long seg_index(const char *s)
{
	long long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > 100000000)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* Cuts p->buf at the dots; an empty segment is an error. */
static int split(struct jpath *p, struct err *err)
{
	size_t n = 1;
	char *s;

	for (s = p->buf; *s; s++)
		n += *s == '.';
	p->segs = calloc(n, sizeof(*p->segs));
	if (!p->segs)
		return err_set(err, "out of memory");
	s = p->buf;
	for (size_t i = 0; i < n; i++) {
		char *dot = strchr(s, '.');
		if (dot)
			*dot = '\0';
		if (!*s)
			return err_set(err, "invalid path '%s': empty segment", p->text);
		p->segs[i].key = s;
		p->segs[i].index = seg_index(s);
		s = dot ? dot + 1 : s + strlen(s);
	}
	p->n = n;
	return 0;
}

int jpath_compile(struct jpath **out, const char *path, struct err *err)
{
	struct jpath *p = NULL;
	int rc = -1;

	*out = NULL;
	if (!*path) {
		err_set(err, "invalid path: empty");
		goto done;
	}
	if (strlen(path) > JPATH_MAX_LEN) {
		err_set(err, "invalid path: longer than %d bytes", JPATH_MAX_LEN);
		goto done;
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->text = strdup(path)) || !(p->buf = strdup(path))) {
		err_set(err, "out of memory");
		goto done;
	}
	rc = split(p, err);
done:
	if (rc < 0)
		jpath_free(p);
	else
		*out = p;
	return rc;
}

/* One step down; returns 1 and sets *next (NULL for JSON null) when the
 * segment is present, 0 when it is not. */
static int step(const struct seg *s, json_object *cur, json_object **next)
{
	*next = NULL;
	switch (json_object_get_type(cur)) {
	case json_type_object: return json_object_object_get_ex(cur, s->key, next) ? 1 : 0;
	case json_type_array:
		if (s->index < 0 || (size_t)s->index >= json_object_array_length(cur))
			return 0;
		*next = json_object_array_get_idx(cur, (size_t)s->index);
		return 1;
	default: return 0;
	}
}

/* Walks the whole path: 1 when every segment is present. */
static int walk(const struct jpath *p, json_object *root, json_object **out)
{
	json_object *cur = root;

	*out = NULL;
	for (size_t i = 0; i < p->n; i++)
		if (!step(&p->segs[i], cur, &cur))
			return 0;
	*out = cur;
	return 1;
}

json_object *jpath_get(const struct jpath *p, json_object *root)
{
	json_object *v;

	walk(p, root, &v);
	return v;
}

int jpath_exists(const struct jpath *p, json_object *root)
{
	json_object *v;

	return walk(p, root, &v);
}
