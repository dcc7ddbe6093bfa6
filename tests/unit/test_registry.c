/* registry: a kind registered by a test is parsed by rules, rendered at
 * routing, and run through the dispatcher's own pools, as a built-in kind
 * is: adding a kind needs nothing outside its file and the table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actions/action.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/metrics.h"
#include "dispatch/dispatch.h"
#include "rules/rules.h"
#include "store/ingest.h"
#include "store/store.h"

/* ---- the test-only kind: `- fake: { word: "{{project}}" }` --------------- */

struct fake_spec {
	char *word;
};

static atomic_int fake_runs, fake_opens;
static char fake_seen[256];

static void fake_free(void *p)
{
	struct fake_spec *s = p;
	if (s)
		free(s->word);
	free(s);
}

static int fake_parse(void **out, const struct cfg_node *node, struct errlist *errs)
{
	const struct cfg_node *w = cfg_get(node, "word");
	struct fake_spec *s;

	*out = NULL;
	if (!w || w->type != CFG_SCALAR)
		return errlist_add(errs, "fake: word is required");
	if (!(s = calloc(1, sizeof(*s))) || !(s->word = strdup(w->value))) {
		free(s);
		return errlist_add(errs, "out of memory");
	}
	*out = s;
	return 0;
}

static int fake_render(json_object **out, const void *spec, json_object *event, struct err *err)
{
	const struct fake_spec *s = spec;
	json_object *p;

	(void)event;
	(void)err;
	*out = json_object_new_object();
	json_object_object_add(*out, "word", json_object_new_string(s->word));
	json_object_object_add(*out, "target", json_object_new_string("t1"));
	if (json_object_object_get_ex(event, "project", &p))
		json_object_object_add(*out, "project", json_object_get(p));
	return 0;
}

static void fake_pool(const struct config *cfg, struct action_pool *out)
{
	(void)cfg;
	*out = (struct action_pool){ .threads = 1, .batch = 4 };
}

static int fake_open(void **out, const struct action_ops *self, struct action_host *host,
		     struct err *err)
{
	(void)self;
	(void)host;
	(void)err;
	atomic_fetch_add(&fake_opens, 1);
	*out = NULL;
	return 0;
}

static void fake_run(void *state, struct action_host *host, struct action_job *jobs, size_t n)
{
	(void)state;
	(void)host;
	for (size_t i = 0; i < n; i++) {
		snprintf(fake_seen, sizeof(fake_seen), "%s %s %d",
			 json_object_to_json_string_ext(jobs[i].params, JSON_C_TO_STRING_PLAIN),
			 jobs[i].rule, jobs[i].attempt);
		jobs[i].res->outcome = WORK_OK;
		snprintf(jobs[i].res->detail, sizeof(jobs[i].res->detail), "faked");
		atomic_fetch_add(&fake_runs, 1);
	}
}

static const struct action_ops fake_ops = {
	.name = "fake",
	.summary = "a test-only kind",
	.parse = fake_parse,
	.render = fake_render,
	.free_spec = fake_free,
	.pool = fake_pool,
	.open = fake_open,
	.run = fake_run,
};

static int setup(void **state)
{
	(void)state;
	/* once per process: the registry keeps it */
	if (!action_find("fake"))
		assert_int_equal(action_register(&fake_ops), 0);
	return 0;
}

