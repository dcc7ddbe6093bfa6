/*
 * event: what event_parse refuses (and says), and exactly what
 * event_normalize builds from each documented Qase delivery, including the
 * places where Qase's documentation contradicts itself (target-apis §1.5).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "event/event.h"

#define MAX_DEPTH 32
/* 2022-04-21T11:23:14.123Z */
#define RECEIVED_MS 1650540194123LL

static struct source_cfg qase_ms = {
	.name = "qase", .kind = "qase", .path = "/webhooks/qase", .duration_unit = DURATION_MS
};
static struct source_cfg qase_s = {
	.name = "qase", .kind = "qase", .path = "/webhooks/qase", .duration_unit = DURATION_S
};

static char *read_fixture(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf = malloc(65536);

	snprintf(path, sizeof(path), "%s/%s", RB_FIXTURES, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_non_null(buf);
	*len = fread(buf, 1, 65535, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static json_object *parse_ok(const char *body)
{
	json_object *d = NULL;
	struct err err = { 0 };

	if (event_parse(&d, body, strlen(body), MAX_DEPTH, &err) < 0)
		fail_msg("event_parse refused %s: %s", body, err.msg);
	return d;
}

static void expect_400(const char *body, size_t len, const char *msg)
{
	json_object *d = (json_object *)1;
	struct err err = { 0 };

	assert_int_equal(event_parse(&d, body, len, MAX_DEPTH, &err), -1);
	assert_null(d);
	assert_int_equal(err.code, ERR_INVALID);
	assert_string_equal(err.msg, msg);
}

#define REJECT(body, msg) expect_400(body, sizeof(body) - 1, msg)

/* Normalizes body against prior (a JSON text or NULL). */
static json_object *normalize(const char *body, const struct source_cfg *src, const char *prior_json)
{
	json_object *d = parse_ok(body), *prior = NULL, *ev = NULL;
	struct err err = { 0 };
	char id[65];

	if (prior_json)
		assert_non_null(prior = json_tokener_parse(prior_json));
	event_delivery_id(id, src->name, body, strlen(body));
	assert_int_equal(event_normalize(&ev, d, src, id, RECEIVED_MS, prior, &err), 0);
	json_object_put(prior);
	json_object_put(d);
	return ev;
}

static const char *plain(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							 JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* ev's "run" object must serialize (keys in order) to want. */
static void assert_run(json_object *ev, const char *want)
{
	json_object *run = NULL;

	assert_true(json_object_object_get_ex(ev, "run", &run));
	assert_string_equal(plain(run), want);
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

/*
 * A fixture normalizes to exactly head + "raw" (the delivery as parsed):
 * every top-level value, the key order, and nothing more.
 */
static void check_fixture(const char *file, const char *prior, const char *head)
{
	size_t len;
	char *body = read_fixture(file, &len), want[4096], id[65];
	json_object *d = parse_ok(body), *pr = NULL, *ev = NULL;
	struct err err = { 0 };

	if (prior)
		pr = json_tokener_parse(prior);
	event_delivery_id(id, "qase", body, len);
	assert_int_equal(event_normalize(&ev, d, &qase_ms, id, RECEIVED_MS, pr, &err), 0);
	snprintf(want, sizeof(want),
		 "{\"schema\":\"runbridge.event.v1\",\"id\":\"%s\",%s,\"results\":null,\"raw\":%s}",
		 id, head, plain(d));
	assert_string_equal(plain(ev), want);
	assert_ptr_equal(get(ev, "raw"), d); /* shared, not copied */
	json_object_put(ev);
	json_object_put(pr);
	json_object_put(d);
	free(body);
}

#define COUNTS_NULL                                                   \
	"\"counts\":{\"total\":null,\"passed\":null,\"failed\":null," \
	"\"blocked\":null,\"skipped\":null,\"untested\":null}"
#define RUN_EMPTY                                                         \
	"{\"title\":null,\"description\":null,\"plan\":null,"             \
	"\"environment\":null,\"cases_count\":null,\"cases_added\":null," \
	"\"public\":null," COUNTS_NULL ",\"duration_ms\":null}"

/* ---- fixtures ---------------------------------------------------------- */

static void test_event__started_fixture_normalizes(void **state)
{
	(void)state;
	check_fixture("run.started.json", NULL,
		      "\"source\":\"qase\",\"type\":\"run.started\",\"entity\":\"run\",\"entity_id\":1,"
		      "\"project\":\"ID\","
		      "\"run_id\":1,\"occurred_at\":\"2022-04-21T11:21:09Z\","
		      "\"received_at\":\"2022-04-21T11:23:14.123Z\",\"actor_id\":40,"
		      "\"run\":{\"title\":\"Test run 2022/04/21\",\"description\":null,"
		      "\"plan\":{\"id\":3,\"title\":\"d\"},\"environment\":null,"
		      "\"cases_count\":14,\"cases_added\":null,\"public\":null," COUNTS_NULL
		      ",\"duration_ms\":null}");
}

static void test_event__completed_fixture_normalizes(void **state)
{
	(void)state;
	check_fixture("run.completed.json", NULL,
		      "\"source\":\"qase\",\"type\":\"run.completed\",\"entity\":\"run\",\"entity_id\":2,"
		      "\"project\":\"ID\","
		      "\"run_id\":2,\"occurred_at\":\"2022-04-21T11:23:14Z\","
		      "\"received_at\":\"2022-04-21T11:23:14.123Z\",\"actor_id\":40,"
		      "\"run\":{\"title\":null,\"description\":null,\"plan\":null,"
		      "\"environment\":null,\"cases_count\":14,\"cases_added\":null,"
		      "\"public\":null,\"counts\":{\"total\":14,\"passed\":0,\"failed\":0,"
		      "\"blocked\":0,\"skipped\":null,\"untested\":null},\"duration_ms\":0}");
}

static void test_event__aborted_fixture_normalizes(void **state)
{
	(void)state;
	check_fixture("run.aborted.json", NULL,
		      "\"source\":\"qase\",\"type\":\"run.aborted\",\"entity\":\"run\",\"entity_id\":1,"
		      "\"project\":\"ID\","
		      "\"run_id\":1,\"occurred_at\":\"2022-04-21T11:22:28Z\","
		      "\"received_at\":\"2022-04-21T11:23:14.123Z\",\"actor_id\":40,"
		      "\"run\":{\"title\":null,\"description\":null,\"plan\":null,"
		      "\"environment\":null,\"cases_count\":14,\"cases_added\":null,"
		      "\"public\":null,\"counts\":{\"total\":14,\"passed\":0,\"failed\":0,"
		      "\"blocked\":0,\"skipped\":0,\"untested\":14},\"duration_ms\":0}");
}

static void test_event__deleted_fixture_normalizes(void **state)
{
	(void)state;
	check_fixture("run.deleted.json", NULL,
		      "\"source\":\"qase\",\"type\":\"run.deleted\",\"entity\":\"run\",\"entity_id\":1,"
		      "\"project\":\"ID\","
		      "\"run_id\":1,\"occurred_at\":\"2022-04-21T11:24:49Z\","
		      "\"received_at\":\"2022-04-21T11:23:14.123Z\",\"actor_id\":40,"
		      "\"run\":" RUN_EMPTY);
}

static void test_event__report_changed_fixture_normalizes(void **state)
{
	(void)state;
	check_fixture("run.report_changed.json", NULL,
		      "\"source\":\"qase\",\"type\":\"run.report_changed\",\"entity\":\"run\",\"entity_id\":2,"
		      "\"project\":\"ID\","
		      "\"run_id\":2,\"occurred_at\":\"2022-04-21T11:23:42Z\","
		      "\"received_at\":\"2022-04-21T11:23:14.123Z\",\"actor_id\":40,"
		      "\"run\":{\"title\":null,\"description\":null,\"plan\":null,"
		      "\"environment\":null,\"cases_count\":null,\"cases_added\":null,"
		      "\"public\":true," COUNTS_NULL ",\"duration_ms\":null}");
}

static void test_event__updated_fixture_normalizes(void **state)
{
	(void)state;
	check_fixture("run.updated.json", NULL,
		      "\"source\":\"qase\",\"type\":\"run.updated\",\"entity\":\"run\",\"entity_id\":1,"
		      "\"project\":\"ID\","
		      "\"run_id\":1,\"occurred_at\":\"2022-04-21T11:21:54Z\","
		      "\"received_at\":\"2022-04-21T11:23:14.123Z\",\"actor_id\":40,"
		      "\"run\":{\"title\":null,\"description\":null,\"plan\":null,"
		      "\"environment\":null,\"cases_count\":null,\"cases_added\":14,"
		      "\"public\":null," COUNTS_NULL ",\"duration_ms\":null}");
}

static void test_event__fixtures_enrich_through_a_run_lifecycle(void **state)
{
	size_t len;
	char *started = read_fixture("run.started.json", &len);
	char *updated = read_fixture("run.updated.json", &len);
	char *aborted = read_fixture("run.aborted.json", &len);
	json_object *ev;
	char prior[2048];

	(void)state;
	ev = normalize(started, &qase_ms, NULL);
	snprintf(prior, sizeof(prior), "%s", plain(get(ev, "run")));
	json_object_put(ev);
	ev = normalize(updated, &qase_ms, prior);
	assert_run(ev, "{\"title\":\"Test run 2022/04/21\",\"description\":null,"
		       "\"plan\":{\"id\":3,\"title\":\"d\"},\"environment\":null,"
		       "\"cases_count\":28,\"cases_added\":14,\"public\":null," COUNTS_NULL
		       ",\"duration_ms\":null}");
	snprintf(prior, sizeof(prior), "%s", plain(get(ev, "run")));
	json_object_put(ev);
	/* run.aborted reports its total as `cases`, like run.completed */
	ev = normalize(aborted, &qase_ms, prior);
	assert_run(ev, "{\"title\":\"Test run 2022/04/21\",\"description\":null,"
		       "\"plan\":{\"id\":3,\"title\":\"d\"},\"environment\":null,"
		       "\"cases_count\":14,\"cases_added\":null,\"public\":null,"
		       "\"counts\":{\"total\":14,\"passed\":0,\"failed\":0,\"blocked\":0,"
		       "\"skipped\":0,\"untested\":14},\"duration_ms\":0}");
	json_object_put(ev);
	free(started);
	free(updated);
	free(aborted);
}

/* ---- Qase's inconsistencies (target-apis §1.5) ------------------------- */

static void test_event__legacy_event_field_names_the_type(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event\":\"run.deleted\",\"payload\":{\"id\":7}}", &qase_ms, NULL);
	assert_string_equal(json_object_get_string(get(ev, "type")), "run.deleted");
	json_object_put(ev);
}

static void test_event__event_name_wins_over_legacy_event(void **state)
{
	json_object *d;

	(void)state;
	d = parse_ok("{\"event_name\":\"run.started\",\"event\":\"x\",\"payload\":{\"id\":1}}");
	assert_string_equal(event_name_of(d), "run.started");
	json_object_put(d);
}

static void test_event__aborted_reads_skiped_typo(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.aborted\",\"payload\":{\"id\":1,"
		       "\"cases\":5,\"skiped\":3}}",
		       &qase_ms, NULL);
	assert_int_equal(json_object_get_int64(get(get(get(ev, "run"), "counts"), "skipped")), 3);
	json_object_put(ev);
}

static void test_event__skipped_wins_over_skiped(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.aborted\",\"payload\":{\"id\":1,"
		       "\"skipped\":2,\"skiped\":3}}",
		       &qase_ms, NULL);
	assert_int_equal(json_object_get_int64(get(get(get(ev, "run"), "counts"), "skipped")), 2);
	json_object_put(ev);
}

static void test_event__updated_cases_added_is_a_delta_on_prior_count(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.updated\",\"payload\":{\"id\":1,\"cases_added\":4}}",
		       &qase_ms, "{\"cases_count\":10}");
	assert_int_equal(json_object_get_int64(get(get(ev, "run"), "cases_count")), 14);
	assert_int_equal(json_object_get_int64(get(get(ev, "run"), "cases_added")), 4);
	json_object_put(ev);
}

static void test_event__updated_cases_count_is_a_total_and_wins(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.updated\",\"payload\":{\"id\":1,"
		       "\"cases_count\":20,\"cases_added\":4}}",
		       &qase_ms, "{\"cases_count\":10}");
	assert_int_equal(json_object_get_int64(get(get(ev, "run"), "cases_count")), 20);
	json_object_put(ev);
	ev = normalize("{\"event_name\":\"run.updated\",\"payload\":{\"id\":1,\"cases_count\":20}}",
		       &qase_ms, "{\"cases_count\":10}");
	assert_int_equal(json_object_get_int64(get(get(ev, "run"), "cases_count")), 20);
	assert_null(get(get(ev, "run"), "cases_added"));
	json_object_put(ev);
}

