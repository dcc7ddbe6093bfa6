/* target_testcenter: the JUnit XML builder (junit.h), and attempts run
 * against a scripted local server (stub_http.h) with an in-memory map. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets/junit.h"
#include "targets/target.h"
#include "stub_http.h"

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

/* ---- attempts ------------------------------------------------------------------ */

struct tc_fixture {
	struct stub *stub;
	struct outbound *http;
	struct target_cfg cfg;
	struct target_attempt a;
	char saved[16][64]; /* the state at each save */
	int n_saved;
	int refuse_save;
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
	free(f);
	return 0;
}

static void set_mode(struct tc_fixture *f, const char *mode)
{
	json_object_object_add(f->cfg.settings, "mode", json_object_new_string(mode));
}

/* Runs one attempt for an event of type with the counts given as JSON. */
static struct target_outcome attempt(struct tc_fixture *f, const char *type, const char *run_extra)
{
	struct target_outcome out = { .outcome = WORK_FAIL, .retry_after_ms = -1 };
	char ev[1024];

	snprintf(ev, sizeof(ev),
		 "{\"type\":\"%s\",\"project\":\"DEMO\",\"run_id\":42,"
		 "\"occurred_at\":\"2022-04-21T11:23:14Z\",\"run\":{\"title\":\"Nightly\"%s%s}}",
		 type, run_extra ? "," : "", run_extra ? run_extra : "");
	json_object_put(f->a.event);
	f->a.event = json_tokener_parse(ev);
	assert_non_null(f->a.event);
	f->a.attempt++;
	action_testcenter_ops.attempt(&f->a, &out);
	return out;
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
