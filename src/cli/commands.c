/* cli: the offline commands: check, route, replay, status. */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>

#include "cli/online.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/redact.h"
#include "event/event.h"
#include "http/srcstat.h"
#include "rules/rules.h"
#include "store/store.h"

static const char check_usage[] =
	"usage: runbridge check -c FILE [--online]\n"
	"\n"
	"Validates the configuration and every rule file it names.  Prints each\n"
	"problem as file:line:column: message and exits 1 if there is any.\n"
	"  --online   then also reaches what the configuration names, with calls\n"
	"             that change nothing: Redis (AUTH, SELECT, PING), each target\n"
	"             (a GET that needs its key), the store's directory (writable,\n"
	"             free space).  One line each; exits 1 if any fails.\n";

/* Takes --online out of argv (cli_parse knows only the shared options);
 * a --online that is the value of -c stays. */
static int take_online(int *argc, char **argv)
{
	const char *prev = "";
	int found = 0, n = 1;

	for (int i = 1; i < *argc; i++) {
		char *a = argv[i];
		if (!strcmp(a, "--online") && strcmp(prev, "-c") && strcmp(prev, "--config"))
			found = 1;
		else
			argv[n++] = a;
		prev = a;
	}
	*argc = n;
	return found;
}

int cli_check(int argc, char **argv)
{
	struct cli_opts o;
	struct config *cfg;
	struct rules *rules;
	int online = take_online(&argc, argv);
	int rc;

	if ((rc = cli_parse(argc, argv, check_usage, 0, 0, &o)) != 0 || o.help)
		return rc;
	if (cli_load(o.config, &cfg, &rules) != 0)
		return 1;
	printf("%s: OK (%zu rule%s from %s)\n", o.config, rules_count(rules),
	       rules_count(rules) == 1 ? "" : "s", cfg->rules_path);
	rc = online && online_check(cfg) < 0 ? 1 : 0;
	rules_free(rules);
	config_free(cfg);
	return rc;
}

/* ---- route ------------------------------------------------------------- */

static const char route_usage[] =
	"usage: runbridge route -c FILE DELIVERY.json [--show-secrets]\n"
	"\n"
	"Dry run: prints the normalized event, the rules that match and each\n"
	"rendered action, as JSON.  Runs nothing and stores nothing; reads the\n"
	"run registry (if the store exists) to enrich the event as serve would.\n"
	"The secret parts of http actions (query values, the path of chat\n"
	"webhook hosts, credential headers) print as *** unless --show-secrets.\n";

