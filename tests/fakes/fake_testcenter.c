/*
 * fake_testcenter: Squish Test Center's result upload and result reporting
 * APIs (docs/api/squish-testcenter-result-reporting.txt, target-apis.md
 * section 4).
 *
 *   POST /import, /upload/import     multipart: project, batch, label[], result[]
 *   POST /upload/suites              {project, batch?, reportId?, labels?, test}
 *   POST /upload/{cases,features,scenarios,steps,sections}  {runId, test}
 *   POST /upload/events              JSON event -> 204, or multipart
 *                                    (eventData + attachments[]) -> 207
 *   GET  /api/v1/batches?project0=P  the project's batches (Test Results
 *                                    API; its path is an assumption, see
 *                                    runbridge.8 under check --online)
 *
 * Authorization: Token <token> or Basic base64(user:password).  Errors are
 * {code, message}.  The hierarchy rule is kept per report as the path of
 * open elements: adding a child to an element on the path truncates the
 * path below it, which closes the previous sibling and its descendants.
 *
 * What tests read back (GET /_state): per report its runs (elements with
 * their events), "log" (every element and event in the order received:
 * {op: suite|case|...|event, runId, parent, name} or {op: event, runId,
 * type, message, detail}) and "repeated" (names of tests reported more
 * than once under the same parent: a second execution of the same test);
 * per import its fields, labels and files, each file with its JUnit
 * counters ("suites") and its testcases in document order ("cases":
 * {suite, name, classname, time, result, message, type, text}; see
 * fake_xml.c).  An import takes only the fields the vendor documents
 * (project or name, batch, label[], result[]), each field once but
 * label[] and result[], no file on a field, and labels without the
 * newlines, commas and double quotes Test Center refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fake_common.h"

#define TC_MAX_DEPTH 64

enum tc_kind { K_SUITE, K_CASE, K_FEATURE, K_SCENARIO, K_STEP, K_SECTION, K_COUNT };

static const char *const kind_names[] = {
	"suite", "case", "feature", "scenario", "step", "section",
};
static const char *const endpoints[] = {
	"suites", "cases", "features", "scenarios", "steps", "sections",
};
static const char *const event_types[] = {
	"PASS",  "XPASS", "FAIL",    "XFAIL",      "WARNING", "ERROR",
	"FATAL", "LOG",   "SKIPPED", "ATTACHMENT", NULL,
};
static const char *const xml_types[] = { "application/xml", "text/xml", NULL };
static const char *const other_types[] = {
	"application/zip",
	"application/octet-stream",
	"application/x-zip-compressed",
	"application/javascript",
	"application/x-javascript",
	"text/javascript",
	NULL,
};

struct tc_run {
	int id, report, parent;
	enum tc_kind kind;
	struct json_object *test;
	struct json_object *events;
};

struct tc_report {
	int id;
	char project[256], batch[256];
	struct json_object *labels; /* sorted array of "key=value" */
	int path[TC_MAX_DEPTH];     /* run ids of the open elements, root first */
	int depth;
	struct json_object *log;      /* elements and events, in order */
	struct json_object *repeated; /* test names reported twice under one parent */
};

struct tc_state {
	struct tc_run *runs;
	size_t nruns, caprun;
	struct tc_report *reports;
	size_t nreports, caprep;
	struct json_object *imports;
	int next_batch;
	char basic[512]; /* expected Basic credentials, "" if none */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *str_field(struct json_object *o, const char *key)
{
	struct json_object *v = fake_get(o, key);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int tu_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static void copy_str(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* ---- auth -------------------------------------------------------------- */

static void base64(const char *in, char *out, size_t cap)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	for (size_t i = 0; i < n && o + 5 < cap; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tbl[v & 63] : '=';
	}
	out[o] = '\0';
}

static int auth_ok(struct fake *f, struct fake_req *r)
{
	struct tc_state *s = f->state;
	const char *h = fake_hdr(r, "authorization");
	if (!h)
		return 0;
	if (f->opt.token && strncasecmp(h, "Token ", 6) == 0)
		return strcmp(h + 6, f->opt.token) == 0;
	if (s->basic[0] && strncasecmp(h, "Basic ", 6) == 0)
		return strcmp(h + 6, s->basic) == 0;
	return 0;
}

/* ---- reports and runs -------------------------------------------------- */

static int label_cmp(const void *a, const void *b)
{
	return strcmp(json_object_get_string(*(struct json_object *const *)a),
		      json_object_get_string(*(struct json_object *const *)b));
}

static int same_labels(struct json_object *a, struct json_object *b)
{
	size_t n = json_object_array_length(a);
	if (n != json_object_array_length(b))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(a, i)),
			   json_object_get_string(json_object_array_get_idx(b, i))) != 0)
			return 0;
	return 1;
}

