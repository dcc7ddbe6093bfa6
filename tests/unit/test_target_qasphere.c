/* target_qasphere: the pure parts (target_util) that shape QA Sphere calls
 * (conflict parsing, HTML comments, create bodies and their limits, the
 * token bucket), then whole attempts against a fake server (create,
 * adoption of a conflicting run, log-then-close recorded step by step,
 * tombstones, the rate limit), then the results: case mapping by marker
 * and custom field, batches of at most 500, never a result twice across
 * failures, the unmapped cases, comment escaping, and the case_map check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <time.h>

#include "core/cfgtree.h"
#include "core/metrics.h"
#include "store/results.h"
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

/* ---- results ------------------------------------------------------------- */

/* The stored results an attempt reads (store_results_each's contract). */
struct rows {
	struct result_row *v;
	size_t n;
	int calls;
};

static int stub_results(struct target_attempt *a, long long after_case, size_t limit,
			int (*fn)(void *ctx, const struct result_row *r), void *fn_ctx,
			size_t *n_out, struct err *err)
{
	struct rows *rows = a->results_ctx;
	size_t n = 0;

	(void)err;
	rows->calls++;
	for (size_t i = 0; i < rows->n; i++) {
		if (rows->v[i].case_id <= after_case)
			continue;
		if (limit && n >= limit)
			break;
		n++;
		if (fn(fn_ctx, &rows->v[i]) < 0)
			break;
	}
	*n_out = n;
	return 0;
}

#define ROWS_MAX 1300

static struct result_row row_v[ROWS_MAX];
static char row_title[ROWS_MAX][64];
static struct rows rows;
static char listing[ROWS_MAX * 64];

/* Case ids 1000+i; titles "BD-<seq> Case i" with seq i+1 unless a test
 * changes them. */
static void rows_make(size_t n, const char *status)
{
	memset(row_v, 0, sizeof(row_v));
	for (size_t i = 0; i < n; i++) {
		snprintf(row_title[i], sizeof(row_title[i]), "BD-%03zu Case %zu", i + 1, i);
		row_v[i].case_id = 1000 + (long long)i;
		row_v[i].status = status;
		row_v[i].title = row_title[i];
		row_v[i].message = "";
		row_v[i].duration_ms = (long long)i;
		row_v[i].end_ms = -1;
	}
	rows = (struct rows){ row_v, n, 0 };
}

/* {"tcases": [{"id": "tc<seq>", "seq": <seq>, ...}]} for seqs 1..n. */
static const char *listing_of(size_t n)
{
	size_t o = (size_t)snprintf(listing, sizeof(listing), "{\"tcases\":[");
	for (size_t i = 1; i <= n; i++)
		o += (size_t)snprintf(listing + o, sizeof(listing) - o,
				      "%s{\"id\":\"tc%zu\",\"version\":1,\"seq\":%zu,"
				      "\"status\":\"open\"}",
				      i > 1 ? "," : "", i, i);
	snprintf(listing + o, sizeof(listing) - o, "]}");
	return listing;
}

static const char rsettings[] =
	"{\"base_url\":\"http://127.0.0.1:%d\",\"api_key\":\"t1.ak2.secret\",\"project\":\"BD\","
	"\"run_type\":\"static_struct\",\"query_plan\":{\"folderIds\":[12]},"
	"\"case_map\":\"marker\",\"invalid_status\":\"failed\",\"rate_limit_per_s\":0,"
	"\"timeout_s\":5}";

/* h_init with results read from rows (a run's tcase listing is a long
 * answer: the fake serves any size). */
static void r_init(struct harness *h, const char *settings_fmt)
{
	h_init(h, "qasphere", "main", settings_fmt);
	h->a.results = stub_results;
	h->a.results_ctx = &rows;
	h->a.project = "DEMO";
	h->a.run_id = 42;
}

static const char rcompleted[] =
	"{\"type\":\"run.completed\",\"project\":\"DEMO\",\"run_id\":42,\"run\":{\"title\":\"N\","
	"\"counts\":{\"total\":3,\"passed\":2,\"failed\":1}},\"results\":{\"status\":\"complete\","
	"\"total\":3,\"counts\":{},\"failed\":[]}}";

