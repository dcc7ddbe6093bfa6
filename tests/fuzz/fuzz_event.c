/*
 * fuzz_event: a delivery body as a peer sends it, through everything the
 * HTTP thread and the writer do with it before rules see it.
 *
 * event_parse decides the 400s; what it accepts is hashed into the
 * delivery id and normalized three times: with no registry entry, with the
 * run object the first normalization produced (what the registry would
 * hold for the next event of the run), and with a hostile registry entry
 * (extreme numbers, wrong types), in both duration units.
 *
 * The input is not NUL-terminated, as a request body is not: reads past
 * `size` are ASan reports.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "core/config.h"
#include "event/event.h"

#define MAX_DEPTH 32 /* http.max_json_depth's default */

static struct source_cfg src_ms = {
	.name = "qase", .kind = "qase", .path = "/webhooks/qase", .duration_unit = DURATION_MS
};
static struct source_cfg src_s = {
	.name = "qase", .kind = "qase", .path = "/webhooks/qase", .duration_unit = DURATION_S
};

static const char hostile_prior[] = "{\"title\":7,\"description\":[\"x\"],\"plan\":\"not an object\","
				    "\"environment\":{},\"cases_count\":9223372036854775807,"
				    "\"public\":\"yes\",\"counts\":null}";

/* Normalizes and serializes; the caller puts the result. */
static json_object *normalize(json_object *d, const struct source_cfg *src, const char *id,
			      long long received_ms, json_object *prior)
{
	struct err err = { 0 };
	json_object *ev = NULL;

	if (event_normalize(&ev, d, src, id, received_ms, prior, &err) < 0)
		abort(); /* only out of memory may fail, and libFuzzer caps rss */
	if (strcmp(json_object_get_string(json_object_object_get(ev, "type")), event_name_of(d)) != 0)
		abort();
	/* entity is the name up to its first dot; only run and result events
	 * may carry a run */
	const char *entity = json_object_get_string(json_object_object_get(ev, "entity"));
	size_t n = strlen(entity);
	if (strncmp(entity, event_name_of(d), n) != 0 ||
	    (event_name_of(d)[n] != '.' && event_name_of(d)[n] != '\0'))
		abort();
	if (!event_is_run(d) && strcmp(entity, "result") != 0 &&
	    (json_object_object_get(ev, "run") || json_object_object_get(ev, "run_id")))
		abort();
	(void)json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN);
	return ev;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err = { 0 };
	json_object *d = NULL, *first, *second, *third, *prior;
	char id[65];

	if (event_parse(&d, (const char *)data, size, MAX_DEPTH, &err) < 0) {
		if (d != NULL || err.code != ERR_INVALID || err.msg[0] == '\0')
			abort(); /* a refusal must say why (a 400 for the HTTP layer) */
		return 0;
	}
	if (!event_name_of(d) || (event_is_run(d) && event_run_id_of(d) <= 0) ||
	    event_run_id_of(d) < 0)
		abort(); /* event_parse promised a name, and a run id to run events */
	(void)event_project_of(d, NULL);
	event_delivery_id(id, "qase", (const char *)data, size);
	if (strlen(id) != 64)
		abort();

	first = normalize(d, &src_ms, id, 1700000000123LL, NULL);
	second = normalize(d, &src_s, id, -1, json_object_object_get(first, "run"));
	prior = json_tokener_parse(hostile_prior);
	third = normalize(d, &src_ms, id, INT64_MAX, prior);

	json_object_put(third);
	json_object_put(prior);
	json_object_put(second);
	json_object_put(first);
	json_object_put(d);
	return 0;
}
