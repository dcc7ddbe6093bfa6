/*
 * config: defaults, every documented key, ${VAR} expansion, and the exact
 * "file:line:col: key: ..." message for each kind of mistake.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/cfgtree.h"
#include "core/config.h"
#include "core/expand.h"
#include "core/redis_url.h"

/* Loads text as "config.yaml", which must be valid. */
static struct config *load_ok(const char *text)
{
	struct errlist errs = ERRLIST_INIT;
	struct config *cfg = NULL;

	if (config_load_string(&cfg, "config.yaml", text, NULL, &errs) < 0)
		fail_msg("config refused: %s", errs.n ? errs.msgs[0] : "(no message)");
	assert_int_equal(errs.n, 0);
	errlist_free(&errs);
	return cfg;
}

/* Loads text, which must fail with exactly the n messages given, in order. */
static void load_bad(const char *text, size_t n, ...)
{
	struct errlist errs = ERRLIST_INIT;
	struct config *cfg = (struct config *)1;
	va_list ap;

	assert_int_equal(config_load_string(&cfg, "config.yaml", text, NULL, &errs), -1);
	assert_null(cfg);
	for (size_t i = 0; i < errs.n; i++)
		print_message("  got: %s\n", errs.msgs[i]);
	assert_int_equal(errs.n, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(errs.msgs[i], va_arg(ap, const char *));
	va_end(ap);
	errlist_free(&errs);
}

static void assert_defaults(const struct config *cfg)
{
	assert_string_equal(cfg->listen, "127.0.0.1:8080");
	assert_string_equal(cfg->data_dir, "var");
	assert_int_equal(cfg->max_body_bytes, 1048576);
	assert_string_equal(cfg->rules_path, "rules");
	assert_int_equal(cfg->n_sources, 1);
	assert_string_equal(cfg->sources[0].name, "qase");
	assert_string_equal(cfg->sources[0].kind, "qase");
	assert_string_equal(cfg->sources[0].path, "/webhooks/qase");
	assert_null(cfg->sources[0].secret);
	assert_int_equal(cfg->sources[0].duration_unit, DURATION_MS);
	assert_string_equal(cfg->redis_url, "redis://127.0.0.1:6379/0");
	assert_string_equal(cfg->redis_host, "127.0.0.1");
	assert_int_equal(cfg->redis_port, 6379);
	assert_int_equal(cfg->redis_db, 0);
	assert_null(cfg->redis_password);
	assert_int_equal(cfg->redis_dedup_ttl_s, 86400);
	assert_int_equal(cfg->redis_batch, 256);
	assert_int_equal(cfg->http_threads, 64);
	assert_int_equal(cfg->request_timeout_ms, 10000);
	assert_int_equal(cfg->max_json_depth, 32);
	assert_int_equal(cfg->retry_max_attempts, 10);
	assert_int_equal(cfg->retry_base_ms, 500);
	assert_int_equal(cfg->retry_max_ms, 300000);
	assert_int_equal(cfg->exec_workers, 4);
	assert_int_equal(cfg->exec_output_max, 65536);
	assert_int_equal(cfg->queue_window, 65536);
	assert_int_equal(cfg->shutdown_timeout_s, 30);
	assert_string_equal(cfg->log_level, "info");
	assert_string_equal(cfg->log_format, "text");
}

/* ---- defaults ---------------------------------------------------------- */

static void test_config__defaults(void **state)
{
	struct config *cfg = config_defaults();

	(void)state;
	assert_non_null(cfg);
	assert_defaults(cfg);
	assert_null(cfg->file);
	config_free(cfg);
}

static void test_config__empty_file_gives_defaults(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("");
	assert_defaults(cfg);
	assert_string_equal(cfg->file, "config.yaml");
	config_free(cfg);
	cfg = load_ok("# nothing set yet\n---\n");
	assert_defaults(cfg);
	config_free(cfg);
}

static void test_config__empty_sections_give_defaults(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("redis:\nhttp:\nretry:\nsources:\n");
	assert_defaults(cfg);
	config_free(cfg);
}

static void test_config__missing_file_is_an_error(void **state)
{
	struct errlist errs = ERRLIST_INIT;
	struct config *cfg = NULL;

	(void)state;
	assert_int_equal(config_load(&cfg, "/nonexistent/runbridge.yaml", NULL, &errs), -1);
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0],
			    "/nonexistent/runbridge.yaml: cannot open: No such file or directory");
	errlist_free(&errs);
}

