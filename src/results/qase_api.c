/*
 * qase_api: the Qase REST API client (see qase_api.h).  Requests go
 * through targets/outbound (libcurl); pacing is one token bucket for the
 * process, since Qase counts requests per token and one daemon has one.
 */
#include "results/qase_api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "targets/outbound.h"
#include "targets/target_util.h"

#define PAGE_MAX   (32u << 20) /* a page of 100 results with long stack traces */
#define JSON_DEPTH 64          /* results nest steps in steps */

struct qase_api {
	struct outbound *http;
};

static pthread_mutex_t limit_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tu_bucket bucket;
static long long paused_until_ms; /* a 429's Retry-After, for every caller */

int qase_api_new(struct qase_api **out, struct err *err)
{
	struct qase_api *q = calloc(1, sizeof(*q));

	*out = NULL;
	if (!q)
		return err_set(err, "out of memory");
	if (outbound_new(&q->http, err) < 0) {
		free(q);
		return -1;
	}
	*out = q;
	return 0;
}

void qase_api_free(struct qase_api *q)
{
	if (!q)
		return;
	outbound_free(q->http);
	free(q);
}

void qase_api_reset_limits(void)
{
	pthread_mutex_lock(&limit_mu);
	memset(&bucket, 0, sizeof(bucket));
	paused_until_ms = 0;
	pthread_mutex_unlock(&limit_mu);
}

static void sleep_ms(long long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0)
		;
}

/* Waits for a token; 0, or -1 when the wait would pass deadline_ms. */
static int pace(const struct source_cfg *src, long long deadline_ms)
{
	long long now = clock_wall_ms(), wait_ms, pause;

	pthread_mutex_lock(&limit_mu);
	pause = paused_until_ms > now ? paused_until_ms - now : 0;
	/* after a 429 every caller waits it out, then keeps the pace */
	wait_ms = tu_bucket_take(&bucket, clock_mono_us() * 1000,
				 src->api_rate_limit_per_min / 60.0, 1) /
			  1000000 +
		  pause;
	pthread_mutex_unlock(&limit_mu);
	if (now + wait_ms > deadline_ms)
		return -1;
	if (wait_ms > 0)
		sleep_ms(wait_ms);
	return 0;
}

static void pause_all(long long ms)
{
	long long until = clock_wall_ms() + ms;

	pthread_mutex_lock(&limit_mu);
	if (until > paused_until_ms)
		paused_until_ms = until;
	pthread_mutex_unlock(&limit_mu);
}

/* The envelope's result, or NULL with why set. */
static json_object *envelope_result(const struct outbound_resp *r, char *why, size_t len)
{
	json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
	json_object *doc = NULL, *status, *result;

	if (r->cut) {
		snprintf(why, len, "the answer is larger than %u bytes", PAGE_MAX);
		json_tokener_free(tok);
		return NULL;
	}
	if (tok && r->body)
		doc = json_tokener_parse_ex(tok, r->body, (int)r->body_len);
	json_tokener_free(tok);
	if (!doc || !json_object_is_type(doc, json_type_object) ||
	    !json_object_object_get_ex(doc, "status", &status) ||
	    !json_object_get_boolean(status) || !json_object_object_get_ex(doc, "result", &result) ||
	    !json_object_is_type(result, json_type_object)) {
		snprintf(why, len, "the answer is not {\"status\": true, \"result\": {...}}");
		json_object_put(doc);
		return NULL;
	}
	json_object_get(result);
	json_object_put(doc);
	return result;
}

void qase_get(struct qase_api *q, const struct source_cfg *src, const char *path,
	      long long deadline_ms, struct qase_answer *out)
{
	char token[600], why[200];
	const char *headers[] = { token, "Accept: application/json", NULL };
	struct outbound_resp resp;
	char *url = tu_url(src->api_base_url, path);

	*out = (struct qase_answer){ .verdict = QASE_RETRY, .retry_after_ms = -1 };
	if (!url) {
		snprintf(out->detail, sizeof(out->detail), "GET %.200s: out of memory", path);
		return;
	}
	if (pace(src, deadline_ms) < 0) {
		snprintf(out->detail, sizeof(out->detail),
			 "GET %.200s: not sent: the rate limit's wait passes the deadline", path);
		free(url);
		return;
	}
	snprintf(token, sizeof(token), "Token: %s", src->api_token ? src->api_token : "");
	struct outbound_req req = {
		.method = "GET",
		.url = url,
		.headers = headers,
		.timeout_ms = 60000,
		.body_max = PAGE_MAX,
	};
	outbound_send(q->http, &req, &resp);
	explicit_bzero(token, sizeof(token));
	free(url);
	out->status = resp.status;
	out->retry_after_ms = resp.retry_after_ms;
	switch (outbound_classify(&resp)) {
	case VERDICT_OK:
		if ((out->result = envelope_result(&resp, why, sizeof(why))))
			out->verdict = QASE_OK;
		else
			snprintf(out->detail, sizeof(out->detail), "GET %.200s: HTTP %ld: %s", path,
				 resp.status, why);
		break;
	case VERDICT_RETRY:
	case VERDICT_RETRY_FEW:
		if (resp.status == 429)
			pause_all(resp.retry_after_ms > 0 ? resp.retry_after_ms : 1000);
		break;
	case VERDICT_PERMANENT: out->verdict = QASE_PERMANENT; break;
	}
	if (out->verdict != QASE_OK) {
		outbound_describe(&resp, why, sizeof(why));
		if (src->api_token)
			tu_redact(why, src->api_token);
		if (!out->detail[0])
			snprintf(out->detail, sizeof(out->detail), "GET %.200s: %s", path, why);
	}
	outbound_resp_free(&resp);
}
