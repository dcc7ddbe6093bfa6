/* target_qasphere: the pure parts (target_util) that shape QA Sphere calls
 * (conflict parsing, HTML comments, create bodies and their limits, the
 * token bucket), then whole attempts against a fake server (create,
 * adoption of a conflicting run, log-then-close recorded step by step,
 * tombstones, the rate limit). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <time.h>

#include "targets/target_util.h"
#include "target_fake_http.h"

static void assert_json(json_object *o, const char *want)
{
	assert_non_null(o);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), want);
	json_object_put(o);
}

static void assert_conflict(const char *text, long long want)
{
	long long id = -7;
	assert_int_equal(tu_conflicting_run_id(text, &id), 0);
	assert_int_equal(id, want);
}

static void assert_no_conflict(const char *text)
{
	long long id = -7;
	assert_int_equal(tu_conflicting_run_id(text, &id), -1);
	assert_int_equal(id, -7);
}

static void test_qasphere__conflicting_run_id_is_read_from_any_answer(void **state)
{
	(void)state;
	assert_conflict("create run POST: HTTP 403: {\"message\":\"Run title must be unique "
			"within the milestone, conflicting run id: 317\"}",
			317);
	assert_conflict("HTTP 409: conflicting run id: 5", 5);
	assert_conflict("HTTP 400: {\"message\":\"Conflicting Run ID:12\"}", 12);
	/* the last one wins: a title echoed before the real message */
	assert_conflict("title 'conflicting run id: 1' conflicting run id: 2", 2);
}

static void test_qasphere__other_errors_are_not_conflicts(void **state)
{
	(void)state;
	assert_no_conflict("create run POST: HTTP 400: {\"message\":\"queryPlans: required\"}");
	assert_no_conflict("conflicting run id: ");
	assert_no_conflict("conflicting run id: x12");
	assert_no_conflict("conflicting run id: 99999999999999999999999");
	assert_no_conflict("");
	assert_no_conflict(NULL);
}

static void test_qasphere__html_is_escaped(void **state)
{
	char *s;
	(void)state;
	s = tu_html_escape("<b>Fish & \"Chips\"</b> it's");
	assert_string_equal(s, "&lt;b&gt;Fish &amp; &quot;Chips&quot;&lt;/b&gt; it&#39;s");
	free(s);
	s = tu_html_escape(NULL);
	assert_string_equal(s, "");
	free(s);
	s = tu_html_escape("plain h\xc3\xa9");
	assert_string_equal(s, "plain h\xc3\xa9");
	free(s);
}

static struct tu_counts counts(long long total, long long passed, long long failed, long long blocked,
			       long long skipped, long long untested, long long duration_ms)
{
	struct tu_counts c = { total, passed, failed, blocked, skipped, untested, duration_ms };
	return c;
}