static void test_config__loads_a_file_and_names_it_in_errors(void **state)
{
	char path[] = "/tmp/test_config_XXXXXX";
	int fd = mkstemp(path);
	struct errlist errs = ERRLIST_INIT;
	struct config *cfg = NULL;
	char want[256];

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "listen: 9000\n", 13), 13);
	close(fd);
	assert_int_equal(config_load(&cfg, path, NULL, &errs), 0);
	assert_string_equal(cfg->file, path);
	assert_string_equal(cfg->listen, "9000");
	config_free(cfg);

	fd = open(path, O_WRONLY | O_TRUNC);
	assert_int_equal(write(fd, "\nlisten: [1]\n", 13), 13);
	close(fd);
	assert_int_equal(config_load(&cfg, path, NULL, &errs), -1);
	snprintf(want, sizeof(want), "%s:2:9: listen: expected a non-empty string, got a list", path);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0], want);
	errlist_free(&errs);
	unlink(path);
}

/* The sample shipped in config/ spells out the defaults. */
static void test_config__sample_config_gives_the_defaults(void **state)
{
	char path[1024];
	const char *slash = strrchr(__FILE__, '/');
	struct errlist errs = ERRLIST_INIT;
	struct config *cfg = NULL;

	(void)state;
	snprintf(path, sizeof(path), "%.*s/../../config/runbridge.yaml", (int)(slash - __FILE__),
		 __FILE__);
	unsetenv("QASE_WEBHOOK_SECRET");
	if (config_load(&cfg, path, NULL, &errs) < 0)
		fail_msg("%s", errs.n ? errs.msgs[0] : "(no message)");
	assert_defaults(cfg);
	config_free(cfg);
}

/* ---- every key --------------------------------------------------------- */

static void test_config__every_key_is_read(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("listen: 0.0.0.0:9090\n"
		      "data_dir: /var/lib/runbridge\n"
		      "max_body_bytes: 2048\n"
		      "rules: /etc/runbridge/rules.d\n"
		      "sources:\n"
		      "  qase:\n"
		      "    path: /hooks/qase\n"
		      "    secret: s3cret\n"
		      "    duration_unit: s\n"
		      "    kind: qase\n"
		      "redis:\n"
		      "  url: redis://:pw@redis.internal:6380/3\n"
		      "  dedup_ttl_s: 3600\n"
		      "  batch: 16\n"
		      "http:\n"
		      "  threads: 8\n"
		      "  request_timeout_ms: 5000\n"
		      "  max_json_depth: 16\n"
		      "retry:\n"
		      "  max_attempts: 3\n"
		      "  base_ms: 100\n"
		      "  max_ms: 1000\n"
		      "exec:\n"
		      "  workers: 2\n"
		      "  output_max_bytes: 4096\n"
		      "queue:\n"
		      "  window: 128\n"
		      "shutdown_timeout_s: 5\n"
		      "log:\n"
		      "  level: debug\n"
		      "  format: json\n");
	assert_string_equal(cfg->listen, "0.0.0.0:9090");
	assert_string_equal(cfg->data_dir, "/var/lib/runbridge");
	assert_int_equal(cfg->max_body_bytes, 2048);
	assert_string_equal(cfg->rules_path, "/etc/runbridge/rules.d");
	assert_int_equal(cfg->n_sources, 1);
	assert_string_equal(cfg->sources[0].name, "qase");
	assert_string_equal(cfg->sources[0].path, "/hooks/qase");
	assert_string_equal(cfg->sources[0].secret, "s3cret");
	assert_int_equal(cfg->sources[0].duration_unit, DURATION_S);
	assert_string_equal(cfg->sources[0].kind, "qase");
	assert_string_equal(cfg->redis_url, "redis://:pw@redis.internal:6380/3");
	assert_string_equal(cfg->redis_host, "redis.internal");
	assert_int_equal(cfg->redis_port, 6380);
	assert_int_equal(cfg->redis_db, 3);
	assert_string_equal(cfg->redis_password, "pw");
	assert_int_equal(cfg->redis_dedup_ttl_s, 3600);
	assert_int_equal(cfg->redis_batch, 16);
	assert_int_equal(cfg->http_threads, 8);
	assert_int_equal(cfg->request_timeout_ms, 5000);
	assert_int_equal(cfg->max_json_depth, 16);
	assert_int_equal(cfg->retry_max_attempts, 3);
	assert_int_equal(cfg->retry_base_ms, 100);
	assert_int_equal(cfg->retry_max_ms, 1000);
	assert_int_equal(cfg->exec_workers, 2);
	assert_int_equal(cfg->exec_output_max, 4096);
	assert_int_equal(cfg->queue_window, 128);
	assert_int_equal(cfg->shutdown_timeout_s, 5);
	assert_string_equal(cfg->log_level, "debug");
	assert_string_equal(cfg->log_format, "json");
	config_free(cfg);
}

static void test_config__quoted_numbers_are_accepted(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("max_body_bytes: \"4096\"\nhttp: {threads: '2'}\n");
	assert_int_equal(cfg->max_body_bytes, 4096);
	assert_int_equal(cfg->http_threads, 2);
	config_free(cfg);
}

/* ---- sources ----------------------------------------------------------- */

