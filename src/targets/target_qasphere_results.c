/*
 * target_qasphere_results: the per-case results of a run mirrored to QA
 * Sphere (target_qasphere.c mirrors the run itself).  Before the close, the
 * results go to POST .../result/batch in case id order, at most 500 a
 * request, each case mapped to the tcaseId of the run's own listing
 * (target_qasphere_cases.c).
 *
 * QA Sphere appends results, so a case's result must be sent once.  The
 * progress is a cursor in the mapping's data (results_after: the last Qase
 * case id of the last accepted batch).  Before each POST the batch is
 * committed as an intent (results_pending: its last case id, its size and
 * one tcaseId to probe); after the answer the cursor moves and the intent
 * goes, in one commit.  An attempt that finds an intent left (a crash, a
 * timeout or a refused commit after the POST) asks QA Sphere whether the
 * probe case holds a result added through the API (GET .../tcase/{id}):
 * then the batch landed and the cursor moves, otherwise it is sent again.
 * What remains: a batch QA Sphere applied only in part, or another API
 * client adding a result to the probe case in between.
 *
 * Cases that cannot be mapped (no marker or field, no such QA Sphere case,
 * not in the run) are listed once in a run log entry and counted in
 * runbridge_qasphere_unmapped_total.
 */
#include "targets/target_qasphere.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/metrics.h"
#include "store/results.h"

#define BATCH_MAX       500        /* results a request (what qas-cli sends) */
#define BATCH_BYTES     (4u << 20) /* and about this many bytes */
#define MSG_MAX         4000       /* characters of a message in a comment */
#define STACK_MAX       16000      /* and of a stack trace */
#define UNMAPPED_LISTED 100        /* cases named in the unmapped log entry */

/* ---- counts and the cursor in the mapping's data -------------------------- */

static long long data_int(struct qs *q, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(q->a->map.data, name, &v) ? json_object_get_int64(v) : 0;
}

static void set_int(struct qs *q, const char *name, long long v)
{
	json_object_object_add(q->a->map.data, name, json_object_new_int64(v));
}

/* ---- results ------------------------------------------------------------- */

/* Qase status -> QA Sphere status (target-apis.md 5.2); NULL: not sent
 * (untested, in_progress, a custom Qase status). */
static const char *qs_status(const char *s, const char *invalid)
{
	static const char *const same[] = { "passed", "failed", "blocked", "skipped" };

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		if (tu_streq(s, same[i]))
			return same[i];
	return tu_streq(s, "invalid") ? invalid : NULL;
}

/* Appends the escaped s with its line breaks as <br>. */
static int add_lines(struct buf *b, const char *s)
{
	char *e = tu_html_escape(s);

	if (!e)
		return -1;
	for (const char *p = e; *p;) {
		size_t n = strcspn(p, "\r\n");
		buf_add(b, p, n);
		p += n;
		if (*p == '\r' && p[1] == '\n')
			p++;
		if (*p) {
			buf_adds(b, "<br>");
			p++;
		}
	}
	free(e);
	return 0;
}

/* A result's comment: where it comes from, the message, the stack trace;
 * every Qase text escaped and cut (MSG_MAX, STACK_MAX characters). */
static char *comment_of(const struct qs *q, const struct result_row *r)
{
	char *msg = tu_cut(r->message, MSG_MAX), *st = tu_cut(r->stacktrace, STACK_MAX);
	char *code = tu_html_escape(q->project), *status = tu_html_escape(r->status);
	char *stack = st ? tu_html_escape(st) : NULL, *out = NULL;
	struct buf b;

	buf_init(&b, BATCH_BYTES);
	if (!msg || !stack || !code || !status)
		goto done;
	buf_addf(&b, "<p>Qase %s#%lld, case %lld: %s</p>", code, q->run_id, r->case_id, status);
	if (*msg) {
		buf_adds(&b, "<p>");
		if (add_lines(&b, msg) < 0)
			goto done;
		buf_adds(&b, "</p>");
	}
	if (*stack)
		buf_addf(&b, "<pre>%s</pre>", stack);
	if (!buf_error(&b))
		out = buf_detach(&b, NULL);
done:
	buf_free(&b);
	free(msg);
	free(st);
	free(stack);
	free(code);
	free(status);
	return out;
}

/* One request's worth of results, read from the store in case id order. */
struct batch {
	struct qs *q;
	const struct tcases *tc;
	long long field;
	const char *invalid;
	json_object *items;
	const char *probe; /* the first item's tcaseId */
	size_t bytes, rows;
	long long last; /* the last case id taken (sent or passed over) */
	int stopped, oom;
};