/* Takes ownership of labels (a sorted array). */
static struct tc_report *new_report(struct tc_state *s, const char *project, const char *batch,
				    struct json_object *labels)
{
	if (s->nreports == s->caprep) {
		size_t cap = s->caprep ? s->caprep * 2 : 16;
		struct tc_report *n = realloc(s->reports, cap * sizeof(*n));
		if (!n) {
			json_object_put(labels);
			return NULL;
		}
		s->reports = n;
		s->caprep = cap;
	}
	struct tc_report *rep = &s->reports[s->nreports];
	memset(rep, 0, sizeof(*rep));
	rep->id = (int)++s->nreports;
	copy_str(rep->project, sizeof(rep->project), project, strlen(project));
	copy_str(rep->batch, sizeof(rep->batch), batch, strlen(batch));
	rep->labels = labels;
	rep->log = json_object_new_array();
	rep->repeated = json_object_new_array();
	return rep;
}

static struct tc_run *new_run(struct tc_state *s, struct tc_report *rep, int parent,
			      enum tc_kind kind, struct json_object *test)
{
	if (s->nruns == s->caprun) {
		size_t cap = s->caprun ? s->caprun * 2 : 64;
		struct tc_run *n = realloc(s->runs, cap * sizeof(*n));
		if (!n)
			return NULL;
		s->runs = n;
		s->caprun = cap;
	}
	struct tc_run *run = &s->runs[s->nruns];
	run->id = (int)++s->nruns;
	run->report = rep->id;
	run->parent = parent;
	run->kind = kind;
	run->test = fake_copy(test);
	run->events = json_object_new_array();
	return run;
}

static struct tc_run *find_run(struct tc_state *s, int id)
{
	return id >= 1 && (size_t)id <= s->nruns ? &s->runs[id - 1] : NULL;
}

static void log_element(struct tc_report *rep, const struct tc_run *run)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "op", json_object_new_string(kind_names[run->kind]));
	json_object_object_add(o, "runId", json_object_new_int(run->id));
	json_object_object_add(o, "parent", run->parent ? json_object_new_int(run->parent) : NULL);
	json_object_object_add(o, "name", fake_copy(fake_get(run->test, "name")));
	json_object_array_add(rep->log, o);
}

/* A test already executed under the same parent is a second execution. */
static void note_repeat(struct tc_state *s, struct tc_report *rep, const struct tc_run *run)
{
	const char *name = str_field(run->test, "name");
	for (size_t i = 0; name && i + 1 < s->nruns; i++) {
		const struct tc_run *o = &s->runs[i];
		if (o->id != run->id && o->report == run->report && o->parent == run->parent &&
		    o->kind == run->kind && tu_eq(str_field(o->test, "name"), name)) {
			json_object_array_add(rep->repeated, json_object_new_string(name));
			return;
		}
	}
}

/* Position of the run on its report's open path, or -1 if it is closed. */
static int open_pos(struct tc_state *s, const struct tc_run *run)
{
	const struct tc_report *rep = &s->reports[run->report - 1];
	for (int i = 0; i < rep->depth; i++)
		if (rep->path[i] == run->id)
			return i;
	return -1;
}

static int parent_ok(enum tc_kind child, enum tc_kind parent)
{
	switch (child) {
	case K_CASE: return parent == K_SUITE;
	case K_FEATURE: return parent == K_SUITE || parent == K_CASE;
	case K_SCENARIO: return parent == K_FEATURE;
	case K_STEP: return parent == K_SCENARIO;
	case K_SECTION: return 1;
	default: return 0;
	}
}

