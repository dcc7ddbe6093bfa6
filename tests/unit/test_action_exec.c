/* action_exec: parsing and rendering the exec action, and running real
 * processes.  The tests use /bin/sh as the program where a script is
 * handy; the runner itself never involves a shell. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actions/action_exec.h"
#include "core/cfgtree.h"

#define OUT_MAX (64 * 1024)

/* ---- helpers ------------------------------------------------------------- */

/* Params as render makes them: argv is the NULL-terminated rest. */
static json_object *params(long long timeout_s, const char *cwd, ...)
{
	json_object *p = json_object_new_object();
	json_object *argv = json_object_new_array();
	const char *a;
	va_list ap;

	va_start(ap, cwd);
	while ((a = va_arg(ap, const char *)))
		json_object_array_add(argv, json_object_new_string(a));
	va_end(ap);
	json_object_object_add(p, "argv", argv);
	json_object_object_add(p, "env", json_object_new_object());
	json_object_object_add(p, "timeout_s", json_object_new_int64(timeout_s));
	json_object_object_add(p, "cwd", cwd ? json_object_new_string(cwd) : NULL);
	return p;
}

static void set_env(json_object *p, const char *name, const char *value)
{
	json_object *env;
	assert_true(json_object_object_get_ex(p, "env", &env));
	json_object_object_add(env, name, json_object_new_string(value));
}

/* Runs p (and frees it); the run must start. */
static void run_ok(json_object *p, const char *event, size_t max, struct exec_outcome *o)
{
	struct err e = { 0 };
	int rc = action_exec_run(p, event, "d-1", max, o, &e);
	json_object_put(p);
	if (rc != 0)
		fail_msg("action_exec_run: %s", e.msg);
	assert_non_null(o->output);
}

static void assert_exited(const struct exec_outcome *o, int code)
{
	assert_false(o->timed_out);
	assert_false(o->signaled);
	assert_int_equal(o->exit_code, code);
}

/* A JSON object {"id":"e-1",<name>:"<n bytes of c>"} as text, malloc'd. */
static char *big_event(const char *name, size_t n, char c)
{
	const char *head = "{\"id\":\"e-1\",\"";
	size_t hl = strlen(head), nl = strlen(name);
	char *s = malloc(hl + nl + 3 + n + 3);
	char *w = s;

	assert_non_null(s);
	memcpy(w, head, hl);
	w += hl;
	memcpy(w, name, nl);
	w += nl;
	memcpy(w, "\":\"", 3);
	w += 3;
	memset(w, c, n);
	w += n;
	memcpy(w, "\"}", 3);
	return s;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the DIR's own */
}

/* ---- parse and render ---------------------------------------------------- */

#define ACTION_OPS action_exec_ops
#include "action_spec.h"

