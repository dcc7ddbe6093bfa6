/*
 * fake_xml: a small well-formedness check for the JUnit XML that runbridge
 * uploads to Test Center's /import.  It is not a full XML parser: no DTD
 * internal subsets, no namespaces.  It checks what a real XML parser would
 * refuse (unbalanced or mismatched tags, bad attribute syntax, duplicate
 * attributes, bad entity references, text or a second element outside the
 * root, bytes that are not UTF-8, characters and character references
 * that XML 1.0 forbids: control characters but tab, newline and carriage
 * return, U+FFFE, U+FFFF, surrogates) and the JUnit counters:
 * tests/failures/errors/skipped/disabled are non-negative integers and time
 * a non-negative number, on <testsuite>, <testsuites> and (time only)
 * <testcase>.  Each suite's failures, errors and skipped, when given, must
 * equal the <failure>, <error> and <skipped> results of the testcases in
 * it, tests must be at least its testcases, and a testcase holds at most
 * one result element.
 *
 * What it read is handed back for tests: one object per <testsuite(s)>
 * {element, name, tests, failures, errors, skipped, time, cases}, where
 * cases (of the testcases directly in it) are {name, classname, time,
 * result: passed|failure|error|skipped, message, type, text}, attribute
 * values and text with their references expanded.
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

/* One open element.  For suites: the object handed back, the counters
 * declared (-1: absent) and counted; for a testcase its object; for a
 * result element its text so far. */
struct frame {
	char name[XML_NAME_MAX];
	struct json_object *obj; /* borrowed: owned by x->suites or a suite's cases */
	long long declared[4];   /* tests, failures, errors, skipped */
	long long counted[4];
	int results;       /* result elements seen (testcase) */
	struct sbuf *text; /* the text of a result element, being built */
};

enum { C_TESTS, C_FAILURES, C_ERRORS, C_SKIPPED };

/* A growable string (text being expanded). */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return; /* the text is cut; the check itself goes on */
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static struct json_object *sb_json(const struct sbuf *b)
{
	return json_object_new_string_len(b->p ? b->p : "", (int)b->len);
}

struct xp {
	const char *start, *p, *end;
	char *err;
	size_t errlen;
	struct json_object *suites;
	struct frame *stack;
	int depth;
};

struct attr {
	char name[XML_NAME_MAX];
	const char *val; /* raw value, entities unexpanded */
	size_t len;
};

