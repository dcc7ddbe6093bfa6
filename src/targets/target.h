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

#include "actions/action.h"
#include "targets/outbound.h"
#include "core/config.h"
#include "core/err.h"

/* The mapping of one Qase run on one target. */
struct run_map {
	char *remote_id; /* Testomat uid, QA Sphere run id, Test Center report id; NULL before */
	char *state; /* kind-defined: "creating", "open", "finished", "deleted"...; NULL before */
	json_object *data; /* kind-defined extra (urls, flags); an object, never NULL */
};

struct result_row;

struct target_attempt {
	const struct target_cfg *target; /* from the live config: base_url, secrets */
	json_object *params;             /* the job's rendered params */
	json_object *event;              /* the normalized event */
	const char *delivery_id;
	long long job_id;
	int attempt;
	struct outbound *http;
	const char *project; /* the Qase run's project (NULL: none) and run id */
	long long run_id;
	struct run_map map; /* loaded before run */
	/* The run's stored per-case results (store/results.h): fn for each
	 * with case_id > after_case, in case id order, at most limit (0:
	 * all); *n_out counts them.  The event's "results" object says
	 * whether there are any (null: none were fetched).  0, or -1 with err
	 * set (a store read failed: treat as a retry). */
	int (*results)(struct target_attempt *a, long long after_case, size_t limit,
		       int (*fn)(void *ctx, const struct result_row *r), void *fn_ctx,
		       size_t *n_out, struct err *err);
	void *results_ctx;
	/* Commits map now (returns -1 when the store refused: treat as a retry). */
	int (*save)(struct target_attempt *a, struct err *err);
	void *save_ctx;
};

/* Outcome of an attempt: how dispatch treats it, and why. */
struct target_outcome {
	enum work_outcome outcome;
	long long retry_after_ms; /* a server's Retry-After; -1 none */
	char detail[1024];
};

/*
 * The parts of struct action_ops every translated kind shares (each kind's
 * file gives its name, settings and attempt; see target_testomat.c):
 *
 *   target_parse    `- <kind>: { target: main, <template>: ... }`: the
 *                   target must be configured; the templates are the kind's
 *                   AK_TEMPLATE settings, defaulting to the target's
 *   target_render   {"target": "main", <template>: rendered, ...}
 *   target_open, target_close, target_run
 *                   per thread an HTTP handle; per job the target from the
 *                   live config, the run mapping loaded, ops->attempt run
 */
int target_parse(const struct action_ops *kind, void **out, const struct cfg_node *node,
		 struct errlist *errs);
int target_render(json_object **out, const void *spec, json_object *event, struct err *err);
void target_free_spec(void *spec);
int target_open(void **out, const struct action_ops *self, struct action_host *host, struct err *err);
void target_close(void *state);
void target_run(void *state, struct action_host *host, struct action_job *jobs, size_t n);

/* The settings every translated kind has: timeouts, TLS checking, and the
 * web page of a run (run_url, checked and filled in by target_cfg.h). */
#define TARGET_COMMON_KEYS                                                                    \
	{ "timeout_s", AK_INT, "20", 0, NULL, "whole request timeout, seconds" },             \
		{ "connect_timeout_s", AK_INT, "5", 0, NULL, "connect timeout, seconds" },    \
		{ "verify_tls", AK_BOOL, "true", 0, NULL, "check the server's certificate" }, \
	{                                                                                     \
		"run_url", AK_URL, NULL, 0, NULL,                                             \
			"web page of a run: {remote_id}, {project}, {run_id} filled in"       \
	}

/* Declares the parse and ops wiring of a translated kind NAME whose table
 * is NAME##_keys and attempt NAME##_attempt. */
#define TARGET_KIND(NAME, SUMMARY, CHECK)                                                      \
	extern const struct action_ops action_##NAME##_ops;                                    \
	static int NAME##_parse(void **out, const struct cfg_node *node, struct errlist *errs) \
	{                                                                                      \
		return target_parse(&action_##NAME##_ops, out, node, errs);                    \
	}                                                                                      \
	const struct action_ops action_##NAME##_ops = {                                        \
		.name = #NAME,                                                                 \
		.summary = SUMMARY,                                                            \
		.parse = NAME##_parse,                                                         \
		.render = target_render,                                                       \
		.free_spec = target_free_spec,                                                 \
		.settings = NAME##_keys,                                                       \
		.check = CHECK,                                                                \
		.pool = action_pool_outbound,                                                  \
		.open = target_open,                                                           \
		.close = target_close,                                                         \
		.run = target_run,                                                             \
		.attempt = NAME##_attempt,                                                     \
	}

/* The kinds, for their unit tests (the registry finds them by name). */
extern const struct action_ops action_testomat_ops, action_qasphere_ops, action_testcenter_ops;

/* Helpers shared by the kinds. */

/* Sends req and turns the answer into an outcome (OK/FAIL/PERMANENT per
 * outbound_classify; 500 fails permanently from the 3rd attempt).  Returns
 * 0 for a 2xx (resp filled; caller frees), -1 otherwise (out filled). */
int target_call(struct target_attempt *a, const struct outbound_req *req,
		struct outbound_resp *resp, struct target_outcome *out, const char *what);

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
int target_map_set(struct target_attempt *a, struct target_outcome *out, char **field, const char *v);
int target_map_commit(struct target_attempt *a, struct target_outcome *out);
int target_map_state(struct target_attempt *a, struct target_outcome *out, const char *state);

void outcome_set(struct target_outcome *o, enum work_outcome w, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* outcome_set with a fixed message, returning -1: `return outcome_fail(...)`. */
int outcome_fail(struct target_outcome *o, enum work_outcome w, const char *what);

#endif