/* Renders yaml's spec for event and returns params as compact JSON text. */
static char *render(const char *yaml, const char *event)
{
	struct parsed ps;
	struct err e = { 0 };
	json_object *ev = json_tokener_parse(event), *p = NULL;
	char *out;

	assert_non_null(ev);
	if (parse(&ps, yaml) < 0)
		fail_msg("parse: %s", ps.errs.n ? ps.errs.msgs[0] : "?");
	assert_int_equal(action_exec_ops.render(&p, ps.spec, ev, &e), 0);
	out = strdup(json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(p);
	json_object_put(ev);
	parsed_free(&ps);
	return out;
}

static void test_exec_ops__is_registered_as_exec(void **state)
{
	(void)state;
	assert_ptr_equal(action_find("exec"), &action_exec_ops);
	assert_string_equal(action_exec_ops.name, "exec");
}

static void test_render__renders_every_argv_element_as_one_argument(void **state)
{
	char *got = render("argv: [hooks/notify.sh, \"{{run.title}}\", \"--id={{run_id}}\"]\n"
			   "env: { RUN_ID: \"{{run_id}}\", STATIC: plain }\n"
			   "timeout_s: 5\n"
			   "cwd: /srv/hooks\n",
			   "{\"run_id\":42,\"run\":{\"title\":\"Nightly \\\"; rm -rf / #\"}}");
	(void)state;
	assert_string_equal(got,
			    "{\"argv\":[\"hooks/notify.sh\",\"Nightly \\\"; rm -rf / #\",\"--id=42\"],"
			    "\"env\":{\"RUN_ID\":\"42\",\"STATIC\":\"plain\"},"
			    "\"timeout_s\":5,\"cwd\":\"/srv/hooks\"}");
	free(got);
}

static void test_render__defaults_no_env_30s_and_null_cwd(void **state)
{
	const char *want = "{\"argv\":[\"x\"],\"env\":{},\"timeout_s\":30,\"cwd\":null}";
	char *got = render("argv: [x]\n", "{}");
	(void)state;
	assert_string_equal(got, want);
	free(got);
	got = render("argv: [x]\nenv:\ncwd: ~\n", "{}");
	assert_string_equal(got, want);
	free(got);
}

static void assert_parse_error(const char *yaml, const char *want)
{
	struct parsed ps;

	if (parse(&ps, yaml) != -1)
		fail_msg("accepted: %s", yaml);
	assert_null(ps.spec);
	assert_int_equal(ps.errs.n, 1);
	if (strncmp(ps.errs.msgs[0], want, strlen(want)) != 0)
		fail_msg("for %s\n got: %s\nwant: %s...", yaml, ps.errs.msgs[0], want);
	parsed_free(&ps);
}

static void test_parse__errors_name_file_line_col(void **state)
{
	(void)state;
	assert_parse_error("[a, b]", "rules.yaml:1:1: exec: expected a map like { argv: ");
	assert_parse_error("{ env: {} }", "rules.yaml:1:1: exec: argv is required");
	assert_parse_error("argv: []",
			   "rules.yaml:1:7: exec: argv must be a non-empty list of strings");
	assert_parse_error("argv: notify.sh",
			   "rules.yaml:1:7: exec: argv must be a non-empty list of strings");
	assert_parse_error("argv: [\"\", a]",
			   "rules.yaml:1:8: exec: argv[0], the program, must not be empty");
	assert_parse_error("argv: [a, {b: c}]",
			   "rules.yaml:1:11: exec: argv[1] must be a string, not a map");
	assert_parse_error("argv: [a, \"{{run.title\"]", "rules.yaml:1:11: exec: argv[1]: ");
	assert_parse_error(
		"argv: [a]\nshell: true",
		"rules.yaml:2:1: exec: unknown key 'shell'; expected argv, env, timeout_s, cwd");
	assert_parse_error("argv: [a]\nargv: [b]", "rules.yaml:2:1: exec: key 'argv' appears twice");
}

static void test_parse__rejects_bad_timeouts(void **state)
{
	static const char *const bad[] = { "0", "-1", "86401", "1.5", "ten", "\"30\"", "[1]" };
	char yaml[64];
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(yaml, sizeof(yaml), "argv: [a]\ntimeout_s: %s", bad[i]);
		assert_parse_error(
			yaml,
			"rules.yaml:2:12: exec: timeout_s must be a whole number of seconds from 1 to 86400");
	}
}

static void test_parse__rejects_bad_env(void **state)
{
	(void)state;
	assert_parse_error("argv: [a]\nenv: [A]",
			   "rules.yaml:2:6: exec: env must be a map of NAME: value");
	assert_parse_error("argv: [a]\nenv: {1BAD: x}",
			   "rules.yaml:2:7: exec: env name '1BAD' is not valid");
	assert_parse_error("argv: [a]\nenv: {A-B: x}",
			   "rules.yaml:2:7: exec: env name 'A-B' is not valid");
	assert_parse_error("argv: [a]\nenv: {\"\": x}",
			   "rules.yaml:2:7: exec: env name '' is not valid");
	assert_parse_error("argv: [a]\nenv: {RUNBRIDGE_EVENT: x}",
			   "rules.yaml:2:7: exec: env name 'RUNBRIDGE_EVENT' is reserved");
	assert_parse_error("argv: [a]\nenv: {RUNBRIDGE_DELIVERY_ID: x}",
			   "rules.yaml:2:7: exec: env name 'RUNBRIDGE_DELIVERY_ID' is reserved");
	assert_parse_error("argv: [a]\nenv: {A: 1, A: 2}",
			   "rules.yaml:2:13: exec: env name 'A' appears twice");
	assert_parse_error("argv: [a]\nenv: {A: {b: c}}",
			   "rules.yaml:2:10: exec: env A must be a string, not a map");
	assert_parse_error("argv: [a]\nenv: {A: \"{{x\"}", "rules.yaml:2:10: exec: env A: ");
}

static void test_parse__rejects_bad_cwd(void **state)
{
	(void)state;
	assert_parse_error("argv: [a]\ncwd: [x]",
			   "rules.yaml:2:6: exec: cwd must be a non-empty string");
	assert_parse_error("argv: [a]\ncwd: \"\"",
			   "rules.yaml:2:6: exec: cwd must be a non-empty string");
}

static void test_parse__reports_every_error_at_once(void **state)
{
	struct parsed ps;
	(void)state;
	assert_int_equal(parse(&ps, "timeout_s: 0\nenv: {9: x}\nbogus: 1\n"), -1);
	assert_int_equal(ps.errs.n, 4);
	assert_string_equal(
		ps.errs.msgs[0],
		"rules.yaml:1:12: exec: timeout_s must be a whole number of seconds from 1 to 86400");
	assert_string_equal(ps.errs.msgs[3], "rules.yaml:1:1: exec: argv is required");
	parsed_free(&ps);
}

/* ---- running ------------------------------------------------------------- */

