/* template: compiling "{{path}}" templates and rendering them raw or
 * JSON-escaped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

static void assert_renders(const char *src, enum tmpl_escape esc, const char *want)
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
	assert_renders("{{run_id}} {{neg}} {{run.counts.failed}}", TMPL_RAW, "42 -7 3");
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
	assert_renders("[{{plan}}][{{nope}}][{{run.nope.deeper}}]", TMPL_RAW, "[][][]");
	assert_renders("[{{plan}}][{{nope}}]", TMPL_JSON, "[][]");
}

static void test_template__objects_and_arrays_render_compact(void **state)
{
	(void)state;
	assert_renders("{{run}}", TMPL_RAW, "{\"title\":\"Nightly\",\"counts\":{\"failed\":3}}");
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
	assert_renders("{{multi}}", TMPL_JSON, "line1\\u000aline2\\u0009tab\\u000d");
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
	assert_renders(
		"{\"run\":\"{{run}}\"}", TMPL_JSON,
		"{\"run\":\"{\\\"title\\\":\\\"Nightly\\\",\\\"counts\\\":{\\\"failed\\\":3}}\"}");
}

static void test_template__json_result_parses_back_to_the_value(void **state)
{
	char *got = render_max("{\"v\":\"{{shell}}{{multi}}{{ctl}}{{quote}}\"}", TMPL_JSON, 0);
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
	json_object_object_add(ev, "v",
			       json_object_new_string("a\xff"
						      "b\xc3"));
	assert_int_equal(tmpl_compile(&t, "{{v}}", &e), 0);
	got = tmpl_render(t, ev, TMPL_JSON, 0);
	assert_string_equal(got, "a\\ufffdb\\ufffd");
	free(got);
	got = tmpl_render(t, ev, TMPL_RAW, 0);
	assert_string_equal(got, "a\xff"
				 "b\xc3");
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

/* ---- sections ------------------------------------------------------------ */

static const char list_json[] =
	"{\"project\":\"DEMO\",\"run\":{\"title\":\"Nightly\"},"
	"\"results\":{\"failed\":["
	"{\"title\":\"Login \\\"works\\\"\",\"suite\":\"Auth / Web\",\"message\":null},"
	"{\"title\":\"Logout\\n\",\"suite\":\"Auth\",\"project\":\"OTHER\"}],"
	"\"empty\":[],\"none\":null,\"no\":false,\"zero\":0,\"blank\":\"\"},"
	"\"message\":\"event message\",\"tags\":[\"a\",1,null],"
	"\"suites\":[{\"name\":\"S1\",\"cases\":[{\"t\":\"c1\"},{\"t\":\"c2\"}]},"
	"{\"name\":\"S2\",\"cases\":[]}]}";

static char *render_on(const char *src, const char *event_text, enum tmpl_escape esc, size_t max)
{
	struct tmpl *t = NULL;
	struct err e = { 0 };
	json_object *ev = json_tokener_parse(event_text);
	char *out;

	assert_non_null(ev);
	if (tmpl_compile(&t, src, &e) < 0)
		fail_msg("compile '%s': %s", src, e.msg);
	out = tmpl_render(t, ev, esc, max);
	assert_non_null(out);
	tmpl_free(t);
	json_object_put(ev);
	return out;
}

static void assert_list_renders(const char *src, enum tmpl_escape esc, const char *want)
{
	char *got = render_on(src, list_json, esc, 0);
	if (strcmp(got, want) != 0)
		fail_msg("%s\n got: %s\nwant: %s", src, got, want);
	free(got);
}

/* Refused with exactly the message want. */
static void assert_compile_error(const char *src, const char *want)
{
	struct tmpl *t = (struct tmpl *)1;
	struct err e = { 0 };

	assert_int_equal(tmpl_compile(&t, src, &e), -1);
	assert_null(t);
	if (strcmp(e.msg, want) != 0)
		fail_msg("%s\n got: %s\nwant: %s", src, e.msg, want);
}

