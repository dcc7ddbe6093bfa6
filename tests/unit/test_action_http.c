/* action_http: parsing and rendering the http action, and running it
 * against a scripted local server (stub_http.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/action_http.h"
#include "core/cfgtree.h"
#include "stub_http.h"

/* ---- helpers ------------------------------------------------------------- */

#define ACTION_OPS action_http_ops
#include "action_spec.h"

/* Renders yaml's spec for the event (JSON text); the params, owned. */
static json_object *render(const char *yaml, const char *event)
{
	struct parsed ps;
	struct err e = { 0 };
	json_object *ev = json_tokener_parse(event), *p = NULL;

	assert_non_null(ev);
	if (parse(&ps, yaml) < 0)
		fail_msg("parse: %s", ps.errs.n ? ps.errs.msgs[0] : "?");
	assert_int_equal(action_http_ops.render(&p, ps.spec, ev, &e), 0);
	json_object_put(ev);
	parsed_free(&ps);
	return p;
}

static const char *member_str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return json_object_get_string(v);
}

static const char *header(json_object *params, const char *name)
{
	json_object *h;

	assert_true(json_object_object_get_ex(params, "headers", &h));
	return member_str(h, name);
}

/* The body parsed as strict JSON; fails the test when it is not. */
static json_object *strict_json(const char *text)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *o;

	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)strlen(text) + 1);
	if (json_tokener_get_error(tok) != json_tokener_success)
		fail_msg("not valid JSON (%s): %s",
			 json_tokener_error_desc(json_tokener_get_error(tok)), text);
	json_tokener_free(tok);
	return o;
}

static void assert_parse_error(const char *yaml, const char *want)
{
	struct parsed ps;

	if (parse(&ps, yaml) != -1)
		fail_msg("accepted: %s", yaml);
	assert_null(ps.spec);
	assert_true(ps.errs.n >= 1);
	if (strncmp(ps.errs.msgs[0], want, strlen(want)) != 0)
		fail_msg("for %s\n got: %s\nwant: %s...", yaml, ps.errs.msgs[0], want);
	parsed_free(&ps);
}

static void assert_parses(const char *yaml)
{
	struct parsed ps;

	if (parse(&ps, yaml) != 0)
		fail_msg("refused %s: %s", yaml, ps.errs.n ? ps.errs.msgs[0] : "?");
	parsed_free(&ps);
}

/* ---- parse ---------------------------------------------------------------- */

static void test_parse__errors_name_file_line_col(void **state)
{
	(void)state;
	assert_parse_error("[a]", "rules.yaml:1:1: http: expected a map like { url:");
	assert_parse_error("method: POST", "rules.yaml:1:1: http: url is required");
	assert_parse_error("url: ftp://x/y",
			   "rules.yaml:1:6: http: url must start with http:// or https://");
	assert_parse_error("url: [x]", "rules.yaml:1:6: http: url must be a string, not a list");
	assert_parse_error("url: \"http://x/{{run\"", "rules.yaml:1:6: http: url: ");
	assert_parse_error(
		"url: http://x\nmethod: FETCH",
		"rules.yaml:2:9: http: method must be one of GET, POST, PUT, PATCH, DELETE");
	assert_parse_error(
		"url: http://x\nverb: GET",
		"rules.yaml:2:1: http: unknown key 'verb'; expected url, method, headers, body, timeout_s, json");
	assert_parse_error("url: http://x\nurl: http://y",
			   "rules.yaml:2:1: http: key 'url' appears twice");
	assert_parse_error("url: http://x\njson: maybe",
			   "rules.yaml:2:7: http: json must be true or false");
	assert_parse_error("url: http://x\nmethod: GET\nbody: hello",
			   "rules.yaml:3:7: http: a GET sends no body; use POST, PUT or PATCH");
}