static void test_run__exit_0_with_stdout_and_stderr_captured(void **state)
{
	struct exec_outcome o;
	char what[64];
	(void)state;
	run_ok(params(5, NULL, "/bin/sh", "-c", "echo hello; echo oops >&2", NULL), "{}", OUT_MAX,
	       &o);
	assert_exited(&o, 0);
	assert_string_equal(o.output, "hello\noops\n");
	assert_int_equal(o.output_len, 11);
	assert_false(o.truncated);
	exec_outcome_describe(&o, what, sizeof(what));
	assert_string_equal(what, "exit 0");
	free(o.output);
}

static void test_run__program_is_found_in_path(void **state)
{
	struct exec_outcome o;
	(void)state;
	run_ok(params(5, NULL, "echo", "hi", NULL), "{}", OUT_MAX, &o);
	assert_exited(&o, 0);
	assert_string_equal(o.output, "hi\n");
	free(o.output);
}

static void test_run__nonzero_exit_is_reported(void **state)
{
	struct exec_outcome o;
	char what[64];
	(void)state;
	run_ok(params(5, NULL, "/bin/sh", "-c", "echo failing; exit 3", NULL), "{}", OUT_MAX, &o);
	assert_exited(&o, 3);
	assert_string_equal(o.output, "failing\n");
	exec_outcome_describe(&o, what, sizeof(what));
	assert_string_equal(what, "exit 3");
	free(o.output);
}

static void test_run__death_by_signal_is_reported(void **state)
{
	struct exec_outcome o;
	char what[64];
	(void)state;
	run_ok(params(5, NULL, "/bin/sh", "-c", "kill -TERM $$", NULL), "{}", OUT_MAX, &o);
	assert_true(o.signaled);
	assert_int_equal(o.term_signal, SIGTERM);
	exec_outcome_describe(&o, what, sizeof(what));
	assert_string_equal(what, "killed by signal 15");
	free(o.output);
}

static const char *const hostile[] = {
	"\"; rm -rf / #",
	"$(touch /tmp/rb-exec-pwned)",
	"`touch /tmp/rb-exec-pwned`",
	"line1\nline2",
	"'single' \"double\" \\back",
	"*",
	"",
	"  spaced  ",
	"a;b|c&d>e<f",
	"--help",
};
#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

/* Output of printf '%s\0' "$@": each argument NUL-terminated, in order. */
static void assert_args_verbatim(const struct exec_outcome *o)
{
	const char *p = o->output, *end = o->output + o->output_len;

	for (size_t i = 0; i < NHOSTILE; i++) {
		assert_true(p < end);
		assert_string_equal(p, hostile[i]);
		p += strlen(p) + 1;
	}
	assert_ptr_equal(p, end);
	assert_int_equal(access("/tmp/rb-exec-pwned", F_OK), -1);
}

static void test_run__hostile_argv_arrives_verbatim(void **state)
{
	json_object *p = params(5, NULL, "/bin/sh", "-c", "printf '%s\\0' \"$@\"", "sh", NULL);
	json_object *argv;
	struct exec_outcome o;
	(void)state;
	assert_true(json_object_object_get_ex(p, "argv", &argv));
	for (size_t i = 0; i < NHOSTILE; i++)
		json_object_array_add(argv, json_object_new_string(hostile[i]));
	run_ok(p, "{}", OUT_MAX, &o);
	assert_exited(&o, 0);
	assert_args_verbatim(&o);
	free(o.output);
}

static void test_run__hostile_event_values_render_into_single_arguments(void **state)
{
	struct parsed ps;
	struct err e = { 0 };
	struct exec_outcome o;
	json_object *ev = json_object_new_object(), *args = json_object_new_array();
	json_object *p = NULL;
	char yaml[1024];
	size_t n;
	(void)state;
	n = (size_t)snprintf(yaml, sizeof(yaml),
			     "argv:\n  - /bin/sh\n  - -c\n"
			     "  - printf '%%s\\0' \"$@\"\n  - sh\n");
	for (size_t i = 0; i < NHOSTILE; i++)
		n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "  - \"{{args.%zu}}\"\n", i);
	for (size_t i = 0; i < NHOSTILE; i++)
		json_object_array_add(args, json_object_new_string(hostile[i]));
	json_object_object_add(ev, "args", args);
	assert_int_equal(parse(&ps, yaml), 0);
	assert_int_equal(action_exec_ops.render(&p, ps.spec, ev, &e), 0);
	run_ok(p, "{}", OUT_MAX, &o);
	assert_exited(&o, 0);
	assert_args_verbatim(&o);
	free(o.output);
	json_object_put(ev);
	parsed_free(&ps);
}