/* NULL with errno set when it cannot be read; EFBIG past 64 MiB. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b;

	*len = 0;
	if (!f)
		return NULL;
	buf_init(&b, 64u << 20);
	for (;;) {
		if (buf_reserve(&b, 4096) < 0) {
			buf_free(&b);
			fclose(f);
			errno = EFBIG;
			return NULL;
		}
		size_t r = fread(b.p + b.len, 1, b.cap - b.len - 1, f);
		buf_commit(&b, r);
		if (r == 0)
			break;
	}
	fclose(f);
	return buf_detach(&b, len);
}

static json_object *registry_run(const struct config *cfg, json_object *delivery)
{
	struct store *st;
	struct err err;
	char *text = NULL;
	json_object *o = NULL;

	if (event_run_id_of(delivery) <= 0 || store_open(&st, cfg->data_dir, STORE_RO, &err) < 0)
		return NULL;
	if (store_run_get(st, event_project_of(delivery, &cfg->sources[0]),
			  event_run_id_of(delivery), &text, &err) == 0 &&
	    text)
		o = json_tokener_parse(text);
	free(text);
	store_close(st);
	return o;
}

json_object *cli_http_masked(json_object *params)
{
	json_object *copy = NULL, *url, *headers;

	if (json_object_deep_copy(params, &copy, NULL) < 0)
		return NULL;
	if (json_object_object_get_ex(copy, "url", &url) &&
	    json_object_is_type(url, json_type_string)) {
		char masked[2048];
		redact_url(json_object_get_string(url), masked, sizeof(masked));
		json_object_object_add(copy, "url", json_object_new_string(masked));
	}
	if (json_object_object_get_ex(copy, "headers", &headers) &&
	    json_object_is_type(headers, json_type_object)) {
		json_object_object_foreach(headers, name, value)
		{
			if (value && redact_header_is_secret(name))
				json_object_object_add(headers, name,
						       json_object_new_string(REDACT_MASK));
		}
	}
	return copy;
}

static json_object *route_report(json_object *ev, const struct route_result *rr, int show_secrets)
{
	json_object *out = json_object_new_object();
	json_object *matched = json_object_new_array();
	json_object *actions = json_object_new_array();

	json_object_object_add(out, "event", json_object_get(ev));
	for (size_t i = 0; i < rr->n_matched; i++)
		json_object_array_add(matched, json_object_new_string(rr->matched[i]));
	for (size_t i = 0; i < rr->n; i++) {
		json_object *a = json_object_new_object();
		json_object_object_add(a, "rule", json_object_new_string(rr->v[i].rule));
		json_object_object_add(a, "index", json_object_new_int(rr->v[i].index));
		json_object_object_add(a, "kind", json_object_new_string(rr->v[i].kind));
		json_object *params = !show_secrets && strcmp(rr->v[i].kind, "http") == 0
					      ? cli_http_masked(rr->v[i].params)
					      : json_object_get(rr->v[i].params);
		json_object_object_add(a, rr->v[i].kind, params);
		json_object_array_add(actions, a);
	}
	json_object_object_add(out, "matched", matched);
	json_object_object_add(out, "actions", actions);
	return out;
}

int cli_route_report(char **out, const struct config *cfg, const struct rules *rules,
		     const char *body, size_t len, int show_secrets, int pretty, struct err *err)
{
	struct route_result rr = { 0 };
	json_object *delivery = NULL, *prior = NULL, *ev = NULL, *report = NULL;
	char id[65];
	int rc = -1;

	*out = NULL;
	if (event_parse(&delivery, body, len, cfg->max_json_depth, err) < 0) {
		err->code = ERR_INVALID;
		return -1;
	}
	event_delivery_id(id, cfg->sources[0].name, body, len);
	prior = registry_run(cfg, delivery);
	if (event_normalize(&ev, delivery, &cfg->sources[0], id, clock_wall_ms(), prior, err) < 0 ||
	    rules_route(rules, ev, &rr, err) < 0)
		goto done;
	report = route_report(ev, &rr, show_secrets);
	const char *text = json_object_to_json_string_ext(
		report, (pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN) |
				JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!(*out = strdup(text))) {
		err_set(err, "out of memory");
		goto done;
	}
	rc = 0;
done:
	json_object_put(report);
	route_result_free(&rr);
	json_object_put(ev);
	json_object_put(prior);
	json_object_put(delivery);
	return rc;
}

int cli_route(int argc, char **argv)
{
	struct cli_opts o;
	struct config *cfg;
	struct rules *rules;
	struct err err = { 0 };
	char *body, *out = NULL;
	size_t len;
	int rc;

	if ((rc = cli_parse(argc, argv, route_usage, 1, 0, &o)) != 0 || o.help)
		return rc;
	if (cli_load(o.config, &cfg, &rules) != 0)
		return 1;
	rc = 1;
	if (!(body = read_file(o.positional, &len))) {
		fprintf(stderr, "%s: cannot read: %s\n", o.positional, strerror(errno));
	} else if (cli_route_report(&out, cfg, rules, body, len, o.show_secrets, 1, &err) < 0) {
		if (err.code == ERR_INVALID)
			fprintf(stderr, "%s: refused (HTTP 400): %s\n", o.positional, err.msg);
		else
			fprintf(stderr, "%s: %s\n", o.positional, err.msg);
	} else {
		puts(out);
		rc = 0;
	}
	free(out);
	free(body);
	rules_free(rules);
	config_free(cfg);
	return rc;
}

/* ---- replay and status --------------------------------------------------- */

static const char replay_usage[] =
	"usage: runbridge replay -c FILE [--dead] [--id ID]\n"
	"\n"
	"Re-queues actions; a running daemon picks them up within a second.\n"
	"  --dead    every action in dead letters (the default)\n"
	"  --id ID   one action (its job number, as `status --dead` lists) or\n"
	"            every action of one delivery (its id, as the 202 gave it);\n"
	"            with --dead, only those of them that are dead\n";