static int xml_fail(struct xp *x, const char *msg)
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
		return xml_fail(x, what);
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
		return xml_fail(x, "expected a name");
	while (x->p < x->end && name_char((unsigned char)*x->p, 0)) {
		if (n == XML_NAME_MAX - 1)
			return xml_fail(x, "name too long");
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

/* XML 1.0's Char production. */
static int xml_char(unsigned long cp)
{
	return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
	       (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

/* The well-formed UTF-8 character at s: its length (0: not one). */
static size_t utf8_at(const unsigned char *s, size_t n, unsigned long *cp)
{
	size_t len = s[0] < 0x80             ? 1
		     : (s[0] & 0xE0) == 0xC0 ? 2
		     : (s[0] & 0xF0) == 0xE0 ? 3
		     : (s[0] & 0xF8) == 0xF0 ? 4
					     : 0;
	static const unsigned long min[] = { 0, 0, 0x80, 0x800, 0x10000 };

	if (!len || len > n)
		return 0;
	*cp = len == 1 ? s[0] : s[0] & (0x7F >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		*cp = *cp << 6 | (s[i] & 0x3F);
	}
	if (*cp < min[len] || (*cp >= 0xD800 && *cp <= 0xDFFF) || *cp > 0x10FFFF)
		return 0;
	return len;
}

/* The whole document is UTF-8 of characters XML 1.0 allows. */
static int check_chars(struct xp *x)
{
	const unsigned char *s = (const unsigned char *)x->p;
	size_t n = (size_t)(x->end - x->p);

	for (size_t i = 0; i < n;) {
		unsigned long cp;
		size_t l = utf8_at(s + i, n - i, &cp);
		if (!l || !xml_char(cp)) {
			snprintf(x->err, x->errlen, "at byte %ld: %s",
				 (long)(x->p - x->start) + (long)i,
				 l ? "a character XML 1.0 forbids" : "not UTF-8");
			return -1;
		}
		i += l;
	}
	return 0;
}

static void put_utf8(struct sbuf *out, unsigned long cp)
{
	char b[4];
	int n;

	if (cp < 0x80)
		b[0] = (char)cp, n = 1;
	else if (cp < 0x800)
		b[0] = (char)(0xC0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
	else if (cp < 0x10000)
		b[0] = (char)(0xE0 | cp >> 12), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
		b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
	else
		b[0] = (char)(0xF0 | cp >> 18), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
	sb_add(out, b, (size_t)n);
}

/* The character an entity reference of length n at s stands for. */
static unsigned long entity_value(const char *s, size_t n)
{
	static const char *const named[] = { "&lt;", "&gt;", "&amp;", "&apos;", "&quot;" };
	static const char chars[] = "<>&'\"";

	for (size_t i = 0; i < 5; i++)
		if (n == strlen(named[i]) && memcmp(s, named[i], n) == 0)
			return (unsigned char)chars[i];
	if (s[2] == 'x')
		return strtoul(s + 3, NULL, 16);
	return strtoul(s + 2, NULL, 10);
}

/* Checks text or an attribute value; appends it, references expanded, to
 * out (unless NULL). */
static int check_text(struct xp *x, const char *s, size_t n, int in_attr, struct sbuf *out)
{
	size_t from = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '<' && in_attr)
			return xml_fail(x, "'<' in an attribute value");
		if (s[i] == '&') {
			size_t e = entity_len(s + i, s + n);
			unsigned long cp;
			if (!e)
				return xml_fail(x, "bad entity reference");
			cp = entity_value(s + i, e);
			if (!xml_char(cp))
				return xml_fail(x, "a character reference to a character XML 1.0 "
						   "forbids");
			if (out) {
				sb_add(out, s + from, i - from);
				put_utf8(out, cp);
			}
			i += e - 1;
			from = i + 1;
		}
	}
	if (out)
		sb_add(out, s + from, n - from);
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
			return xml_fail(x, "expected whitespace, '>' or '/>'");
		if (*na == XML_MAX_ATTRS)
			return xml_fail(x, "too many attributes");
		struct attr *at = &a[*na];
		if (read_name(x, at->name) < 0)
			return -1;
		for (int i = 0; i < *na; i++)
			if (strcmp(a[i].name, at->name) == 0)
				return xml_fail(x, "duplicate attribute");
		skip_ws(x);
		if (!starts(x, "="))
			return xml_fail(x, "expected '=' after an attribute name");
		x->p++;
		skip_ws(x);
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return xml_fail(x, "attribute value must be quoted");
		char q = *x->p++;
		const char *v = memchr(x->p, q, (size_t)(x->end - x->p));
		if (!v)
			return xml_fail(x, "unterminated attribute value");
		at->val = x->p;
		at->len = (size_t)(v - x->p);
		if (check_text(x, at->val, at->len, 1, NULL) < 0)
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

static const char *const counter_names[] = { "tests", "failures", "errors", "skipped" };

static int is_suite(const char *name)
{
	return strcmp(name, "testsuite") == 0 || strcmp(name, "testsuites") == 0;
}

/* The counter a result element counts in, or -1. */
static int result_counter(const char *name)
{
	return strcmp(name, "failure") == 0   ? C_FAILURES
	       : strcmp(name, "error") == 0   ? C_ERRORS
	       : strcmp(name, "skipped") == 0 ? C_SKIPPED
					      : -1;
}

/* The attribute's value with its references expanded. */
static struct json_object *attr_json(struct xp *x, const struct attr *a)
{
	struct sbuf b = { 0 };
	struct json_object *o;

	check_text(x, a->val, a->len, 1, &b); /* checked already by read_attrs */
	o = sb_json(&b);
	free(b.p);
	return o;
}

static const struct attr *attr_find(const struct attr *a, int na, const char *name)
{
	for (int i = 0; i < na; i++)
		if (strcmp(a[i].name, name) == 0)
			return &a[i];
	return NULL;
}

/* Counts one more of counter c in every open suite. */
static void count_up(struct xp *x, int c)
{
	for (int i = 0; i < x->depth; i++)
		if (is_suite(x->stack[i].name))
			x->stack[i].counted[c]++;
}

static struct frame *innermost_suite(struct xp *x)
{
	for (int i = x->depth - 1; i >= 0; i--)
		if (is_suite(x->stack[i].name))
			return &x->stack[i];
	return NULL;
}

/* JUnit counters on a suite or testcase just read (fr->name). */
static int check_counters(struct xp *x, struct frame *fr, const struct attr *a, int na)
{
	static const char *const counts[] = { "tests",   "failures", "errors",
					      "skipped", "disabled", NULL };
	int suite = is_suite(fr->name);
	char msg[320];

	for (int i = 0; i < na; i++) {
		double t;
		if (suite && fake_in(a[i].name, counts)) {
			long v;
			if (!is_count(&a[i])) {
				snprintf(msg, sizeof(msg), "<%s %s> must be a non-negative integer",
					 fr->name, a[i].name);
				return xml_fail(x, msg);
			}
			v = strtol(a[i].val, NULL, 10);
			json_object_object_add(fr->obj, a[i].name, json_object_new_int((int)v));
			for (int c = 0; c < 4; c++)
				if (strcmp(a[i].name, counter_names[c]) == 0)
					fr->declared[c] = v;
		} else if (strcmp(a[i].name, "time") == 0) {
			if (!is_time(&a[i], &t)) {
				snprintf(msg, sizeof(msg),
					 "<%s time> must be a non-negative number", fr->name);
				return xml_fail(x, msg);
			}
			json_object_object_add(fr->obj, "time", json_object_new_double(t));
		} else if (strcmp(a[i].name, "name") == 0 ||
			   (!suite && strcmp(a[i].name, "classname") == 0)) {
			json_object_object_add(fr->obj, a[i].name, attr_json(x, &a[i]));
		}
	}
	return 0;
}

/* A <testcase>: recorded in the innermost suite's cases. */
static int open_case(struct xp *x, struct frame *fr)
{
	struct frame *suite = innermost_suite(x);
	struct json_object *cases;

	if (!suite)
		return xml_fail(x, "a <testcase> outside a <testsuite>");
	if (!json_object_object_get_ex(suite->obj, "cases", &cases)) {
		cases = json_object_new_array();
		json_object_object_add(suite->obj, "cases", cases);
	}
	fr->obj = json_object_new_object();
	json_object_object_add(fr->obj, "result", json_object_new_string("passed"));
	json_object_array_add(cases, fr->obj);
	count_up(x, C_TESTS);
	return 0;
}

/* <failure>, <error>, <skipped>: the result of the enclosing testcase. */
static int open_result(struct xp *x, struct frame *fr, int c, const struct attr *a, int na)
{
	struct frame *tc = x->depth ? &x->stack[x->depth - 1] : NULL;
	const struct attr *msg = attr_find(a, na, "message"), *type = attr_find(a, na, "type");

	if (!tc || strcmp(tc->name, "testcase") != 0)
		return xml_fail(x, "a result element outside a <testcase>");
	if (tc->results++ > 0)
		return xml_fail(x, "a <testcase> with more than one result element");
	fr->obj = tc->obj;
	json_object_object_add(fr->obj, "result", json_object_new_string(fr->name));
	if (msg)
		json_object_object_add(fr->obj, "message", attr_json(x, msg));
	if (type)
		json_object_object_add(fr->obj, "type", attr_json(x, type));
	fr->text = calloc(1, sizeof(*fr->text));
	count_up(x, c);
	return 0;
}

/* The JUnit meaning of an element just read into fr. */
static int element_open(struct xp *x, struct frame *fr, const struct attr *a, int na)
{
	int c = result_counter(fr->name);

	for (int i = 0; i < 4; i++)
		fr->declared[i] = -1;
	if (is_suite(fr->name)) {
		fr->obj = json_object_new_object();
		json_object_object_add(fr->obj, "element", json_object_new_string(fr->name));
		json_object_array_add(x->suites, fr->obj);
	} else if (strcmp(fr->name, "testcase") == 0) {
		if (open_case(x, fr) < 0)
			return -1;
	} else if (c >= 0) {
		return open_result(x, fr, c, a, na);
	} else {
		return 0;
	}
	return check_counters(x, fr, a, na);
}

/* A suite's declared counters against what it held; a result's text. */
static int element_close(struct xp *x, struct frame *fr)
{
	char msg[320];

	if (fr->text) {
		if (fr->text->len)
			json_object_object_add(fr->obj, "text", sb_json(fr->text));
		free(fr->text->p);
		free(fr->text);
		fr->text = NULL;
	}
	if (!is_suite(fr->name))
		return 0;
	for (int c = C_FAILURES; c <= C_SKIPPED; c++)
		if (fr->declared[c] >= 0 && fr->declared[c] != fr->counted[c]) {
			snprintf(msg, sizeof(msg), "<%s %s=\"%lld\"> holds %lld of them", fr->name,
				 counter_names[c], fr->declared[c], fr->counted[c]);
			return xml_fail(x, msg);
		}
	if (fr->declared[C_TESTS] >= 0 && fr->declared[C_TESTS] < fr->counted[C_TESTS]) {
		snprintf(msg, sizeof(msg), "<%s tests=\"%lld\"> holds %lld testcases", fr->name,
			 fr->declared[C_TESTS], fr->counted[C_TESTS]);
		return xml_fail(x, msg);
	}
	return 0;
}

/* Reads a start tag at '<'.  Pushes its frame unless it is empty (<x/>). */
static int start_tag(struct xp *x)
{
	struct attr *a = calloc(XML_MAX_ATTRS, sizeof(*a));
	struct frame fr = { .obj = NULL };
	int na, empty, rc = -1;
	if (!a)
		return xml_fail(x, "out of memory");
	x->p++;
	if (read_name(x, fr.name) < 0 || read_attrs(x, a, &na, &empty) < 0)
		goto done;
	if (x->depth == 0 && !is_suite(fr.name)) {
		xml_fail(x, "the root element must be <testsuite> or <testsuites>");
		goto done;
	}
	if (element_open(x, &fr, a, na) < 0)
		goto done;
	if (empty) {
		rc = element_close(x, &fr);
		goto done;
	}
	if (x->depth == XML_MAX_DEPTH) {
		xml_fail(x, "nesting too deep");
		goto done;
	}
	x->stack[x->depth++] = fr;
	fr.text = NULL;
	rc = 0;
done:
	if (fr.text) {
		free(fr.text->p);
		free(fr.text);
	}
	free(a);
	return rc;
}

static int end_tag(struct xp *x)
{
	char name[XML_NAME_MAX];
	x->p += 2;
	if (read_name(x, name) < 0)
		return -1;
	skip_ws(x);
	if (!starts(x, ">"))
		return xml_fail(x, "expected '>' in an end tag");
	x->p++;
	if (x->depth == 0 || strcmp(x->stack[x->depth - 1].name, name) != 0)
		return xml_fail(x, "end tag does not match the open element");
	x->depth--;
	return element_close(x, &x->stack[x->depth]);
}

/* The text being collected at the innermost element, or NULL. */
static struct sbuf *text_sink(struct xp *x)
{
	return x->depth ? x->stack[x->depth - 1].text : NULL;
}

/* Comments, PIs, CDATA: allowed anywhere in content.  1 if one was skipped. */
static int misc(struct xp *x, int in_root)
{
	if (starts(x, "<!--"))
		return skip_past(x, "-->", "unterminated comment") < 0 ? -1 : 1;
	if (starts(x, "<?"))
		return skip_past(x, "?>", "unterminated processing instruction") < 0 ? -1 : 1;
	if (in_root && starts(x, "<![CDATA[")) {
		const char *from = x->p + 9;
		if (skip_past(x, "]]>", "unterminated CDATA section") < 0)
			return -1;
		if (text_sink(x))
			sb_add(text_sink(x), from, (size_t)(x->p - 3 - from));
		return 1;
	}
	return 0;
}

static int text_node(struct xp *x)
{
	const char *lt = memchr(x->p, '<', (size_t)(x->end - x->p));
	const char *stop = lt ? lt : x->end;

	if (check_text(x, x->p, (size_t)(stop - x->p), 0, text_sink(x)) < 0)
		return -1;
	if (memmem(x->p, (size_t)(stop - x->p), "]]>", 3))
		return xml_fail(x, "']]>' in text");
	x->p = stop;
	return 0;
}

/* Outside the root: a DOCTYPE (1 if one was skipped) or the root itself. */
static int prolog(struct xp *x, int *seen_root)
{
	if (starts(x, "<!DOCTYPE")) {
		const char *gt = memchr(x->p, '>', (size_t)(x->end - x->p));
		const char *br = memchr(x->p, '[', (size_t)(x->end - x->p));
		if (!gt || (br && br < gt))
			return xml_fail(x, "DOCTYPE internal subsets are not supported");
		x->p = gt + 1;
		return 0;
	}
	if (*seen_root)
		return xml_fail(x, "content after the root element");
	if (!starts(x, "<") || starts(x, "</"))
		return xml_fail(x, "expected the root element");
	*seen_root = 1;
	return start_tag(x);
}

static int content(struct xp *x)
{
	int seen_root = 0, rc = -1;
	x->stack = calloc(XML_MAX_DEPTH, sizeof(*x->stack));
	if (!x->stack)
		return xml_fail(x, "out of memory");
	while (x->p < x->end) {
		int m;
		if (x->depth == 0)
			skip_ws(x);
		if (x->p == x->end)
			break;
		if ((m = misc(x, x->depth > 0)) < 0)
			goto done;
		if (m)
			continue;
		if (x->depth == 0)
			m = prolog(x, &seen_root);
		else if (starts(x, "</"))
			m = end_tag(x);
		else if (starts(x, "<"))
			m = start_tag(x);
		else
			m = text_node(x);
		if (m < 0)
			goto done;
	}
	if (x->depth > 0)
		xml_fail(x, "unclosed element");
	else if (!seen_root)
		xml_fail(x, "no root element");
	else
		rc = 0;
done:
	for (int i = 0; i < x->depth; i++)
		if (x->stack[i].text) {
			free(x->stack[i].text->p);
			free(x->stack[i].text);
		}
	free(x->stack);
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
	if (check_chars(&x) < 0 || content(&x) < 0) {
		json_object_put(x.suites);
		return -1;
	}
	*suites = x.suites;
	return 0;
}