#define BDRUNS "/api/public/v0/project/BD/run"

/* The run already exists (made at run.started from the query plan). */
static void r_open(struct harness *h)
{
	h->a.map.remote_id = strdup("317");
	h->a.map.state = strdup("open");
}

/* Request i's body, parsed. */
static json_object *req_json(struct harness *h, size_t i)
{
	assert_true(i < h->http->n_reqs);
	json_object *o = json_tokener_parse(h->http->reqs[i].body);
	assert_non_null(o);
	return o;
}

static json_object *item(json_object *body, size_t i)
{
	json_object *items;
	assert_true(json_object_object_get_ex(body, "items", &items));
	assert_true(i < json_object_array_length(items));
	return json_object_array_get_idx(items, i);
}

static const char *istr(json_object *it, const char *key)
{
	json_object *v;
	assert_true(json_object_object_get_ex(it, key, &v));
	return json_object_get_string(v);
}

static size_t n_items(struct harness *h, size_t i)
{
	json_object *o = req_json(h, i), *items;
	assert_true(json_object_object_get_ex(o, "items", &items));
	size_t n = json_object_array_length(items);
	json_object_put(o);
	return n;
}

static void test_results__marker_maps_titles_and_statuses(void **state)
{
	struct harness h;
	json_object *b;
	(void)state;
	rows_make(6, "passed");
	snprintf(row_title[0], 64, "BD-023 Login works");
	snprintf(row_title[1], 64, "Logout bd-001");    /* at the end, any case */
	snprintf(row_title[2], 64, "Pay (BD-007) now"); /* anywhere */
	row_v[1].status = "invalid";
	row_v[2].status = "blocked";
	row_v[3].status = "untested"; /* never sent */
	row_v[4].status = "in_progress";
	row_v[5].status = "skipped";
	snprintf(row_title[5], 64, "XBD-002 inside a word");
	r_init(&h, rsettings);
	r_open(&h);
	fake_queue(h.http, 200, listing_of(30), 0);
	fake_queue(h.http, 200, "{\"ids\":[1,2,3]}", 0);
	assert_int_equal(h_run(&h, &action_qasphere_ops, rcompleted, params)->outcome, WORK_OK);
	assert_string_equal(h.http->reqs[0].method, "GET");
	assert_string_equal(h.http->reqs[0].target, BDRUNS "/317/tcase");
	assert_string_equal(h.http->reqs[1].target, BDRUNS "/317/result/batch");
	b = req_json(&h, 1);
	assert_int_equal(n_items(&h, 1), 3);
	assert_string_equal(istr(item(b, 0), "tcaseId"), "tc23");
	assert_string_equal(istr(item(b, 0), "status"), "passed");
	assert_int_equal(json_object_get_int(json_object_object_get(item(b, 0), "timeTaken")), 0);
	assert_string_equal(istr(item(b, 1), "tcaseId"), "tc1");
	assert_string_equal(istr(item(b, 1), "status"), "failed"); /* invalid */
	assert_string_equal(istr(item(b, 2), "tcaseId"), "tc7");
	assert_string_equal(istr(item(b, 2), "status"), "blocked");
	json_object_put(b);
	/* the skipped case has no marker of its own: listed, not sent */
	assert_string_equal(h.http->reqs[2].target, BDRUNS "/317/log");
	assert_non_null(strstr(h.http->reqs[2].body, "XBD-002 inside a word (no marker"));
	assert_string_equal(h.http->reqs[4].target, BDRUNS "/317/close");
	assert_non_null(strstr(h.out.detail, "3 results sent in 1 batches, 1 unmapped"));
	h_free(&h);
}

static const char fsettings[] =
	"{\"base_url\":\"http://127.0.0.1:%d\",\"api_key\":\"t1.ak2.secret\",\"project\":\"BD\","
	"\"query_plan\":{\"folderIds\":[12]},\"case_map\":{\"custom_field\":7},"
	"\"invalid_status\":\"custom2\",\"rate_limit_per_s\":0}";

