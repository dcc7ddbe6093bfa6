/*
 * target_testomat: mirrors a Qase run into a Testomat.io run through the
 * reporter API (POST /api/reporter, PUT /api/reporter/{uid},
 * POST /api/reporter/{uid}/testrun).
 *
 * The mapping's state walks NULL -> "creating" -> "open" -> "finished", and
 * any state -> "deleted" (a tombstone: later events are ignored).  The
 * create is not idempotent on Testomat's side, so its intent is committed
 * before the POST and the uid right after; the POST asks for a shared run,
 * which Testomat matches by title, so a re-create after a crash between the
 * two commits joins the run it already made instead of making a second one.
 * An event for a run never seen started creates the run first (lazily).
 * Finishing twice, refreshing a finished run, and unpublishing (the API has
 * no such call) are successes without a call.
 *
 * Because a re-create may have joined the run, Testomat can count more
 * participants than runbridge ever is: every finish says
 * force_finish_shared_run, so no mirrored run waits for a participant that
 * does not exist, and a run Qase failed is finished with "fail" (forced),
 * never left to the server's count of the tests it was shown.
 *
 * The run's per-case results (target_testomat_results.c) are sent before
 * the finish, which then carries the counts of what was sent (Qase's counts
 * when nothing was).
 *
 * The API key goes in the body, the query or both (api_key_in); it never
 * reaches a detail: error bodies are redacted.
 */
#include "targets/target_testomat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "/api/reporter" + suffix (+ "?api_key=..."), joined to base_url. */
static char *url_of(struct tmat *t, const char *suffix)
{
	char path[1400], enc[1200] = "";
	int n;

	if (t->key_in_query && tu_pct_encode(t->key, enc, sizeof(enc)) < 0)
		return NULL;
	n = snprintf(path, sizeof(path), "/api/reporter%s%s%s", suffix,
		     t->key_in_query ? "?api_key=" : "", enc);
	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	return tu_url(target_str(t->a->target, "base_url"), path);
}

/* "/<uid>" + rest, the uid escaped. */
int tmat_uid_path(struct tmat *t, const char *rest, char *buf, size_t len)
{
	char enc[200];
	int n;

	if (!t->a->map.remote_id || tu_pct_encode(t->a->map.remote_id, enc, sizeof(enc)) < 0)
		return outcome_fail(t->out, WORK_PERMANENT, "the mapped uid cannot be used");
	n = snprintf(buf, len, "/%s%s", enc, rest);
	if (n < 0 || (size_t)n >= len)
		return outcome_fail(t->out, WORK_PERMANENT, "the mapped uid cannot be used");
	return 0;
}

/*
 * One request; body is consumed.  On a 2xx, *answer (when asked) is the
 * parsed JSON answer or NULL.  On anything else the outcome is set.
 */