static void test_config__source_path_defaults_to_its_name(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("sources:\n  qase:\n    secret: x\n  other_qase:\n    kind: qase\n");
	assert_int_equal(cfg->n_sources, 2);
	assert_string_equal(cfg->sources[0].path, "/webhooks/qase");
	assert_string_equal(cfg->sources[1].name, "other_qase");
	assert_string_equal(cfg->sources[1].path, "/webhooks/other_qase");
	assert_string_equal(cfg->sources[1].kind, "qase");
	assert_int_equal(cfg->sources[1].duration_unit, DURATION_MS);
	assert_null(cfg->sources[1].secret);
	config_free(cfg);
}

static void test_config__source_without_settings_takes_defaults(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("sources:\n  qase:\n");
	assert_defaults(cfg);
	config_free(cfg);
}

static void test_config__source_by_path(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("sources:\n  qase:\n  eu: {kind: qase, path: /eu}\n");
	assert_ptr_equal(config_source_by_path(cfg, "/webhooks/qase"), &cfg->sources[0]);
	assert_ptr_equal(config_source_by_path(cfg, "/eu"), &cfg->sources[1]);
	assert_null(config_source_by_path(cfg, "/webhooks/eu"));
	assert_null(config_source_by_path(cfg, "/"));
	config_free(cfg);
}

static void test_config__duration_unit_is_ms_or_s(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("sources:\n  qase:\n    duration_unit: ms\n");
	assert_int_equal(cfg->sources[0].duration_unit, DURATION_MS);
	config_free(cfg);
	cfg = load_ok("sources:\n  qase:\n    duration_unit: s\n");
	assert_int_equal(cfg->sources[0].duration_unit, DURATION_S);
	config_free(cfg);
	load_bad("sources:\n  qase:\n    duration_unit: seconds\n", 1,
		 "config.yaml:3:20: sources.qase.duration_unit: expected one of ms, s, "
		 "got 'seconds'");
}

static void test_config__duplicate_source_paths_are_an_error(void **state)
{
	(void)state;
	load_bad("sources:\n"
		 "  qase:\n"
		 "  b:\n"
		 "    kind: qase\n"
		 "    path: /webhooks/qase\n",
		 1,
		 "config.yaml:5:11: sources.b.path: '/webhooks/qase' is already the "
		 "path of source 'qase'");
	load_bad("sources:\n"
		 "  a: {kind: qase, path: /x}\n"
		 "  qase: {path: /x}\n",
		 1, "config.yaml:3:16: sources.qase.path: '/x' is already the path of source 'a'");
}

static void test_config__source_path_must_start_with_a_slash(void **state)
{
	(void)state;
	load_bad("sources:\n  qase:\n    path: webhooks/qase\n", 1,
		 "config.yaml:3:11: sources.qase.path: expected a URL path starting "
		 "with '/', got 'webhooks/qase'");
}

static void test_config__source_kind_defaults_to_name_and_must_be_qase(void **state)
{
	(void)state;
	load_bad("sources:\n  github:\n    path: /gh\n", 1,
		 "config.yaml:2:3: sources.github.kind: expected one of qase, got "
		 "'github' (the default is the source name)");
	load_bad("sources:\n  ci:\n    kind: github\n", 1,
		 "config.yaml:3:11: sources.ci.kind: expected one of qase, got 'github'");
}

static void test_config__source_names_and_keys_are_checked(void **state)
{
	(void)state;
	load_bad("sources:\n  \"q a\":\n    kind: qase\n", 1,
		 "config.yaml:2:3: sources: a source name is 1 to 64 letters, digits, "
		 "'_' or '-'");
	load_bad("sources:\n  qase:\n    secert: x\n", 1,
		 "config.yaml:3:5: unknown key 'sources.qase.secert'");
	load_bad("sources:\n  qase: /webhooks/qase\n", 1,
		 "config.yaml:2:9: sources.qase: expected a map, got a scalar");
	load_bad("sources: {}\n", 1,
		 "config.yaml:1:10: sources: expected a map of source names to "
		 "settings, got an empty map");
	load_bad("sources: [qase]\n", 1,
		 "config.yaml:1:10: sources: expected a map of source names to "
		 "settings, got a list");
}

/* ---- secrets and ${VAR} ------------------------------------------------ */

static void test_config__secret_from_environment(void **state)
{
	struct config *cfg;
	const char *text = "sources:\n  qase:\n    secret: ${RB_TEST_SECRET}\n";

	(void)state;
	setenv("RB_TEST_SECRET", "from-env", 1);
	cfg = load_ok(text);
	assert_string_equal(cfg->sources[0].secret, "from-env");
	config_free(cfg);

	setenv("RB_TEST_SECRET", "", 1);
	cfg = load_ok(text);
	assert_null(cfg->sources[0].secret);
	config_free(cfg);

	unsetenv("RB_TEST_SECRET");
	cfg = load_ok(text);
	assert_null(cfg->sources[0].secret);
	config_free(cfg);

	cfg = load_ok("sources:\n  qase:\n    secret:\n");
	assert_null(cfg->sources[0].secret);
	config_free(cfg);
}