static void test_run__env_holds_only_path_event_delivery_and_rule_env(void **state)
{
	const char *event = "{\"id\":\"e-1\",\"run_id\":42}";
	const char *path = getenv("PATH");
	json_object *p = params(5, NULL, "/usr/bin/env", NULL);
	struct exec_outcome o;
	char want[4096];
	(void)state;
	set_env(p, "RUN_ID", "42");
	set_env(p, "EMPTY", "");
	snprintf(want, sizeof(want),
		 "PATH=%s\nRUNBRIDGE_EVENT=%s\nRUNBRIDGE_DELIVERY_ID=d-1\nRUN_ID=42\nEMPTY=\n",
		 path && *path ? path : "/usr/local/bin:/usr/bin:/bin", event);
	run_ok(p, event, OUT_MAX, &o);
	assert_exited(&o, 0);
	assert_string_equal(o.output, want);
	free(o.output);
}

static void test_run__rule_env_path_replaces_the_daemons(void **state)
{
	json_object *p = params(5, NULL, "/bin/sh", "-c", "echo \"$PATH\"", NULL);
	struct exec_outcome o;
	(void)state;
	set_env(p, "PATH", "/opt/hooks/bin");
	run_ok(p, "{}", OUT_MAX, &o);
	assert_string_equal(o.output, "/opt/hooks/bin\n");
	free(o.output);
}

static void test_run__event_is_in_env_and_on_stdin(void **state)
{
	const char *event = "{\"id\":\"e-1\",\"run\":{\"title\":\"a \\\"b\\\" $c\"}}";
	struct exec_outcome o;
	char want[512];
	(void)state;
	run_ok(params(5, NULL, "/bin/sh", "-c", "printf '%s\\n' \"$RUNBRIDGE_EVENT\"; cat", NULL),
	       event, OUT_MAX, &o);
	assert_exited(&o, 0);
	snprintf(want, sizeof(want), "%s\n%s", event, event);
	assert_string_equal(o.output, want);
	free(o.output);
}

static void test_run__huge_event_drops_raw_from_env_but_stdin_has_all(void **state)
{
	char *event = big_event("raw", 200 * 1024, 'r');
	size_t len = strlen(event);
	struct exec_outcome o;
	const char *first = "{\"id\":\"e-1\"}\n[]\n";
	(void)state;
	run_ok(params(5, NULL, "/bin/sh", "-c",
		      "printf '%s\\n[%s]\\n' \"$RUNBRIDGE_EVENT\" \"$RUNBRIDGE_EVENT_TRUNCATED\"; cat",
		      NULL),
	       event, 1024 * 1024, &o);
	assert_exited(&o, 0);
	assert_int_equal(o.output_len, strlen(first) + len);
	assert_memory_equal(o.output, first, strlen(first));
	assert_memory_equal(o.output + strlen(first), event, len);
	free(o.output);
	free(event);
}

static void test_run__event_too_large_without_raw_is_left_out_of_env(void **state)
{
	char *event = big_event("title", 200 * 1024, 't');
	char want[64];
	struct exec_outcome o;
	(void)state;
	run_ok(params(5, NULL, "/bin/sh", "-c",
		      "printf '%s|%s|' \"${RUNBRIDGE_EVENT-unset}\" \"$RUNBRIDGE_EVENT_TRUNCATED\"; wc -c",
		      NULL),
	       event, OUT_MAX, &o);
	assert_exited(&o, 0);
	snprintf(want, sizeof(want), "unset|1|%zu\n", strlen(event));
	assert_string_equal(o.output, want);
	free(o.output);
	free(event);
}

/* Waits up to ms for a child of ours to end; returns its status or -1. */
static int reap_within(pid_t pid, int ms)
{
	int status;
	for (int i = 0; i < ms / 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10 * 1000);
	}
	return -1;
}