static void test_event__updated_without_prior_count_leaves_total_null(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.updated\",\"payload\":{\"id\":1,\"cases_added\":4}}",
		       &qase_ms, "{\"title\":\"t\",\"cases_count\":null}");
	assert_null(get(get(ev, "run"), "cases_count"));
	json_object_put(ev);
}

static void test_event__nullable_plan_description_environment_stay_null(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,\"title\":\"t\","
		       "\"description\":null,\"plan\":null,\"environment\":null}}",
		       &qase_ms, NULL);
	assert_run(ev, "{\"title\":\"t\",\"description\":null,\"plan\":null,"
		       "\"environment\":null,\"cases_count\":null,\"cases_added\":null,"
		       "\"public\":null," COUNTS_NULL ",\"duration_ms\":null}");
	json_object_put(ev);
}

static void test_event__present_plan_description_environment_are_kept(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,\"title\":\"t\","
		       "\"description\":\"nightly\",\"plan\":{\"id\":9,\"title\":\"p\",\"x\":1},"
		       "\"environment\":\"staging\"}}",
		       &qase_ms, NULL);
	assert_run(ev, "{\"title\":\"t\",\"description\":\"nightly\","
		       "\"plan\":{\"id\":9,\"title\":\"p\"},\"environment\":\"staging\","
		       "\"cases_count\":null,\"cases_added\":null,\"public\":null," COUNTS_NULL
		       ",\"duration_ms\":null}");
	json_object_put(ev);
}