static void test_parse__rejects_bad_headers(void **state)
{
	(void)state;
	assert_parse_error("url: http://x\nheaders: [a]",
			   "rules.yaml:2:10: http: headers must be a map of Name: value");
	assert_parse_error("url: http://x\nheaders: {\"Bad Name\": x}",
			   "rules.yaml:2:11: http: header name 'Bad Name' is not valid");
	assert_parse_error("url: http://x\nheaders: {Content-Length: 5}",
			   "rules.yaml:2:11: http: header 'Content-Length' is set by runbridge");
	assert_parse_error("url: http://x\nheaders: {X-A: 1, x-a: 2}",
			   "rules.yaml:2:19: http: header 'x-a' appears twice");
	assert_parse_error("url: http://x\nheaders: {X-A: {b: c}}",
			   "rules.yaml:2:16: http: header X-A must be a string, not a map");
}

static void test_parse__rejects_bad_timeouts(void **state)
{
	static const char *const bad[] = { "0", "-1", "301", "1.5", "ten", "\"10\"" };
	char yaml[64];
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(yaml, sizeof(yaml), "url: http://x\ntimeout_s: %s", bad[i]);
		assert_parse_error(
			yaml,
			"rules.yaml:2:12: http: timeout_s must be a whole number of seconds from 1 to 300");
	}
}

static void test_parse__json_body_with_bare_placeholder_names_its_position(void **state)
{
	(void)state;
	/* {{...}} outside a string: "x" is not JSON. */
	assert_parse_error("url: http://x\nbody: '{\"n\": {{run.counts.failed}}}'",
			   "rules.yaml:2:7: http: body is not valid JSON (");
	assert_parse_error(
		"url: http://x\nbody: '{\"n\": {{run.counts.failed}}}'",
		"rules.yaml:2:7: http: body is not valid JSON (unexpected character at line 1, column 7 of the body");
	/* positions are in the body as written, placeholders and all */
	assert_parse_error(
		"url: http://x\nbody: '{\"a\": \"{{run.title}}\", \"n\": {{run_id}}}'",
		"rules.yaml:2:7: http: body is not valid JSON (unexpected character at line 1, column 29 of the body");
	/* a block scalar: the position inside the body is given as line and column */
	assert_parse_error(
		"url: http://x\nbody: |\n  {\"text\": \"a\",\n   \"b\": nope}\n",
		"rules.yaml:2:7: http: body is not valid JSON (null expected at line 2, column 8 of the body");
	assert_parse_error(
		"url: http://x\nbody: '{\"text\": \"a\"'",
		"rules.yaml:2:7: http: body is not valid JSON (unexpected end of data at line 1, column 13 of the body");
	assert_parse_error("url: http://x\nbody: '{\"a\": 1} {\"b\": 2}'",
			   "rules.yaml:2:7: http: body is not valid JSON (");
	/* a Content-Type that says JSON makes any body JSON */
	assert_parse_error("url: http://x\nheaders: {Content-Type: application/json}\nbody: hello",
			   "rules.yaml:3:7: http: body is not valid JSON (");
	assert_parse_error("url: http://x\njson: true\nbody: '{\"a\": \"\\{{x}}\"}'",
			   "rules.yaml:3:7: http: body is not valid JSON (");
}

static void test_parse__json_checks_only_json_bodies(void **state)
{
	(void)state;
	assert_parses("url: http://x\nbody: '{\"text\": \"{{run.title}}\", \"n\": \"{{run_id}}\"}'");
	assert_parses("url: http://x\nbody: '[\"{{run.title}}\", 1, true, null]'");
	assert_parses("url: http://x\nbody: '{\"{{project}}\": \"\"}'");
	assert_parses("url: http://x\nbody: '  {\"a\": 1}  '");
	/* not JSON by default: no Content-Type and not starting with { or [ */
	assert_parses("url: http://x\nbody: 'run {{run_id}} failed'");
	assert_parses("url: http://x\nheaders: {Content-Type: text/plain}\nbody: '{ {{run.title}}'");
	assert_parses("url: http://x\njson: false\nbody: '{\"n\": {{run_id}}}'");
}