static void test_run__timeout_kills_the_whole_process_group(void **state)
{
	char dir[] = "/tmp/rb-exec-XXXXXX", pidfile[64], buf[32] = { 0 };
	struct exec_outcome o;
	char what[64];
	pid_t grandchild;
	FILE *f;
	int status;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	/* The hook's background child, orphaned by the kill, comes to us. */
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	run_ok(params(1, NULL, "/bin/sh", "-c", "sleep 100 & echo $! > \"$1\"; echo started; wait",
		      "sh", pidfile, NULL),
	       "{}", OUT_MAX, &o);
	assert_true(o.timed_out);
	assert_false(o.signaled);
	assert_true(o.elapsed_ms >= 1000);
	assert_true(o.elapsed_ms < 3000);
	assert_string_equal(o.output, "started\n");
	exec_outcome_describe(&o, what, sizeof(what));
	assert_int_equal(strncmp(what, "timed out after ", 16), 0);

	assert_non_null(f = fopen(pidfile, "r"));
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	grandchild = (pid_t)strtol(buf, NULL, 10);
	assert_true(grandchild > 1);
	status = reap_within(grandchild, 2000);
	if (status == -1)
		kill(grandchild, SIGKILL);
	assert_true(status != -1 && WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_int_equal(kill(grandchild, 0), -1);
	assert_int_equal(errno, ESRCH);

	prctl(PR_SET_CHILD_SUBREAPER, 0);
	unlink(pidfile);
	rmdir(dir);
	free(o.output);
}

static void test_run__output_is_capped_and_child_never_blocks(void **state)
{
	struct exec_outcome o;
	(void)state;
	run_ok(params(10, NULL, "/bin/sh", "-c", "yes | head -c 1048576; echo end", NULL), "{}",
	       1000, &o);
	assert_exited(&o, 0);
	assert_true(o.truncated);
	assert_int_equal(o.output_len, 1000);
	assert_int_equal(strlen(o.output), 1000);
	assert_true(o.elapsed_ms < 5000);
	free(o.output);
}

static void test_run__output_exactly_at_the_cap_is_not_truncated(void **state)
{
	struct exec_outcome o;
	(void)state;
	run_ok(params(5, NULL, "/bin/sh", "-c", "printf 12345", NULL), "{}", 5, &o);
	assert_false(o.truncated);
	assert_string_equal(o.output, "12345");
	free(o.output);
}

static void assert_sigpipe_not_pending(void)
{
	sigset_t pending;
	sigpending(&pending);
	assert_false(sigismember(&pending, SIGPIPE));
}

/* SIGPIPE is at its default in this process (see main): were it raised
 * here, the test binary would die. */
static void test_run__child_closing_stdin_on_a_1mib_event_is_fine(void **state)
{
	char *event = big_event("raw", 1024 * 1024, 'x');
	struct exec_outcome o;
	(void)state;
	run_ok(params(10, NULL, "/bin/sh", "-c", "exec 0<&-; sleep 0.2; echo ok", NULL), event,
	       OUT_MAX, &o);
	assert_exited(&o, 0);
	assert_string_equal(o.output, "ok\n");
	assert_true(o.elapsed_ms < 5000);
	assert_sigpipe_not_pending();
	free(o.output);

	run_ok(params(10, NULL, "/bin/sh", "-c", "exit 4", NULL), event, OUT_MAX, &o);
	assert_exited(&o, 4);
	assert_sigpipe_not_pending();
	free(o.output);
	free(event);
}

static void test_run__missing_program_fails_to_start(void **state)
{
	struct exec_outcome o;
	struct err e = { 0 };
	json_object *p = params(5, NULL, "runbridge-no-such-program", NULL);
	(void)state;
	assert_int_equal(action_exec_run(p, "{}", "d-1", OUT_MAX, &o, &e), -1);
	assert_string_equal(e.msg,
			    "cannot start 'runbridge-no-such-program': No such file or directory");
	assert_null(o.output);
	json_object_put(p);
}

static void test_run__unexecutable_program_fails_to_start(void **state)
{
	struct exec_outcome o;
	struct err e = { 0 };
	json_object *p = params(5, NULL, "/etc/passwd", NULL);
	(void)state;
	assert_int_equal(action_exec_run(p, "{}", "d-1", OUT_MAX, &o, &e), -1);
	assert_string_equal(e.msg, "cannot start '/etc/passwd': Permission denied");
	json_object_put(p);
}

static void test_run__child_sees_only_fds_0_1_2(void **state)
{
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
	struct exec_outcome o;
	(void)state;
	assert_true(leak > 2);
	run_ok(params(5, NULL, "/bin/sh", "-c", "ls /proc/$$/fd", NULL), "{}", OUT_MAX, &o);
	close(leak);
	assert_exited(&o, 0);
	assert_string_equal(o.output, "0\n1\n2\n");
	free(o.output);
}

static void test_run__cwd_is_used(void **state)
{
	char dir[] = "/tmp/rb-exec-XXXXXX", real[PATH_MAX], want[PATH_MAX + 2];
	struct exec_outcome o;
	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_non_null(realpath(dir, real));
	run_ok(params(5, dir, "/bin/pwd", "-P", NULL), "{}", OUT_MAX, &o);
	assert_exited(&o, 0);
	snprintf(want, sizeof(want), "%s\n", real);
	assert_string_equal(o.output, want);
	free(o.output);
	rmdir(dir);
}

static void test_run__missing_cwd_fails_to_start_naming_cwd(void **state)
{
	struct exec_outcome o;
	struct err e = { 0 };
	json_object *p = params(5, "/nonexistent/rb-exec", "/bin/true", NULL);
	(void)state;
	assert_int_equal(action_exec_run(p, "{}", "d-1", OUT_MAX, &o, &e), -1);
	assert_string_equal(
		e.msg,
		"cannot start '/bin/true': cwd '/nonexistent/rb-exec': No such file or directory");
	json_object_put(p);
}

static void test_run__child_leads_its_own_process_group(void **state)
{
	struct exec_outcome o;
	char want[64];
	(void)state;
	/* Field 5 of /proc/PID/stat is the process group. */
	run_ok(params(5, NULL, "/bin/sh", "-c", "cut -d' ' -f5 /proc/$$/stat; echo $$", NULL), "{}",
	       OUT_MAX, &o);
	assert_exited(&o, 0);
	int pgrp = (int)strtol(o.output, NULL, 10);
	snprintf(want, sizeof(want), "%d\n%d\n", pgrp, pgrp);
	assert_string_equal(o.output, want);
	assert_int_not_equal(pgrp, getpgrp());
	free(o.output);
}

static void test_run__child_gets_no_blocked_or_ignored_signals(void **state)
{
	sigset_t block, old;
	struct sigaction sig_ign = { .sa_handler = SIG_IGN }, oldint, oldpipe;
	unsigned long long blk = 1, ign = 1;
	struct exec_outcome o;
	(void)state;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	sigaction(SIGINT, &sig_ign, &oldint);
	sigaction(SIGPIPE, &sig_ign, &oldpipe);
	run_ok(params(5, NULL, "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", NULL), "{}",
	       OUT_MAX, &o);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	sigaction(SIGINT, &oldint, NULL);
	sigaction(SIGPIPE, &oldpipe, NULL);
	assert_exited(&o, 0);
	assert_int_equal(sscanf(o.output, "SigBlk:\t%llx\nSigIgn:\t%llx", &blk, &ign), 2);
	assert_int_equal(blk, 0);
	/* Signals 1-31; glibc's posix_spawn leaves its own two internal
	 * signals (32, 33) ignored in every child, which no program uses. */
	assert_int_equal(ign & 0x7fffffffull, 0);
	free(o.output);
}

static void test_run__bad_params_are_refused(void **state)
{
	struct exec_outcome o;
	struct err e = { 0 };
	json_object *p = params(5, NULL, "", NULL);
	(void)state;
	assert_int_equal(action_exec_run(p, "{}", "d-1", OUT_MAX, &o, &e), -1);
	assert_string_equal(e.msg, "exec params: argv[0], the program, is empty");
	json_object_put(p);

	p = params(0, NULL, "/bin/true", NULL);
	assert_int_equal(action_exec_run(p, "{}", "d-1", OUT_MAX, &o, &e), -1);
	assert_string_equal(e.msg, "exec params: timeout_s must be 1 to 86400");
	json_object_put(p);

	p = params(5, NULL, "/bin/true", NULL);
	set_env(p, "RUNBRIDGE_EVENT", "forged");
	assert_int_equal(action_exec_run(p, "{}", "d-1", OUT_MAX, &o, &e), -1);
	assert_string_equal(e.msg, "exec params: env 'RUNBRIDGE_EVENT' is not allowed");
	json_object_put(p);

	p = json_tokener_parse("{\"argv\":\"/bin/true\"}");
	assert_int_equal(action_exec_run(p, "{}", "d-1", OUT_MAX, &o, &e), -1);
	assert_string_equal(e.msg, "exec params: argv must be a non-empty array");
	json_object_put(p);
}

#define THREADS 4
#define RUNS    8

struct worker_arg {
	int id;
	int failures;
};

static void *worker(void *p)
{
	struct worker_arg *w = p;

	for (int i = 0; i < RUNS; i++) {
		char event[64];
		struct exec_outcome o;
		struct err e;
		json_object *pp = params(10, NULL, "cat", NULL);
		snprintf(event, sizeof(event), "{\"thread\":%d,\"run\":%d}", w->id, i);
		if (action_exec_run(pp, event, "d", OUT_MAX, &o, &e) < 0 || o.exit_code != 0 ||
		    strcmp(o.output, event) != 0)
			w->failures++;
		free(o.output);
		json_object_put(pp);
	}
	return NULL;
}

static void test_run__threads_run_at_once_without_mixing_output(void **state)
{
	pthread_t t[THREADS];
	struct worker_arg a[THREADS];
	(void)state;
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct worker_arg){ .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].failures, 0);
	}
}