static void test_event__completed_has_no_skipped_or_untested(void **state)
{
	json_object *ev;
	size_t len;
	char *body = read_fixture("run.completed.json", &len);

	(void)state;
	ev = normalize(body, &qase_ms, NULL);
	assert_null(get(get(get(ev, "run"), "counts"), "skipped"));
	assert_null(get(get(get(ev, "run"), "counts"), "untested"));
	json_object_put(ev);
	free(body);
}

static void test_event__missing_counts_are_null_not_zero(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.completed\",\"payload\":{\"id\":1,\"passed\":3}}",
		       &qase_ms, NULL);
	assert_string_equal(plain(get(get(ev, "run"), "counts")),
			    "{\"total\":null,\"passed\":3,\"failed\":null,"
			    "\"blocked\":null,\"skipped\":null,\"untested\":null}");
	assert_null(get(get(ev, "run"), "cases_count"));
	json_object_put(ev);
}

static void test_event__duration_in_seconds_is_scaled_to_ms(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.completed\",\"payload\":{\"id\":1,\"duration\":42}}",
		       &qase_s, NULL);
	assert_int_equal(json_object_get_int64(get(get(ev, "run"), "duration_ms")), 42000);
	json_object_put(ev);
}

static void test_event__duration_in_ms_is_kept(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.completed\",\"payload\":{\"id\":1,\"duration\":42}}",
		       &qase_ms, NULL);
	assert_int_equal(json_object_get_int64(get(get(ev, "run"), "duration_ms")), 42);
	json_object_put(ev);
}

static void test_event__fractional_duration_rounds_to_ms(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.aborted\",\"payload\":{\"id\":1,\"duration\":1.5}}",
		       &qase_s, NULL);
	assert_int_equal(json_object_get_int64(get(get(ev, "run"), "duration_ms")), 1500);
	json_object_put(ev);
}

static void test_event__overflowing_duration_is_null(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.aborted\",\"payload\":{\"id\":1,"
		       "\"duration\":9223372036854775807}}",
		       &qase_s, NULL);
	assert_null(get(get(ev, "run"), "duration_ms"));
	json_object_put(ev);
}

static void test_event__report_changed_false_is_not_public(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize(
		"{\"event_name\":\"run.report_changed\",\"payload\":{\"id\":2,\"visible\":false}}",
		&qase_ms, "{\"public\":true}");
	assert_true(json_object_is_type(get(get(ev, "run"), "public"), json_type_boolean));
	assert_false(json_object_get_boolean(get(get(ev, "run"), "public")));
	json_object_put(ev);
}

/* ---- enrichment -------------------------------------------------------- */

#define STARTED_RUN                                                        \
	"{\"title\":\"Nightly\",\"description\":\"all\","                  \
	"\"plan\":{\"id\":3,\"title\":\"d\"},\"environment\":\"staging\"," \
	"\"cases_count\":14,\"cases_added\":null,\"public\":false,"        \
	"\"counts\":{\"total\":1,\"passed\":1,\"failed\":0,\"blocked\":0," \
	"\"skipped\":0,\"untested\":0},\"duration_ms\":99}"

static void test_event__completed_enriched_from_started(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.completed\",\"payload\":{\"id\":1,"
		       "\"passed\":2,\"failed\":1,\"blocked\":0}}",
		       &qase_ms, STARTED_RUN);
	assert_run(ev, "{\"title\":\"Nightly\",\"description\":\"all\","
		       "\"plan\":{\"id\":3,\"title\":\"d\"},\"environment\":\"staging\","
		       "\"cases_count\":14,\"cases_added\":null,\"public\":false,"
		       "\"counts\":{\"total\":null,\"passed\":2,\"failed\":1,\"blocked\":0,"
		       "\"skipped\":null,\"untested\":null},\"duration_ms\":null}");
	json_object_put(ev);
}

static void test_event__completed_cases_is_the_total_over_prior(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.completed\",\"payload\":{\"id\":1,\"cases\":15}}",
		       &qase_ms, STARTED_RUN);
	assert_int_equal(json_object_get_int64(get(get(ev, "run"), "cases_count")), 15);
	json_object_put(ev);
}