static int check_test(struct fake_req *r, struct json_object *b)
{
	static const struct jfield spec[] = {
		{ "name", JT_NESTR, 1 },
		{ "summary", JT_STR, 0 },
		{ "description", JT_STR, 0 },
	};
	char err[256];
	struct json_object *t = fake_get(b, "test");
	if (!fake_has(b, "test"))
		return fake_error(r, 400, "test is required"), -1;
	if (!json_object_is_type(t, json_type_object))
		return fake_error(r, 400, "test must be an object"), -1;
	if (fake_check(t, spec, N(spec), err, sizeof(err)) < 0)
		return fake_error(r, 400, "test.%s", err), -1;
	return 0;
}

/* ---- POST /upload/suites ----------------------------------------------- */

/* labels: [{key, value}] -> sorted ["key=value"], or NULL after replying. */
static struct json_object *parse_labels(struct fake_req *r, struct json_object *labels)
{
	struct json_object *out = json_object_new_array();
	for (size_t i = 0; labels && i < json_object_array_length(labels); i++) {
		struct json_object *l = json_object_array_get_idx(labels, i);
		const char *k = str_field(l, "key"), *v = str_field(l, "value");
		if (!json_object_is_type(l, json_type_object) || !k || !*k || !v) {
			json_object_put(out);
			fake_error(r, 400,
				   "labels[%zu] must be {key, value} with string "
				   "values and a non-empty key",
				   i);
			return NULL;
		}
		char kv[1024];
		snprintf(kv, sizeof(kv), "%s=%s", k, v);
		json_object_array_add(out, json_object_new_string(kv));
	}
	json_object_array_sort(out, label_cmp);
	return out;
}

/* The report a suite goes to, per the four rules of the vendor text. */
static struct tc_report *pick_report(struct tc_state *s, struct fake_req *r, struct json_object *b,
				     struct json_object *labels)
{
	const char *project = str_field(b, "project");
	const char *batch = str_field(b, "batch");
	if (fake_has(b, "reportId")) {
		int id = json_object_get_int(fake_get(b, "reportId"));
		struct tc_report *rep = id >= 1 && (size_t)id <= s->nreports ? &s->reports[id - 1]
									     : NULL;
		json_object_put(labels);
		if (!rep)
			return fake_error(r, 400, "report %d does not exist", id), NULL;
		if ((project && strcmp(project, rep->project) != 0) ||
		    (batch && strcmp(batch, rep->batch) != 0))
			return fake_error(r, 400,
					  "report %d belongs to another project or "
					  "batch",
					  id),
			       NULL;
		return rep;
	}
	if (!project || !*project) {
		json_object_put(labels);
		return fake_error(r, 400, "project is required"), NULL;
	}
	int with_labels = fake_has(b, "labels");
	for (size_t i = 0; (batch || with_labels) && i < s->nreports; i++) {
		struct tc_report *rep = &s->reports[i];
		if (strcmp(rep->project, project) != 0 || (batch && strcmp(rep->batch, batch) != 0))
			continue;
		if (!with_labels || same_labels(rep->labels, labels)) {
			json_object_put(labels);
			return rep;
		}
	}
	char gen[32];
	if (!batch) {
		snprintf(gen, sizeof(gen), "batch-%d", ++s->next_batch);
		batch = gen;
	}
	return new_report(s, project, batch, labels);
}

static int add_suite(struct fake *f, struct fake_req *r)
{
	static const struct jfield spec[] = {
		{ "project", JT_STR, 0 }, { "batch", JT_NESTR, 0 }, { "reportId", JT_POSINT, 0 },
		{ "labels", JT_ARR, 0 },  { "test", JT_OBJ, 0 },
	};
	struct tc_state *s = f->state;
	struct json_object *b = r->json;
	char err[256];
	if (fake_check(b, spec, N(spec), err, sizeof(err)) < 0)
		return fake_error(r, 400, "%s", err);
	if (check_test(r, b) < 0)
		return 0;
	struct json_object *labels = parse_labels(r, fake_get(b, "labels"));
	if (!labels)
		return 0;
	struct tc_report *rep = pick_report(s, r, b, labels);
	if (!rep)
		return 0;
	struct tc_run *run = new_run(s, rep, 0, K_SUITE, fake_get(b, "test"));
	if (!run)
		return fake_error(r, 500, "out of memory");
	rep->path[0] = run->id; /* a new suite closes the previous one */
	rep->depth = 1;
	log_element(rep, run);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "project", json_object_new_string(rep->project));
	json_object_object_add(o, "batch", json_object_new_string(rep->batch));
	json_object_object_add(o, "reportId", json_object_new_int(rep->id));
	json_object_object_add(o, "runId", json_object_new_int(run->id));
	return fake_reply(r, 201, o);
}

