/* target_testomat: the pure parts (target_util) that shape Testomat calls
 * (finish counts, bodies, result mapping, batching, titles, URLs), then
 * whole attempts against a fake server (the run's states, lazy creation,
 * intent before create, duplicates, tombstones, retries), then the run's
 * stored results mirrored before the finish (batches, resume after a
 * failure or a crash, status mapping, units, events without results). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/results.h"
#include "targets/target_util.h"
#include "target_fake_http.h"

static json_object *parse(const char *s)
{
	json_object *o = json_tokener_parse(s);
	assert_non_null(o);
	return o;
}

static void assert_json(json_object *o, const char *want)
{
	assert_non_null(o);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), want);
	json_object_put(o);
}

static struct tu_counts counts(long long total, long long passed, long long failed,
			       long long blocked, long long skipped, long long untested)
{
	struct tu_counts c = { total, passed, failed, blocked, skipped, untested, -1 };
	return c;
}

static void test_testomat__completed_with_failures_fails(void **state)
{
	struct tu_counts c = counts(14, 10, 3, 1, -1, -1);
	struct tu_finish f;
	(void)state;
	tu_testomat_finish(&c, 0, "fail", &f);
	assert_string_equal(f.status_event, "fail");
	assert_int_equal(f.tests, 14);
	assert_int_equal(f.passed, 10);
	assert_int_equal(f.failed, 4);  /* failed + blocked */
	assert_int_equal(f.skipped, 0); /* 14 - 10 - 3 - 1 */
}

static void test_testomat__completed_blocked_only_fails(void **state)
{
	struct tu_counts c = counts(5, 4, 0, 1, -1, -1);
	struct tu_finish f;
	(void)state;
	tu_testomat_finish(&c, 0, "fail", &f);
	assert_string_equal(f.status_event, "fail");
	assert_int_equal(f.failed, 1);
}

static void test_testomat__completed_clean_finishes_and_counts_the_rest_skipped(void **state)
{
	struct tu_counts c = counts(14, 9, 0, 0, -1, -1);
	struct tu_finish f;
	(void)state;
	tu_testomat_finish(&c, 0, "fail", &f);
	assert_string_equal(f.status_event, "finish");
	assert_int_equal(f.failed, 0);
	assert_int_equal(f.skipped, 5);
}

static void test_testomat__completed_skipped_never_negative(void **state)
{
	struct tu_counts c = counts(3, 2, 2, 1, -1, -1);
	struct tu_finish f;
	(void)state;
	tu_testomat_finish(&c, 0, "fail", &f);
	assert_int_equal(f.skipped, 0);
}

static void test_testomat__completed_without_counts_omits_them(void **state)
{
	struct tu_counts c = counts(-1, -1, -1, -1, -1, -1);
	struct tu_finish f;
	(void)state;
	tu_testomat_finish(&c, 0, "fail", &f);
	assert_string_equal(f.status_event, "finish");
	assert_int_equal(f.tests, -1);
	assert_int_equal(f.passed, -1);
	assert_int_equal(f.failed, -1);
	assert_int_equal(f.skipped, -1);
	assert_json(tu_testomat_finish_body(&f, -1, NULL), "{\"status_event\":\"finish\"}");
}

static void test_testomat__aborted_uses_setting_and_skipped_plus_untested(void **state)
{
	struct tu_counts c = counts(14, 1, 0, 0, 2, 11);
	struct tu_finish f;
	(void)state;
	tu_testomat_finish(&c, 1, "finish", &f);
	assert_string_equal(f.status_event, "finish");
	assert_int_equal(f.skipped, 13);
	tu_testomat_finish(&c, 1, NULL, &f);
	assert_string_equal(f.status_event, "fail");
	c = counts(14, 1, 0, 0, -1, 11);
	tu_testomat_finish(&c, 1, "fail", &f);
	assert_int_equal(f.skipped, 11);
}

static void test_testomat__finish_body_duration_in_seconds(void **state)
{
	struct tu_finish f = { "fail", 14, 11, 2, 1 };
	(void)state;
	assert_json(tu_testomat_finish_body(&f, 312400, NULL),
		    "{\"status_event\":\"fail\",\"duration\":312.4,\"tests_count\":14,"
		    "\"passed_count\":11,\"failed_count\":2,\"skipped_count\":1}");
	assert_json(tu_testomat_finish_body(&f, 0, "deleted in Qase"),
		    "{\"status_event\":\"fail\",\"duration\":0,\"tests_count\":14,"
		    "\"passed_count\":11,\"failed_count\":2,\"skipped_count\":1,"
		    "\"description\":\"deleted in Qase\"}");
}

static void test_testomat__seconds_keep_three_decimals(void **state)
{
	(void)state;
	assert_json(tu_seconds(31200), "31.2");
	assert_json(tu_seconds(1), "0.001");
	assert_json(tu_seconds(5000), "5");
	assert_json(tu_seconds(1234567), "1234.567");
	json_object *s = tu_seconds(1500);
	assert_true(json_object_get_double(s) == 1.5);
	json_object_put(s);
}

static void test_testomat__create_body_omits_empty_fields_and_shares_the_run(void **state)
{
	struct tu_testomat_run r = {
		.title = "[Qase DEMO#42] Nightly",
		.env = "",
		.group_title = "Qase DEMO",
		.description = "Mirrored",
		.kind = "manual",
		.label = NULL,
	};
	(void)state;
	assert_json(tu_testomat_create_body(&r),
		    "{\"title\":\"[Qase DEMO#42] Nightly\",\"group_title\":\"Qase DEMO\","
		    "\"description\":\"Mirrored\",\"kind\":\"manual\",\"shared_run\":true}");
	r.env = "staging";
	r.label = "release";
	assert_json(tu_testomat_create_body(&r),
		    "{\"title\":\"[Qase DEMO#42] Nightly\",\"env\":\"staging\","
		    "\"group_title\":\"Qase DEMO\",\"description\":\"Mirrored\","
		    "\"kind\":\"manual\",\"label\":\"release\",\"shared_run\":true}");
}

static void test_testomat__status_mapping(void **state)
{
	int blocked;
	(void)state;
	assert_string_equal(tu_testomat_status("passed", &blocked), "passed");
	assert_false(blocked);
	assert_string_equal(tu_testomat_status("failed", &blocked), "failed");
	assert_string_equal(tu_testomat_status("skipped", &blocked), "skipped");
	assert_string_equal(tu_testomat_status("invalid", &blocked), "failed");
	assert_string_equal(tu_testomat_status("blocked", &blocked), "failed");
	assert_true(blocked);
	assert_null(tu_testomat_status("untested", &blocked));
	assert_false(blocked);
	assert_null(tu_testomat_status("in_progress", &blocked));
	assert_null(tu_testomat_status("custom_3", &blocked));
	assert_null(tu_testomat_status(NULL, &blocked));
}

static json_object *test_of(const char *result)
{
	json_object *r = parse(result), *t = NULL;
	int rc = tu_testomat_test(r, "DEMO", 42, &t);
	json_object_put(r);
	assert_true(rc >= 0);
	return rc == 0 ? t : NULL;
}