static void test_event__own_values_win_over_prior(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,\"title\":\"Re-run\","
		       "\"plan\":{\"id\":4,\"title\":\"e\"},\"environment\":\"prod\","
		       "\"cases_count\":3}}",
		       &qase_ms, STARTED_RUN);
	assert_run(ev, "{\"title\":\"Re-run\",\"description\":\"all\","
		       "\"plan\":{\"id\":4,\"title\":\"e\"},\"environment\":\"prod\","
		       "\"cases_count\":3,\"cases_added\":null,\"public\":false," COUNTS_NULL
		       ",\"duration_ms\":null}");
	json_object_put(ev);
}

static void test_event__counts_and_duration_are_never_carried_over(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.deleted\",\"payload\":{\"id\":1}}", &qase_ms,
		       STARTED_RUN);
	assert_string_equal(plain(get(get(ev, "run"), "counts")),
			    "{\"total\":null,\"passed\":null,\"failed\":null,"
			    "\"blocked\":null,\"skipped\":null,\"untested\":null}");
	assert_null(get(get(ev, "run"), "duration_ms"));
	assert_null(get(get(ev, "run"), "cases_added"));
	json_object_put(ev);
}

/* ---- other families (target-apis §1.6) ---------------------------------- */

static struct source_cfg qase_legacy = { .name = "qase",
					 .kind = "qase",
					 .path = "/webhooks/qase",
					 .duration_unit = DURATION_MS,
					 .project = "LEGACY" };

/* A fixture of another family: entity, entity_id (JSON text), no run. */
static void check_family(const char *file, const char *type, const char *entity, const char *entity_id)
{
	size_t len;
	char *body = read_fixture(file, &len);
	json_object *ev = normalize(body, &qase_ms, "{\"title\":\"not this run\"}");

	assert_string_equal(json_object_get_string(get(ev, "type")), type);
	assert_string_equal(json_object_get_string(get(ev, "entity")), entity);
	assert_string_equal(plain(get(ev, "entity_id")), entity_id);
	assert_string_equal(json_object_get_string(get(ev, "project")), "ID");
	assert_null(get(ev, "run_id"));
	assert_null(get(ev, "run"));
	assert_false(json_object_object_get_ex(ev, "result", NULL));
	json_object_put(ev);
	free(body);
}

static void test_event__every_family_fixture_has_entity_and_no_run(void **state)
{
	(void)state;
	check_family("other/case.created.json", "case.created", "case", "1610");
	check_family("other/case.updated.json", "case.updated", "case", "1610");
	check_family("other/case.cloned.json", "case.cloned", "case", "1611");
	check_family("other/suite.created.json", "suite.created", "suite", "12");
	check_family("other/suite.cloned.json", "suite.cloned", "suite", "13");
	check_family("other/plan.created.json", "plan.created", "plan", "2");
	check_family("other/milestone.created.json", "milestone.created", "milestone", "3");
	check_family("other/custom_field.created.json", "custom_field.created", "custom_field",
		     "174");
	check_family("other/defect.resolved.json", "defect.resolved", "defect", "7");
	check_family("other/review.created.json", "review.created", "review", "1");
	check_family("other/review.merged.json", "review.merged", "review", "1");
	check_family("other/shared_step.created.json", "shared_step.created", "shared_step",
		     "\"2563d587b756110934vea4185ce31b2b0dbf457c\"");
	check_family("other/shared_step.deleted.json", "shared_step.deleted", "shared_step",
		     "\"2563d587b756110934vea4185ce31b2b0dbf457c\"");
}

static void test_event__run_events_have_entity_run_and_their_id(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.started\",\"payload\":{\"id\":7}}", &qase_ms, NULL);
	assert_string_equal(json_object_get_string(get(ev, "entity")), "run");
	assert_int_equal(json_object_get_int64(get(ev, "entity_id")), 7);
	assert_int_equal(json_object_get_int64(get(ev, "run_id")), 7);
	assert_false(json_object_object_get_ex(ev, "result", NULL));
	json_object_put(ev);
}

static void test_event__other_families_need_no_payload_id(void **state)
{
	json_object *d;

	(void)state;
	d = parse_ok("{\"event_name\":\"shared_step.updated\",\"payload\":{\"hash\":\"ab\"}}");
	assert_int_equal(event_run_id_of(d), 0);
	assert_false(event_is_run(d));
	json_object_put(d);
	/* an id that is no run id may be anything */
	json_object_put(parse_ok("{\"event_name\":\"case.deleted\",\"payload\":{\"id\":\"x\"}}"));
	json_object_put(parse_ok("{\"event_name\":\"case.deleted\",\"payload\":{\"id\":0}}"));
	json_object_put(parse_ok("{\"event_name\":\"case.deleted\",\"payload\":{}}"));
	json_object_put(parse_ok("{\"event_name\":\"something.new\",\"payload\":{}}"));
	/* but a run event still needs its run id */
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"hash\":\"ab\"}}",
	       "payload.id is required");
}

static void test_event__entity_id_is_id_else_hash_else_null(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"case.deleted\",\"payload\":{\"id\":5,\"hash\":\"h\"}}",
		       &qase_ms, NULL);
	assert_int_equal(json_object_get_int64(get(ev, "entity_id")), 5);
	json_object_put(ev);
	ev = normalize("{\"event_name\":\"case.deleted\",\"payload\":{\"id\":\"5\",\"hash\":\"h\"}}",
		       &qase_ms, NULL);
	assert_string_equal(json_object_get_string(get(ev, "entity_id")), "h");
	json_object_put(ev);
	ev = normalize("{\"event_name\":\"case.deleted\",\"payload\":{\"hash\":7}}", &qase_ms, NULL);
	assert_null(get(ev, "entity_id"));
	json_object_put(ev);
}

static void test_event__entity_is_the_name_up_to_its_first_dot(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"review.approval_status_changed\",\"payload\":{\"id\":1}}",
		       &qase_ms, NULL);
	assert_string_equal(json_object_get_string(get(ev, "entity")), "review");
	json_object_put(ev);
	ev = normalize("{\"event_name\":\"ping\",\"payload\":{}}", &qase_ms, NULL);
	assert_string_equal(json_object_get_string(get(ev, "entity")), "ping");
	assert_null(get(ev, "run"));
	json_object_put(ev);
}

