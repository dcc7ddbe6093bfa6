/*
 * dispatch, through its public API with real exec jobs (/bin/sh appending a
 * line to a file): the jobs of one lane run one at a time in id order,
 * different lanes run side by side, the lanes of two runs keep each run's
 * order when their deliveries interleave, and only queue.window jobs are
 * held in memory, the rest read from the store as the window drains.
 *
 * A real store in a temp dir; jobs go in through the writer (ingest_write),
 * which hands them to the dispatcher after the commit as serve wires it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/config.h"
#include "dispatch/dispatch.h"
#include "store/ingest.h"
#include "store/store.h"

struct fixture {
	char dir[32];
	char out[64];
	struct config *cfg;
	struct dispatch *d;
	struct ingest *in;
	struct store *ro;
	int seq;
};

static int start(struct fixture *f, size_t window)
{
	struct store *st = NULL;
	struct err e = { 0 };

	f->cfg->queue_window = window;
	assert_int_equal(store_open(&st, f->dir, STORE_RW, &e), 0);
	assert_int_equal(dispatch_new(&f->d, f->cfg, &e), 0);
	assert_int_equal(ingest_start(&f->in, st, dispatch_push, f->d, &e), 0);
	assert_int_equal(dispatch_start(f->d, f->in, &e), 0);
	assert_int_equal(store_open(&f->ro, f->dir, STORE_RO, &e), 0);
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rb-dispatch-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->out, sizeof(f->out), "%s/out", f->dir);
	f->cfg = config_defaults();
	assert_non_null(f->cfg);
	free(f->cfg->data_dir);
	f->cfg->data_dir = strdup(f->dir);
	f->cfg->exec_workers = 4;
	f->cfg->exec_nice = 0;
	f->cfg->retry_base_ms = 50;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[96];

	if (f->d)
		assert_int_equal(dispatch_stop(f->d, 10), 0);
	ingest_stop(f->in);
	dispatch_free(f->d);
	ingest_free(f->in);
	store_close(f->ro);
	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Stores one delivery with one exec job in lane that sleeps `sleep`
 * seconds, then appends "tag" to the output file. */
static void add_job(struct fixture *f, const char *lane, const char *tag, const char *sleep)
{
	char params[512], id[32];
	struct err e = { 0 };

	snprintf(params, sizeof(params),
		 "{\"argv\":[\"/bin/sh\",\"-c\",\"sleep %s; echo %s >> %s\"],"
		 "\"env\":{},\"timeout_s\":30,\"cwd\":null}",
		 sleep, tag, f->out);
	snprintf(id, sizeof(id), "d%d", f->seq++);
	struct ingest_job j = { .rule = "r", .kind = "exec", .lane = lane, .params_json = params };
	struct ingest_rows rows = {
		.d = { .id = id,
		       .source = "qase",
		       .type = "run.updated",
		       .project = "P",
		       .run_id = 1,
		       .received_ms = clock_wall_ms(),
		       .raw = "{}",
		       .raw_len = 2,
		       .event_json = "{}" },
		.jobs = &j,
		.njobs = 1,
	};
	int dup;
	assert_int_equal(ingest_write(f->in, &rows, &dup, &e), 0);
	assert_false(dup);
}

/* The output file's lines, in order, joined by spaces (static buffer). */
static const char *lines(struct fixture *f)
{
	static char buf[4096];
	char line[128];
	size_t len = 0;
	FILE *fp = fopen(f->out, "r");

	buf[0] = '\0';
	if (!fp)
		return buf;
	while (fgets(line, sizeof(line), fp) && len < sizeof(buf) - 1) {
		line[strcspn(line, "\n")] = '\0';
		int n = snprintf(buf + len, sizeof(buf) - len, "%s%s", len ? " " : "", line);
		len = n > 0 ? len + (size_t)n : len;
	}
	fclose(fp);
	return buf;
}

static long long jobs_done(struct fixture *f)
{
	struct store_counts c;
	struct err e = { 0 };
	assert_int_equal(store_counts(f->ro, &c, &e), 0);
	return c.done;
}

