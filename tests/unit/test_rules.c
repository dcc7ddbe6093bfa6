/* rules: loading rule files (with every error positioned) and routing
 * events through them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "rules/cond.h"
#include "rules/rules.h"

/* ---- helpers ------------------------------------------------------------- */

static const char base_event[] = "{\"type\":\"run.completed\",\"project\":\"DEMO\",\"run_id\":42,"
				 "\"run\":{\"title\":\"Nightly build\",\"counts\":{\"failed\":3,\"passed\":10},"
				 "\"duration\":1.5,\"public\":true,\"plan\":null,\"code\":\"007\"},"
				 "\"tags\":[\"smoke\",\"api\"],\"big\":9007199254740993,"
				 "\"huge\":18446744073709551615}";

static json_object *parse_json(const char *text)
{
	json_object *o = json_tokener_parse(text);
	assert_non_null(o);
	return o;
}

static void dump_errors(const struct errlist *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		print_error("  %s\n", errs->msgs[i]);
}

static struct rules *load_ok(const char *text)
{
	struct errlist errs = ERRLIST_INIT;
	struct rules *rs = NULL;

	if (rules_load_string(&rs, "t.yaml", text, &errs) < 0) {
		dump_errors(&errs);
		fail_msg("rules did not load");
	}
	assert_int_equal(errs.n, 0);
	errlist_free(&errs);
	return rs;
}

/* Loads text expecting failure; the caller frees errs. */
static void load_bad(const char *text, struct errlist *errs)
{
	struct rules *rs = (struct rules *)1;

	assert_int_equal(rules_load_string(&rs, "t.yaml", text, errs), -1);
	assert_null(rs);
	assert_true(errs->n > 0);
}

/* Asserts text fails to load with exactly the messages given (NULL-ended). */
static void assert_load_errors(const char *text, ...)
{
	struct errlist errs = ERRLIST_INIT;
	va_list ap;
	size_t n = 0;
	const char *want;

	load_bad(text, &errs);
	va_start(ap, text);
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (n >= errs.n) {
			dump_errors(&errs);
			fail_msg("missing error: %s", want);
		}
		if (strcmp(errs.msgs[n], want) != 0) {
			dump_errors(&errs);
			fail_msg("error %zu:\n  got  %s\n  want %s", n, errs.msgs[n], want);
		}
		n++;
	}
	va_end(ap);
	if (n != errs.n) {
		dump_errors(&errs);
		fail_msg("%zu errors, expected %zu", errs.n, n);
	}
	errlist_free(&errs);
}

/* The names of the rules that match, joined with commas. */
static void route_names(const struct rules *rs, const char *event_json, char *buf, size_t len)
{
	json_object *ev = parse_json(event_json);
	struct route_result rr;
	struct err e;
	size_t used = 0;

	assert_int_equal(rules_route(rs, ev, &rr, &e), 0);
	buf[0] = '\0';
	for (size_t i = 0; i < rr.n_matched; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "", rr.matched[i]);
	route_result_free(&rr);
	json_object_put(ev);
}

static void assert_routes(const char *rules_text, const char *event_json, const char *want)
{
	struct rules *rs = load_ok(rules_text);
	char got[1024];

	route_names(rs, event_json, got, sizeof(got));
	assert_string_equal(got, want);
	rules_free(rs);
}

#define ACTION "    actions:\n      - redis: { stream: \"runbridge:{{project}}\", maxlen: 100 }\n"

/* 1 when the one condition (a YAML flow map) matches the event. */
static int cond_matches(const char *cond, const char *event_json)
{
	char text[2048], got[256];
	struct rules *rs;

	snprintf(text, sizeof(text),
		 "rules:\n  - name: r\n    match:\n      all:\n        - %s\n" ACTION, cond);
	rs = load_ok(text);
	route_names(rs, event_json, got, sizeof(got));
	rules_free(rs);
	return strcmp(got, "r") == 0;
}

#define MATCH(cond) cond_matches(cond, base_event)

/* ---- operators ----------------------------------------------------------- */

static void test_rules__eq_compares_strings_exactly(void **state)
{
	(void)state;
	assert_true(MATCH("{field: project, eq: DEMO}"));
	assert_true(MATCH("{field: project, eq: \"DEMO\"}"));
	assert_false(MATCH("{field: project, eq: DEM}"));
	assert_false(MATCH("{field: project, eq: demo}"));
	assert_true(MATCH("{field: run.title, eq: Nightly build}"));
}

static void test_rules__eq_compares_numbers_across_int_and_double(void **state)
{
	(void)state;
	assert_true(MATCH("{field: run.counts.failed, eq: 3}"));
	assert_true(MATCH("{field: run.counts.failed, eq: 3.0}"));
	assert_true(MATCH("{field: run.duration, eq: 1.5}"));
	assert_true(MATCH("{field: run.duration, eq: 15e-1}"));
	assert_false(MATCH("{field: run.duration, eq: 1}"));
	assert_false(MATCH("{field: run.counts.failed, eq: 4}"));
}

static void test_rules__eq_int_vs_double_is_exact_for_big_ints(void **state)
{
	(void)state;
	/* 2^53 + 1 would equal 2^53 if it went through a double */
	assert_false(MATCH("{field: big, eq: 9007199254740992.0}"));
	assert_true(MATCH("{field: big, eq: 9007199254740993}"));
	assert_true(MATCH("{field: big, gt: 9007199254740992.0}"));
	assert_true(MATCH("{field: huge, gt: 9223372036854775807}"));
}

static void test_rules__eq_quoted_number_is_a_string(void **state)
{
	(void)state;
	assert_false(MATCH("{field: run.counts.failed, eq: \"3\"}"));
	assert_true(MATCH("{field: run.code, eq: \"007\"}"));
	assert_false(MATCH("{field: run.code, eq: 7}"));
}

static void test_rules__eq_compares_booleans(void **state)
{
	(void)state;
	assert_true(MATCH("{field: run.public, eq: true}"));
	assert_false(MATCH("{field: run.public, eq: false}"));
	assert_false(MATCH("{field: run.public, eq: \"true\"}"));
	assert_false(MATCH("{field: run.counts.failed, eq: true}"));
}

static void test_rules__eq_null_matches_null_and_missing(void **state)
{
	(void)state;
	assert_true(MATCH("{field: run.plan, eq: null}"));
	assert_true(MATCH("{field: run.nope, eq: null}"));
	assert_true(MATCH("{field: run.nope, eq: ~}"));
	assert_false(MATCH("{field: project, eq: null}"));
	assert_false(MATCH("{field: project, eq: \"null\"}"));
}

static void test_rules__eq_on_missing_field_is_false(void **state)
{
	(void)state;
	assert_false(MATCH("{field: run.nope, eq: 0}"));
	assert_false(MATCH("{field: run.nope, eq: \"\"}"));
	assert_false(MATCH("{field: run.nope, eq: false}"));
}

static void test_rules__eq_on_objects_is_false(void **state)
{
	(void)state;
	assert_false(MATCH("{field: run.counts, eq: \"{}\"}"));
	assert_false(MATCH("{field: tags, eq: smoke}"));
}