/* ---- POST /upload/{cases,...} ------------------------------------------ */

/* The open run ev.runId names, or NULL with err set. */
static struct tc_run *open_run(struct tc_state *s, struct json_object *ev, const char *what,
			       char *err, size_t errlen)
{
	struct json_object *id = fake_get(ev, "runId");
	if (!fake_has(ev, "runId")) {
		snprintf(err, errlen, "runId is required");
		return NULL;
	}
	if (!fake_jt_ok(id, JT_INT)) {
		snprintf(err, errlen, "runId must be an integer");
		return NULL;
	}
	struct tc_run *run = find_run(s, json_object_get_int(id));
	if (!run) {
		snprintf(err, errlen, "run %d does not exist", json_object_get_int(id));
		return NULL;
	}
	if (open_pos(s, run) < 0) {
		snprintf(err, errlen,
			 "run %d is closed: %s can only be added to the last "
			 "element created on each hierarchy level of a report",
			 run->id, what);
		return NULL;
	}
	return run;
}

static int add_element(struct fake *f, struct fake_req *r, enum tc_kind kind)
{
	struct tc_state *s = f->state;
	char err[256];
	struct tc_run *parent = open_run(s, r->json, "elements", err, sizeof(err));
	if (!parent)
		return fake_error(r, 400, "%s", err);
	if (check_test(r, r->json) < 0)
		return 0;
	if (!parent_ok(kind, parent->kind))
		return fake_error(r, 400, "a %s cannot be a child of a %s", kind_names[kind],
				  kind_names[parent->kind]);
	struct tc_report *rep = &s->reports[parent->report - 1];
	int pos = open_pos(s, parent), parent_id = parent->id;
	if (pos + 1 >= TC_MAX_DEPTH)
		return fake_error(r, 400, "hierarchy too deep");
	/* new_run may move the runs array: parent is not used after it */
	struct tc_run *run = new_run(s, rep, parent_id, kind, fake_get(r->json, "test"));
	if (!run)
		return fake_error(r, 500, "out of memory");
	rep->path[pos + 1] = run->id;
	rep->depth = pos + 2;
	note_repeat(s, rep, run);
	log_element(rep, run);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "runId", json_object_new_int(run->id));
	return fake_reply(r, 201, o);
}

/* ---- POST /upload/events ----------------------------------------------- */

static const struct fake_part *find_file(const struct fake_req *r, const char *name)
{
	for (size_t i = 0; i < r->nparts; i++)
		if (strcmp(r->parts[i].name, "attachments[]") == 0 && r->parts[i].has_filename &&
		    strcmp(r->parts[i].filename, name) == 0)
			return &r->parts[i];
	return NULL;
}

static int check_location(struct json_object *l)
{
	return json_object_is_type(l, json_type_object) &&
	       json_object_is_type(fake_get(l, "uri"), json_type_string) &&
	       json_object_is_type(fake_get(l, "line"), json_type_int);
}

/* Validates one event; 0, or -1 with err set.  Files are looked up among
 * the request's attachments[] parts (none for a JSON request). */