static void test_template__section_repeats_for_each_item(void **state)
{
	(void)state;
	assert_list_renders("{{#results.failed}}- {{title}} ({{suite}});{{/results.failed}}",
			    TMPL_RAW, "- Login \"works\" (Auth / Web);- Logout\n (Auth);");
	assert_list_renders("[{{#suites}}{{name}}:{{#cases}}{{t}},{{/cases}};{{/suites}}]",
			    TMPL_RAW, "[S1:c1,c2,;S2:;]");
}

static void test_template__names_resolve_in_the_item_then_outwards(void **state)
{
	(void)state;
	/* the item's project, else the event's; a null in the item is the
	 * item's (empty), not the event's message */
	assert_list_renders("{{#results.failed}}{{project}}/{{message}}|{{/results.failed}}",
			    TMPL_RAW, "DEMO/|OTHER/event message|");
	/* a case has no name: its suite's */
	assert_list_renders("{{#suites}}{{#cases}}{{name}}.{{t}}@{{run.title}} {{/cases}}{{/suites}}",
			    TMPL_RAW, "S1.c1@Nightly S1.c2@Nightly ");
}

static void test_template__dot_is_the_current_item(void **state)
{
	char *got;
	(void)state;
	assert_list_renders("{{#tags}}[{{.}}]{{/tags}}", TMPL_RAW, "[a][1][]");
	assert_list_renders("{{# tags }}[{{ . }}]{{ /tags }}", TMPL_RAW, "[a][1][]");
	/* outside a section: the event itself */
	got = render_on("{{.}}", "{\"a\":1}", TMPL_RAW, 0);
	assert_string_equal(got, "{\"a\":1}");
	free(got);
}

static void test_template__inverted_section_renders_for_falsy_values(void **state)
{
	(void)state;
	assert_list_renders("{{^results.empty}}none{{/results.empty}}", TMPL_RAW, "none");
	assert_list_renders("{{^results.missing}}none{{/results.missing}}", TMPL_RAW, "none");
	assert_list_renders("{{^results.none}}none{{/results.none}}", TMPL_RAW, "none");
	assert_list_renders("{{^results.no}}none{{/results.no}}", TMPL_RAW, "none");
	assert_list_renders("{{^results.zero}}none{{/results.zero}}", TMPL_RAW, "none");
	assert_list_renders("{{^results.blank}}none{{/results.blank}}", TMPL_RAW, "none");
	assert_list_renders("{{^results.failed}}none{{/results.failed}}", TMPL_RAW, "");
	assert_list_renders("{{^run}}none{{/run}}", TMPL_RAW, "");
	/* and a section over them renders nothing */
	assert_list_renders("{{#results.empty}}x{{/results.empty}}{{#results.none}}x{{/results.none}}"
			    "{{#results.no}}x{{/results.no}}{{#results.zero}}x{{/results.zero}}"
			    "{{#results.missing}}x{{/results.missing}}",
			    TMPL_RAW, "");
}

static void test_template__truthy_value_that_is_not_a_list_renders_once(void **state)
{
	(void)state;
	assert_list_renders("{{#run}}<{{title}}>{{/run}}", TMPL_RAW, "<Nightly>");
	assert_list_renders("{{#run.title}}<{{.}}>{{/run.title}}", TMPL_RAW, "<Nightly>");
	assert_list_renders("{{#results.failed.1}}{{title}}{{/results.failed.1}}", TMPL_RAW,
			    "Logout\n");
}

static void test_template__json_escaping_holds_inside_sections(void **state)
{
	(void)state;
	assert_list_renders("{{#results.failed}}{{title}};{{/results.failed}}", TMPL_JSON,
			    "Login \\\"works\\\";Logout\\u000a;");
}

static void test_template__section_output_is_capped(void **state)
{
	char *got = render_on("{{#results.failed}}{{title}};{{/results.failed}}", list_json,
			      TMPL_JSON, 12);
	(void)state;
	/* "Login \"works" is 13 bytes: the cut is before the escape */
	assert_string_equal(got, "Login \\\"work");
	free(got);
}