static void test_rules__ne_is_the_negation_of_eq(void **state)
{
	(void)state;
	assert_false(MATCH("{field: project, ne: DEMO}"));
	assert_true(MATCH("{field: project, ne: OTHER}"));
	assert_false(MATCH("{field: run.counts.failed, ne: 3.0}"));
	assert_true(MATCH("{field: run.nope, ne: 3}"));
	assert_false(MATCH("{field: run.nope, ne: null}"));
	assert_false(MATCH("{field: run.plan, ne: null}"));
	assert_true(MATCH("{field: project, ne: null}"));
}

static void test_rules__in_is_eq_against_any_item(void **state)
{
	(void)state;
	assert_true(MATCH("{field: project, in: [OTHER, DEMO]}"));
	assert_false(MATCH("{field: project, in: [OTHER, demo]}"));
	assert_true(MATCH("{field: run.counts.failed, in: [1, 2, 3.0]}"));
	assert_false(MATCH("{field: run.counts.failed, in: [\"3\"]}"));
	assert_false(MATCH("{field: run.nope, in: [1, x]}"));
	assert_true(MATCH("{field: run.nope, in: [1, null]}"));
	assert_true(MATCH("{field: run.public, in: [false, true]}"));
}

static void test_rules__gt_ge_lt_le_compare_numbers(void **state)
{
	(void)state;
	assert_true(MATCH("{field: run.counts.failed, gt: 2}"));
	assert_false(MATCH("{field: run.counts.failed, gt: 3}"));
	assert_true(MATCH("{field: run.counts.failed, ge: 3}"));
	assert_false(MATCH("{field: run.counts.failed, ge: 4}"));
	assert_true(MATCH("{field: run.counts.failed, lt: 4}"));
	assert_false(MATCH("{field: run.counts.failed, lt: 3}"));
	assert_true(MATCH("{field: run.counts.failed, le: 3}"));
	assert_false(MATCH("{field: run.counts.failed, le: 2}"));
	assert_true(MATCH("{field: run.counts.failed, gt: -1}"));
}

static void test_rules__order_compares_int_with_double(void **state)
{
	(void)state;
	assert_true(MATCH("{field: run.counts.failed, gt: 2.5}"));
	assert_true(MATCH("{field: run.counts.failed, lt: 3.5}"));
	assert_true(MATCH("{field: run.counts.failed, ge: 3.0}"));
	assert_false(MATCH("{field: run.counts.failed, gt: 3.0}"));
	assert_true(MATCH("{field: run.duration, gt: 1}"));
	assert_true(MATCH("{field: run.duration, lt: 2}"));
	assert_false(MATCH("{field: run.duration, le: 1}"));
}

static void test_rules__order_compares_strings_bytewise(void **state)
{
	(void)state;
	assert_true(MATCH("{field: project, gt: ABC}"));
	assert_true(MATCH("{field: project, lt: DEMOS}"));
	assert_true(MATCH("{field: project, ge: DEMO}"));
	assert_true(MATCH("{field: project, le: DEMO}"));
	assert_false(MATCH("{field: project, gt: DEMO}"));
	assert_true(MATCH("{field: project, lt: demo}"));
}

static void test_rules__order_across_kinds_or_missing_is_false(void **state)
{
	(void)state;
	assert_false(MATCH("{field: project, gt: 1}"));
	assert_false(MATCH("{field: project, lt: 1}"));
	assert_false(MATCH("{field: run.counts.failed, gt: \"1\"}"));
	assert_false(MATCH("{field: run.counts.failed, lt: \"9\"}"));
	assert_false(MATCH("{field: run.public, gt: 0}"));
	assert_false(MATCH("{field: run.nope, gt: 0}"));
	assert_false(MATCH("{field: run.nope, lt: 0}"));
	assert_false(MATCH("{field: run.plan, le: 0}"));
}

static void test_rules__exists_tells_present_from_missing(void **state)
{
	(void)state;
	assert_true(MATCH("{field: run.title, exists: true}"));
	assert_false(MATCH("{field: run.title, exists: false}"));
	assert_false(MATCH("{field: run.nope, exists: true}"));
	assert_true(MATCH("{field: run.nope, exists: false}"));
	/* a present null exists */
	assert_true(MATCH("{field: run.plan, exists: true}"));
	assert_true(MATCH("{field: tags.1, exists: true}"));
	assert_false(MATCH("{field: tags.2, exists: true}"));
}

static void test_rules__matches_applies_an_extended_regex(void **state)
{
	(void)state;
	assert_true(MATCH("{field: run.title, matches: \"^Night(ly)? \"}"));
	assert_true(MATCH("{field: run.title, matches: build}"));
	assert_false(MATCH("{field: run.title, matches: \"^build\"}"));
	assert_true(MATCH("{field: type, matches: \"^run\\\\.(completed|aborted)$\"}"));
	assert_false(MATCH("{field: type, matches: \"^run\\\\.started$\"}"));
}

static void test_rules__matches_converts_numbers_to_text(void **state)
{
	(void)state;
	assert_true(MATCH("{field: run_id, matches: \"^4[0-9]$\"}"));
	assert_true(MATCH("{field: run.duration, matches: \"^1\\\\.5$\"}"));
	assert_false(MATCH("{field: run_id, matches: \"^5\"}"));
}

static void test_rules__matches_missing_null_bool_is_false(void **state)
{
	(void)state;
	assert_false(MATCH("{field: run.nope, matches: \".*\"}"));
	assert_false(MATCH("{field: run.plan, matches: \".*\"}"));
	assert_false(MATCH("{field: run.public, matches: \".*\"}"));
	assert_false(MATCH("{field: run.counts, matches: \".*\"}"));
}

static void test_rules__array_items_are_reachable_by_index(void **state)
{
	(void)state;
	assert_true(MATCH("{field: tags.0, eq: smoke}"));
	assert_true(MATCH("{field: tags.1, eq: api}"));
	assert_false(MATCH("{field: tags.5, eq: api}"));
}

/* ---- groups and globs ---------------------------------------------------- */

static void test_rules__all_requires_every_condition(void **state)
{
	(void)state;
	assert_routes("rules:\n  - name: r\n    match:\n      all:\n"
		      "        - {field: project, eq: DEMO}\n"
		      "        - {field: run.counts.failed, gt: 0}\n" ACTION,
		      base_event, "r");
	assert_routes("rules:\n  - name: r\n    match:\n      all:\n"
		      "        - {field: project, eq: DEMO}\n"
		      "        - {field: run.counts.failed, gt: 5}\n" ACTION,
		      base_event, "");
}

static void test_rules__any_requires_one_condition(void **state)
{
	(void)state;
	assert_routes("rules:\n  - name: r\n    match:\n      any:\n"
		      "        - {field: project, eq: NOPE}\n"
		      "        - {field: run.counts.failed, gt: 0}\n" ACTION,
		      base_event, "r");
	assert_routes("rules:\n  - name: r\n    match:\n      any:\n"
		      "        - {field: project, eq: NOPE}\n"
		      "        - {field: run.counts.failed, gt: 5}\n" ACTION,
		      base_event, "");
}

static void test_rules__not_negates_a_condition(void **state)
{
	(void)state;
	assert_routes("rules:\n  - name: r\n    match:\n"
		      "      not: {field: project, eq: NOPE}\n" ACTION,
		      base_event, "r");
	assert_routes("rules:\n  - name: r\n    match:\n"
		      "      not: {field: project, eq: DEMO}\n" ACTION,
		      base_event, "");
}

