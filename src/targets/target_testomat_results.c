/*
 * target_testomat_results: the per-case results of a run mirrored to
 * Testomat.io (target_testomat.c mirrors the run itself), sent to
 * POST /api/reporter/{uid}/testrun.
 *
 * When the event carries "results" (the run's per-case results were fetched
 * from Qase into the store), they are sent before the finish, read from the
 * store in case id order, in batches of at most 100 tests and about 1 MB,
 * each test with the rid "qase-<CODE>-<run>-<case>" (the one the result.*
 * webhooks use, so either path updates the same Testomat result).
 * batch_index counts up per run from 1 (map.data "batch_index", shared with
 * the webhook path).  After each accepted batch the mapping records how far
 * the event got (map.data "results": the delivery, the last case id read,
 * and the counts sent), so a retry or a restart resumes with the next batch
 * and its index: a batch whose answer was lost is sent again with the same
 * rids and index (an update, not a second result).  Another event of the
 * run starts again from the first case (same rids), continuing the index.
 *
 * Status mapping (target-apis.md 5.2): passed, failed, skipped as they are;
 * blocked as blocked_status (failed by default) with the message "blocked
 * in Qase"; invalid as failed ("invalid in Qase"); in_progress and untested
 * not sent; a custom status slug as custom_status (skipped by default, or
 * failed, or omit) with "<slug> in Qase".
 *
 * A result.* webhook sends the payload's results as they came, in batches
 * of the same size, each with the run's next batch_index.
 */
#include "targets/target_testomat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/results.h"

#define BATCH_TESTS 100     /* tests per testrun request */
#define BATCH_BYTES 1000000 /* their JSON per request: ~1 MB, the client's chunk size */
#define TEXT_MAX    65536   /* characters kept of a message or stack: no test fills a batch alone */
#define TITLE_MAX   1024    /* characters kept of a title or suite path */
#define READ_CHUNK  200     /* stored results read per call */

/* ---- batches ------------------------------------------------------------ */

static long long data_int(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_int64(v) > 0 ? json_object_get_int64(v) : 0;
}

/* The run's last accepted batch_index (0: none yet). */
static long long last_batch(struct tmat *t)
{
	return data_int(t->a->map.data, "batch_index");
}

/* POSTs tests (consumed) as batch idx of the run. */
static int post_batch(struct tmat *t, json_object *tests, long long idx)
{
	json_object *body = json_object_new_object();
	char path[256];

	if (tmat_uid_path(t, "/testrun", path, sizeof(path)) < 0) {
		json_object_put(tests);
		json_object_put(body);
		return -1;
	}
	if (body) {
		json_object_object_add(body, "tests", tests);
		json_object_object_add(body, "batch_index", json_object_new_int64(idx));
	} else {
		json_object_put(tests);
	}
	return tmat_call(t, "POST", path, body, NULL, "send results");
}

static size_t json_len(json_object *o)
{
	return strlen(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) + 1;
}

/* ---- the event's results, from the store ---------------------------------- */

/* Qase status -> the Testomat status sent (NULL: not sent), and in why the
 * note that leads the message ("" none). */
static const char *map_status(const struct tmat *t, const char *s, char *why, size_t len)
{
	static const char *const as_is[] = { "passed", "failed", "skipped" };

	why[0] = '\0';
	if (!s || !*s || strcasecmp(s, "in_progress") == 0 || strcasecmp(s, "untested") == 0)
		return NULL;
	for (size_t i = 0; i < sizeof(as_is) / sizeof(as_is[0]); i++)
		if (strcasecmp(s, as_is[i]) == 0)
			return as_is[i];
	snprintf(why, len, "%.64s in Qase", s);
	if (strcasecmp(s, "blocked") == 0)
		return t->blocked_as;
	if (strcasecmp(s, "invalid") == 0)
		return "failed";
	return tu_streq(t->custom_as, "omit") ? NULL : t->custom_as;
}

