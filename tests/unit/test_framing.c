/* framing: the decisions on request heads as civetweb 1.15 parses them
 * (tests/fuzz/cw115_parse.h is civetweb's own parser). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/framing.h"
#include "../fuzz/cw115_parse.h"

#define MAX_HEADER 16384

struct parsed {
	char buf[2 * MAX_HEADER];
	struct mg_request_info ri;
	int head;
};

/* Parses head as civetweb would and returns framing_check's status. */
static int verdict(const char *head)
{
	static struct parsed p;
	struct framing_verdict v;
	size_t len = strlen(head);

	memset(&p, 0, sizeof(p));
	assert_true(len < sizeof(p.buf));
	memcpy(p.buf, head, len);
	p.head = cw115_parse(p.buf, (int)len, &p.ri);
	assert_true(p.head > 0); /* civetweb itself accepts it */
	framing_check(&v, &p.ri, MAX_HEADER);
	if (v.status)
		assert_non_null(v.reason);
	return v.status;
}

#define POST "POST /webhooks/qase HTTP/1.1\r\nHost: x\r\n"

static void test_framing__well_framed_requests_pass(void **state)
{
	(void)state;
	assert_int_equal(verdict(POST "Content-Length: 2\r\n\r\n{}"), 0);
	assert_int_equal(verdict(POST "Transfer-Encoding: chunked\r\n\r\n"), 0);
	assert_int_equal(verdict(POST "Transfer-Encoding: Chunked \r\n\r\n"), 0);
	assert_int_equal(verdict(POST "Content-Length: 2\r\nContent-Length: 2\r\n\r\n"), 0);
	assert_int_equal(verdict(POST "Content-Length: 2, 2\r\n\r\n"), 0);
	assert_int_equal(verdict(POST "X-Empty:\r\nX-Spaces:   \r\n\r\n"), 0);
	assert_int_equal(verdict("GET /healthz?x=1 HTTP/1.1\r\nHost: a:80\r\n\r\n"), 0);
	assert_int_equal(verdict("GET /healthz HTTP/1.0\r\n\r\n"), 0);
}

