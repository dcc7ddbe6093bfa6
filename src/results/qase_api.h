/*
 * qase_api: GET requests to the Qase REST API v1, for the results stage.
 *
 *   GET {api.base_url}{path}      Token: {api.token}
 *   -> {"status": true, "result": {...}}
 *
 * One rate limit holds across every run and thread: requests are paced at
 * api.rate_limit_per_min (evenly, so no minute ever sees more), and a 429
 * pauses every caller for its Retry-After.  An answer is OK (2xx with
 * "status": true and an object "result"), to retry (429, 5xx, transport
 * errors, a body that is not the envelope) or permanent (401, 403, 404 and
 * other 4xx: retrying cannot fix them).  The token never reaches a detail.
 */
#ifndef RB_RESULTS_QASE_API_H
#define RB_RESULTS_QASE_API_H

#include <json-c/json.h>

#include "core/config.h"
#include "core/err.h"

struct qase_api; /* one per thread: an HTTP handle */

int qase_api_new(struct qase_api **out, struct err *err);
void qase_api_free(struct qase_api *q);

enum qase_verdict { QASE_OK, QASE_RETRY, QASE_PERMANENT };

struct qase_answer {
	enum qase_verdict verdict;
	long status;              /* HTTP status, 0 for none */
	json_object *result;      /* QASE_OK: the envelope's "result" (caller puts) */
	long long retry_after_ms; /* a 429's Retry-After, -1 none */
	char detail[512];         /* "GET /result/DEMO?...: HTTP 503 ..." */
};

/* Sends one GET of path (with its query) to src's API, after waiting for
 * the rate limit (at most until deadline_ms, Unix ms; past it the request
 * is not sent and the answer is QASE_RETRY).  Always fills out. */
void qase_get(struct qase_api *q, const struct source_cfg *src, const char *path,
	      long long deadline_ms, struct qase_answer *out);

/* Tests: forget the pacing and any 429 pause. */
void qase_api_reset_limits(void);

#endif