static void test_event__result_event_names_its_run_and_result(void **state)
{
	json_object *ev;
	size_t len;
	char *body = read_fixture("other/result.created.json", &len);

	(void)state;
	ev = normalize(body, &qase_ms, "{\"title\":\"Nightly\",\"cases_count\":14}");
	assert_string_equal(json_object_get_string(get(ev, "entity")), "result");
	assert_string_equal(json_object_get_string(get(ev, "entity_id")),
			    "6efce6e4f9f4a1b0b2f5c1d7a1b3e9f0c2d4e6a8");
	assert_int_equal(json_object_get_int64(get(ev, "run_id")), 1);
	/* the registry's run, as it is */
	assert_string_equal(plain(get(ev, "run")), "{\"title\":\"Nightly\",\"cases_count\":14}");
	assert_string_equal(plain(get(ev, "result")),
			    "{\"case_id\":1610,\"status\":\"failed\","
			    "\"hash\":\"6efce6e4f9f4a1b0b2f5c1d7a1b3e9f0c2d4e6a8\",\"time_ms\":1520,"
			    "\"comment\":\"Expected 200, got 500\","
			    "\"stacktrace\":\"AssertionError: 500 != 200\"}");
	json_object_put(ev);
	free(body);
}

static void test_event__result_run_id_from_run_id_run_object_or_integer_run(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"result.updated\",\"payload\":{\"id\":5,\"run\":{\"id\":8},"
		       "\"time_ms\":3}}",
		       &qase_ms, NULL);
	assert_int_equal(json_object_get_int64(get(ev, "run_id")), 8);
	assert_null(get(ev, "run")); /* not in the registry */
	assert_string_equal(plain(get(ev, "result")),
			    "{\"case_id\":null,\"status\":null,\"hash\":null,\"time_ms\":3,"
			    "\"comment\":null,\"stacktrace\":null}");
	json_object_put(ev);
	ev = normalize("{\"event_name\":\"result.deleted\",\"payload\":{\"run\":9}}", &qase_ms, NULL);
	assert_int_equal(json_object_get_int64(get(ev, "run_id")), 9);
	json_object_put(ev);
	ev = normalize("{\"event_name\":\"result.deleted\",\"payload\":{\"id\":9}}", &qase_ms,
		       "{\"title\":\"no\"}");
	assert_null(get(ev, "run_id")); /* payload.id is the result's, not a run's */
	assert_null(get(ev, "run"));
	json_object_put(ev);
}

static void test_event__aborted_cases_is_the_total(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.aborted\",\"payload\":{\"id\":1,\"cases\":14}}",
		       &qase_ms, "{\"cases_count\":9}");
	assert_int_equal(json_object_get_int64(get(get(ev, "run"), "cases_count")), 14);
	assert_int_equal(json_object_get_int64(get(get(get(ev, "run"), "counts"), "total")), 14);
	json_object_put(ev);
}

static void test_event__plan_id_and_integer_plan_name_the_plan(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,\"plan_id\":4}}",
		       &qase_ms, NULL);
	assert_string_equal(plain(get(get(ev, "run"), "plan")), "{\"id\":4,\"title\":null}");
	json_object_put(ev);
	ev = normalize("{\"event\":\"run.started\",\"payload\":{\"id\":1,\"plan\":5}}", &qase_ms,
		       NULL);
	assert_string_equal(plain(get(get(ev, "run"), "plan")), "{\"id\":5,\"title\":null}");
	json_object_put(ev);
	/* the same plan keeps the title the registry knows; another does not */
	ev = normalize("{\"event_name\":\"run.updated\",\"payload\":{\"id\":1,\"plan_id\":4}}",
		       &qase_ms, "{\"plan\":{\"id\":4,\"title\":\"Smoke\"}}");
	assert_string_equal(plain(get(get(ev, "run"), "plan")), "{\"id\":4,\"title\":\"Smoke\"}");
	json_object_put(ev);
	ev = normalize("{\"event_name\":\"run.updated\",\"payload\":{\"id\":1,\"plan_id\":6}}",
		       &qase_ms, "{\"plan\":{\"id\":4,\"title\":\"Smoke\"}}");
	assert_string_equal(plain(get(get(ev, "run"), "plan")), "{\"id\":6,\"title\":null}");
	json_object_put(ev);
	/* a later plan object fills the title */
	ev = normalize("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,"
		       "\"plan\":{\"id\":4,\"title\":\"Smoke\"}}}",
		       &qase_ms, "{\"plan\":{\"id\":4,\"title\":null}}");
	assert_string_equal(plain(get(get(ev, "run"), "plan")), "{\"id\":4,\"title\":\"Smoke\"}");
	json_object_put(ev);
}

static void test_event__project_comes_from_the_source_when_the_envelope_has_none(void **state)
{
	json_object *ev, *d;
	size_t len;
	char *body = read_fixture("other/run.completed.2021.json", &len);

	(void)state;
	ev = normalize(body, &qase_ms, NULL);
	assert_null(get(ev, "project"));
	assert_int_equal(json_object_get_int64(get(ev, "run_id")), 1);
	assert_int_equal(json_object_get_int64(get(get(ev, "run"), "cases_count")), 40);
	json_object_put(ev);
	ev = normalize(body, &qase_legacy, NULL);
	assert_string_equal(json_object_get_string(get(ev, "project")), "LEGACY");
	json_object_put(ev);
	/* the envelope's own code wins; an empty one is none */
	d = parse_ok(
		"{\"event_name\":\"run.started\",\"project_code\":\"DEMO\",\"payload\":{\"id\":1}}");
	assert_string_equal(event_project_of(d, &qase_legacy), "DEMO");
	json_object_put(d);
	d = parse_ok("{\"event_name\":\"run.started\",\"project_code\":\"\",\"payload\":{\"id\":1}}");
	assert_null(event_project_of(d, &qase_ms));
	assert_string_equal(event_project_of(d, &qase_legacy), "LEGACY");
	json_object_put(d);
	free(body);
}