static void test_config__secret_is_never_echoed(void **state)
{
	(void)state;
	load_bad("sources:\n  qase:\n    secret: [hunter2]\n", 1,
		 "config.yaml:3:13: sources.qase.secret: expected a non-empty string, "
		 "got a list");
}

static void test_config__expands_env_in_any_scalar(void **state)
{
	struct config *cfg;

	(void)state;
	setenv("RB_TEST_PORT", "9191", 1);
	setenv("RB_TEST_BODY", "4096", 1);
	setenv("RB_TEST_LEVEL", "warn", 1);
	setenv("RB_TEST_DIR", "/srv", 1);
	unsetenv("RB_TEST_UNSET");
	cfg = load_ok("listen: 127.0.0.1:${RB_TEST_PORT}\n"
		      "max_body_bytes: ${RB_TEST_BODY}\n"
		      "data_dir: \"${RB_TEST_DIR}/rb${RB_TEST_UNSET}\"\n"
		      "rules: ${RB_TEST_DIR}/$$HOME/a$b\n"
		      "log: {level: '${RB_TEST_LEVEL}'}\n");
	assert_string_equal(cfg->listen, "127.0.0.1:9191");
	assert_int_equal(cfg->max_body_bytes, 4096);
	assert_string_equal(cfg->data_dir, "/srv/rb");
	assert_string_equal(cfg->rules_path, "/srv/$HOME/a$b");
	assert_string_equal(cfg->log_level, "warn");
	config_free(cfg);
	unsetenv("RB_TEST_PORT");
	unsetenv("RB_TEST_BODY");
	unsetenv("RB_TEST_LEVEL");
	unsetenv("RB_TEST_DIR");
}

static void test_config__expansion_result_is_validated(void **state)
{
	(void)state;
	unsetenv("RB_TEST_UNSET");
	setenv("RB_TEST_BODY", "lots", 1);
	load_bad("data_dir: ${RB_TEST_UNSET}\nmax_body_bytes: ${RB_TEST_BODY}\n", 2,
		 "config.yaml:1:11: data_dir: expected a non-empty path, got ''",
		 "config.yaml:2:17: max_body_bytes: expected an integer between 1024 "
		 "and 1073741824, got 'lots'");
	unsetenv("RB_TEST_BODY");
}

static void test_config__unterminated_var_is_an_error_with_position(void **state)
{
	(void)state;
	load_bad("log:\n  level: info\ndata_dir: /srv/${HOME\n", 1,
		 "config.yaml:3:11: data_dir: unterminated '${' at offset 5 of the value");
}

static void test_config__bad_var_name_is_an_error(void **state)
{
	(void)state;
	load_bad("listen: ${}\ndata_dir: ${1X}\nrules: ${A-B}\n", 3,
		 "config.yaml:1:9: listen: '${}' at offset 0 is not a variable name",
		 "config.yaml:2:11: data_dir: '${1X}' at offset 0 is not a variable name",
		 "config.yaml:3:8: rules: '${A-B}' at offset 0 is not a variable name");
}

/* ---- bad values -------------------------------------------------------- */

static void test_config__bad_integer_names_position_key_and_range(void **state)
{
	(void)state;
	load_bad("listen: 127.0.0.1:8080\n"
		 "data_dir: var\n"
		 "max_body_bytes: lots\n",
		 1,
		 "config.yaml:3:17: max_body_bytes: expected an integer between 1024 "
		 "and 1073741824, got 'lots'");
}

static void test_config__integer_out_of_range(void **state)
{
	(void)state;
	load_bad("max_body_bytes: 1023\n"
		 "http:\n"
		 "  threads: 0\n"
		 "  max_json_depth: 99999999999999999999\n"
		 "retry: {max_attempts: -1}\n"
		 "queue:\n"
		 "  window: 1.5\n",
		 5,
		 "config.yaml:1:17: max_body_bytes: expected an integer between 1024 "
		 "and 1073741824, got '1023'",
		 "config.yaml:3:12: http.threads: expected an integer between 1 and "
		 "1024, got '0'",
		 "config.yaml:4:19: http.max_json_depth: expected an integer between 4 "
		 "and 1000, got '99999999999999999999'",
		 "config.yaml:5:23: retry.max_attempts: expected an integer between 1 "
		 "and 1000, got '-1'",
		 "config.yaml:7:11: queue.window: expected an integer between 16 and "
		 "16777216, got '1.5'");
}

static void test_config__wrong_node_type(void **state)
{
	(void)state;
	load_bad("max_body_bytes: {a: 1}\n"
		 "listen:\n"
		 "data_dir: ~\n"
		 "redis: redis://localhost\n"
		 "log:\n"
		 "  - level\n",
		 5,
		 "config.yaml:1:17: max_body_bytes: expected an integer between 1024 "
		 "and 1073741824, got a map",
		 "config.yaml:2:8: listen: expected a non-empty string, got null",
		 "config.yaml:3:11: data_dir: expected a non-empty path, got null",
		 "config.yaml:4:8: redis: expected a map, got a scalar",
		 "config.yaml:6:3: log: expected a map, got a list");
}