/* Waits until n jobs are done; returns the milliseconds it took. */
static long long wait_done(struct fixture *f, long long n, long long since)
{
	for (int i = 0; i < 3000 && jobs_done(f) < n; i++)
		sleep_ms(5);
	assert_int_equal(jobs_done(f), n);
	return clock_mono_ms() - since;
}

static void test_dispatch__one_lane_runs_its_jobs_one_at_a_time_in_order(void **state)
{
	struct fixture *f = *state;

	start(f, 1024);
	long long t0 = clock_mono_ms();
	/* the first sleeps longest: a second worker free meanwhile must not
	 * take the next job of the lane */
	add_job(f, "P#1/r/0", "a", "0.3");
	add_job(f, "P#1/r/0", "b", "0.1");
	add_job(f, "P#1/r/0", "c", "0");
	long long ms = wait_done(f, 3, t0);
	assert_string_equal(lines(f), "a b c");
	assert_true(ms >= 400);
}

static void test_dispatch__different_lanes_run_side_by_side(void **state)
{
	struct fixture *f = *state;

	start(f, 1024);
	long long t0 = clock_mono_ms();
	add_job(f, "P#1/r/0", "1", "0.6");
	add_job(f, "P#2/r/0", "2", "0.6");
	add_job(f, "P#3/r/0", "3", "0.6");
	add_job(f, "P#4/r/0", "4", "0.6");
	long long ms = wait_done(f, 4, t0);
	/* four workers, four lanes: about 0.6 s, not 2.4 */
	assert_true(ms < 1800);
}

static void test_dispatch__interleaved_runs_keep_each_runs_order(void **state)
{
	struct fixture *f = *state;
	char tag[8];

	start(f, 1024);
	long long t0 = clock_mono_ms();
	for (int i = 0; i < 4; i++) {
		/* run 1's jobs are slow, run 2's fast: run 2 finishes first,
		 * each in its own order */
		snprintf(tag, sizeof(tag), "x%d", i);
		add_job(f, "P#1/r/0", tag, "0.1");
		snprintf(tag, sizeof(tag), "y%d", i);
		add_job(f, "P#2/r/0", tag, "0");
	}
	wait_done(f, 8, t0);
	const char *got = lines(f);
	const char *x[] = { "x0", "x1", "x2", "x3" }, *y[] = { "y0", "y1", "y2", "y3" };
	for (int i = 1; i < 4; i++) {
		assert_true(strstr(got, x[i - 1]) < strstr(got, x[i]));
		assert_true(strstr(got, y[i - 1]) < strstr(got, y[i]));
	}
	assert_true(strstr(got, "y3") < strstr(got, "x3"));
}

static void test_dispatch__window_holds_some_jobs_and_reads_the_rest_later(void **state)
{
	struct fixture *f = *state;
	struct dispatch_stats ds;
	char tag[8];
	size_t most = 0;
	int saw_full = 0;

	start(f, 4);
	long long t0 = clock_mono_ms();
	for (int i = 0; i < 12; i++) {
		snprintf(tag, sizeof(tag), "%02d", i);
		add_job(f, "P#1/r/0", tag, "0.05");
		dispatch_stats(f->d, &ds);
		most = ds.in_memory > most ? ds.in_memory : most;
		saw_full |= ds.window_full;
	}
	while (jobs_done(f) < 12 && clock_mono_ms() - t0 < 15000) {
		dispatch_stats(f->d, &ds);
		most = ds.in_memory > most ? ds.in_memory : most;
		sleep_ms(5);
	}
	wait_done(f, 12, t0);
	assert_true(most <= 4);
	assert_true(saw_full);
	/* the ones read back from the store ran, in their lane's order */
	assert_string_equal(lines(f), "00 01 02 03 04 05 06 07 08 09 10 11");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_dispatch__one_lane_runs_its_jobs_one_at_a_time_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dispatch__different_lanes_run_side_by_side,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_dispatch__interleaved_runs_keep_each_runs_order,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_dispatch__window_holds_some_jobs_and_reads_the_rest_later, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
