/*
 * target_testcenter_import: the testcenter kind's mode import
 * (target_testcenter.c).
 *
 * mode import (the default, and the safer one): nothing is sent until
 * run.completed or run.aborted; then one JUnit XML file (junit.h: one
 * testcase per result, or synthetic ones from the counts when the run has
 * no results stored) goes to POST {base_url}/import, multipart, with the
 * project, the batch and the labels qase.project, qase.run, qase.event plus
 * the configured ones.  An upload cannot be asked whether it arrived, so the
 * map records "importing" before it and "imported" (with the event type)
 * after the 2xx: a retry after the answer does nothing; only a crash
 * between the two sends the file again.
 */
#include "targets/target_testcenter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/results.h"

#define TC_JUNIT_PAGE 500 /* results read per store call for a JUnit file */

/* ---- the file ---------------------------------------------------------------- */

/* Streams the stored results into a JUnit document. */
struct doc_ctx {
	struct junit_doc *doc;
	struct err *err;
	long long last; /* case id of the last row read */
	int failed;     /* the document refused a row (err set) */
};

static int doc_row(void *ctx, const struct result_row *r)
{
	struct doc_ctx *x = ctx;

	x->last = r->case_id;
	if (junit_doc_case(x->doc, r, x->err) < 0) {
		x->failed = 1;
		return -1;
	}
	return 0;
}

/* All pages of the run's results into d; -1 with out set (a store read
 * failure is retried, a document over its caps is not). */
static int doc_fill(struct tc *c, struct junit_doc *d)
{
	struct err err = { 0 };
	struct doc_ctx x = { .doc = d, .err = &err };
	size_t n;

	do {
		n = 0;
		if (c->a->results(c->a, x.last, TC_JUNIT_PAGE, doc_row, &x, &n, &err) < 0 &&
		    !x.failed) {
			outcome_set(c->out, WORK_FAIL, "testcenter: reading the results: %s",
				    err.msg);
			return -1;
		}
		if (x.failed) {
			outcome_set(c->out, WORK_PERMANENT, "testcenter: %s", err.msg);
			return -1;
		}
	} while (n == TC_JUNIT_PAGE);
	return 0;
}

/*
 * The JUnit file of the results: 0 with *xml (NULL when nothing reportable
 * is stored: the caller falls back to the counts) and *tests, or -1 with
 * out set.
 */
static int import_results_xml(struct tc *c, json_object *res, const char *suite, char **xml,
			      size_t *len, long long *tests)
{
	struct junit_doc d;
	struct err err = { 0 };
	json_object *ev = c->a->event;
	int rc = -1;

	*xml = NULL;
	if (junit_doc_begin(&d, suite, event_str(ev, "occurred_at"),
			    event_int(ev, "run.duration_ms", -1), tc_data_str(res, "status"),
			    &err) < 0) {
		outcome_set(c->out, WORK_FAIL, "testcenter: %s", err.msg);
		goto done;
	}
	if (doc_fill(c, &d) < 0)
		goto done;
	*tests = d.tests;
	if (d.tests > 0 && junit_doc_end(&d, xml, len, &err) < 0) {
		outcome_set(c->out, WORK_PERMANENT, "testcenter: %s", err.msg);
		goto done;
	}
	rc = 0;
done:
	junit_doc_free(&d);
	return rc;
}

/* The file to import, from the results or the counts; -1 with out set. */
static int import_xml(struct tc *c, char **xml, size_t *len, long long *tests, int *from_results)
{
	struct junit_run run = { .timestamp = event_str(c->a->event, "occurred_at") };
	json_object *res = tc_results(c);
	char suite[128];
	struct err err = { 0 };

	run.suite = tc_suite(c, suite, sizeof(suite));
	*from_results = 0;
	if (res && import_results_xml(c, res, run.suite, xml, len, tests) < 0)
		return -1;
	if (*xml) {
		*from_results = 1;
		return 0;
	}
	tc_run_counts(c, &run);
	if (junit_render(xml, len, &run, &err) < 0) {
		outcome_set(c->out, WORK_PERMANENT, "testcenter: %s", err.msg);
		return -1;
	}
	*tests = junit_tests(&run);
	return 0;
}

/* "qase-DEMO-42.xml"; the code is reduced to characters safe in a
 * Content-Disposition filename. */