static void test_config__bad_enum_lists_the_choices(void **state)
{
	(void)state;
	load_bad("log:\n  level: verbose\n  format: xml\n", 2,
		 "config.yaml:2:10: log.level: expected one of debug, info, warn, "
		 "error, got 'verbose'",
		 "config.yaml:3:11: log.format: expected one of text, json, got 'xml'");
}

static void test_config__bad_listen(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = load_ok("listen: 127.0.0.1:8080,8443s,[::1]:9000\n"
		      "tls: { certificate: /etc/runbridge/both.pem }\n");
	assert_string_equal(cfg->listen, "127.0.0.1:8080,8443s,[::1]:9000");
	config_free(cfg);
	load_bad("listen: localhost\n", 1,
		 "config.yaml:1:9: listen: expected [host:]port with a port between 0 "
		 "and 65535 (e.g. 127.0.0.1:8080), got 'localhost'");
	load_bad("listen: 127.0.0.1:70000\n", 1,
		 "config.yaml:1:9: listen: expected [host:]port with a port between 0 "
		 "and 65535 (e.g. 127.0.0.1:8080), got '127.0.0.1:70000'");
}

static void test_config__unknown_keys_are_errors(void **state)
{
	(void)state;
	load_bad("listen: 127.0.0.1:8080\n"
		 "max_body: 10\n"
		 "retry:\n"
		 "  max_attempt: 3\n"
		 "retry.max_attempts: 3\n"
		 "log:\n"
		 "  level:\n"
		 "    debug: true\n",
		 4, "config.yaml:2:1: unknown key 'max_body'",
		 "config.yaml:4:3: unknown key 'retry.max_attempt'",
		 "config.yaml:5:1: unknown key 'retry.max_attempts'",
		 "config.yaml:8:5: log.level: expected one of debug, info, warn, error, "
		 "got a map");
}

static void test_config__later_keys_override_and_sections_merge(void **state)
{
	struct config *cfg;

	(void)state;
	/* what tests/integration/rbtest.py does with its `extra` text */
	cfg = load_ok("listen: 1\n"
		      "retry:\n  base_ms: 50\n  max_ms: 400\n"
		      "http:\n  threads: 2\n  threads: 3\n"
		      "listen: 2\n"
		      "retry:\n  max_attempts: 2\n  max_ms: 100\n");
	assert_string_equal(cfg->listen, "2");
	assert_int_equal(cfg->http_threads, 3);
	assert_int_equal(cfg->retry_base_ms, 50);
	assert_int_equal(cfg->retry_max_ms, 100);
	assert_int_equal(cfg->retry_max_attempts, 2);
	config_free(cfg);
}

static void test_config__a_source_named_twice_is_an_error(void **state)
{
	(void)state;
	load_bad("sources:\n  qase: {path: /a}\n  qase: {path: /b}\n", 1,
		 "config.yaml:3:3: sources.qase: a second source of this name "
		 "(the first is on line 2)");
	load_bad("sources:\n  qase:\nlisten: 1\nsources:\n  eu: {kind: qase}\n", 1,
		 "config.yaml:4:1: sources: given twice (first on line 1); list "
		 "every source in one map");
}

static void test_config__collects_every_error(void **state)
{
	(void)state;
	load_bad("max_body_bytes: lots\n"
		 "bogus: 1\n"
		 "redis:\n"
		 "  url: http://localhost\n"
		 "log: {level: loud}\n"
		 "sources:\n"
		 "  qase: {path: x}\n",
		 5,
		 "config.yaml:1:17: max_body_bytes: expected an integer between 1024 "
		 "and 1073741824, got 'lots'",
		 "config.yaml:2:1: unknown key 'bogus'",
		 "config.yaml:4:8: redis.url: expected redis://[:password@]host[:port][/db], "
		 "got 'http://localhost'",
		 "config.yaml:5:14: log.level: expected one of debug, info, warn, error, "
		 "got 'loud'",
		 "config.yaml:7:16: sources.qase.path: expected a URL path starting "
		 "with '/', got 'x'");
}

static void test_config__retry_base_above_max_is_an_error(void **state)
{
	(void)state;
	load_bad("retry:\n  base_ms: 5000\n  max_ms: 1000\n", 1,
		 "config.yaml:2:12: retry.base_ms: 5000 is greater than retry.max_ms (1000)");
	load_bad("retry:\n  max_ms: 100\n", 1,
		 "config.yaml:2:11: retry.base_ms: 500 is greater than retry.max_ms (100)");
}