static void test_testomat__result_has_stable_rid_and_ms(void **state)
{
	(void)state;
	assert_json(test_of("{\"case_id\":17,\"status\":\"passed\",\"time_ms\":1532,"
			    "\"case\":{\"title\":\"Login works\"}}"),
		    "{\"rid\":\"qase-DEMO-42-17\",\"title\":\"Login works\",\"status\":\"passed\","
		    "\"run_time\":1532,\"create\":true}");
	/* case.id, time in seconds, comment and stacktrace */
	assert_json(test_of("{\"case\":{\"id\":18},\"status\":\"failed\",\"time\":2,"
			    "\"comment\":\"Expected 200, got 500\",\"stacktrace\":\"at x\"}"),
		    "{\"rid\":\"qase-DEMO-42-18\",\"title\":\"DEMO-18\",\"status\":\"failed\","
		    "\"run_time\":2000,\"message\":\"Expected 200, got 500\",\"stack\":\"at x\","
		    "\"create\":true}");
}

static void test_testomat__blocked_result_fails_with_message(void **state)
{
	(void)state;
	assert_json(test_of("{\"case_id\":3,\"status\":\"blocked\"}"),
		    "{\"rid\":\"qase-DEMO-42-3\",\"title\":\"DEMO-3\",\"status\":\"failed\","
		    "\"message\":\"blocked\",\"create\":true}");
	assert_json(test_of("{\"case_id\":3,\"status\":\"blocked\",\"comment\":\"env down\"}"),
		    "{\"rid\":\"qase-DEMO-42-3\",\"title\":\"DEMO-3\",\"status\":\"failed\","
		    "\"message\":\"blocked: env down\",\"create\":true}");
}

static void test_testomat__unreportable_results_are_not_sent(void **state)
{
	(void)state;
	assert_null(test_of("{\"case_id\":3,\"status\":\"untested\"}"));
	assert_null(test_of("{\"case_id\":3,\"status\":\"in_progress\"}"));
	assert_null(test_of("{\"status\":\"passed\"}")); /* no case id */
	assert_null(test_of("{\"case_id\":\"3\",\"status\":\"passed\"}"));
}

static void test_testomat__batches_of_200_numbered_from_1(void **state)
{
	json_object *tests = json_object_new_array(), *b;
	size_t sizes[3], k = 0;
	(void)state;
	for (int i = 0; i < 450; i++)
		json_object_array_add(tests, json_object_new_int(i));
	for (size_t from = 0, idx = 1; from < 450; from += 200, idx++, k++) {
		json_object *arr, *bi;
		b = tu_testomat_batch_body(tests, from, 200, (int)idx);
		assert_true(json_object_object_get_ex(b, "tests", &arr));
		assert_true(json_object_object_get_ex(b, "batch_index", &bi));
		assert_int_equal(json_object_get_int(bi), (int)idx);
		sizes[k] = json_object_array_length(arr);
		assert_int_equal(json_object_get_int(json_object_array_get_idx(arr, 0)), (int)from);
		json_object_put(b);
	}
	assert_int_equal(k, 3);
	assert_int_equal(sizes[0], 200);
	assert_int_equal(sizes[1], 200);
	assert_int_equal(sizes[2], 50);
	json_object_put(tests);
}

static void assert_title(const char *rendered, const char *want)
{
	char *t = tu_run_title(rendered, "DEMO", 42);
	assert_string_equal(t, want);
	free(t);
}

static void test_testomat__title_falls_back_when_qase_title_unknown(void **state)
{
	(void)state;
	assert_title("[Qase DEMO#42] Nightly", "[Qase DEMO#42] Nightly");
	assert_title("[Qase DEMO#42] ", "Qase DEMO#42");
	assert_title("  ", "Qase DEMO#42");
	assert_title("", "Qase DEMO#42");
	assert_title(NULL, "Qase DEMO#42");
	assert_title(" Custom title ", "Custom title");
	assert_title("[Qase DEMO#4] ", "[Qase DEMO#4]"); /* another run's prefix: kept */
}

static void test_testomat__counts_of_reads_nulls_as_absent(void **state)
{
	json_object *ev = parse("{\"run\":{\"cases_count\":14,\"counts\":{\"total\":null,"
				"\"passed\":10,\"failed\":3,\"blocked\":1,\"skipped\":null,"
				"\"untested\":null},\"duration_ms\":31200}}");
	struct tu_counts c;
	(void)state;
	tu_counts_of(ev, &c);
	assert_int_equal(c.total, 14); /* from cases_count */
	assert_int_equal(c.passed, 10);
	assert_int_equal(c.failed, 3);
	assert_int_equal(c.blocked, 1);
	assert_int_equal(c.skipped, -1);
	assert_int_equal(c.untested, -1);
	assert_int_equal(c.duration_ms, 31200);
	json_object_put(ev);
	ev = parse("{\"run\":{\"counts\":{},\"duration_ms\":null}}");
	tu_counts_of(ev, &c);
	assert_int_equal(c.total, -1);
	assert_int_equal(c.duration_ms, -1);
	json_object_put(ev);
}