static int batch_one(void *ctx, const struct result_row *r)
{
	struct batch *b = ctx;
	const char *status = qs_status(r->status, b->invalid), *why, *id = NULL;
	struct qs_key k;
	json_object *it;
	char *html;
	size_t need;

	if (status && qs_key_of(b->q, b->field, r, &k, &why) == 0)
		id = qs_tcases_find(b->tc, &k);
	if (id) {
		if (!(html = comment_of(b->q, r)) || !(it = json_object_new_object())) {
			free(html);
			b->oom = 1;
			return -1;
		}
		/* JSON may double the comment ("/" -> "\/"); a batch stays near
		 * BATCH_BYTES, and one item always fits */
		need = 2 * strlen(html) + strlen(id) + 96;
		if (json_object_array_length(b->items) && b->bytes + need > BATCH_BYTES) {
			json_object_put(it);
			free(html);
			b->stopped = 1;
			return -1;
		}
		json_object_object_add(it, "tcaseId", json_object_new_string(id));
		json_object_object_add(it, "status", json_object_new_string(status));
		json_object_object_add(it, "comment", json_object_new_string(html));
		json_object_object_add(it, "timeTaken",
				       r->duration_ms >= 0 ? json_object_new_int64(r->duration_ms)
							   : NULL);
		free(html);
		json_object_array_add(b->items, it);
		b->bytes += need;
		if (!b->probe)
			b->probe = id;
	}
	b->rows++;
	b->last = r->case_id;
	return 0;
}

/* Moves the cursor past an accepted batch (not committed). */
static void accepted(struct qs *q, long long through, long long items)
{
	set_int(q, "results_after", through);
	set_int(q, "results_sent", data_int(q, "results_sent") + items);
	set_int(q, "results_batches", data_int(q, "results_batches") + 1);
	json_object_object_del(q->a->map.data, "results_pending");
}

/*
 * A batch whose answer was never recorded (results_pending): it landed when
 * its probe case holds a result added through the API, since runbridge
 * sends each case once and nothing else in a mirrored run uses the API.
 */
static int reconcile(struct qs *q)
{
	json_object *p, *v, *answer, *res, *probe;
	char enc[3 * ID_MAX], rest[3 * ID_MAX + 16];
	int landed = 0;

	if (!json_object_object_get_ex(q->a->map.data, "results_pending", &p))
		return 0;
	if (!json_object_object_get_ex(p, "probe", &probe) ||
	    tu_pct_encode(json_object_get_string(probe), enc, sizeof(enc)) < 0) {
		json_object_object_del(q->a->map.data, "results_pending");
		return target_map_commit(q->a, q->out);
	}
	snprintf(rest, sizeof(rest), "/tcase/%s", enc);
	if (qs_run_get(q, rest, &answer, "check the last batch", LIST_MAX) < 0)
		return -1;
	json_object_object_get_ex(answer, "results", &res);
	for (size_t i = 0;
	     json_object_is_type(res, json_type_array) && i < json_object_array_length(res); i++) {
		json_object *r = json_object_array_get_idx(res, i), *internal;
		if (json_object_object_get_ex(r, "apiKeyId", &v) &&
		    json_object_is_type(v, json_type_string) &&
		    !(json_object_object_get_ex(r, "internal", &internal) &&
		      json_object_get_boolean(internal)))
			landed = 1;
	}
	json_object_put(answer);
	if (landed) {
		json_object_object_get_ex(p, "through", &v);
		long long through = json_object_get_int64(v);
		json_object_object_get_ex(p, "items", &v);
		accepted(q, through, json_object_get_int64(v));
	} else {
		json_object_object_del(q->a->map.data, "results_pending");
	}
	note(q, "%s",
	     landed ? "an unrecorded batch had landed" : "an unrecorded batch is sent again");
	return target_map_commit(q->a, q->out);
}

/* Intent, POST, cursor: see the header.  Takes b->items. */
static int send_batch(struct qs *q, struct batch *b)
{
	json_object *pending, *body;
	long long n = (long long)json_object_array_length(b->items);
	char path[128];

	if (qs_run_path(q, "/result/batch", path, sizeof(path)) < 0) {
		json_object_put(b->items);
		return -1;
	}
	pending = json_object_new_object();
	body = json_object_new_object();
	if (!pending || !body) {
		json_object_put(pending);
		json_object_put(body);
		json_object_put(b->items);
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	}
	json_object_object_add(pending, "through", json_object_new_int64(b->last));
	json_object_object_add(pending, "items", json_object_new_int64(n));
	json_object_object_add(pending, "probe", json_object_new_string(b->probe));
	json_object_object_add(q->a->map.data, "results_pending", pending);
	json_object_object_add(body, "items", b->items);
	if (target_map_commit(q->a, q->out) < 0) {
		json_object_put(body);
		return -1;
	}
	if (qs_call(q, path, body, NULL, "send results") < 0)
		return -1;
	accepted(q, b->last, n);
	return target_map_commit(q->a, q->out);
}

