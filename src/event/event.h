/*
 * event: checks a raw delivery and normalizes it into runbridge.event.v1.
 *
 * event_parse runs in the HTTP thread and decides 400s: the body must be a
 * JSON object with a string `event_name` (or legacy `event`), an object
 * `payload` whose `id` is a positive integer, and correctly typed optional
 * fields (timestamp and team_member_id integers, project_code a string).
 *
 * event_normalize runs in the store's writer, in receipt order, because it
 * enriches from the run registry: the registry holds the latest `run` object
 * of each (project, run id), and fields an event lacks (title, description,
 * plan, environment, cases_count, public) are filled from it.
 *
 *   {"schema":"runbridge.event.v1","id":"<sha256 hex of source+body>",
 *    "source":"qase","type":"run.completed","project":"DEMO","run_id":42,
 *    "occurred_at":"2022-04-21T11:23:14Z","received_at":"...123Z",
 *    "actor_id":40,
 *    "run":{"title":..,"description":..,"plan":..,"environment":..,
 *           "cases_count":..,"cases_added":..,"public":..,
 *           "counts":{"total","passed","failed","blocked","skipped","untested"},
 *           "duration_ms":..},
 *    "raw":{...the delivery...}}
 */
#ifndef RB_EVENT_EVENT_H
#define RB_EVENT_EVENT_H

#include <stddef.h>
#include <json-c/json.h>

#include "core/config.h"
#include "core/err.h"

#define EVENT_SCHEMA "runbridge.event.v1"

/* Parses and checks body.  On failure err->msg says what is wrong (it is the
 * HTTP 400 body's "error"), err->code = 400. */
int event_parse(json_object **out, const char *body, size_t len,
		int max_depth, struct err *err);

/* sha256(source || body) as 64 lowercase hex digits + NUL. */
void event_delivery_id(char out[65], const char *source, const char *body,
		       size_t len);

/* The event name (`event_name`, else `event`), project code (NULL when
 * absent) and run id of a delivery that passed event_parse (payload.id; for
 * result.* events payload.run_id or payload.run.id when present). */
const char *event_name_of(json_object *delivery);
const char *event_project_of(json_object *delivery);
long long event_run_id_of(json_object *delivery);

/*
 * Builds the normalized event.  delivery is borrowed (it is referenced as
 * "raw"); prior_run is the registry's `run` object for this run, or NULL.
 * received_ms is the Unix time in milliseconds the request arrived.
 * Returns 0 and a new object, or -1 on OOM.
 */
int event_normalize(json_object **out, json_object *delivery,
		    const struct source_cfg *src, const char *id,
		    long long received_ms, json_object *prior_run,
		    struct err *err);

#endif