static void test_template__section_errors_name_line_and_column(void **state)
{
	(void)state;
	assert_compile_error(
		"a {{#results.failed}} {{title}}",
		"section '{{#results.failed}}' at line 1, column 3 has no closing '{{/results.failed}}'");
	assert_compile_error("line one\n  {{^ a }}x",
			     "section '{{^a}}' at line 2, column 3 has no closing '{{/a}}'");
	assert_compile_error(
		"{{#a}}{{#b}}{{/a}}{{/b}}",
		"'{{/a}}' at line 1, column 13 does not close '{{#b}}' (line 1, column 7)");
	assert_compile_error("x\n{{/a}}", "'{{/a}}' at line 2, column 1 closes no section");
	assert_compile_error("ab\ncd {{project", "'{{' at line 2, column 4 has no closing '}}'");
	assert_compile_error("{{#}}x{{/}}", "empty path in template at line 1, column 1 ('{{#}}')");
	assert_rejected("{{#a b}}{{/a b}}");
	assert_rejected("{{#a..b}}{{/a..b}}");
}

static void test_template__sections_nest_at_most_eight_deep(void **state)
{
	struct tmpl *t;
	struct err e = { 0 };
	(void)state;
	assert_int_equal(tmpl_compile(&t,
				      "{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}"
				      "{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}",
				      &e),
			 0);
	tmpl_free(t);
	assert_compile_error("{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{^a}}"
			     "{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}",
			     "section at line 1, column 49 nests deeper than 8 sections");
}