int tmat_call(struct tmat *t, const char *method, const char *suffix, json_object *body,
	      json_object **answer, const char *what)
{
	static const char *const headers[] = {
		"Content-Type: application/json",
		"Accept: application/json",
		NULL,
	};
	struct outbound_resp resp = { 0 };
	struct outbound_req req = { 0 };
	char *url = url_of(t, suffix);
	int rc = -1;

	if (answer)
		*answer = NULL;
	if (!body || !url) {
		outcome_set(t->out, WORK_FAIL, "%s: out of memory or URL too long", what);
		goto done;
	}
	if (t->key_in_body)
		json_object_object_add(body, "api_key", json_object_new_string(t->key));
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.body = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	req.body_len = strlen(req.body);
	if (target_call(t->a, &req, &resp, t->out, what) < 0) {
		tu_redact(t->out->detail, t->key);
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

/* PUT /api/reporter/{uid} with body (consumed). */
static int put_run(struct tmat *t, json_object *body, const char *what)
{
	char path[256];

	if (!body)
		return outcome_fail(t->out, WORK_FAIL, "out of memory");
	if (tmat_uid_path(t, "", path, sizeof(path)) < 0) {
		json_object_put(body);
		return -1;
	}
	return tmat_call(t, "PUT", path, body, NULL, what);
}

static const char *param(struct tmat *t, const char *key)
{
	const char *v = param_str(t->a->params, key);
	return v ? v : "";
}

static int create(struct tmat *t)
{
	struct target_attempt *a = t->a;
	struct tu_testomat_run r = {
		.title = t->title,
		.env = param(t, "env"),
		.group_title = param(t, "group_title"),
		.description = param(t, "description"),
		.kind = target_str(a->target, "kind"),
		.label = param(t, "label"),
	};
	json_object *answer, *v;

	/* intent first: a crash after the POST is reconciled by the shared run */
	if (target_map_state(t->a, t->out, "creating") < 0)
		return -1;
	if (tmat_call(t, "POST", "", tu_testomat_create_body(&r), &answer, "create run") < 0)
		return -1;
	if (!json_object_object_get_ex(answer, "uid", &v) ||
	    !json_object_is_type(v, json_type_string) || !*json_object_get_string(v)) {
		json_object_put(answer);
		outcome_set(t->out, WORK_FAIL, "create run: the answer has no uid");
		return -1;
	}
	if (target_map_set(t->a, t->out, &a->map.remote_id, json_object_get_string(v)) < 0) {
		json_object_put(answer);
		return -1;
	}
	if (json_object_object_get_ex(answer, "url", &v) && json_object_is_type(v, json_type_string))
		json_object_object_add(a->map.data, "url", json_object_get(v));
	json_object_put(answer);
	if (target_map_state(t->a, t->out, "open") < 0)
		return -1;
	note(t, "created run %s", a->map.remote_id);
	return 0;
}

/* The run exists on Testomat once this returns 0 (created now if needed). */
int tmat_ensure(struct tmat *t)
{
	const struct run_map *m = &t->a->map;

	if (m->remote_id && m->state && !tu_streq(m->state, "creating"))
		return 0;
	return create(t);
}

static int started(struct tmat *t)
{
	int existed = t->a->map.remote_id && !tu_streq(t->a->map.state, "creating");

	if (tmat_ensure(t) < 0)
		return -1;
	if (existed)
		note(t, "run %s already created", t->a->map.remote_id);
	if (tu_streq(t->a->map.state, "finished"))
		return 0;
	return tmat_send_stored(t);
}

static int updated(struct tmat *t)
{
	json_object *body;

	if (tmat_ensure(t) < 0)
		return -1;
	if (tu_streq(t->a->map.state, "finished")) {
		note(t, "run %s already finished; not refreshed", t->a->map.remote_id);
		return 0;
	}
	if (tmat_send_stored(t) < 0)
		return -1;
	if ((body = json_object_new_object())) {
		json_object_object_add(body, "title", json_object_new_string(t->title));
		if (*param(t, "description"))
			json_object_object_add(body, "description",
					       json_object_new_string(param(t, "description")));
	}
	if (put_run(t, body, "refresh run") < 0)
		return -1;
	note(t, "refreshed run %s", t->a->map.remote_id);
	return 0;
}

/* Every finish forces the shared run closed: runbridge is its only
 * participant, whatever a re-create's join made Testomat count. */
static int put_finish(struct tmat *t, json_object *body, const char *what)
{
	if (body)
		json_object_object_add(body, "force_finish_shared_run", json_object_new_boolean(1));
	return put_run(t, body, what);
}

/* With the event's results sent, the finish counts what was sent; a run
 * Qase failed still fails (f already says so), and so does a completed one
 * with a failed test sent. */
static void finish_sent(const struct tmat *t, int aborted, struct tu_finish *f)
{
	if (!t->mirrored || !t->sent.sent)
		return; /* nothing sent: Qase's counts, as without results */
	f->tests = t->sent.sent;
	f->passed = t->sent.passed;
	f->failed = t->sent.failed;
	f->skipped = t->sent.skipped;
	if (!aborted && t->sent.failed > 0)
		f->status_event = "fail";
}

static int finish(struct tmat *t, int aborted)
{
	struct tu_counts c;
	struct tu_finish f;
	char *desc = NULL;
	json_object *body;

	if (tmat_ensure(t) < 0)
		return -1;
	if (tu_streq(t->a->map.state, "finished")) {
		note(t, "run %s already finished", t->a->map.remote_id);
		return 0;
	}
	if (tmat_send_stored(t) < 0)
		return -1;
	tu_counts_of(t->a->event, &c);
	tu_testomat_finish(&c, aborted, target_str(t->a->target, "aborted_status"), &f);
	finish_sent(t, aborted, &f);
	if (aborted && asprintf(&desc, "%s%saborted in Qase", param(t, "description"),
				*param(t, "description") ? "; " : "") < 0)
		desc = NULL;
	body = tu_testomat_finish_body(&f, c.duration_ms, desc);
	free(desc);
	if (put_finish(t, body, "finish run") < 0)
		return -1;
	if (target_map_state(t->a, t->out, "finished") < 0)
		return -1;
	if (f.tests >= 0)
		note(t, "finished run %s: %s, %lld tests", t->a->map.remote_id, f.status_event,
		     f.tests);
	else
		note(t, "finished run %s: %s", t->a->map.remote_id, f.status_event);
	return 0;
}

static int is_public(json_object *ev)
{
	json_object *run, *v;

	return json_object_object_get_ex(ev, "run", &run) &&
	       json_object_object_get_ex(run, "public", &v) &&
	       json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

static int report_changed(struct tmat *t)
{
	json_object *body;

	if (!is_public(t->a->event)) {
		note(t, "no unpublish in the API");
		return 0;
	}
	if (tmat_ensure(t) < 0)
		return -1;
	if ((body = json_object_new_object()))
		json_object_object_add(body, "access_event", json_object_new_string("publish"));
	if (put_run(t, body, "publish run") < 0)
		return -1;
	note(t, "published run %s", t->a->map.remote_id);
	return 0;
}

/* Finishes an open run (Testomat has no delete), then keeps a tombstone. */
static int deleted(struct tmat *t)
{
	struct run_map *m = &t->a->map;
	json_object *body;

	if (tu_streq(m->state, "creating") && tmat_ensure(t) < 0)
		return -1;
	if (tu_streq(m->state, "open")) {
		if ((body = json_object_new_object())) {
			json_object_object_add(body, "status_event",
					       json_object_new_string("finish"));
			json_object_object_add(body, "description",
					       json_object_new_string("deleted in Qase"));
		}
		if (put_finish(t, body, "finish run") < 0)
			return -1;
		note(t, "finished run %s (deleted in Qase)", m->remote_id);
	} else if (m->remote_id) {
		note(t, "run %s deleted in Qase", m->remote_id);
	} else {
		note(t, "run deleted in Qase before it was mirrored");
	}
	return target_map_state(t->a, t->out, "deleted");
}

static int dispatch(struct tmat *t, const char *type)
{
	if (tu_streq(type, "run.started"))
		return started(t);
	if (tu_streq(type, "run.updated"))
		return updated(t);
	if (tu_streq(type, "run.completed"))
		return finish(t, 0);
	if (tu_streq(type, "run.aborted"))
		return finish(t, 1);
	if (tu_streq(type, "run.report_changed"))
		return report_changed(t);
	if (tu_streq(type, "run.deleted"))
		return deleted(t);
	if (tu_streq(type, "result.deleted")) {
		note(t, "no result delete in the API; ignored");
		return 0;
	}
	if (strncmp(type, "result.", 7) == 0)
		return tmat_result_event(t);
	note(t, "ignored: no Testomat call for %s", *type ? type : "an unnamed event");
	return 0;
}

static void testomat_attempt(struct target_attempt *a, struct target_outcome *out)
{
	const char *type = event_str(a->event, "type"), *in;
	struct tmat t = { .a = a, .out = out };

	out->outcome = WORK_OK;
	out->retry_after_ms = -1;
	out->detail[0] = '\0';
	if (tu_streq(a->map.state, "deleted")) {
		outcome_set(out, WORK_OK, "run deleted in Qase; ignored");
		return;
	}
	t.key = target_str(a->target, "api_key");
	if (!t.key || !target_str(a->target, "base_url")) {
		outcome_set(out, WORK_PERMANENT, "target %s has no api_key or base_url",
			    a->target->name);
		return;
	}
	in = target_str(a->target, "api_key_in");
	t.key_in_body = !in || !tu_streq(in, "query");
	t.key_in_query = !in || !tu_streq(in, "body");
	t.project = event_str(a->event, "project");
	if (!t.project)
		t.project = "";
	t.run_id = event_int(a->event, "run_id", 0);
	t.blocked_as = target_str(a->target, "blocked_status");
	if (!t.blocked_as)
		t.blocked_as = "failed";
	t.custom_as = target_str(a->target, "custom_status");
	if (!t.custom_as)
		t.custom_as = "skipped";
	t.run_time_s = tu_streq(target_str(a->target, "run_time_unit"), "s");
	if (!(t.title = tu_run_title(param_str(a->params, "title"), t.project, t.run_id))) {
		outcome_set(out, WORK_FAIL, "out of memory");
		return;
	}
	if (dispatch(&t, type ? type : "") == 0)
		outcome_set(out, WORK_OK, "%s", t.done);
	free(t.title);
}

/* targets.testomat.<name> */
static const struct action_key testomat_keys[] = {
	{ "base_url", AK_URL, "https://app.testomat.io", 0, NULL, "Testomat.io API root" },
	{ "api_key", AK_SECRET, NULL, AK_REQUIRED, NULL, "the project's reporter API key" },
	{ "title", AK_TEMPLATE, "[Qase {{project}}#{{run_id}}] {{run.title}}", AK_RELOAD, NULL,
	  "title of the mirrored run" },
	{ "group_title", AK_TEMPLATE, "Qase {{project}}", AK_RELOAD, NULL,
	  "run group the runs go to" },
	{ "description", AK_TEMPLATE, "Mirrored from Qase run {{project}}#{{run_id}}", AK_RELOAD,
	  NULL, "description of the mirrored run" },
	{ "env", AK_TEMPLATE, "{{run.environment}}", AK_RELOAD, NULL, "the run's environment" },
	{ "label", AK_TEMPLATE, NULL, AK_RELOAD, NULL, "a label for the run (none by default)" },
	{ "kind", AK_ENUM, "manual", 0, "automated|manual|mixed", "the run's kind in Testomat.io" },
	{ "aborted_status", AK_ENUM, "fail", 0, "fail|finish", "how an aborted Qase run ends" },
	{ "api_key_in", AK_ENUM, "both", 0, "body|query|both", "where the API key is sent" },
	{ "blocked_status", AK_ENUM, "failed", 0, "failed|skipped",
	  "what a result Qase marks blocked is sent as" },
	{ "custom_status", AK_ENUM, "skipped", 0, "skipped|failed|omit",
	  "what a result with a custom Qase status is sent as (omit: not sent)" },
	{ "run_time_unit", AK_ENUM, "ms", 0, "ms|s", "unit of a test's run_time" },
	TARGET_COMMON_KEYS,
	{ NULL, 0, NULL, 0, NULL, NULL },
};

TARGET_KIND(testomat, "mirror Qase runs and results to Testomat.io", NULL);