static int add_cut(json_object *o, const char *key, const char *v, size_t max)
{
	char *c;

	if (!v || !*v)
		return 0;
	if (!(c = tu_cut(v, max)))
		return -1;
	json_object_object_add(o, key, json_object_new_string(c));
	free(c);
	return 0;
}

/* "why: comment", why, or the comment. */
static int add_message(json_object *o, const char *why, const char *comment)
{
	char *m = NULL;
	int rc;

	if (!*why)
		return add_cut(o, "message", comment, TEXT_MAX);
	if (!comment || !*comment)
		return add_cut(o, "message", why, TEXT_MAX);
	if (asprintf(&m, "%s: %s", why, comment) < 0)
		return -1;
	rc = add_cut(o, "message", m, TEXT_MAX);
	free(m);
	return rc;
}

/* One stored result as a TestData; NULL on OOM. */
static json_object *row_test(struct tmat *t, const struct result_row *r, const char *status,
			     const char *why)
{
	char rid[200], fallback[160];
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	snprintf(rid, sizeof(rid), "qase-%.64s-%lld-%lld", t->project, t->run_id, r->case_id);
	snprintf(fallback, sizeof(fallback), "%.64s-%lld", t->project, r->case_id);
	json_object_object_add(o, "rid", json_object_new_string(rid));
	if (add_cut(o, "title", r->title && *r->title ? r->title : fallback, TITLE_MAX) < 0 ||
	    add_cut(o, "suite_title", r->suite, TITLE_MAX) < 0)
		goto oom;
	json_object_object_add(o, "status", json_object_new_string(status));
	if (r->duration_ms >= 0)
		json_object_object_add(o, "run_time",
				       t->run_time_s ? tu_seconds(r->duration_ms)
						     : json_object_new_int64(r->duration_ms));
	if (add_message(o, why, r->message) < 0 || add_cut(o, "stack", r->stacktrace, TEXT_MAX) < 0)
		goto oom;
	if (r->end_ms >= 0)
		json_object_object_add(o, "timestamp", json_object_new_int64(r->end_ms / 1000));
	json_object_object_add(o, "create", json_object_new_boolean(1));
	return o;
oom:
	json_object_put(o);
	return NULL;
}

/* One batch being read from the store. */
struct batch {
	struct tmat *t;
	json_object *tests;
	size_t bytes, seen;
	long long after; /* the last case id taken (sent or not) */
	struct tally add;
	int full, oom;
};

static void tally_add(struct tally *to, const struct tally *d)
{
	to->sent += d->sent;
	to->passed += d->passed;
	to->failed += d->failed;
	to->skipped += d->skipped;
	to->omitted += d->omitted;
}

/* Takes r into the batch, or stops the read (-1) when the batch is full:
 * a test that would pass the byte budget is left for the next batch. */
static int take_row(void *ctx, const struct result_row *r)
{
	struct batch *b = ctx;
	char why[96];
	const char *status = map_status(b->t, r->status, why, sizeof(why));
	json_object *test;
	size_t len, n = json_object_array_length(b->tests);

	b->seen++;
	if (!status) {
		b->add.omitted++;
		b->after = r->case_id;
		return 0;
	}
	if (!(test = row_test(b->t, r, status, why))) {
		b->oom = 1;
		return -1;
	}
	len = json_len(test);
	if (n > 0 && b->bytes + len > BATCH_BYTES) {
		json_object_put(test);
		b->full = 1;
		return -1;
	}
	json_object_array_add(b->tests, test);
	b->bytes += len;
	b->after = r->case_id;
	b->add.sent++;
	if (tu_streq(status, "passed"))
		b->add.passed++;
	else if (tu_streq(status, "failed"))
		b->add.failed++;
	else
		b->add.skipped++;
	if (n + 1 >= BATCH_TESTS)
		b->full = 1;
	return b->full ? -1 : 0;
}