static void assert_comment(const char *type, const struct tu_counts *c, long long added,
			   long long count, const char *title, const char *want)
{
	char *s = tu_qasphere_comment(type, c, added, count, "DEMO", 42, title);
	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void test_qasphere__updated_comment_says_cases_added(void **state)
{
	struct tu_counts c = counts(-1, -1, -1, -1, -1, -1, -1);
	(void)state;
	assert_comment("run.updated", &c, 14, 28, "x", "<p>14 cases added in Qase</p>");
	assert_comment("run.updated", &c, -1, 28, "x",
		       "<p>Cases changed in Qase: the run has 28 cases</p>");
	assert_comment("run.updated", &c, -1, -1, "x", "<p>Run updated in Qase</p>");
}

static void test_qasphere__completed_comment_has_counts_duration_and_escaped_title(void **state)
{
	struct tu_counts c = counts(14, 10, 3, 1, -1, -1, 31200);
	(void)state;
	assert_comment("run.completed", &c, -1, 14, "Nightly <b> & \"x\"",
		       "<p>Completed in Qase: 10 passed, 3 failed, 1 blocked of 14 cases; "
		       "duration 31.2 s</p><p>Qase run DEMO#42: Nightly &lt;b&gt; &amp; "
		       "&quot;x&quot;</p>");
	c = counts(-1, -1, -1, -1, -1, -1, -1);
	assert_comment("run.completed", &c, -1, -1, NULL,
		       "<p>Completed in Qase: no counts</p><p>Qase run DEMO#42</p>");
}

static void test_qasphere__aborted_comment_lists_skipped_and_untested(void **state)
{
	struct tu_counts c = counts(14, 0, 0, 0, 0, 14, 0);
	(void)state;
	assert_comment("run.aborted", &c, -1, 14, "T",
		       "<p>Aborted in Qase: 0 passed, 0 failed, 0 blocked, 0 skipped, "
		       "14 untested of 14 cases; duration 0.0 s</p><p>Qase run DEMO#42: T</p>");
}

static void test_qasphere__deleted_comment(void **state)
{
	struct tu_counts c = counts(-1, -1, -1, -1, -1, -1, -1);
	(void)state;
	assert_comment("run.deleted", &c, -1, -1, "a<b",
		       "<p>Run deleted in Qase</p><p>Qase run DEMO#42: a&lt;b</p>");
}

static void test_qasphere__create_body(void **state)
{
	json_object *plan = json_tokener_parse("{\"folderIds\":[12]}");
	struct tu_qasphere_run r = {
		.title = "[Qase DEMO#42] Nightly",
		.description = "Mirrored",
		.type = "static_struct",
		.query_plan = plan,
		.milestone_id = 0,
	};
	(void)state;
	assert_json(tu_qasphere_create_body(&r),
		    "{\"title\":\"[Qase DEMO#42] Nightly\",\"description\":\"Mirrored\","
		    "\"type\":\"static_struct\",\"queryPlans\":[{\"folderIds\":[12]}]}");
	r.milestone_id = 5;
	r.description = "";
	r.type = "live";
	assert_json(tu_qasphere_create_body(&r),
		    "{\"title\":\"[Qase DEMO#42] Nightly\",\"type\":\"live\",\"milestoneId\":5,"
		    "\"queryPlans\":[{\"folderIds\":[12]}]}");
	/* the setting is copied, never shared */
	assert_int_equal(json_object_object_length(plan), 1);
	json_object_put(plan);
}

static void test_qasphere__create_body_cuts_title_and_description(void **state)
{
	char title[400], desc[1300];
	struct tu_qasphere_run r = { .title = title, .description = desc, .type = "static" };
	json_object *o, *v;
	(void)state;
	memset(title, 'T', 300);
	title[300] = '\0';
	/* 600 two-byte characters: the cut must not split one */
	for (int i = 0; i < 600; i++)
		memcpy(desc + 2 * i, "\xc3\xa9", 2);
	desc[1200] = '\0';
	o = tu_qasphere_create_body(&r);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "title", &v));
	assert_int_equal(strlen(json_object_get_string(v)), 255);
	assert_true(json_object_object_get_ex(o, "description", &v));
	assert_int_equal(strlen(json_object_get_string(v)), 1024); /* 512 characters */
	assert_true(json_object_object_get_ex(o, "queryPlans", &v));
	assert_int_equal(json_object_array_length(v), 1);
	json_object_put(o);
}

static void test_qasphere__utf8_prefix_counts_characters(void **state)
{
	(void)state;
	assert_int_equal(tu_utf8_prefix("abc", 2), 2);
	assert_int_equal(tu_utf8_prefix("abc", 5), 3);
	assert_int_equal(tu_utf8_prefix("\xc3\xa9\xe2\x82\xac"
					"x",
					2),
			 5);
	assert_int_equal(tu_utf8_prefix("\xc3\xa9\xe2\x82\xac"
					"x",
					1),
			 2);
	assert_int_equal(tu_utf8_prefix("", 3), 0);
	char *c = tu_cut(NULL, 3);
	assert_string_equal(c, "");
	free(c);
}

#define MS 1000000LL

