/* target_testcenter: the JUnit XML builder (junit.h), and attempts run
 * against a scripted local server (stub_http.h) with an in-memory map and
 * the run's results served from an array (a.results).  The JUnit files are
 * checked by the Test Center fake's own XML checker (tests/fakes/fake_xml.c,
 * compiled in), which also reads them back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/results.h"
#include "targets/junit.h"
#include "targets/target.h"
#include "stub_http.h"

/* The fake's checker needs only this of fake_common.c. */
#include "../fakes/fake_xml.c"

int fake_in(const char *s, const char *const *list)
{
	for (; s && *list; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* ---- junit ------------------------------------------------------------------ */

/* noinline: gcc 12 -O2 reports a false dangling pointer once it is inlined */
__attribute__((noinline)) static char *xml_of(const struct junit_run *r)
{
	char *xml = NULL;
	size_t len = 0;
	struct err e = { 0 };

	if (junit_render(&xml, &len, r, &e) < 0)
		fail_msg("junit_render: %s", e.msg);
	assert_int_equal(strlen(xml), len);
	return xml;
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void test_junit__completed_counts_and_synthetic_cases(void **state)
{
	struct junit_run r = { .suite = "Nightly",
			       .timestamp = "2022-04-21T11:23:14Z",
			       .duration_ms = 31200,
			       .total = 14,
			       .passed = 10,
			       .failed = 3,
			       .blocked = 1,
			       .skipped = -1,
			       .untested = -1 };
	char *xml = xml_of(&r);
	(void)state;

	assert_non_null(strstr(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"));
	assert_non_null(strstr(xml, "<testsuite name=\"Nightly\" tests=\"14\" failures=\"4\" "
				    "errors=\"0\" skipped=\"0\" time=\"31.200\" "
				    "timestamp=\"2022-04-21T11:23:14Z\">"));
	assert_int_equal(count_of(xml, "<testcase "), 14);
	assert_non_null(strstr(xml, "<testcase name=\"Nightly passed 1\"/>"));
	assert_non_null(strstr(xml, "<testcase name=\"Nightly passed 10\"/>"));
	assert_null(strstr(xml, "Nightly passed 11"));
	assert_non_null(strstr(
		xml,
		"<testcase name=\"Nightly failed 3\"><failure message=\"failed in Qase\"/></testcase>"));
	assert_non_null(strstr(
		xml,
		"<testcase name=\"Nightly blocked 1\"><failure message=\"blocked in Qase\"/></testcase>"));
	assert_int_equal(count_of(xml, "<failure "), 4);
	assert_int_equal(count_of(xml, "<skipped "), 0);
	assert_non_null(strstr(xml, "</testsuite>\n</testsuites>\n"));
	free(xml);
}

static void test_junit__completed_skipped_is_what_is_left(void **state)
{
	struct junit_run r = { .suite = "S",
			       .duration_ms = 5,
			       .total = 14,
			       .passed = 5,
			       .failed = 2,
			       .blocked = 1,
			       .skipped = 99,
			       .untested = 99 };
	char *xml = xml_of(&r);
	(void)state;

	/* run.completed has no skipped/untested: they are ignored if set */
	assert_int_equal(junit_skipped(&r), 6);
	assert_non_null(strstr(
		xml, "tests=\"14\" failures=\"3\" errors=\"0\" skipped=\"6\" time=\"0.005\""));
	assert_int_equal(count_of(xml, "<testcase "), 14);
	assert_int_equal(count_of(xml, "<skipped "), 6);
	assert_non_null(strstr(xml, "<testcase name=\"S skipped 6\"><skipped "));
	free(xml);
}

static void test_junit__aborted_skipped_is_skipped_plus_untested(void **state)
{
	struct junit_run r = { .suite = "S",
			       .duration_ms = 0,
			       .total = 14,
			       .passed = 1,
			       .failed = 0,
			       .blocked = 0,
			       .skipped = 2,
			       .untested = 10,
			       .aborted = 1 };
	char *xml = xml_of(&r);
	(void)state;

	assert_int_equal(junit_skipped(&r), 12);
	assert_non_null(strstr(
		xml, "tests=\"14\" failures=\"0\" errors=\"0\" skipped=\"12\" time=\"0.000\""));
	/* one case is neither (invalid, in progress): counted in tests only */
	assert_int_equal(count_of(xml, "<testcase "), 13);
	assert_non_null(strstr(
		xml, "<testcase name=\"S skipped 2\"><skipped message=\"skipped in Qase\"/>"));
	assert_non_null(strstr(xml, "<testcase name=\"S untested 10\"><skipped "));
	free(xml);
}

static void test_junit__unknown_counts_and_duration(void **state)
{
	struct junit_run r = { .suite = "S",
			       .duration_ms = -1,
			       .total = -1,
			       .passed = 2,
			       .failed = -1,
			       .blocked = -1,
			       .skipped = -1,
			       .untested = -1 };
	char *xml = xml_of(&r);
	(void)state;

	assert_non_null(strstr(
		xml, "<testsuite name=\"S\" tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"0\">"));
	assert_null(strstr(xml, "time="));
	assert_null(strstr(xml, "timestamp="));
	/* counts larger than the total: tests is never below the cases */
	r.total = 1;
	assert_int_equal(junit_tests(&r), 2);
	free(xml);
}

static void test_junit__escapes_markup_in_titles(void **state)
{
	struct junit_run r = { .suite = "a<b>&\"c'd",
			       .timestamp = "\"><x/>",
			       .duration_ms = 1,
			       .total = 1,
			       .failed = 1,
			       .passed = 0,
			       .blocked = 0 };
	char *xml = xml_of(&r);
	(void)state;

	assert_non_null(strstr(xml, "<testsuite name=\"a&lt;b&gt;&amp;&quot;c&apos;d\" "));
	assert_non_null(strstr(xml, "timestamp=\"&quot;&gt;&lt;x/&gt;\""));
	assert_non_null(strstr(xml, "<testcase name=\"a&lt;b&gt;&amp;&quot;c&apos;d failed 1\">"));
	assert_null(strstr(xml, "<x/>"));
	assert_null(strstr(xml, "c'd"));
	free(xml);
}

static void test_junit__replaces_what_xml_cannot_carry(void **state)
{
	struct junit_run r = { .suite = "a\x01"
					"b\nc\td\xff"
					"e \xc3\xbc \xef\xbf\xbe",
			       .total = 0 };
	char *xml = xml_of(&r);
	(void)state;

	/* control characters and invalid UTF-8 become U+FFFD; newline and tab
	 * are kept as references; ü passes */
	assert_non_null(strstr(xml, "name=\"a\xef\xbf\xbd"
				    "b&#10;c&#9;d\xef\xbf\xbd"
				    "e \xc3\xbc \xef\xbf\xbd\""));
	free(xml);
}

static void test_junit__long_suite_names_are_cut_at_a_character(void **state)
{
	char name[JUNIT_NAME_MAX + 64];
	struct junit_run r = { .suite = name, .total = 0 };
	char *xml;
	size_t at, n;
	(void)state;

	/* "é" is 2 bytes: an odd cap lands inside one */
	for (size_t i = 0; i + 2 < sizeof(name); i += 2)
		memcpy(name + i, "\xc3\xa9", 2);
	name[sizeof(name) - 2] = '\0';
	xml = xml_of(&r);
	assert_non_null(strstr(xml, "name=\""));
	at = (size_t)(strstr(xml, "name=\"") - xml) + 6;
	n = strcspn(xml + at, "\"");
	assert_true(n <= JUNIT_NAME_MAX);
	assert_int_equal(n % 2, 0);
	free(xml);
}

static void test_junit__refuses_absurd_counts(void **state)
{
	struct junit_run r = { .suite = "S", .total = -1, .passed = JUNIT_MAX_CASES + 1 };
	char *xml = (char *)1;
	size_t len = 1;
	struct err e = { 0 };
	(void)state;

	assert_int_equal(junit_render(&xml, &len, &r, &e), -1);
	assert_null(xml);
	assert_non_null(strstr(e.msg, "over the limit"));
	r.passed = 0;
	r.total = 1LL << 62; /* completed: the rest would be skipped */
	assert_int_equal(junit_render(&xml, &len, &r, &e), -1);
	r.aborted = 1;
	r.skipped = r.untested = 1LL << 62;
	assert_int_equal(junit_render(&xml, &len, &r, &e), -1);
}

/* ---- junit from results ----------------------------------------------------- */

#define ROWS_MAX 300

/* The rows a test serves, with the text they point to. */
static struct result_row g_rows[ROWS_MAX];
static char g_text[ROWS_MAX][4][96];

static const char *const g_statuses[] = { "passed",  "failed",   "blocked",     "skipped",
					  "invalid", "untested", "in_progress", "retest" };

/* n rows with every status in turn, case ids 1000, 1003, ...: titles
 * "Case <i>", suites "Suite <i%5> / Sub" (none for every 4th), durations
 * i * 37 ms (unknown for every 3rd), failed ones with a message and a
 * stack trace. */
static void rows_fill(size_t n)
{
	assert_true(n <= ROWS_MAX);
	memset(g_rows, 0, sizeof(g_rows));
	for (size_t i = 0; i < n; i++) {
		struct result_row *r = &g_rows[i];
		snprintf(g_text[i][0], sizeof(g_text[i][0]), "Case %zu", i);
		snprintf(g_text[i][1], sizeof(g_text[i][1]), "Suite %zu / Sub", i % 5);
		snprintf(g_text[i][2], sizeof(g_text[i][2]), "expected %zu, got 500", i);
		snprintf(g_text[i][3], sizeof(g_text[i][3]), "at test_%zu.py:10\n  at run()", i);
		r->case_id = 1000 + (long long)i * 3;
		r->status = g_statuses[i % 8];
		r->title = g_text[i][0];
		r->suite = i % 4 == 3 ? NULL : g_text[i][1];
		r->message = i % 8 == 1 || i % 8 == 2 ? g_text[i][2] : NULL;
		r->stacktrace = i % 8 == 1 ? g_text[i][3] : NULL;
		r->duration_ms = i % 3 == 2 ? -1 : (long long)i * 37;
		r->end_ms = -1;
	}
}

/* Checks a JUnit document as the Test Center fake does; its suites. */
static json_object *fake_check_xml(const char *xml, size_t len)
{
	json_object *suites = NULL;
	char err[256];

	if (fake_junit_check(xml, len, &suites, err, sizeof(err)) < 0)
		fail_msg("the Test Center fake refuses the JUnit: %s", err);
	return suites;
}

static json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

static long long jint(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v ? json_object_get_int64(v) : -1;
}

static const char *jtext(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	return v ? json_object_get_string(v) : NULL;
}

/* A document of rows[0..n) through junit_doc_*. */
static char *doc_of(const struct result_row *rows, size_t n, long long duration_ms, size_t *len)
{
	struct junit_doc d;
	struct err e = { 0 };
	char *xml = NULL;

	if (junit_doc_begin(&d, "Nightly", "2022-04-21T11:23:14Z", duration_ms, "complete", &e) < 0)
		fail_msg("begin: %s", e.msg);
	for (size_t i = 0; i < n; i++)
		if (junit_doc_case(&d, &rows[i], &e) < 0)
			fail_msg("case: %s", e.msg);
	if (junit_doc_end(&d, &xml, len, &e) < 0)
		fail_msg("end: %s", e.msg);
	junit_doc_free(&d);
	assert_int_equal(strlen(xml), *len);
	return xml;
}

static void test_junit__results_time_in_seconds_and_classname(void **state)
{
	struct result_row rows[] = {
		{ .case_id = 1,
		  .status = "passed",
		  .title = "A",
		  .suite = "Auth / Login",
		  .duration_ms = 1250 },
		{ .case_id = 2, .status = "passed", .title = "B", .suite = "Auth", .duration_ms = 5 },
		{ .case_id = 3, .status = "passed", .title = "C", .duration_ms = 0 },
		{ .case_id = 4, .status = "passed", .title = "", .duration_ms = -1 },
	};
	size_t len;
	char *xml = doc_of(rows, 4, -1, &len);
	json_object *suites = fake_check_xml(xml, len), *cases;
	(void)state;

	assert_non_null(
		strstr(xml, "<testcase name=\"A\" classname=\"Auth / Login\" time=\"1.250\"/>\n"));
	assert_non_null(strstr(xml, "<testcase name=\"B\" classname=\"Auth\" time=\"0.005\"/>\n"));
	/* no suite: no classname; 0 ms is a duration */
	assert_non_null(strstr(xml, "<testcase name=\"C\" time=\"0.000\"/>\n"));
	/* no title: the case id; unknown duration: no time */
	assert_non_null(strstr(xml, "<testcase name=\"Qase case 4\"/>\n"));
	/* the run's duration is unknown: the suite's time is the sum */
	assert_non_null(strstr(xml, " tests=\"4\" failures=\"0\" errors=\"0\" skipped=\"0\" "
				    "time=\"1.255\""));
	assert_non_null(strstr(xml, "<property name=\"qase.results\" value=\"complete\"/>"));
	cases = jget(json_object_array_get_idx(suites, 1), "cases");
	assert_int_equal(json_object_array_length(cases), 4);
	assert_string_equal(jtext(json_object_array_get_idx(cases, 0), "classname"), "Auth / Login");
	json_object_put(suites);
	free(xml);
	/* a known run duration is the suite's time */
	xml = doc_of(rows, 4, 31200, &len);
	assert_non_null(strstr(xml, " skipped=\"0\" time=\"31.200\""));
	free(xml);
}

static void test_junit__results_escape_hostile_text(void **state)
{
	struct result_row r = {
		.case_id = 7,
		.status = "failed",
		.title = "<script>alert(\"x\")</script> & 'q'\x01\x1b",
		.suite = "A<B> / \"C\"",
		.message = "line1\nline2 ]]> \xff end",
		.stacktrace = "</failure><injected/>\x0b\xef\xbf\xbe tail",
		.duration_ms = 5,
	};
	size_t len;
	char *xml = doc_of(&r, 1, -1, &len);
	json_object *suites = fake_check_xml(xml, len), *c;
	(void)state;

	assert_null(strstr(xml, "<script>"));
	assert_null(strstr(xml, "<injected/>"));
	assert_null(strstr(xml, "]]>"));
	assert_null(memchr(xml, '\x01', len));
	assert_null(memchr(xml, '\x0b', len));
	c = json_object_array_get_idx(jget(json_object_array_get_idx(suites, 1), "cases"), 0);
	/* read back by an XML parser: the text as sent, less what XML cannot carry */
	assert_string_equal(jtext(c, "name"),
			    "<script>alert(\"x\")</script> & 'q'\xef\xbf\xbd\xef\xbf\xbd");
	assert_string_equal(jtext(c, "classname"), "A<B> / \"C\"");
	assert_string_equal(jtext(c, "result"), "failure");
	assert_string_equal(jtext(c, "type"), "failed");
	assert_string_equal(jtext(c, "message"), "line1\nline2 ]]> \xef\xbf\xbd end");
	assert_string_equal(jtext(c, "text"), "</failure><injected/>\xef\xbf\xbd\xef\xbf\xbd tail");
	json_object_put(suites);
	free(xml);
}

static void test_junit__results_refuse_more_than_the_cap(void **state)
{
	struct result_row r = { .case_id = 1, .status = "passed", .title = "x", .duration_ms = -1 };
	struct junit_doc d;
	struct err e = { 0 };
	int rc = 0;
	(void)state;

	assert_int_equal(junit_doc_begin(&d, "S", NULL, -1, NULL, &e), 0);
	for (long long i = 0; i <= JUNIT_MAX_CASES && rc == 0; i++)
		rc = junit_doc_case(&d, &r, &e);
	assert_int_equal(rc, -1);
	assert_non_null(strstr(e.msg, "more than"));
	junit_doc_free(&d);
}

static void test_fake_xml__is_strict(void **state)
{
	static const char *const bad[] = {
		"<testsuite><testcase name=\"a\x01\"/></testsuite>", /* raw control char */
		"<testsuite><testcase name=\"&#1;\"/></testsuite>",  /* its reference */
		"<testsuite><testcase name=\"\xff\"/></testsuite>",  /* not UTF-8 */
		"<testsuite failures=\"1\"><testcase name=\"a\"/></testsuite>", /* no failure */
		"<testsuite tests=\"0\"><testcase name=\"a\"/></testsuite>",
		"<testsuite><testcase><failure/><error/></testcase></testsuite>",
		"<testsuite><failure/></testsuite>",
	};
	json_object *suites = NULL;
	char err[256];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fake_junit_check(bad[i], strlen(bad[i]), &suites, err, sizeof(err)) == 0)
			fail_msg("the fake accepts %s", bad[i]);
}

/* ---- attempts ------------------------------------------------------------------ */

struct tc_fixture {
	struct stub *stub;
	struct outbound *http;
	struct target_cfg cfg;
	struct target_attempt a;
	char saved[16][64]; /* the state at each save */
	int n_saved;
	int refuse_save;
	char *committed; /* map.data as last saved (what the store holds) */
	/* the run's results, as the store would serve them */
	struct result_row *rows;
	size_t n_rows;
	int results_calls, results_fail;
	size_t limits[64]; /* limit and after_case of each call */
	long long afters[64];
};

static int fake_save(struct target_attempt *a, struct err *err)
{
	struct tc_fixture *f = a->save_ctx;

	if (f->refuse_save)
		return err_set(err, "database is locked");
	if (f->n_saved < 16)
		snprintf(f->saved[f->n_saved], sizeof(f->saved[0]), "%s",
			 a->map.state ? a->map.state : "(null)");
	f->n_saved++;
	free(f->committed);
	f->committed = strdup(json_object_to_json_string(a->map.data));
	return 0;
}

/* A restart: the map is what was last committed, nothing held in memory. */
static void restart(struct tc_fixture *f)
{
	json_object_put(f->a.map.data);
	f->a.map.data = json_tokener_parse(f->committed ? f->committed : "{}");
	assert_non_null(f->a.map.data);
}

static int stub_results(struct target_attempt *a, long long after_case, size_t limit,
			int (*fn)(void *ctx, const struct result_row *r), void *fn_ctx,
			size_t *n_out, struct err *err)
{
	struct tc_fixture *f = a->results_ctx;
	size_t n = 0;

	if (f->results_calls < 64) {
		f->limits[f->results_calls] = limit;
		f->afters[f->results_calls] = after_case;
	}
	f->results_calls++;
	*n_out = 0;
	if (f->results_fail)
		return err_set(err, "disk I/O error");
	for (size_t i = 0; i < f->n_rows && (!limit || n < limit); i++) {
		if (f->rows[i].case_id <= after_case)
			continue;
		n++;
		if (fn(fn_ctx, &f->rows[i]) < 0)
			break;
	}
	*n_out = n;
	return 0;
}

static int tc_setup(void **state)
{
	struct tc_fixture *f = calloc(1, sizeof(*f));
	struct err e = { 0 };
	char url[64];

	f->stub = stub_start();
	if (outbound_new(&f->http, &e) < 0)
		fail_msg("outbound: %s", e.msg);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", f->stub->port);
	f->cfg.kind = "testcenter";
	f->cfg.name = "main";
	f->cfg.settings = json_object_new_object();
	json_object_object_add(f->cfg.settings, "base_url", json_object_new_string(url));
	json_object_object_add(f->cfg.settings, "token", json_object_new_string("tok123"));
	json_object_object_add(f->cfg.settings, "project", json_object_new_string("Web"));
	json_object_object_add(f->cfg.settings, "mode", json_object_new_string("import"));
	json_object_object_add(f->cfg.settings, "timeout_s", json_object_new_int64(5));
	f->a.target = &f->cfg;
	f->a.http = f->http;
	f->a.save = fake_save;
	f->a.save_ctx = f;
	f->a.results = stub_results;
	f->a.results_ctx = f;
	f->a.project = "DEMO";
	f->a.run_id = 42;
	f->a.map.data = json_object_new_object();
	f->a.params = json_tokener_parse(
		"{\"target\":\"main\",\"batch\":\"Qase DEMO#42\","
		"\"suite\":\"Nightly <1>\",\"labels\":{\"env\":\"staging\","
		"\"qase.run\":\"spoof\",\"empty\":\"\",\"a=b\":\"x,y\\\"z\\nw\"}}");
	*state = f;
	return 0;
}

static int tc_teardown(void **state)
{
	struct tc_fixture *f = *state;

	outbound_free(f->http);
	stub_stop(f->stub);
	json_object_put(f->cfg.settings);
	json_object_put(f->a.params);
	json_object_put(f->a.event);
	json_object_put(f->a.map.data);
	free(f->a.map.remote_id);
	free(f->a.map.state);
	free(f->committed);
	free(f);
	return 0;
}

static void set_mode(struct tc_fixture *f, const char *mode)
{
	json_object_object_add(f->cfg.settings, "mode", json_object_new_string(mode));
}

/* Runs one attempt for an event of type with the counts given as JSON
 * and, unless NULL, the event's "results" (JSON text). */
static struct target_outcome attempt_results(struct tc_fixture *f, const char *type,
					     const char *run_extra, const char *results)
{
	struct target_outcome out = { .outcome = WORK_FAIL, .retry_after_ms = -1 };
	char ev[2048];

	snprintf(ev, sizeof(ev),
		 "{\"type\":\"%s\",\"project\":\"DEMO\",\"run_id\":42,"
		 "\"occurred_at\":\"2022-04-21T11:23:14Z\",\"run\":{\"title\":\"Nightly\"%s%s}%s%s}",
		 type, run_extra ? "," : "", run_extra ? run_extra : "",
		 results ? ",\"results\":" : "", results ? results : "");
	json_object_put(f->a.event);
	f->a.event = json_tokener_parse(ev);
	assert_non_null(f->a.event);
	f->a.attempt++;
	action_testcenter_ops.attempt(&f->a, &out);
	return out;
}

static struct target_outcome attempt(struct tc_fixture *f, const char *type, const char *run_extra)
{
	return attempt_results(f, type, run_extra, NULL);
}

#define COMPLETED                                                            \
	"\"counts\":{\"total\":14,\"passed\":10,\"failed\":3,\"blocked\":1," \
	"\"skipped\":null,\"untested\":null},\"duration_ms\":31200"
#define ABORTED                                                             \
	"\"counts\":{\"total\":14,\"passed\":0,\"failed\":0,\"blocked\":0," \
	"\"skipped\":2,\"untested\":12},\"duration_ms\":1500"

static void assert_ok(struct target_outcome o)
{
	if (o.outcome != WORK_OK)
		fail_msg("outcome %d: %s", o.outcome, o.detail);
}

static void test_import__other_events_call_nothing(void **state)
{
	struct tc_fixture *f = *state;
	struct target_outcome o;

	o = attempt(f, "run.started", NULL);
	assert_ok(o);
	assert_non_null(strstr(o.detail, "import mode: uploaded at completion"));
	assert_ok(attempt(f, "run.updated", "\"cases_added\":3"));
	assert_int_equal(stub_count(f->stub), 0);
	assert_int_equal(f->n_saved, 0);
}

static void test_import__completed_uploads_one_junit_file(void **state)
{
	struct tc_fixture *f = *state;
	const struct stub_req *r;
	json_object *rep;

	stub_push(f->stub, 201, "", "{\"reportId\":7}");
	assert_ok(attempt(f, "run.completed", COMPLETED));
	assert_int_equal(stub_count(f->stub), 1);
	r = stub_req(f->stub, 0);
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->path, "/import");
	assert_non_null(strstr(r->head, "\r\nAuthorization: Token tok123\r\n"));
	assert_non_null(strstr(r->head, "multipart/form-data"));
	assert_non_null(strstr(r->body, "name=\"project\"\r\n\r\nWeb\r\n"));
	assert_non_null(strstr(r->body, "name=\"batch\"\r\n\r\nQase DEMO#42\r\n"));
	assert_non_null(strstr(r->body, "name=\"label[]\"\r\n\r\nqase.project=DEMO\r\n"));
	assert_non_null(strstr(r->body, "name=\"label[]\"\r\n\r\nqase.run=42\r\n"));
	assert_non_null(strstr(r->body, "name=\"label[]\"\r\n\r\nqase.event=run.completed\r\n"));
	assert_non_null(strstr(r->body, "name=\"label[]\"\r\n\r\nenv=staging\r\n"));
	assert_null(strstr(r->body, "spoof"));  /* qase.* cannot be replaced */
	assert_null(strstr(r->body, "empty=")); /* empty labels are left out */
	/* what Test Center refuses in labels is replaced */
	assert_non_null(strstr(r->body, "name=\"label[]\"\r\n\r\na_b=x y z w\r\n"));
	assert_non_null(strstr(r->body, "name=\"result[]\"; filename=\"qase-DEMO-42.xml\"\r\n"
					"Content-Type: application/xml\r\n\r\n<?xml "));
	assert_non_null(strstr(r->body,
			       "<testsuite name=\"Nightly &lt;1&gt;\" tests=\"14\" failures=\"4\""));
	/* intent before the call, result after */
	assert_int_equal(f->n_saved, 2);
	assert_string_equal(f->saved[0], "importing");
	assert_string_equal(f->saved[1], "imported");
	assert_true(json_object_object_get_ex(f->a.map.data, "report", &rep));
	assert_string_equal(json_object_get_string(json_object_object_get(rep, "event")),
			    "run.completed");
	assert_int_equal(json_object_get_int(json_object_object_get(
				 json_object_object_get(rep, "response"), "reportId")),
			 7);
}

static void test_import__retry_after_success_does_nothing(void **state)
{
	struct tc_fixture *f = *state;
	struct target_outcome o;

	assert_ok(attempt(f, "run.completed", COMPLETED));
	o = attempt(f, "run.completed", COMPLETED);
	assert_ok(o);
	assert_non_null(strstr(o.detail, "already imported"));
	assert_int_equal(stub_count(f->stub), 1);
	/* another event type is another report */
	assert_ok(attempt(f, "run.aborted", ABORTED));
	assert_int_equal(stub_count(f->stub), 2);
	assert_non_null(strstr(stub_req(f->stub, 1)->body, "skipped=\"14\""));
}

static void test_import__failed_upload_stays_importing_and_is_resent(void **state)
{
	struct tc_fixture *f = *state;
	struct target_outcome o;

	stub_push(f->stub, 503, "Retry-After: 2\r\n", "{\"code\":503,\"message\":\"busy\"}");
	o = attempt(f, "run.completed", COMPLETED);
	assert_int_equal(o.outcome, WORK_FAIL);
	assert_int_equal(o.retry_after_ms, 2000);
	assert_string_equal(f->a.map.state, "importing");
	o = attempt(f, "run.completed", COMPLETED);
	assert_ok(o);
	assert_non_null(strstr(o.detail, "re-sent"));
	assert_string_equal(f->a.map.state, "imported");
	assert_int_equal(stub_count(f->stub), 2);
}

static void test_import__400_is_permanent_and_store_refusal_is_a_retry(void **state)
{
	struct tc_fixture *f = *state;
	struct target_outcome o;

	stub_push(f->stub, 400, "", "{\"code\":400,\"message\":\"bad file\"}");
	o = attempt(f, "run.completed", COMPLETED);
	assert_int_equal(o.outcome, WORK_PERMANENT);
	assert_non_null(strstr(o.detail, "bad file"));
	f->refuse_save = 1;
	o = attempt(f, "run.completed", COMPLETED);
	assert_int_equal(o.outcome, WORK_FAIL);
	assert_non_null(strstr(o.detail, "database is locked"));
	assert_int_equal(stub_count(f->stub), 1); /* nothing sent without the intent */
}

static void test_import__deleted_tombstones_and_later_events_are_ignored(void **state)
{
	struct tc_fixture *f = *state;
	struct target_outcome o;

	assert_ok(attempt(f, "run.deleted", NULL));
	assert_string_equal(f->a.map.state, "deleted");
	o = attempt(f, "run.completed", COMPLETED);
	assert_ok(o);
	assert_non_null(strstr(o.detail, "ignored"));
	assert_int_equal(stub_count(f->stub), 0);
}

static void test_import__basic_auth_from_user_and_password(void **state)
{
	struct tc_fixture *f = *state;

	json_object_object_del(f->cfg.settings, "token");
	json_object_object_add(f->cfg.settings, "user", json_object_new_string("admin@qt.io"));
	json_object_object_add(f->cfg.settings, "password", json_object_new_string("QtRocks"));
	assert_ok(attempt(f, "run.completed", COMPLETED));
	/* the vendor's own example */
	assert_non_null(strstr(stub_req(f->stub, 0)->head,
			       "\r\nAuthorization: Basic YWRtaW5AcXQuaW86UXRSb2Nrcw==\r\n"));
}

static json_object *body_json(struct tc_fixture *f, size_t i)
{
	const struct stub_req *r = stub_req(f->stub, i);
	json_object *o;

	assert_non_null(r);
	o = json_tokener_parse(r->body);
	assert_non_null(o);
	return o;
}

static const char *jstr(json_object *o, const char *path1, const char *path2)
{
	json_object *v = json_object_object_get(o, path1);
	if (path2)
		v = json_object_object_get(v, path2);
	return json_object_get_string(v);
}

static void test_reporting__full_run_is_depth_first(void **state)
{
	struct tc_fixture *f = *state;
	json_object *b;
	const char *const paths[] = { "/upload/suites", "/upload/events", "/upload/cases",
				      "/upload/events", "/upload/events", "/upload/events" };

	set_mode(f, "reporting");
	stub_push(f->stub, 201, "",
		  "{\"project\":\"Web\",\"batch\":\"Qase DEMO#42\",\"reportId\":25,\"runId\":12}");
	assert_ok(attempt(f, "run.started", NULL));
	assert_string_equal(f->a.map.remote_id, "25");
	assert_string_equal(f->a.map.state, "open");
	stub_push(f->stub, 204, "", "");
	assert_ok(attempt(f, "run.updated", "\"cases_added\":3"));
	stub_push(f->stub, 201, "", "{\"runId\":13}");
	stub_push(f->stub, 204, "", "");
	stub_push(f->stub, 204, "", "");
	assert_ok(attempt(f, "run.completed", COMPLETED));
	assert_string_equal(f->a.map.state, "finished");
	stub_push(f->stub, 204, "", "");
	assert_ok(attempt(f, "run.deleted", NULL));
	assert_string_equal(f->a.map.state, "deleted");
	assert_int_equal(stub_count(f->stub), 6);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(stub_req(f->stub, i)->path, paths[i]);

	b = body_json(f, 0);
	assert_string_equal(jstr(b, "project", NULL), "Web");
	assert_string_equal(jstr(b, "batch", NULL), "Qase DEMO#42");
	assert_string_equal(jstr(b, "test", "name"), "Nightly <1>");
	assert_string_equal(
		json_object_to_json_string_ext(json_object_object_get(b, "labels"),
					       JSON_C_TO_STRING_PLAIN),
		"[{\"key\":\"qase.project\",\"value\":\"DEMO\"},{\"key\":\"qase.run\",\"value\":\"42\"},"
		"{\"key\":\"env\",\"value\":\"staging\"},{\"key\":\"a_b\",\"value\":\"x y z w\"}]");
	json_object_put(b);
	b = body_json(f, 1);
	assert_string_equal(jstr(b, "runId", NULL), "12");
	assert_string_equal(jstr(b, "type", NULL), "LOG");
	assert_string_equal(jstr(b, "message", NULL), "3 cases added in Qase");
	json_object_put(b);
	b = body_json(f, 2);
	assert_string_equal(jstr(b, "runId", NULL), "12");
	assert_string_equal(jstr(b, "test", "name"), "Qase run summary");
	json_object_put(b);
	b = body_json(f, 3);
	assert_string_equal(jstr(b, "runId", NULL), "13");
	assert_string_equal(jstr(b, "type", NULL), "FAIL");
	assert_non_null(strstr(jstr(b, "message", NULL), "10 passed, 3 failed, 1 blocked"));
	json_object_put(b);
	b = body_json(f, 4);
	assert_string_equal(jstr(b, "runId", NULL), "12");
	assert_string_equal(jstr(b, "type", NULL), "LOG");
	assert_string_equal(jstr(b, "message", NULL), "Qase run took 31.200 s");
	json_object_put(b);
	b = body_json(f, 5);
	assert_string_equal(jstr(b, "runId", NULL), "12");
	assert_string_equal(jstr(b, "type", NULL), "WARNING");
	assert_string_equal(jstr(b, "message", NULL), "deleted in Qase");
	json_object_put(b);
}

static void test_reporting__lazy_suite_and_resume_after_a_failed_step(void **state)
{
	struct tc_fixture *f = *state;
	struct target_outcome o;
	json_object *b;

	set_mode(f, "reporting");
	/* no run.started: the completion creates the suite first */
	stub_push(f->stub, 201, "", "{\"reportId\":25,\"runId\":12}");
	stub_push(f->stub, 201, "", "{\"runId\":13}");
	stub_push(f->stub, 502, "", "bad gateway"); /* the verdict fails */
	o = attempt(f, "run.aborted", ABORTED);
	assert_int_equal(o.outcome, WORK_FAIL);
	assert_string_equal(f->saved[0], "creating");
	assert_string_equal(f->a.map.state, "open");
	/* the retry neither re-creates the suite nor the case */
	assert_ok(attempt(f, "run.aborted", ABORTED));
	assert_int_equal(stub_count(f->stub), 5);
	assert_string_equal(stub_req(f->stub, 3)->path, "/upload/events");
	b = body_json(f, 3);
	assert_string_equal(jstr(b, "runId", NULL), "13");
	assert_string_equal(jstr(b, "type", NULL), "FAIL"); /* aborted is a FAIL */
	assert_non_null(strstr(jstr(b, "message", NULL), "2 skipped, 12 untested"));
	json_object_put(b);
	/* a redelivery after the end does nothing */
	o = attempt(f, "run.aborted", ABORTED);
	assert_ok(o);
	assert_non_null(strstr(o.detail, "already reported"));
	assert_int_equal(stub_count(f->stub), 5);
}

static void test_reporting__passing_run_and_duplicate_start(void **state)
{
	struct tc_fixture *f = *state;
	json_object *b;

	set_mode(f, "reporting");
	stub_push(f->stub, 201, "", "{\"reportId\":\"25\",\"runId\":\"12\"}");
	assert_ok(attempt(f, "run.started", NULL));
	assert_ok(attempt(f, "run.started", NULL)); /* redelivered */
	assert_int_equal(stub_count(f->stub), 1);
	stub_push(f->stub, 201, "", "{\"runId\":13}");
	assert_ok(attempt(
		f, "run.completed",
		"\"counts\":{\"total\":2,\"passed\":2,\"failed\":0,\"blocked\":0},\"duration_ms\":null"));
	b = body_json(f, 2);
	assert_string_equal(jstr(b, "type", NULL), "PASS");
	json_object_put(b);
	b = body_json(f, 3);
	assert_string_equal(jstr(b, "message", NULL), "Qase run duration unknown");
	json_object_put(b);
}

static void test_reporting__deleted_without_a_suite_only_tombstones(void **state)
{
	struct tc_fixture *f = *state;

	set_mode(f, "reporting");
	assert_ok(attempt(f, "run.deleted", NULL));
	assert_string_equal(f->a.map.state, "deleted");
	assert_ok(attempt(f, "run.updated", "\"cases_added\":1"));
	assert_int_equal(stub_count(f->stub), 0);
}

static void test_reporting__suite_answer_without_ids_is_permanent(void **state)
{
	struct tc_fixture *f = *state;
	struct target_outcome o;

	set_mode(f, "reporting");
	stub_push(f->stub, 201, "", "{}");
	o = attempt(f, "run.started", NULL);
	assert_int_equal(o.outcome, WORK_PERMANENT);
	assert_string_equal(f->a.map.state, "creating");
}

/* ---- results in import mode ------------------------------------------------------ */

#define RESULTS_COMPLETE "{\"status\":\"complete\",\"total\":237,\"counts\":{},\"failed\":[]}"

/* The JUnit file of import request i, checked as the fake checks it. */
static json_object *imported_suites(struct tc_fixture *f, size_t i)
{
	const struct stub_req *r = stub_req(f->stub, i);
	const char *x, *e;

	assert_non_null(r);
	x = strstr(r->body, "<?xml");
	assert_non_null(x);
	e = strstr(x, "\r\n--");
	assert_non_null(e);
	return fake_check_xml(x, (size_t)(e - x));
}

static void test_import__237_results_become_one_testcase_each(void **state)
{
	struct tc_fixture *f = *state;
	struct target_outcome o;
	json_object *suites, *suite, *cases, *c;
	(void)state;

	rows_fill(237);
	f->rows = g_rows;
	f->n_rows = 237;
	o = attempt_results(f, "run.completed", COMPLETED, RESULTS_COMPLETE);
	assert_ok(o);
	assert_non_null(strstr(o.detail, "179 tests, from the results"));
	assert_int_equal(stub_count(f->stub), 1);
	/* read in pages, never all at once */
	assert_true(f->results_calls >= 1);
	for (int i = 0; i < f->results_calls; i++)
		assert_int_not_equal(f->limits[i], 0);

	suites = imported_suites(f, 0);
	suite = json_object_array_get_idx(suites, 1);
	assert_string_equal(jtext(suite, "element"), "testsuite");
	assert_string_equal(jtext(suite, "name"), "Nightly <1>");
	/* 30 of each of the first five statuses, 29 of the last three;
	 * untested and in progress are left out, the custom one is skipped */
	assert_int_equal(jint(suite, "tests"), 179);
	assert_int_equal(jint(suite, "failures"), 30);
	assert_int_equal(jint(suite, "errors"), 60);
	assert_int_equal(jint(suite, "skipped"), 59);
	cases = jget(suite, "cases");
	assert_int_equal(json_object_array_length(cases), 179);
	/* row 0 passed, 1 failed, 2 blocked, 3 skipped, 4 invalid, 7 retest */
	c = json_object_array_get_idx(cases, 0);
	assert_string_equal(jtext(c, "name"), "Case 0");
	assert_string_equal(jtext(c, "classname"), "Suite 0 / Sub");
	assert_string_equal(jtext(c, "result"), "passed");
	c = json_object_array_get_idx(cases, 1);
	assert_string_equal(jtext(c, "result"), "failure");
	assert_string_equal(jtext(c, "message"), "expected 1, got 500");
	assert_string_equal(jtext(c, "text"), "at test_1.py:10\n  at run()");
	c = json_object_array_get_idx(cases, 2);
	assert_string_equal(jtext(c, "result"), "error");
	assert_string_equal(jtext(c, "type"), "blocked");
	assert_string_equal(jtext(c, "message"), "blocked in Qase: expected 2, got 500");
	assert_null(jget(c, "time")); /* row 2: unknown duration */
	c = json_object_array_get_idx(cases, 3);
	assert_string_equal(jtext(c, "result"), "skipped");
	assert_null(jget(c, "classname")); /* row 3 has no suite */
	assert_true(json_object_get_double(jget(c, "time")) > 0.1109 &&
		    json_object_get_double(jget(c, "time")) < 0.1111); /* 111 ms */
	c = json_object_array_get_idx(cases, 4);
	assert_string_equal(jtext(c, "type"), "invalid");
	c = json_object_array_get_idx(cases, 5); /* rows 5 and 6 are left out */
	assert_string_equal(jtext(c, "name"), "Case 7");
	assert_string_equal(jtext(c, "message"), "retest in Qase");
	assert_non_null(strstr(stub_req(f->stub, 0)->body,
			       "<property name=\"qase.results\" value=\"complete\"/>"));
	json_object_put(suites);
}

static void test_import__no_results_keep_the_counts_file(void **state)
{
	struct tc_fixture *f = *state;
	json_object *suites;

	rows_fill(3);
	f->rows = g_rows;
	f->n_rows = 3;
	/* results null: not read at all */
	assert_ok(attempt_results(f, "run.completed", COMPLETED, "null"));
	assert_int_equal(f->results_calls, 0);
	assert_non_null(strstr(stub_req(f->stub, 0)->body, "<testcase name=\"Nightly &lt;1&gt; "
							   "passed 1\"/>"));
	suites = imported_suites(f, 0);
	assert_int_equal(jint(json_object_array_get_idx(suites, 1), "tests"), 14);
	json_object_put(suites);
	/* results fetched but nothing stored: the counts still */
	f->n_rows = 0;
	assert_ok(attempt_results(f, "run.aborted", ABORTED, "{\"status\":\"unavailable\"}"));
	assert_int_equal(f->results_calls, 1);
	assert_non_null(strstr(stub_req(f->stub, 1)->body, "untested 12\""));
}

static void test_import__results_read_failure_is_a_retry(void **state)
{
	struct tc_fixture *f = *state;
	struct target_outcome o;

	f->results_fail = 1;
	o = attempt_results(f, "run.completed", COMPLETED, RESULTS_COMPLETE);
	assert_int_equal(o.outcome, WORK_FAIL);
	assert_non_null(strstr(o.detail, "disk I/O error"));
	assert_int_equal(stub_count(f->stub), 0);
	assert_int_equal(f->n_saved, 0);
}

/* ---- results in reporting mode ---------------------------------------------------- */

static void push_run(struct tc_fixture *f, int run_id)
{
	char body[64];

	snprintf(body, sizeof(body), "{\"runId\":%d}", run_id);
	stub_push(f->stub, 201, "", body);
}

static void push_ok(struct tc_fixture *f, int n)
{
	for (int i = 0; i < n; i++)
		stub_push(f->stub, 204, "", "");
}

/* "path type-or-name@runId" of request i, e.g. "/upload/events PASS@13". */
static const char *req_line(struct tc_fixture *f, size_t i)
{
	static char line[1024];
	json_object *b = body_json(f, i), *t = jget(b, "test");

	snprintf(line, sizeof(line), "%s %s@%s", stub_req(f->stub, i)->path,
		 t ? jtext(t, "name") : jtext(b, "type"), jtext(b, "runId"));
	json_object_put(b);
	return line;
}

static void set_rows(struct tc_fixture *f, struct result_row *rows, size_t n)
{
	f->rows = rows;
	f->n_rows = n;
}

static void test_reporting__results_are_cases_depth_first(void **state)
{
	struct tc_fixture *f = *state;
	struct result_row rows[] = {
		{ .case_id = 1,
		  .status = "passed",
		  .title = "Login works",
		  .suite = "Auth",
		  .duration_ms = 1250 },
		{ .case_id = 2,
		  .status = "failed",
		  .title = "Logout works",
		  .suite = "Auth / Session",
		  .message = "Expected 200, got 500",
		  .stacktrace = "at logout.py:3",
		  .duration_ms = 40 },
		{ .case_id = 3,
		  .status = "blocked",
		  .title = "Pay",
		  .message = "env down",
		  .duration_ms = -1 },
		{ .case_id = 4, .status = "skipped", .title = "Export", .duration_ms = -1 },
		{ .case_id = 5, .status = "invalid", .title = "Import", .duration_ms = -1 },
		{ .case_id = 6, .status = "untested", .title = "Old", .duration_ms = -1 },
		{ .case_id = 7, .status = "in_progress", .title = "New", .duration_ms = -1 },
		{ .case_id = 8, .status = "retest", .title = "Flaky", .duration_ms = -1 },
	};
	static const char *const want[] = {
		"/upload/suites Nightly <1>@(null)",
		"/upload/cases Login works@12",
		"/upload/events PASS@13",
		"/upload/cases Logout works@12",
		"/upload/events FAIL@14",
		"/upload/cases Pay@12",
		"/upload/events ERROR@15",
		"/upload/cases Export@12",
		"/upload/events LOG@16",
		"/upload/events SKIPPED@16",
		"/upload/cases Import@12",
		"/upload/events ERROR@17",
		"/upload/cases Flaky@12",
		"/upload/events LOG@18",
		"/upload/events SKIPPED@18",
		"/upload/cases Qase run summary@12",
		"/upload/events FAIL@19",
		"/upload/events LOG@12",
	};
	struct target_outcome o;
	json_object *b;

	set_mode(f, "reporting");
	set_rows(f, rows, 8);
	stub_push(f->stub, 201, "", "{\"reportId\":25,\"runId\":12}");
	assert_ok(attempt(f, "run.started", NULL));
	for (int id = 13; id <= 18; id++) {
		push_run(f, id);
		push_ok(f, id == 16 || id == 18 ? 2 : 1);
	}
	push_run(f, 19);
	push_ok(f, 2);
	o = attempt_results(f, "run.completed", COMPLETED, RESULTS_COMPLETE);
	assert_ok(o);
	assert_non_null(strstr(o.detail, "6 results"));
	assert_int_equal(stub_count(f->stub), sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_string_equal(req_line(f, i), want[i]);

	b = body_json(f, 3); /* the case: title, suite path, which Qase case */
	assert_string_equal(jtext(jget(b, "test"), "summary"), "Auth / Session");
	assert_string_equal(jtext(jget(b, "test"), "description"), "Qase case DEMO-2");
	json_object_put(b);
	b = body_json(f, 5);
	assert_null(jget(jget(b, "test"), "summary")); /* no suite path */
	json_object_put(b);
	b = body_json(f, 4); /* a failure: Qase's comment, the duration, the trace */
	assert_string_equal(jtext(b, "message"), "Expected 200, got 500");
	assert_string_equal(jtext(b, "detail"),
			    "Qase case DEMO-2: failed, 0.040 s\n\nat logout.py:3");
	json_object_put(b);
	b = body_json(f, 2);
	assert_string_equal(jtext(b, "message"), "passed in Qase");
	assert_string_equal(jtext(b, "detail"), "Qase case DEMO-1: passed, 1.250 s");
	json_object_put(b);
	b = body_json(f, 6);
	assert_string_equal(jtext(b, "message"), "blocked in Qase: env down");
	json_object_put(b);
	b = body_json(f, 14);
	assert_string_equal(jtext(b, "message"), "retest in Qase: counted as skipped");
	json_object_put(b);
	/* a redelivery reports nothing again */
	o = attempt_results(f, "run.completed", COMPLETED, RESULTS_COMPLETE);
	assert_ok(o);
	assert_non_null(strstr(o.detail, "already reported"));
	assert_int_equal(stub_count(f->stub), sizeof(want) / sizeof(want[0]));
}

static void test_reporting__blocked_can_be_a_warning(void **state)
{
	struct tc_fixture *f = *state;
	struct result_row row = {
		.case_id = 3, .status = "blocked", .title = "Pay", .duration_ms = -1
	};

	set_mode(f, "reporting");
	json_object_object_add(f->cfg.settings, "blocked_event", json_object_new_string("warning"));
	set_rows(f, &row, 1);
	stub_push(f->stub, 201, "", "{\"reportId\":25,\"runId\":12}");
	push_run(f, 13);
	push_ok(f, 1);
	push_run(f, 14);
	push_ok(f, 2);
	assert_ok(attempt_results(f, "run.completed", COMPLETED, RESULTS_COMPLETE));
	assert_string_equal(req_line(f, 2), "/upload/events WARNING@13");
}

/* How many requests created a case named name. */
static int cases_named(struct tc_fixture *f, const char *name)
{
	char want[128];
	int n = 0;

	snprintf(want, sizeof(want), "/upload/cases %s@", name);
	for (size_t i = 0; i < stub_count(f->stub); i++)
		n += strncmp(req_line(f, i), want, strlen(want)) == 0;
	return n;
}

static void test_reporting__results_resume_after_a_failed_step(void **state)
{
	struct tc_fixture *f = *state;
	struct result_row rows[] = {
		{ .case_id = 1, .status = "passed", .title = "A", .duration_ms = -1 },
		{ .case_id = 2, .status = "skipped", .title = "B", .duration_ms = -1 },
		{ .case_id = 3, .status = "failed", .title = "C", .duration_ms = -1 },
	};
	struct target_outcome o;

	set_mode(f, "reporting");
	set_rows(f, rows, 3);
	stub_push(f->stub, 201, "", "{\"reportId\":25,\"runId\":12}");
	assert_ok(attempt(f, "run.started", NULL));
	/* 1: A and its PASS, B and its LOG; B's SKIPPED fails */
	push_run(f, 13);
	push_ok(f, 1);
	push_run(f, 14);
	push_ok(f, 1);
	stub_push(f->stub, 502, "", "bad gateway");
	o = attempt_results(f, "run.completed", COMPLETED, RESULTS_COMPLETE);
	assert_int_equal(o.outcome, WORK_FAIL);
	assert_int_equal(stub_count(f->stub), 6);
	/* 2, after a restart: B's SKIPPED again (its case is still the last
	 * one), then C, whose FAIL fails */
	restart(f);
	push_ok(f, 1);
	push_run(f, 15);
	stub_push(f->stub, 503, "", "{\"code\":503,\"message\":\"busy\"}");
	o = attempt_results(f, "run.completed", COMPLETED, RESULTS_COMPLETE);
	assert_int_equal(o.outcome, WORK_FAIL);
	assert_string_equal(req_line(f, 6), "/upload/events SKIPPED@14");
	assert_string_equal(req_line(f, 7), "/upload/cases C@12");
	assert_string_equal(req_line(f, 8), "/upload/events FAIL@15");
	/* 3: C's FAIL, then the summary */
	restart(f);
	push_ok(f, 1);
	push_run(f, 16);
	push_ok(f, 2);
	assert_ok(attempt_results(f, "run.completed", COMPLETED, RESULTS_COMPLETE));
	assert_string_equal(req_line(f, 9), "/upload/events FAIL@15");
	assert_string_equal(req_line(f, 10), "/upload/cases Qase run summary@12");
	assert_int_equal(stub_count(f->stub), 13);
	/* every case once, every event once but the two that failed */
	assert_int_equal(cases_named(f, "A"), 1);
	assert_int_equal(cases_named(f, "B"), 1);
	assert_int_equal(cases_named(f, "C"), 1);
	assert_string_equal(req_line(f, 4), "/upload/events LOG@14");
	for (size_t i = 5; i < stub_count(f->stub); i++)
		assert_string_not_equal(req_line(f, i), "/upload/events LOG@14");
	/* an aborted run after the end reports no result again */
	restart(f);
	push_run(f, 17);
	push_ok(f, 2);
	assert_ok(attempt_results(f, "run.aborted", ABORTED, RESULTS_COMPLETE));
	assert_int_equal(stub_count(f->stub), 16);
	assert_string_equal(req_line(f, 13), "/upload/cases Qase run summary@12");
}

static void test_reporting__results_in_pages_and_a_lazy_suite(void **state)
{
	struct tc_fixture *f = *state;
	char name[32];

	set_mode(f, "reporting");
	rows_fill(22 * 8);
	for (size_t i = 0; i < 22; i++) /* 22 passed results */
		g_rows[i] = g_rows[i * 8];
	set_rows(f, g_rows, 22);
	stub_push(f->stub, 201, "", "{\"reportId\":25,\"runId\":12}");
	for (int i = 0; i < 22; i++) {
		push_run(f, 100 + i);
		push_ok(f, 1);
	}
	push_run(f, 200);
	push_ok(f, 2);
	assert_ok(attempt_results(f, "run.completed", COMPLETED, RESULTS_COMPLETE));
	assert_int_equal(stub_count(f->stub), 1 + 44 + 3);
	for (int i = 0; i < 22; i++) {
		snprintf(name, sizeof(name), "Case %d", i * 8);
		assert_int_equal(cases_named(f, name), 1);
	}
	assert_int_equal(f->results_calls, 2);
	assert_int_equal(f->limits[0], 20);
	assert_int_equal(f->afters[0], 0);
	assert_int_equal(f->afters[1], g_rows[19].case_id);
}

static void test_reporting__results_read_failure_sends_no_summary(void **state)
{
	struct tc_fixture *f = *state;
	struct target_outcome o;

	set_mode(f, "reporting");
	f->results_fail = 1;
	stub_push(f->stub, 201, "", "{\"reportId\":25,\"runId\":12}");
	o = attempt_results(f, "run.completed", COMPLETED, RESULTS_COMPLETE);
	assert_int_equal(o.outcome, WORK_FAIL);
	assert_non_null(strstr(o.detail, "disk I/O error"));
	assert_int_equal(stub_count(f->stub), 1); /* the suite only */
}

#define TC(t) cmocka_unit_test_setup_teardown(t, tc_setup, tc_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_junit__completed_counts_and_synthetic_cases),
		cmocka_unit_test(test_junit__completed_skipped_is_what_is_left),
		cmocka_unit_test(test_junit__aborted_skipped_is_skipped_plus_untested),
		cmocka_unit_test(test_junit__unknown_counts_and_duration),
		cmocka_unit_test(test_junit__escapes_markup_in_titles),
		cmocka_unit_test(test_junit__replaces_what_xml_cannot_carry),
		cmocka_unit_test(test_junit__long_suite_names_are_cut_at_a_character),
		cmocka_unit_test(test_junit__refuses_absurd_counts),
		cmocka_unit_test(test_junit__results_time_in_seconds_and_classname),
		cmocka_unit_test(test_junit__results_escape_hostile_text),
		cmocka_unit_test(test_junit__results_refuse_more_than_the_cap),
		cmocka_unit_test(test_fake_xml__is_strict),
		TC(test_import__other_events_call_nothing),
		TC(test_import__completed_uploads_one_junit_file),
		TC(test_import__retry_after_success_does_nothing),
		TC(test_import__failed_upload_stays_importing_and_is_resent),
		TC(test_import__400_is_permanent_and_store_refusal_is_a_retry),
		TC(test_import__deleted_tombstones_and_later_events_are_ignored),
		TC(test_import__basic_auth_from_user_and_password),
		TC(test_reporting__full_run_is_depth_first),
		TC(test_reporting__lazy_suite_and_resume_after_a_failed_step),
		TC(test_reporting__passing_run_and_duplicate_start),
		TC(test_reporting__deleted_without_a_suite_only_tombstones),
		TC(test_reporting__suite_answer_without_ids_is_permanent),
		TC(test_import__237_results_become_one_testcase_each),
		TC(test_import__no_results_keep_the_counts_file),
		TC(test_import__results_read_failure_is_a_retry),
		TC(test_reporting__results_are_cases_depth_first),
		TC(test_reporting__blocked_can_be_a_warning),
		TC(test_reporting__results_resume_after_a_failed_step),
		TC(test_reporting__results_in_pages_and_a_lazy_suite),
		TC(test_reporting__results_read_failure_sends_no_summary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
