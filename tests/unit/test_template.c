/* template: compiling "{{path}}" templates and rendering them raw or
 * JSON-escaped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rules/template.h"

static const char event_json[] =
	"{\"project\":\"DEMO\",\"run_id\":42,\"neg\":-7,\"ratio\":0.5,"
	"\"big\":1e3,\"huge\":18446744073709551615,\"ok\":true,\"bad\":false,"
	"\"plan\":null,\"run\":{\"title\":\"Nightly\",\"counts\":{\"failed\":3}},"
	"\"tags\":[\"a\",1,null],\"url\":\"https://x/y\","
	"\"quote\":\"say \\\"hi\\\"\",\"backslash\":\"C:\\\\dir\","
	"\"multi\":\"line1\\nline2\\ttab\\r\",\"ctl\":\"\\u0001\\u001f\\u007f\","
	"\"nul\":\"a\\u0000b\",\"utf8\":\"h\\u00e9llo \\u20ac\","
	"\"shell\":\"\\\"; rm -rf / #\",\"subst\":\"$(id)\",\"dots\":\"../..\","
	"\"tick\":\"`id` & | > <\",\"braces\":\"{{project}}\"}";

static json_object *event(void)
{
	json_object *ev = json_tokener_parse(event_json);
	assert_non_null(ev);
	return ev;
}

/* Renders src against the test event; the result is freed by the caller. */
static char *render_max(const char *src, enum tmpl_escape esc, size_t max)
{
	struct tmpl *t = NULL;
	struct err e = { 0 };
	json_object *ev = event();
	char *out;

	if (tmpl_compile(&t, src, &e) < 0)
		fail_msg("compile '%s': %s", src, e.msg);
	out = tmpl_render(t, ev, esc, max);
	assert_non_null(out);
	tmpl_free(t);
	json_object_put(ev);
	return out;
}

static void assert_renders(const char *src, enum tmpl_escape esc,
			   const char *want)
{
	char *got = render_max(src, esc, 0);
	assert_string_equal(got, want);
	free(got);
}

static void assert_rejected(const char *src)
{
	struct tmpl *t = (struct tmpl *)1;
	struct err e = { 0 };
	assert_int_equal(tmpl_compile(&t, src, &e), -1);
	assert_null(t);
	assert_true(strlen(e.msg) > 0);
}

static void test_template__constant_renders_verbatim(void **state)
{
	struct tmpl *t;
	struct err e;
	(void)state;
	assert_int_equal(tmpl_compile(&t, "runbridge:events", &e), 0);
	assert_true(tmpl_is_constant(t));
	assert_string_equal(tmpl_source(t), "runbridge:events");
	tmpl_free(t);
	assert_renders("runbridge:events", TMPL_RAW, "runbridge:events");
	assert_renders("", TMPL_RAW, "");
}

static void test_template__path_is_not_constant(void **state)
{
	struct tmpl *t;
	struct err e;
	(void)state;
	assert_int_equal(tmpl_compile(&t, "runbridge:{{project}}", &e), 0);
	assert_false(tmpl_is_constant(t));
	assert_string_equal(tmpl_source(t), "runbridge:{{project}}");
	tmpl_free(t);
}

static void test_template__string_field_is_substituted(void **state)
{
	(void)state;
	assert_renders("runbridge:{{project}}", TMPL_RAW, "runbridge:DEMO");
	assert_renders("{{project}}/{{run.title}}!", TMPL_RAW, "DEMO/Nightly!");
}

static void test_template__spaces_inside_braces_are_allowed(void **state)
{
	(void)state;
	assert_renders("[{{ run.title }}]", TMPL_RAW, "[Nightly]");
	assert_renders("[{{\trun.title  }}]", TMPL_RAW, "[Nightly]");
}

static void test_template__lone_braces_are_literal(void **state)
{
	(void)state;
	assert_renders("{a} }} {", TMPL_RAW, "{a} }} {");
}

static void test_template__integers_render_in_decimal(void **state)
{
	(void)state;
	assert_renders("{{run_id}} {{neg}} {{run.counts.failed}}", TMPL_RAW,
		       "42 -7 3");
	assert_renders("{{huge}}", TMPL_RAW, "18446744073709551615");
}

static void test_template__doubles_render_as_json_c_prints_them(void **state)
{
	(void)state;
	assert_renders("{{ratio}} {{big}}", TMPL_RAW, "0.5 1e3");
}

static void test_template__booleans_render_as_true_false(void **state)
{
	(void)state;
	assert_renders("{{ok}}/{{bad}}", TMPL_RAW, "true/false");
}