static void test_results__custom_field_holds_a_sequence_or_an_id(void **state)
{
	struct harness h;
	json_object *b;
	(void)state;
	rows_make(5, "failed");
	row_v[0].case_fields = "{\"7\":\"23\",\"8\":\"1\"}";
	row_v[1].case_fields = "{\"7\":\"BD-002\"}";
	row_v[2].case_fields = "{\"7\":\" tc5 \"}"; /* the QA Sphere id */
	row_v[2].status = "invalid";
	row_v[3].case_fields = "{\"8\":\"3\"}"; /* not our field: the title's marker is ignored */
	row_v[4].case_fields = NULL;
	r_init(&h, fsettings);
	r_open(&h);
	fake_queue(h.http, 200, listing_of(30), 0);
	assert_int_equal(h_run(&h, &action_qasphere_ops, rcompleted, params)->outcome, WORK_OK);
	b = req_json(&h, 1);
	assert_int_equal(n_items(&h, 1), 3);
	assert_string_equal(istr(item(b, 0), "tcaseId"), "tc23");
	assert_string_equal(istr(item(b, 1), "tcaseId"), "tc2");
	assert_string_equal(istr(item(b, 2), "tcaseId"), "tc5");
	assert_string_equal(istr(item(b, 2), "status"), "custom2");
	json_object_put(b);
	assert_non_null(strstr(h.http->reqs[2].body, "2 Qase results not mirrored"));
	assert_non_null(strstr(h.http->reqs[2].body, "case_map: custom_field"));
	h_free(&h);
}

static void test_results__620_results_go_in_two_batches_of_at_most_500(void **state)
{
	struct harness h;
	json_object *b;
	(void)state;
	rows_make(620, "passed");
	r_init(&h, rsettings);
	r_open(&h);
	fake_queue(h.http, 200, listing_of(620), 0);
	assert_int_equal(h_run(&h, &action_qasphere_ops, rcompleted, params)->outcome, WORK_OK);
	assert_string_equal(h.http->reqs[1].target, BDRUNS "/317/result/batch");
	assert_string_equal(h.http->reqs[2].target, BDRUNS "/317/result/batch");
	assert_int_equal(n_items(&h, 1), 500);
	assert_int_equal(n_items(&h, 2), 120);
	b = req_json(&h, 2);
	assert_string_equal(istr(item(b, 0), "tcaseId"), "tc501");
	json_object_put(b);
	assert_string_equal(h.http->reqs[3].target, BDRUNS "/317/log"); /* the summary */
	assert_string_equal(h.http->reqs[4].target, BDRUNS "/317/close");
	assert_int_equal(h.http->n_reqs, 5);
	assert_non_null(strstr(h.out.detail, "620 results sent in 2 batches, 0 unmapped"));
	h_free(&h);
}

/* Every tcaseId sent, in order, over all requests so far. */
static size_t sent_ids(struct harness *h, char ids[][16], size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < h->http->n_reqs; i++) {
		if (!strstr(h->http->reqs[i].target, "/result/batch"))
			continue;
		json_object *b = req_json(h, i), *items;
		json_object_object_get_ex(b, "items", &items);
		for (size_t k = 0; k < json_object_array_length(items) && n < max; k++)
			snprintf(ids[n++], 16, "%s",
				 istr(json_object_array_get_idx(items, k), "tcaseId"));
		json_object_put(b);
	}
	return n;
}

static void assert_each_once(char ids[][16], size_t n, size_t want)
{
	assert_int_equal(n, want);
	for (size_t i = 0; i < n; i++) {
		char w[32];
		snprintf(w, sizeof(w), "tc%zu", i + 1);
		assert_string_equal(ids[i], w);
	}
}