static void test_rules__match_keys_are_and_ed(void **state)
{
	static const char text[] = "rules:\n  - name: r\n    match:\n"
				   "      event: run.completed\n      project: DEMO\n"
				   "      all: [{field: run.counts.failed, gt: 0}]\n"
				   "      any: [{field: run.public, eq: true}]\n"
				   "      not: {field: run.counts.passed, eq: 0}\n" ACTION;
	(void)state;
	assert_routes(text, base_event, "r");
	assert_routes(text,
		      "{\"type\":\"run.completed\",\"project\":\"DEMO\","
		      "\"run\":{\"counts\":{\"failed\":1,\"passed\":0},\"public\":true}}",
		      "");
}

static void test_rules__groups_nest(void **state)
{
	static const char text[] =
		"rules:\n  - name: r\n    match:\n      any:\n"
		"        - all:\n"
		"            - {field: project, eq: DEMO}\n"
		"            - not: {any: [{field: run_id, lt: 10}, {field: run_id, gt: 100}]}\n"
		"        - {field: run.public, eq: false}\n" ACTION;
	(void)state;
	assert_routes(text, base_event, "r");
	assert_routes(text, "{\"project\":\"DEMO\",\"run_id\":5}", "");
	assert_routes(text, "{\"project\":\"X\",\"run_id\":50,\"run\":{\"public\":false}}", "r");
	assert_routes(text, "{\"project\":\"X\",\"run_id\":50}", "");
}

static void test_rules__no_match_section_matches_everything(void **state)
{
	(void)state;
	assert_routes("rules:\n  - name: r\n" ACTION, "{}", "r");
	assert_routes("rules:\n  - name: r\n    match:\n" ACTION, "{}", "r");
	assert_routes("rules:\n  - name: r\n    match: {}\n" ACTION, "{}", "r");
}

static void test_rules__event_glob_matches_the_type(void **state)
{
	(void)state;
	assert_routes("rules:\n  - name: r\n    match:\n      event: run.completed\n" ACTION,
		      base_event, "r");
	assert_routes("rules:\n  - name: r\n    match:\n      event: \"run.*\"\n" ACTION,
		      base_event, "r");
	assert_routes("rules:\n  - name: r\n    match:\n      event: \"*.aborted\"\n" ACTION,
		      base_event, "");
	assert_routes("rules:\n  - name: r\n    match:\n      event: \"run.complete?\"\n" ACTION,
		      base_event, "r");
	assert_routes("rules:\n  - name: r\n    match:\n      event: \"run.[cd]*\"\n" ACTION,
		      base_event, "r");
}

static void test_rules__event_list_matches_any_glob(void **state)
{
	(void)state;
	assert_routes("rules:\n  - name: r\n    match:\n"
		      "      event: [run.aborted, run.completed]\n" ACTION,
		      base_event, "r");
	assert_routes("rules:\n  - name: r\n    match:\n"
		      "      event: [run.aborted, \"result.*\"]\n" ACTION,
		      base_event, "");
}

static void test_rules__event_filter_never_matches_an_event_without_type(void **state)
{
	(void)state;
	assert_routes("rules:\n  - name: r\n    match:\n      event: \"*\"\n" ACTION,
		      "{\"project\":\"DEMO\"}", "");
}

static void test_rules__project_glob_and_list(void **state)
{
	(void)state;
	assert_routes("rules:\n  - name: r\n    match:\n      project: DE*\n" ACTION, base_event,
		      "r");
	assert_routes("rules:\n  - name: r\n    match:\n      project: [A, B, DEMO]\n" ACTION,
		      base_event, "r");
	assert_routes("rules:\n  - name: r\n    match:\n      project: [A, B]\n" ACTION, base_event,
		      "");
}

static void test_rules__project_filter_never_matches_a_null_project(void **state)
{
	static const char text[] = "rules:\n  - name: r\n    match:\n      project: \"*\"\n" ACTION;
	(void)state;
	assert_routes(text, "{\"type\":\"run.completed\",\"project\":null}", "");
	assert_routes(text, "{\"type\":\"run.completed\"}", "");
	assert_routes("rules:\n  - name: r\n    match:\n      event: \"*\"\n" ACTION,
		      "{\"type\":\"run.completed\",\"project\":null}", "r");
}

/* ---- routing ------------------------------------------------------------- */

static const char three_rules[] = "rules:\n"
				  "  - name: first\n"
				  "    actions:\n"
				  "      - redis: { stream: \"a:{{project}}\" }\n"
				  "      - redis: { stream: \"b:{{run_id}}\", maxlen: 5 }\n"
				  "  - name: skipped\n"
				  "    match: { project: NOPE }\n"
				  "    actions:\n"
				  "      - redis: { stream: \"never\" }\n"
				  "  - name: second\n"
				  "    stop: false\n"
				  "    actions:\n"
				  "      - redis: { stream: \"c\" }\n";

static void assert_action(const struct routed_action *a, const char *rule, int index,
			  const char *params_json)
{
	assert_string_equal(a->rule, rule);
	assert_int_equal(a->index, index);
	assert_string_equal(a->kind, "redis");
	assert_string_equal(json_object_to_json_string_ext(a->params, JSON_C_TO_STRING_PLAIN),
			    params_json);
}

static void test_rules__actions_fan_out_in_rule_order(void **state)
{
	struct rules *rs = load_ok(three_rules);
	json_object *ev = parse_json(base_event);
	struct route_result rr;
	struct err e;
	(void)state;
	assert_int_equal(rules_count(rs), 3);
	assert_int_equal(rules_route(rs, ev, &rr, &e), 0);
	assert_int_equal(rr.n_matched, 2);
	assert_string_equal(rr.matched[0], "first");
	assert_string_equal(rr.matched[1], "second");
	assert_int_equal(rr.n, 3);
	assert_action(&rr.v[0], "first", 0, "{\"stream\":\"a:DEMO\",\"maxlen\":0}");
	assert_action(&rr.v[1], "first", 1, "{\"stream\":\"b:42\",\"maxlen\":5}");
	assert_action(&rr.v[2], "second", 0, "{\"stream\":\"c\",\"maxlen\":0}");
	route_result_free(&rr);
	json_object_put(ev);
	rules_free(rs);
}

static void test_rules__stop_true_skips_later_rules(void **state)
{
	(void)state;
	assert_routes("rules:\n"
		      "  - name: a\n" ACTION "  - name: b\n    stop: true\n" ACTION
		      "  - name: c\n" ACTION,
		      base_event, "a,b");
}

static void test_rules__stop_on_a_rule_that_does_not_match_is_ignored(void **state)
{
	(void)state;
	assert_routes("rules:\n"
		      "  - name: a\n    stop: true\n    match: {project: NOPE}\n" ACTION
		      "  - name: b\n    stop: false\n" ACTION "  - name: c\n" ACTION,
		      base_event, "b,c");
}