static void test_event__mistyped_payload_fields_become_null(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,\"title\":7,"
		       "\"plan\":\"p\",\"environment\":[],\"cases_count\":\"14\","
		       "\"passed\":true,\"duration\":\"1\",\"visible\":1}}",
		       &qase_ms, NULL);
	assert_run(ev, RUN_EMPTY);
	json_object_put(ev);
}

static void test_event__absent_envelope_fields_are_null(void **state)
{
	json_object *ev;

	(void)state;
	ev = normalize("{\"event_name\":\"run.deleted\",\"payload\":{\"id\":1},"
		       "\"timestamp\":null,\"team_member_id\":0}",
		       &qase_ms, NULL);
	assert_null(get(ev, "occurred_at"));
	assert_null(get(ev, "project"));
	assert_int_equal(json_object_get_int64(get(ev, "actor_id")), 0);
	json_object_put(ev);
}

static void test_event__received_at_keeps_milliseconds(void **state)
{
	json_object *d = parse_ok("{\"event_name\":\"run.deleted\",\"payload\":{\"id\":1}}");
	json_object *ev = NULL;
	struct err err = { 0 };

	(void)state;
	assert_int_equal(event_normalize(&ev, d, &qase_ms, "x", 1650540194007LL, NULL, &err), 0);
	assert_string_equal(json_object_get_string(get(ev, "received_at")),
			    "2022-04-21T11:23:14.007Z");
	assert_string_equal(json_object_get_string(get(ev, "id")), "x");
	json_object_put(ev);
	json_object_put(d);
}

/* ---- accessors --------------------------------------------------------- */

static void test_event__accessors_read_name_project_and_run_id(void **state)
{
	json_object *d;

	(void)state;
	d = parse_ok(
		"{\"event_name\":\"run.started\",\"project_code\":\"DEMO\",\"payload\":{\"id\":42}}");
	assert_string_equal(event_name_of(d), "run.started");
	assert_string_equal(event_project_of(d, &qase_ms), "DEMO");
	assert_int_equal(event_run_id_of(d), 42);
	json_object_put(d);
	d = parse_ok("{\"event\":\"run.started\",\"payload\":{\"id\":1}}");
	assert_string_equal(event_name_of(d), "run.started");
	assert_null(event_project_of(d, &qase_ms));
	json_object_put(d);
}

/* ---- 400s -------------------------------------------------------------- */

static void test_event__rejects_what_is_not_json(void **state)
{
	(void)state;
	REJECT("", "body is not JSON: unexpected end of data");
	REJECT("   ", "body is not JSON: unexpected end of data");
	REJECT("event_name=run.started", "body is not JSON: unexpected character");
	REJECT("{\"event_name\":\"run.started\"", "body is not JSON: unexpected end of data");
	REJECT("{\"a\":1,}", "body is not JSON: unexpected character");
}

static void test_event__rejects_what_is_not_an_object(void **state)
{
	(void)state;
	REJECT("[1,2]", "body must be a JSON object");
	REJECT("\"run.started\"", "body must be a JSON object");
	REJECT("42", "body must be a JSON object");
	REJECT("null", "body must be a JSON object");
}

static void test_event__rejects_missing_or_bad_event_name(void **state)
{
	(void)state;
	REJECT("{\"payload\":{\"id\":1}}", "event_name is required");
	REJECT("{\"event_name\":null,\"payload\":{\"id\":1}}", "event_name is required");
	REJECT("{\"event_name\":5,\"payload\":{\"id\":1}}", "event_name must be a non-empty string");
	REJECT("{\"event_name\":\"\",\"payload\":{\"id\":1}}",
	       "event_name must be a non-empty string");
	REJECT("{\"event\":[\"run.started\"],\"payload\":{\"id\":1}}",
	       "event must be a non-empty string");
}

static void test_event__rejects_missing_or_bad_payload(void **state)
{
	(void)state;
	REJECT("{\"event_name\":\"run.started\"}", "payload must be an object");
	REJECT("{\"event_name\":\"run.started\",\"payload\":[{\"id\":1}]}",
	       "payload must be an object");
	REJECT("{\"event_name\":\"run.started\",\"payload\":\"x\"}", "payload must be an object");
}

static void test_event__rejects_missing_or_bad_payload_id(void **state)
{
	(void)state;
	REJECT("{\"event_name\":\"run.started\",\"payload\":{}}", "payload.id is required");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":null}}",
	       "payload.id is required");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":\"1\"}}",
	       "payload.id must be a positive integer");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":0}}",
	       "payload.id must be a positive integer");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":-3}}",
	       "payload.id must be a positive integer");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1.5}}",
	       "payload.id must be a positive integer");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":true}}",
	       "payload.id must be a positive integer");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":9223372036854775808}}",
	       "payload.id must be a positive integer");
}

static void test_event__rejects_mistyped_envelope_fields(void **state)
{
	(void)state;
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1},\"timestamp\":\"1650540069\"}",
	       "timestamp must be an integer (Unix seconds, 0..253402300799)");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1},\"timestamp\":1.5}",
	       "timestamp must be an integer (Unix seconds, 0..253402300799)");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1},\"timestamp\":-1}",
	       "timestamp must be an integer (Unix seconds, 0..253402300799)");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1},\"team_member_id\":\"40\"}",
	       "team_member_id must be an integer");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1},\"project_code\":7}",
	       "project_code must be a string");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1},\"project_code\":{}}",
	       "project_code must be a string");
}

static void test_event__rejects_invalid_utf8(void **state)
{
	(void)state;
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,\"title\":\"\xff\xfe\"}}",
	       "body is not valid UTF-8 (byte 55)");
	/* json-c's own check lets these three through */
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,\"title\":\"\xc0\xaf\"}}",
	       "body is not valid UTF-8 (byte 55)");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,\"title\":\"\xed\xa0\x80\"}}",
	       "body is not valid UTF-8 (byte 55)");
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,\"title\":\"\xf4\x90\x80\x80\"}}",
	       "body is not valid UTF-8 (byte 55)");
	/* truncated sequence at the very end */
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":1}}\xe2\x9c",
	       "body is not valid UTF-8 (byte 47)");
}

