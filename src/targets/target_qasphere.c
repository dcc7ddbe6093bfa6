/*
 * target_qasphere: mirrors a Qase run into a QA Sphere run through the
 * public API ({base_url}/api/public/v0/project/{project}/run...), with the
 * run's per-case results when the results stage fetched them.
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
 * Results.  A Qase case finds its QA Sphere case by case_map: "marker" (a
 * <project code>-<sequence> marker in the Qase case title, "BD-023 Login",
 * the convention qas-cli matches) or { custom_field: ID } (that Qase custom
 * field holds the QA Sphere sequence, "23" or "BD-023", or the case id).
 * A run created by an event that has results holds exactly the mapped cases
 * (queryPlans [{tcaseIds}], the ids looked up by sequence with POST
 * /project/{p}/tcase/seq, as qas-cli does); otherwise the configured
 * query_plan.  Before the close, the results go to POST .../result/batch in
 * case id order, at most 500 a request, each case mapped to the tcaseId of
 * the run's own listing (GET .../run/{id}/tcase), which also says whether
 * the case is in the run at all.
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
 *
 * Requests are rate limited per target (rate_limit_per_s, shared by every
 * thread): a request waits for a token rather than draw a 429.  Requests
 * are paced evenly (a bucket of one token) a little under the limit, so no
 * sliding one-second window holds more than the limit even with some
 * network jitter; a burst allowance would let a window hold twice as many.
 */
#include "targets/target.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/cfgtree.h"
#include "core/metrics.h"
#include "store/results.h"
#include "targets/target_util.h"

#define BATCH_MAX       500         /* results a request (what qas-cli sends) */
#define BATCH_BYTES     (4u << 20)  /* and about this many bytes */
#define SEQ_CHUNK       100         /* sequences looked up a request */
#define LIST_MAX        (32u << 20) /* the run's tcase listing, bytes */
#define MSG_MAX         4000        /* characters of a message in a comment */
#define STACK_MAX       16000       /* and of a stack trace */
#define UNMAPPED_LISTED 100         /* cases named in the unmapped log entry */
#define ID_MAX          80

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

static long long data_int(struct qs *q, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(q->a->map.data, name, &v) ? json_object_get_int64(v) : 0;
}

static void set_int(struct qs *q, const char *name, long long v)
{
	json_object_object_add(q->a->map.data, name, json_object_new_int64(v));
}

/*
 * method url with body (consumed; NULL sends none: an empty POST body, as
 * close wants, or a GET).  On a 2xx, *answer (when asked) is the parsed
 * answer; one that is not JSON, or longer than body_max (0: 64 KiB), fails
 * the attempt.  Otherwise the outcome is set.
 */