static void test_results__failure_mid_batches_then_retry_never_resends(void **state)
{
	static char ids[2000][16];
	struct harness h;
	struct target_outcome *o;
	size_t n;
	(void)state;
	rows_make(1200, "passed");
	r_init(&h, rsettings);
	r_open(&h);
	fake_queue(h.http, 200, listing_of(1200), 0);
	fake_queue(h.http, 200, "{\"ids\":[]}", 0);
	fake_queue(h.http, 503, "{\"message\":\"down\"}", 1);
	o = h_run(&h, &action_qasphere_ops, rcompleted, params);
	assert_int_equal(o->outcome, WORK_FAIL);
	assert_int_equal(h.http->n_reqs, 3);
	assert_int_equal(json_object_get_int(json_object_object_get(h.a.map.data, "results_after")),
			 1499);
	/* the retry asks whether the failed batch landed (it did not), then
	 * sends it and the rest; the accepted one is never sent again */
	fake_queue(h.http, 200, "{\"id\":\"tc501\",\"results\":[]}", 0);
	fake_queue(h.http, 200, listing_of(1200), 0);
	o = h_run(&h, &action_qasphere_ops, rcompleted, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_string_equal(h.http->reqs[3].method, "GET");
	assert_string_equal(h.http->reqs[3].target, BDRUNS "/317/tcase/tc501");
	n = sent_ids(&h, ids, 2000);
	/* 500 accepted + 500 refused + 500 again + 200 */
	assert_int_equal(n, 1700);
	memmove(ids[500], ids[1000], 700 * sizeof(ids[0]));
	assert_each_once(ids, 1200, 1200);
	assert_non_null(strstr(o->detail, "1200 results sent in 3 batches"));
	h_free(&h);
}

/* What the store holds: the mapping's data as of the last commit. */
static json_object *stored;

static int snapshot_save(struct target_attempt *a, struct err *err)
{
	if (h_save(a, err) < 0)
		return -1;
	json_object_put(stored);
	stored = NULL;
	assert_int_equal(json_object_deep_copy(a->map.data, &stored, NULL), 0);
	return 0;
}

/* The next attempt loads what the store holds, as target_run does. */
static void reload(struct harness *h)
{
	json_object_put(h->a.map.data);
	h->a.map.data = NULL;
	assert_int_equal(json_object_deep_copy(stored, &h->a.map.data, NULL), 0);
}

static void test_results__accepted_batch_whose_commit_failed_is_not_resent(void **state)
{
	static char ids[2000][16];
	struct harness h;
	struct target_outcome *o;
	(void)state;
	rows_make(700, "failed");
	r_init(&h, rsettings);
	r_open(&h);
	/* saves: 1 intent of batch 1, 2 its acceptance (refused: "a crash") */
	h.fail_save_at = 2;
	h.a.save = snapshot_save;
	fake_queue(h.http, 200, listing_of(700), 0);
	fake_queue(h.http, 200, "{\"ids\":[]}", 0);
	o = h_run(&h, &action_qasphere_ops, rcompleted, params);
	assert_int_equal(o->outcome, WORK_FAIL);
	assert_int_equal(h.http->n_reqs, 2);
	reload(&h);
	/* the store kept the intent only: the cursor did not move */
	assert_int_equal(json_object_get_int(json_object_object_get(h.a.map.data, "results_after")),
			 0);
	assert_true(json_object_object_get_ex(h.a.map.data, "results_pending", NULL));
	fake_queue(h.http, 200,
		   "{\"id\":\"tc1\",\"results\":[{\"id\":9,\"status\":\"failed\","
		   "\"apiKeyId\":\"ak2\",\"internal\":false}]}",
		   0);
	fake_queue(h.http, 200, listing_of(700), 0);
	o = h_run(&h, &action_qasphere_ops, rcompleted, params);
	assert_int_equal(o->outcome, WORK_OK);
	assert_string_equal(h.http->reqs[2].target, BDRUNS "/317/tcase/tc1");
	assert_each_once(ids, sent_ids(&h, ids, 2000), 700);
	assert_non_null(strstr(o->detail, "an unrecorded batch had landed"));
	json_object_put(stored);
	stored = NULL;
	h_free(&h);
}

static unsigned long long unmapped_metric(void)
{
	struct metrics_gauges g = { 0 };
	char *page = metrics_render(&g), *p;
	unsigned long long n = 0;
	assert_non_null(page);
	p = strstr(page, "runbridge_qasphere_unmapped_total{target=\"main\"} ");
	if (p)
		n = strtoull(p + strlen("runbridge_qasphere_unmapped_total{target=\"main\"} "),
			     NULL, 10);
	free(page);
	return n;
}

static void test_results__unmapped_cases_are_counted_and_logged_once(void **state)
{
	struct harness h;
	unsigned long long before = unmapped_metric();
	(void)state;
	rows_make(4, "failed");
	snprintf(row_title[1], 64, "No marker <here>");
	snprintf(row_title[2], 64, "BD-099 not in the run");
	r_init(&h, rsettings);
	r_open(&h);
	fake_queue(h.http, 200, listing_of(10), 0);
	fake_queue(h.http, 200, "{\"ids\":[1,2]}", 0);
	fake_queue(h.http, 200, "{\"id\":\"log1\"}", 0);
	fake_queue(h.http, 200, "{\"id\":\"log2\"}", 0);
	fake_queue(h.http, 503, "{\"message\":\"down\"}", 0);
	assert_int_equal(h_run(&h, &action_qasphere_ops, rcompleted, params)->outcome, WORK_FAIL);
	assert_string_equal(h.http->reqs[2].target, BDRUNS "/317/log");
	json_object *log = req_json(&h, 2);
	assert_string_equal(istr(log, "comment"),
			    "<p>2 Qase results not mirrored: no QA Sphere test case of this run "
			    "(case_map: marker)</p><ul><li>Qase case 1001: No marker &lt;here&gt; "
			    "(no marker in its title)</li><li>Qase case 1002: BD-099 not in the "
			    "run (BD-099 is not in the run)</li></ul>");
	json_object_put(log);
	assert_int_equal(unmapped_metric() - before, 2);
	/* the retry only closes: no result, no log again, no second count */
	fake_reset(h.http);
	assert_int_equal(h_run(&h, &action_qasphere_ops, rcompleted, params)->outcome, WORK_OK);
	assert_int_equal(h.http->n_reqs, 1);
	assert_string_equal(h.http->reqs[0].target, BDRUNS "/317/close");
	assert_int_equal(unmapped_metric() - before, 2);
	h_free(&h);
}

static void test_results__comment_escapes_message_and_stack_trace(void **state)
{
	struct harness h;
	json_object *b, *v;
	(void)state;
	rows_make(2, "failed");
	row_v[0].message = "Expected <200> & \"OK\"\r\ngot 500";
	row_v[0].stacktrace = "at login (<anonymous>:1)\n  at 'main'";
	row_v[0].duration_ms = 1532;
	row_v[1].duration_ms = -1;
	row_v[1].message = NULL;
	r_init(&h, rsettings);
	r_open(&h);
	fake_queue(h.http, 200, listing_of(2), 0);
	assert_int_equal(h_run(&h, &action_qasphere_ops, rcompleted, params)->outcome, WORK_OK);
	b = req_json(&h, 1);
	assert_string_equal(istr(item(b, 0), "comment"),
			    "<p>Qase DEMO#42, case 1000: failed</p><p>Expected &lt;200&gt; &amp; "
			    "&quot;OK&quot;<br>got 500</p><pre>at login (&lt;anonymous&gt;:1)\n"
			    "  at &#39;main&#39;</pre>");
	assert_int_equal(json_object_get_int(json_object_object_get(item(b, 0), "timeTaken")), 1532);
	assert_string_equal(istr(item(b, 1), "comment"), "<p>Qase DEMO#42, case 1001: failed</p>");
	assert_true(json_object_object_get_ex(item(b, 1), "timeTaken", &v));
	assert_null(v);
	json_object_put(b);
	h_free(&h);
}

static void test_results__a_run_created_with_results_holds_the_mapped_cases(void **state)
{
	struct harness h;
	json_object *b;
	(void)state;
	rows_make(3, "passed");
	snprintf(row_title[1], 64, "unmapped");
	r_init(&h, rsettings);
	fake_queue(h.http, 200,
		   "{\"data\":[{\"id\":\"tc1\",\"seq\":1},{\"id\":\"tc3\",\"seq\":3}],\"total\":2,"
		   "\"page\":1,\"limit\":100}",
		   0);
	fake_queue(h.http, 201, "{\"id\":9}", 0);
	fake_queue(h.http, 200, listing_of(3), 0);
	assert_int_equal(h_run(&h, &action_qasphere_ops, rcompleted, params)->outcome, WORK_OK);
	assert_string_equal(h.http->reqs[0].target, "/api/public/v0/project/BD/tcase/seq");
	assert_string_equal(h.http->reqs[0].body,
			    "{\"seqIds\":[\"BD-001\",\"BD-003\"],\"page\":1,\"limit\":100}");
	assert_string_equal(h.http->reqs[1].target, BDRUNS);
	b = req_json(&h, 1);
	assert_string_equal(json_object_to_json_string_ext(json_object_object_get(b, "queryPlans"),
							   JSON_C_TO_STRING_PLAIN),
			    "[{\"tcaseIds\":[\"tc1\",\"tc3\"]}]");
	json_object_put(b);
	assert_string_equal(h.saves[0], "creating");
	assert_string_equal(h.http->reqs[2].target, BDRUNS "/9/tcase");
	assert_int_equal(n_items(&h, 3), 2);
	h_free(&h);
}

static void test_results__null_results_change_nothing(void **state)
{
	struct harness h;
	(void)state;
	rows_make(3, "passed");
	r_init(&h, rsettings);
	fake_queue(h.http, 201, "{\"id\":9}", 0);
	assert_int_equal(h_run(&h, &action_qasphere_ops,
			       "{\"type\":\"run.completed\",\"project\":\"DEMO\",\"run_id\":42,"
			       "\"run\":{},\"results\":null}",
			       params)
				 ->outcome,
			 WORK_OK);
	assert_int_equal(rows.calls, 0);
	assert_int_equal(h.http->n_reqs, 3);
	assert_string_equal(h.http->reqs[0].body,
			    "{\"title\":\"[Qase DEMO#42] Nightly <1>\",\"description\":\"Mirrored "
			    "from Qase run DEMO#42\",\"type\":\"static_struct\",\"queryPlans\":"
			    "[{\"folderIds\":[12]}]}");
	assert_string_equal(h.http->reqs[1].target, BDRUNS "/9/log");
	assert_string_equal(h.http->reqs[2].target, BDRUNS "/9/close");
	h_free(&h);
}

static int check_map(const char *case_map)
{
	struct target_cfg t = { .kind = RB_UNCONST("qasphere"), .name = RB_UNCONST("main") };
	struct cfg_node at = { .type = CFG_SCALAR, .file = "r.yaml", .line = 3, .col = 5 };
	struct errlist errs = ERRLIST_INIT;
	char s[256];
	int rc;

	snprintf(s, sizeof(s), "{\"case_map\":%s}", case_map);
	t.settings = json_tokener_parse(s);
	rc = action_qasphere_ops.check(&t, &at, &errs);
	if (rc < 0) {
		assert_int_equal(errs.n, 1);
		assert_string_equal(errs.msgs[0],
				    "r.yaml:3:5: targets.qasphere.main.case_map: expected marker "
				    "or { custom_field: <Qase custom field id> }");
	}
	errlist_free(&errs);
	json_object_put(t.settings);
	return rc;
}

static void test_results__case_map_takes_marker_or_a_custom_field(void **state)
{
	(void)state;
	assert_int_equal(check_map("\"marker\""), 0);
	assert_int_equal(check_map("{\"custom_field\":7}"), 0);
	assert_int_equal(check_map("{\"custom_field\":\"7\"}"), 0);
	assert_int_equal(check_map("\"title\""), -1);
	assert_int_equal(check_map("{\"custom_field\":\"x\"}"), -1);
	assert_int_equal(check_map("{\"custom_field\":0}"), -1);
	assert_int_equal(check_map("{\"custom_field\":7,\"marker\":1}"), -1);
	assert_int_equal(check_map("{}"), -1);
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
		cmocka_unit_test(test_results__marker_maps_titles_and_statuses),
		cmocka_unit_test(test_results__custom_field_holds_a_sequence_or_an_id),
		cmocka_unit_test(test_results__620_results_go_in_two_batches_of_at_most_500),
		cmocka_unit_test(test_results__failure_mid_batches_then_retry_never_resends),
		cmocka_unit_test(test_results__accepted_batch_whose_commit_failed_is_not_resent),
		cmocka_unit_test(test_results__unmapped_cases_are_counted_and_logged_once),
		cmocka_unit_test(test_results__comment_escapes_message_and_stack_trace),
		cmocka_unit_test(test_results__a_run_created_with_results_holds_the_mapped_cases),
		cmocka_unit_test(test_results__null_results_change_nothing),
		cmocka_unit_test(test_results__case_map_takes_marker_or_a_custom_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