static void test_parse__url_scheme_and_host_never_come_from_a_template(void **state)
{
	(void)state;
	assert_parse_error(
		"url: \"{{run.environment}}\"",
		"rules.yaml:1:6: http: url: '{{run.environment}}' at line 1, column 1 is in the URL's scheme or host, which must be literal text");
	assert_parse_error(
		"url: \"https://{{project}}.example.com/x\"",
		"rules.yaml:1:6: http: url: '{{project}}' at line 1, column 9 is in the URL's scheme or host");
	/* no "/" yet: the value could still add a port, user info or host */
	assert_parse_error(
		"url: \"https://example.com{{project}}/x\"",
		"rules.yaml:1:6: http: url: '{{project}}' at line 1, column 20 is in the URL's scheme or host");
	assert_parse_error(
		"url: \"https://example.com:{{port}}/x\"",
		"rules.yaml:1:6: http: url: '{{port}}' at line 1, column 21 is in the URL's scheme ");
	assert_parse_error("url: \"https://u:{{token}}@example.com/x\"",
			   "rules.yaml:1:6: http: url: '{{token}}' at line 1, column 11 is in");
	assert_parse_error("url: \"http{{s}}://example.com/\"",
			   "rules.yaml:1:6: http: url: '{{s}}' at line 1, column 5 is in");
	assert_parse_error("url: \"https://{{#a}}x{{/a}}.example.com/\"",
			   "rules.yaml:1:6: http: url: '{{#a}}' at line 1, column 9 is in");
	/* from the first "/" after the host on, values are fine */
	assert_parses("url: \"https://example.com/{{project}}\"");
	assert_parses("url: \"https://example.com?p={{project}}\"");
	assert_parses("url: \"https://example.com#{{project}}\"");
	assert_parses("url: \"https://example.com/a/{{#tags}}{{.}}/{{/tags}}\"");
}

static void test_parse__sections_errors_name_their_position(void **state)
{
	(void)state;
	assert_parse_error(
		"url: http://x\nbody: '{\"t\": \"{{#results.failed}}{{title}}\"}'",
		"rules.yaml:2:7: http: body: section '{{#results.failed}}' at line 1, column 8 has no closing '{{/results.failed}}'");
	assert_parse_error(
		"url: http://x\nbody: |\n  {\"t\": \"{{#a}}\n  {{/b}}\"}\n",
		"rules.yaml:2:7: http: body: '{{/b}}' at line 2, column 1 does not close '{{#a}}' (line 1, column 8)");
	assert_parse_error(
		"url: http://x/{{/a}}",
		"rules.yaml:1:6: http: url: '{{/a}}' at line 1, column 10 closes no section");
}

static void test_parse__json_body_sections_are_checked_for_every_list_size(void **state)
{
	(void)state;
	/* inside a string: valid whatever the list */
	assert_parses(
		"url: http://x\nbody: '{\"text\": \"{{#results.failed}}- {{title}}\\n{{/results.failed}}{{^results.failed}}none{{/results.failed}}\"}'");
	/* between values, with the separator inside the section */
	assert_parses("url: http://x\nbody: '[{{#tags}}\"{{.}}\", {{/tags}}null]'");
	/* two items would be "x""x" */
	assert_parse_error("url: http://x\nbody: '[{{#tags}}\"{{.}}\"{{/tags}}]'",
			   "rules.yaml:2:7: http: body is not valid JSON (");
	assert_parse_error(
		"url: http://x\nbody: '[{{#tags}}\"{{.}}\"{{/tags}}]'",
		"rules.yaml:2:7: http: body is not valid JSON (array value separator ',' expected at line 1, column 11 of the body, reading each {{...}} as x, each {{#section}} as two items and each {{^section}} as shown)");
	/* an inverted section inside a list is checked too */
	assert_parse_error("url: http://x\nbody: '[{{#tags}}{{^t}}nope{{/t}}\"{{.}}\", {{/tags}}null]'",
			   "rules.yaml:2:7: http: body is not valid JSON (");
	/* alternatives outside a string would be shown together: refused */
	assert_parse_error("url: http://x\nbody: '{\"a\": {{#t}}\"{{t}}\"{{/t}}{{^t}}null{{/t}}}'",
			   "rules.yaml:2:7: http: body is not valid JSON (");
	/* an empty list would leave no value */
	assert_parse_error("url: http://x\nbody: '{\"a\": {{#tags}}\"{{.}}\"{{/tags}}}'",
			   "rules.yaml:2:7: http: body is not valid JSON (");
}

