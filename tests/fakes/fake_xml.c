/*
 * fake_xml: a small well-formedness check for the JUnit XML that runbridge
 * uploads to Test Center's /import.  It is not a full XML parser: no DTD
 * internal subsets, no namespaces.  It checks what a real XML parser would
 * refuse (unbalanced or mismatched tags, bad attribute syntax, duplicate
 * attributes, bad entity references, text or a second element outside the
 * root) and the JUnit counters: tests/failures/errors/skipped/disabled are
 * non-negative integers and time a non-negative number, on <testsuite>,
 * <testsuites> and (time only) <testcase>.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_common.h"

#define XML_MAX_DEPTH 256
#define XML_MAX_ATTRS 64
#define XML_NAME_MAX  128

struct xp {
	const char *start, *p, *end;
	char *err;
	size_t errlen;
	struct json_object *suites;
};

struct attr {
	char name[XML_NAME_MAX];
	const char *val; /* raw value, entities unexpanded */
	size_t len;
};

static int fail(struct xp *x, const char *msg)
{
	snprintf(x->err, x->errlen, "at byte %ld: %s", (long)(x->p - x->start), msg);
	return -1;
}

static int starts(const struct xp *x, const char *s)
{
	size_t n = strlen(s);
	return (size_t)(x->end - x->p) >= n && memcmp(x->p, s, n) == 0;
}

static void skip_ws(struct xp *x)
{
	while (x->p < x->end && isspace((unsigned char)*x->p))
		x->p++;
}

/* Skips past the terminator; -1 if it never comes. */
static int skip_past(struct xp *x, const char *term, const char *what)
{
	const char *q = memmem(x->p, (size_t)(x->end - x->p), term, strlen(term));
	if (!q)
		return fail(x, what);
	x->p = q + strlen(term);
	return 0;
}

static int name_char(int c, int first)
{
	if (isalpha(c) || c == '_' || c == ':' || c >= 0x80)
		return 1;
	return !first && (isdigit(c) || c == '-' || c == '.');
}

static int read_name(struct xp *x, char *out)
{
	size_t n = 0;
	if (x->p >= x->end || !name_char((unsigned char)*x->p, 1))
		return fail(x, "expected a name");
	while (x->p < x->end && name_char((unsigned char)*x->p, 0)) {
		if (n == XML_NAME_MAX - 1)
			return fail(x, "name too long");
		out[n++] = *x->p++;
	}
	out[n] = '\0';
	return 0;
}

/* An entity reference at s (pointing at '&'); returns its length or 0. */
static size_t entity_len(const char *s, const char *end)
{
	static const char *const named[] = { "&lt;", "&gt;", "&amp;", "&apos;", "&quot;" };
	for (size_t i = 0; i < 5; i++) {
		size_t n = strlen(named[i]);
		if ((size_t)(end - s) >= n && memcmp(s, named[i], n) == 0)
			return n;
	}
	const char *p = s + 1;
	if (p >= end || *p != '#')
		return 0;
	p++;
	int hex = p < end && *p == 'x';
	p += hex;
	const char *digits = p;
	while (p < end && (hex ? isxdigit((unsigned char)*p) : isdigit((unsigned char)*p)))
		p++;
	if (p == digits || p >= end || *p != ';')
		return 0;
	return (size_t)(p + 1 - s);
}

static int check_text(struct xp *x, const char *s, size_t n, int in_attr)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '<' && in_attr)
			return fail(x, "'<' in an attribute value");
		if (s[i] == '&') {
			size_t e = entity_len(s + i, s + n);
			if (!e)
				return fail(x, "bad entity reference");
			i += e - 1;
		}
	}
	return 0;
}