static void import_filename(const struct tc *c, char *buf, size_t len)
{
	char code[64];
	size_t i = 0;

	for (const char *p = c->project; *p && i < sizeof(code) - 1; p++)
		code[i++] = (strchr("-_.", *p) || (*p >= '0' && *p <= '9') ||
			     (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
				    ? *p
				    : '_';
	code[i] = '\0';
	snprintf(buf, len, "qase-%s-%lld.xml", code, c->run_id);
}

/* What an import sends besides the file. */
struct import_req {
	struct outbound_part parts[3 + TC_LABELS_MAX];
	size_t n;
	char *labels[TC_LABELS_MAX]; /* "key=value", malloc'd */
	size_t n_labels;
};

static void import_req_free(struct import_req *r)
{
	for (size_t i = 0; i < r->n_labels; i++)
		free(r->labels[i]);
}

static void part_add(struct import_req *r, const char *name, const char *data, size_t len)
{
	r->parts[r->n++] = (struct outbound_part){ .name = name, .data = data, .len = len };
}

static int import_fields(struct tc *c, struct import_req *r, const char *batch)
{
	const char *project = target_str(c->a->target, "project");
	json_object *labels;
	size_t n;
	int rc = 0;

	labels = tc_labels(c, 1);
	n = json_object_array_length(labels);
	part_add(r, "project", project, strlen(project));
	if (batch)
		part_add(r, "batch", batch, strlen(batch));
	for (size_t i = 0; i < n && r->n_labels < TC_LABELS_MAX; i++) {
		json_object *l = json_object_array_get_idx(labels, i);
		char *kv;
		if (asprintf(&kv, "%s=%s", tc_data_str(l, "key"), tc_data_str(l, "value")) < 0) {
			outcome_set(c->out, WORK_FAIL, "out of memory");
			rc = -1;
			break;
		}
		r->labels[r->n_labels++] = kv;
		part_add(r, "label[]", kv, strlen(kv));
	}
	json_object_put(labels);
	return rc;
}

/* data.report after a 2xx: which event was imported, as what, and Test
 * Center's answer when it is JSON. */
static void import_record(struct tc *c, const char *file, const char *batch,
			  const struct outbound_resp *resp)
{
	json_object *rep = json_object_new_object();
	json_object *answer = resp->body ? json_tokener_parse(resp->body) : NULL;

	json_object_object_add(rep, "event", json_object_new_string(c->type));
	json_object_object_add(rep, "file", json_object_new_string(file));
	json_object_object_add(rep, "batch", batch ? json_object_new_string(batch) : NULL);
	json_object_object_add(rep, "status", json_object_new_int64(resp->status));
	if (json_object_is_type(answer, json_type_object))
		json_object_object_add(rep, "response", json_object_get(answer));
	json_object_put(answer);
	json_object_object_add(c->a->map.data, "report", rep);
	json_object_object_del(c->a->map.data, "importing");
}

static int import_send(struct tc *c, struct import_req *r, const char *file, const char *batch)
{
	char url[TC_URL_MAX];
	const char *headers[] = { c->auth, "Accept: application/json", NULL };
	struct outbound_req req = {
		.method = "POST", .url = url, .headers = headers, .parts = r->parts, .n_parts = r->n
	};
	struct outbound_resp resp;

	if (tc_url(c, "/import", url, sizeof(url)) < 0 ||
	    target_call(c->a, &req, &resp, c->out, "import") < 0)
		return -1;
	import_record(c, file, batch, &resp);
	outbound_resp_free(&resp);
	return 0;
}

void tc_import(struct tc *c)
{
	json_object *data = c->a->map.data;
	struct import_req r = { 0 };
	const char *batch = tc_param(c, "batch");
	char file[128];
	char *xml = NULL;
	size_t len = 0;
	long long tests = 0;
	int from_results;
	/* the last attempt saved its intent for this event but not the result */
	int resent = tc_state_is(c, "importing") && tu_streq(tc_data_str(data, "importing"), c->type);

	if (tc_state_is(c, "imported") &&
	    tu_streq(tc_data_str(tc_data_get(data, "report"), "event"), c->type)) {
		outcome_set(c->out, WORK_OK, "run %s: %s already imported", c->ref, c->type);
		return;
	}
	if (import_xml(c, &xml, &len, &tests, &from_results) < 0)
		return;
	import_filename(c, file, sizeof(file));
	if (import_fields(c, &r, batch) < 0)
		goto done;
	r.parts[r.n++] = (struct outbound_part){ .name = "result[]",
						 .filename = file,
						 .content_type = "application/xml",
						 .data = xml,
						 .len = len };
	json_object_object_add(data, "importing", json_object_new_string(c->type));
	if (tc_save(c, "importing") < 0 || import_send(c, &r, file, batch) < 0 ||
	    tc_save(c, "imported") < 0)
		goto done;
	outcome_set(c->out, WORK_OK,
		    "run %s: imported %s (%lld tests, from the %s) into project %s%s", c->ref, file,
		    tests, from_results ? "results" : "counts", target_str(c->a->target, "project"),
		    resent ? "; re-sent: an earlier upload's outcome was unknown" : "");
done:
	import_req_free(&r);
	free(xml);
}