/* Every result after the cursor, in batches; then results_done. */
static int send_results(struct qs *q, struct tcases *tc)
{
	const char *invalid = target_str(q->a->target, "invalid_status");
	struct err err = { 0 };
	size_t n;

	if (qs_flag(q, "results_done"))
		return 0;
	if (reconcile(q) < 0 || qs_tcases_load(q, tc) < 0)
		return -1;
	for (;;) {
		struct batch b = {
			.q = q,
			.tc = tc,
			.field = qs_case_field(q->a->target),
			.invalid = invalid ? invalid : "failed",
			.last = data_int(q, "results_after"),
		};
		if (!(b.items = json_object_new_array()))
			return outcome_fail(q->out, WORK_FAIL, "out of memory");
		if (q->a->results(q->a, b.last, BATCH_MAX, batch_one, &b, &n, &err) < 0 || b.oom) {
			json_object_put(b.items);
			if (b.oom)
				return outcome_fail(q->out, WORK_FAIL, "out of memory");
			outcome_set(q->out, WORK_FAIL, "read results: %s", err.msg);
			return -1;
		}
		if (json_object_array_length(b.items) > 0) {
			if (send_batch(q, &b) < 0)
				return -1;
		} else {
			json_object_put(b.items);
			set_int(q, "results_after", b.last); /* committed with the next */
		}
		if (!b.stopped && b.rows < BATCH_MAX)
			break;
	}
	return qs_set_flag(q, "results_done");
}

/* The unmapped cases, for one run log entry. */
struct unmapped {
	struct qs *q;
	const struct tcases *tc;
	long long field;
	struct buf html;
	size_t n;
};

static int unmapped_one(void *ctx, const struct result_row *r)
{
	struct unmapped *u = ctx;
	const char *why;
	char *title, where[ID_MAX + 64];
	struct qs_key k;

	if (!qs_status(r->status, "failed"))
		return 0;
	if (qs_key_of(u->q, u->field, r, &k, &why) == 0) {
		if (qs_tcases_find(u->tc, &k))
			return 0;
		if (k.seq > 0)
			snprintf(where, sizeof(where), "%.40s-%03lld is not in the run", u->q->code,
				 k.seq);
		else
			snprintf(where, sizeof(where), "%s is not in the run", k.id);
		why = where;
	}
	if (++u->n > UNMAPPED_LISTED)
		return 0;
	title = tu_html_escape(r->title);
	if (!title)
		return -1;
	buf_addf(&u->html, "<li>Qase case %lld: %s (", r->case_id, title);
	free(title);
	title = tu_html_escape(why);
	buf_addf(&u->html, "%s)</li>", title ? title : "");
	free(title);
	return 0;
}

/* Lists the unmapped cases once in a run log entry, and counts them. */
static int log_unmapped(struct qs *q, struct tcases *tc)
{
	struct unmapped u = { .q = q, .tc = tc, .field = qs_case_field(q->a->target) };
	struct err err = { 0 };
	char *html = NULL;
	size_t n;
	int rc = -1;

	if (qs_flag(q, "unmapped_logged"))
		return 0;
	if (qs_tcases_load(q, tc) < 0)
		return -1;
	buf_init(&u.html, 1u << 20);
	if (q->a->results(q->a, 0, 0, unmapped_one, &u, &n, &err) < 0) {
		outcome_set(q->out, WORK_FAIL, "read results: %s", err.msg);
		goto done;
	}
	if (!u.n) {
		rc = qs_set_flag(q, "unmapped_logged");
		goto done;
	}
	if (u.n > UNMAPPED_LISTED)
		buf_addf(&u.html, "<li>and %zu more</li>", u.n - UNMAPPED_LISTED);
	if (buf_error(&u.html) ||
	    asprintf(&html,
		     "<p>%zu Qase result%s not mirrored: no QA Sphere test case of this run "
		     "(case_map: %s)</p><ul>%s</ul>",
		     u.n, u.n == 1 ? "" : "s", u.field ? "custom_field" : "marker", u.html.p) < 0) {
		html = NULL;
		outcome_fail(q->out, WORK_FAIL, "out of memory");
		goto done;
	}
	if (qs_log_html(q, html, "log unmapped cases") < 0)
		goto done;
	set_int(q, "unmapped", (long long)u.n);
	if ((rc = qs_set_flag(q, "unmapped_logged")) == 0)
		metrics_qasphere_unmapped(q->a->target->name, u.n);
done:
	free(html);
	buf_free(&u.html);
	return rc;
}

/* Results, then the unmapped log, before the summary and the close. */
int qs_mirror_results(struct qs *q)
{
	struct tcases tc = { 0 };
	int rc;

	if (!qs_event_results(q) || !q->a->results)
		return 0;
	rc = send_results(q, &tc) < 0 || log_unmapped(q, &tc) < 0 ? -1 : 0;
	qs_tcases_free(&tc);
	if (rc == 0)
		note(q, "%lld results sent in %lld batches, %lld unmapped",
		     data_int(q, "results_sent"), data_int(q, "results_batches"),
		     data_int(q, "unmapped"));
	return rc;
}