/* ---- render --------------------------------------------------------------- */

static void test_http_ops__is_named_http(void **state)
{
	(void)state;
	assert_string_equal(action_http_ops.name, "http");
}

static void test_render__defaults_post_10s_json_content_type(void **state)
{
	json_object *p = render("url: https://hooks.example.com/{{project}}\n"
				"body: '{\"text\": \"{{run.title}}\"}'\n",
				"{\"project\":\"DEMO\",\"run\":{\"title\":\"Nightly\"}}");
	(void)state;
	assert_string_equal(member_str(p, "url"), "https://hooks.example.com/DEMO");
	assert_string_equal(member_str(p, "method"), "POST");
	assert_string_equal(member_str(p, "timeout_s"), "10");
	assert_string_equal(header(p, "Content-Type"), "application/json");
	assert_string_equal(member_str(p, "body"), "{\"text\": \"Nightly\"}");
	json_object_put(p);
}

static void test_render__no_body_is_null_and_method_is_normalised(void **state)
{
	json_object *p = render("url: http://x/\nmethod: delete\ntimeout_s: 3\n", "{}");
	json_object *b = (json_object *)1;
	(void)state;
	assert_string_equal(member_str(p, "method"), "DELETE");
	assert_string_equal(member_str(p, "timeout_s"), "3");
	assert_true(json_object_object_get_ex(p, "body", &b));
	assert_null(b);
	assert_null(header(p, "Content-Type"));
	json_object_put(p);
}

static void test_render__hostile_title_keeps_the_body_valid_json(void **state)
{
	/* quotes, backslashes, braces, control characters, a fake member,
	 * non-ASCII, and bytes that are not UTF-8 */
	const char *title =
		"\\\"},{\\\"x\\\":\\\"\\\\ \\n\\t\\u0001 </script> {{run_id}} ü \\ud83d\\ude00";
	char event[512];
	json_object *p, *body, *text, *want;
	(void)state;

	snprintf(event, sizeof(event),
		 "{\"run_id\":7,\"run\":{\"title\":\"%s\",\"counts\":{\"failed\":3}}}", title);
	p = render("url: http://x\n"
		   "body: '{\"text\": \"*{{run.title}}* failed {{run.counts.failed}}\", \"t\": \"{{run.title}}\"}'\n",
		   event);
	body = strict_json(member_str(p, "body"));
	assert_int_equal(json_object_object_length(body), 2);
	assert_true(json_object_object_get_ex(body, "t", &text));
	want = json_tokener_parse(event);
	assert_string_equal(json_object_get_string(text),
			    json_object_get_string(json_object_object_get(
				    json_object_object_get(want, "run"), "title")));
	assert_true(json_object_object_get_ex(body, "text", &text));
	assert_non_null(strstr(json_object_get_string(text), "* failed 3"));
	json_object_put(want);
	json_object_put(body);
	json_object_put(p);
}