static int check_event(struct tc_state *s, struct fake_req *r, struct json_object *ev,
		       struct tc_run **out, char *err, size_t errlen)
{
	static const struct jfield spec[] = {
		{ "type", JT_STR, 1 },       { "message", JT_STR, 0 },    { "detail", JT_STR, 0 },
		{ "trace", JT_ARR, 0 },      { "location", JT_OBJ, 0 },   { "vp", JT_OBJ, 0 },
		{ "attachment", JT_STR, 0 }, { "screenshot", JT_STR, 0 },
	};
	if (!json_object_is_type(ev, json_type_object))
		return snprintf(err, errlen, "an event must be an object"), -1;
	if (!(*out = open_run(s, ev, "events", err, errlen)))
		return -1;
	if (fake_check(ev, spec, N(spec), err, errlen) < 0)
		return -1;
	if (!fake_in(str_field(ev, "type"), event_types))
		return snprintf(err, errlen,
				"type must be one of PASS, XPASS, FAIL, XFAIL, "
				"WARNING, ERROR, FATAL, LOG, SKIPPED, ATTACHMENT"),
		       -1;
	struct json_object *trace = fake_get(ev, "trace");
	for (size_t i = 0; trace && i < json_object_array_length(trace); i++)
		if (!check_location(json_object_array_get_idx(trace, i)))
			return snprintf(err, errlen,
					"trace items need uri (string) and line "
					"(integer)"),
			       -1;
	if (fake_has(ev, "location") && !check_location(fake_get(ev, "location")))
		return snprintf(err, errlen, "location needs uri (string) and line (integer)"), -1;
	struct json_object *vp = fake_get(ev, "vp");
	if (vp && fake_has(ev, "attachment"))
		return snprintf(err, errlen, "vp and attachment are mutually exclusive"), -1;
	if (vp &&
	    (!str_field(vp, "uri") || (fake_has(vp, "attachment") && !str_field(vp, "attachment"))))
		return snprintf(err, errlen, "vp needs uri (string), attachment (string)"), -1;
	const char *files[3] = { str_field(ev, "attachment"), str_field(ev, "screenshot"),
				 str_field(vp, "attachment") };
	for (int i = 0; i < 3; i++)
		if (files[i] && !find_file(r, files[i]))
			return snprintf(err, errlen,
					"file \"%s\" was not uploaded with this "
					"event",
					files[i]),
			       -1;
	const struct fake_part *shot = files[1] ? find_file(r, files[1]) : NULL;
	if (shot && strncasecmp(shot->content_type, "image/", 6) != 0)
		return snprintf(err, errlen, "screenshot must be an image"), -1;
	return 0;
}

static void store_event(struct tc_state *s, struct tc_run *run, struct json_object *ev)
{
	struct json_object *copy = fake_copy(ev), *o = json_object_new_object();
	json_object_object_del(copy, "runId");
	json_object_array_add(run->events, copy);
	json_object_object_add(o, "op", json_object_new_string("event"));
	json_object_object_add(o, "runId", json_object_new_int(run->id));
	json_object_object_add(o, "type", fake_copy(fake_get(ev, "type")));
	json_object_object_add(o, "message", fake_copy(fake_get(ev, "message")));
	json_object_object_add(o, "detail", fake_copy(fake_get(ev, "detail")));
	json_object_array_add(s->reports[run->report - 1].log, o);
}

static int events_json(struct fake *f, struct fake_req *r)
{
	struct tc_run *run;
	char err[256];
	if (check_event(f->state, r, r->json, &run, err, sizeof(err)) < 0)
		return fake_error(r, 400, "%s", err);
	store_event(f->state, run, r->json);
	return fake_reply(r, 204, NULL);
}

static int events_multipart(struct fake *f, struct fake_req *r)
{
	const struct fake_part *data = NULL;
	for (size_t i = 0; i < r->nparts; i++) {
		const struct fake_part *p = &r->parts[i];
		if (strcmp(p->name, "eventData") == 0)
			data = p;
		else if (strcmp(p->name, "attachments[]") == 0 && !p->has_filename)
			return fake_error(r, 400, "attachments[] parts need a filename");
	}
	if (!data)
		return fake_error(r, 400, "eventData is required");
	int ok;
	struct json_object *evs = fake_parse_json(data->data, data->len, &ok);
	if (!ok || !json_object_is_type(evs, json_type_array)) {
		json_object_put(evs);
		return fake_error(r, 400, "eventData must be a JSON array of events");
	}
	struct json_object *out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(evs); i++) {
		struct json_object *ev = json_object_array_get_idx(evs, i);
		struct json_object *res = json_object_new_object();
		struct tc_run *run;
		char err[256];
		int bad = check_event(f->state, r, ev, &run, err, sizeof(err)) < 0;
		if (!bad)
			store_event(f->state, run, ev);
		json_object_object_add(res, "code", json_object_new_int(bad ? 400 : 201));
		json_object_object_add(res, "body", json_object_new_string(bad ? err : ""));
		json_object_array_add(out, res);
	}
	json_object_put(evs);
	return fake_reply(r, 207, out);
}

