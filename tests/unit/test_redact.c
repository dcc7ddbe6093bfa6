/* redact: a URL's secrets masked, what tells where it goes kept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/redact.h"

static void expect(const char *url, const char *want)
{
	char out[256];

	redact_url(url, out, sizeof(out));
	assert_string_equal(out, want);
}

static void test_redact__query_values_and_userinfo_go_names_stay(void **state)
{
	(void)state;
	expect("https://user:p@ss@h.example:8443/p/q?token=abc&x=1&flag#frag",
	       "https://***@h.example:8443/p/q?token=***&x=***&flag#***");
	expect("http://h.example/plain/path", "http://h.example/plain/path");
}

static void test_redact__chat_webhook_paths_are_credentials(void **state)
{
	(void)state;
	expect("https://hooks.slack.com/services/T0/B0/XXXX", "https://hooks.slack.com/***");
	expect("https://discord.com/api/webhooks/1/tok?wait=true",
	       "https://discord.com/***?wait=***");
	expect("https://acme.webhook.office.com/webhookb2/abc",
	       "https://acme.webhook.office.com/***");
	/* a look-alike host is not one of them */
	expect("https://hooks.slack.com.example.org/a/b", "https://hooks.slack.com.example.org/a/b");
}

static void test_redact__not_a_url_is_masked_whole_and_output_is_cut(void **state)
{
	char out[10];

	(void)state;
	expect("token-only", "***");
	redact_url("https://hooks.slack.com/services/T0/B0/XXXX", out, sizeof(out));
	assert_string_equal(out, "https://h");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact__query_values_and_userinfo_go_names_stay),
		cmocka_unit_test(test_redact__chat_webhook_paths_are_credentials),
		cmocka_unit_test(test_redact__not_a_url_is_masked_whole_and_output_is_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
