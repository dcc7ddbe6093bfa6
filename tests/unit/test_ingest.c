/*
 * ingest and the accept stage in front of it: group commit (many
 * concurrent submitters, few commits, order kept per run), a delivery that
 * fails alone while its group commits (the group runs again without it),
 * enrichment of two events of one run that arrive at the same moment (the
 * second waits for the first's commit), of a run stored before the stage
 * started, duplicates at once, and a failed commit (the disk full) that
 * fails its group and leaves nothing behind.
 *
 * A real store in a temp dir.  To put requests in one group the test holds
 * the database's write lock from a connection of its own: the writer takes
 * the first request and waits in BEGIN, everything submitted meanwhile
 * queues up, and ingest_queued says when all of it is there.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "accept/accept.h"
#include "core/config.h"
#include "event/event.h"
#include "rules/rules.h"
#include "store/ingest.h"
#include "store/store.h"

static const char catch_all[] = "rules:\n"
				"  - name: all\n"
				"    actions:\n"
				"      - redis: { stream: \"s:{{project}}\" }\n";

struct fixture {
	char dir[32];
	struct config *cfg;
	struct rules *rules;
	struct ingest *in;
	struct acceptor *acc;
	struct store *ro;
	struct store *gate; /* holds the write lock while set */
	struct source_cfg src;
	pthread_mutex_t mu;
	size_t batches, njobs; /* on_jobs calls, jobs seen */
	long long job_ids[512];
};