static void test_rules__no_match_routes_nothing(void **state)
{
	struct rules *rs = load_ok("rules:\n  - name: a\n    match: {event: x}\n" ACTION);
	json_object *ev = parse_json(base_event);
	struct route_result rr;
	struct err e;
	(void)state;
	assert_int_equal(rules_route(rs, ev, &rr, &e), 0);
	assert_int_equal(rr.n, 0);
	assert_int_equal(rr.n_matched, 0);
	route_result_free(&rr);
	json_object_put(ev);
	rules_free(rs);
}

static void test_rules__many_matches_grow_the_result(void **state)
{
	char *text = malloc(64 * 1024);
	size_t used = 0;
	struct rules *rs;
	json_object *ev = parse_json(base_event);
	struct route_result rr;
	struct err e;
	(void)state;
	used += (size_t)snprintf(text, 64 * 1024, "rules:\n");
	for (int i = 0; i < 100; i++)
		used += (size_t)snprintf(text + used, 64 * 1024 - used,
					 "  - name: r%d\n    actions:\n"
					 "      - redis: {stream: \"s%d\"}\n"
					 "      - redis: {stream: \"t%d\"}\n",
					 i, i, i);
	rs = load_ok(text);
	assert_int_equal(rules_route(rs, ev, &rr, &e), 0);
	assert_int_equal(rr.n_matched, 100);
	assert_int_equal(rr.n, 200);
	assert_string_equal(rr.matched[99], "r99");
	assert_string_equal(rr.v[199].rule, "r99");
	assert_int_equal(rr.v[199].index, 1);
	route_result_free(&rr);
	rules_free(rs);
	json_object_put(ev);
	free(text);
}

static void test_rules__empty_rules_list_is_zero_rules(void **state)
{
	struct rules *rs = load_ok("rules: []\n");
	(void)state;
	assert_int_equal(rules_count(rs), 0);
	rules_free(rs);
	rs = load_ok("");
	assert_int_equal(rules_count(rs), 0);
	rules_free(rs);
}

/* ---- files and directories ----------------------------------------------- */

static char *make_dir(void)
{
	char *dir = strdup("/tmp/test_rules.XXXXXX");
	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void remove_dir(char *dir, const char *const *names)
{
	char path[512];

	for (size_t i = 0; names[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (remove(path) < 0)
			fail_msg("cannot remove %s", path);
	}
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

static void test_rules__directory_loads_yaml_files_in_name_order(void **state)
{
	static const char *const names[] = { "b.yaml",       "a.yml",    "10.yaml", "notes.txt",
					     ".hidden.yaml", "sub.yaml", NULL };
	char *dir = make_dir(), got[256], sub[512];
	struct errlist errs = ERRLIST_INIT;
	struct rules *rs;
	(void)state;
	write_file(dir, "b.yaml", "rules:\n  - name: b1\n" ACTION "  - name: b2\n" ACTION);
	write_file(dir, "a.yml", "rules:\n  - name: a1\n" ACTION);
	write_file(dir, "10.yaml", "rules:\n  - name: ten\n" ACTION);
	write_file(dir, "notes.txt", "rules:\n  - name: txt\n" ACTION);
	write_file(dir, ".hidden.yaml", "rules:\n  - name: hidden\n" ACTION);
	snprintf(sub, sizeof(sub), "%s/sub.yaml", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	assert_int_equal(rules_load(&rs, dir, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_int_equal(rules_count(rs), 4);
	route_names(rs, base_event, got, sizeof(got));
	assert_string_equal(got, "ten,a1,b1,b2");
	rules_free(rs);
	remove_dir(dir, names);
}

static void test_rules__directory_without_rule_files_is_zero_rules(void **state)
{
	static const char *const names[] = { "README", NULL };
	char *dir = make_dir();
	struct errlist errs = ERRLIST_INIT;
	struct rules *rs;
	(void)state;
	write_file(dir, "README", "not rules");
	assert_int_equal(rules_load(&rs, dir, &errs), 0);
	assert_int_equal(rules_count(rs), 0);
	rules_free(rs);
	remove_dir(dir, names);
}

static void test_rules__single_file_loads(void **state)
{
	static const char *const names[] = { "one.conf", NULL };
	char *dir = make_dir(), path[512];
	struct errlist errs = ERRLIST_INIT;
	struct rules *rs;
	(void)state;
	write_file(dir, "one.conf", "rules:\n  - name: only\n" ACTION);
	snprintf(path, sizeof(path), "%s/one.conf", dir);
	assert_int_equal(rules_load(&rs, path, &errs), 0);
	assert_int_equal(rules_count(rs), 1);
	rules_free(rs);
	remove_dir(dir, names);
}

static void test_rules__missing_path_is_an_error(void **state)
{
	struct errlist errs = ERRLIST_INIT;
	struct rules *rs = (struct rules *)1;
	(void)state;
	assert_int_equal(rules_load(&rs, "/nonexistent/rules.d", &errs), -1);
	assert_null(rs);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0], "/nonexistent/rules.d: No such file or directory");
	errlist_free(&errs);
}

static void test_rules__duplicate_names_across_files_name_both_positions(void **state)
{
	static const char *const names[] = { "a.yaml", "b.yaml", NULL };
	char *dir = make_dir(), want[1024];
	struct errlist errs = ERRLIST_INIT;
	struct rules *rs;
	(void)state;
	write_file(dir, "a.yaml", "rules:\n  - name: same\n" ACTION);
	write_file(dir, "b.yaml", "rules:\n  - name: other\n" ACTION "  - name:   same\n" ACTION);
	assert_int_equal(rules_load(&rs, dir, &errs), -1);
	assert_null(rs);
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want),
		 "%s/b.yaml:5:13: duplicate rule name 'same'; first defined at %s/a.yaml:2:11", dir,
		 dir);
	assert_string_equal(errs.msgs[0], want);
	errlist_free(&errs);
	remove_dir(dir, names);
}

static void test_rules__errors_in_every_file_are_reported(void **state)
{
	static const char *const names[] = { "a.yaml", "b.yaml", "c.yaml", NULL };
	char *dir = make_dir(), want[1024];
	struct errlist errs = ERRLIST_INIT;
	struct rules *rs;
	(void)state;
	write_file(dir, "a.yaml", "rules:\n  - name: a\n    stopp: true\n" ACTION);
	write_file(dir, "b.yaml", "rules: [\n");
	write_file(dir, "c.yaml", "rules:\n  - name: c\n    stop: maybe\n" ACTION);
	assert_int_equal(rules_load(&rs, dir, &errs), -1);
	assert_int_equal(errs.n, 3);
	snprintf(want, sizeof(want),
		 "%s/a.yaml:3:5: unknown key 'stopp' in rule 'a'; expected one of name, match, actions, stop",
		 dir);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s/b.yaml:2:1: YAML syntax error", dir);
	assert_memory_equal(errs.msgs[1], want, strlen(want));
	snprintf(want, sizeof(want), "%s/c.yaml:3:11: rule 'c': stop must be true or false", dir);
	assert_string_equal(errs.msgs[2], want);
	errlist_free(&errs);
	remove_dir(dir, names);
}

/* ---- load errors --------------------------------------------------------- */

static void test_rules__unknown_rule_key_is_an_error(void **state)
{
	(void)state;
	assert_load_errors(
		"rules:\n  - name: x\n    matchh: {}\n" ACTION,
		"t.yaml:3:5: unknown key 'matchh' in rule 'x'; expected one of name, match, actions, stop",
		NULL);
}

static void test_rules__unknown_top_level_key_is_an_error(void **state)
{
	(void)state;
	assert_load_errors("rulez: []\n", "t.yaml:1:1: unknown key 'rulez'; expected one of rules",
			   "t.yaml:1:1: missing the top-level key 'rules'", NULL);
}

static void test_rules__unknown_match_key_is_an_error(void **state)
{
	(void)state;
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      events: run.*\n" ACTION,
		"t.yaml:4:7: unknown key 'events' in rule 'x'; expected one of event, project, all, any, not",
		NULL);
}

static void test_rules__unknown_condition_key_is_an_error(void **state)
{
	(void)state;
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n"
		"      all:\n        - {field: a, eq: 1, flag: 2}\n" ACTION,
		"t.yaml:5:29: unknown key 'flag' in rule 'x'; expected one of field, eq, ne, in, gt, ge, lt, le, exists, matches",
		NULL);
}