/* Fills b with the next tests after b->after (empty: none are left). */
static int read_batch(struct tmat *t, struct batch *b)
{
	struct err err = { 0 };
	size_t n;

	do {
		b->seen = 0;
		if (t->a->results(t->a, b->after, READ_CHUNK, take_row, b, &n, &err) < 0) {
			outcome_set(t->out, WORK_FAIL, "read results: %s", err.msg);
			return -1;
		}
		if (b->oom)
			return outcome_fail(t->out, WORK_FAIL, "send results: out of memory");
	} while (!b->full && b->seen >= READ_CHUNK);
	return 0;
}

/* map.data "results": how far this event's results got (sets t->sent,
 * returns the last case id read).  Another event's record starts this one
 * again from the first case. */
static long long progress(struct tmat *t)
{
	json_object *p, *d;
	const char *mine = t->a->delivery_id ? t->a->delivery_id : "";

	memset(&t->sent, 0, sizeof(t->sent));
	if (!json_object_object_get_ex(t->a->map.data, "results", &p) ||
	    !json_object_object_get_ex(p, "delivery", &d) ||
	    !tu_streq(json_object_get_string(d), mine))
		return 0;
	t->sent = (struct tally){ data_int(p, "sent"), data_int(p, "passed"), data_int(p, "failed"),
				  data_int(p, "skipped"), data_int(p, "omitted") };
	return data_int(p, "after");
}

/* Records an accepted batch (index idx, the results read up to after)
 * and commits it. */
static int progress_save(struct tmat *t, long long idx, long long after)
{
	json_object *p = json_object_new_object();
	const struct tally *s = &t->sent;

	if (!p)
		return outcome_fail(t->out, WORK_FAIL, "out of memory");
	json_object_object_add(p, "delivery",
			       json_object_new_string(t->a->delivery_id ? t->a->delivery_id : ""));
	json_object_object_add(p, "after", json_object_new_int64(after));
	json_object_object_add(p, "sent", json_object_new_int64(s->sent));
	json_object_object_add(p, "passed", json_object_new_int64(s->passed));
	json_object_object_add(p, "failed", json_object_new_int64(s->failed));
	json_object_object_add(p, "skipped", json_object_new_int64(s->skipped));
	json_object_object_add(p, "omitted", json_object_new_int64(s->omitted));
	json_object_object_add(t->a->map.data, "results", p);
	json_object_object_add(t->a->map.data, "batch_index", json_object_new_int64(idx));
	return target_map_commit(t->a, t->out);
}

static int has_results(json_object *ev)
{
	json_object *r;
	return json_object_object_get_ex(ev, "results", &r) &&
	       json_object_is_type(r, json_type_object);
}

static void note_sent(struct tmat *t, long long first, long long last)
{
	const char *uid = t->a->map.remote_id;

	if (last > first)
		note(t, "sent batches %lld-%lld to run %s (%lld results in all)", first, last, uid,
		     t->sent.sent);
	else if (last == first)
		note(t, "sent batch %lld to run %s (%lld results in all)", first, uid, t->sent.sent);
	else if (t->sent.sent)
		note(t, "%lld results already sent", t->sent.sent);
	else
		note(t, "no results to send");
	if (t->sent.omitted)
		note(t, "%lld results not sent (in progress, untested or omitted)", t->sent.omitted);
}

/* Sends the event's stored results not sent yet, batch by batch, each
 * recorded once accepted. */
int tmat_send_stored(struct tmat *t)
{
	long long after, first = last_batch(t) + 1, idx = first - 1;
	struct batch b;

	if (!has_results(t->a->event) || !t->a->results)
		return 0;
	t->mirrored = 1;
	after = progress(t);
	for (;;) {
		b = (struct batch){ .t = t, .after = after, .tests = json_object_new_array() };
		if (!b.tests)
			return outcome_fail(t->out, WORK_FAIL, "send results: out of memory");
		if (read_batch(t, &b) < 0) {
			json_object_put(b.tests);
			return -1;
		}
		if (!json_object_array_length(b.tests))
			break;
		if (post_batch(t, b.tests, ++idx) < 0)
			return -1;
		tally_add(&t->sent, &b.add);
		if (progress_save(t, idx, after = b.after) < 0)
			return -1;
	}
	json_object_put(b.tests);
	t->sent.omitted += b.add.omitted; /* the rows after the last test sent */
	note_sent(t, first, idx);
	return 0;
}

