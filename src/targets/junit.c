/*
 * junit: the JUnit XML builder.  The document is written into one growable
 * buffer with a hard cap; every name and message passes through xml_text,
 * which escapes markup and replaces what XML 1.0 cannot carry.
 */
#include "targets/junit.h"
#include "core/buf.h"
#include "core/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Characters XML 1.0 allows (besides tab, newline, carriage return). */
static int xml_char_ok(unsigned cp)
{
	return cp >= 0x20 && cp != 0xfffe && cp != 0xffff;
}

/* The escape of ASCII character c, or NULL when it stands for itself.
 * Tab, newline and carriage return are written as references so that
 * attribute values keep them (a parser turns them into spaces otherwise). */
static const char *xml_escape_of(unsigned c)
{
	switch (c) {
	case '&': return "&amp;";
	case '<': return "&lt;";
	case '>': return "&gt;";
	case '"': return "&quot;";
	case '\'': return "&apos;";
	case '\t': return "&#9;";
	case '\n': return "&#10;";
	case '\r': return "&#13;";
	default: return NULL;
	}
}

/* At most max bytes of s (whole characters), escaped for text and
 * attribute values alike. */
static int xml_text(struct buf *b, const char *s, size_t max)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;

	while (i < n) {
		unsigned cp = 0;
		size_t l = utf8_char(u + i, n - i, &cp);
		const char *esc = l == 1 ? xml_escape_of(cp) : NULL;
		if (i + (l ? l : 1) > max)
			break;
		if (esc) {
			if (buf_adds(b, esc) < 0)
				return -1;
		} else if (l == 0 || !xml_char_ok(cp)) {
			if (buf_adds(b, "\xef\xbf\xbd") < 0) /* U+FFFD */
				return -1;
		} else if (buf_add(b, s + i, l) < 0) {
			return -1;
		}
		i += l ? l : 1;
	}
	return 0;
}

/* A count as used in arithmetic: unknown is 0, and absurd values are cut
 * so that sums cannot overflow (they are refused later anyway). */
static long long nonneg(long long v)
{
	return v < 0 ? 0 : v > (1LL << 40) ? (1LL << 40) : v;
}

long long junit_skipped(const struct junit_run *r)
{
	long long rest;

	if (r->aborted)
		return nonneg(r->skipped) + nonneg(r->untested);
	rest = nonneg(r->total) - nonneg(r->passed) - nonneg(r->failed) - nonneg(r->blocked);
	return nonneg(rest);
}

static long long counted(const struct junit_run *r)
{
	return nonneg(r->passed) + nonneg(r->failed) + nonneg(r->blocked) + junit_skipped(r);
}

long long junit_tests(const struct junit_run *r)
{
	long long sum = counted(r);
	return r->total > sum ? r->total : sum;
}

static int suite_open(struct buf *b, const struct junit_run *r)
{
	buf_adds(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		    "<testsuites>\n<testsuite name=\"");
	xml_text(b, r->suite, JUNIT_NAME_MAX);
	buf_addf(b, "\" tests=\"%lld\" failures=\"%lld\" errors=\"0\" skipped=\"%lld\"",
		 junit_tests(r), nonneg(r->failed) + nonneg(r->blocked), junit_skipped(r));
	if (r->duration_ms >= 0)
		buf_addf(b, " time=\"%lld.%03lld\"", r->duration_ms / 1000, r->duration_ms % 1000);
	if (r->timestamp) {
		buf_adds(b, " timestamp=\"");
		xml_text(b, r->timestamp, 64);
		buf_adds(b, "\"");
	}
	return buf_adds(b, ">\n");
}

/* n testcases "<suite> <what> 1..n", each with child (NULL: none). */
static int cases(struct buf *b, const struct junit_run *r, long long n, const char *what,
		 const char *child)
{
	for (long long i = 1; i <= n; i++) {
		buf_adds(b, "<testcase name=\"");
		xml_text(b, r->suite, JUNIT_NAME_MAX);
		buf_addf(b, " %s %lld\"", what, i);
		if (!child) {
			buf_adds(b, "/>\n");
		} else {
			buf_adds(b, ">");
			buf_adds(b, child);
			buf_adds(b, "</testcase>\n");
		}
		if (buf_error(b))
			return -1;
	}
	return 0;
}

static int body(struct buf *b, const struct junit_run *r)
{
	cases(b, r, nonneg(r->passed), "passed", NULL);
	cases(b, r, nonneg(r->failed), "failed", "<failure message=\"failed in Qase\"/>");
	cases(b, r, nonneg(r->blocked), "blocked", "<failure message=\"blocked in Qase\"/>");
	if (r->aborted) {
		cases(b, r, nonneg(r->skipped), "skipped", "<skipped message=\"skipped in Qase\"/>");
		cases(b, r, nonneg(r->untested), "untested",
		      "<skipped message=\"untested when the run was aborted in Qase\"/>");
	} else {
		cases(b, r, junit_skipped(r), "skipped",
		      "<skipped message=\"not passed, failed or blocked in Qase\"/>");
	}
	return buf_adds(b, "</testsuite>\n</testsuites>\n");
}

int junit_render(char **out, size_t *len, const struct junit_run *r, struct err *err)
{
	struct buf b;
	struct junit_run run = *r;
	long long n = counted(r);

	*out = NULL;
	*len = 0;
	if (n > JUNIT_MAX_CASES)
		return err_set(err, "junit: %lld cases is over the limit of %d", n, JUNIT_MAX_CASES);
	if (!run.suite)
		run.suite = "";
	buf_init(&b, JUNIT_MAX_BYTES);
	suite_open(&b, &run);
	body(&b, &run);
	if (buf_error(&b)) {
		int e = buf_error(&b);
		buf_free(&b);
		return e == ERR_NOMEM
			       ? err_set(err, "out of memory")
			       : err_set(err, "junit: the report is over %u bytes", JUNIT_MAX_BYTES);
	}
	*out = buf_detach(&b, len);
	return *out ? 0 : err_set(err, "out of memory");
}