static void on_jobs(void *ctx, const struct job_ref *jobs, size_t n)
{
	struct fixture *f = ctx;

	pthread_mutex_lock(&f->mu);
	f->batches++;
	for (size_t i = 0; i < n && f->njobs < 512; i++)
		f->job_ids[f->njobs++] = jobs[i].id;
	pthread_mutex_unlock(&f->mu);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct errlist errs = ERRLIST_INIT;
	struct store *st = NULL;
	struct err e = { 0 };

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/rb-ingest-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->cfg = config_defaults();
	assert_non_null(f->cfg);
	free(f->cfg->data_dir);
	f->cfg->data_dir = strdup(f->dir);
	assert_int_equal(rules_load_string(&f->rules, "rules.yaml", catch_all, &errs), 0);
	f->src.name = "qase";
	pthread_mutex_init(&f->mu, NULL);
	assert_int_equal(store_open(&st, f->dir, STORE_RW, &e), 0);
	assert_int_equal(ingest_start(&f->in, st, on_jobs, f, &e), 0);
	assert_int_equal(acceptor_new(&f->acc, f->dir, f->in, f->rules, &e), 0);
	assert_int_equal(store_open(&f->ro, f->dir, STORE_RO, &e), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[96];

	store_close(f->gate);
	ingest_stop(f->in);
	acceptor_free(f->acc);
	ingest_free(f->in);
	store_close(f->ro);
	rules_free(f->rules);
	config_free(f->cfg);
	pthread_mutex_destroy(&f->mu);
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

/* ---- submitting from threads --------------------------------------------- */

struct sub {
	struct fixture *f;
	pthread_t t;
	char body[512];
	char id[65];
	int rc, dup;
	struct err err;
};

static void *sub_main(void *arg)
{
	struct sub *s = arg;
	struct err e = { 0 };
	json_object *d = NULL;
	size_t len = strlen(s->body);

	if (event_parse(&d, s->body, len, 64, &e) < 0) {
		s->rc = -2;
		return NULL;
	}
	event_delivery_id(s->id, "qase", s->body, len);
	s->rc = accept_delivery(s->f->acc, &s->f->src, s->id, d, s->body, len, 1000, &s->dup,
				&s->err);
	return NULL;
}

static void sub_start(struct sub *s, struct fixture *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void sub_start(struct sub *s, struct fixture *f, const char *fmt, ...)
{
	va_list ap;

	memset(s, 0, sizeof(*s));
	s->f = f;
	va_start(ap, fmt);
	vsnprintf(s->body, sizeof(s->body), fmt, ap);
	va_end(ap);
	assert_int_equal(pthread_create(&s->t, NULL, sub_main, s), 0);
}

static void sub_join(struct sub *s)
{
	pthread_join(s->t, NULL);
}

/* The writer is held in BEGIN by the gate; wait until n requests queue. */
static void wait_queued(struct fixture *f, size_t n)
{
	for (int i = 0; i < 2000 && ingest_queued(f->in) < n; i++)
		sleep_ms(2);
	assert_true(ingest_queued(f->in) >= n);
}

struct probe {
	struct fixture *f;
	pthread_t t;
};

static void *probe_main(void *arg)
{
	struct probe *p = arg;
	ingest_probe(p->f->in, NULL);
	return NULL;
}

/* Takes the write lock, then sends the writer a probe that waits for it:
 * from now on, everything submitted lands in one group. */
static void gate_close(struct fixture *f, struct probe *p)
{
	struct err e = { 0 };

	assert_int_equal(store_open(&f->gate, f->dir, STORE_RW, &e), 0);
	assert_int_equal(store_begin(f->gate, &e), 0);
	p->f = f;
	assert_int_equal(pthread_create(&p->t, NULL, probe_main, p), 0);
	for (int i = 0; i < 2000 && ingest_queued(f->in) > 0; i++)
		sleep_ms(1);
	sleep_ms(20); /* the writer is in BEGIN now, the queue empty */
}

static void gate_open(struct fixture *f, struct probe *p)
{
	struct err e = { 0 };

	assert_int_equal(store_commit(f->gate, &e), 0);
	store_close(f->gate);
	f->gate = NULL;
	pthread_join(p->t, NULL);
}

/* ---- reading back -------------------------------------------------------- */

/* on_jobs runs after the waiters wake: waits until n jobs were handed over
 * (and a moment for more that must not come). */
static void expect_jobs(struct fixture *f, size_t n)
{
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&f->mu);
		size_t got = f->njobs;
		pthread_mutex_unlock(&f->mu);
		if (got >= n)
			break;
		sleep_ms(2);
	}
	sleep_ms(10);
	pthread_mutex_lock(&f->mu);
	size_t got = f->njobs;
	pthread_mutex_unlock(&f->mu);
	assert_int_equal(got, n);
}

/* A run event: name, timestamp, run id, more payload, project. */
#define RUN_BODY                                                                 \
	"{\"event_name\":\"run.%s\",\"timestamp\":%d,\"payload\":{\"id\":%d%s}," \
	"\"project_code\":\"%s\"}"

/* The stored event of the job with this id, parsed. */
static json_object *job_event(struct fixture *f, long long id)
{
	struct job j;
	struct err e = { 0 };

	assert_int_equal(store_job_load(f->ro, id, &j, &e), 0);
	json_object *o = json_tokener_parse(j.event_json);
	job_free(&j);
	assert_non_null(o);
	return o;
}

static const char *run_title(json_object *ev)
{
	json_object *run, *title;
	if (!json_object_object_get_ex(ev, "run", &run) ||
	    !json_object_object_get_ex(run, "title", &title))
		return NULL;
	return json_object_get_string(title);
}

static long long count_deliveries(struct fixture *f)
{
	struct store_counts c;
	struct err e = { 0 };
	assert_int_equal(store_counts(f->ro, &c, &e), 0);
	return c.deliveries;
}

/* ---- the tests ----------------------------------------------------------- */

static void test_ingest__concurrent_submitters_share_few_commits_in_order(void **state)
{
	struct fixture *f = *state;
	enum { RUNS = 8, PER = 4 };
	struct sub s[RUNS];
	struct probe p;

	/* Round k: one delivery of each run, all in one group. */
	for (int k = 0; k < PER; k++) {
		gate_close(f, &p);
		for (int r = 0; r < RUNS; r++)
			sub_start(&s[r], f, RUN_BODY, "updated", 1000 + k, 100 + r,
				  ",\"title\":\"x\"", "ORD");
		wait_queued(f, RUNS);
		size_t before = f->batches;
		gate_open(f, &p);
		for (int r = 0; r < RUNS; r++) {
			sub_join(&s[r]);
			assert_int_equal(s[r].rc, 0);
			assert_false(s[r].dup);
		}
		expect_jobs(f, (size_t)(k + 1) * RUNS);
		assert_int_equal(f->batches - before, 1);
	}
	assert_int_equal(count_deliveries(f), RUNS * PER);
	/* Job ids grow in commit order; each run's jobs are its rounds'. */
	for (size_t i = 1; i < f->njobs; i++)
		assert_true(f->job_ids[i] > f->job_ids[i - 1]);
}

static void test_ingest__one_run_submitted_in_order_keeps_its_order(void **state)
{
	struct fixture *f = *state;
	struct sub s;

	for (int k = 0; k < 20; k++) {
		sub_start(&s, f, RUN_BODY, "updated", 2000 + k, 7, ",\"title\":\"t\"", "SEQ");
		sub_join(&s);
		assert_int_equal(s.rc, 0);
	}
	expect_jobs(f, 20);
	for (size_t i = 0; i < f->njobs; i++) {
		json_object *ev = job_event(f, f->job_ids[i]);
		json_object *raw, *ts;
		assert_true(json_object_object_get_ex(ev, "raw", &raw));
		assert_true(json_object_object_get_ex(raw, "timestamp", &ts));
		assert_int_equal(json_object_get_int(ts), 2000 + (int)i);
		json_object_put(ev);
	}
}

static void test_ingest__second_event_of_a_run_at_once_waits_and_sees_the_first(void **state)
{
	struct fixture *f = *state;
	struct sub a, b, other;
	struct probe p;

	gate_close(f, &p);
	sub_start(&a, f, RUN_BODY, "started", 1, 42, ",\"title\":\"Nightly\"", "EN");
	wait_queued(f, 1);
	sub_start(&b, f, RUN_BODY, "completed", 2, 42, ",\"cases\":3", "EN");
	/* another run does not wait for run 42 */
	sub_start(&other, f, RUN_BODY, "started", 1, 43, ",\"title\":\"Other\"", "EN");
	wait_queued(f, 2);
	sleep_ms(50);
	/* b holds back until a is on disk: it is not queued */
	assert_int_equal(ingest_queued(f->in), 2);
	gate_open(f, &p);
	sub_join(&a);
	sub_join(&b);
	sub_join(&other);
	assert_int_equal(a.rc, 0);
	assert_int_equal(b.rc, 0);
	assert_int_equal(other.rc, 0);
	expect_jobs(f, 3);
	assert_int_equal(f->batches, 2);
	json_object *ev = job_event(f, f->job_ids[2]);
	assert_string_equal(run_title(ev), "Nightly");
	json_object_put(ev);
	/* and the registry row is the second's, title included */
	char *text = NULL;
	struct err e = { 0 };
	assert_int_equal(store_run_get(f->ro, "EN", 42, &text, &e), 0);
	assert_non_null(strstr(text, "Nightly"));
	assert_non_null(strstr(text, "\"cases_count\":3"));
	free(text);
}

static void test_ingest__a_run_stored_before_the_stage_started_is_enriched(void **state)
{
	struct fixture *f = *state;
	struct sub a, b;
	struct err e = { 0 };

	sub_start(&a, f, RUN_BODY, "started", 1, 51, ",\"title\":\"Before\"", "RS");
	sub_join(&a);
	assert_int_equal(a.rc, 0);
	/* a new stage (a restart) learns the run from the store */
	acceptor_free(f->acc);
	assert_int_equal(acceptor_new(&f->acc, f->dir, f->in, f->rules, &e), 0);
	sub_start(&b, f, RUN_BODY, "completed", 2, 51, ",\"cases\":1", "RS");
	sub_join(&b);
	assert_int_equal(b.rc, 0);
	expect_jobs(f, 2);
	json_object *ev = job_event(f, f->job_ids[1]);
	assert_string_equal(run_title(ev), "Before");
	json_object_put(ev);
	/* and a redelivery after the restart is still a duplicate */
	sub_start(&a, f, RUN_BODY, "started", 1, 51, ",\"title\":\"Before\"", "RS");
	sub_join(&a);
	assert_int_equal(a.rc, 0);
	assert_true(a.dup);
	assert_int_equal(count_deliveries(f), 2);
}

static void test_ingest__identical_deliveries_at_once_store_one(void **state)
{
	struct fixture *f = *state;
	struct sub a, b;
	struct probe p;

	gate_close(f, &p);
	sub_start(&a, f, RUN_BODY, "started", 5, 9, ",\"title\":\"D\"", "DUP");
	wait_queued(f, 1);
	sub_start(&b, f, RUN_BODY, "started", 5, 9, ",\"title\":\"D\"", "DUP");
	sleep_ms(50);
	gate_open(f, &p);
	sub_join(&a);
	sub_join(&b);
	assert_int_equal(a.rc, 0);
	assert_int_equal(b.rc, 0);
	assert_string_equal(a.id, b.id);
	assert_int_equal(a.dup + b.dup, 1);
	assert_int_equal(count_deliveries(f), 1);
	expect_jobs(f, 1);
}

struct write_arg {
	struct fixture *f;
	pthread_t t;
	struct ingest_rows rows;
	struct ingest_job job;
	int rc, dup;
	struct err err;
};

static void *write_main(void *arg)
{
	struct write_arg *w = arg;
	w->rc = ingest_write(w->f->in, &w->rows, &w->dup, &w->err);
	return NULL;
}

/* Rows for ingest_write: one delivery of (project, run) with one job. */
static void write_start(struct write_arg *w, struct fixture *f, const char *id, const char *project,
			long long run, const char *run_json, const char *params)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->job = (struct ingest_job){ .rule = "r", .kind = "redis", .lane = "l", .params_json = params };
	w->rows = (struct ingest_rows){
		.d = { .id = id,
		       .source = "qase",
		       .type = "run.started",
		       .project = project,
		       .run_id = run,
		       .received_ms = 1,
		       .raw = "{}",
		       .raw_len = 2,
		       .event_json = "{}" },
		.run_json = run_json,
		.jobs = &w->job,
		.njobs = 1,
	};
	assert_int_equal(pthread_create(&w->t, NULL, write_main, w), 0);
}