static void test_testomat__query_key_is_percent_encoded(void **state)
{
	char buf[64];
	(void)state;
	assert_int_equal(tu_pct_encode("tstmt_a+b/c=d e~.-", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "tstmt_a%2Bb%2Fc%3Dd%20e~.-");
	assert_int_equal(tu_pct_encode("\xc3\xa9", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "%C3%A9");
	assert_int_equal(tu_pct_encode("abc", buf, 4), 0);
	assert_int_equal(tu_pct_encode("abcd", buf, 4), -1);
	assert_int_equal(tu_pct_encode("a b", buf, 5), -1);
}

static void test_testomat__url_joins_without_double_slash(void **state)
{
	char *u;
	(void)state;
	u = tu_url("https://app.testomat.io/", "/api/reporter");
	assert_string_equal(u, "https://app.testomat.io/api/reporter");
	free(u);
	u = tu_url("http://127.0.0.1:9000", "/api/reporter/x/testrun");
	assert_string_equal(u, "http://127.0.0.1:9000/api/reporter/x/testrun");
	free(u);
}

static void test_testomat__details_never_carry_the_key(void **state)
{
	char s[200] = "create run POST: HTTP 401: {\"message\":\"bad key tstmt_secret1 tstmt_secret1\"}";
	(void)state;
	tu_redact(s, "tstmt_secret1");
	assert_string_equal(s, "create run POST: HTTP 401: {\"message\":\"bad key *** ***\"}");
	tu_redact(s, "ab"); /* too short to be a key: left alone */
	tu_redact(s, NULL);
	assert_string_equal(s, "create run POST: HTTP 401: {\"message\":\"bad key *** ***\"}");
}

static void test_testomat__appendf_joins_steps(void **state)
{
	char buf[40] = "";
	(void)state;
	tu_appendf(buf, sizeof(buf), "created run %s", "7c3e9a1f");
	tu_appendf(buf, sizeof(buf), "finished run %s", "7c3e9a1f");
	assert_string_equal(buf, "created run 7c3e9a1f; finished run 7c3e");
}

/* ---- attempts against a fake Testomat ----------------------------------- */

static const char settings[] =
	"{\"base_url\":\"http://127.0.0.1:%d/\",\"api_key\":\"tstmt_K+y\",\"kind\":\"manual\","
	"\"aborted_status\":\"fail\",\"api_key_in\":\"both\",\"timeout_s\":5,"
	"\"connect_timeout_s\":2,\"verify_tls\":true}";

static const char params[] =
	"{\"target\":\"main\",\"title\":\"[Qase DEMO#42] Nightly\",\"group_title\":\"Qase DEMO\","
	"\"description\":\"Mirrored from Qase run DEMO#42\",\"env\":\"staging\",\"label\":\"\"}";

static const char no_title_params[] =
	"{\"target\":\"main\",\"title\":\"[Qase DEMO#42] \",\"group_title\":\"Qase DEMO\","
	"\"description\":\"Mirrored from Qase run DEMO#42\",\"env\":\"\",\"label\":\"\"}";

#define EV(type, run) "{\"type\":\"" type "\",\"project\":\"DEMO\",\"run_id\":42,\"run\":" run "}"

static const char started[] = EV(
	"run.started",
	"{\"title\":\"Nightly\",\"environment\":\"staging\",\"counts\":{},\"duration_ms\":null}");
static const char completed[] = EV(
	"run.completed",
	"{\"title\":\"Nightly\",\"cases_count\":14,\"counts\":{\"total\":14,\"passed\":10,"
	"\"failed\":3,\"blocked\":1,\"skipped\":null,\"untested\":null},\"duration_ms\":31200}");
static const char aborted[] = EV(
	"run.aborted",
	"{\"counts\":{\"total\":14,\"passed\":1,\"failed\":0,\"blocked\":0,\"skipped\":2,"
	"\"untested\":11},\"duration_ms\":null}");
static const char deleted[] = EV("run.deleted", "{}");

static json_object *req_body(struct harness *h, size_t i)
{
	assert_true(i < h->http->n_reqs);
	json_object *o = json_tokener_parse(h->http->reqs[i].body);
	assert_non_null(o);
	return o;
}

static void assert_field(json_object *o, const char *key, const char *want)
{
	json_object *v;
	if (!want) {
		assert_false(json_object_object_get_ex(o, key, &v));
		return;
	}
	assert_true(json_object_object_get_ex(o, key, &v));
	assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), want);
}

static void assert_req(struct harness *h, size_t i, const char *method, const char *target)
{
	assert_true(i < h->http->n_reqs);
	assert_string_equal(h->http->reqs[i].method, method);
	assert_string_equal(h->http->reqs[i].target, target);
	assert_string_equal(h->http->reqs[i].ctype, "application/json");
}

static void open_run(struct harness *h)
{
	fake_queue(h->http, 200, "{\"uid\":\"7c3e9a1f\",\"url\":\"http://x/runs/7c3e9a1f\"}", 0);
	assert_int_equal(h_run(h, &action_testomat_ops, started, params)->outcome, WORK_OK);
	fake_reset(h->http);
	h->n_saves = 0;
}

static void test_run__started_writes_intent_then_uid(void **state)
{
	struct harness h;
	struct target_outcome *o;
	json_object *b;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	fake_queue(h.http, 200, "{\"uid\":\"7c3e9a1f\",\"url\":\"http://x/runs/7c3e9a1f\"}", 0);
	o = h_run(&h, &action_testomat_ops, started, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_int_equal(o->retry_after_ms, -1);
	assert_string_equal(o->detail, "created run 7c3e9a1f");
	assert_int_equal(h.n_saves, 2);
	assert_string_equal(h.saves[0], "creating");
	assert_string_equal(h.saves[1], "open");
	assert_string_equal(h.a.map.remote_id, "7c3e9a1f");
	assert_string_equal(h_data_str(&h, "url"), "http://x/runs/7c3e9a1f");
	assert_int_equal(h.http->n_reqs, 1);
	assert_req(&h, 0, "POST", "/api/reporter?api_key=tstmt_K%2By");
	b = req_body(&h, 0);
	assert_field(b, "api_key", "\"tstmt_K+y\"");
	assert_field(b, "title", "\"[Qase DEMO#42] Nightly\"");
	assert_field(b, "env", "\"staging\"");
	assert_field(b, "group_title", "\"Qase DEMO\"");
	assert_field(b, "description", "\"Mirrored from Qase run DEMO#42\"");
	assert_field(b, "kind", "\"manual\"");
	assert_field(b, "label", NULL);
	assert_field(b, "shared_run", "true");
	json_object_put(b);

	/* a duplicate run.started calls nothing */
	fake_reset(h.http);
	o = h_run(&h, &action_testomat_ops, started, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_string_equal(o->detail, "run 7c3e9a1f already created");
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);
}

static void test_run__refused_intent_sends_nothing(void **state)
{
	struct harness h;
	struct target_outcome *o;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	h.fail_save_at = 1;
	o = h_run(&h, &action_testomat_ops, started, params);
	assert_int_equal(o->outcome, WORK_FAIL);
	assert_string_equal(o->detail, "mapping not saved: disk full");
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);
}

static void test_run__crash_after_create_recreates_as_shared_run(void **state)
{
	struct harness h;
	struct target_outcome *o;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	/* the POST went through but the uid was not committed */
	fake_queue(h.http, 200, "{\"uid\":\"7c3e9a1f\"}", 0);
	h.fail_save_at = 2;
	o = h_run(&h, &action_testomat_ops, started, params);
	assert_int_equal(o->outcome, WORK_FAIL);
	assert_string_equal(h.a.map.state, "open"); /* in memory only: the store refused */
	free(h.a.map.state);
	free(h.a.map.remote_id);
	h.a.map.state = strdup("creating"); /* what the store holds */
	h.a.map.remote_id = NULL;
	fake_reset(h.http);
	fake_queue(h.http, 200, "{\"uid\":\"7c3e9a1f\"}", 0);
	o = h_run(&h, &action_testomat_ops, started, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_int_equal(h.http->n_reqs, 1);
	json_object *b = req_body(&h, 0);
	assert_field(b, "shared_run", "true");
	assert_field(b, "title", "\"[Qase DEMO#42] Nightly\"");
	json_object_put(b);
	h_free(&h);
}

static void test_run__completed_finishes_once(void **state)
{
	struct harness h;
	struct target_outcome *o;
	json_object *b;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	open_run(&h);
	o = h_run(&h, &action_testomat_ops, completed, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_string_equal(o->detail, "finished run 7c3e9a1f: fail, 14 tests");
	assert_req(&h, 0, "PUT", "/api/reporter/7c3e9a1f?api_key=tstmt_K%2By");
	b = req_body(&h, 0);
	assert_field(b, "status_event", "\"fail\"");
	assert_field(b, "duration", "31.2");
	assert_field(b, "tests_count", "14");
	assert_field(b, "passed_count", "10");
	assert_field(b, "failed_count", "4");
	assert_field(b, "skipped_count", "0");
	assert_field(b, "api_key", "\"tstmt_K+y\"");
	json_object_put(b);
	assert_string_equal(h.a.map.state, "finished");
	assert_string_equal(h.saves[0], "finished");

	fake_reset(h.http);
	o = h_run(&h, &action_testomat_ops, completed, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_string_equal(o->detail, "run 7c3e9a1f already finished");
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);
}

static void test_run__aborted_uses_setting_and_counts_untested_as_skipped(void **state)
{
	struct harness h;
	json_object *b;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, aborted, params)->outcome, WORK_OK);
	b = req_body(&h, 0);
	assert_field(b, "status_event", "\"fail\"");
	assert_field(b, "duration", NULL);
	assert_field(b, "skipped_count", "13");
	assert_field(b, "failed_count", "0");
	assert_field(b, "description", "\"Mirrored from Qase run DEMO#42; aborted in Qase\"");
	json_object_put(b);
	h_free(&h);
}

