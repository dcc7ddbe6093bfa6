/*
 * fuzz_rules: rule files, through cfgtree, conditions (globs, numbers,
 * POSIX regexes), action specs and templates.  A rule set that loads routes
 * one fixed normalized event (a run.completed with failures, built by
 * event_normalize from a delivery and a prior run), so that matching and
 * rendering run on whatever the loader accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "core/config.h"
#include "event/event.h"
#include "rules/rules.h"

static const char delivery_text[] = "{\"event_name\":\"run.completed\",\"timestamp\":1650540194,"
				    "\"project_code\":\"DEMO\",\"team_member_id\":40,"
				    "\"payload\":{\"id\":42,\"cases\":14,\"passed\":10,\"failed\":3,"
				    "\"blocked\":1,\"skiped\":0,\"duration\":31200}}";

static const char prior_text[] = "{\"title\":\"Nightly \\\"$(id)\\\"\\n../x \\u00e9\","
				 "\"description\":null,\"plan\":{\"id\":3,\"title\":\"d\"},"
				 "\"environment\":\"staging\",\"cases_count\":14,\"public\":true}";

static json_object *event;

static void build_event(void)
{
	struct source_cfg src = { .name = "qase", .kind = "qase", .path = "/webhooks/qase" };
	struct err err = { 0 };
	json_object *d, *prior = json_tokener_parse(prior_text);
	char id[65];

	if (!prior || event_parse(&d, delivery_text, strlen(delivery_text), 32, &err) < 0)
		abort();
	event_delivery_id(id, "qase", delivery_text, strlen(delivery_text));
	if (event_normalize(&event, d, &src, id, 1700000000123LL, prior, &err) < 0)
		abort();
	json_object_put(d);     /* the event holds its own reference as "raw" */
	json_object_put(prior); /* values are shared by reference, too */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	build_event();
	return 0;
}

static void route(const struct rules *rs)
{
	struct route_result r;
	struct err err = { 0 };

	if (rules_route(rs, event, &r, &err) < 0)
		return; /* rendering fails only for memory */
	if (r.n_matched > rules_count(rs))
		abort();
	for (size_t i = 0; i < r.n; i++)
		(void)json_object_to_json_string(r.v[i].params);
	route_result_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errlist errs = ERRLIST_INIT;
	struct rules *rs = NULL;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (rules_load_string(&rs, "fuzz.yaml", text, &errs) == 0) {
		route(rs);
		rules_free(rs);
	} else if (rs != NULL || errs.n == 0) {
		abort(); /* failure leaves no rules and names a problem */
	}
	errlist_free(&errs);
	free(text);
	return 0;
}