static void test_rules__duplicate_key_is_an_error(void **state)
{
	(void)state;
	assert_load_errors("rules:\n  - name: x\n    stop: true\n    stop: false\n" ACTION,
			   "t.yaml:4:5: duplicate key 'stop' in rule 'x' (first at line 3)", NULL);
}

static void test_rules__missing_name_is_an_error(void **state)
{
	(void)state;
	assert_load_errors("rules:\n  - stop: true\n" ACTION, "t.yaml:2:5: a rule needs a name",
			   NULL);
	assert_load_errors("rules:\n  - name: \"\"\n" ACTION,
			   "t.yaml:2:11: name must be a non-empty string", NULL);
	assert_load_errors("rules:\n  - name: [a]\n" ACTION,
			   "t.yaml:2:11: name must be a non-empty string", NULL);
}

static void test_rules__name_longer_than_128_bytes_is_an_error(void **state)
{
	char text[1024], name[200];
	(void)state;
	memset(name, 'n', 129);
	name[129] = '\0';
	snprintf(text, sizeof(text), "rules:\n  - name: %s\n" ACTION, name);
	assert_load_errors(text, "t.yaml:2:11: name is longer than 128 bytes", NULL);
	name[128] = '\0';
	snprintf(text, sizeof(text), "rules:\n  - name: %s\n" ACTION, name);
	rules_free(load_ok(text));
}

static void test_rules__duplicate_name_in_one_file_is_an_error(void **state)
{
	(void)state;
	assert_load_errors("rules:\n  - name: x\n" ACTION "  - name: x\n" ACTION,
			   "t.yaml:5:11: duplicate rule name 'x'; first defined at t.yaml:2:11",
			   NULL);
}

static void test_rules__missing_or_empty_actions_is_an_error(void **state)
{
	(void)state;
	assert_load_errors("rules:\n  - name: x\n    stop: true\n",
			   "t.yaml:2:5: rule 'x': a rule needs actions: a non-empty list", NULL);
	assert_load_errors("rules:\n  - name: x\n    actions: []\n",
			   "t.yaml:3:14: rule 'x': actions must be a non-empty list", NULL);
	assert_load_errors("rules:\n  - name: x\n    actions: {redis: {stream: s}}\n",
			   "t.yaml:3:14: rule 'x': actions must be a non-empty list", NULL);
}

static void test_rules__unknown_action_kind_lists_the_kinds(void **state)
{
	(void)state;
	assert_load_errors(
		"rules:\n  - name: x\n    actions:\n      - kafka: {topic: t}\n",
		"t.yaml:4:9: rule 'x': unknown action kind 'kafka'; expected one of redis, exec, http, testomat, qasphere, testcenter",
		NULL);
}

static void test_rules__action_must_have_exactly_one_kind(void **state)
{
	(void)state;
	assert_load_errors(
		"rules:\n  - name: x\n    actions:\n"
		"      - redis: {stream: s}\n        exec: {}\n",
		"t.yaml:4:9: rule 'x': an action is a map with one key, its kind, like '- redis: {stream: ...}'",
		NULL);
	assert_load_errors(
		"rules:\n  - name: x\n    actions:\n      - redis\n",
		"t.yaml:4:9: rule 'x': an action is a map with one key, its kind, like '- redis: {stream: ...}'",
		NULL);
}

static void test_rules__action_parse_errors_are_reported(void **state)
{
	(void)state;
	assert_load_errors("rules:\n  - name: x\n    actions:\n"
			   "      - redis: {stream: s, maxlen: -1}\n"
			   "      - redis: {stream: \"{{a..b}}\"}\n",
			   "t.yaml:4:36: redis: maxlen must be a non-negative integer",
			   "t.yaml:5:25: redis: stream: invalid path 'a..b': empty segment", NULL);
}

static void test_rules__bad_regex_is_an_error_with_position(void **state)
{
	struct errlist errs = ERRLIST_INIT;
	const char *prefix = "t.yaml:5:39: rule 'x': invalid regular expression '(a': ";
	(void)state;
	load_bad("rules:\n  - name: x\n    match:\n      all:\n"
		 "        - {field: run.title, matches: \"(a\"}\n" ACTION,
		 &errs);
	assert_int_equal(errs.n, 1);
	assert_memory_equal(errs.msgs[0], prefix, strlen(prefix));
	errlist_free(&errs);
}

static void test_rules__overlong_regex_is_an_error(void **state)
{
	char text[4096];
	char re[1100];
	(void)state;
	memset(re, 'a', 1025);
	re[1025] = '\0';
	snprintf(text, sizeof(text),
		 "rules:\n  - name: x\n    match:\n"
		 "      not: {field: f, matches: %s}\n" ACTION,
		 re);
	assert_load_errors(text, "t.yaml:4:32: rule 'x': regular expression longer than 1024 bytes",
			   NULL);
	re[1024] = '\0';
	snprintf(text, sizeof(text),
		 "rules:\n  - name: x\n    match:\n"
		 "      not: {field: f, matches: %s}\n" ACTION,
		 re);
	rules_free(load_ok(text));
}

static void test_rules__condition_needs_field_and_one_operator(void **state)
{
	(void)state;
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      not: {field: a}\n" ACTION,
		"t.yaml:4:12: rule 'x': a condition needs one operator: eq, ne, in, gt, ge, lt, le, exists, matches",
		NULL);
	assert_load_errors("rules:\n  - name: x\n    match:\n      not: {eq: 1}\n" ACTION,
			   "t.yaml:4:12: rule 'x': a condition needs 'field: PATH'", NULL);
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      not: {field: a, gt: 1, lt: 5}\n" ACTION,
		"t.yaml:4:30: rule 'x': a condition takes one operator; found 'gt' and 'lt'", NULL);
}

static void test_rules__bad_field_path_is_an_error(void **state)
{
	(void)state;
	assert_load_errors("rules:\n  - name: x\n    match:\n      not: {field: a..b, eq: 1}\n" ACTION,
			   "t.yaml:4:20: rule 'x': field: invalid path 'a..b': empty segment", NULL);
	assert_load_errors("rules:\n  - name: x\n    match:\n      not: {field: [a], eq: 1}\n" ACTION,
			   "t.yaml:4:20: rule 'x': field needs a path like run.counts.failed", NULL);
}

