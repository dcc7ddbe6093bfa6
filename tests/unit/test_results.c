/*
 * results: the stored results of a run (store/results.h) keep each case's
 * latest result, join their case's title and suite path, and make the
 * event's summary (results/summary.h); Qase's times parse to Unix ms.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "results/fetch.h"
#include "results/summary.h"
#include "store/results.h"
#include "store/store.h"

struct fixture {
	char dir[32];
	struct store *st;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct err err;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rb-results-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(store_open(&f->st, f->dir, STORE_RW, &err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[96];

	store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void put(struct store *st, long long case_id, const char *status, const char *end)
{
	struct result_row r = { .case_id = case_id,
				.status = status,
				.end_time = end,
				.end_ms = fetch_parse_time(end),
				.duration_ms = 1500,
				.message = "boom",
				.hash = "h" };
	struct err err;
	assert_int_equal(store_result_put(st, "DEMO", 42, &r, &err), 0);
}

struct seen {
	long long ids[16];
	char status[16][16];
	char title[16][64];
	char suite[16][64];
	size_t n;
};

static int collect(void *ctx, const struct result_row *r)
{
	struct seen *s = ctx;
	s->ids[s->n] = r->case_id;
	snprintf(s->status[s->n], sizeof(s->status[0]), "%s", r->status);
	snprintf(s->title[s->n], sizeof(s->title[0]), "%s", r->title ? r->title : "(null)");
	snprintf(s->suite[s->n], sizeof(s->suite[0]), "%s", r->suite ? r->suite : "(null)");
	s->n++;
	return 0;
}

static void test_results__the_latest_result_of_a_case_wins(void **state)
{
	struct fixture *f = *state;
	struct seen s = { 0 };
	struct err err;
	size_t n;

	put(f->st, 7, "passed", "2026-11-20T11:00:00+00:00");
	put(f->st, 7, "failed", "2026-11-20T10:00:00+00:00"); /* older: ignored */
	put(f->st, 8, "failed", "2026-11-20T10:00:00+00:00");
	put(f->st, 8, "passed", "2026-11-20T12:00:00+01:00"); /* 11:00Z: newer */
	put(f->st, 9, "blocked", NULL);
	put(f->st, 9, "skipped", "2026-11-20T09:00:00Z"); /* a known time beats none */
	assert_int_equal(store_results_each(f->st, "DEMO", 42, 0, 0, collect, &s, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_string_equal(s.status[0], "passed");
	assert_string_equal(s.status[1], "passed");
	assert_string_equal(s.status[2], "skipped");
	assert_string_equal(s.title[0], "(null)"); /* no case stored yet */
}

static void test_results__cases_get_their_suite_path(void **state)
{
	struct fixture *f = *state;
	struct seen s = { 0 };
	struct err err;
	size_t n;

	put(f->st, 1, "failed", NULL);
	put(f->st, 2, "passed", NULL);
	assert_int_equal(store_case_put(f->st, "DEMO", 1, "Login", 30, NULL, &err), 0);
	assert_int_equal(store_case_put(f->st, "DEMO", 2, "Top", -1, NULL, &err), 0);
	assert_int_equal(store_suite_put(f->st, "DEMO", 10, "Web", -1, &err), 0);
	assert_int_equal(store_suite_put(f->st, "DEMO", 20, "Auth", 10, &err), 0);
	assert_int_equal(store_suite_put(f->st, "DEMO", 30, "Forms", 20, &err), 0);
	assert_int_equal(store_cases_set_paths(f->st, "DEMO", 42, &err), 0);
	assert_int_equal(store_results_each(f->st, "DEMO", 42, 0, 0, collect, &s, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(s.title[0], "Login");
	assert_string_equal(s.suite[0], "Web / Auth / Forms");
	assert_string_equal(s.suite[1], "(null)"); /* a case outside any suite */
	/* paging: after case 1, at most 1 */
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_results_each(f->st, "DEMO", 42, 1, 1, collect, &s, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s.ids[0], 2);
}

static void test_results__a_suite_cycle_ends(void **state)
{
	struct fixture *f = *state;
	struct seen s = { 0 };
	struct err err;
	size_t n;

	put(f->st, 1, "failed", NULL);
	assert_int_equal(store_case_put(f->st, "DEMO", 1, "Loop", 5, NULL, &err), 0);
	assert_int_equal(store_suite_put(f->st, "DEMO", 5, "A", 6, &err), 0);
	assert_int_equal(store_suite_put(f->st, "DEMO", 6, "B", 5, &err), 0);
	assert_int_equal(store_cases_set_paths(f->st, "DEMO", 42, &err), 0);
	assert_int_equal(store_results_each(f->st, "DEMO", 42, 0, 0, collect, &s, &n, &err), 0);
	assert_non_null(strstr(s.suite[0], "B / A"));
}

static void test_results__summary_counts_lists_and_caps(void **state)
{
	struct fixture *f = *state;
	json_object *o, *v;
	struct err err;

	put(f->st, 1, "failed", NULL);
	put(f->st, 2, "blocked", NULL);
	put(f->st, 3, "invalid", NULL);
	put(f->st, 4, "passed", NULL);
	put(f->st, 5, "flaky", NULL);
	assert_int_equal(results_summary(f->st, "DEMO", 42, "complete", 2, &o, &err), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "status")), "complete");
	assert_int_equal(json_object_get_int(json_object_object_get(o, "total")), 5);
	v = json_object_object_get(o, "counts");
	assert_int_equal(json_object_get_int(json_object_object_get(v, "failed")), 1);
	assert_int_equal(json_object_get_int(json_object_object_get(v, "flaky")), 1);
	assert_int_equal(json_object_get_int(json_object_object_get(v, "skipped")), 0);
	v = json_object_object_get(o, "failed");
	assert_int_equal(json_object_array_length(v), 2);
	assert_int_equal(json_object_get_int(json_object_object_get(json_object_array_get_idx(v, 1),
								    "case_id")),
			 2);
	assert_int_equal(json_object_get_int(json_object_object_get(o, "failed_more")), 1);
	json_object_put(o);
}

static void test_results__qase_times_parse(void **state)
{
	(void)state;
	assert_int_equal(fetch_parse_time("1970-01-01T00:00:01Z"), 1000);
	assert_int_equal(fetch_parse_time("1970-01-01 00:00:01"), 1000);
	assert_int_equal(fetch_parse_time("1970-01-01T01:00:00+01:00"), 0);
	assert_int_equal(fetch_parse_time("1970-01-01T00:00:00.25-0030"), 1800250);
	assert_int_equal(fetch_parse_time("2026-11-20T11:00:21+00:00"), 1795172421000LL);
	assert_int_equal(fetch_parse_time("2024-02-29 12:00:00"), 1709208000000LL);
	assert_int_equal(fetch_parse_time("2026-13-01 00:00:00"), -1);
	assert_int_equal(fetch_parse_time("yesterday"), -1);
	assert_int_equal(fetch_parse_time("2026-11-20T11:00:21 trailing"), -1);
	assert_int_equal(fetch_parse_time(NULL), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_results__the_latest_result_of_a_case_wins,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_results__cases_get_their_suite_path, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_results__a_suite_cycle_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_results__summary_counts_lists_and_caps, setup,
						teardown),
		cmocka_unit_test(test_results__qase_times_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