static void test_template__section_alone_is_not_constant(void **state)
{
	struct tmpl *t;
	struct err e;
	(void)state;
	assert_int_equal(tmpl_compile(&t, "{{#a}}x{{/a}}", &e), 0);
	assert_false(tmpl_is_constant(t));
	tmpl_free(t);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* {"big": [0, 1, ..., n - 1]} */
static json_object *big_list(int n)
{
	json_object *ev = json_object_new_object(), *a = json_object_new_array();

	for (int i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int(i));
	json_object_object_add(ev, "big", a);
	return ev;
}

static void render_timed(const char *src, json_object *ev, size_t max, size_t want_len)
{
	struct tmpl *t;
	struct err e = { 0 };
	double t0;
	char *got;

	assert_int_equal(tmpl_compile(&t, src, &e), 0);
	t0 = now_s();
	got = tmpl_render(t, ev, TMPL_RAW, max);
	if (now_s() - t0 > 2.0)
		fail_msg("%s took %.1f s", src, now_s() - t0);
	assert_int_equal(strlen(got), want_len);
	free(got);
	tmpl_free(t);
}

static void test_template__hostile_nested_lists_stop_quickly(void **state)
{
	json_object *ev = big_list(10000);
	(void)state;
	/* 10^8 items: stops at the cap */
	render_timed("{{#big}}{{#big}}x{{/big}}{{/big}}", ev, 1000, 1000);
	/* 10^8 items writing nothing: stops at the step budget */
	render_timed("{{#big}}{{#big}}{{/big}}{{/big}}", ev, 0, 0);
	render_timed("{{#big}}{{#big}}{{^big}}x{{/big}}{{/big}}{{/big}}", ev, 0, 0);
	/* an honest list of 10,000 is rendered whole */
	render_timed("{{#big}}x{{/big}}", ev, 0, 10000);
	json_object_put(ev);
}

/* ---- URLs ----------------------------------------------------------------- */

static char *render_url(const char *src, const char *event_text, size_t max)
{
	struct tmpl *t = NULL;
	struct err e = { 0 };
	json_object *ev = json_tokener_parse(event_text);
	char *out;

	assert_non_null(ev);
	if (tmpl_compile_url(&t, src, &e) < 0)
		fail_msg("compile '%s': %s", src, e.msg);
	out = tmpl_render(t, ev, TMPL_URL, max);
	assert_non_null(out);
	tmpl_free(t);
	json_object_put(ev);
	return out;
}

static void assert_url(const char *src, const char *event_text, const char *want)
{
	char *got = render_url(src, event_text, 0);
	if (strcmp(got, want) != 0)
		fail_msg("%s\n got: %s\nwant: %s", src, got, want);
	free(got);
}

static void test_template__url_values_are_encoded_as_path_segments(void **state)
{
	(void)state;
	assert_url("https://h/p/{{v}}/x", "{\"v\":\"HINJ/../../admin?x=1#f\"}",
		   "https://h/p/HINJ%2F..%2F..%2Fadmin%3Fx%3D1%23f/x");
	assert_url("https://h/p/{{v}}", "{\"v\":\"a b%c\\u00e9\"}", "https://h/p/a%20b%25c%C3%A9");
	assert_url("https://h/{{v}}/{{w}}", "{\"v\":\"..\",\"w\":\".\"}", "https://h/%2E%2E/%2E");
	assert_url("https://h/{{v}}", "{\"v\":\".env.\"}", "https://h/%2Eenv%2E");
	assert_url("https://h/{{v}}", "{\"v\":\"a.b-c_d~e\"}", "https://h/a.b-c_d~e");
	assert_url("https://h/{{v}}", "{\"v\":\"a\\u0000b\"}", "https://h/a%00b");
	assert_url("https://h/{{v}}", "{\"v\":{\"a\":1}}", "https://h/%7B%22a%22%3A1%7D");
}

static void test_template__url_values_are_encoded_as_query_and_fragment(void **state)
{
	(void)state;
	assert_url("https://h/s?q={{v}}&r={{w}}#{{v}}", "{\"v\":\"a&b=c+d #e\",\"w\":\"..\"}",
		   "https://h/s?q=a%26b%3Dc%2Bd%20%23e&r=..#a%26b%3Dc%2Bd%20%23e");
	assert_url("https://h?{{v}}", "{\"v\":\"x/y?\"}", "https://h?x%2Fy%3F");
	assert_url("https://h#{{v}}", "{\"v\":\"x y\"}", "https://h#x%20y");
	assert_url("https://h/r?{{#tags}}t={{.}}&{{/tags}}", "{\"tags\":[\"a b\",\"&\"]}",
		   "https://h/r?t=a%20b&t=%26&");
}

static void test_template__url_placeholder_before_the_path_is_refused(void **state)
{
	static const char *const bad[] = {
		"{{url}}",
		"https://{{host}}/x",
		"https://h{{x}}/y",
		"https://h:{{port}}/",
		"https://{{user}}@h/",
		"http{{s}}://h/",
		"https:/{{x}}/h",
		"{{#a}}https://h/{{/a}}",
		"https://{{^a}}h{{/a}}/",
		"  {{ url }}",
	};
	struct tmpl *t;
	struct err e = { 0 };
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = (struct tmpl *)1;
		if (tmpl_compile_url(&t, bad[i], &e) != -1)
			fail_msg("accepted %s", bad[i]);
		assert_null(t);
		assert_non_null(strstr(e.msg, "is in the URL's scheme or host"));
		/* the same text is a fine template elsewhere */
		assert_int_equal(tmpl_compile(&t, bad[i], &e), 0);
		tmpl_free(t);
	}
	assert_int_equal(tmpl_compile_url(&t, "https://h/{{x}}", &e), 0);
	tmpl_free(t);
	assert_int_equal(tmpl_compile_url(&t, "https://u:p@h:8/a?b#c", &e), 0);
	tmpl_free(t);
	assert_int_equal(tmpl_compile_url(&t, "x\nhttps://{{h}}/", &e), -1);
	assert_string_equal(
		e.msg,
		"'{{h}}' at line 2, column 9 is in the URL's scheme or host, which must be literal text; values may fill the path, the query and the fragment");
}

static void test_template__url_cap_never_splits_a_percent_escape(void **state)
{
	char *got = render_url("https://h/{{v}}", "{\"v\":\"ab c\"}", 14);
	(void)state;
	assert_string_equal(got, "https://h/ab");
	free(got);
}

static void test_template__url_mode_without_url_compile_encodes_strictly(void **state)
{
	(void)state;
	assert_renders("{{dots}}", TMPL_URL, "%2E.%2F.%2E");
	assert_renders("{{quote}}", TMPL_URL, "say%20%22hi%22");
}

/* ---- probe ---------------------------------------------------------------- */