static void test_run__leaves_no_fds_and_no_zombies(void **state)
{
	char *event = big_event("raw", 256 * 1024, 'z');
	int before = count_fds();
	struct exec_outcome o;
	struct err e;
	(void)state;
	run_ok(params(5, NULL, "/bin/sh", "-c", "head -c 10 >/dev/null; exit 2", NULL), event,
	       OUT_MAX, &o);
	free(o.output);
	run_ok(params(5, NULL, "/bin/sh", "-c", "cat", NULL), event, 100, &o);
	free(o.output);
	json_object *p = params(5, NULL, "runbridge-no-such-program", NULL);
	assert_int_equal(action_exec_run(p, event, "d", OUT_MAX, &o, &e), -1);
	json_object_put(p);
	assert_int_equal(count_fds(), before);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	free(event);
}

static void test_describe__says_how_it_ended(void **state)
{
	struct exec_outcome o = { .exit_code = 3 };
	char buf[64];
	(void)state;
	exec_outcome_describe(&o, buf, sizeof(buf));
	assert_string_equal(buf, "exit 3");
	o = (struct exec_outcome){ .timed_out = 1, .exit_code = -1, .elapsed_ms = 30004 };
	exec_outcome_describe(&o, buf, sizeof(buf));
	assert_string_equal(buf, "timed out after 30004 ms");
	o = (struct exec_outcome){ .signaled = 1, .term_signal = 9, .exit_code = -1 };
	exec_outcome_describe(&o, buf, sizeof(buf));
	assert_string_equal(buf, "killed by signal 9");
}