static void test_config__document_shape_errors(void **state)
{
	(void)state;
	load_bad("- listen\n", 1, "config.yaml:1:1: expected a map of settings, got a list");
	load_bad("listen: [1\n", 1,
		 "config.yaml:2:1: YAML syntax error: did not find expected ',' or ']' "
		 "while parsing a flow sequence");
}

/* ---- redis.url --------------------------------------------------------- */

static void assert_redis(const char *url, const char *host, int port, int db, const char *password)
{
	char text[512];
	struct config *cfg;

	snprintf(text, sizeof(text), "redis:\n  url: '%s'\n", url);
	cfg = load_ok(text);
	assert_string_equal(cfg->redis_url, url);
	assert_string_equal(cfg->redis_host, host);
	assert_int_equal(cfg->redis_port, port);
	assert_int_equal(cfg->redis_db, db);
	if (password)
		assert_string_equal(cfg->redis_password, password);
	else
		assert_null(cfg->redis_password);
	config_free(cfg);
}

static void test_config__redis_url_is_parsed(void **state)
{
	(void)state;
	assert_redis("redis://localhost", "localhost", 6379, 0, NULL);
	assert_redis("redis://localhost/", "localhost", 6379, 0, NULL);
	assert_redis("redis://10.0.0.5:7000", "10.0.0.5", 7000, 0, NULL);
	assert_redis("redis://r:6379/15", "r", 6379, 15, NULL);
	assert_redis("redis://:p@ss/w:rd@r:1/2", "r", 1, 2, "p@ss/w:rd");
	assert_redis("redis://:@r", "r", 6379, 0, NULL);
	assert_redis("redis://[::1]:6380/1", "::1", 6380, 1, NULL);
}

static void test_config__bad_redis_url_names_position_and_problem(void **state)
{
	(void)state;
	load_bad("redis:\n"
		 "  url: redis://\n",
		 1,
		 "config.yaml:2:8: redis.url: expected redis://[:password@]host[:port][/db] "
		 "with a host name, got 'redis://'");
	load_bad("redis: {url: 'redis://h:0'}\n", 1,
		 "config.yaml:1:14: redis.url: expected redis://[:password@]host[:port][/db] "
		 "with a port between 1 and 65535, got 'redis://h:0'");
	load_bad("redis: {url: 'redis://h:6379/x'}\n", 1,
		 "config.yaml:1:14: redis.url: expected redis://[:password@]host[:port][/db] "
		 "with a database number after '/', got 'redis://h:6379/***'");
	load_bad("redis: {url: 'redis://h:6379/1/2'}\n", 1,
		 "config.yaml:1:14: redis.url: expected redis://[:password@]host[:port][/db] "
		 "with nothing after the database number, got 'redis://h:6379/1/2'");
	load_bad("redis: {url: 'rediss://h'}\n", 1,
		 "config.yaml:1:14: redis.url: expected redis://[:password@]host[:port][/db], "
		 "got 'rediss://h'");
}

static void test_config__bad_redis_url_hides_the_password(void **state)
{
	(void)state;
	load_bad("redis: {url: 'redis://admin:hunter2@h'}\n", 1,
		 "config.yaml:1:14: redis.url: expected redis://[:password@]host[:port][/db] "
		 "(a password only, no user name), got 'redis://:***@h'");
	load_bad("redis: {url: 'redis://:hunter2@h:99999'}\n", 1,
		 "config.yaml:1:14: redis.url: expected redis://[:password@]host[:port][/db] "
		 "with a port between 1 and 65535, got 'redis://:***@h:99999'");
}

/* ---- hardening (issue 15) ------------------------------------------------- */

#define PW "Zq9Xw7Kp"

/* No 4-byte piece of PW in s. */
static void assert_no_password(const char *s, const char *input)
{
	for (size_t i = 0; i + 4 <= strlen(PW); i++) {
		char piece[5];
		memcpy(piece, PW + i, 4);
		piece[4] = '\0';
		if (strstr(s, piece))
			fail_msg("password piece '%s' shown for %s: %s", piece, input, s);
	}
}

/* Malformed and odd redis.url values, each holding PW where a password
 * might be: in no case may a message show it, nor may the redactor. */