/* ---- result.* webhooks ----------------------------------------------------- */

static json_object *payload_of(json_object *ev)
{
	json_object *raw, *p;

	if (json_object_object_get_ex(ev, "raw", &raw) &&
	    json_object_object_get_ex(raw, "payload", &p) && json_object_is_type(p, json_type_object))
		return p;
	return NULL;
}

/* The Qase run a result belongs to: payload.run_id or payload.run.id, else
 * the event's run id. */
static long long result_run(struct tmat *t, json_object *payload)
{
	json_object *v;

	if ((json_object_object_get_ex(payload, "run_id", &v) ||
	     (json_object_object_get_ex(payload, "run", &v) &&
	      json_object_object_get_ex(v, "id", &v))) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int64(v) > 0)
		return json_object_get_int64(v);
	return t->run_id;
}

/* payload.results[] when present, else the payload itself: as TestData. */
static int collect(struct tmat *t, json_object *payload, json_object *tests, size_t *skipped)
{
	json_object *list, *test;
	long long run = result_run(t, payload);
	size_t n = 1;
	int is_list = json_object_object_get_ex(payload, "results", &list) &&
		      json_object_is_type(list, json_type_array);

	if (is_list)
		n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		json_object *r = is_list ? json_object_array_get_idx(list, i) : payload;
		int rc = tu_testomat_test(r, t->project, run, &test);
		if (rc < 0)
			return -1;
		if (rc > 0)
			(*skipped)++;
		else
			json_object_array_add(tests, test);
	}
	return 0;
}

/* Sends tests[from...] in batches of BATCH_TESTS and BATCH_BYTES, each
 * with the run's next batch_index, committed once accepted (a retry sends
 * the event's tests again: the same rids, later indexes). */
static int send_tests(struct tmat *t, json_object *tests)
{
	size_t n = json_object_array_length(tests), i = 0;

	while (i < n) {
		json_object *chunk = json_object_new_array();
		size_t bytes = 0, len;
		long long idx = last_batch(t) + 1;

		if (!chunk)
			return outcome_fail(t->out, WORK_FAIL, "send results: out of memory");
		for (; i < n && json_object_array_length(chunk) < BATCH_TESTS; i++, bytes += len) {
			json_object *test = json_object_array_get_idx(tests, i);
			len = json_len(test);
			if (json_object_array_length(chunk) && bytes + len > BATCH_BYTES)
				break;
			json_object_array_add(chunk, json_object_get(test));
		}
		if (post_batch(t, chunk, idx) < 0)
			return -1;
		json_object_object_add(t->a->map.data, "batch_index", json_object_new_int64(idx));
		if (target_map_commit(t->a, t->out) < 0)
			return -1;
	}
	return 0;
}

/* result.* webhooks: the payload's results, as they came. */
int tmat_result_event(struct tmat *t)
{
	json_object *payload = payload_of(t->a->event), *tests = json_object_new_array();
	size_t n, skipped = 0;
	int rc = -1;

	if (!tests || collect(t, payload, tests, &skipped) < 0) {
		outcome_set(t->out, WORK_FAIL, "send results: out of memory");
		goto done;
	}
	if (!(n = json_object_array_length(tests))) {
		note(t, "no results to send (%zu without a case or a reportable status)", skipped);
		rc = 0;
		goto done;
	}
	if (tmat_ensure(t) < 0 || send_tests(t, tests) < 0)
		goto done;
	note(t, "sent %zu results to run %s%s", n, t->a->map.remote_id,
	     skipped ? " (some not reportable)" : "");
	rc = 0;
done:
	json_object_put(tests);
	return rc;
}