static void test_qasphere__bucket_allows_a_burst_then_spaces_requests(void **state)
{
	struct tu_bucket b = { 0 };
	long long t0 = 5000 * MS;
	(void)state;
	for (int i = 0; i < 20; i++)
		assert_int_equal(tu_bucket_take(&b, t0, 20, 20), 0);
	/* the 21st waits one interval, the 22nd two */
	long long w = tu_bucket_take(&b, t0, 20, 20);
	assert_true(w > 49 * MS && w <= 51 * MS);
	w = tu_bucket_take(&b, t0, 20, 20);
	assert_true(w > 99 * MS && w <= 101 * MS);
	/* a second later the debt is paid and tokens are back */
	assert_int_equal(tu_bucket_take(&b, t0 + 1200 * MS, 20, 20), 0);
}

/* Each taker sleeps what it is told; returns the send times. */
static void drive(struct tu_bucket *b, double rate, double burst, long long *at, int n)
{
	long long now = 0;
	for (int i = 0; i < n; i++) {
		now += tu_bucket_take(b, now, rate, burst);
		at[i] = now;
	}
}

static void test_qasphere__paced_bucket_keeps_every_sliding_second_under_the_limit(void **state)
{
	struct tu_bucket b = { 0 };
	long long at[200];
	(void)state;
	drive(&b, 20 / 1.02, 1, at, 200);
	assert_int_equal(at[0], 0);
	/* 21 requests never fit in one second: the window the fake enforces */
	for (int i = 20; i < 200; i++)
		assert_true(at[i] - at[i - 20] >= 1000 * MS);
	/* a burst allowance would break that */
	memset(&b, 0, sizeof(b));
	drive(&b, 20, 20, at, 200);
	assert_true(at[20] - at[0] < 1000 * MS);
	assert_int_equal(tu_bucket_take(&b, 0, 0, 1), 0); /* no limit */
}

/* ---- attempts against a fake QA Sphere ---------------------------------- */

static const char settings[] =
	"{\"base_url\":\"http://127.0.0.1:%d\",\"api_key\":\"t1.ak2.secret\",\"project\":\"Q S\","
	"\"run_type\":\"static_struct\",\"query_plan\":{\"folderIds\":[12]},"
	"\"auth_scheme\":\"Bearer\",\"rate_limit_per_s\":0,\"timeout_s\":5}";

static const char params[] = "{\"target\":\"main\",\"title\":\"[Qase DEMO#42] Nightly <1>\","
			     "\"description\":\"Mirrored from Qase run DEMO#42\"}";

#define EV(type, run) "{\"type\":\"" type "\",\"project\":\"DEMO\",\"run_id\":42,\"run\":" run "}"

static const char started[] = EV("run.started", "{\"title\":\"Nightly <1>\"}");
static const char completed[] = EV(
	"run.completed",
	"{\"title\":\"Nightly <1>\",\"counts\":{\"total\":14,\"passed\":10,\"failed\":3,"
	"\"blocked\":1},\"duration_ms\":31200}");
static const char deleted[] = EV("run.deleted", "{\"title\":\"Nightly <1>\"}");

#define RUNS "/api/public/v0/project/Q%20S/run"

static void assert_req(struct harness *h, size_t i, const char *target, const char *body)
{
	assert_true(i < h->http->n_reqs);
	assert_string_equal(h->http->reqs[i].method, "POST");
	assert_string_equal(h->http->reqs[i].target, target);
	assert_string_equal(h->http->reqs[i].auth, "Bearer t1.ak2.secret");
	assert_string_equal(h->http->reqs[i].ctype, "application/json");
	if (body)
		assert_string_equal(h->http->reqs[i].body, body);
}

static void open_run(struct harness *h)
{
	fake_queue(h->http, 201, "{\"id\":317}", 0);
	assert_int_equal(h_run(h, &action_qasphere_ops, started, params)->outcome, WORK_OK);
	fake_reset(h->http);
	h->n_saves = 0;
}