static void test_config__redis_url_never_shows_the_password(void **state)
{
	static const char *const urls[] = {
		"rediss://:" PW "@h:6379/0",
		"rediss://:" PW "@h",
		"redis//:" PW "@h",
		"redis:/:" PW "@h",
		"redis:" PW "@h",
		"http://:" PW "@h",
		"REDIS://:" PW "@h",
		"redis://user:" PW "@h",
		"redis://" PW "@h",
		PW "@h",
		":" PW "@h",
		PW ":x@h",
		"redis://:" PW "@h:0",
		"redis://:" PW "@h:abc",
		"redis://:" PW "@h/x",
		"redis://:" PW "@h:6379/0/extra",
		"redis://:" PW "@",
		"redis://:" PW,
		"redis://:" PW "/0",
		"redis://:" PW ":6379",
		"redis://h:" PW,
		"redis://h:6379/" PW,
		"redis://h:6379/0" PW,
		" redis://:" PW "@h",
		"redis://:" PW "@h@",
		"redis://:" PW "@[::1",
		"redis://:" PW "@ho st",
		"redis://:p@" PW "@h",
		"redis://:" PW "@h:6379/0 ",
		"redis://very-long-host-name-to-push-the-password-past-the-cut-of-57:" PW "@h",
		NULL,
	};
	char text[2048], buf[128];
	(void)state;
	for (size_t i = 0; urls[i]; i++) {
		struct errlist errs = ERRLIST_INIT;
		struct config *cfg = NULL;
		snprintf(text, sizeof(text), "redis:\n  url: '%s'\n", urls[i]);
		if (config_load_string(&cfg, "config.yaml", text, NULL, &errs) == 0) {
			config_free(cfg);
			continue;
		}
		assert_true(errs.n > 0);
		for (size_t j = 0; j < errs.n; j++)
			assert_no_password(errs.msgs[j], urls[i]);
		errlist_free(&errs);
		assert_no_password(redis_url_redact(urls[i], buf, sizeof(buf)), urls[i]);
	}
	/* a long password, too long to keep */
	char long_url[1200];
	snprintf(long_url, sizeof(long_url), "rediss://:");
	for (int i = 0; i < 100; i++)
		snprintf(long_url + strlen(long_url), sizeof(long_url) - strlen(long_url), "%s", PW);
	snprintf(long_url + strlen(long_url), sizeof(long_url) - strlen(long_url), "@h");
	assert_no_password(redis_url_redact(long_url, buf, sizeof(buf)), "a long one");
}

static void test_config__redis_url_redaction_keeps_what_is_safe(void **state)
{
	char buf[128];
	(void)state;
	assert_string_equal(redis_url_redact("rediss://:" PW "@h:6379/0", buf, sizeof(buf)),
			    "rediss://:***@h:6379/0");
	assert_string_equal(redis_url_redact("redis://user:" PW "@h", buf, sizeof(buf)),
			    "redis://:***@h");
	assert_string_equal(redis_url_redact("redis//:" PW "@h", buf, sizeof(buf)), "redis//:***@h");
	assert_string_equal(redis_url_redact("redis://:" PW, buf, sizeof(buf)), "redis://:***");
	assert_string_equal(redis_url_redact("redis://h:" PW, buf, sizeof(buf)), "redis://h:***");
	assert_string_equal(redis_url_redact("redis://h:6379/x" PW, buf, sizeof(buf)),
			    "redis://h:6379/***");
	assert_string_equal(redis_url_redact("redis://[::1]:6380/1", buf, sizeof(buf)),
			    "redis://[::1]:6380/1");
	assert_string_equal(redis_url_redact("redis://h", buf, sizeof(buf)), "redis://h");
	/* the issue's case, through the loader */
	load_bad("redis: {url: 'rediss://:" PW "@h:6379/0'}\n", 1,
		 "config.yaml:1:14: redis.url: expected redis://[:password@]host[:port][/db], "
		 "got 'rediss://:***@h:6379/0'");
}

static void test_config__expand_reports_unset_variables(void **state)
{
	struct expand_info info;
	char why[128], *out;
	(void)state;
	setenv("RB_T_SET", "x", 1);
	setenv("RB_T_EMPTY", "", 1);
	unsetenv("RB_T_UNSET_A");
	unsetenv("RB_T_UNSET_B");
	assert_int_equal(config_expand_info("a${RB_T_UNSET_A}b${RB_T_SET}$${RB_T_UNSET_B}"
					    "${RB_T_EMPTY}${RB_T_UNSET_B}",
					    &out, &info, why, sizeof(why)),
			 0);
	assert_string_equal(out, "abx${RB_T_UNSET_B}");
	assert_int_equal(info.n_unset, 2);
	assert_string_equal(info.unset, "RB_T_UNSET_A, RB_T_UNSET_B");
	free(out);

	assert_int_equal(config_expand_info("${RB_T_SET}", &out, &info, why, sizeof(why)), 0);
	assert_int_equal(info.n_unset, 0);
	assert_string_equal(info.unset, "");
	free(out);

	/* a failure still says what was read; NULL info is config_expand */
	assert_int_equal(config_expand_info("${RB_T_UNSET_A}${", &out, &info, why, sizeof(why)), -1);
	assert_null(out);
	assert_int_equal(info.n_unset, 1);
	assert_int_equal(config_expand_info("${RB_T_UNSET_A}", &out, NULL, why, sizeof(why)), 0);
	assert_string_equal(out, "");
	free(out);

	/* many: whole names only, all counted */
	char many[4096] = "";
	for (int i = 0; i < 40; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "${RB_T_UNSET_LONG_NAME_%02d}", i);
	assert_int_equal(config_expand_info(many, &out, &info, why, sizeof(why)), 0);
	assert_int_equal(info.n_unset, 40);
	size_t n = strlen(info.unset);
	assert_true(n < sizeof(info.unset));
	assert_memory_equal(info.unset + n - 2, "09", 2);
	free(out);
	unsetenv("RB_T_SET");
	unsetenv("RB_T_EMPTY");
}

