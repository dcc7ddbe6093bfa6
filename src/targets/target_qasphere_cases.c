/*
 * target_qasphere_cases: which QA Sphere test case a Qase case is, for the
 * qasphere kind (target_qasphere.c).
 *
 * A Qase case finds its QA Sphere case by case_map: "marker" (a
 * <project code>-<sequence> marker in the Qase case title, "BD-023 Login",
 * the convention qas-cli matches) or { custom_field: ID } (that Qase custom
 * field holds the QA Sphere sequence, "23" or "BD-023", or the case id).
 * A run created by an event that has results holds exactly the mapped cases
 * (queryPlans [{tcaseIds}], the ids looked up by sequence with POST
 * /project/{p}/tcase/seq, as qas-cli does); otherwise the configured
 * query_plan.  The run's own listing (GET .../run/{id}/tcase) gives each
 * case's tcaseId in the run, and says whether the case is in the run at all.
 */
#include "targets/target_qasphere.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/results.h"

#define SEQ_CHUNK 100 /* sequences looked up a request */

/* ---- case mapping -------------------------------------------------------- */

/* A Qase custom field id (a positive number, or its digits), else -1. */
long long qs_field_id(json_object *v)
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

/* The configured Qase custom field id, 0 for marker.  The check hook
 * admitted only those two forms. */
long long qs_case_field(const struct target_cfg *t)
{
	json_object *m, *f;

	if (json_object_object_get_ex(t->settings, "case_map", &m) &&
	    json_object_is_type(m, json_type_object) &&
	    json_object_object_get_ex(m, "custom_field", &f))
		return qs_field_id(f);
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
int qs_key_of(const struct qs *q, long long field, const struct result_row *r, struct qs_key *k,
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

static int by_seq(const void *a, const void *b)
{
	const struct tcase *x = a, *y = b;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static int by_id(const void *a, const void *b)
{
	return strcmp((*(struct tcase *const *)a)->id, (*(struct tcase *const *)b)->id);
}

void qs_tcases_free(struct tcases *t)
{
	free(t->v);
	free(t->by_id);
	memset(t, 0, sizeof(*t));
}

/* The tcaseId k points to in the run, or NULL. */
const char *qs_tcases_find(const struct tcases *t, const struct qs_key *k)
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
int qs_tcases_load(struct qs *q, struct tcases *t)
{
	json_object *answer, *list, *it, *v;
	size_t n;

	if (t->v)
		return 0;
	if (qs_run_get(q, "/tcase", &answer, "list run test cases", LIST_MAX) < 0)
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
		qs_tcases_free(t);
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

	if (qs_key_of(c->q, c->field, r, &k, &why) < 0)
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
	if (qs_request(q, "POST", tu_url(q->proj, "/tcase/seq"), body, &answer,
		       "look up test cases", LIST_MAX) < 0)
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
int qs_plan_of_results(struct qs *q, json_object **plan_out)
{
	struct collect c = { .q = q, .field = qs_case_field(q->a->target) };
	const char *type = target_str(q->a->target, "run_type");
	struct err err = { 0 };
	size_t n = 0, u = 0;
	int rc = -1;

	*plan_out = NULL;
	if (!qs_event_results(q) || !q->a->results || tu_streq(type, "live"))
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
