/*
 * junit: the JUnit XML builder.  The document is written into one growable
 * buffer with a hard cap; every name and message passes through xml_text,
 * which escapes markup and replaces what XML 1.0 cannot carry.
 */
#include "targets/junit.h"
#include "core/buf.h"
#include "core/utf8.h"
#include "store/results.h"

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

/* -1 with err for the buffer's sticky error (0 when there is none). */
static int buf_failed(const struct buf *b, struct err *err)
{
	int e = buf_error(b);

	if (!e)
		return 0;
	return e == ERR_NOMEM ? err_set(err, "out of memory")
			      : err_set(err, "junit: the report is over %u bytes", JUNIT_MAX_BYTES);
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
	if (buf_failed(&b, err) < 0) {
		buf_free(&b);
		return -1;
	}
	*out = buf_detach(&b, len);
	return *out ? 0 : err_set(err, "out of memory");
}

/* ---- from the results ------------------------------------------------------ */

/* Blanks kept in the <testsuite> start tag for the counters: five numbers
 * of at most 20 digits and their names fit. */
#define DOC_ROOM 200

/* What a result becomes. */
enum jcase { J_OMIT, J_PASS, J_FAIL, J_ERROR, J_SKIP };

static enum jcase jcase_of(const char *status)
{
	static const struct {
		const char *status;
		enum jcase c;
	} map[] = {
		{ "passed", J_PASS },      { "failed", J_FAIL },  { "blocked", J_ERROR },
		{ "invalid", J_ERROR },    { "skipped", J_SKIP }, { "untested", J_OMIT },
		{ "in_progress", J_OMIT },
	};

	if (!status || !*status)
		return J_OMIT;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(status, map[i].status) == 0)
			return map[i].c;
	return J_SKIP; /* a custom status: neither passed nor failed */
}

static int nonempty(const char *s)
{
	return s && *s;
}

int junit_doc_begin(struct junit_doc *d, const char *suite, const char *timestamp,
		    long long duration_ms, const char *results_status, struct err *err)
{
	memset(d, 0, sizeof(*d));
	buf_init(&d->b, JUNIT_MAX_BYTES);
	d->duration_ms = duration_ms;
	buf_adds(&d->b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			"<testsuites>\n<testsuite name=\"");
	xml_text(&d->b, suite ? suite : "", JUNIT_NAME_MAX);
	buf_adds(&d->b, "\"");
	if (timestamp) {
		buf_adds(&d->b, " timestamp=\"");
		xml_text(&d->b, timestamp, 64);
		buf_adds(&d->b, "\"");
	}
	d->room_at = d->b.len;
	buf_addf(&d->b, "%*s>\n", DOC_ROOM, "");
	if (results_status) {
		buf_adds(&d->b, "<properties><property name=\"qase.results\" value=\"");
		xml_text(&d->b, results_status, 64);
		buf_adds(&d->b, "\"/></properties>\n");
	}
	return buf_failed(&d->b, err);
}

/* The message attribute: a failure's own text is Qase's comment; other
 * outcomes say what Qase called them first ("blocked in Qase: ..."). */
static void case_message(struct buf *b, const struct result_row *r, enum jcase c)
{
	buf_adds(b, " message=\"");
	if (c == J_FAIL && nonempty(r->message)) {
		xml_text(b, r->message, JUNIT_MSG_MAX);
	} else {
		xml_text(b, r->status, 64);
		buf_adds(b, " in Qase");
		if (nonempty(r->message)) {
			buf_adds(b, ": ");
			xml_text(b, r->message, JUNIT_MSG_MAX);
		}
	}
	buf_adds(b, "\"");
}

/* <failure>, <error> or <skipped>, with the stack trace as text while the
 * document is under JUNIT_TRACE_BUDGET. */
static void case_child(struct junit_doc *d, const struct result_row *r, enum jcase c)
{
	static const char *const tag[] = {
		[J_FAIL] = "failure", [J_ERROR] = "error", [J_SKIP] = "skipped"
	};
	struct buf *b = &d->b;
	int trace = c != J_SKIP && nonempty(r->stacktrace) && b->len < JUNIT_TRACE_BUDGET;

	buf_addf(b, "><%s", tag[c]);
	case_message(b, r, c);
	if (c != J_SKIP) {
		buf_adds(b, " type=\"");
		xml_text(b, r->status, 64);
		buf_adds(b, "\"");
	}
	if (trace) {
		buf_adds(b, ">");
		xml_text(b, r->stacktrace, JUNIT_TRACE_MAX);
		buf_addf(b, "</%s>", tag[c]);
	} else {
		buf_adds(b, "/>");
	}
	buf_adds(b, "</testcase>\n");
}

int junit_doc_case(struct junit_doc *d, const struct result_row *r, struct err *err)
{
	enum jcase c = jcase_of(r->status);
	struct buf *b = &d->b;

	if (c == J_OMIT)
		return buf_failed(b, err);
	if (d->tests >= JUNIT_MAX_CASES)
		return err_set(err, "junit: more than %d results", JUNIT_MAX_CASES);
	buf_adds(b, "<testcase name=\"");
	if (nonempty(r->title))
		xml_text(b, r->title, JUNIT_NAME_MAX);
	else
		buf_addf(b, "Qase case %lld", r->case_id);
	buf_adds(b, "\"");
	if (nonempty(r->suite)) {
		buf_adds(b, " classname=\"");
		xml_text(b, r->suite, JUNIT_NAME_MAX);
		buf_adds(b, "\"");
	}
	if (r->duration_ms >= 0) {
		long long ms = nonneg(r->duration_ms);
		buf_addf(b, " time=\"%lld.%03lld\"", ms / 1000, ms % 1000);
		d->sum_ms += ms;
		d->timed = 1;
	}
	if (c == J_PASS)
		buf_adds(b, "/>\n");
	else
		case_child(d, r, c);
	d->tests++;
	d->failures += c == J_FAIL;
	d->errors += c == J_ERROR;
	d->skipped += c == J_SKIP;
	return buf_failed(b, err);
}

int junit_doc_end(struct junit_doc *d, char **out, size_t *len, struct err *err)
{
	char attrs[DOC_ROOM + 1];
	long long ms = nonneg(d->duration_ms >= 0 ? d->duration_ms : d->sum_ms);
	int n;

	*out = NULL;
	*len = 0;
	n = snprintf(attrs, sizeof(attrs),
		     " tests=\"%lld\" failures=\"%lld\" errors=\"%lld\" skipped=\"%lld\"", d->tests,
		     d->failures, d->errors, d->skipped);
	if (d->duration_ms >= 0 || d->timed)
		n += snprintf(attrs + n, sizeof(attrs) - (size_t)n, " time=\"%lld.%03lld\"",
			      ms / 1000, ms % 1000);
	buf_adds(&d->b, "</testsuite>\n</testsuites>\n");
	if (buf_failed(&d->b, err) < 0)
		return -1;
	/* the counters fit DOC_ROOM: tests <= JUNIT_MAX_CASES, ms <= 2^40 */
	memcpy(d->b.p + d->room_at, attrs, (size_t)n);
	*out = buf_detach(&d->b, len);
	return *out ? 0 : err_set(err, "out of memory");
}

void junit_doc_free(struct junit_doc *d)
{
	if (d)
		buf_free(&d->b);
}