static void test_run__unseen_run_is_created_lazily_with_synthetic_title(void **state)
{
	struct harness h;
	struct target_outcome *o;
	json_object *b;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	fake_queue(h.http, 200, "{\"uid\":\"u1\"}", 0);
	o = h_run(&h, &action_testomat_ops, completed, no_title_params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_string_equal(o->detail, "created run u1; finished run u1: fail, 14 tests");
	assert_int_equal(h.http->n_reqs, 2);
	assert_req(&h, 0, "POST", "/api/reporter?api_key=tstmt_K%2By");
	b = req_body(&h, 0);
	assert_field(b, "title", "\"Qase DEMO#42\"");
	assert_field(b, "env", NULL);
	json_object_put(b);
	assert_req(&h, 1, "PUT", "/api/reporter/u1?api_key=tstmt_K%2By");
	assert_int_equal(h.n_saves, 3);
	assert_string_equal(h.saves[2], "finished");
	h_free(&h);
}

static void test_run__updated_refreshes_title_and_description(void **state)
{
	struct harness h;
	json_object *b;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops,
			       EV("run.updated", "{\"title\":\"Nightly\",\"cases_added\":3}"), params)
				 ->outcome,
			 WORK_OK);
	assert_string_equal(h.out.detail, "refreshed run 7c3e9a1f");
	assert_req(&h, 0, "PUT", "/api/reporter/7c3e9a1f?api_key=tstmt_K%2By");
	b = req_body(&h, 0);
	assert_field(b, "title", "\"[Qase DEMO#42] Nightly\"");
	assert_field(b, "description", "\"Mirrored from Qase run DEMO#42\"");
	assert_field(b, "status_event", NULL);
	json_object_put(b);
	h_free(&h);
}

static void test_run__report_changed_publishes_only_when_visible(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops,
			       EV("run.report_changed", "{\"public\":false}"), params)
				 ->outcome,
			 WORK_OK);
	assert_string_equal(h.out.detail, "no unpublish in the API");
	assert_int_equal(h.http->n_reqs, 0);
	assert_int_equal(h_run(&h, &action_testomat_ops,
			       EV("run.report_changed", "{\"public\":true}"), params)
				 ->outcome,
			 WORK_OK);
	assert_string_equal(h.out.detail, "published run 7c3e9a1f");
	json_object *b = req_body(&h, 0);
	assert_field(b, "access_event", "\"publish\"");
	json_object_put(b);
	h_free(&h);
}

static void test_run__deleted_finishes_then_tombstone_ignores_the_rest(void **state)
{
	struct harness h;
	json_object *b;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, deleted, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "finished run 7c3e9a1f (deleted in Qase)");
	b = req_body(&h, 0);
	assert_field(b, "status_event", "\"finish\"");
	assert_field(b, "description", "\"deleted in Qase\"");
	json_object_put(b);
	assert_string_equal(h.a.map.state, "deleted");
	fake_reset(h.http);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "run deleted in Qase; ignored");
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);
}

static void test_run__deleted_finished_or_unseen_run_calls_nothing(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	assert_int_equal(h_run(&h, &action_testomat_ops, deleted, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "run deleted in Qase before it was mirrored");
	assert_string_equal(h.a.map.state, "deleted");
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);

	h_init(&h, "testomat", "main", settings);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed, params)->outcome, WORK_OK);
	fake_reset(h.http);
	assert_int_equal(h_run(&h, &action_testomat_ops, deleted, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "run 7c3e9a1f deleted in Qase");
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);
}

static void test_run__results_are_batched_with_stable_rids(void **state)
{
	struct harness h;
	char *ev = malloc(64 * 1024);
	size_t n;
	json_object *b, *tests;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	open_run(&h);
	n = (size_t)snprintf(
		ev, 64 * 1024,
		"{\"type\":\"result.created\",\"project\":\"DEMO\","
		"\"run_id\":42,\"run\":{},\"raw\":{\"payload\":{\"run_id\":42,\"results\":[");
	for (int i = 0; i < 450; i++)
		n += (size_t)snprintf(ev + n, 64 * 1024 - n, "%s{\"case_id\":%d,\"status\":\"%s\"}",
				      i ? "," : "", i + 1, i == 7 ? "untested" : "passed");
	snprintf(ev + n, 64 * 1024 - n, "]}}}");
	assert_int_equal(h_run(&h, &action_testomat_ops, ev, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "sent 449 results to run 7c3e9a1f (some not reportable)");
	assert_int_equal(h.http->n_reqs, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_req(&h, i, "POST", "/api/reporter/7c3e9a1f/testrun?api_key=tstmt_K%2By");
		b = req_body(&h, i);
		assert_true(json_object_object_get_ex(b, "tests", &tests));
		assert_int_equal(json_object_array_length(tests), i < 4 ? 100 : 49);
		char want[8];
		snprintf(want, sizeof(want), "%zu", i + 1);
		assert_field(b, "batch_index", want);
		assert_field(b, "api_key", "\"tstmt_K+y\"");
		if (i == 0)
			assert_field(json_object_array_get_idx(tests, 0), "rid",
				     "\"qase-DEMO-42-1\"");
		json_object_put(b);
	}
	/* the next event of the run goes on counting */
	fake_reset(h.http);
	assert_int_equal(h_run(&h, &action_testomat_ops, ev, params)->outcome, WORK_OK);
	b = req_body(&h, 0);
	assert_field(b, "batch_index", "6");
	json_object_put(b);
	free(ev);
	h_free(&h);
}

static void test_run__single_result_and_result_deleted(void **state)
{
	struct harness h;
	json_object *b, *tests;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops,
			       "{\"type\":\"result.updated\",\"project\":\"DEMO\",\"run_id\":42,"
			       "\"raw\":{\"payload\":{\"case\":{\"id\":17,\"title\":\"Login\"},"
			       "\"status\":\"blocked\",\"time_ms\":804}}}",
			       params)
				 ->outcome,
			 WORK_OK);
	b = req_body(&h, 0);
	assert_true(json_object_object_get_ex(b, "tests", &tests));
	assert_string_equal(json_object_to_json_string_ext(json_object_array_get_idx(tests, 0),
							   JSON_C_TO_STRING_PLAIN),
			    "{\"rid\":\"qase-DEMO-42-17\",\"title\":\"Login\",\"status\":\"failed\","
			    "\"run_time\":804,\"message\":\"blocked\",\"create\":true}");
	assert_field(b, "batch_index", "1");
	json_object_put(b);
	fake_reset(h.http);
	assert_int_equal(h_run(&h, &action_testomat_ops,
			       "{\"type\":\"result.deleted\",\"project\":\"DEMO\",\"run_id\":42}",
			       params)
				 ->outcome,
			 WORK_OK);
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);
}