static void test_event__accepts_valid_utf8(void **state)
{
	json_object *d;

	(void)state;
	d = parse_ok("{\"event_name\":\"run.started\",\"payload\":{\"id\":1,"
		     "\"title\":\"Pr\xc3\xbc"
		     "fung \xe2\x9c\x93\"}}");
	json_object_put(d);
}

static void test_event__rejects_trailing_bytes(void **state)
{
	(void)state;
	REJECT("{\"event_name\":\"run.deleted\",\"payload\":{\"id\":1}} x",
	       "body is not JSON: unexpected data after the JSON value at byte 48");
	REJECT("{\"event_name\":\"run.deleted\",\"payload\":{\"id\":1}}{}",
	       "body is not JSON: unexpected data after the JSON value at byte 47");
	/* a NUL would end a C string early but not the body */
	REJECT("{\"event_name\":\"run.deleted\",\"payload\":{\"id\":1}}\0{}",
	       "body is not JSON: unexpected data after the JSON value at byte 47");
}

static void test_event__accepts_trailing_whitespace(void **state)
{
	json_object *d = parse_ok("{\"event_name\":\"run.deleted\",\"payload\":{\"id\":1}}\r\n ");

	(void)state;
	json_object_put(d);
}

/*
 * A body whose deepest value is `levels` deep, counted as json-c does (the
 * top object is 1, every member or element one more, scalars included):
 * {"event_name":"run.started","payload":{"id":1,"x":[[...[1]...]]}}
 */
