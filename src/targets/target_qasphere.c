/*
 * target_qasphere: mirrors a Qase run into a QA Sphere run through the
 * public API ({base_url}/api/public/v0/project/{project}/run...), with the
 * run's per-case results when the results stage fetched them (which case is
 * which: target_qasphere_cases.c; the results: target_qasphere_results.c).
 *
 * The mapping's state walks NULL -> "creating" -> "open" -> "closed", and
 * any state -> "deleted" (a tombstone: later events are ignored).  Run
 * titles are unique in QA Sphere and ours carry the Qase run id, so a
 * create whose answer says "conflicting run id: N" adopts run N: that is
 * both a duplicate delivery and the retry after a crash between the POST
 * and the commit of its id (the intent "creating" is committed first).
 *
 * Completing, aborting and deleting log a comment and then close; each step
 * done is recorded in the mapping's data (logged_completed, ...) and
 * committed at once, so a retry after a partial failure does not log twice
 * and a closed run is not closed again.  QA Sphere has no call for a public
 * report or for adding cases: those events succeed without a call.
 *
 * Requests are rate limited per target (rate_limit_per_s, shared by every
 * thread): a request waits for a token rather than draw a 429.  Requests
 * are paced evenly (a bucket of one token) a little under the limit, so no
 * sliding one-second window holds more than the limit even with some
 * network jitter; a burst allowance would let a window hold twice as many.
 */
#include "targets/target_qasphere.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cfgtree.h"

/* ---- rate limit ---------------------------------------------------------- */

#define BUCKETS     32
#define RATE_MARGIN 1.02 /* pace 2% under the limit: jitter on the way */

static pthread_mutex_t bucket_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[128];
	struct tu_bucket b;
} buckets[BUCKETS];
static size_t n_buckets;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The target's bucket; past BUCKETS targets the last one is shared. */
static struct tu_bucket *bucket_of(const char *name)
{
	for (size_t i = 0; i < n_buckets; i++)
		if (strncmp(buckets[i].name, name, sizeof(buckets[i].name) - 1) == 0)
			return &buckets[i].b;
	if (n_buckets == BUCKETS)
		return &buckets[BUCKETS - 1].b;
	snprintf(buckets[n_buckets].name, sizeof(buckets[0].name), "%s", name);
	return &buckets[n_buckets++].b;
}