static void test_rules__operator_values_are_checked(void **state)
{
	(void)state;
	assert_load_errors("rules:\n  - name: x\n    match:\n      not: {field: a, gt: true}\n" ACTION,
			   "t.yaml:4:27: rule 'x': gt needs a number or a string", NULL);
	assert_load_errors("rules:\n  - name: x\n    match:\n      not: {field: a, le: null}\n" ACTION,
			   "t.yaml:4:27: rule 'x': le needs a number or a string", NULL);
	assert_load_errors("rules:\n  - name: x\n    match:\n      not: {field: a, eq: [1]}\n" ACTION,
			   "t.yaml:4:27: rule 'x': eq needs a single value, not a list", NULL);
	assert_load_errors("rules:\n  - name: x\n    match:\n      not: {field: a, in: 1}\n" ACTION,
			   "t.yaml:4:27: rule 'x': in needs a non-empty list of values, not a scalar",
			   NULL);
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      not: {field: a, in: [1, {b: 2}]}\n" ACTION,
		"t.yaml:4:31: rule 'x': each item of in needs a single value, not a map", NULL);
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      not: {field: a, exists: yes}\n" ACTION,
		"t.yaml:4:31: rule 'x': exists needs true or false", NULL);
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      not: {field: a, matches: }\n" ACTION,
		"t.yaml:4:32: rule 'x': matches needs a regular expression, not null", NULL);
}

static void test_rules__group_shapes_are_checked(void **state)
{
	(void)state;
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      all: {field: a, eq: 1}\n" ACTION,
		"t.yaml:4:12: rule 'x': all needs a non-empty list of conditions, not a map", NULL);
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      any: []\n" ACTION,
		"t.yaml:4:12: rule 'x': any needs a non-empty list of conditions, not a list", NULL);
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      not: [{field: a, eq: 1}]\n" ACTION,
		"t.yaml:4:12: rule 'x': a condition must be a map like {field: PATH, eq: VALUE}, not a list",
		NULL);
	assert_load_errors("rules:\n  - name: x\n    match:\n      all: [{field: a, any: []}]\n" ACTION,
			   "t.yaml:4:24: rule 'x': 'any' must be the only key of its map", NULL);
	assert_load_errors("rules:\n  - name: x\n    match: [a]\n" ACTION,
			   "t.yaml:3:12: rule 'x': match must be a map, not a list", NULL);
}

static void test_rules__errors_inside_nested_groups_have_positions(void **state)
{
	(void)state;
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      any:\n"
		"        - all:\n"
		"            - not: {field: a, gt: true}\n"
		"        - {field: b, eq: 1, nope: 1}\n" ACTION,
		"t.yaml:6:35: rule 'x': gt needs a number or a string",
		"t.yaml:7:29: unknown key 'nope' in rule 'x'; expected one of field, eq, ne, in, gt, ge, lt, le, exists, matches",
		NULL);
}

static void test_rules__glob_values_are_checked(void **state)
{
	(void)state;
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      event: {a: b}\n" ACTION,
		"t.yaml:4:14: rule 'x': event needs a pattern or a non-empty list of patterns, not a map",
		NULL);
	assert_load_errors(
		"rules:\n  - name: x\n    match:\n      project: []\n" ACTION,
		"t.yaml:4:16: rule 'x': project needs a pattern or a non-empty list of patterns, not a list",
		NULL);
	assert_load_errors("rules:\n  - name: x\n    match:\n      project: [A, [B]]\n" ACTION,
			   "t.yaml:4:20: rule 'x': project patterns must be strings, not a list",
			   NULL);
	assert_load_errors("rules:\n  - name: x\n    match:\n      event: ~\n" ACTION,
			   "t.yaml:4:14: rule 'x': event patterns must be strings, not null", NULL);
}

static void test_rules__document_shape_is_checked(void **state)
{
	(void)state;
	assert_load_errors("- name: x\n", "t.yaml:1:1: expected a map with a top-level key 'rules'",
			   NULL);
	assert_load_errors("rules: {name: x}\n", "t.yaml:1:8: rules must be a list", NULL);
	assert_load_errors("rules:\n  - just a string\n",
			   "t.yaml:2:5: a rule must be a map with name, match, actions, stop", NULL);
}

static void test_rules__yaml_syntax_error_has_position(void **state)
{
	struct errlist errs = ERRLIST_INIT;
	const char *prefix = "t.yaml:3:3: YAML syntax error";
	(void)state;
	load_bad("rules:\n  - name: x\n  bad: [\n", &errs);
	assert_int_equal(errs.n, 1);
	if (strncmp(errs.msgs[0], prefix, strlen(prefix)) != 0)
		fail_msg("got %s", errs.msgs[0]);
	errlist_free(&errs);
}

static void test_rules__every_bad_rule_is_reported(void **state)
{
	(void)state;
	assert_load_errors(
		"rules:\n"
		"  - name: a\n    stop: 1\n" ACTION "  - name: ok\n" ACTION
		"  - name: b\n    match: {event: [x, 1], all: [{field: f}]}\n" ACTION
		"  - name: c\n    actions:\n      - nope: {}\n",
		"t.yaml:3:11: rule 'a': stop must be true or false",
		"t.yaml:10:34: rule 'b': a condition needs one operator: eq, ne, in, gt, ge, lt, le, exists, matches",
		"t.yaml:15:9: rule 'c': unknown action kind 'nope'; expected one of redis, exec, http, testomat, qasphere, testcenter",
		NULL);
}

static void test_rules__more_than_10000_rules_is_an_error(void **state)
{
	size_t cap = 10002 * 64, used = 0;
	char *text = malloc(cap);
	struct errlist errs = ERRLIST_INIT;
	(void)state;
	used += (size_t)snprintf(text, cap, "rules:\n");
	for (int i = 0; i < 10001; i++)
		used += (size_t)snprintf(text + used, cap - used,
					 "  - {name: r%d, actions: [redis: {stream: s}]}\n", i);
	load_bad(text, &errs);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0], "t.yaml:10002:5: more than 10000 rules");
	errlist_free(&errs);
	/* exactly 10000 is fine */
	*strstr(text, "  - {name: r10000") = '\0';
	rules_free(load_ok(text));
	free(text);
}

/* ---- families and lint (event families beyond run) ---------------------- */

static void test_rules__event_globs_match_every_family(void **state)
{
	static const char text[] =
		"rules:\n"
		"  - name: cases\n    match: { event: \"case.*\" }\n" ACTION
		"  - name: deletes\n    match: { event: \"*.deleted\" }\n" ACTION
		"  - name: steps\n    match: { event: [shared_step.created, plan.created] }\n" ACTION;

	(void)state;
	assert_routes(text, "{\"type\":\"case.created\",\"project\":\"ID\"}", "cases");
	assert_routes(text, "{\"type\":\"case.deleted\",\"project\":\"ID\"}", "cases,deletes");
	assert_routes(text, "{\"type\":\"run.deleted\",\"project\":\"ID\"}", "deletes");
	assert_routes(text, "{\"type\":\"shared_step.created\",\"project\":\"ID\"}", "steps");
	assert_routes(text, "{\"type\":\"review.merged\",\"project\":\"ID\"}", "");
}