static char *nested(int levels)
{
	size_t cap = 128 + 2 * (size_t)levels;
	char *s = malloc(cap);
	int n = snprintf(s, cap, "{\"event_name\":\"run.started\",\"payload\":{\"id\":1,\"x\":");

	for (int i = 0; i < levels - 3; i++)
		s[n++] = '[';
	s[n++] = '1';
	for (int i = 0; i < levels - 3; i++)
		s[n++] = ']';
	s[n++] = '}';
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

static void test_event__rejects_nesting_deeper_than_max_depth(void **state)
{
	json_object *d = NULL;
	struct err err = { 0 };
	char *ok = nested(MAX_DEPTH), *deep = nested(MAX_DEPTH + 1);
	char *bomb = nested(100000);

	(void)state;
	assert_int_equal(event_parse(&d, ok, strlen(ok), MAX_DEPTH, &err), 0);
	json_object_put(d);
	expect_400(deep, strlen(deep), "body is not acceptable JSON: nested deeper than 32 levels");
	expect_400(bomb, strlen(bomb), "body is not acceptable JSON: nested deeper than 32 levels");
	free(ok);
	free(deep);
	free(bomb);
}

/* The thread keeps one tokener (event.c): a parse that failed half-way, a
 * different depth limit or a body too long to keep a tokener for must not
 * change what the next parse answers. */
static void test_event__parse_after_failures_depths_and_long_bodies(void **state)
{
	const char *good = "{\"event_name\":\"run.started\",\"payload\":{\"id\":7}}";
	json_object *d = NULL, *v;
	struct err err = { 0 };
	size_t big_len = 70 * 1024;
	char *big = malloc(big_len + 64), *deep3 = nested(3);

	(void)state;
	assert_non_null(big);
	/* a string of 70 KiB in a valid delivery */
	int n = snprintf(big, 64, "{\"event_name\":\"run.started\",\"payload\":{\"id\":1},\"x\":\"");
	memset(big + n, 'a', big_len);
	memcpy(big + n + big_len, "\"}", 3);
	REJECT("{\"event_name\":\"run.started\",\"payload\":{\"id\":[1,2,",
	       "body is not JSON: unexpected end of data");
	for (int round = 0; round < 2; round++) {
		d = parse_ok(good);
		assert_true(json_object_object_get_ex(d, "payload", &v));
		json_object_put(d);
		/* the same thread, a depth limit of 2: refused, then 32 again */
		assert_int_equal(event_parse(&d, deep3, strlen(deep3), 2, &err), -1);
		assert_string_equal(err.msg,
				    "body is not acceptable JSON: nested deeper than 2 levels");
		assert_int_equal(event_parse(&d, deep3, strlen(deep3), MAX_DEPTH, &err), 0);
		json_object_put(d);
		assert_int_equal(event_parse(&d, big, strlen(big), MAX_DEPTH, &err), 0);
		assert_true(json_object_object_get_ex(d, "x", &v));
		assert_int_equal(json_object_get_string_len(v), (int)big_len);
		json_object_put(d);
	}
	free(big);
	free(deep3);
}

/* ---- delivery id ------------------------------------------------------- */

static void test_event__delivery_id_is_sha256_of_source_then_body(void **state)
{
	/* printf 'qase%s' '<body>' | sha256sum */
	const char *body = "{\"event_name\":\"run.deleted\",\"timestamp\":1650540289,"
			   "\"payload\":{\"id\":1},\"team_member_id\":40,\"project_code\":\"ID\"}";
	char id[65];

	(void)state;
	event_delivery_id(id, "qase", body, strlen(body));
	assert_string_equal(id, "d514fbcd32217303b6ecc0ec679ea2b6798e54366e85e19a3a4d1786770c326d");
	/* printf 'qase' | sha256sum */
	event_delivery_id(id, "qase", "", 0);
	assert_string_equal(id, "d6386e4d061dc866d2e0873251ca19faa8c8e2ddffcde303d007af716b0a3f2b");
}

static void test_event__delivery_id_of_fixture_file_bytes(void **state)
{
	size_t len;
	char *body = read_fixture("run.completed.json", &len), id[65];

	(void)state;
	/* (printf qase; cat run.completed.json) | sha256sum */
	event_delivery_id(id, "qase", body, len);
	assert_string_equal(id, "b17f6360ecca8867efbac689dbdef3bd4a4cc362ecd8713d8509b68e9b618ef7");
	free(body);
}

static void test_event__delivery_id_depends_on_source(void **state)
{
	char a[65], b[65];

	(void)state;
	event_delivery_id(a, "qase", "{}", 2);
	event_delivery_id(b, "qase2", "{}", 2);
	assert_string_not_equal(a, b);
}

/* raw is the delivery as received, less the whitespace between tokens: a
 * 30-digit integer, a repeated key, the spaces inside a string and the
 * sender's escapes survive (parsed, they would be clamped and merged). */
static void test_event__raw_is_the_bytes_as_received(void **state)
{
	static const char body[] = "\n{\"event_name\": \"run.started\", \"payload\": {\"id\": 5,\n"
				   " \"big\": 123456789012345678901234567890, \"k\": 1, \"k\": 2,\n"
				   " \"t\": \"a \\\" b\\u00e9\"}, \"project_code\": \"RAW\"}\n";
	static const char want_raw[] = "{\"event_name\":\"run.started\",\"payload\":{\"id\":5,"
				       "\"big\":123456789012345678901234567890,\"k\":1,\"k\":2,"
				       "\"t\":\"a \\\" b\\u00e9\"},\"project_code\":\"RAW\"}";
	struct event_bytes bytes = { body, sizeof(body) - 1 };
	json_object *d = parse_ok(body), *ev = NULL;
	struct err err = { 0 };

	(void)state;
	event_keep_bytes(d, &bytes);
	assert_int_equal(event_normalize(&ev, d, &qase_ms, "x", RECEIVED_MS, NULL, &err), 0);
	const char *text = plain(ev);
	const char *raw = strstr(text, ",\"raw\":");
	assert_non_null(raw);
	char want[512];
	snprintf(want, sizeof(want), ",\"raw\":%s}", want_raw);
	assert_string_equal(raw, want);
	/* and the event is still JSON that parses */
	json_object *back = json_tokener_parse(text);
	assert_non_null(back);
	json_object_put(back);
	json_object_put(ev);
	json_object_put(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event__started_fixture_normalizes),
		cmocka_unit_test(test_event__completed_fixture_normalizes),
		cmocka_unit_test(test_event__aborted_fixture_normalizes),
		cmocka_unit_test(test_event__deleted_fixture_normalizes),
		cmocka_unit_test(test_event__report_changed_fixture_normalizes),
		cmocka_unit_test(test_event__updated_fixture_normalizes),
		cmocka_unit_test(test_event__fixtures_enrich_through_a_run_lifecycle),
		cmocka_unit_test(test_event__legacy_event_field_names_the_type),
		cmocka_unit_test(test_event__event_name_wins_over_legacy_event),
		cmocka_unit_test(test_event__aborted_reads_skiped_typo),
		cmocka_unit_test(test_event__skipped_wins_over_skiped),
		cmocka_unit_test(test_event__updated_cases_added_is_a_delta_on_prior_count),
		cmocka_unit_test(test_event__updated_cases_count_is_a_total_and_wins),
		cmocka_unit_test(test_event__updated_without_prior_count_leaves_total_null),
		cmocka_unit_test(test_event__nullable_plan_description_environment_stay_null),
		cmocka_unit_test(test_event__present_plan_description_environment_are_kept),
		cmocka_unit_test(test_event__completed_has_no_skipped_or_untested),
		cmocka_unit_test(test_event__missing_counts_are_null_not_zero),
		cmocka_unit_test(test_event__duration_in_seconds_is_scaled_to_ms),
		cmocka_unit_test(test_event__duration_in_ms_is_kept),
		cmocka_unit_test(test_event__fractional_duration_rounds_to_ms),
		cmocka_unit_test(test_event__overflowing_duration_is_null),
		cmocka_unit_test(test_event__report_changed_false_is_not_public),
		cmocka_unit_test(test_event__completed_enriched_from_started),
		cmocka_unit_test(test_event__completed_cases_is_the_total_over_prior),
		cmocka_unit_test(test_event__own_values_win_over_prior),
		cmocka_unit_test(test_event__counts_and_duration_are_never_carried_over),
		cmocka_unit_test(test_event__every_family_fixture_has_entity_and_no_run),
		cmocka_unit_test(test_event__run_events_have_entity_run_and_their_id),
		cmocka_unit_test(test_event__other_families_need_no_payload_id),
		cmocka_unit_test(test_event__entity_id_is_id_else_hash_else_null),
		cmocka_unit_test(test_event__entity_is_the_name_up_to_its_first_dot),
		cmocka_unit_test(test_event__result_event_names_its_run_and_result),
		cmocka_unit_test(test_event__result_run_id_from_run_id_run_object_or_integer_run),
		cmocka_unit_test(test_event__aborted_cases_is_the_total),
		cmocka_unit_test(test_event__plan_id_and_integer_plan_name_the_plan),
		cmocka_unit_test(test_event__project_comes_from_the_source_when_the_envelope_has_none),
		cmocka_unit_test(test_event__mistyped_payload_fields_become_null),
		cmocka_unit_test(test_event__absent_envelope_fields_are_null),
		cmocka_unit_test(test_event__received_at_keeps_milliseconds),
		cmocka_unit_test(test_event__accessors_read_name_project_and_run_id),
		cmocka_unit_test(test_event__rejects_what_is_not_json),
		cmocka_unit_test(test_event__rejects_what_is_not_an_object),
		cmocka_unit_test(test_event__rejects_missing_or_bad_event_name),
		cmocka_unit_test(test_event__rejects_missing_or_bad_payload),
		cmocka_unit_test(test_event__rejects_missing_or_bad_payload_id),
		cmocka_unit_test(test_event__rejects_mistyped_envelope_fields),
		cmocka_unit_test(test_event__rejects_invalid_utf8),
		cmocka_unit_test(test_event__accepts_valid_utf8),
		cmocka_unit_test(test_event__rejects_trailing_bytes),
		cmocka_unit_test(test_event__accepts_trailing_whitespace),
		cmocka_unit_test(test_event__rejects_nesting_deeper_than_max_depth),
		cmocka_unit_test(test_event__parse_after_failures_depths_and_long_bodies),
		cmocka_unit_test(test_event__delivery_id_is_sha256_of_source_then_body),
		cmocka_unit_test(test_event__delivery_id_of_fixture_file_bytes),
		cmocka_unit_test(test_event__delivery_id_depends_on_source),
		cmocka_unit_test(test_event__raw_is_the_bytes_as_received),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