static void test_run__started_creates_with_intent_first(void **state)
{
	struct harness h;
	struct target_outcome *o;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	fake_queue(h.http, 201, "{\"id\":317}", 0);
	o = h_run(&h, &action_qasphere_ops, started, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_string_equal(o->detail, "created run 317");
	assert_req(
		&h, 0, RUNS,
		"{\"title\":\"[Qase DEMO#42] Nightly <1>\",\"description\":\"Mirrored from "
		"Qase run DEMO#42\",\"type\":\"static_struct\",\"queryPlans\":[{\"folderIds\":[12]}]}");
	assert_int_equal(h.n_saves, 2);
	assert_string_equal(h.saves[0], "creating");
	assert_string_equal(h.saves[1], "open");
	assert_string_equal(h.a.map.remote_id, "317");
	fake_reset(h.http);
	o = h_run(&h, &action_qasphere_ops, started, params);
	assert_string_equal(o->detail, "run 317 already created");
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);
}

static void test_run__conflicting_title_adopts_the_run(void **state)
{
	struct harness h;
	struct target_outcome *o;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	/* a crash left the intent: the retry's create meets the run it made */
	h.a.map.state = strdup("creating");
	fake_queue(h.http, 403,
		   "{\"message\":\"Run with this title exists, conflicting run id: 317\"}", 0);
	o = h_run(&h, &action_qasphere_ops, started, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_int_equal(o->retry_after_ms, -1);
	assert_string_equal(o->detail, "adopted run 317 (its title exists)");
	assert_string_equal(h.a.map.remote_id, "317");
	assert_string_equal(h.a.map.state, "open");
	h_free(&h);
}

static void test_run__completed_logs_then_closes_once(void **state)
{
	struct harness h;
	struct target_outcome *o;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	open_run(&h);
	o = h_run(&h, &action_qasphere_ops, completed, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_string_equal(o->detail, "closed run 317 (completed in Qase)");
	assert_int_equal(h.http->n_reqs, 2);
	assert_req(&h, 0, RUNS "/317/log",
		   "{\"comment\":\"<p>Completed in Qase: 10 passed, 3 failed, 1 blocked of 14 "
		   "cases; duration 31.2 s<\\/p><p>Qase run DEMO#42: Nightly &lt;1&gt;<\\/p>\"}");
	assert_req(&h, 1, RUNS "/317/close", "");
	assert_string_equal(h.saves[0], "open"); /* logged_completed recorded */
	assert_string_equal(h.saves[1], "closed");
	assert_string_equal(h.a.map.state, "closed");
	fake_reset(h.http);
	o = h_run(&h, &action_qasphere_ops, completed, params);
	assert_string_equal(o->detail, "run 317 already closed");
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);
}

static void test_run__retry_after_failed_close_does_not_log_twice(void **state)
{
	struct harness h;
	struct target_outcome *o;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	open_run(&h);
	fake_queue(h.http, 200, "{\"id\":\"l1\"}", 0);
	fake_queue(h.http, 503, "{\"message\":\"down\"}", 2);
	o = h_run(&h, &action_qasphere_ops, completed, params);
	assert_int_equal(o->outcome, WORK_FAIL);
	assert_int_equal(o->retry_after_ms, 2000);
	assert_int_equal(h.http->n_reqs, 2);
	assert_string_equal(h.a.map.state, "open");
	assert_string_equal(h_data_str(&h, "logged_completed"), "true");
	fake_reset(h.http);
	o = h_run(&h, &action_qasphere_ops, completed, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_int_equal(h.http->n_reqs, 1);
	assert_req(&h, 0, RUNS "/317/close", "");
	h_free(&h);
}

static void test_run__aborted_logs_counts_and_closes(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_qasphere_ops,
			       EV("run.aborted",
				  "{\"counts\":{\"total\":14,\"passed\":0,\"failed\":0,"
				  "\"blocked\":0,\"skipped\":0,\"untested\":14},\"duration_ms\":0}"),
			       params)
				 ->outcome,
			 WORK_OK);
	assert_req(&h, 0, RUNS "/317/log",
		   "{\"comment\":\"<p>Aborted in Qase: 0 passed, 0 failed, 0 blocked, 0 skipped, "
		   "14 untested of 14 cases; duration 0.0 s<\\/p><p>Qase run DEMO#42<\\/p>\"}");
	assert_req(&h, 1, RUNS "/317/close", "");
	h_free(&h);
}

