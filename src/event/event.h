/*
 * event: checks a raw delivery and normalizes it into runbridge.event.v1.
 *
 * event_parse runs in the HTTP thread and decides 400s: the body must be a
 * JSON object with a string `event_name` (or legacy `event`), an object
 * `payload`, and correctly typed optional fields (timestamp and
 * team_member_id integers, project_code a string).  Only run.* events must
 * have a `payload.id`, a positive integer: it is their run id.  Every other
 * family (case, suite, plan, shared_step, result, names not known yet) is
 * accepted as it comes, since Qase disables a webhook that keeps failing.
 *
 * event_normalize runs in the accept stage, in receipt order per run,
 * because it enriches from the run registry: the registry holds the latest `run` object
 * of each (project, run id), and fields a run event lacks (title,
 * description, plan, environment, cases_count, public) are filled from it.
 * Only run.* events write the registry (the caller's job, see
 * event_is_run); result.* events read it; other families have no run.
 *
 *   {"schema":"runbridge.event.v1","id":"<sha256 hex of source+body>",
 *    "source":"qase","type":"run.completed","entity":"run","entity_id":42,
 *    "project":"DEMO","run_id":42,
 *    "occurred_at":"2022-04-21T11:23:14Z","received_at":"...123Z",
 *    "actor_id":40,
 *    "run":{"title":..,"description":..,"plan":..,"environment":..,
 *           "cases_count":..,"cases_added":..,"public":..,
 *           "counts":{"total","passed","failed","blocked","skipped","untested"},
 *           "duration_ms":..},
 *    "raw":{...the delivery, as received (event_keep_bytes)...}}
 *
 * entity is the name up to its first dot; entity_id is payload.id when an
 * integer, else payload.hash when a string, else null.  result.* events
 * add "result":{"case_id","status","hash","time_ms","comment","stacktrace"};
 * families other than run and result have "run_id":null and "run":null.
 */
#ifndef RB_EVENT_EVENT_H
#define RB_EVENT_EVENT_H

#include <stddef.h>
#include <json-c/json.h>

#include "core/config.h"
#include "core/err.h"

#define EVENT_SCHEMA "runbridge.event.v1"

/* Parses and checks body.  On failure err->msg says what is wrong (it is the
 * HTTP 400 body's "error"), err->code is ERR_INVALID (ERR_NOMEM when memory
 * ran out). */
int event_parse(json_object **out, const char *body, size_t len, int max_depth, struct err *err);

/* sha256(source || body) as 64 lowercase hex digits + NUL. */
void event_delivery_id(char out[65], const char *source, const char *body, size_t len);

/* The event name (`event_name`, else `event`) of a delivery that passed
 * event_parse. */
const char *event_name_of(json_object *delivery);

/* Its project: a non-empty project_code, else the source's `project`
 * setting (src may be NULL), else NULL. */
const char *event_project_of(json_object *delivery, const struct source_cfg *src);

/* 1 for run.* events: the ones that describe (and update) a run. */
int event_is_run(json_object *delivery);

/* The run it is about, or 0 when none: payload.id for run.* events;
 * payload.run_id, payload.run.id or an integer payload.run for result.*;
 * 0 for every other family. */
long long event_run_id_of(json_object *delivery);

/* The bytes a delivery was parsed from: while set, serializing the delivery
 * (as the event's "raw") writes them as they came, less the whitespace
 * between tokens (the event stays one line), so big integers, repeated keys
 * and the sender's escapes survive.  The span must outlive every serialization; it is
 * borrowed, not freed. */
struct event_bytes {
	const char *p;
	size_t len;
};
void event_keep_bytes(json_object *delivery, struct event_bytes *raw);

/*
 * Builds the normalized event.  delivery is borrowed (it is referenced as
 * "raw"); prior_run is the registry's `run` object for this run, or NULL.
 * received_ms is the Unix time in milliseconds the request arrived.
 * Returns 0 and a new object, or -1 on OOM.
 */
int event_normalize(json_object **out, json_object *delivery, const struct source_cfg *src,
		    const char *id, long long received_ms, json_object *prior_run, struct err *err);

#endif