static void test_run__errors_classify_and_never_show_the_key(void **state)
{
	struct harness h;
	struct target_outcome *o;
	(void)state;
	h_init(&h, "testomat", "main", settings);
	open_run(&h);
	fake_queue(h.http, 429, "{\"message\":\"slow down\"}", 3);
	o = h_run(&h, &action_testomat_ops, completed, params);
	assert_int_equal(o->outcome, WORK_FAIL);
	assert_int_equal(o->retry_after_ms, 3000);
	assert_string_equal(h.a.map.state, "open");
	fake_queue(h.http, 401, "{\"message\":\"invalid key tstmt_K+y\"}", 0);
	o = h_run(&h, &action_testomat_ops, completed, params);
	assert_int_equal(o->outcome, WORK_PERMANENT);
	assert_non_null(strstr(o->detail, "401"));
	assert_non_null(strstr(o->detail, "invalid key ***"));
	assert_null(strstr(o->detail, "tstmt_K"));
	h_free(&h);
}

/* settings with api_key_in set to in (the port stays a %d) */
static void settings_with(char *s, size_t len, const char *in)
{
	snprintf(s, len,
		 "{\"base_url\":\"http://127.0.0.1:%%d\",\"api_key\":\"tstmt_K+y\","
		 "\"kind\":\"manual\",\"api_key_in\":\"%s\",\"timeout_s\":5}",
		 in);
}

static void test_run__api_key_in_body_or_query_only(void **state)
{
	struct harness h;
	char s[1024];
	json_object *b;
	(void)state;
	settings_with(s, sizeof(s), "body");
	h_init(&h, "testomat", "main", s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed, params)->outcome, WORK_OK);
	assert_req(&h, 0, "PUT", "/api/reporter/7c3e9a1f");
	b = req_body(&h, 0);
	assert_field(b, "api_key", "\"tstmt_K+y\"");
	json_object_put(b);
	h_free(&h);

	settings_with(s, sizeof(s), "query");
	h_init(&h, "testomat", "main", s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed, params)->outcome, WORK_OK);
	assert_req(&h, 0, "PUT", "/api/reporter/7c3e9a1f?api_key=tstmt_K%2By");
	b = req_body(&h, 0);
	assert_field(b, "api_key", NULL);
	json_object_put(b);
	h_free(&h);
}

/* ---- the run's stored results ------------------------------------------ */

/* The store's rows of one run, as a->results reads them. */
struct rowset {
	struct result_row r[600];
	char title[600][32], suite[600][32];
	size_t n;
	int calls, fail;
};

static int rows_each(struct target_attempt *a, long long after, size_t limit,
		     int (*fn)(void *ctx, const struct result_row *r), void *ctx, size_t *n_out,
		     struct err *err)
{
	struct rowset *s = a->results_ctx;

	s->calls++;
	*n_out = 0;
	if (s->fail)
		return err_set(err, "database is locked");
	for (size_t i = 0; i < s->n; i++) {
		if (s->r[i].case_id <= after)
			continue;
		if (limit && *n_out >= limit)
			break;
		(*n_out)++;
		if (fn(ctx, &s->r[i]) < 0)
			break;
	}
	return 0;
}

/* Adds case id with status: "Case <id>" in suite "Auth / Login", 10 ms per
 * case id, a comment on every failure. */
static struct result_row *row_add(struct rowset *s, long long id, const char *status)
{
	struct result_row *r = &s->r[s->n];

	assert_true(s->n < 600);
	snprintf(s->title[s->n], sizeof(s->title[0]), "Case %lld", id);
	snprintf(s->suite[s->n], sizeof(s->suite[0]), "Auth / Login");
	*r = (struct result_row){ .case_id = id,
				  .status = status,
				  .title = s->title[s->n],
				  .suite = s->suite[s->n],
				  .duration_ms = id * 10,
				  .end_ms = -1 };
	s->n++;
	return r;
}

/* 1..n: every 10th failed, every 25th skipped, the rest passed. */
static void rows_mixed(struct rowset *s, long long n)
{
	for (long long id = 1; id <= n; id++)
		row_add(s, id, id % 10 == 0 ? "failed" : id % 25 == 0 ? "skipped" : "passed");
}

static void h_results(struct harness *h, struct rowset *s)
{
	h->a.results = rows_each;
	h->a.results_ctx = s;
	h->a.delivery_id = "d1";
}

#define EVR(type, run, results)                                                  \
	"{\"type\":\"" type "\",\"project\":\"DEMO\",\"run_id\":42,\"run\":" run \
	",\"results\":" results "}"
#define QASE_COUNTS                                                                            \
	"{\"title\":\"Nightly\",\"cases_count\":240,\"counts\":{\"total\":240,\"passed\":216," \
	"\"failed\":23,\"blocked\":1,\"skipped\":null,\"untested\":null},\"duration_ms\":31200}"
#define COMPLETE "{\"status\":\"complete\",\"total\":237,\"counts\":{},\"failed\":[]}"

static const char completed_r[] = EVR("run.completed", QASE_COUNTS, COMPLETE);

static json_object *tests_of(json_object *body)
{
	json_object *tests;
	assert_true(json_object_object_get_ex(body, "tests", &tests));
	return tests;
}

static long long case_of(json_object *test)
{
	json_object *rid;
	long long id = -1;
	assert_true(json_object_object_get_ex(test, "rid", &rid));
	assert_int_equal(sscanf(json_object_get_string(rid), "qase-DEMO-42-%lld", &id), 1);
	return id;
}

/* Request i is batch idx holding cases from..to in order. */
static void assert_batch(struct harness *h, size_t i, int idx, long long from, long long to)
{
	char want[16];
	json_object *b = req_body(h, i), *tests;

	assert_req(h, i, "POST", "/api/reporter/7c3e9a1f/testrun?api_key=tstmt_K%2By");
	snprintf(want, sizeof(want), "%d", idx);
	assert_field(b, "batch_index", want);
	tests = tests_of(b);
	assert_int_equal(json_object_array_length(tests), (size_t)(to - from + 1));
	for (size_t k = 0; k < json_object_array_length(tests); k++)
		assert_int_equal(case_of(json_object_array_get_idx(tests, k)), from + (long long)k);
	json_object_put(b);
}

