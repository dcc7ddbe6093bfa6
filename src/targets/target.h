/*
 * target: what the translated actions (testomat, qasphere, testcenter)
 * share: their configured targets, the per-run mapping, and the shape of an
 * attempt.
 *
 *   targets:
 *     testomat:
 *       main: { base_url: https://app.testomat.io, api_key: ${TESTOMATIO_API_KEY} }
 *
 *   - testomat: { target: main }          # in a rule
 *
 * The mapping (Qase project + run id -> Testomat uid, QA Sphere run id,
 * Test Center report) lives in the store's target_runs table.  It is read
 * at the start of each attempt and written synchronously (committed before
 * the call returns), so the next event of the run always sees it.  A create
 * writes its intent (state "creating") before the call and the remote id
 * right after: a crash in between is reconciled on the retry, never
 * creating twice (see each kind for how).
 */
#ifndef RB_ACTIONS_TARGET_H
#define RB_ACTIONS_TARGET_H

#include <json-c/json.h>

#include "targets/outbound.h"
#include "dispatch/worker.h"
#include "core/config.h"
#include "core/err.h"

/* The mapping of one Qase run on one target. */
struct run_map {
	char *remote_id;     /* Testomat uid, QA Sphere run id, Test Center report id; NULL before */
	char *state;         /* kind-defined: "creating", "open", "finished", "deleted"...; NULL before */
	json_object *data;   /* kind-defined extra (urls, flags); an object, never NULL */
};

struct target_attempt {
	const struct target_cfg *target;  /* from the live config: base_url, secrets */
	json_object *params;              /* the job's rendered params */
	json_object *event;               /* the normalized event */
	const char *delivery_id;
	long long job_id;
	int attempt;
	struct outbound *http;
	struct run_map map;               /* loaded before run */
	/* Commits map now (returns -1 when the store refused: treat as a retry). */
	int (*save)(struct target_attempt *a, struct err *err);
	void *save_ctx;
};

/* Outcome of an attempt: how dispatch treats it, and why. */
struct target_outcome {
	enum work_outcome outcome;
	long long retry_after_ms;         /* a server's Retry-After; -1 none */
	char detail[1024];
};

/* Each translated kind: runs one attempt. */
struct target_kind {
	const char *name;
	void (*run)(struct target_attempt *a, struct target_outcome *out);
};

extern const struct target_kind target_testomat, target_qasphere, target_testcenter;

/* Helpers shared by the kinds. */

/* Sends req and turns the answer into an outcome (OK/FAIL/PERMANENT per
 * outbound_classify; 500 fails permanently from the 3rd attempt).  Returns
 * 0 for a 2xx (resp filled; caller frees), -1 otherwise (out filled). */
int target_call(struct target_attempt *a, const struct outbound_req *req,
		struct outbound_resp *resp, struct target_outcome *out,
		const char *what);

/* String setting or NULL; int setting or def. */
const char *target_str(const struct target_cfg *t, const char *key);
long long target_int(const struct target_cfg *t, const char *key, long long def);
int target_bool(const struct target_cfg *t, const char *key, int def);

/* The event's string/int at a dotted path (NULL / def when missing). */
const char *event_str(json_object *ev, const char *path);
long long event_int(json_object *ev, const char *path, long long def);
int event_has(json_object *ev, const char *path);

/* A rendered param string (NULL when missing). */
const char *param_str(json_object *params, const char *key);

/* The mapping, as every kind updates it: set a field (strdup; v NULL clears
 * it), commit now, or set the state and commit.  Each returns 0, or -1 with
 * out set to a failed (retried) attempt. */
int target_map_set(struct target_attempt *a, struct target_outcome *out,
		   char **field, const char *v);
int target_map_commit(struct target_attempt *a, struct target_outcome *out);
int target_map_state(struct target_attempt *a, struct target_outcome *out,
		     const char *state);

void outcome_set(struct target_outcome *o, enum work_outcome w,
		 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