static void test_ingest__a_failing_delivery_fails_alone_in_its_group(void **state)
{
	struct fixture *f = *state;
	struct sub a, b;
	struct write_arg bad;
	struct probe p;

	gate_close(f, &p);
	sub_start(&a, f, RUN_BODY, "started", 1, 2, ",\"title\":\"A\"", "FA");
	wait_queued(f, 1);
	/* params NULL: its job insert breaks a NOT NULL constraint */
	write_start(&bad, f, "bad", "FA", 1, "{\"title\":\"never\"}", NULL);
	wait_queued(f, 2);
	sub_start(&b, f, RUN_BODY, "started", 1, 3, ",\"title\":\"B\"", "FA");
	wait_queued(f, 3);
	gate_open(f, &p);
	sub_join(&a);
	sub_join(&b);
	pthread_join(bad.t, NULL);
	assert_int_equal(a.rc, 0);
	assert_int_equal(b.rc, 0);
	assert_int_equal(bad.rc, -1);
	assert_int_equal(bad.err.code, ERR_UNAVAILABLE);
	/* the group ran again without it: the others are stored, once */
	assert_int_equal(count_deliveries(f), 2);
	expect_jobs(f, 2);
	assert_int_equal(f->batches, 1);
	char *text = NULL;
	struct err e = { 0 };
	assert_int_equal(store_run_get(f->ro, "FA", 1, &text, &e), 0);
	assert_null(text);
}