static int read_attrs(struct xp *x, struct attr *a, int *na, int *empty)
{
	*na = 0;
	for (;;) {
		const char *before = x->p;
		skip_ws(x);
		if (starts(x, "/>")) {
			x->p += 2;
			*empty = 1;
			return 0;
		}
		if (starts(x, ">")) {
			x->p++;
			*empty = 0;
			return 0;
		}
		if (x->p == before)
			return fail(x, "expected whitespace, '>' or '/>'");
		if (*na == XML_MAX_ATTRS)
			return fail(x, "too many attributes");
		struct attr *at = &a[*na];
		if (read_name(x, at->name) < 0)
			return -1;
		for (int i = 0; i < *na; i++)
			if (strcmp(a[i].name, at->name) == 0)
				return fail(x, "duplicate attribute");
		skip_ws(x);
		if (!starts(x, "="))
			return fail(x, "expected '=' after an attribute name");
		x->p++;
		skip_ws(x);
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return fail(x, "attribute value must be quoted");
		char q = *x->p++;
		const char *v = memchr(x->p, q, (size_t)(x->end - x->p));
		if (!v)
			return fail(x, "unterminated attribute value");
		at->val = x->p;
		at->len = (size_t)(v - x->p);
		if (check_text(x, at->val, at->len, 1) < 0)
			return -1;
		x->p = v + 1;
		(*na)++;
	}
}

static int is_count(const struct attr *a)
{
	if (a->len == 0 || a->len > 9)
		return 0;
	for (size_t i = 0; i < a->len; i++)
		if (!isdigit((unsigned char)a->val[i]))
			return 0;
	return 1;
}

static int is_time(const struct attr *a, double *out)
{
	char buf[64], *end;
	if (a->len == 0 || a->len >= sizeof(buf))
		return 0;
	memcpy(buf, a->val, a->len);
	buf[a->len] = '\0';
	if (!isdigit((unsigned char)buf[0]) && buf[0] != '.')
		return 0;
	*out = strtod(buf, &end);
	return *end == '\0' && isfinite(*out) && *out >= 0;
}

/* JUnit counters on the element just read. */
static int check_junit(struct xp *x, const char *name, const struct attr *a, int na)
{
	static const char *const counts[] = { "tests",   "failures", "errors",
					      "skipped", "disabled", NULL };
	int suite = strcmp(name, "testsuite") == 0 || strcmp(name, "testsuites") == 0;
	if (!suite && strcmp(name, "testcase") != 0)
		return 0;
	struct json_object *o = suite ? json_object_new_object() : NULL;
	if (o)
		json_object_object_add(o, "element", json_object_new_string(name));
	for (int i = 0; i < na; i++) {
		double t;
		char msg[320];
		if (suite && fake_in(a[i].name, counts)) {
			if (!is_count(&a[i])) {
				snprintf(msg, sizeof(msg), "<%s %s> must be a non-negative integer",
					 name, a[i].name);
				json_object_put(o);
				return fail(x, msg);
			}
			json_object_object_add(o, a[i].name,
					       json_object_new_int((int)strtol(a[i].val, NULL, 10)));
		} else if (strcmp(a[i].name, "time") == 0) {
			if (!is_time(&a[i], &t)) {
				snprintf(msg, sizeof(msg),
					 "<%s time> must be a non-negative number", name);
				json_object_put(o);
				return fail(x, msg);
			}
			if (o)
				json_object_object_add(o, "time", json_object_new_double(t));
		} else if (o && strcmp(a[i].name, "name") == 0) {
			json_object_object_add(o, "name",
					       json_object_new_string_len(a[i].val, (int)a[i].len));
		}
	}
	if (o)
		json_object_array_add(x->suites, o);
	return 0;
}

/* Reads a start tag at '<'.  Pushes its name unless it is empty (<x/>). */
static int start_tag(struct xp *x, char stack[][XML_NAME_MAX], int *depth)
{
	struct attr *a = calloc(XML_MAX_ATTRS, sizeof(*a));
	char name[XML_NAME_MAX];
	int na, empty, rc = -1;
	if (!a)
		return fail(x, "out of memory");
	x->p++;
	if (read_name(x, name) < 0 || read_attrs(x, a, &na, &empty) < 0 ||
	    check_junit(x, name, a, na) < 0)
		goto done;
	if (*depth == 0 && strcmp(name, "testsuite") != 0 && strcmp(name, "testsuites") != 0) {
		fail(x, "the root element must be <testsuite> or <testsuites>");
		goto done;
	}
	if (!empty) {
		if (*depth == XML_MAX_DEPTH) {
			fail(x, "nesting too deep");
			goto done;
		}
		memcpy(stack[(*depth)++], name, sizeof(name));
	}
	rc = 0;
done:
	free(a);
	return rc;
}

