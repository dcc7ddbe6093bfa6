/*
 * target_qasphere: mirrors a Qase run into a QA Sphere run through the
 * public API ({base_url}/api/public/v0/project/{project}/run...).
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
 * report, for adding cases or for results without a case mapping: those
 * events succeed without a call.
 *
 * Requests are rate limited per target (rate_limit_per_s, shared by every
 * thread): a request waits for a token rather than draw a 429.  Requests
 * are paced evenly (a bucket of one token) a little under the limit, so no
 * sliding one-second window holds more than the limit even with some
 * network jitter; a burst allowance would let a window hold twice as many.
 */
#include "targets/target.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "targets/target_util.h"

struct qs {
	struct target_attempt *a;
	struct target_outcome *out;
	const char *key;     /* api_key */
	char *auth;          /* "Authorization: <scheme> <key>" */
	char *base;          /* .../api/public/v0/project/<project>/run */
	const char *project; /* Qase project code */
	long long run_id;
	char *title;    /* the run's title on QA Sphere */
	char done[600]; /* what happened, for the detail */
};

#define note(q, ...) tu_appendf((q)->done, sizeof((q)->done), __VA_ARGS__)

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

static int flag(struct qs *q, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(q->a->map.data, name, &v) && json_object_get_boolean(v);
}

static int set_flag(struct qs *q, const char *name)
{
	json_object_object_add(q->a->map.data, name, json_object_new_boolean(1));
	return target_map_commit(q->a, q->out);
}

/*
 * POST base + suffix with body (consumed; NULL sends an empty body, as
 * close wants).  On a 2xx, *answer (when asked) is the parsed answer or
 * NULL; otherwise the outcome is set.
 */
static int call(struct qs *q, const char *suffix, json_object *body, json_object **answer,
		const char *what)
{
	const char *headers[] = {
		q->auth,
		"Content-Type: application/json",
		"Accept: application/json",
		"User-Agent: runbridge/" RB_VERSION,
		NULL,
	};
	struct outbound_resp resp = { 0 };
	struct outbound_req req = { 0 };
	char *url = tu_url(q->base, suffix);
	int rc = -1;

	if (answer)
		*answer = NULL;
	if (!url) {
		outcome_fail(q->out, WORK_FAIL, "out of memory");
		goto done;
	}
	req.method = "POST";
	req.url = url;
	req.headers = headers;
	req.body = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : "";
	req.body_len = strlen(req.body);
	throttle(q->a->target);
	if (target_call(q->a, &req, &resp, q->out, what) < 0) {
		tu_redact(q->out->detail, q->key);
		goto done;
	}
	if (answer && resp.body)
		*answer = json_tokener_parse(resp.body);
	outbound_resp_free(&resp);
	rc = 0;
done:
	json_object_put(body);
	free(url);
	return rc;
}

/* "/<run id>" + rest. */
static int run_path(struct qs *q, const char *rest, char *buf, size_t len)
{
	char enc[64];

	if (!q->a->map.remote_id || tu_pct_encode(q->a->map.remote_id, enc, sizeof(enc)) < 0)
		return outcome_fail(q->out, WORK_PERMANENT, "the mapped run id cannot be used");
	int n = snprintf(buf, len, "/%s%s", enc, rest);
	if (n < 0 || (size_t)n >= len)
		return outcome_fail(q->out, WORK_PERMANENT, "the mapped run id cannot be used");
	return 0;
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
	json_object *plan = NULL, *answer, *v;
	const char *desc = param_str(q->a->params, "description");
	struct tu_qasphere_run r = {
		.title = q->title,
		.description = desc ? desc : "",
		.type = target_str(t, "run_type"),
		.milestone_id = target_int(t, "milestone_id", 0),
	};
	long long id;

	json_object_object_get_ex(t->settings, "query_plan", &plan);
	r.query_plan = plan;
	if (!r.type)
		r.type = "static_struct";
	/* intent first: a retry after a crash finds the run by its title */
	if (target_map_state(q->a, q->out, "creating") < 0)
		return -1;
	if (call(q, "", tu_qasphere_create_body(&r), &answer, "create run") < 0) {
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
	char path[128];
	char *html;
	json_object *body;

	if (run_path(q, "/log", path, sizeof(path)) < 0)
		return -1;
	tu_counts_of(q->a->event, &c);
	html = tu_qasphere_comment(type, &c, event_int(q->a->event, "run.cases_added", -1),
				   event_int(q->a->event, "run.cases_count", -1), q->project,
				   q->run_id, event_str(q->a->event, "run.title"));
	if (!html || !(body = json_object_new_object())) {
		free(html);
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	}
	json_object_object_add(body, "comment", json_object_new_string(html));
	free(html);
	return call(q, path, body, NULL, what);
}

static int close_run(struct qs *q)
{
	char path[128];

	if (run_path(q, "/close", path, sizeof(path)) < 0)
		return -1;
	if (call(q, path, NULL, NULL, "close run") < 0) {
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

/* Completed or aborted: the summary logged once, then closed once. */
static int finish(struct qs *q, const char *type)
{
	const char *logged = tu_streq(type, "run.completed") ? "logged_completed" : "logged_aborted";

	if (ensure(q) < 0)
		return -1;
	if (tu_streq(q->a->map.state, "closed")) {
		note(q, "run %s already closed", q->a->map.remote_id);
		return 0;
	}
	if (!flag(q, logged) && (log_comment(q, type, "log summary") < 0 || set_flag(q, logged) < 0))
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
		if (!flag(q, "logged_deleted") && (log_comment(q, "run.deleted", "log deleted") < 0 ||
						   set_flag(q, "logged_deleted") < 0))
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
		note(q, "ignored: results need a Qase-to-QA Sphere case mapping");
	else
		note(q, "ignored: no QA Sphere call for %s", *type ? type : "an unnamed event");
	return 0;
}

/* Auth header and base URL from the target's settings. */
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
	if (tu_pct_encode(project, enc, sizeof(enc)) < 0)
		return outcome_fail(q->out, WORK_PERMANENT, "target's project is too long");
	n = strlen(base);
	while (n && base[n - 1] == '/')
		n--;
	/* a base_url that already names the API is taken as it is */
	snprintf(path, sizeof(path), "%s/project/%s/run",
		 n >= sizeof(api) - 1 &&
				 strncmp(base + n - (sizeof(api) - 1), api, sizeof(api) - 1) == 0
			 ? ""
			 : api,
		 enc);
	if (asprintf(&q->auth, "Authorization: %s %s", scheme ? scheme : "Bearer", q->key) < 0) {
		q->auth = NULL;
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	}
	if (!(q->base = tu_url(base, path)))
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
	free(q.auth);
}

/* targets.qasphere.<name> */
static const struct action_key qasphere_keys[] = {
	{ "base_url", AK_URL, NULL, AK_REQUIRED, NULL, "the QA Sphere instance" },
	{ "api_key", AK_SECRET, NULL, AK_REQUIRED, NULL, "API key" },
	{ "project", AK_STR, NULL, AK_REQUIRED, NULL, "QA Sphere project code" },
	{ "run_type", AK_ENUM, "static_struct", 0, "static|static_struct|live", "the run's type" },
	{ "query_plan", AK_MAP, NULL, AK_REQUIRED, NULL, "which test cases a run holds" },
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

TARGET_KIND(qasphere, "mirror Qase runs and results to QA Sphere", NULL);
