/* buf: the bounded byte buffer every growable buffer in src/ uses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/buf.h"

static void test_buf__init_allocates_nothing(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 10);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_room(&b), 10);
	assert_int_equal(buf_error(&b), 0);
	buf_free(&b);
}

static void test_buf__adds_are_nul_terminated(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 100);
	assert_int_equal(buf_add(&b, "ab", 2), 0);
	assert_int_equal(buf_adds(&b, "cd"), 0);
	assert_int_equal(buf_addf(&b, "-%d-%s", 42, "x"), 0);
	assert_string_equal(b.p, "abcd-42-x");
	assert_int_equal(b.len, 9);
	buf_free(&b);
	assert_null(b.p);
}

static void test_buf__exactly_max_fits(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 4);
	assert_int_equal(buf_add(&b, "abcd", 4), 0);
	assert_int_equal(buf_room(&b), 0);
	assert_true(b.cap <= 5);
	assert_string_equal(b.p, "abcd");
	buf_free(&b);
}

static void test_buf__past_max_is_toolarge_and_appends_nothing(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 4);
	assert_int_equal(buf_add(&b, "abc", 3), 0);
	assert_int_equal(buf_add(&b, "de", 2), ERR_TOOLARGE);
	assert_string_equal(b.p, "abc");
	assert_int_equal(b.len, 3);
	buf_free(&b);
}

static void test_buf__error_is_sticky(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 4);
	assert_int_equal(buf_add(&b, "abcdef", 6), ERR_TOOLARGE);
	assert_int_equal(buf_add(&b, "a", 1), ERR_TOOLARGE);
	assert_int_equal(buf_addf(&b, "%s", "a"), ERR_TOOLARGE);
	assert_int_equal(buf_reserve(&b, 0), ERR_TOOLARGE);
	assert_int_equal(buf_error(&b), ERR_TOOLARGE);
	assert_int_equal(b.len, 0);
	buf_reset(&b);
	assert_int_equal(buf_error(&b), 0);
	assert_int_equal(buf_add(&b, "a", 1), 0);
	buf_free(&b);
}

static void test_buf__addf_over_max_is_toolarge(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 8);
	assert_int_equal(buf_addf(&b, "%s", "1234"), 0);
	assert_int_equal(buf_addf(&b, "%s", "56789"), ERR_TOOLARGE);
	assert_string_equal(b.p, "1234");
	buf_free(&b);
}

static void test_buf__addf_grows_past_the_first_allocation(void **state)
{
	struct buf b;
	char big[1000];
	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	buf_init(&b, 1 << 20);
	assert_int_equal(buf_adds(&b, "<"), 0);
	assert_int_equal(buf_addf(&b, "%s>", big), 0);
	assert_int_equal(b.len, 1 + 999 + 1);
	assert_int_equal(b.p[0], '<');
	assert_int_equal(b.p[1000], '>');
	assert_int_equal(b.p[1001], '\0');
	buf_free(&b);
}

static void test_buf__reserve_then_commit_writes_in_place(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 100);
	assert_int_equal(buf_reserve(&b, 10), 0);
	assert_true(b.cap - b.len - 1 >= 10);
	memcpy(b.p + b.len, "hello", 5);
	buf_commit(&b, 5);
	assert_string_equal(b.p, "hello");
	assert_int_equal(buf_reserve(&b, 96), ERR_TOOLARGE);
	buf_free(&b);
}

static void test_buf__many_small_adds_reach_the_cap_exactly(void **state)
{
	struct buf b;
	size_t n = 0;
	(void)state;
	buf_init(&b, 100000);
	while (buf_add(&b, "0123456789", 10) == 0)
		n++;
	assert_int_equal(n, 10000);
	assert_int_equal(b.len, 100000);
	assert_true(b.cap <= 100001);
	buf_free(&b);
}

static void test_buf__detach_hands_over_and_empties(void **state)
{
	struct buf b;
	size_t len = 99;
	(void)state;
	buf_init(&b, 10);
	buf_adds(&b, "abc");
	char *s = buf_detach(&b, &len);
	assert_string_equal(s, "abc");
	assert_int_equal(len, 3);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 10);
	free(s);
	s = buf_detach(&b, &len); /* nothing added: "" */
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
}

static void test_buf__reset_keeps_memory(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 10);
	buf_adds(&b, "abc");
	char *p = b.p;
	buf_reset(&b);
	assert_ptr_equal(b.p, p);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.p, "");
	buf_free(&b);
	buf_free(&b); /* twice is fine */
}

static void test_buf__zero_max_holds_the_empty_string(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, 0);
	assert_int_equal(buf_add(&b, "", 0), 0);
	assert_string_equal(b.p, "");
	assert_int_equal(buf_add(&b, "a", 1), ERR_TOOLARGE);
	buf_free(&b);
}

static void test_buf__huge_max_is_clamped(void **state)
{
	struct buf b;
	(void)state;
	buf_init(&b, SIZE_MAX);
	assert_true(b.max <= SIZE_MAX / 4);
	assert_int_equal(buf_add(&b, "a", 1), 0);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf__init_allocates_nothing),
		cmocka_unit_test(test_buf__adds_are_nul_terminated),
		cmocka_unit_test(test_buf__exactly_max_fits),
		cmocka_unit_test(test_buf__past_max_is_toolarge_and_appends_nothing),
		cmocka_unit_test(test_buf__error_is_sticky),
		cmocka_unit_test(test_buf__addf_over_max_is_toolarge),
		cmocka_unit_test(test_buf__addf_grows_past_the_first_allocation),
		cmocka_unit_test(test_buf__reserve_then_commit_writes_in_place),
		cmocka_unit_test(test_buf__many_small_adds_reach_the_cap_exactly),
		cmocka_unit_test(test_buf__detach_hands_over_and_empties),
		cmocka_unit_test(test_buf__reset_keeps_memory),
		cmocka_unit_test(test_buf__zero_max_holds_the_empty_string),
		cmocka_unit_test(test_buf__huge_max_is_clamped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