static void throttle(const struct target_cfg *t)
{
	long long rate = target_int(t, "rate_limit_per_s", 20), wait;

	if (rate <= 0)
		return;
	pthread_mutex_lock(&bucket_lock);
	wait = tu_bucket_take(bucket_of(t->name), now_ns(), (double)rate / RATE_MARGIN, 1);
	pthread_mutex_unlock(&bucket_lock);
	if (wait > 0) {
		struct timespec ts = { wait / 1000000000LL, wait % 1000000000LL };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

/* ---- mapping and requests ------------------------------------------------ */

int qs_flag(struct qs *q, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(q->a->map.data, name, &v) && json_object_get_boolean(v);
}

int qs_set_flag(struct qs *q, const char *name)
{
	json_object_object_add(q->a->map.data, name, json_object_new_boolean(1));
	return target_map_commit(q->a, q->out);
}

/*
 * method url with body (consumed; NULL sends none: an empty POST body, as
 * close wants, or a GET).  On a 2xx, *answer (when asked) is the parsed
 * answer; one that is not JSON, or longer than body_max (0: 64 KiB), fails
 * the attempt.  Otherwise the outcome is set.
 */
int qs_request(struct qs *q, const char *method, char *url, json_object *body, json_object **answer,
	       const char *what, size_t body_max)
{
	const char *headers[] = {
		q->auth,
		"Accept: application/json",
		"User-Agent: runbridge/" RB_VERSION,
		body || strcmp(method, "POST") == 0 ? "Content-Type: application/json" : NULL,
		NULL,
	};
	struct outbound_resp resp = { 0 };
	struct outbound_req req = { .method = method, .url = url, .headers = headers };
	int rc = -1;

	if (answer)
		*answer = NULL;
	if (!url) {
		outcome_fail(q->out, WORK_FAIL, "out of memory");
		goto done;
	}
	if (strcmp(method, "POST") == 0) {
		req.body = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : "";
		req.body_len = strlen(req.body);
	}
	req.body_max = body_max;
	throttle(q->a->target);
	if (target_call(q->a, &req, &resp, q->out, what) < 0) {
		tu_redact(q->out->detail, q->key);
		goto done;
	}
	if (answer && (resp.cut || !resp.body || !(*answer = json_tokener_parse(resp.body)))) {
		outcome_set(q->out, WORK_FAIL, "%s: the answer is %s", what,
			    resp.cut ? "too long" : "not JSON");
		outbound_resp_free(&resp);
		goto done;
	}
	outbound_resp_free(&resp);
	rc = 0;
done:
	json_object_put(body);
	free(url);
	return rc;
}

/* POST base + suffix. */
int qs_call(struct qs *q, const char *suffix, json_object *body, json_object **answer,
	    const char *what)
{
	return qs_request(q, "POST", tu_url(q->base, suffix), body, answer, what, 0);
}

/* "/<run id>" + rest. */
int qs_run_path(struct qs *q, const char *rest, char *buf, size_t len)
{
	char enc[64];

	if (!q->a->map.remote_id || tu_pct_encode(q->a->map.remote_id, enc, sizeof(enc)) < 0)
		return outcome_fail(q->out, WORK_PERMANENT, "the mapped run id cannot be used");
	int n = snprintf(buf, len, "/%s%s", enc, rest);
	if (n < 0 || (size_t)n >= len)
		return outcome_fail(q->out, WORK_PERMANENT, "the mapped run id cannot be used");
	return 0;
}

/* GET base/<run id>/rest, answer parsed. */
int qs_run_get(struct qs *q, const char *rest, json_object **answer, const char *what, size_t body_max)
{
	char path[300];

	if (qs_run_path(q, rest, path, sizeof(path)) < 0)
		return -1;
	return qs_request(q, "GET", tu_url(q->base, path), NULL, answer, what, body_max);
}

int qs_log_html(struct qs *q, const char *html, const char *what)
{
	char path[128];
	json_object *body;

	if (qs_run_path(q, "/log", path, sizeof(path)) < 0)
		return -1;
	if (!(body = json_object_new_object()))
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	json_object_object_add(body, "comment", json_object_new_string(html));
	return qs_call(q, path, body, NULL, what);
}

/* The event's "results" object, or NULL (none fetched: today's behaviour). */
json_object *qs_event_results(struct qs *q)
{
	json_object *v;

	if (json_object_object_get_ex(q->a->event, "results", &v) &&
	    json_object_is_type(v, json_type_object))
		return v;
	return NULL;
}

/* ---- the run ------------------------------------------------------------- */

static int adopt(struct qs *q, long long id, int conflict)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", id);
	if (target_map_set(q->a, q->out, &q->a->map.remote_id, buf) < 0 ||
	    target_map_state(q->a, q->out, "open") < 0)
		return -1;
	q->out->outcome = WORK_OK;
	q->out->retry_after_ms = -1;
	q->out->detail[0] = '\0';
	note(q, conflict ? "adopted run %s (its title exists)" : "created run %s",
	     q->a->map.remote_id);
	return 0;
}

static int create(struct qs *q)
{
	const struct target_cfg *t = q->a->target;
	json_object *plan = NULL, *mapped, *answer, *v;
	const char *desc = param_str(q->a->params, "description");
	struct tu_qasphere_run r = {
		.title = q->title,
		.description = desc ? desc : "",
		.type = target_str(t, "run_type"),
		.milestone_id = target_int(t, "milestone_id", 0),
	};
	long long id;

	if (qs_plan_of_results(q, &mapped) < 0)
		return -1;
	json_object_object_get_ex(t->settings, "query_plan", &plan);
	r.query_plan = mapped ? mapped : plan;
	if (!r.type)
		r.type = "static_struct";
	/* intent first: a retry after a crash finds the run by its title */
	if (target_map_state(q->a, q->out, "creating") < 0) {
		json_object_put(mapped);
		return -1;
	}
	v = tu_qasphere_create_body(&r);
	json_object_put(mapped);
	if (!v)
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	if (qs_call(q, "", v, &answer, "create run") < 0) {
		if (tu_conflicting_run_id(q->out->detail, &id) == 0)
			return adopt(q, id, 1);
		return -1;
	}
	if (!json_object_object_get_ex(answer, "id", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0) {
		json_object_put(answer);
		return outcome_fail(q->out, WORK_FAIL, "create run: the answer has no id");
	}
	id = json_object_get_int64(v);
	json_object_put(answer);
	return adopt(q, id, 0);
}

/* The run exists on QA Sphere once this returns 0 (created now if needed). */
static int ensure(struct qs *q)
{
	const struct run_map *m = &q->a->map;

	if (m->remote_id && m->state && !tu_streq(m->state, "creating"))
		return 0;
	return create(q);
}

static int log_comment(struct qs *q, const char *type, const char *what)
{
	struct tu_counts c;
	char *html;
	int rc;

	tu_counts_of(q->a->event, &c);
	html = tu_qasphere_comment(type, &c, event_int(q->a->event, "run.cases_added", -1),
				   event_int(q->a->event, "run.cases_count", -1), q->project,
				   q->run_id, event_str(q->a->event, "run.title"));
	if (!html)
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	rc = qs_log_html(q, html, what);
	free(html);
	return rc;
}

static int close_run(struct qs *q)
{
	char path[128];

	if (qs_run_path(q, "/close", path, sizeof(path)) < 0)
		return -1;
	if (qs_call(q, path, NULL, NULL, "close run") < 0) {
		/* closed in QA Sphere meanwhile: what we wanted */
		if (q->out->outcome != WORK_PERMANENT ||
		    !strcasestr(q->out->detail, "already closed"))
			return -1;
	}
	return target_map_state(q->a, q->out, "closed");
}

static int started(struct qs *q)
{
	int existed = q->a->map.remote_id && !tu_streq(q->a->map.state, "creating");

	if (ensure(q) < 0)
		return -1;
	if (existed)
		note(q, "run %s already created", q->a->map.remote_id);
	return 0;
}

static int updated(struct qs *q)
{
	if (ensure(q) < 0)
		return -1;
	if (tu_streq(q->a->map.state, "closed")) {
		note(q, "run %s closed; not logged", q->a->map.remote_id);
		return 0;
	}
	if (log_comment(q, "run.updated", "log cases added") < 0)
		return -1;
	note(q, "logged on run %s: cases changed", q->a->map.remote_id);
	return 0;
}

/* Completed or aborted: the results sent, the summary logged once, then
 * closed once. */
static int finish(struct qs *q, const char *type)
{
	const char *logged = tu_streq(type, "run.completed") ? "logged_completed" : "logged_aborted";

	if (ensure(q) < 0)
		return -1;
	if (tu_streq(q->a->map.state, "closed")) {
		note(q, "run %s already closed", q->a->map.remote_id);
		return 0;
	}
	if (qs_mirror_results(q) < 0)
		return -1;
	if (!qs_flag(q, logged) &&
	    (log_comment(q, type, "log summary") < 0 || qs_set_flag(q, logged) < 0))
		return -1;
	if (close_run(q) < 0)
		return -1;
	note(q, "closed run %s (%s in Qase)", q->a->map.remote_id,
	     tu_streq(type, "run.completed") ? "completed" : "aborted");
	return 0;
}

/* No delete in the API: log and close an open run, then keep a tombstone. */
static int deleted(struct qs *q)
{
	struct run_map *m = &q->a->map;

	if (tu_streq(m->state, "creating") && ensure(q) < 0)
		return -1;
	if (tu_streq(m->state, "open")) {
		if (!qs_flag(q, "logged_deleted") &&
		    (log_comment(q, "run.deleted", "log deleted") < 0 ||
		     qs_set_flag(q, "logged_deleted") < 0))
			return -1;
		if (close_run(q) < 0)
			return -1;
		note(q, "closed run %s (deleted in Qase)", m->remote_id);
	} else if (m->remote_id) {
		note(q, "run %s deleted in Qase", m->remote_id);
	} else {
		note(q, "run deleted in Qase before it was mirrored");
	}
	return target_map_state(q->a, q->out, "deleted");
}

static int dispatch(struct qs *q, const char *type)
{
	if (tu_streq(type, "run.started"))
		return started(q);
	if (tu_streq(type, "run.updated"))
		return updated(q);
	if (tu_streq(type, "run.completed") || tu_streq(type, "run.aborted"))
		return finish(q, type);
	if (tu_streq(type, "run.deleted"))
		return deleted(q);
	if (tu_streq(type, "run.report_changed"))
		note(q, "ignored: no equivalent");
	else if (strncmp(type, "result.", 7) == 0)
		note(q, "ignored: results are mirrored from the Qase API when the run ends");
	else
		note(q, "ignored: no QA Sphere call for %s", *type ? type : "an unnamed event");
	return 0;
}

/* Auth header and base URLs from the target's settings. */
static int setup(struct qs *q)
{
	const struct target_cfg *t = q->a->target;
	const char *base = target_str(t, "base_url"), *project = target_str(t, "project");
	const char *scheme = target_str(t, "auth_scheme");
	static const char api[] = "/api/public/v0";
	char enc[300], path[400];
	size_t n;

	q->key = target_str(t, "api_key");
	if (!base || !project || !q->key)
		return outcome_fail(q->out, WORK_PERMANENT,
				    "target has no base_url, project or api_key");
	q->code = project;
	if (tu_pct_encode(project, enc, sizeof(enc)) < 0)
		return outcome_fail(q->out, WORK_PERMANENT, "target's project is too long");
	n = strlen(base);
	while (n && base[n - 1] == '/')
		n--;
	/* a base_url that already names the API is taken as it is */
	snprintf(path, sizeof(path), "%s/project/%s",
		 n >= sizeof(api) - 1 &&
				 strncmp(base + n - (sizeof(api) - 1), api, sizeof(api) - 1) == 0
			 ? ""
			 : api,
		 enc);
	if (asprintf(&q->auth, "Authorization: %s %s", scheme ? scheme : "Bearer", q->key) < 0) {
		q->auth = NULL;
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	}
	if (!(q->proj = tu_url(base, path)) || !(q->base = tu_url(q->proj, "/run")))
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	return 0;
}

static void qasphere_attempt(struct target_attempt *a, struct target_outcome *out)
{
	const char *type = event_str(a->event, "type");
	struct qs q = { .a = a, .out = out };

	out->outcome = WORK_OK;
	out->retry_after_ms = -1;
	out->detail[0] = '\0';
	if (tu_streq(a->map.state, "deleted")) {
		outcome_set(out, WORK_OK, "run deleted in Qase; ignored");
		return;
	}
	q.project = event_str(a->event, "project");
	if (!q.project)
		q.project = "";
	q.run_id = event_int(a->event, "run_id", 0);
	if (setup(&q) < 0)
		goto done;
	if (!(q.title = tu_run_title(param_str(a->params, "title"), q.project, q.run_id))) {
		outcome_fail(q.out, WORK_FAIL, "out of memory");
		goto done;
	}
	if (dispatch(&q, type ? type : "") == 0)
		outcome_set(out, WORK_OK, "%s", q.done);
done:
	free(q.title);
	free(q.base);
	free(q.proj);
	free(q.auth);
}

/* case_map is "marker" or { custom_field: <Qase custom field id> }. */
static int qasphere_check(const struct target_cfg *t, const struct cfg_node *at, struct errlist *errs)
{
	json_object *m, *f;
	char where[300];

	if (!json_object_object_get_ex(t->settings, "case_map", &m) ||
	    (json_object_is_type(m, json_type_string) &&
	     strcmp(json_object_get_string(m), "marker") == 0))
		return 0;
	if (json_object_is_type(m, json_type_object) && json_object_object_length(m) == 1 &&
	    json_object_object_get_ex(m, "custom_field", &f) && qs_field_id(f) > 0)
		return 0;
	return errlist_add(errs,
			   "%s: targets.qasphere.%s.case_map: expected marker or "
			   "{ custom_field: <Qase custom field id> }",
			   cfg_where(at, where, sizeof(where)), t->name);
}

/* targets.qasphere.<name> */
static const struct action_key qasphere_keys[] = {
	{ "base_url", AK_URL, NULL, AK_REQUIRED, NULL, "the QA Sphere instance" },
	{ "api_key", AK_SECRET, NULL, AK_REQUIRED, NULL, "API key" },
	{ "project", AK_STR, NULL, AK_REQUIRED, NULL, "QA Sphere project code" },
	{ "run_type", AK_ENUM, "static_struct", 0, "static|static_struct|live", "the run's type" },
	{ "query_plan", AK_MAP, NULL, AK_REQUIRED, NULL,
	  "which test cases a run holds when no results are known at its creation" },
	{ "case_map", AK_MAP, "marker", AK_SCALAR_OK, NULL,
	  "how a Qase case finds its QA Sphere case: marker or { custom_field: ID }" },
	{ "invalid_status", AK_ENUM, "failed", 0, "failed|custom1|custom2|custom3|custom4",
	  "QA Sphere status of Qase's invalid results" },
	{ "auth_scheme", AK_ENUM, "Bearer", 0, "Bearer|ApiKey", "Authorization scheme" },
	{ "rate_limit_per_s", AK_INT, "20", 0, NULL, "most requests per second" },
	{ "milestone_id", AK_INT, NULL, 0, NULL, "milestone of new runs (none by default)" },
	{ "title", AK_TEMPLATE, "[Qase {{project}}#{{run_id}}] {{run.title}}", AK_RELOAD, NULL,
	  "title of the mirrored run" },
	{ "description", AK_TEMPLATE, "Mirrored from Qase run {{project}}#{{run_id}}", AK_RELOAD,
	  NULL, "description of the mirrored run" },
	TARGET_COMMON_KEYS,
	{ NULL, 0, NULL, 0, NULL, NULL },
};

TARGET_KIND(qasphere, "mirror Qase runs and results to QA Sphere", qasphere_check);