static void test_template__null_and_missing_render_empty(void **state)
{
	(void)state;
	assert_renders("[{{plan}}][{{nope}}][{{run.nope.deeper}}]", TMPL_RAW,
		       "[][][]");
	assert_renders("[{{plan}}][{{nope}}]", TMPL_JSON, "[][]");
}

static void test_template__objects_and_arrays_render_compact(void **state)
{
	(void)state;
	assert_renders("{{run}}", TMPL_RAW,
		       "{\"title\":\"Nightly\",\"counts\":{\"failed\":3}}");
	assert_renders("{{tags}}", TMPL_RAW, "[\"a\",1,null]");
}

static void test_template__array_index_in_path(void **state)
{
	(void)state;
	assert_renders("{{tags.0}}{{tags.1}}{{tags.9}}", TMPL_RAW, "a1");
}

static void test_template__slashes_are_not_escaped(void **state)
{
	(void)state;
	assert_renders("{{url}}", TMPL_RAW, "https://x/y");
	assert_renders("{{url}}", TMPL_JSON, "https://x/y");
}

static void test_template__json_escapes_quotes_and_backslashes(void **state)
{
	(void)state;
	assert_renders("{{quote}}", TMPL_JSON, "say \\\"hi\\\"");
	assert_renders("{{backslash}}", TMPL_JSON, "C:\\\\dir");
}

static void test_template__json_escapes_newlines_and_control_chars(void **state)
{
	(void)state;
	assert_renders("{{multi}}", TMPL_JSON,
		       "line1\\u000aline2\\u0009tab\\u000d");
	/* DEL is not a control character for JSON */
	assert_renders("{{ctl}}", TMPL_JSON, "\\u0001\\u001f\x7f");
}

static void test_template__json_escapes_a_nul_byte(void **state)
{
	(void)state;
	assert_renders("{{nul}}", TMPL_JSON, "a\\u0000b");
}

static void test_template__raw_value_stops_at_a_nul_byte(void **state)
{
	(void)state;
	assert_renders("[{{nul}}]", TMPL_RAW, "[a]");
}

static void test_template__json_escapes_objects_as_string_content(void **state)
{
	(void)state;
	assert_renders("{\"run\":\"{{run}}\"}", TMPL_JSON,
		       "{\"run\":\"{\\\"title\\\":\\\"Nightly\\\",\\\"counts\\\":{\\\"failed\\\":3}}\"}");
}

static void test_template__json_result_parses_back_to_the_value(void **state)
{
	char *got = render_max("{\"v\":\"{{shell}}{{multi}}{{ctl}}{{quote}}\"}",
			       TMPL_JSON, 0);
	json_object *o = json_tokener_parse(got), *v;
	(void)state;
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "v", &v));
	assert_string_equal(json_object_get_string(v),
			    "\"; rm -rf / #line1\nline2\ttab\r\x01\x1f\x7fsay \"hi\"");
	json_object_put(o);
	free(got);
}

static void test_template__json_keeps_utf8_text(void **state)
{
	(void)state;
	assert_renders("{{utf8}}", TMPL_JSON, "h\xc3\xa9llo \xe2\x82\xac");
}

static void test_template__json_replaces_invalid_utf8(void **state)
{
	json_object *ev = json_object_new_object();
	struct tmpl *t;
	struct err e;
	char *got;
	(void)state;
	json_object_object_add(ev, "v", json_object_new_string("a\xff" "b\xc3"));
	assert_int_equal(tmpl_compile(&t, "{{v}}", &e), 0);
	got = tmpl_render(t, ev, TMPL_JSON, 0);
	assert_string_equal(got, "a\\ufffdb\\ufffd");
	free(got);
	got = tmpl_render(t, ev, TMPL_RAW, 0);
	assert_string_equal(got, "a\xff" "b\xc3");
	free(got);
	tmpl_free(t);
	json_object_put(ev);
}

static void test_template__literal_text_is_not_escaped(void **state)
{
	(void)state;
	assert_renders("\"{{project}}\"\n", TMPL_JSON, "\"DEMO\"\n");
}

static void test_template__raw_renders_hostile_values_verbatim(void **state)
{
	(void)state;
	assert_renders("{{shell}}", TMPL_RAW, "\"; rm -rf / #");
	assert_renders("{{subst}}", TMPL_RAW, "$(id)");
	assert_renders("{{dots}}", TMPL_RAW, "../..");
	assert_renders("{{tick}}", TMPL_RAW, "`id` & | > <");
}

static void test_template__values_are_not_expanded_again(void **state)
{
	(void)state;
	assert_renders("{{braces}}", TMPL_RAW, "{{project}}");
}

static void test_template__unclosed_braces_are_rejected(void **state)
{
	(void)state;
	assert_rejected("runbridge:{{project");
	assert_rejected("{{project}} and {{");
}