static void test_results__237_go_in_3_batches_before_the_finish(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	json_object *b, *t;
	(void)state;
	rows_mixed(s, 237);
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "sent batches 1-3 to run 7c3e9a1f (237 results in all); "
					  "finished run 7c3e9a1f: fail, 237 tests");
	assert_int_equal(h.http->n_reqs, 4);
	assert_batch(&h, 0, 1, 1, 100);
	assert_batch(&h, 1, 2, 101, 200);
	assert_batch(&h, 2, 3, 201, 237);
	b = req_body(&h, 0);
	t = json_object_array_get_idx(tests_of(b), 9); /* case 10: failed */
	assert_string_equal(json_object_to_json_string_ext(
				    t, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
			    "{\"rid\":\"qase-DEMO-42-10\",\"title\":\"Case 10\","
			    "\"suite_title\":\"Auth / Login\",\"status\":\"failed\",\"run_time\":100,"
			    "\"create\":true}");
	json_object_put(b);
	/* the finish counts what was sent: 23 failed (10, 20, ... 230), 5
	 * skipped (25, 75, ... 225), 209 passed */
	assert_req(&h, 3, "PUT", "/api/reporter/7c3e9a1f?api_key=tstmt_K%2By");
	b = req_body(&h, 3);
	assert_field(b, "status_event", "\"fail\"");
	assert_field(b, "tests_count", "237");
	assert_field(b, "passed_count", "209");
	assert_field(b, "failed_count", "23");
	assert_field(b, "skipped_count", "5");
	assert_field(b, "duration", "31.2");
	assert_field(b, "force_finish_shared_run", "true");
	json_object_put(b);
	/* progress committed after each batch, then the finish */
	assert_int_equal(h.n_saves, 4);
	assert_string_equal(h.saves[3], "finished");
	h_free(&h);
	free(s);
}

static void test_results__a_failed_batch_resumes_there_with_the_same_rids(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	struct target_outcome *o;
	(void)state;
	rows_mixed(s, 237);
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	fake_queue(h.http, 200, "{}", 0);
	fake_queue(h.http, 503, "{\"message\":\"down\"}", 0);
	o = h_run(&h, &action_testomat_ops, completed_r, params);
	assert_int_equal(o->outcome, WORK_FAIL);
	assert_int_equal(h.http->n_reqs, 2);
	assert_batch(&h, 0, 1, 1, 100);
	assert_batch(&h, 1, 2, 101, 200);
	assert_string_equal(h.a.map.state, "open");
	assert_int_equal(h.n_saves, 1); /* batch 1 only */

	fake_reset(h.http);
	o = h_run(&h, &action_testomat_ops, completed_r, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_string_equal(o->detail, "sent batches 2-3 to run 7c3e9a1f (237 results in all); "
				       "finished run 7c3e9a1f: fail, 237 tests");
	assert_int_equal(h.http->n_reqs, 3);
	assert_batch(&h, 0, 2, 101, 200);
	assert_batch(&h, 1, 3, 201, 237);
	json_object *b = req_body(&h, 2);
	assert_field(b, "tests_count", "237");
	assert_field(b, "failed_count", "23");
	json_object_put(b);
	h_free(&h);
	free(s);
}

/* A save that keeps what the store would hold: the map as last committed. */
struct crash_store {
	struct harness *h;
	json_object *data;
	int refuse_at, n;
};

static int crash_save(struct target_attempt *a, struct err *err)
{
	struct crash_store *c = a->save_ctx;

	if (++c->n == c->refuse_at)
		return err_set(err, "killed");
	json_object_put(c->data);
	c->data = NULL;
	assert_int_equal(json_object_deep_copy(a->map.data, &c->data, NULL), 0);
	return 0;
}

static void test_results__a_crash_between_two_batches_sends_no_test_with_a_new_rid(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	struct crash_store c = { .h = &h, .refuse_at = 2 };
	json_object *seen = json_object_new_object(), *b, *tests;
	(void)state;
	rows_mixed(s, 237);
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	h.a.save = crash_save;
	h.a.save_ctx = &c;
	/* batch 2 is accepted, then the process dies before its commit */
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_FAIL);
	assert_int_equal(h.http->n_reqs, 2);
	json_object_put(h.a.map.data); /* the restart reads the store */
	h.a.map.data = NULL;
	assert_int_equal(json_object_deep_copy(c.data, &h.a.map.data, NULL), 0);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	assert_int_equal(h.http->n_reqs, 5);
	assert_batch(&h, 2, 2, 101, 200); /* again, as batch 2 */
	assert_batch(&h, 3, 3, 201, 237);
	/* every test went with one rid, and every case has a test */
	for (size_t i = 0; i < 4; i++) {
		b = req_body(&h, i);
		tests = tests_of(b);
		for (size_t k = 0; k < json_object_array_length(tests); k++) {
			json_object *rid;
			json_object *t = json_object_array_get_idx(tests, k);
			char key[32];
			assert_true(json_object_object_get_ex(t, "rid", &rid));
			snprintf(key, sizeof(key), "%lld", case_of(t));
			json_object_object_add(seen, key, json_object_get(rid));
		}
		json_object_put(b);
	}
	assert_int_equal(json_object_object_length(seen), 237);
	json_object_put(seen);
	b = req_body(&h, 4);
	assert_field(b, "tests_count", "237");
	json_object_put(b);
	json_object_put(c.data);
	h_free(&h);
	free(s);
}

/* The one test the run's only result became. */
static json_object *only_test(struct harness *h, size_t req)
{
	json_object *b = req_body(h, req), *tests = tests_of(b), *t;
	assert_int_equal(json_object_array_length(tests), 1);
	t = json_object_get(json_object_array_get_idx(tests, 0));
	json_object_put(b);
	return t;
}

static void test_results__every_qase_status_maps_and_in_progress_is_not_sent(void **state)
{
	static const char *const qase[] = { "passed",   "failed",  "blocked", "blocked",
					    "skipped",  "invalid", "retest",  "in_progress",
					    "untested", NULL };
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	json_object *b, *tests;
	(void)state;
	for (size_t i = 0; i < sizeof(qase) / sizeof(qase[0]); i++)
		row_add(s, (long long)i + 1, qase[i]);
	s->r[1].message = "Expected 200, got 500";
	s->r[1].stacktrace = "at login.spec:12";
	s->r[3].message = "env down";
	s->r[5].message = "wrong data";
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "sent batch 1 to run 7c3e9a1f (7 results in all); "
					  "3 results not sent (in progress, untested or omitted); "
					  "finished run 7c3e9a1f: fail, 7 tests");
	b = req_body(&h, 0);
	tests = tests_of(b);
	assert_int_equal(json_object_array_length(tests), 7);
	static const char *const want[][3] = {
		{ "\"qase-DEMO-42-1\"", "\"passed\"", NULL },
		{ "\"qase-DEMO-42-2\"", "\"failed\"", "\"Expected 200, got 500\"" },
		{ "\"qase-DEMO-42-3\"", "\"failed\"", "\"blocked in Qase\"" },
		{ "\"qase-DEMO-42-4\"", "\"failed\"", "\"blocked in Qase: env down\"" },
		{ "\"qase-DEMO-42-5\"", "\"skipped\"", NULL },
		{ "\"qase-DEMO-42-6\"", "\"failed\"", "\"invalid in Qase: wrong data\"" },
		{ "\"qase-DEMO-42-7\"", "\"skipped\"", "\"retest in Qase\"" },
	};
	for (size_t i = 0; i < 7; i++) {
		json_object *t = json_object_array_get_idx(tests, i);
		assert_field(t, "rid", want[i][0]);
		assert_field(t, "status", want[i][1]);
		assert_field(t, "message", want[i][2]);
		assert_field(t, "create", "true");
	}
	assert_field(json_object_array_get_idx(tests, 1), "stack", "\"at login.spec:12\"");
	assert_field(json_object_array_get_idx(tests, 0), "stack", NULL);
	json_object_put(b);
	b = req_body(&h, 1);
	assert_field(b, "tests_count", "7");
	assert_field(b, "passed_count", "1");
	assert_field(b, "failed_count", "4");
	assert_field(b, "skipped_count", "2");
	json_object_put(b);
	h_free(&h);
	free(s);
}