/* ---- POST /import ------------------------------------------------------ */

static int content_type_in(const char *ct, const char *const *list)
{
	for (; *list; list++) {
		size_t n = strlen(*list);
		if (strncasecmp(ct, *list, n) == 0 && (ct[n] == '\0' || ct[n] == ';'))
			return 1;
	}
	return 0;
}

/* The testcases of every suite in document order, each with its suite's
 * name; the suites keep only their counters. */
static struct json_object *flat_cases(struct json_object *suites)
{
	struct json_object *out = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(suites); i++) {
		struct json_object *su = json_object_array_get_idx(suites, i);
		struct json_object *cases = fake_get(su, "cases");
		for (size_t k = 0; cases && k < json_object_array_length(cases); k++) {
			struct json_object *c = fake_copy(json_object_array_get_idx(cases, k));
			json_object_object_add(c, "suite", fake_copy(fake_get(su, "name")));
			json_object_array_add(out, c);
		}
		json_object_object_del(su, "cases");
	}
	return out;
}

/* One result[] part: its record for the state, or NULL after replying. */
static struct json_object *import_file(struct fake_req *r, const struct fake_part *p)
{
	char err[256];
	if (!p->has_filename || !p->filename[0])
		return fake_error(r, 400,
				  "result[] parts need a filename in "
				  "Content-Disposition"),
		       NULL;
	int xml = content_type_in(p->content_type, xml_types);
	if (!xml && !content_type_in(p->content_type, other_types))
		return fake_error(r, 400, "result[] %s: unsupported content type \"%s\"",
				  p->filename, p->content_type),
		       NULL;
	struct json_object *suites = NULL;
	if (xml && fake_junit_check(p->data, p->len, &suites, err, sizeof(err)) < 0)
		return fake_error(r, 400, "result[] %s: %s", p->filename, err), NULL;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "filename", json_object_new_string(p->filename));
	json_object_object_add(o, "content_type", json_object_new_string(p->content_type));
	json_object_object_add(o, "bytes", json_object_new_int64((int64_t)p->len));
	json_object_object_add(o, "cases", suites ? flat_cases(suites) : json_object_new_array());
	json_object_object_add(o, "suites", suites);
	return o;
}

/* The parts an import may have: the documented fields, each once (but
 * label[] and result[]), files only as result[]; labels as Test Center
 * takes them.  0, or -1 after replying. */
static int check_parts(struct fake_req *r)
{
	static const char *const fields[] = { "project", "name",     "batch",
					      "label[]", "result[]", NULL };
	for (size_t i = 0; i < r->nparts; i++) {
		const struct fake_part *p = &r->parts[i];
		int repeatable = strcmp(p->name, "label[]") == 0 || strcmp(p->name, "result[]") == 0;
		if (!fake_in(p->name, fields))
			return fake_error(r, 400, "unknown field \"%s\"", p->name), -1;
		if (p->has_filename && strcmp(p->name, "result[]") != 0)
			return fake_error(r, 400, "%s is a field, not a file", p->name), -1;
		for (size_t k = 0; !repeatable && k < i; k++)
			if (strcmp(r->parts[k].name, p->name) == 0 ||
			    (strcmp(p->name, "name") == 0 && strcmp(r->parts[k].name, "project") == 0) ||
			    (strcmp(p->name, "project") == 0 && strcmp(r->parts[k].name, "name") == 0))
				return fake_error(r, 400, "%s given twice", p->name), -1;
		if (strcmp(p->name, "label[]") == 0 &&
		    (memchr(p->data, '\n', p->len) || memchr(p->data, ',', p->len) ||
		     memchr(p->data, '"', p->len)))
			return fake_error(r, 400,
					  "label[] must not hold newlines, commas or double quotes"),
			       -1;
	}
	return 0;
}