/* The warnings of a load that succeeds, joined by newlines. */
static void assert_warnings(const char *text, const char *want)
{
	struct rules *rs = load_ok(text);
	const struct errlist *w = rules_warnings(rs);
	char got[2048] = "";
	size_t used = 0;

	for (size_t i = 0; i < w->n; i++)
		used += (size_t)snprintf(got + used, sizeof(got) - used, "%s%s", i ? "\n" : "",
					 w->msgs[i]);
	assert_string_equal(got, want);
	rules_free(rs);
}

static void test_rules__run_fields_on_other_families_warn_with_position(void **state)
{
	(void)state;
	assert_warnings(
		"rules:\n"
		"  - name: deletes\n"
		"    match:\n"
		"      event: \"*.deleted\"\n"
		"      all: [ {field: run.title, exists: true} ]\n"
		"    actions:\n"
		"      - redis: { stream: \"s:{{ run.counts.failed }}:{{run_id}}:{{project}}\" }\n",
		"t.yaml:5:22: warning: rule 'deletes': run.title is null on events other "
		"than run.* (match.event '*.deleted' matches them)\n"
		"t.yaml:7:26: warning: rule 'deletes': run.counts.failed is null on events "
		"other than run.* (match.event '*.deleted' matches them)\n"
		"t.yaml:7:26: warning: rule 'deletes': run_id is null on events "
		"other than run.* (match.event '*.deleted' matches them)");
	/* no event key: every family */
	assert_warnings(
		"rules:\n  - name: all\n    actions:\n      - redis: { stream: \"s:{{run.title}}\" }\n",
		"t.yaml:4:26: warning: rule 'all': run.title is null on events other than "
		"run.* (a rule without match.event matches them)");
}

static void test_rules__run_only_rules_and_other_fields_do_not_warn(void **state)
{
	(void)state;
	assert_warnings("rules:\n  - name: runs\n    match: { event: [\"run.*\", run.completed] }\n"
			"    actions:\n      - redis: { stream: \"s:{{run.title}}\" }\n",
			"");
	assert_warnings(
		"rules:\n  - name: cases\n    match: { event: \"case.*\", all: [ {field: raw.payload.title, exists: true} ] }\n"
		"    actions:\n      - redis: { stream: \"s:{{ raw.payload.id }}:{{entity_id}}:{{runner}}\" }\n",
		"");
}

static void test_rules__free_accepts_null(void **state)
{
	(void)state;
	rules_free(NULL);
	route_result_free(NULL);
}

/* ---- hardening (issue 15) ------------------------------------------------- */

/* A `matches` rule with the regex re (YAML single-quoted: no escapes). */
static void regex_rule(char *text, size_t len, const char *re)
{
	snprintf(text, len,
		 "rules:\n  - name: x\n    match:\n      all:\n"
		 "        - {field: run.title, matches: '%s'}\n" ACTION,
		 re);
}

static void test_rules__matches_refuses_backreferences(void **state)
{
	char text[2048];
	(void)state;
	/* the pattern: 800 characters of title held a delivery 11.7 s */
	regex_rule(text, sizeof(text), "^(a|aa)*(b|\\1)*c\\2$");
	assert_load_errors(text,
			   "t.yaml:5:39: rule 'x': regular expression '^(a|aa)*(b|\\1)*c\\2$': "
			   "the backreference '\\1' at offset 11 is not supported "
			   "(not regular: matching can take exponential time)",
			   NULL);
	/* an escaped backslash before it, and a bracket expression before it */
	regex_rule(text, sizeof(text), "(a)\\\\\\9");
	assert_load_errors(text,
			   "t.yaml:5:39: rule 'x': regular expression '(a)\\\\\\9': "
			   "the backreference '\\9' at offset 5 is not supported "
			   "(not regular: matching can take exponential time)",
			   NULL);
	regex_rule(text, sizeof(text), "(a)[]x[:alpha:]]\\1");
	assert_load_errors(text,
			   "t.yaml:5:39: rule 'x': regular expression '(a)[]x[:alpha:]]\\1': "
			   "the backreference '\\1' at offset 16 is not supported "
			   "(not regular: matching can take exponential time)",
			   NULL);
}

/* What is not a backreference stays allowed: an escaped backslash then a
 * digit, and a backslash inside a bracket expression (a literal there). */
static void test_rules__matches_allows_digits_after_escapes_and_in_brackets(void **state)
{
	static const char *const ok[] = {
		"\\\\1",      "[\\1]",      "[]\\1]", "[^]\\1]",      "[[:digit:]\\1]",
		"[[.-.]\\1]", "[[=a=]\\2]", "a\\.1",  "(a|b)\\{1\\}", NULL,
	};
	char text[2048];
	(void)state;
	for (size_t i = 0; ok[i]; i++) {
		regex_rule(text, sizeof(text), ok[i]);
		rules_free(load_ok(text));
	}
	/* and they mean what glibc means: \\1 is a backslash and a 1 */
	assert_true(cond_matches("{field: run.title, matches: '^a\\\\1$'}",
				 "{\"run\":{\"title\":\"a\\\\1\"}}"));
	assert_true(cond_matches("{field: run.title, matches: '^[\\1]+$'}",
				 "{\"run\":{\"title\":\"\\\\1\\\\\"}}"));
}

/* {"run":{"title":"<head><n times c><tail>"}}, malloc'd. */
static char *title_event(const char *head, size_t n, char c, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *s = malloc(hl + n + tl + 64), *w = s;

	assert_non_null(s);
	w += snprintf(w, 64, "{\"run\":{\"title\":\"%s", head);
	memset(w, c, n);
	w += n;
	snprintf(w, tl + 8, "%s\"}}", tail);
	return s;
}

static void test_rules__matches_reads_the_first_4096_bytes(void **state)
{
	char *ev;
	(void)state;
	/* 4096 a's then "END": only the prefix is matched, $ at its end */
	ev = title_event("", COND_MATCH_MAX, 'a', "END");
	assert_false(cond_matches("{field: run.title, matches: 'END'}", ev));
	assert_true(cond_matches("{field: run.title, matches: 'a$'}", ev));
	free(ev);
	/* exactly 4096 bytes: all of it */
	ev = title_event("", COND_MATCH_MAX - 3, 'a', "END");
	assert_true(cond_matches("{field: run.title, matches: 'END$'}", ev));
	free(ev);
	/* a character across the cut is left out whole, not split */
	ev = title_event("", COND_MATCH_MAX - 1, 'a', "\xc3\xa9zz");
	assert_true(cond_matches("{field: run.title, matches: '^a*$'}", ev));
	free(ev);
}

/* The attack without its backreference: a huge title is matched
 * by its prefix, in well under the time it took (11.7 s for 800 bytes). */
static void test_rules__matches_on_a_huge_title_is_quick(void **state)
{
	char *ev = title_event("", 1 << 20, 'a', "");
	struct timespec t0, t1;
	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_false(cond_matches("{field: run.title, matches: '^(a|aa)*(b|a)*c$'}", ev));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("  1 MiB title: %.3f s\n", s);
	assert_true(s < 1.0);
	free(ev);
}