/* ---- hardening (issue 15) ------------------------------------------------- */

/* The pid a hook wrote to dir/pid. */
static pid_t read_pid(const char *pidfile)
{
	char buf[32] = { 0 };
	FILE *f = fopen(pidfile, "r");

	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	return (pid_t)strtol(buf, NULL, 10);
}

static void test_run__exit_kills_what_the_hook_left_in_its_group(void **state)
{
	char dir[] = "/tmp/rb-exec-XXXXXX", pidfile[64];
	struct exec_outcome o;
	pid_t grandchild;
	int status;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	/* exits at once, leaving a sleeper that holds stdout */
	run_ok(params(10, NULL, "/bin/sh", "-c", "sleep 100 & echo $! > \"$1\"; echo bye", "sh",
		      pidfile, NULL),
	       "{}", OUT_MAX, &o);
	assert_exited(&o, 0);
	assert_true(o.elapsed_ms < 5000);
	assert_string_equal(o.output, "bye\n");
	grandchild = read_pid(pidfile);
	assert_true(grandchild > 1);
	status = reap_within(grandchild, 2000);
	if (status == -1)
		kill(grandchild, SIGKILL);
	assert_true(status != -1 && WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	unlink(pidfile);
	rmdir(dir);
	free(o.output);
}

/* The documented way out: a daemon the hook starts in a new session stays.
 * setsid runs in the foreground, so the session exists before the hook
 * exits (`setsid daemon &` could still be in the group at the exit). */
static void test_run__a_setsid_daemon_outlives_the_hook(void **state)
{
	char dir[] = "/tmp/rb-exec-XXXXXX", pidfile[64];
	struct exec_outcome o;
	pid_t daemon;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	run_ok(params(10, NULL, "/bin/sh", "-c",
		      "setsid sh -c 'sleep 100 >/dev/null 2>&1 </dev/null & "
		      "echo $! > \"$1\"' sh \"$1\"",
		      "sh", pidfile, NULL),
	       "{}", OUT_MAX, &o);
	assert_exited(&o, 0);
	daemon = read_pid(pidfile);
	assert_true(daemon > 1);
	usleep(100 * 1000);
	assert_int_equal(reap_within(daemon, 200), -1);
	assert_int_equal(kill(daemon, 0), 0);
	kill(daemon, SIGKILL);
	assert_true(reap_within(daemon, 2000) != -1);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	unlink(pidfile);
	rmdir(dir);
	free(o.output);
}

/* Runs one job through the kind's run, as a worker does. */
static enum work_outcome run_job(json_object *p, struct work_result *res)
{
	struct config *cfg = config_defaults();
	struct action_host host = { .cfg = cfg };
	struct action_job job = { .id = 1,
				  .attempt = 1,
				  .delivery_id = "d-1",
				  .rule = "r",
				  .type = "run.started",
				  .event_json = "{}",
				  .params = p,
				  .res = res };

	assert_non_null(cfg);
	memset(res, 0, sizeof(*res));
	action_exec_ops.run(NULL, &host, &job, 1);
	config_free(cfg);
	return res->outcome;
}

static void test_run__argv_too_large_fails_for_good_naming_it(void **state)
{
	size_t n = 200 * 1024;
	char *title = malloc(n + 1), *event = big_event("raw", 10, 'z');
	struct exec_outcome o;
	struct work_result res;
	struct err e = { 0 };
	json_object *p;
	(void)state;
	assert_non_null(title);
	memset(title, 't', n);
	title[n] = '\0';
	p = params(5, NULL, "/bin/echo", "short", title, NULL);
	assert_int_equal(action_exec_run(p, event, "d-1", OUT_MAX, &o, &e), -1);
	assert_int_equal(e.code, ERR_TOOLARGE);
	assert_non_null(strstr(e.msg, "E2BIG"));
	assert_non_null(strstr(e.msg, "the largest, argv[2], is 204800 bytes"));
	assert_null(strstr(e.msg, "tttt"));
	/* permanent: dead now, not three attempts */
	assert_int_equal(run_job(p, &res), WORK_PERMANENT);
	assert_non_null(strstr(res.detail, "E2BIG"));
	json_object_put(p);
	free(title);
	free(event);
}

static void test_render__nul_byte_in_an_argument_is_refused_not_cut(void **state)
{
	static const char ev_text[] = "{\"run\":{\"title\":\"before\\u0000after\",\"ok\":\"fine\"}}";
	struct parsed ps;
	struct err e = { 0 };
	struct exec_outcome o;
	struct work_result res;
	json_object *ev = json_tokener_parse(ev_text), *p = NULL, *err_v;
	(void)state;
	assert_non_null(ev);
	assert_int_equal(parse(&ps, "{argv: [/bin/echo, \"{{run.ok}}\", \"t={{ run.title }}\"]}"), 0);
	assert_int_equal(action_exec_ops.render(&p, ps.spec, ev, &e), 0);
	assert_true(json_object_object_get_ex(p, "error", &err_v));
	assert_string_equal(json_object_get_string(err_v),
			    "argv[2] would hold a NUL byte from the event, which an "
			    "argument or variable cannot carry: refused rather than cut there");
	assert_int_equal(action_exec_run(p, "{}", "d-1", OUT_MAX, &o, &e), -1);
	assert_int_equal(e.code, ERR_INVALID);
	assert_int_equal(strncmp(e.msg, "exec: argv[2] would hold a NUL byte", 35), 0);
	assert_int_equal(run_job(p, &res), WORK_PERMANENT);
	json_object_put(p);
	parsed_free(&ps);

	/* an env value too; and a value without a NUL renders as before */
	assert_int_equal(parse(&ps, "{argv: [/bin/true], env: {T: \"{{run.title}}\"}}"), 0);
	assert_int_equal(action_exec_ops.render(&p, ps.spec, ev, &e), 0);
	assert_true(json_object_object_get_ex(p, "error", &err_v));
	assert_int_equal(strncmp(json_object_get_string(err_v), "env T would hold a NUL byte", 27),
			 0);
	json_object_put(p);
	parsed_free(&ps);
	assert_int_equal(parse(&ps, "{argv: [/bin/true, \"{{run.ok}}\"]}"), 0);
	assert_int_equal(action_exec_ops.render(&p, ps.spec, ev, &e), 0);
	assert_false(json_object_object_get_ex(p, "error", &err_v));
	json_object_put(p);
	parsed_free(&ps);
	json_object_put(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run__exit_kills_what_the_hook_left_in_its_group),
		cmocka_unit_test(test_run__a_setsid_daemon_outlives_the_hook),
		cmocka_unit_test(test_run__argv_too_large_fails_for_good_naming_it),
		cmocka_unit_test(test_render__nul_byte_in_an_argument_is_refused_not_cut),
		cmocka_unit_test(test_exec_ops__is_registered_as_exec),
		cmocka_unit_test(test_render__renders_every_argv_element_as_one_argument),
		cmocka_unit_test(test_render__defaults_no_env_30s_and_null_cwd),
		cmocka_unit_test(test_parse__errors_name_file_line_col),
		cmocka_unit_test(test_parse__rejects_bad_timeouts),
		cmocka_unit_test(test_parse__rejects_bad_env),
		cmocka_unit_test(test_parse__rejects_bad_cwd),
		cmocka_unit_test(test_parse__reports_every_error_at_once),
		cmocka_unit_test(test_run__exit_0_with_stdout_and_stderr_captured),
		cmocka_unit_test(test_run__program_is_found_in_path),
		cmocka_unit_test(test_run__nonzero_exit_is_reported),
		cmocka_unit_test(test_run__death_by_signal_is_reported),
		cmocka_unit_test(test_run__hostile_argv_arrives_verbatim),
		cmocka_unit_test(test_run__hostile_event_values_render_into_single_arguments),
		cmocka_unit_test(test_run__env_holds_only_path_event_delivery_and_rule_env),
		cmocka_unit_test(test_run__rule_env_path_replaces_the_daemons),
		cmocka_unit_test(test_run__event_is_in_env_and_on_stdin),
		cmocka_unit_test(test_run__huge_event_drops_raw_from_env_but_stdin_has_all),
		cmocka_unit_test(test_run__event_too_large_without_raw_is_left_out_of_env),
		cmocka_unit_test(test_run__timeout_kills_the_whole_process_group),
		cmocka_unit_test(test_run__output_is_capped_and_child_never_blocks),
		cmocka_unit_test(test_run__output_exactly_at_the_cap_is_not_truncated),
		cmocka_unit_test(test_run__child_closing_stdin_on_a_1mib_event_is_fine),
		cmocka_unit_test(test_run__missing_program_fails_to_start),
		cmocka_unit_test(test_run__unexecutable_program_fails_to_start),
		cmocka_unit_test(test_run__child_sees_only_fds_0_1_2),
		cmocka_unit_test(test_run__cwd_is_used),
		cmocka_unit_test(test_run__missing_cwd_fails_to_start_naming_cwd),
		cmocka_unit_test(test_run__child_leads_its_own_process_group),
		cmocka_unit_test(test_run__child_gets_no_blocked_or_ignored_signals),
		cmocka_unit_test(test_run__bad_params_are_refused),
		cmocka_unit_test(test_run__threads_run_at_once_without_mixing_output),
		cmocka_unit_test(test_run__leaves_no_fds_and_no_zombies),
		cmocka_unit_test(test_describe__says_how_it_ended),
	};

	/* The runner must not depend on the daemon ignoring SIGPIPE. */
	signal(SIGPIPE, SIG_DFL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