/* ---- helpers --------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static struct rules *load_rules(const char *dir)
{
	char path[512];
	struct rules *rs = NULL;
	struct errlist errs = ERRLIST_INIT;

	snprintf(path, sizeof(path), "%s/rules.yaml", dir);
	write_file(path, "rules:\n"
			 "  - name: faked\n"
			 "    actions:\n"
			 "      - fake: { word: hello }\n");
	if (rules_load(&rs, path, &errs) < 0)
		fail_msg("rules: %s", errs.n ? errs.msgs[0] : "?");
	errlist_free(&errs);
	return rs;
}

/* One delivery and the job rules made of it, straight into the store. */
static void queue_job(const struct config *cfg, const struct rules *rs)
{
	struct store *st;
	struct route_result rr;
	struct err err;
	long long seq, id;
	json_object *ev = json_tokener_parse("{\"id\":\"d-1\",\"type\":\"run.started\","
					     "\"project\":\"DEMO\",\"run_id\":7}");
	const char *ev_json = json_object_to_json_string(ev);

	assert_int_equal(rules_route(rs, ev, &rr, &err), 0);
	assert_int_equal(rr.n, 1);
	assert_string_equal(rr.v[0].kind, "fake");
	assert_string_equal(json_object_to_json_string_ext(rr.v[0].params, JSON_C_TO_STRING_PLAIN),
			    "{\"word\":\"hello\",\"target\":\"t1\",\"project\":\"DEMO\"}");
	assert_int_equal(store_open(&st, cfg->data_dir, STORE_RW, &err), 0);
	assert_int_equal(store_begin(st, &err), 0);
	struct delivery_rec d = { .id = "d-1",
				  .source = "qase",
				  .type = "run.started",
				  .project = "DEMO",
				  .run_id = 7,
				  .received_ms = clock_wall_ms(),
				  .raw = "{}",
				  .raw_len = 2,
				  .event_json = ev_json };
	assert_int_equal(store_delivery_insert(st, &d, &seq, &err), 0);
	struct job_rec j = { .delivery_seq = seq,
			     .rule = "faked",
			     .index = 0,
			     .kind = "fake",
			     .params_json = json_object_to_json_string(rr.v[0].params),
			     .lane = "DEMO#7/faked/0" };
	assert_int_equal(store_job_insert(st, &j, clock_wall_ms(), &id, &err), 0);
	assert_int_equal(store_commit(st, &err), 0);
	store_close(st);
	route_result_free(&rr);
	json_object_put(ev);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_registry__a_registered_kind_is_listed_and_found(void **state)
{
	(void)state;
	assert_ptr_equal(action_find("fake"), &fake_ops);
	assert_ptr_equal(action_at(action_count() - 1), &fake_ops);
	assert_non_null(strstr(action_kind_list(), ", fake"));
	assert_int_equal(action_register(&fake_ops), -1); /* the name is taken */
}

static void test_registry__every_kind_has_the_whole_contract(void **state)
{
	(void)state;
	for (size_t i = 0; i < action_count(); i++) {
		const struct action_ops *k = action_at(i);
		assert_non_null(k->name);
		assert_non_null(k->summary);
		assert_non_null(k->parse);
		assert_non_null(k->render);
		assert_non_null(k->free_spec);
		assert_non_null(k->pool);
		assert_non_null(k->run);
		for (const struct action_key *s = k->settings; s && s->name; s++)
			assert_non_null(s->desc);
	}
}

static void test_registry__a_test_kind_runs_through_dispatch(void **state)
{
	char dir[] = "/tmp/test_registry_XXXXXX", text[700];
	struct config *cfg;
	struct errlist errs = ERRLIST_INIT;
	struct dispatch *d;
	struct ingest *in;
	struct store *st;
	struct err err;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(text, sizeof(text), "data_dir: %s\n", dir);
	assert_int_equal(config_load_string(&cfg, "c.yaml", text, NULL, &errs), 0);
	struct rules *rs = load_rules(dir);
	queue_job(cfg, rs);

	assert_int_equal(store_open(&st, cfg->data_dir, STORE_RW, &err), 0);
	assert_int_equal(dispatch_new(&d, cfg, &err), 0);
	assert_int_equal(ingest_start(&in, st, dispatch_push, d, &err), 0);
	assert_int_equal(dispatch_start(d, in, &err), 0);
	for (int i = 0; i < 500 && atomic_load(&fake_runs) == 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&fake_runs), 1);
	assert_int_equal(atomic_load(&fake_opens), 1); /* its pool: one thread */
	assert_string_equal(fake_seen,
			    "{\"word\":\"hello\",\"target\":\"t1\",\"project\":\"DEMO\"} faked 1");

	/* the attempt counts under its kind and target */
	struct metrics_gauges g = { 0 };
	char *page = NULL;
	for (int i = 0; i < 200; i++) {
		free(page);
		page = metrics_render(&g);
		if (strstr(page, "{kind=\"fake\",target=\"t1\",outcome=\"ok\"} 1"))
			break;
		usleep(10000);
	}
	assert_non_null(strstr(
		page,
		"runbridge_action_attempts_total{kind=\"fake\",target=\"t1\",outcome=\"ok\"} 1"));
	assert_non_null(strstr(
		page,
		"runbridge_action_attempts_total{kind=\"testomat\",target=\"\",outcome=\"ok\"} 0"));
	free(page);

	assert_int_equal(dispatch_stop(d, 5), 0);
	ingest_stop(in);
	dispatch_free(d);
	ingest_free(in);
	rules_free(rs);
	config_free(cfg);
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry__a_registered_kind_is_listed_and_found),
		cmocka_unit_test(test_registry__every_kind_has_the_whole_contract),
		cmocka_unit_test(test_registry__a_test_kind_runs_through_dispatch),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