static void test_rules__nul_byte_in_a_rules_file_is_an_error_with_position(void **state)
{
	static const char *const names[] = { "r.yaml", NULL };
	static const char text[] = "rules:\n  - name: a\n" ACTION "  \0- name: b\n    bad: [\n";
	char *dir = make_dir(), path[512], want[600];
	struct errlist errs = ERRLIST_INIT;
	struct rules *rs = (struct rules *)1;
	FILE *f;
	(void)state;
	snprintf(path, sizeof(path), "%s/r.yaml", dir);
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(text, 1, sizeof(text) - 1, f), sizeof(text) - 1);
	fclose(f);
	assert_int_equal(rules_load(&rs, path, &errs), -1);
	assert_null(rs);
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s:5:3: a NUL byte: a YAML file is text and cannot hold one",
		 path);
	assert_string_equal(errs.msgs[0], want);
	errlist_free(&errs);
	remove_dir(dir, names);
}

static void test_rules__nul_escape_in_a_value_is_an_error(void **state)
{
	(void)state;
	assert_load_errors("rules:\n  - name: \"a\\0b\"\n" ACTION,
			   "t.yaml:2:11: a NUL character (\"\\0\") in a value is not allowed", NULL);
	assert_load_errors("rules:\n  - name: a\n    actions:\n"
			   "      - redis: { stream: \"s\\x00{{project}}\" }\n",
			   "t.yaml:4:26: a NUL character (\"\\0\") in a value is not allowed", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules__matches_refuses_backreferences),
		cmocka_unit_test(test_rules__matches_allows_digits_after_escapes_and_in_brackets),
		cmocka_unit_test(test_rules__matches_reads_the_first_4096_bytes),
		cmocka_unit_test(test_rules__matches_on_a_huge_title_is_quick),
		cmocka_unit_test(test_rules__nul_byte_in_a_rules_file_is_an_error_with_position),
		cmocka_unit_test(test_rules__nul_escape_in_a_value_is_an_error),
		cmocka_unit_test(test_rules__eq_compares_strings_exactly),
		cmocka_unit_test(test_rules__eq_compares_numbers_across_int_and_double),
		cmocka_unit_test(test_rules__eq_int_vs_double_is_exact_for_big_ints),
		cmocka_unit_test(test_rules__eq_quoted_number_is_a_string),
		cmocka_unit_test(test_rules__eq_compares_booleans),
		cmocka_unit_test(test_rules__eq_null_matches_null_and_missing),
		cmocka_unit_test(test_rules__eq_on_missing_field_is_false),
		cmocka_unit_test(test_rules__eq_on_objects_is_false),
		cmocka_unit_test(test_rules__ne_is_the_negation_of_eq),
		cmocka_unit_test(test_rules__in_is_eq_against_any_item),
		cmocka_unit_test(test_rules__gt_ge_lt_le_compare_numbers),
		cmocka_unit_test(test_rules__order_compares_int_with_double),
		cmocka_unit_test(test_rules__order_compares_strings_bytewise),
		cmocka_unit_test(test_rules__order_across_kinds_or_missing_is_false),
		cmocka_unit_test(test_rules__exists_tells_present_from_missing),
		cmocka_unit_test(test_rules__matches_applies_an_extended_regex),
		cmocka_unit_test(test_rules__matches_converts_numbers_to_text),
		cmocka_unit_test(test_rules__matches_missing_null_bool_is_false),
		cmocka_unit_test(test_rules__array_items_are_reachable_by_index),
		cmocka_unit_test(test_rules__all_requires_every_condition),
		cmocka_unit_test(test_rules__any_requires_one_condition),
		cmocka_unit_test(test_rules__not_negates_a_condition),
		cmocka_unit_test(test_rules__match_keys_are_and_ed),
		cmocka_unit_test(test_rules__groups_nest),
		cmocka_unit_test(test_rules__no_match_section_matches_everything),
		cmocka_unit_test(test_rules__event_glob_matches_the_type),
		cmocka_unit_test(test_rules__event_list_matches_any_glob),
		cmocka_unit_test(test_rules__event_filter_never_matches_an_event_without_type),
		cmocka_unit_test(test_rules__project_glob_and_list),
		cmocka_unit_test(test_rules__project_filter_never_matches_a_null_project),
		cmocka_unit_test(test_rules__actions_fan_out_in_rule_order),
		cmocka_unit_test(test_rules__stop_true_skips_later_rules),
		cmocka_unit_test(test_rules__stop_on_a_rule_that_does_not_match_is_ignored),
		cmocka_unit_test(test_rules__no_match_routes_nothing),
		cmocka_unit_test(test_rules__many_matches_grow_the_result),
		cmocka_unit_test(test_rules__empty_rules_list_is_zero_rules),
		cmocka_unit_test(test_rules__directory_loads_yaml_files_in_name_order),
		cmocka_unit_test(test_rules__directory_without_rule_files_is_zero_rules),
		cmocka_unit_test(test_rules__single_file_loads),
		cmocka_unit_test(test_rules__missing_path_is_an_error),
		cmocka_unit_test(test_rules__duplicate_names_across_files_name_both_positions),
		cmocka_unit_test(test_rules__errors_in_every_file_are_reported),
		cmocka_unit_test(test_rules__unknown_rule_key_is_an_error),
		cmocka_unit_test(test_rules__unknown_top_level_key_is_an_error),
		cmocka_unit_test(test_rules__unknown_match_key_is_an_error),
		cmocka_unit_test(test_rules__unknown_condition_key_is_an_error),
		cmocka_unit_test(test_rules__duplicate_key_is_an_error),
		cmocka_unit_test(test_rules__missing_name_is_an_error),
		cmocka_unit_test(test_rules__name_longer_than_128_bytes_is_an_error),
		cmocka_unit_test(test_rules__duplicate_name_in_one_file_is_an_error),
		cmocka_unit_test(test_rules__missing_or_empty_actions_is_an_error),
		cmocka_unit_test(test_rules__unknown_action_kind_lists_the_kinds),
		cmocka_unit_test(test_rules__action_must_have_exactly_one_kind),
		cmocka_unit_test(test_rules__action_parse_errors_are_reported),
		cmocka_unit_test(test_rules__bad_regex_is_an_error_with_position),
		cmocka_unit_test(test_rules__overlong_regex_is_an_error),
		cmocka_unit_test(test_rules__condition_needs_field_and_one_operator),
		cmocka_unit_test(test_rules__bad_field_path_is_an_error),
		cmocka_unit_test(test_rules__operator_values_are_checked),
		cmocka_unit_test(test_rules__group_shapes_are_checked),
		cmocka_unit_test(test_rules__errors_inside_nested_groups_have_positions),
		cmocka_unit_test(test_rules__glob_values_are_checked),
		cmocka_unit_test(test_rules__document_shape_is_checked),
		cmocka_unit_test(test_rules__yaml_syntax_error_has_position),
		cmocka_unit_test(test_rules__every_bad_rule_is_reported),
		cmocka_unit_test(test_rules__more_than_10000_rules_is_an_error),
		cmocka_unit_test(test_rules__event_globs_match_every_family),
		cmocka_unit_test(test_rules__run_fields_on_other_families_warn_with_position),
		cmocka_unit_test(test_rules__run_only_rules_and_other_fields_do_not_warn),
		cmocka_unit_test(test_rules__free_accepts_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