static void test_run__updated_logs_cases_added(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	open_run(&h);
	assert_int_equal(
		h_run(&h, &action_qasphere_ops, EV("run.updated", "{\"cases_added\":14}"), params)->outcome,
		WORK_OK);
	assert_req(&h, 0, RUNS "/317/log", "{\"comment\":\"<p>14 cases added in Qase<\\/p>\"}");
	assert_int_equal(h.http->n_reqs, 1);
	h_free(&h);
}

static void test_run__unseen_run_is_created_lazily(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	fake_queue(h.http, 201, "{\"id\":9}", 0);
	assert_int_equal(
		h_run(&h, &action_qasphere_ops, completed, "{\"title\":\"[Qase DEMO#42] \"}")->outcome,
		WORK_OK);
	assert_string_equal(h.out.detail, "created run 9; closed run 9 (completed in Qase)");
	assert_int_equal(h.http->n_reqs, 3);
	assert_req(&h, 0, RUNS,
		   "{\"title\":\"Qase DEMO#42\",\"type\":\"static_struct\","
		   "\"queryPlans\":[{\"folderIds\":[12]}]}");
	assert_req(&h, 2, RUNS "/9/close", "");
	h_free(&h);
}

static void test_run__deleted_logs_closes_and_tombstones(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_qasphere_ops, deleted, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "closed run 317 (deleted in Qase)");
	assert_req(&h, 0, RUNS "/317/log",
		   "{\"comment\":\"<p>Run deleted in Qase<\\/p><p>Qase run DEMO#42: Nightly "
		   "&lt;1&gt;<\\/p>\"}");
	assert_req(&h, 1, RUNS "/317/close", "");
	assert_string_equal(h.a.map.state, "deleted");
	fake_reset(h.http);
	assert_int_equal(h_run(&h, &action_qasphere_ops, completed, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "run deleted in Qase; ignored");
	assert_int_equal(h.http->n_reqs, 0);
	h_free(&h);
}

static void test_run__deleted_closed_run_only_tombstones(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	open_run(&h);
	assert_int_equal(h_run(&h, &action_qasphere_ops, completed, params)->outcome, WORK_OK);
	fake_reset(h.http);
	assert_int_equal(h_run(&h, &action_qasphere_ops, deleted, params)->outcome, WORK_OK);
	assert_string_equal(h.out.detail, "run 317 deleted in Qase");
	assert_int_equal(h.http->n_reqs, 0);
	assert_string_equal(h.a.map.state, "deleted");
	h_free(&h);
}

static void test_run__report_changed_and_results_call_nothing(void **state)
{
	struct harness h;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	assert_int_equal(h_run(&h, &action_qasphere_ops,
			       EV("run.report_changed", "{\"public\":true}"), params)
				 ->outcome,
			 WORK_OK);
	assert_string_equal(h.out.detail, "ignored: no equivalent");
	assert_int_equal(h_run(&h, &action_qasphere_ops, EV("result.created", "{}"), params)->outcome,
			 WORK_OK);
	assert_int_equal(h.http->n_reqs, 0);
	assert_null(h.a.map.state);
	h_free(&h);
}

static void test_run__permanent_errors_keep_the_key_out(void **state)
{
	struct harness h;
	struct target_outcome *o;
	(void)state;
	h_init(&h, "qasphere", "main", settings);
	fake_queue(h.http, 401, "{\"message\":\"bad key t1.ak2.secret\"}", 0);
	o = h_run(&h, &action_qasphere_ops, started, params);
	assert_int_equal(o->outcome, WORK_PERMANENT);
	assert_non_null(strstr(o->detail, "401"));
	assert_null(strstr(o->detail, "secret"));
	assert_string_equal(h.a.map.state, "creating");
	h_free(&h);
}

