/* jpath: compiling dotted paths and looking them up in events. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/jpath.h"

static const char event_json[] = "{\"project\":\"DEMO\",\"run\":{\"counts\":{\"failed\":3},"
				 "\"plan\":null},\"items\":[{\"title\":\"first\"},{\"title\":\"second\"}],"
				 "\"0\":\"zero-key\",\"list\":[null]}";

static json_object *event(void)
{
	json_object *ev = json_tokener_parse(event_json);
	assert_non_null(ev);
	return ev;
}

static struct jpath *compile(const char *path)
{
	struct jpath *p = NULL;
	struct err e;
	assert_int_equal(jpath_compile(&p, path, &e), 0);
	assert_non_null(p);
	return p;
}

static void assert_rejected(const char *path)
{
	struct jpath *p = (struct jpath *)1;
	struct err e = { 0 };
	assert_int_equal(jpath_compile(&p, path, &e), -1);
	assert_null(p);
	assert_true(strlen(e.msg) > 0);
}

static void test_jpath__empty_segments_are_rejected(void **state)
{
	(void)state;
	assert_rejected("");
	assert_rejected(".");
	assert_rejected("a..b");
	assert_rejected(".a");
	assert_rejected("a.");
}

static void test_jpath__overlong_path_is_rejected(void **state)
{
	char path[1100];
	(void)state;
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	assert_rejected(path);
}

static void test_jpath__text_is_the_source(void **state)
{
	struct jpath *p = compile("run.counts.failed");
	(void)state;
	assert_string_equal(jpath_text(p), "run.counts.failed");
	jpath_free(p);
}

static void test_jpath__nested_object_field_is_found(void **state)
{
	json_object *ev = event();
	struct jpath *p = compile("run.counts.failed");
	(void)state;
	assert_int_equal(json_object_get_int(jpath_get(p, ev)), 3);
	assert_true(jpath_exists(p, ev));
	jpath_free(p);
	json_object_put(ev);
}

static void test_jpath__numeric_segment_indexes_an_array(void **state)
{
	json_object *ev = event();
	struct jpath *p = compile("items.1.title");
	(void)state;
	assert_string_equal(json_object_get_string(jpath_get(p, ev)), "second");
	jpath_free(p);
	json_object_put(ev);
}

static void test_jpath__numeric_segment_on_an_object_is_a_key(void **state)
{
	json_object *ev = event();
	struct jpath *p = compile("0");
	(void)state;
	assert_string_equal(json_object_get_string(jpath_get(p, ev)), "zero-key");
	jpath_free(p);
	json_object_put(ev);
}

static void test_jpath__index_past_the_end_is_missing(void **state)
{
	json_object *ev = event();
	struct jpath *p = compile("items.2.title");
	(void)state;
	assert_null(jpath_get(p, ev));
	assert_false(jpath_exists(p, ev));
	jpath_free(p);
	json_object_put(ev);
}

static void test_jpath__name_segment_on_an_array_is_missing(void **state)
{
	json_object *ev = event();
	struct jpath *p = compile("items.title");
	(void)state;
	assert_null(jpath_get(p, ev));
	assert_false(jpath_exists(p, ev));
	jpath_free(p);
	json_object_put(ev);
}

static void test_jpath__missing_field_is_missing(void **state)
{
	json_object *ev = event();
	struct jpath *p = compile("run.counts.blocked");
	(void)state;
	assert_null(jpath_get(p, ev));
	assert_false(jpath_exists(p, ev));
	jpath_free(p);
	json_object_put(ev);
}

static void test_jpath__path_through_a_scalar_is_missing(void **state)
{
	json_object *ev = event();
	struct jpath *p = compile("project.code");
	(void)state;
	assert_null(jpath_get(p, ev));
	assert_false(jpath_exists(p, ev));
	jpath_free(p);
	json_object_put(ev);
}

static void test_jpath__null_is_null_but_exists(void **state)
{
	json_object *ev = event();
	struct jpath *plan = compile("run.plan"), *item = compile("list.0");
	(void)state;
	assert_null(jpath_get(plan, ev));
	assert_true(jpath_exists(plan, ev));
	assert_null(jpath_get(item, ev));
	assert_true(jpath_exists(item, ev));
	jpath_free(plan);
	jpath_free(item);
	json_object_put(ev);
}

static void test_jpath__path_below_null_is_missing(void **state)
{
	json_object *ev = event();
	struct jpath *p = compile("run.plan.title");
	(void)state;
	assert_false(jpath_exists(p, ev));
	jpath_free(p);
	json_object_put(ev);
}

static void test_jpath__null_root_has_nothing(void **state)
{
	struct jpath *p = compile("a");
	(void)state;
	assert_null(jpath_get(p, NULL));
	assert_false(jpath_exists(p, NULL));
	jpath_free(p);
}

static void test_jpath__free_accepts_null(void **state)
{
	(void)state;
	jpath_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jpath__empty_segments_are_rejected),
		cmocka_unit_test(test_jpath__overlong_path_is_rejected),
		cmocka_unit_test(test_jpath__text_is_the_source),
		cmocka_unit_test(test_jpath__nested_object_field_is_found),
		cmocka_unit_test(test_jpath__numeric_segment_indexes_an_array),
		cmocka_unit_test(test_jpath__numeric_segment_on_an_object_is_a_key),
		cmocka_unit_test(test_jpath__index_past_the_end_is_missing),
		cmocka_unit_test(test_jpath__name_segment_on_an_array_is_missing),
		cmocka_unit_test(test_jpath__missing_field_is_missing),
		cmocka_unit_test(test_jpath__path_through_a_scalar_is_missing),
		cmocka_unit_test(test_jpath__null_is_null_but_exists),
		cmocka_unit_test(test_jpath__path_below_null_is_missing),
		cmocka_unit_test(test_jpath__null_root_has_nothing),
		cmocka_unit_test(test_jpath__free_accepts_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