static void assert_probe(const char *src, unsigned reps, int inverted, const char *want)
{
	struct tmpl *t;
	struct err e = { 0 };
	char *got;
	size_t *map;

	assert_int_equal(tmpl_compile(&t, src, &e), 0);
	assert_int_equal(tmpl_probe(t, reps, inverted, &got, &map, &e), 0);
	if (strcmp(got, want) != 0)
		fail_msg("%s (%u)\n got: %s\nwant: %s", src, reps, got, want);
	for (size_t i = 0; got[i]; i++)
		if (got[i] == 'x' && src[map[i]] != 'x')
			assert_memory_equal(src + map[i], "{{", 2);
		else
			assert_int_equal(src[map[i]], got[i]);
	assert_int_equal(map[strlen(got)], strlen(src));
	free(got);
	free(map);
	tmpl_free(t);
}

static void test_template__probe_reads_values_as_x_and_repeats_sections(void **state)
{
	const char *src = "a{{v}}b{{#l}}[{{ y }}]{{/l}}{{^l}}none{{/l}}!";
	(void)state;
	assert_probe(src, 0, 1, "axbnone!");
	assert_probe(src, 1, 0, "axb[x]!");
	assert_probe(src, 2, 0, "axb[x][x]!");
	assert_probe(src, 2, 1, "axb[x][x]none!");
	assert_probe("{{#a}}({{#b}}-{{/b}}){{/a}}", 2, 0, "(--)(--)");
	/* an inverted section inside a list is shown with the list */
	assert_probe("{{#a}}<{{^b}}n{{/b}}>{{/a}}", 2, 1, "<n><n>");
	assert_probe("plain", 2, 1, "plain");
}

static void test_template__probe_refuses_what_it_cannot_hold(void **state)
{
	/* 8 nested sections around 8 KB of text: 2 MiB at two items each */
	size_t lit = 8192, n = 8 * 6 + lit + 8 * 6;
	char *src = malloc(n + 1), *w = src, *got = (char *)1;
	size_t *map = (size_t *)1;
	struct tmpl *t;
	struct err e = { 0 };
	(void)state;

	for (int i = 0; i < 8; i++, w += 6)
		memcpy(w, "{{#a}}", 6);
	memset(w, 'y', lit);
	w += lit;
	for (int i = 0; i < 8; i++, w += 6)
		memcpy(w, "{{/a}}", 6);
	*w = '\0';
	assert_int_equal(tmpl_compile(&t, src, &e), 0);
	assert_int_equal(tmpl_probe(t, 1, 0, &got, &map, &e), 0);
	assert_int_equal(strlen(got), lit);
	free(got);
	free(map);
	assert_int_equal(tmpl_probe(t, 2, 0, &got, &map, &e), -1);
	assert_null(got);
	assert_null(map);
	assert_non_null(strstr(e.msg, "too much to check"));
	tmpl_free(t);
	free(src);
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
		cmocka_unit_test(test_template__section_repeats_for_each_item),
		cmocka_unit_test(test_template__names_resolve_in_the_item_then_outwards),
		cmocka_unit_test(test_template__dot_is_the_current_item),
		cmocka_unit_test(test_template__inverted_section_renders_for_falsy_values),
		cmocka_unit_test(test_template__truthy_value_that_is_not_a_list_renders_once),
		cmocka_unit_test(test_template__json_escaping_holds_inside_sections),
		cmocka_unit_test(test_template__section_output_is_capped),
		cmocka_unit_test(test_template__section_errors_name_line_and_column),
		cmocka_unit_test(test_template__sections_nest_at_most_eight_deep),
		cmocka_unit_test(test_template__section_alone_is_not_constant),
		cmocka_unit_test(test_template__hostile_nested_lists_stop_quickly),
		cmocka_unit_test(test_template__url_values_are_encoded_as_path_segments),
		cmocka_unit_test(test_template__url_values_are_encoded_as_query_and_fragment),
		cmocka_unit_test(test_template__url_placeholder_before_the_path_is_refused),
		cmocka_unit_test(test_template__url_cap_never_splits_a_percent_escape),
		cmocka_unit_test(test_template__url_mode_without_url_compile_encodes_strictly),
		cmocka_unit_test(test_template__probe_reads_values_as_x_and_repeats_sections),
		cmocka_unit_test(test_template__probe_refuses_what_it_cannot_hold),
		cmocka_unit_test(test_template__free_accepts_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