static void test_template__empty_or_invalid_paths_are_rejected(void **state)
{
	(void)state;
	assert_rejected("{{}}");
	assert_rejected("{{   }}");
	assert_rejected("{{run..title}}");
	assert_rejected("{{.run}}");
	assert_rejected("{{run title}}");
	assert_rejected("{{{project}}}");
}

static void test_template__output_is_capped(void **state)
{
	char *got = render_max("runbridge:{{project}}:tail", TMPL_RAW, 12);
	(void)state;
	assert_string_equal(got, "runbridge:DE");
	free(got);
}

static void test_template__cap_never_splits_a_character(void **state)
{
	/* "h" + 2-byte é: a cap of 2 leaves only "h" */
	char *got = render_max("{{utf8}}", TMPL_RAW, 2);
	(void)state;
	assert_string_equal(got, "h");
	free(got);
}

static void test_template__cap_never_splits_an_escape(void **state)
{
	/* "say \"hi\"": after "say " the 2-byte \" does not fit in 5 */
	char *got = render_max("{{quote}}", TMPL_JSON, 5);
	(void)state;
	assert_string_equal(got, "say ");
	free(got);
}

static void test_template__default_cap_is_one_mebibyte(void **state)
{
	size_t n = 3u << 20;
	char *big = malloc(n + 1);
	json_object *ev = json_object_new_object();
	struct tmpl *t;
	struct err e;
	char *got;
	(void)state;
	memset(big, 'x', n);
	big[n] = '\0';
	json_object_object_add(ev, "big", json_object_new_string(big));
	assert_int_equal(tmpl_compile(&t, "{{big}}", &e), 0);
	got = tmpl_render(t, ev, TMPL_RAW, 0);
	assert_int_equal(strlen(got), 1u << 20);
	free(got);
	tmpl_free(t);
	json_object_put(ev);
	free(big);
}

static void test_template__null_event_renders_fields_empty(void **state)
{
	struct tmpl *t;
	struct err e;
	char *got;
	(void)state;
	assert_int_equal(tmpl_compile(&t, "a{{x}}b", &e), 0);
	got = tmpl_render(t, NULL, TMPL_RAW, 0);
	assert_string_equal(got, "ab");
	free(got);
	tmpl_free(t);
}

static void test_template__free_accepts_null(void **state)
{
	(void)state;
	tmpl_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_template__constant_renders_verbatim),
		cmocka_unit_test(test_template__path_is_not_constant),
		cmocka_unit_test(test_template__string_field_is_substituted),
		cmocka_unit_test(test_template__spaces_inside_braces_are_allowed),
		cmocka_unit_test(test_template__lone_braces_are_literal),
		cmocka_unit_test(test_template__integers_render_in_decimal),
		cmocka_unit_test(test_template__doubles_render_as_json_c_prints_them),
		cmocka_unit_test(test_template__booleans_render_as_true_false),
		cmocka_unit_test(test_template__null_and_missing_render_empty),
		cmocka_unit_test(test_template__objects_and_arrays_render_compact),
		cmocka_unit_test(test_template__array_index_in_path),
		cmocka_unit_test(test_template__slashes_are_not_escaped),
		cmocka_unit_test(test_template__json_escapes_quotes_and_backslashes),
		cmocka_unit_test(test_template__json_escapes_newlines_and_control_chars),
		cmocka_unit_test(test_template__json_escapes_a_nul_byte),
		cmocka_unit_test(test_template__raw_value_stops_at_a_nul_byte),
		cmocka_unit_test(test_template__json_escapes_objects_as_string_content),
		cmocka_unit_test(test_template__json_result_parses_back_to_the_value),
		cmocka_unit_test(test_template__json_keeps_utf8_text),
		cmocka_unit_test(test_template__json_replaces_invalid_utf8),
		cmocka_unit_test(test_template__literal_text_is_not_escaped),
		cmocka_unit_test(test_template__raw_renders_hostile_values_verbatim),
		cmocka_unit_test(test_template__values_are_not_expanded_again),
		cmocka_unit_test(test_template__unclosed_braces_are_rejected),
		cmocka_unit_test(test_template__empty_or_invalid_paths_are_rejected),
		cmocka_unit_test(test_template__output_is_capped),
		cmocka_unit_test(test_template__cap_never_splits_a_character),
		cmocka_unit_test(test_template__cap_never_splits_an_escape),
		cmocka_unit_test(test_template__default_cap_is_one_mebibyte),
		cmocka_unit_test(test_template__null_event_renders_fields_empty),
		cmocka_unit_test(test_template__free_accepts_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