static int import(struct fake *f, struct fake_req *r)
{
	struct tc_state *s = f->state;
	char project[256] = "", batch[256] = "";
	if (!r->multipart_ok)
		return fake_error(r, 400, "expected a multipart/form-data body");
	struct json_object *labels = json_object_new_array();
	struct json_object *files = json_object_new_array();
	if (check_parts(r) < 0)
		goto fail;
	for (size_t i = 0; i < r->nparts; i++) {
		const struct fake_part *p = &r->parts[i];
		if (strcmp(p->name, "project") == 0 || strcmp(p->name, "name") == 0) {
			copy_str(project, sizeof(project), p->data, p->len);
		} else if (strcmp(p->name, "batch") == 0) {
			copy_str(batch, sizeof(batch), p->data, p->len);
		} else if (strcmp(p->name, "label[]") == 0) {
			const char *eq = memchr(p->data, '=', p->len);
			if (!eq || eq == p->data) {
				fake_error(r, 400, "label[] must be key=value");
				goto fail;
			}
			json_object_array_add(labels,
					      json_object_new_string_len(p->data, (int)p->len));
		} else if (strcmp(p->name, "result[]") == 0) {
			struct json_object *file = import_file(r, p);
			if (!file)
				goto fail;
			json_object_array_add(files, file);
		}
	}
	if (json_object_array_length(files) == 0) {
		fake_error(r, 400, "at least one result[] file is required");
		goto fail;
	}
	if (!project[0])
		snprintf(project, sizeof(project), "default");
	if (!batch[0])
		snprintf(batch, sizeof(batch), "batch-%d", ++s->next_batch);
	json_object_array_sort(labels, label_cmp);
	struct tc_report *rep = new_report(s, project, batch, fake_copy(labels));
	struct json_object *imp = json_object_new_object();
	json_object_object_add(imp, "reportId", json_object_new_int(rep ? rep->id : 0));
	json_object_object_add(imp, "project", json_object_new_string(project));
	json_object_object_add(imp, "batch", json_object_new_string(batch));
	json_object_object_add(imp, "labels", labels);
	json_object_object_add(imp, "files", files);
	json_object_object_add(imp, "path", json_object_new_string(r->path));
	json_object_array_add(s->imports, imp);
	return fake_reply(r, 200, json_object_new_object());
fail:
	json_object_put(labels);
	json_object_put(files);
	return 0;
}

/* ---- routing ----------------------------------------------------------- */

/* GET /api/v1/batches?project0=P: [{name}] of the batches of P's reports. */
static int list_batches(struct fake *f, struct fake_req *r)
{
	struct tc_state *s = f->state;
	char project[256];

	if (!auth_ok(f, r))
		return fake_error(r, 401, "Unauthorized");
	if (fake_query(r, "project0", project, sizeof(project)) <= 0)
		return fake_error(r, 400, "project0 is required");
	struct json_object *names = json_object_new_array();
	for (size_t i = 0; i < s->nreports; i++) {
		const char *b = s->reports[i].batch;
		int seen = 0;
		if (strcmp(s->reports[i].project, project) != 0)
			continue;
		for (size_t k = 0; k < json_object_array_length(names); k++)
			seen |= strcmp(json_object_get_string(json_object_array_get_idx(names, k)),
				       b) == 0;
		if (!seen)
			json_object_array_add(names, json_object_new_string(b));
	}
	struct json_object *list = json_object_new_array();
	for (size_t k = 0; k < json_object_array_length(names); k++) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "name", fake_copy(json_object_array_get_idx(names, k)));
		json_object_array_add(list, o);
	}
	json_object_put(names);
	return fake_reply(r, 200, list);
}