static void test_ingest__a_failed_commit_fails_the_group_and_forgets_it(void **state)
{
	struct fixture *f = *state;
	struct rlimit old, lim;
	struct sub a, b, c;
	char pad[4096], id[32];
	int refused = 0;

	/* A file size limit makes writes fail as a full disk does. */
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 262144;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	memset(pad, 'x', sizeof(pad));
	for (int i = 0; i < 2000 && refused < 3; i++) {
		struct write_arg w;
		snprintf(id, sizeof(id), "pad-%d", i);
		write_start(&w, f, id, "FULL", 1000 + i, NULL, "{}");
		w.rows.d.raw = pad;
		w.rows.d.raw_len = sizeof(pad);
		pthread_join(w.t, NULL);
		refused = w.rc < 0 ? refused + 1 : 0;
	}
	assert_int_equal(refused, 3);
	sub_start(&a, f, RUN_BODY, "started", 1, 77, ",\"title\":\"Lost\"", "FULL");
	sub_start(&b, f, RUN_BODY, "completed", 2, 77, ",\"cases\":1", "FULL");
	sub_join(&a);
	sub_join(&b);
	assert_int_equal(a.rc, -1);
	assert_int_equal(b.rc, -1);
	assert_int_equal(a.err.code, ERR_UNAVAILABLE);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	for (int i = 0; i < 200 && ingest_probe(f->in, NULL) < 0; i++)
		sleep_ms(20);
	assert_int_equal(ingest_probe(f->in, NULL), 0);

	pthread_mutex_lock(&f->mu);
	size_t n = f->njobs;
	pthread_mutex_unlock(&f->mu);
	sub_start(&c, f, RUN_BODY, "completed", 3, 77, ",\"cases\":1", "FULL");
	sub_join(&c);
	assert_int_equal(c.rc, 0);
	expect_jobs(f, n + 1);
	json_object *ev = job_event(f, f->job_ids[n]);
	assert_null(run_title(ev));
	json_object_put(ev);
	/* and a delivery refused then is new when it comes again */
	sub_start(&a, f, RUN_BODY, "started", 1, 77, ",\"title\":\"Lost\"", "FULL");
	sub_join(&a);
	assert_int_equal(a.rc, 0);
	assert_false(a.dup);
}