int cli_replay(int argc, char **argv)
{
	struct cli_opts o;
	struct config *cfg;
	struct store *st;
	struct err err;
	long long n = 0;
	int rc;

	if ((rc = cli_parse(argc, argv, replay_usage, 0, 1, &o)) != 0 || o.help)
		return rc;
	if (cli_load(o.config, &cfg, NULL) != 0)
		return 1;
	rc = 1;
	if (store_open(&st, cfg->data_dir, STORE_RW, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		goto done;
	}
	if (store_replay(st, o.dead || !o.id, o.id, clock_wall_ms(), &n, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
	} else {
		printf("re-queued %lld action%s\n", n, n == 1 ? "" : "s");
		rc = 0;
	}
	store_close(st);
done:
	config_free(cfg);
	return rc;
}

static const char status_usage[] =
	"usage: runbridge status -c FILE [--dead] [--run PROJECT#ID]\n"
	"\n"
	"Counts stored deliveries and actions by state, shows the store's size on\n"
	"disk (file, WAL, free pages, deliveries retention deleted), and says when\n"
	"each source's endpoint last accepted and last refused a delivery.\n"
	"  --dead              also list the actions in dead letters with their last error\n"
	"  --run PROJECT#ID    show how a Qase run is mapped on each target\n";

static void print_map(void *ctx, const char *kind, const char *target, const struct map_rec *m,
		      long long updated_ms)
{
	int *n = ctx;
	(*n)++;
	printf("%s %s: remote_id %s, state %s, updated_ms %lld, data %s\n", kind, target,
	       m->remote_id ? m->remote_id : "-", m->state ? m->state : "-", updated_ms,
	       m->data ? m->data : "{}");
}

/* "2026-12-01T21:00:00.123Z", or "never" for 0. */
static const char *iso_ms(char *buf, size_t len, long long ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char date[32];

	if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		return "never";
	snprintf(buf, len, "%s.%03lldZ", date, ms % 1000);
	return buf;
}

/* One line per source: last accepted; last refusal of each status. */
static void print_sources(struct store *st, const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_sources; i++) {
		struct srcstat_view v = { 0 };
		struct err err;
		char *json = NULL, when[48];

		if (st && store_source_get(st, cfg->sources[i].name, &json, &err) == 0)
			srcstat_parse(&v, json);
		free(json);
		printf("source %s: last accepted %s", cfg->sources[i].name,
		       iso_ms(when, sizeof(when), v.accepted_ms));
		for (int k = 0; k < SRCSTAT_NSTATUS; k++)
			if (v.refused_ms[k])
				printf(", last refused %d %s", srcstat_statuses[k],
				       iso_ms(when, sizeof(when), v.refused_ms[k]));
		if (v.refusing_since_ms)
			printf(", refusing every delivery since %s",
			       iso_ms(when, sizeof(when), v.refusing_since_ms));
		printf("\n");
	}
}

static int print_run(struct store *st, const char *run)
{
	const char *hash = strrchr(run, '#');
	char project[256], *end;
	struct err err;
	int n = 0;

	if (!hash || hash == run || (size_t)(hash - run) >= sizeof(project)) {
		fprintf(stderr, "runbridge: --run wants PROJECT#ID, e.g. DEMO#42\n");
		return 2;
	}
	memcpy(project, run, (size_t)(hash - run));
	project[hash - run] = '\0';
	long long id = strtoll(hash + 1, &end, 10);
	if (*end || !hash[1]) {
		fprintf(stderr, "runbridge: --run wants PROJECT#ID, e.g. DEMO#42\n");
		return 2;
	}
	printf("run %s#%lld:\n", project, id);
	if (st && store_map_list(st, project, id, print_map, &n, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	if (!n)
		printf("no target mapping\n");
	return 0;
}

static void print_dead(void *ctx, long long id, const char *rule, const char *kind,
		       const char *delivery_id, int attempts, const char *last_error)
{
	(void)ctx;
	printf("dead job %lld: rule %s, %s action, delivery %s, %d attempt%s: %s\n", id, rule, kind,
	       delivery_id, attempts, attempts == 1 ? "" : "s", last_error ? last_error : "");
}

/* The store on disk ("name: integer" lines, like the counts above). */
static void print_size(struct store *st)
{
	struct store_size z = { 0 };
	struct err err;

	if (st && store_size(st, &z, &err) < 0)
		fprintf(stderr, "%s\n", err.msg);
	printf("store_bytes: %lld\nstore_wal_bytes: %lld\nstore_pages: %lld\n"
	       "store_free_pages: %lld\nstore_page_bytes: %lld\nstore_incremental_vacuum: %d\n"
	       "store_deleted_deliveries: %lld\n",
	       z.file_bytes, z.wal_bytes, z.pages, z.free_pages, z.page_bytes, z.incremental_vacuum,
	       z.deleted_deliveries);
}

int cli_status(int argc, char **argv)
{
	struct cli_opts o;
	struct config *cfg;
	struct store *st;
	struct store_counts c;
	struct err err;
	int rc;

	if ((rc = cli_parse(argc, argv, status_usage, 0, 2, &o)) != 0 || o.help)
		return rc;
	if (cli_load(o.config, &cfg, NULL) != 0)
		return 1;
	int opened = store_open(&st, cfg->data_dir, STORE_RO, &err);
	rc = 1;
	if (opened < 0) {
		if (opened != ERR_NOTFOUND) {
			fprintf(stderr, "%s\n", err.msg);
			goto done;
		}
		memset(&c, 0, sizeof(c)); /* nothing stored yet */
		st = NULL;
	} else if (store_counts(st, &c, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		store_close(st);
		goto done;
	}
	printf("deliveries: %lld\npending: %lld\nretrying: %lld\ndead: %lld\ndone: %lld\n",
	       c.deliveries, c.pending, c.retrying, c.dead, c.done);
	print_size(st);
	print_sources(st, cfg);
	if (st && o.dead && store_dead_list(st, 1000, print_dead, NULL, &err) < 0)
		fprintf(stderr, "%s\n", err.msg);
	rc = o.run ? print_run(st, o.run) : 0;
	store_close(st);
done:
	config_free(cfg);
	return rc;
}