static int handle(struct fake *f, struct fake_req *r)
{
	char buf[512];
	char *seg[3];
	int n = fake_split(r->path, buf, sizeof(buf), seg, 3);
	int kind = -1, is_import = 0, is_events = 0;
	if (n == 3 && strcmp(seg[0], "api") == 0 && strcmp(seg[1], "v1") == 0 &&
	    strcmp(seg[2], "batches") == 0 && strcmp(r->method, "GET") == 0)
		return list_batches(f, r);
	if (n == 1 && strcmp(seg[0], "import") == 0)
		is_import = 1;
	if (n == 2 && strcmp(seg[0], "upload") == 0) {
		is_import = strcmp(seg[1], "import") == 0;
		is_events = strcmp(seg[1], "events") == 0;
		for (int k = 0; k < K_COUNT; k++)
			if (strcmp(seg[1], endpoints[k]) == 0)
				kind = k;
	}
	if ((!is_import && !is_events && kind < 0) || strcmp(r->method, "POST") != 0)
		return fake_error(r, 404, "Not found: %s %s", r->method, r->path);
	if (!auth_ok(f, r))
		return fake_error(r, 401, "Unauthorized");
	if (is_import)
		return import(f, r);
	if (is_events && r->multipart_ok)
		return events_multipart(f, r);
	if (!fake_is_json_type(r))
		return fake_error(r, 415, "Content-Type must be application/json%s",
				  is_events ? " or multipart/form-data" : "");
	if (!r->json_ok || !json_object_is_type(r->json, json_type_object))
		return fake_error(r, 400, "body must be a JSON object");
	if (is_events)
		return events_json(f, r);
	if (kind == K_SUITE)
		return add_suite(f, r);
	return add_element(f, r, (enum tc_kind)kind);
}

/* ---- lifecycle --------------------------------------------------------- */

static int init(struct fake *f)
{
	if (!f->opt.token && !f->opt.user) {
		fprintf(stderr, "fake_targets: testcenter needs --token or --user/--password\n");
		return -1;
	}
	struct tc_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->imports = json_object_new_array();
	if (f->opt.user) {
		char cred[512];
		snprintf(cred, sizeof(cred), "%s:%s", f->opt.user, f->opt.password);
		base64(cred, s->basic, sizeof(s->basic));
	}
	f->state = s;
	return 0;
}

static struct json_object *report_json(struct tc_state *s, const struct tc_report *rep)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int(rep->id));
	json_object_object_add(o, "project", json_object_new_string(rep->project));
	json_object_object_add(o, "batch", json_object_new_string(rep->batch));
	json_object_object_add(o, "labels", fake_copy(rep->labels));
	struct json_object *path = json_object_new_array();
	for (int i = 0; i < rep->depth; i++)
		json_object_array_add(path, json_object_new_int(rep->path[i]));
	json_object_object_add(o, "open_path", path);
	struct json_object *runs = json_object_new_array();
	for (size_t i = 0; i < s->nruns; i++) {
		const struct tc_run *run = &s->runs[i];
		if (run->report != rep->id)
			continue;
		struct json_object *ro = json_object_new_object();
		json_object_object_add(ro, "runId", json_object_new_int(run->id));
		json_object_object_add(ro, "kind", json_object_new_string(kind_names[run->kind]));
		json_object_object_add(ro, "parent",
				       run->parent ? json_object_new_int(run->parent) : NULL);
		json_object_object_add(ro, "test", fake_copy(run->test));
		json_object_object_add(ro, "closed", json_object_new_boolean(open_pos(s, run) < 0));
		json_object_object_add(ro, "events", fake_copy(run->events));
		json_object_array_add(runs, ro);
	}
	json_object_object_add(o, "runs", runs);
	json_object_object_add(o, "log", fake_copy(rep->log));
	json_object_object_add(o, "repeated", fake_copy(rep->repeated));
	return o;
}

static struct json_object *state(struct fake *f)
{
	struct tc_state *s = f->state;
	struct json_object *o = json_object_new_object();
	struct json_object *reps = json_object_new_array();
	for (size_t i = 0; i < s->nreports; i++)
		json_object_array_add(reps, report_json(s, &s->reports[i]));
	json_object_object_add(o, "reports", reps);
	json_object_object_add(o, "imports", fake_copy(s->imports));
	return o;
}

static void destroy(struct fake *f)
{
	struct tc_state *s = f->state;
	for (size_t i = 0; i < s->nruns; i++) {
		json_object_put(s->runs[i].test);
		json_object_put(s->runs[i].events);
	}
	for (size_t i = 0; i < s->nreports; i++) {
		json_object_put(s->reports[i].labels);
		json_object_put(s->reports[i].log);
		json_object_put(s->reports[i].repeated);
	}
	free(s->runs);
	free(s->reports);
	json_object_put(s->imports);
	free(s);
	f->state = NULL;
}

const struct fake_kind fake_testcenter = {
	.name = "testcenter",
	.error_has_code = 1,
	.init = init,
	.handle = handle,
	.state = state,
	.destroy = destroy,
};