static int end_tag(struct xp *x, char stack[][XML_NAME_MAX], int *depth)
{
	char name[XML_NAME_MAX];
	x->p += 2;
	if (read_name(x, name) < 0)
		return -1;
	skip_ws(x);
	if (!starts(x, ">"))
		return fail(x, "expected '>' in an end tag");
	x->p++;
	if (*depth == 0 || strcmp(stack[*depth - 1], name) != 0)
		return fail(x, "end tag does not match the open element");
	(*depth)--;
	return 0;
}

/* Comments, PIs, CDATA: allowed anywhere in content.  1 if one was skipped. */
static int misc(struct xp *x, int in_root)
{
	if (starts(x, "<!--"))
		return skip_past(x, "-->", "unterminated comment") < 0 ? -1 : 1;
	if (starts(x, "<?"))
		return skip_past(x, "?>", "unterminated processing instruction") < 0 ? -1 : 1;
	if (in_root && starts(x, "<![CDATA["))
		return skip_past(x, "]]>", "unterminated CDATA section") < 0 ? -1 : 1;
	return 0;
}

static int content(struct xp *x)
{
	char(*stack)[XML_NAME_MAX] = calloc(XML_MAX_DEPTH, XML_NAME_MAX);
	int depth = 0, seen_root = 0, rc = -1;
	if (!stack)
		return fail(x, "out of memory");
	while (x->p < x->end) {
		if (depth == 0)
			skip_ws(x);
		if (x->p == x->end)
			break;
		int m = misc(x, depth > 0);
		if (m < 0)
			goto done;
		if (m)
			continue;
		if (depth == 0) {
			if (starts(x, "<!DOCTYPE")) {
				const char *gt = memchr(x->p, '>', (size_t)(x->end - x->p));
				const char *br = memchr(x->p, '[', (size_t)(x->end - x->p));
				if (!gt || (br && br < gt)) {
					fail(x, "DOCTYPE internal subsets are not supported");
					goto done;
				}
				x->p = gt + 1;
				continue;
			}
			if (seen_root) {
				fail(x, "content after the root element");
				goto done;
			}
			if (!starts(x, "<") || starts(x, "</")) {
				fail(x, "expected the root element");
				goto done;
			}
			seen_root = 1;
			if (start_tag(x, stack, &depth) < 0)
				goto done;
			continue;
		}
		if (starts(x, "</")) {
			if (end_tag(x, stack, &depth) < 0)
				goto done;
		} else if (starts(x, "<")) {
			if (start_tag(x, stack, &depth) < 0)
				goto done;
		} else {
			const char *lt = memchr(x->p, '<', (size_t)(x->end - x->p));
			const char *stop = lt ? lt : x->end;
			if (check_text(x, x->p, (size_t)(stop - x->p), 0) < 0)
				goto done;
			if (memmem(x->p, (size_t)(stop - x->p), "]]>", 3)) {
				fail(x, "']]>' in text");
				goto done;
			}
			x->p = stop;
		}
	}
	if (depth > 0)
		fail(x, "unclosed element");
	else if (!seen_root)
		fail(x, "no root element");
	else
		rc = 0;
done:
	free(stack);
	return rc;
}

int fake_junit_check(const char *data, size_t len, struct json_object **suites, char *err,
		     size_t errlen)
{
	struct xp x = { .start = data,
			.p = data,
			.end = data + len,
			.err = err,
			.errlen = errlen,
			.suites = json_object_new_array() };
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
		x.p += 3;
	if (memchr(data, '\0', len)) {
		json_object_put(x.suites);
		snprintf(err, errlen, "NUL byte in XML");
		return -1;
	}
	if (content(&x) < 0) {
		json_object_put(x.suites);
		return -1;
	}
	*suites = x.suites;
	return 0;
}