static void test_results__blocked_and_custom_statuses_follow_their_settings(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	json_object *t, *b;
	(void)state;
	row_add(s, 3, "blocked");
	row_add(s, 4, "retest");
	row_add(s, 5, "passed");
	h_init(&h, "testomat", "main",
	       "{\"base_url\":\"http://127.0.0.1:%d\",\"api_key\":\"tstmt_K+y\","
	       "\"blocked_status\":\"skipped\",\"custom_status\":\"omit\"}");
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops,
			       EVR("run.completed",
				   "{\"counts\":{\"total\":3,\"passed\":1,\"failed\":0,"
				   "\"blocked\":0}}",
				   COMPLETE),
			       params)
				 ->outcome,
			 WORK_OK);
	b = req_body(&h, 0);
	assert_int_equal(json_object_array_length(tests_of(b)), 2); /* retest omitted */
	t = json_object_array_get_idx(tests_of(b), 0);
	assert_field(t, "rid", "\"qase-DEMO-42-3\"");
	assert_field(t, "status", "\"skipped\"");
	assert_field(t, "message", "\"blocked in Qase\"");
	json_object_put(b);
	b = req_body(&h, 1);
	assert_field(b, "status_event", "\"finish\""); /* nothing failed */
	assert_field(b, "skipped_count", "1");
	assert_field(b, "tests_count", "2");
	json_object_put(b);
	h_free(&h);

	/* custom: failed */
	h_init(&h, "testomat", "main",
	       "{\"base_url\":\"http://127.0.0.1:%d\",\"api_key\":\"tstmt_K+y\","
	       "\"custom_status\":\"failed\"}");
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	b = req_body(&h, 0);
	assert_field(json_object_array_get_idx(tests_of(b), 0), "status", "\"failed\"");
	t = json_object_array_get_idx(tests_of(b), 1);
	assert_field(t, "status", "\"failed\"");
	assert_field(t, "message", "\"retest in Qase\"");
	json_object_put(b);
	h_free(&h);
	free(s);
}

static void test_results__run_time_unit_is_a_setting(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	json_object *t;
	(void)state;
	row_add(s, 17, "passed")->duration_ms = 1532;
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	t = only_test(&h, 0);
	assert_field(t, "run_time", "1532");
	json_object_put(t);
	h_free(&h);

	h_init(&h, "testomat", "main",
	       "{\"base_url\":\"http://127.0.0.1:%d\",\"api_key\":\"tstmt_K+y\","
	       "\"run_time_unit\":\"s\"}");
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	t = only_test(&h, 0);
	assert_field(t, "run_time", "1.532");
	json_object_put(t);
	h_free(&h);

	/* unknown duration: no run_time; a known end: its Unix seconds */
	s->r[0].duration_ms = -1;
	s->r[0].end_ms = 1795000000123LL;
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	t = only_test(&h, 0);
	assert_field(t, "run_time", NULL);
	assert_field(t, "timestamp", "1795000000");
	json_object_put(t);
	h_free(&h);
	free(s);
}

static void test_results__without_results_the_finish_is_todays(void **state)
{
	static const char *const events[] = {
		EVR("run.completed", QASE_COUNTS, "null"),
		EV("run.completed", QASE_COUNTS),
	};
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	(void)state;
	rows_mixed(s, 20);
	for (size_t i = 0; i < 2; i++) {
		h_init(&h, "testomat", "main", settings);
		h_results(&h, s);
		open_run(&h);
		assert_int_equal(h_run(&h, &action_testomat_ops, events[i], params)->outcome,
				 WORK_OK);
		assert_string_equal(h.out.detail, "finished run 7c3e9a1f: fail, 240 tests");
		assert_int_equal(h.http->n_reqs, 1);
		assert_req(&h, 0, "PUT", "/api/reporter/7c3e9a1f?api_key=tstmt_K%2By");
		assert_json(req_body(&h, 0),
			    "{\"status_event\":\"fail\",\"duration\":31.2,\"tests_count\":240,"
			    "\"passed_count\":216,\"failed_count\":24,\"skipped_count\":0,"
			    "\"force_finish_shared_run\":true,\"api_key\":\"tstmt_K+y\"}");
		assert_int_equal(s->calls, 0);
		assert_int_equal(h.n_saves, 1);
		h_free(&h);
	}
	free(s);
}

static void test_results__qase_failure_fails_the_run_whatever_was_sent(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	json_object *b;
	(void)state;
	rows_mixed(s, 9); /* all passed: Qase's failures were not fetched */
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops,
			       EVR("run.completed", QASE_COUNTS,
				   "{\"status\":\"partial\",\"total\":9,\"counts\":{}}"),
			       params)
				 ->outcome,
			 WORK_OK);
	b = req_body(&h, 1);
	assert_field(b, "status_event", "\"fail\"");
	assert_field(b, "tests_count", "9");
	assert_field(b, "failed_count", "0");
	assert_field(b, "force_finish_shared_run", "true");
	json_object_put(b);
	h_free(&h);

	/* nothing stored (unavailable): Qase's counts, as without results */
	s->n = 0;
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops,
			       EVR("run.completed", QASE_COUNTS,
				   "{\"status\":\"unavailable\",\"total\":0,\"counts\":{}}"),
			       params)
				 ->outcome,
			 WORK_OK);
	assert_string_equal(h.out.detail,
			    "no results to send; finished run 7c3e9a1f: fail, 240 tests");
	assert_int_equal(h.http->n_reqs, 1);
	b = req_body(&h, 0);
	assert_field(b, "tests_count", "240");
	json_object_put(b);
	h_free(&h);

	/* Qase's counts unknown: a failed test sent fails the run */
	row_add(s, 1, "passed");
	row_add(s, 2, "failed");
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(
		h_run(&h, &action_testomat_ops, EVR("run.completed", "{}", COMPLETE), params)->outcome,
		WORK_OK);
	b = req_body(&h, 1);
	assert_field(b, "status_event", "\"fail\"");
	assert_field(b, "failed_count", "1");
	json_object_put(b);
	h_free(&h);
	free(s);
}

static void test_results__batches_stay_under_a_megabyte(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	char *big = malloc(30001);
	long long next = 1;
	size_t i;
	(void)state;
	memset(big, 'x', 30000);
	big[30000] = '\0';
	for (long long id = 1; id <= 100; id++)
		row_add(s, id, "failed")->stacktrace = big;
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	assert_true(h.http->n_reqs >= 4); /* 3 MB of tests */
	for (i = 0; i + 1 < h.http->n_reqs; i++) {
		json_object *b = req_body(&h, i), *tests = tests_of(b);
		assert_true(strlen(h.http->reqs[i].body) <= 1000 * 1000 + 200);
		for (size_t k = 0; k < json_object_array_length(tests); k++)
			assert_int_equal(case_of(json_object_array_get_idx(tests, k)), next++);
		json_object_put(b);
	}
	assert_int_equal(next, 101);
	assert_req(&h, i, "PUT", "/api/reporter/7c3e9a1f?api_key=tstmt_K%2By");
	free(big);
	h_free(&h);
	free(s);
}