/* A file with a NUL byte at line 3, column 5 (after the first 4 bytes). */
static void test_config__nul_byte_in_the_file_is_an_error_with_position(void **state)
{
	static const char text[] = "listen: 127.0.0.1:9000\nlog:\n  le\0vel: debug\n"
				   "bogus: [\n";
	char path[] = "/tmp/test_config.XXXXXX";
	struct errlist errs = ERRLIST_INIT;
	struct config *cfg = (struct config *)1;
	char want[256];
	int fd = mkstemp(path);
	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	assert_int_equal(config_load(&cfg, path, NULL, &errs), -1);
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s:3:5: a NUL byte: a YAML file is text and cannot hold one",
		 path);
	assert_string_equal(errs.msgs[0], want);
	errlist_free(&errs);
	unlink(path);

	/* other control characters are libyaml's, at their own position */
	struct cfg_doc *doc;
	struct err e;
	assert_int_equal(cfg_load_string(&doc, "c.yaml", "a: 1\nb: x\x01y\n", 11, &e), -1);
	assert_string_equal(e.msg,
			    "c.yaml:2:5: YAML syntax error: control characters are not allowed");
}

static void test_config__nul_escape_in_a_value_is_an_error(void **state)
{
	(void)state;
	/* a secret cut at "\0" would be "abc" */
	load_bad("sources:\n  qase:\n    secret: \"abc\\0def\"\n", 1,
		 "config.yaml:3:13: a NUL character (\"\\0\") in a value is not allowed");
	load_bad("log: {level: 'x'}\nlisten: \"127.0.0.1:1\\x00junk\"\n", 1,
		 "config.yaml:2:9: a NUL character (\"\\0\") in a value is not allowed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config__redis_url_never_shows_the_password),
		cmocka_unit_test(test_config__redis_url_redaction_keeps_what_is_safe),
		cmocka_unit_test(test_config__expand_reports_unset_variables),
		cmocka_unit_test(test_config__nul_byte_in_the_file_is_an_error_with_position),
		cmocka_unit_test(test_config__nul_escape_in_a_value_is_an_error),
		cmocka_unit_test(test_config__defaults),
		cmocka_unit_test(test_config__empty_file_gives_defaults),
		cmocka_unit_test(test_config__empty_sections_give_defaults),
		cmocka_unit_test(test_config__missing_file_is_an_error),
		cmocka_unit_test(test_config__loads_a_file_and_names_it_in_errors),
		cmocka_unit_test(test_config__sample_config_gives_the_defaults),
		cmocka_unit_test(test_config__every_key_is_read),
		cmocka_unit_test(test_config__quoted_numbers_are_accepted),
		cmocka_unit_test(test_config__source_path_defaults_to_its_name),
		cmocka_unit_test(test_config__source_without_settings_takes_defaults),
		cmocka_unit_test(test_config__source_by_path),
		cmocka_unit_test(test_config__duration_unit_is_ms_or_s),
		cmocka_unit_test(test_config__duplicate_source_paths_are_an_error),
		cmocka_unit_test(test_config__source_path_must_start_with_a_slash),
		cmocka_unit_test(test_config__source_kind_defaults_to_name_and_must_be_qase),
		cmocka_unit_test(test_config__source_names_and_keys_are_checked),
		cmocka_unit_test(test_config__secret_from_environment),
		cmocka_unit_test(test_config__secret_is_never_echoed),
		cmocka_unit_test(test_config__expands_env_in_any_scalar),
		cmocka_unit_test(test_config__expansion_result_is_validated),
		cmocka_unit_test(test_config__unterminated_var_is_an_error_with_position),
		cmocka_unit_test(test_config__bad_var_name_is_an_error),
		cmocka_unit_test(test_config__bad_integer_names_position_key_and_range),
		cmocka_unit_test(test_config__integer_out_of_range),
		cmocka_unit_test(test_config__wrong_node_type),
		cmocka_unit_test(test_config__bad_enum_lists_the_choices),
		cmocka_unit_test(test_config__bad_listen),
		cmocka_unit_test(test_config__unknown_keys_are_errors),
		cmocka_unit_test(test_config__later_keys_override_and_sections_merge),
		cmocka_unit_test(test_config__a_source_named_twice_is_an_error),
		cmocka_unit_test(test_config__collects_every_error),
		cmocka_unit_test(test_config__retry_base_above_max_is_an_error),
		cmocka_unit_test(test_config__document_shape_errors),
		cmocka_unit_test(test_config__redis_url_is_parsed),
		cmocka_unit_test(test_config__bad_redis_url_names_position_and_problem),
		cmocka_unit_test(test_config__bad_redis_url_hides_the_password),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