static int request(struct qs *q, const char *method, char *url, json_object *body,
		   json_object **answer, const char *what, size_t body_max)
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
static int call(struct qs *q, const char *suffix, json_object *body, json_object **answer,
		const char *what)
{
	return request(q, "POST", tu_url(q->base, suffix), body, answer, what, 0);
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

/* GET base/<run id>/rest, answer parsed. */
static int run_get(struct qs *q, const char *rest, json_object **answer, const char *what,
		   size_t body_max)
{
	char path[300];

	if (run_path(q, rest, path, sizeof(path)) < 0)
		return -1;
	return request(q, "GET", tu_url(q->base, path), NULL, answer, what, body_max);
}

static int log_html(struct qs *q, const char *html, const char *what)
{
	char path[128];
	json_object *body;

	if (run_path(q, "/log", path, sizeof(path)) < 0)
		return -1;
	if (!(body = json_object_new_object()))
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	json_object_object_add(body, "comment", json_object_new_string(html));
	return call(q, path, body, NULL, what);
}

/* The event's "results" object, or NULL (none fetched: today's behaviour). */
static json_object *event_results(struct qs *q)
{
	json_object *v;

	if (json_object_object_get_ex(q->a->event, "results", &v) &&
	    json_object_is_type(v, json_type_object))
		return v;
	return NULL;
}
/* ---- case mapping -------------------------------------------------------- */

/* Where a Qase case points in QA Sphere: a sequence (> 0) or a case id. */
struct qs_key {
	long long seq;
	char id[ID_MAX];
};

/* The configured Qase custom field id, 0 for marker.  The check hook
 * admitted only those two forms. */
static long long field_id(json_object *v)
{
	const char *s;
	char *end;
	long long n;

	if (json_object_is_type(v, json_type_int))
		return json_object_get_int64(v) > 0 ? json_object_get_int64(v) : -1;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	errno = 0;
	n = strtoll(s, &end, 10);
	return !errno && *s && !*end && n > 0 ? n : -1;
}

static long long case_field(const struct target_cfg *t)
{
	json_object *m, *f;

	if (json_object_object_get_ex(t->settings, "case_map", &m) &&
	    json_object_is_type(m, json_type_object) &&
	    json_object_object_get_ex(m, "custom_field", &f))
		return field_id(f);
	return 0;
}

/*
 * The sequence of the first "<code>-<3 or more digits>" marker in text (the
 * code in any case, not inside a longer word): one at the start wins, then
 * one at the end, then the first (qas-cli's order).  -1 when none.
 */
static long long marker_seq(const char *text, const char *code)
{
	size_t cl = code ? strlen(code) : 0;
	long long first = -1, last_end = -1;

	if (!text || !cl)
		return -1;
	for (const char *p = text; *p; p++) {
		const char *d;
		long long v = 0;
		size_t n = 0;

		if (strncasecmp(p, code, cl) != 0 || p[cl] != '-')
			continue;
		d = p + cl + 1;
		if (p > text && isalnum((unsigned char)p[-1]))
			continue;
		for (; isdigit((unsigned char)d[n]) && n < 18; n++)
			v = v * 10 + (d[n] - '0');
		if (n < 3 || v <= 0 || isalnum((unsigned char)d[n]))
			continue;
		if (p == text)
			return v;
		if (!d[n])
			last_end = v;
		else if (first < 0)
			first = v;
	}
	return last_end >= 0 ? last_end : first;
}

/* A custom field's value: "23", 23 and "BD-023" are sequences; any other
 * word is a QA Sphere case id. */
static int key_of_value(json_object *v, const char *code, struct qs_key *k)
{
	const char *s, *e;
	size_t n, cl = strlen(code);

	if (json_object_is_type(v, json_type_int)) {
		k->seq = json_object_get_int64(v);
		return k->seq > 0 ? 0 : -1;
	}
	if (!json_object_is_type(v, json_type_string))
		return -1;
	for (s = json_object_get_string(v); isspace((unsigned char)*s); s++)
		;
	for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
		;
	n = (size_t)(e - s);
	if (!n || n >= sizeof(k->id))
		return -1;
	memcpy(k->id, s, n);
	k->id[n] = '\0';
	if (strspn(k->id, "0123456789") == n) {
		k->seq = n < 19 ? strtoll(k->id, NULL, 10) : 0;
		k->id[0] = '\0';
		return k->seq > 0 ? 0 : -1;
	}
	if (n > cl + 1 && n - cl - 1 < 19 && strncasecmp(k->id, code, cl) == 0 &&
	    k->id[cl] == '-' && strspn(k->id + cl + 1, "0123456789") == n - cl - 1) {
		k->seq = strtoll(k->id + cl + 1, NULL, 10);
		k->id[0] = '\0';
		return k->seq > 0 ? 0 : -1;
	}
	k->seq = 0;
	return strspn(k->id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n
		       ? 0
		       : -1;
}

/* Where r points; -1 with *why when it points nowhere. */
static int key_of(const struct qs *q, long long field, const struct result_row *r, struct qs_key *k,
		  const char **why)
{
	json_object *fields, *v;
	char name[32];
	int rc = -1;

	memset(k, 0, sizeof(*k));
	if (!field) {
		k->seq = marker_seq(r->title, q->code);
		*why = "no marker in its title";
		return k->seq > 0 ? 0 : -1;
	}
	*why = "its custom field is empty";
	snprintf(name, sizeof(name), "%lld", field);
	fields = r->case_fields ? json_tokener_parse(r->case_fields) : NULL;
	if (json_object_object_get_ex(fields, name, &v) && !json_object_is_type(v, json_type_null)) {
		rc = key_of_value(v, q->code, k);
		*why = "its custom field holds no QA Sphere case";
	}
	json_object_put(fields);
	return rc;
}

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

static int by_seq(const void *a, const void *b)
{
	const struct tcase *x = a, *y = b;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static int by_id(const void *a, const void *b)
{
	return strcmp((*(struct tcase *const *)a)->id, (*(struct tcase *const *)b)->id);
}

static void tcases_free(struct tcases *t)
{
	free(t->v);
	free(t->by_id);
	memset(t, 0, sizeof(*t));
}

/* The tcaseId k points to in the run, or NULL. */
static const char *tcases_find(const struct tcases *t, const struct qs_key *k)
{
	struct tcase want = { .seq = k->seq }, *pw = &want, **hit;
	const struct tcase *s;

	if (k->seq > 0) {
		s = bsearch(&want, t->v, t->n, sizeof(*t->v), by_seq);
		return s ? s->id : NULL;
	}
	snprintf(want.id, sizeof(want.id), "%s", k->id);
	hit = bsearch(&pw, t->by_id, t->n, sizeof(*t->by_id), by_id);
	return hit ? (*hit)->id : NULL;
}

/* GET .../run/{id}/tcase into t. */
static int tcases_load(struct qs *q, struct tcases *t)
{
	json_object *answer, *list, *it, *v;
	size_t n;

	if (t->v)
		return 0;
	if (run_get(q, "/tcase", &answer, "list run test cases", LIST_MAX) < 0)
		return -1;
	if (!json_object_object_get_ex(answer, "tcases", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		json_object_put(answer);
		return outcome_fail(q->out, WORK_FAIL,
				    "list run test cases: no tcases in the answer");
	}
	n = json_object_array_length(list);
	t->v = calloc(n ? n : 1, sizeof(*t->v));
	t->by_id = calloc(n ? n : 1, sizeof(*t->by_id));
	if (!t->v || !t->by_id) {
		json_object_put(answer);
		tcases_free(t);
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		it = json_object_array_get_idx(list, i);
		if (!json_object_object_get_ex(it, "id", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    json_object_get_string_len(v) >= ID_MAX)
			continue;
		snprintf(t->v[t->n].id, ID_MAX, "%s", json_object_get_string(v));
		t->v[t->n].seq = json_object_object_get_ex(it, "seq", &v) ? json_object_get_int64(v)
									  : 0;
		t->n++;
	}
	json_object_put(answer);
	qsort(t->v, t->n, sizeof(*t->v), by_seq);
	for (size_t i = 0; i < t->n; i++)
		t->by_id[i] = &t->v[i];
	qsort(t->by_id, t->n, sizeof(*t->by_id), by_id);
	return 0;
}
/* ---- the cases of a run created with results ----------------------------- */

struct collect {
	struct qs *q;
	long long field;
	long long *seqs;
	size_t n_seqs, cap;
	json_object *ids; /* tcaseIds: from custom fields, then looked up */
	int oom;
};

static int collect_one(void *ctx, const struct result_row *r)
{
	struct collect *c = ctx;
	struct qs_key k;
	const char *why;

	if (key_of(c->q, c->field, r, &k, &why) < 0)
		return 0;
	if (!k.seq) {
		json_object_array_add(c->ids, json_object_new_string(k.id));
		return 0;
	}
	if (c->n_seqs == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 256;
		long long *grown = realloc(c->seqs, cap * sizeof(*grown));
		if (!grown) {
			c->oom = 1;
			return -1;
		}
		c->seqs = grown;
		c->cap = cap;
	}
	c->seqs[c->n_seqs++] = k.seq;
	return 0;
}

/* POST /project/{p}/tcase/seq {seqIds: ["BD-023", ...]}: each sequence's
 * case id (qas-cli's lookup; a sequence with no case is not answered). */
static int lookup_seqs(struct qs *q, struct collect *c, size_t from, size_t n)
{
	json_object *body = json_object_new_object(), *seqs = json_object_new_array(), *answer;
	json_object *data, *v;
	char m[64];

	if (!body || !seqs) {
		json_object_put(body);
		json_object_put(seqs);
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	}
	for (size_t i = from; i < from + n; i++) {
		snprintf(m, sizeof(m), "%.40s-%03lld", q->code, c->seqs[i]);
		json_object_array_add(seqs, json_object_new_string(m));
	}
	json_object_object_add(body, "seqIds", seqs);
	json_object_object_add(body, "page", json_object_new_int(1));
	json_object_object_add(body, "limit", json_object_new_int(SEQ_CHUNK));
	if (request(q, "POST", tu_url(q->proj, "/tcase/seq"), body, &answer, "look up test cases",
		    LIST_MAX) < 0)
		return -1;
	json_object_object_get_ex(answer, "data", &data);
	for (size_t i = 0;
	     json_object_is_type(data, json_type_array) && i < json_object_array_length(data); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(data, i), "id", &v) &&
		    json_object_is_type(v, json_type_string))
			json_object_array_add(c->ids, json_object_get(v));
	json_object_put(answer);
	return 0;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

static int cmp_jstr(const void *a, const void *b)
{
	return strcmp(json_object_get_string(*(json_object *const *)a),
		      json_object_get_string(*(json_object *const *)b));
}

/* The ids, sorted, each once (QA Sphere takes a case once in a run). */
static json_object *unique_ids(json_object *ids)
{
	json_object *out = json_object_new_array();
	const char *prev = NULL;

	json_object_array_sort(ids, cmp_jstr);
	for (size_t i = 0; out && i < json_object_array_length(ids); i++) {
		json_object *v = json_object_array_get_idx(ids, i);
		if (prev && strcmp(prev, json_object_get_string(v)) == 0)
			continue;
		prev = json_object_get_string(v);
		json_object_array_add(out, json_object_get(v));
	}
	return out;
}

/*
 * *plan_out: {"tcaseIds": [...]} from the event's results, or NULL when
 * there are none, the run is live (it cannot select cases) or nothing
 * maps: then the configured query_plan is used.
 */
static int plan_of_results(struct qs *q, json_object **plan_out)
{
	struct collect c = { .q = q, .field = case_field(q->a->target) };
	const char *type = target_str(q->a->target, "run_type");
	struct err err = { 0 };
	size_t n = 0, u = 0;
	int rc = -1;

	*plan_out = NULL;
	if (!event_results(q) || !q->a->results || tu_streq(type, "live"))
		return 0;
	if (!(c.ids = json_object_new_array()))
		return outcome_fail(q->out, WORK_FAIL, "out of memory");
	if (q->a->results(q->a, 0, 0, collect_one, &c, &n, &err) < 0) {
		outcome_set(q->out, WORK_FAIL, "read results: %s", err.msg);
		goto done;
	}
	if (c.oom) {
		outcome_fail(q->out, WORK_FAIL, "out of memory");
		goto done;
	}
	if (c.n_seqs)
		qsort(c.seqs, c.n_seqs, sizeof(*c.seqs), cmp_ll);
	for (size_t i = 0; i < c.n_seqs; i++)
		if (!u || c.seqs[u - 1] != c.seqs[i])
			c.seqs[u++] = c.seqs[i];
	for (size_t i = 0; i < u; i += SEQ_CHUNK)
		if (lookup_seqs(q, &c, i, u - i < SEQ_CHUNK ? u - i : SEQ_CHUNK) < 0)
			goto done;
	if (json_object_array_length(c.ids) > 0) {
		*plan_out = json_object_new_object();
		json_object_object_add(*plan_out, "tcaseIds", unique_ids(c.ids));
	}
	rc = 0;
done:
	json_object_put(c.ids);
	free(c.seqs);
	return rc;
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

	if (plan_of_results(q, &mapped) < 0)
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
	if (call(q, "", v, &answer, "create run") < 0) {
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
	rc = log_html(q, html, what);
	free(html);
	return rc;
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

	if (status && key_of(b->q, b->field, r, &k, &why) == 0)
		id = tcases_find(b->tc, &k);
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
	if (run_get(q, rest, &answer, "check the last batch", LIST_MAX) < 0)
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

	if (run_path(q, "/result/batch", path, sizeof(path)) < 0) {
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
	if (call(q, path, body, NULL, "send results") < 0)
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

	if (flag(q, "results_done"))
		return 0;
	if (reconcile(q) < 0 || tcases_load(q, tc) < 0)
		return -1;
	for (;;) {
		struct batch b = {
			.q = q,
			.tc = tc,
			.field = case_field(q->a->target),
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
	return set_flag(q, "results_done");
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
	if (key_of(u->q, u->field, r, &k, &why) == 0) {
		if (tcases_find(u->tc, &k))
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
	struct unmapped u = { .q = q, .tc = tc, .field = case_field(q->a->target) };
	struct err err = { 0 };
	char *html = NULL;
	size_t n;
	int rc = -1;

	if (flag(q, "unmapped_logged"))
		return 0;
	if (tcases_load(q, tc) < 0)
		return -1;
	buf_init(&u.html, 1u << 20);
	if (q->a->results(q->a, 0, 0, unmapped_one, &u, &n, &err) < 0) {
		outcome_set(q->out, WORK_FAIL, "read results: %s", err.msg);
		goto done;
	}
	if (!u.n) {
		rc = set_flag(q, "unmapped_logged");
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
	if (log_html(q, html, "log unmapped cases") < 0)
		goto done;
	set_int(q, "unmapped", (long long)u.n);
	if ((rc = set_flag(q, "unmapped_logged")) == 0)
		metrics_qasphere_unmapped(q->a->target->name, u.n);
done:
	free(html);
	buf_free(&u.html);
	return rc;
}

/* Results, then the unmapped log, before the summary and the close. */
static int mirror_results(struct qs *q)
{
	struct tcases tc = { 0 };
	int rc;

	if (!event_results(q) || !q->a->results)
		return 0;
	rc = send_results(q, &tc) < 0 || log_unmapped(q, &tc) < 0 ? -1 : 0;
	tcases_free(&tc);
	if (rc == 0)
		note(q, "%lld results sent in %lld batches, %lld unmapped",
		     data_int(q, "results_sent"), data_int(q, "results_batches"),
		     data_int(q, "unmapped"));
	return rc;
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
	if (mirror_results(q) < 0)
		return -1;
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
	    json_object_object_get_ex(m, "custom_field", &f) && field_id(f) > 0)
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