static void test_framing__content_length_and_transfer_encoding_is_400(void **state)
{
	(void)state;
	assert_int_equal(verdict(POST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
			 400);
	assert_int_equal(verdict(POST "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
			 400);
}

static void test_framing__content_length_not_one_number_is_400(void **state)
{
	static const char *const bad[] = { "+2", "0x10", "2abc", "-0", "2 2", "2, 3", ",", "2,", "" };
	char head[256];
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(head, sizeof(head), POST "Content-Length: %s\r\n\r\n", bad[i]);
		assert_int_equal(verdict(head), 400);
	}
	assert_int_equal(verdict(POST "Content-Length: 2\r\nContent-Length: 3\r\n\r\n"), 400);
}

static void test_framing__transfer_encoding_other_than_one_chunked_is_400(void **state)
{
	(void)state;
	assert_int_equal(verdict(POST "Transfer-Encoding: identity\r\n\r\n"), 400);
	assert_int_equal(
		verdict(POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
		400);
	assert_int_equal(verdict("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
}

static void test_framing__space_before_colon_is_400(void **state)
{
	(void)state;
	assert_int_equal(verdict(POST "Transfer-Encoding : chunked\r\n\r\n"), 400);
	assert_int_equal(verdict(POST "Content-Length  :2\r\n\r\n"), 400);
	assert_int_equal(verdict(POST "X-Empty :\r\n\r\n"), 400);
}

static void test_framing__dropped_lines_are_400(void **state)
{
	(void)state;
	/* obs-fold, an empty name, a bare CR, a high byte: civetweb stops */
	assert_int_equal(verdict(POST "X-A: a\r\n b\r\nContent-Length: 5\r\n\r\n"), 400);
	assert_int_equal(verdict(POST "X-A: a\r\n:x\r\nContent-Length: 5\r\n\r\n"), 400);
	assert_int_equal(verdict(POST "X-A: a\r\n\rContent-Length: 5\r\n\r\n"), 400);
	assert_int_equal(verdict(POST "X-A: a\r\n\xff: 1\r\nContent-Length: 5\r\n\r\n"), 400);
}

static void test_framing__bare_lf_and_loose_request_lines_are_400(void **state)
{
	(void)state;
	assert_int_equal(verdict("GET / HTTP/1.1\nHost: x\n\n"), 400);
	assert_int_equal(verdict("GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n"), 400);
	assert_int_equal(verdict("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
	assert_int_equal(verdict("GET / HTTP/1.1\r\n Host: x\r\n\r\n"), 400);
}

static void test_framing__header_names_must_be_tokens(void **state)
{
	(void)state;
	assert_int_equal(verdict(POST "X(Y): 1\r\n\r\n"), 400);
	assert_int_equal(verdict(POST "X/Y: 1\r\n\r\n"), 400);
	assert_int_equal(verdict(POST "X-Y_Z.~!#: 1\r\n\r\n"), 0);
}

static void test_framing__host_exactly_once_for_http11(void **state)
{
	(void)state;
	assert_int_equal(verdict("GET / HTTP/1.1\r\nX-A: 1\r\n\r\n"), 400);
	assert_int_equal(verdict("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400);
	assert_int_equal(verdict("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
	assert_int_equal(verdict("GET / HTTP/1.0\r\nX-A: 1\r\n\r\n"), 0);
}

static void test_framing__versions_and_targets(void **state)
{
	(void)state;
	assert_int_equal(verdict("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
	assert_int_equal(verdict("GET / HTTP/1.2\r\nHost: x\r\n\r\n"), 505);
	assert_int_equal(verdict("GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
	assert_int_equal(verdict("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

static void test_framing__64_headers_and_large_heads_are_431(void **state)
{
	static char head[2 * MAX_HEADER];
	size_t n;
	(void)state;
	n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 63; i++)
		n += (size_t)snprintf(head + n, sizeof(head) - n, "X-%d: 1\r\n", i);
	snprintf(head + n, sizeof(head) - n, "\r\n");
	assert_int_equal(verdict(head), 431); /* 64 fields: civetweb's limit */
	n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(head + n, 'a', MAX_HEADER);
	snprintf(head + n + MAX_HEADER, sizeof(head) - n - MAX_HEADER, "\r\n\r\n");
	assert_int_equal(verdict(head), 431);
}

static void test_framing__paths_match_as_sent(void **state)
{
	static const char *const other[] = { "/WEBHOOKS/QASE", "/webhooks/qase%00x",
					     "//webhooks/qase", "/webhooks/qase/",
					     "/x/../webhooks/qase" };
	char head[256];
	(void)state;
	assert_int_equal(verdict("POST /webhooks/qase?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	{
		static struct parsed p;
		const char *h = "POST /webhooks/qase?a=1 HTTP/1.1\r\nHost: x\r\n\r\n";
		memcpy(p.buf, h, strlen(h) + 1);
		assert_true(cw115_parse(p.buf, (int)strlen(h), &p.ri) > 0);
		assert_true(framing_path_is(&p.ri, "/webhooks/qase"));
	}
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		static struct parsed p;
		int n = snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: x\r\n\r\n", other[i]);
		memset(&p, 0, sizeof(p));
		memcpy(p.buf, head, (size_t)n);
		assert_true(cw115_parse(p.buf, n, &p.ri) > 0);
		assert_false(framing_path_is(&p.ri, "/webhooks/qase"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_framing__well_framed_requests_pass),
		cmocka_unit_test(test_framing__content_length_and_transfer_encoding_is_400),
		cmocka_unit_test(test_framing__content_length_not_one_number_is_400),
		cmocka_unit_test(test_framing__transfer_encoding_other_than_one_chunked_is_400),
		cmocka_unit_test(test_framing__space_before_colon_is_400),
		cmocka_unit_test(test_framing__dropped_lines_are_400),
		cmocka_unit_test(test_framing__bare_lf_and_loose_request_lines_are_400),
		cmocka_unit_test(test_framing__header_names_must_be_tokens),
		cmocka_unit_test(test_framing__host_exactly_once_for_http11),
		cmocka_unit_test(test_framing__versions_and_targets),
		cmocka_unit_test(test_framing__64_headers_and_large_heads_are_431),
		cmocka_unit_test(test_framing__paths_match_as_sent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