static off_t file_size(const char *dir, const char *name)
{
	char path[96];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &sb) == 0 ? sb.st_size : 0;
}

/* A store with room for a small write but not for deliveries is not ready:
 * the probe after a failed commit is as large as the group that failed. */
static void test_ingest__probe_fails_while_deliveries_do_not_fit(void **state)
{
	struct fixture *f = *state;
	struct rlimit old, lim;
	struct write_arg w;
	enum { BIG = 4 << 20 };
	char *big = malloc(BIG);

	assert_non_null(big);
	memset(big, 'y', BIG);
	assert_int_equal(ingest_probe(f->in, NULL), 0);
	off_t db = file_size(f->dir, "runbridge.db"), wal = file_size(f->dir, "runbridge.db-wal");
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)(db > wal ? db : wal) + 256 * 1024;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

	write_start(&w, f, "big-1", "ROOM", 1, NULL, "{}");
	w.rows.d.raw = big;
	w.rows.d.raw_len = BIG;
	pthread_join(w.t, NULL);
	assert_int_equal(w.rc, -1);
	/* a 64 KiB write would still fit; readiness must not say so */
	assert_int_equal(ingest_probe(f->in, NULL), -1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(ingest_probe(f->in, NULL), 0);
	/* and, ready again, the delivery is taken when it comes again */
	write_start(&w, f, "big-1", "ROOM", 1, NULL, "{}");
	w.rows.d.raw = big;
	w.rows.d.raw_len = BIG;
	pthread_join(w.t, NULL);
	assert_int_equal(w.rc, 0);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_ingest__concurrent_submitters_share_few_commits_in_order, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_ingest__one_run_submitted_in_order_keeps_its_order, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_ingest__second_event_of_a_run_at_once_waits_and_sees_the_first, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_ingest__a_run_stored_before_the_stage_started_is_enriched, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_ingest__identical_deliveries_at_once_store_one,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_ingest__a_failing_delivery_fails_alone_in_its_group, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_ingest__a_failed_commit_fails_the_group_and_forgets_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ingest__probe_fails_while_deliveries_do_not_fit,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
