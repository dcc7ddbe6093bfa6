/*
 * target_qasphere.h: what the three files of the qasphere kind share;
 * private to them.
 *
 *   target_qasphere.c          the run: create (or adopt), log, close;
 *                              requests, rate limit, settings
 *   target_qasphere_cases.c    which QA Sphere case a Qase case is, the
 *                              run's listing, the cases of a new run
 *   target_qasphere_results.c  the results batches and the unmapped log
 */
#ifndef RB_TARGETS_TARGET_QASPHERE_H
#define RB_TARGETS_TARGET_QASPHERE_H

#include <stddef.h>

#include "targets/target.h"
#include "targets/target_util.h"

#define LIST_MAX (32u << 20) /* an answer that lists cases or results, bytes */
#define ID_MAX   80          /* a QA Sphere case id, with its NUL */

/* One attempt. */
struct qs {
	struct target_attempt *a;
	struct target_outcome *out;
	const char *key;     /* api_key */
	char *auth;          /* "Authorization: <scheme> <key>" */
	char *proj;          /* .../api/public/v0/project/<project> */
	char *base;          /* proj + "/run" */
	const char *code;    /* the QA Sphere project code (markers) */
	const char *project; /* Qase project code */
	long long run_id;
	char *title;    /* the run's title on QA Sphere */
	char done[600]; /* what happened, for the detail */
};

/* Adds to what the detail says happened. */
#define note(q, ...) tu_appendf((q)->done, sizeof((q)->done), __VA_ARGS__)

/* ---- the run and its requests: target_qasphere.c ------------------------- */

/* A boolean in the mapping's data; set_flag sets it and commits. */
int qs_flag(struct qs *q, const char *name);
int qs_set_flag(struct qs *q, const char *name);

/*
 * method url (malloc'd; consumed) with body (consumed; NULL sends none: an
 * empty POST body, as close wants, or a GET), rate limited.  On a 2xx,
 * *answer (when asked) is the parsed answer; one that is not JSON, or
 * longer than body_max (0: 64 KiB), fails the attempt.  Otherwise the
 * outcome is set.
 */
int qs_request(struct qs *q, const char *method, char *url, json_object *body, json_object **answer,
	       const char *what, size_t body_max);

/* POST q->base + suffix. */
int qs_call(struct qs *q, const char *suffix, json_object *body, json_object **answer,
	    const char *what);

/* buf = "/<run id>" + rest; -1 (permanent) when the mapped id cannot be used. */
int qs_run_path(struct qs *q, const char *rest, char *buf, size_t len);

/* GET base/<run id>/rest, answer parsed. */
int qs_run_get(struct qs *q, const char *rest, json_object **answer, const char *what,
	       size_t body_max);

/* Logs html (already escaped) on the run. */
int qs_log_html(struct qs *q, const char *html, const char *what);

/* The event's "results" object, or NULL (none fetched: the run alone). */
json_object *qs_event_results(struct qs *q);

/* ---- case mapping: target_qasphere_cases.c ------------------------------- */

/* Where a Qase case points in QA Sphere: a sequence (> 0) or a case id. */
struct qs_key {
	long long seq;
	char id[ID_MAX];
};

/* The test cases of the QA Sphere run, from its listing. */
struct tcase {
	char id[ID_MAX];
	long long seq;
};

struct tcases {
	struct tcase *v; /* by seq */
	struct tcase **by_id;
	size_t n;
};

/* A case_map custom_field value as a Qase custom field id; -1 when it is
 * not one (the check hook refuses it). */
long long qs_field_id(json_object *v);

/* The target's case_map: its custom field id, 0 for marker. */
long long qs_case_field(const struct target_cfg *t);

/* Where r points (field: qs_case_field's); -1 with *why when it points
 * nowhere. */
int qs_key_of(const struct qs *q, long long field, const struct result_row *r, struct qs_key *k,
	      const char **why);

/* Loads the run's listing (GET .../run/{id}/tcase) into t, unless t holds
 * it already; 0, or -1 with the outcome set. */
int qs_tcases_load(struct qs *q, struct tcases *t);
/* The tcaseId k points to in the run, or NULL (not in the run). */
const char *qs_tcases_find(const struct tcases *t, const struct qs_key *k);
/* Empties t (a zeroed t is fine). */
void qs_tcases_free(struct tcases *t);

/* *plan_out: {"tcaseIds": [...]} for a run created by an event with
 * results, or NULL (use the configured query_plan). */
int qs_plan_of_results(struct qs *q, json_object **plan_out);

/* ---- results: target_qasphere_results.c ---------------------------------- */

/* The event's results in batches, then the unmapped cases' log entry:
 * before the summary and the close.  Nothing when the event has none. */
int qs_mirror_results(struct qs *q);

#endif