static void test_results__unsent_rows_never_fill_a_batch(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	(void)state;
	for (long long id = 1; id <= 250; id++)
		row_add(s, id, id % 2 ? "untested" : "in_progress");
	for (long long id = 251; id <= 260; id++)
		row_add(s, id, "passed");
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "sent batch 1 to run 7c3e9a1f (10 results in all); "
					  "250 results not sent (in progress, untested or omitted); "
					  "finished run 7c3e9a1f: fail, 10 tests");
	assert_batch(&h, 0, 1, 251, 260);
	h_free(&h);
	free(s);
}

static void test_results__a_store_failure_is_retried_and_sends_nothing(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	(void)state;
	rows_mixed(s, 5);
	s->fail = 1;
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_FAIL);
	assert_string_equal(h.out.detail, "read results: database is locked");
	assert_int_equal(h.http->n_reqs, 0);
	assert_string_equal(h.a.map.state, "open");
	h_free(&h);
	free(s);
}

static void test_results__another_event_sends_again_with_the_same_rids(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	(void)state;
	rows_mixed(s, 120);
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	open_run(&h);
	/* run.updated in fetch_on: its results go, the run stays open */
	assert_int_equal(h_run(&h, &action_testomat_ops,
			       EVR("run.updated", "{\"title\":\"Nightly\"}", COMPLETE), params)
				 ->outcome,
			 WORK_OK);
	assert_int_equal(h.http->n_reqs, 3);
	assert_batch(&h, 0, 1, 1, 100);
	assert_batch(&h, 1, 2, 101, 120);
	assert_req(&h, 2, "PUT", "/api/reporter/7c3e9a1f?api_key=tstmt_K%2By");
	assert_string_equal(h.a.map.state, "open");
	fake_reset(h.http);
	h.a.delivery_id = "d2";
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	assert_int_equal(h.http->n_reqs, 3);
	assert_batch(&h, 0, 3, 1, 100);
	assert_batch(&h, 1, 4, 101, 120);
	json_object *b = req_body(&h, 2);
	assert_field(b, "tests_count", "120");
	json_object_put(b);
	/* a finished run takes no more */
	fake_reset(h.http);
	h.a.delivery_id = "d3";
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "run 7c3e9a1f already finished");
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);
	free(s);
}

static void test_results__an_unseen_run_is_created_then_gets_its_results(void **state)
{
	struct harness h;
	struct rowset *s = calloc(1, sizeof(*s));
	(void)state;
	rows_mixed(s, 3);
	h_init(&h, "testomat", "main", settings);
	h_results(&h, s);
	fake_queue(h.http, 200, "{\"uid\":\"7c3e9a1f\"}", 0);
	assert_int_equal(h_run(&h, &action_testomat_ops, completed_r, params)->outcome, WORK_OK);
	assert_int_equal(h.http->n_reqs, 3);
	assert_req(&h, 0, "POST", "/api/reporter?api_key=tstmt_K%2By");
	assert_batch(&h, 1, 1, 1, 3);
	assert_req(&h, 2, "PUT", "/api/reporter/7c3e9a1f?api_key=tstmt_K%2By");
	h_free(&h);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_testomat__completed_with_failures_fails),
		cmocka_unit_test(test_testomat__completed_blocked_only_fails),
		cmocka_unit_test(test_testomat__completed_clean_finishes_and_counts_the_rest_skipped),
		cmocka_unit_test(test_testomat__completed_skipped_never_negative),
		cmocka_unit_test(test_testomat__completed_without_counts_omits_them),
		cmocka_unit_test(test_testomat__aborted_uses_setting_and_skipped_plus_untested),
		cmocka_unit_test(test_testomat__finish_body_duration_in_seconds),
		cmocka_unit_test(test_testomat__seconds_keep_three_decimals),
		cmocka_unit_test(test_testomat__create_body_omits_empty_fields_and_shares_the_run),
		cmocka_unit_test(test_testomat__status_mapping),
		cmocka_unit_test(test_testomat__result_has_stable_rid_and_ms),
		cmocka_unit_test(test_testomat__blocked_result_fails_with_message),
		cmocka_unit_test(test_testomat__unreportable_results_are_not_sent),
		cmocka_unit_test(test_testomat__batches_of_200_numbered_from_1),
		cmocka_unit_test(test_testomat__title_falls_back_when_qase_title_unknown),
		cmocka_unit_test(test_testomat__counts_of_reads_nulls_as_absent),
		cmocka_unit_test(test_testomat__query_key_is_percent_encoded),
		cmocka_unit_test(test_testomat__url_joins_without_double_slash),
		cmocka_unit_test(test_testomat__details_never_carry_the_key),
		cmocka_unit_test(test_testomat__appendf_joins_steps),
		cmocka_unit_test(test_run__started_writes_intent_then_uid),
		cmocka_unit_test(test_run__refused_intent_sends_nothing),
		cmocka_unit_test(test_run__crash_after_create_recreates_as_shared_run),
		cmocka_unit_test(test_run__completed_finishes_once),
		cmocka_unit_test(test_run__aborted_uses_setting_and_counts_untested_as_skipped),
		cmocka_unit_test(test_run__unseen_run_is_created_lazily_with_synthetic_title),
		cmocka_unit_test(test_run__updated_refreshes_title_and_description),
		cmocka_unit_test(test_run__report_changed_publishes_only_when_visible),
		cmocka_unit_test(test_run__deleted_finishes_then_tombstone_ignores_the_rest),
		cmocka_unit_test(test_run__deleted_finished_or_unseen_run_calls_nothing),
		cmocka_unit_test(test_run__results_are_batched_with_stable_rids),
		cmocka_unit_test(test_run__single_result_and_result_deleted),
		cmocka_unit_test(test_run__errors_classify_and_never_show_the_key),
		cmocka_unit_test(test_run__api_key_in_body_or_query_only),
		cmocka_unit_test(test_results__237_go_in_3_batches_before_the_finish),
		cmocka_unit_test(test_results__a_failed_batch_resumes_there_with_the_same_rids),
		cmocka_unit_test(
			test_results__a_crash_between_two_batches_sends_no_test_with_a_new_rid),
		cmocka_unit_test(test_results__every_qase_status_maps_and_in_progress_is_not_sent),
		cmocka_unit_test(test_results__blocked_and_custom_statuses_follow_their_settings),
		cmocka_unit_test(test_results__run_time_unit_is_a_setting),
		cmocka_unit_test(test_results__without_results_the_finish_is_todays),
		cmocka_unit_test(test_results__qase_failure_fails_the_run_whatever_was_sent),
		cmocka_unit_test(test_results__batches_stay_under_a_megabyte),
		cmocka_unit_test(test_results__unsent_rows_never_fill_a_batch),
		cmocka_unit_test(test_results__a_store_failure_is_retried_and_sends_nothing),
		cmocka_unit_test(test_results__another_event_sends_again_with_the_same_rids),
		cmocka_unit_test(test_results__an_unseen_run_is_created_then_gets_its_results),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