static void test_render__bytes_that_are_not_utf8_keep_the_body_valid(void **state)
{
	json_object *p = render("url: http://x\nbody: '{\"t\": \"{{run.title}}\"}'\n",
				"{\"run\":{\"title\":\"a\xff\xfe\xc3\"}}");
	json_object *body, *t;
	(void)state;
	body = strict_json(member_str(p, "body"));
	assert_true(json_object_object_get_ex(body, "t", &t));
	assert_string_equal(json_object_get_string(t), "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	json_object_put(body);
	json_object_put(p);
}

static void test_render__objects_render_as_escaped_json_text(void **state)
{
	json_object *p = render("url: http://x\nbody: '{\"plan\": \"{{run.plan}}\"}'\n",
				"{\"run\":{\"plan\":{\"id\":3,\"title\":\"a\\\"b\"}}}");
	json_object *body, *plan;
	(void)state;
	body = strict_json(member_str(p, "body"));
	assert_true(json_object_object_get_ex(body, "plan", &plan));
	assert_string_equal(json_object_get_string(plan), "{\"id\":3,\"title\":\"a\\\"b\"}");
	json_object_put(body);
	json_object_put(p);
}

static void test_render__json_false_inserts_values_raw(void **state)
{
	json_object *p = render("url: http://x\njson: false\nbody: 'title={{run.title}}'\n",
				"{\"run\":{\"title\":\"a\\\"b\"}}");
	(void)state;
	assert_string_equal(member_str(p, "body"), "title=a\"b");
	assert_string_equal(header(p, "Content-Type"), "text/plain; charset=utf-8");
	json_object_put(p);
}

static void test_render__header_values_cannot_add_headers(void **state)
{
	json_object *p = render(
		"url: http://x\nheaders: {X-Title: \"{{run.title}}\", Content-Type: application/vnd.api+json}\n"
		"body: '{\"a\": \"{{run.title}}\"}'\n",
		"{\"run\":{\"title\":\"a\\r\\nX-Evil: 1\"}}");
	(void)state;
	assert_string_equal(header(p, "X-Title"), "a  X-Evil: 1");
	assert_string_equal(header(p, "Content-Type"), "application/vnd.api+json");
	json_object_put(strict_json(member_str(p, "body")));
	json_object_put(p);
}

static void test_render__oversized_body_becomes_an_error_not_a_cut_body(void **state)
{
	size_t n = HTTP_BODY_MAX + 10;
	char *event = malloc(n + 64);
	json_object *p, *b = (json_object *)1;
	(void)state;

	memcpy(event, "{\"run\":{\"title\":\"", 17);
	memset(event + 17, 'a', n);
	memcpy(event + 17 + n, "\"}}", 4);
	p = render("url: http://x\nbody: '{\"a\": \"{{run.title}}\"}'\n", event);
	assert_true(json_object_object_get_ex(p, "body", &b));
	assert_null(b);
	assert_non_null(strstr(member_str(p, "error"), "over"));
	json_object_put(p);
	free(event);
}

static void test_render__url_values_are_encoded_for_where_they_stand(void **state)
{
	json_object *p = render(
		"url: \"https://h.example/api/{{project}}/runs/{{run.title}}?t={{run.title}}&p={{project}}#{{project}}\"\n",
		"{\"project\":\"HINJ/../../admin?x=1#f\",\"run\":{\"title\":\"Nightly a&b=c+d %2F\"}}");
	(void)state;
	assert_string_equal(member_str(p, "url"),
			    "https://h.example/api/HINJ%2F..%2F..%2Fadmin%3Fx%3D1%23f"
			    "/runs/Nightly%20a%26b%3Dc%2Bd%20%252F"
			    "?t=Nightly%20a%26b%3Dc%2Bd%20%252F"
			    "&p=HINJ%2F..%2F..%2Fadmin%3Fx%3D1%23f"
			    "#HINJ%2F..%2F..%2Fadmin%3Fx%3D1%23f");
	json_object_put(p);
}

static void test_render__url_dot_segments_from_values_are_encoded(void **state)
{
	json_object *p = render("url: \"https://h.example/a/{{up}}/{{one}}{{one}}/{{v}}?q={{up}}\"\n",
				"{\"up\":\"..\",\"one\":\".\",\"v\":\"1.2.3\"}");
	(void)state;
	/* dots inside a value stay; a value's edge dots, in the path, do not */
	assert_string_equal(member_str(p, "url"), "https://h.example/a/%2E%2E/%2E%2E/1.2.3?q=..");
	json_object_put(p);
}

static void test_render__headers_and_body_keep_their_escaping(void **state)
{
	json_object *p = render("url: \"http://x/{{project}}\"\nheaders: {X-P: \"{{project}}\"}\n"
				"body: '{\"p\": \"{{project}}\"}'\n",
				"{\"project\":\"a b/c\\\"\"}");
	(void)state;
	assert_string_equal(member_str(p, "url"), "http://x/a%20b%2Fc%22");
	assert_string_equal(header(p, "X-P"), "a b/c\"");
	assert_string_equal(member_str(p, "body"), "{\"p\": \"a b/c\\\"\"}");
	json_object_put(p);
}

static void test_render__json_body_lists_items_with_sections(void **state)
{
	json_object *p = render(
		"url: http://x\nbody: '{\"text\": \"{{#results.failed}}- {{title}} ({{project}})\\n{{/results.failed}}{{^results.failed}}none{{/results.failed}}\"}'\n",
		"{\"project\":\"D\",\"results\":{\"failed\":[{\"title\":\"a \\\"q\\\"\"},{\"title\":\"b\\n\"}]}}");
	json_object *body, *t;
	(void)state;
	body = strict_json(member_str(p, "body"));
	assert_true(json_object_object_get_ex(body, "text", &t));
	assert_string_equal(json_object_get_string(t), "- a \"q\" (D)\n- b\n (D)\n");
	json_object_put(body);
	json_object_put(p);
	p = render("url: http://x\nbody: '{\"text\": \"{{#results.failed}}- {{title}}{{/results.failed}}{{^results.failed}}none{{/results.failed}}\"}'\n",
		   "{\"results\":{\"failed\":[]}}");
	assert_string_equal(member_str(p, "body"), "{\"text\": \"none\"}");
	json_object_put(p);
}

/* ---- run ------------------------------------------------------------------ */

struct run_fixture {
	struct stub *stub;
	struct outbound *http;
	char url[128];
};

static int run_setup(void **state)
{
	struct run_fixture *f = calloc(1, sizeof(*f));
	struct err e = { 0 };

	f->stub = stub_start();
	if (outbound_new(&f->http, &e) < 0)
		fail_msg("outbound: %s", e.msg);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/services/T000/SECRET", f->stub->port);
	*state = f;
	return 0;
}

static int run_teardown(void **state)
{
	struct run_fixture *f = *state;

	outbound_free(f->http);
	stub_stop(f->stub);
	free(f);
	return 0;
}

static json_object *run_params(const struct run_fixture *f, const char *method, const char *body)
{
	json_object *p = json_object_new_object(), *h = json_object_new_object();

	json_object_object_add(p, "url", json_object_new_string(f->url));
	json_object_object_add(p, "method", json_object_new_string(method));
	if (body)
		json_object_object_add(h, "Content-Type", json_object_new_string("application/json"));
	json_object_object_add(h, "X-Run", json_object_new_string("DEMO#42"));
	json_object_object_add(p, "headers", h);
	json_object_object_add(p, "body", body ? json_object_new_string(body) : NULL);
	json_object_object_add(p, "timeout_s", json_object_new_int64(5));
	return p;
}

static struct target_outcome run(struct run_fixture *f, json_object *p, int attempt)
{
	struct target_outcome out = { .outcome = WORK_FAIL, .retry_after_ms = -1 };

	action_http_run(p, f->http, attempt, &out);
	json_object_put(p);
	return out;
}

static void test_run__2xx_is_ok_and_sends_headers_and_body(void **state)
{
	struct run_fixture *f = *state;
	struct target_outcome o;
	const struct stub_req *r;

	stub_push(f->stub, 204, "", "");
	o = run(f, run_params(f, "POST", "{\"text\":\"hi\"}"), 1);
	assert_int_equal(o.outcome, WORK_OK);
	assert_int_equal(strncmp(o.detail, "POST 127.0.0.1:", 15), 0);
	r = stub_req(f->stub, 0);
	assert_non_null(r);
	assert_string_equal(r->method, "POST");
	assert_string_equal(r->path, "/services/T000/SECRET");
	assert_non_null(strcasestr(r->head, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strcasestr(r->head, "\r\nX-Run: DEMO#42\r\n"));
	assert_string_equal(r->body, "{\"text\":\"hi\"}");
}

static void test_run__detail_names_the_host_never_the_secret_path(void **state)
{
	struct run_fixture *f = *state;
	struct target_outcome o;

	stub_push(f->stub, 200, "", "ok");
	o = run(f, run_params(f, "PUT", "{}"), 1);
	assert_int_equal(o.outcome, WORK_OK);
	assert_null(strstr(o.detail, "SECRET"));
	assert_non_null(strstr(o.detail, "PUT 127.0.0.1:"));
	assert_non_null(strstr(o.detail, "HTTP 200"));
}

static void test_run__post_without_body_sends_length_zero_and_no_form_type(void **state)
{
	struct run_fixture *f = *state;
	const struct stub_req *r;

	assert_int_equal(run(f, run_params(f, "POST", NULL), 1).outcome, WORK_OK);
	r = stub_req(f->stub, 0);
	assert_non_null(strcasestr(r->head, "\r\nContent-Length: 0\r\n"));
	assert_null(strcasestr(r->head, "Content-Type"));
}

static void test_run__4xx_is_permanent_with_the_body(void **state)
{
	struct run_fixture *f = *state;
	struct target_outcome o;

	stub_push(f->stub, 400, "", "invalid_payload");
	o = run(f, run_params(f, "POST", "{}"), 1);
	assert_int_equal(o.outcome, WORK_PERMANENT);
	assert_non_null(strstr(o.detail, "HTTP 400: invalid_payload"));
	stub_push(f->stub, 404, "", "no_service");
	assert_int_equal(run(f, run_params(f, "POST", "{}"), 1).outcome, WORK_PERMANENT);
}

static void test_run__429_and_503_retry_honoring_retry_after(void **state)
{
	struct run_fixture *f = *state;
	struct target_outcome o;

	stub_push(f->stub, 429, "Retry-After: 7\r\n", "slow down");
	o = run(f, run_params(f, "POST", "{}"), 1);
	assert_int_equal(o.outcome, WORK_FAIL);
	assert_int_equal(o.retry_after_ms, 7000);
	stub_push(f->stub, 503, "", "");
	o = run(f, run_params(f, "POST", "{}"), 9);
	assert_int_equal(o.outcome, WORK_FAIL);
	assert_int_equal(o.retry_after_ms, -1);
}

static void test_run__500_retries_twice_then_is_permanent(void **state)
{
	struct run_fixture *f = *state;

	stub_push(f->stub, 500, "", "oops");
	stub_push(f->stub, 500, "", "oops");
	stub_push(f->stub, 500, "", "oops");
	assert_int_equal(run(f, run_params(f, "POST", "{}"), 1).outcome, WORK_FAIL);
	assert_int_equal(run(f, run_params(f, "POST", "{}"), 2).outcome, WORK_FAIL);
	assert_int_equal(run(f, run_params(f, "POST", "{}"), 3).outcome, WORK_PERMANENT);
}

static void test_run__transport_error_retries(void **state)
{
	struct run_fixture *f = *state;
	json_object *p = run_params(f, "POST", "{}");
	struct target_outcome o;

	/* port 1 on loopback: connection refused */
	json_object_object_add(p, "url", json_object_new_string("http://127.0.0.1:1/x"));
	o = run(f, p, 1);
	assert_int_equal(o.outcome, WORK_FAIL);
	assert_non_null(strstr(o.detail, "no response"));
}

static void test_run__invalid_params_are_permanent_without_a_request(void **state)
{
	struct run_fixture *f = *state;
	json_object *p;

	p = run_params(f, "POST", "{}");
	json_object_object_add(p, "url", json_object_new_string("file:///etc/passwd"));
	assert_int_equal(run(f, p, 1).outcome, WORK_PERMANENT);
	p = run_params(f, "TRACE", "{}");
	assert_int_equal(run(f, p, 1).outcome, WORK_PERMANENT);
	p = run_params(f, "POST", "{}");
	json_object_object_add(json_object_object_get(p, "headers"), "X-Bad",
			       json_object_new_string("a\r\nX-Evil: 1"));
	assert_int_equal(run(f, p, 1).outcome, WORK_PERMANENT);
	p = run_params(f, "POST", "{}");
	json_object_object_add(p, "timeout_s", json_object_new_int64(0));
	assert_int_equal(run(f, p, 1).outcome, WORK_PERMANENT);
	p = run_params(f, "POST", NULL);
	json_object_object_add(p, "error",
			       json_object_new_string("the rendered body is over 262144 bytes"));
	{
		struct target_outcome o = run(f, p, 1);
		assert_int_equal(o.outcome, WORK_PERMANENT);
		assert_non_null(strstr(o.detail, "over 262144 bytes"));
	}
	assert_int_equal(stub_count(f->stub), 0);
}

/* A rendered url, sent: the request line the server sees. */
static void test_run__rendered_url_with_hostile_values_reaches_one_path(void **state)
{
	struct run_fixture *f = *state;
	char yaml[256];
	json_object *p;
	const struct stub_req *r;

	snprintf(yaml, sizeof(yaml),
		 "url: \"http://127.0.0.1:%d/p/{{project}}/r?title={{run.title}}\"\nmethod: GET\n",
		 f->stub->port);
	p = render(
		yaml,
		"{\"project\":\"HINJ/../../admin?x=1#f\",\"run\":{\"title\":\"Nightly run #3 & co\"}}");
	assert_int_equal(run(f, p, 1).outcome, WORK_OK);
	r = stub_req(f->stub, 0);
	assert_non_null(r);
	assert_string_equal(
		r->path,
		"/p/HINJ%2F..%2F..%2Fadmin%3Fx%3D1%23f/r?title=Nightly%20run%20%233%20%26%20co");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse__errors_name_file_line_col),
		cmocka_unit_test(test_parse__rejects_bad_headers),
		cmocka_unit_test(test_parse__rejects_bad_timeouts),
		cmocka_unit_test(test_parse__json_body_with_bare_placeholder_names_its_position),
		cmocka_unit_test(test_parse__json_checks_only_json_bodies),
		cmocka_unit_test(test_parse__url_scheme_and_host_never_come_from_a_template),
		cmocka_unit_test(test_parse__sections_errors_name_their_position),
		cmocka_unit_test(test_parse__json_body_sections_are_checked_for_every_list_size),
		cmocka_unit_test(test_http_ops__is_named_http),
		cmocka_unit_test(test_render__defaults_post_10s_json_content_type),
		cmocka_unit_test(test_render__no_body_is_null_and_method_is_normalised),
		cmocka_unit_test(test_render__hostile_title_keeps_the_body_valid_json),
		cmocka_unit_test(test_render__bytes_that_are_not_utf8_keep_the_body_valid),
		cmocka_unit_test(test_render__objects_render_as_escaped_json_text),
		cmocka_unit_test(test_render__json_false_inserts_values_raw),
		cmocka_unit_test(test_render__header_values_cannot_add_headers),
		cmocka_unit_test(test_render__oversized_body_becomes_an_error_not_a_cut_body),
		cmocka_unit_test(test_render__url_values_are_encoded_for_where_they_stand),
		cmocka_unit_test(test_render__url_dot_segments_from_values_are_encoded),
		cmocka_unit_test(test_render__headers_and_body_keep_their_escaping),
		cmocka_unit_test(test_render__json_body_lists_items_with_sections),
		cmocka_unit_test_setup_teardown(test_run__2xx_is_ok_and_sends_headers_and_body,
						run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_run__detail_names_the_host_never_the_secret_path,
						run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(
			test_run__post_without_body_sends_length_zero_and_no_form_type, run_setup,
			run_teardown),
		cmocka_unit_test_setup_teardown(test_run__4xx_is_permanent_with_the_body, run_setup,
						run_teardown),
		cmocka_unit_test_setup_teardown(test_run__429_and_503_retry_honoring_retry_after,
						run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_run__500_retries_twice_then_is_permanent,
						run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(test_run__transport_error_retries, run_setup,
						run_teardown),
		cmocka_unit_test_setup_teardown(test_run__invalid_params_are_permanent_without_a_request,
						run_setup, run_teardown),
		cmocka_unit_test_setup_teardown(
			test_run__rendered_url_with_hostile_values_reaches_one_path, run_setup,
			run_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