static void test_run__legacy_api_key_scheme(void **state)
{
	struct harness h;
	char s[1024];
	(void)state;
	snprintf(s, sizeof(s),
		 "{\"base_url\":\"http://127.0.0.1:%%d/api/public/v0/\","
		 "\"api_key\":\"k.k.k\",\"project\":\"QS\",\"query_plan\":{\"tagIds\":[1]},"
		 "\"auth_scheme\":\"ApiKey\"}");
	h_init(&h, "qasphere", "legacy", s);
	fake_queue(h.http, 201, "{\"id\":1}", 0);
	assert_int_equal(h_run(&h, &action_qasphere_ops, started, params)->outcome, WORK_OK);
	assert_string_equal(h.http->reqs[0].auth, "ApiKey k.k.k");
	assert_string_equal(h.http->reqs[0].target, "/api/public/v0/project/QS/run");
	h_free(&h);
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_run__rate_limit_waits_instead_of_failing(void **state)
{
	struct harness h;
	char s[1024];
	long long t0;
	(void)state;
	snprintf(s, sizeof(s),
		 "{\"base_url\":\"http://127.0.0.1:%%d\",\"api_key\":\"k.k.k\","
		 "\"project\":\"QS\",\"query_plan\":{\"tagIds\":[1]},\"rate_limit_per_s\":10}");
	h_init(&h, "qasphere", "limited", s);
	fake_queue(h.http, 201, "{\"id\":1}", 0);
	t0 = mono_ms();
	/* 1 create + 7 logs, paced about 102 ms apart */
	assert_int_equal(h_run(&h, &action_qasphere_ops, started, params)->outcome, WORK_OK);
	for (int i = 0; i < 7; i++)
		assert_int_equal(h_run(&h, &action_qasphere_ops,
				       EV("run.updated", "{\"cases_added\":1}"), params)
					 ->outcome,
				 WORK_OK);
	assert_int_equal(h.http->n_reqs, 8);
	assert_true(mono_ms() - t0 >= 7 * 100);
	h_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qasphere__conflicting_run_id_is_read_from_any_answer),
		cmocka_unit_test(test_qasphere__other_errors_are_not_conflicts),
		cmocka_unit_test(test_qasphere__html_is_escaped),
		cmocka_unit_test(test_qasphere__updated_comment_says_cases_added),
		cmocka_unit_test(
			test_qasphere__completed_comment_has_counts_duration_and_escaped_title),
		cmocka_unit_test(test_qasphere__aborted_comment_lists_skipped_and_untested),
		cmocka_unit_test(test_qasphere__deleted_comment),
		cmocka_unit_test(test_qasphere__create_body),
		cmocka_unit_test(test_qasphere__create_body_cuts_title_and_description),
		cmocka_unit_test(test_qasphere__utf8_prefix_counts_characters),
		cmocka_unit_test(test_qasphere__bucket_allows_a_burst_then_spaces_requests),
		cmocka_unit_test(
			test_qasphere__paced_bucket_keeps_every_sliding_second_under_the_limit),
		cmocka_unit_test(test_run__started_creates_with_intent_first),
		cmocka_unit_test(test_run__conflicting_title_adopts_the_run),
		cmocka_unit_test(test_run__completed_logs_then_closes_once),
		cmocka_unit_test(test_run__retry_after_failed_close_does_not_log_twice),
		cmocka_unit_test(test_run__aborted_logs_counts_and_closes),
		cmocka_unit_test(test_run__updated_logs_cases_added),
		cmocka_unit_test(test_run__unseen_run_is_created_lazily),
		cmocka_unit_test(test_run__deleted_logs_closes_and_tombstones),
		cmocka_unit_test(test_run__deleted_closed_run_only_tombstones),
		cmocka_unit_test(test_run__report_changed_and_results_call_nothing),
		cmocka_unit_test(test_run__permanent_errors_keep_the_key_out),
		cmocka_unit_test(test_run__legacy_api_key_scheme),
		cmocka_unit_test(test_run__rate_limit_waits_instead_of_failing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
