/*
 * target_util: pure helpers of the testomat and qasphere kinds (see the
 * header).  Bodies are json-c objects the caller serializes and frees.
 */
#include "targets/target_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- text ---------------------------------------------------------------- */

int tu_streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

char *tu_html_escape(const char *s)
{
	size_t n = 1;
	char *out, *p;

	if (!s)
		s = "";
	for (const char *c = s; *c; c++)
		n += strchr("&<>\"'", *c) ? 6 : 1;
	if (!(out = malloc(n)))
		return NULL;
	p = out;
	for (const char *c = s; *c; c++) {
		const char *e = NULL;
		switch (*c) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&#39;"; break;
		default: *p++ = *c; continue;
		}
		size_t el = strlen(e);
		memcpy(p, e, el);
		p += el;
	}
	*p = '\0';
	return out;
}

int tu_pct_encode(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		int keep = isalnum(*c) || *c == '-' || *c == '.' || *c == '_' || *c == '~';
		if (o + (keep ? 1 : 3) >= len)
			return -1;
		if (keep) {
			out[o++] = (char)*c;
		} else {
			out[o++] = '%';
			out[o++] = hex[*c >> 4];
			out[o++] = hex[*c & 15];
		}
	}
	if (o >= len)
		return -1;
	out[o] = '\0';
	return 0;
}

size_t tu_utf8_prefix(const char *s, size_t max_chars)
{
	size_t i = 0, chars = 0;

	while (s[i]) {
		/* a continuation byte belongs to the character before it */
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (chars == max_chars)
				break;
			chars++;
		}
		i++;
	}
	return i;
}

char *tu_cut(const char *s, size_t max_chars)
{
	if (!s)
		s = "";
	return strndup(s, tu_utf8_prefix(s, max_chars));
}

int tu_conflicting_run_id(const char *text, long long *out)
{
	static const char needle[] = "conflicting run id:";
	const size_t nl = sizeof(needle) - 1;
	const char *found = NULL;

	if (!text)
		return -1;
	for (const char *p = text; *p; p++)
		if (strncasecmp(p, needle, nl) == 0)
			found = p;
	if (!found)
		return -1;
	found += nl;
	while (*found == ' ')
		found++;
	if (!isdigit((unsigned char)*found))
		return -1;
	long long n = 0;
	for (; isdigit((unsigned char)*found); found++) {
		if (n > (9223372036854775807LL - 9) / 10)
			return -1;
		n = n * 10 + (*found - '0');
	}
	*out = n;
	return 0;
}

void tu_redact(char *s, const char *secret)
{
	size_t sl;
	char *p;

	if (!s || !secret || (sl = strlen(secret)) < 4)
		return;
	while ((p = strstr(s, secret))) {
		memcpy(p, "***", 3);
		memmove(p + 3, p + sl, strlen(p + sl) + 1);
	}
}

char *tu_run_title(const char *rendered, const char *project, long long run_id)
{
	char prefix[160];
	const char *b = rendered ? rendered : "";
	size_t n;

	while (isspace((unsigned char)*b))
		b++;
	n = strlen(b);
	while (n && isspace((unsigned char)b[n - 1]))
		n--;
	snprintf(prefix, sizeof(prefix), "[Qase %s#%lld]", project ? project : "", run_id);
	if (n && !(n == strlen(prefix) && strncmp(b, prefix, n) == 0))
		return strndup(b, n);
	snprintf(prefix, sizeof(prefix), "Qase %s#%lld", project ? project : "", run_id);
	return strdup(prefix);
}

void tu_appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strnlen(buf, len);
	va_list ap;

	if (n + 1 >= len)
		return;
	if (n && n + 3 < len) {
		memcpy(buf + n, "; ", 3);
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

char *tu_url(const char *base_url, const char *path)
{
	size_t n = strlen(base_url), pl = strlen(path);
	char *u;

	while (n && base_url[n - 1] == '/')
		n--;
	if (!(u = malloc(n + pl + 1)))
		return NULL;
	memcpy(u, base_url, n);
	memcpy(u + n, path, pl + 1);
	return u;
}

/* ---- counts -------------------------------------------------------------- */

static long long int_at(json_object *o, const char *a, const char *b)
{
	json_object *v;

	if (!json_object_object_get_ex(o, a, &v))
		return -1;
	if (b && !json_object_object_get_ex(v, b, &v))
		return -1;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	long long n = json_object_get_int64(v);
	return n < 0 ? -1 : n;
}

void tu_counts_of(json_object *event, struct tu_counts *c)
{
	json_object *run = NULL;

	json_object_object_get_ex(event, "run", &run);
	c->total = int_at(run, "counts", "total");
	if (c->total < 0)
		c->total = int_at(run, "cases_count", NULL);
	c->passed = int_at(run, "counts", "passed");
	c->failed = int_at(run, "counts", "failed");
	c->blocked = int_at(run, "counts", "blocked");
	c->skipped = int_at(run, "counts", "skipped");
	c->untested = int_at(run, "counts", "untested");
	c->duration_ms = int_at(run, "duration_ms", NULL);
}

/* a + b where -1 is absent: absent only when both are. */
static long long add_known(long long a, long long b)
{
	if (a < 0 && b < 0)
		return -1;
	return (a > 0 ? a : 0) + (b > 0 ? b : 0);
}

void tu_testomat_finish(const struct tu_counts *c, int aborted, const char *aborted_status,
			struct tu_finish *f)
{
	long long bad = add_known(c->failed, c->blocked);

	f->tests = c->total;
	f->passed = c->passed;
	f->failed = bad;
	if (aborted) {
		f->status_event = aborted_status && *aborted_status ? aborted_status : "fail";
		f->skipped = add_known(c->skipped, c->untested);
		return;
	}
	f->status_event = bad > 0 ? "fail" : "finish";
	f->skipped = -1;
	if (c->total >= 0) {
		long long rest = c->total - (c->passed > 0 ? c->passed : 0) - (bad > 0 ? bad : 0);
		f->skipped = rest > 0 ? rest : 0;
	}
}

/* ---- bodies -------------------------------------------------------------- */

json_object *tu_seconds(long long ms)
{
	char buf[48];
	size_t n;

	snprintf(buf, sizeof(buf), "%lld.%03lld", ms / 1000, ms % 1000);
	n = strlen(buf);
	while (buf[n - 1] == '0')
		buf[--n] = '\0';
	if (buf[n - 1] == '.')
		buf[--n] = '\0';
	return json_object_new_double_s((double)ms / 1000.0, buf);
}

static void add_str(json_object *o, const char *key, const char *v)
{
	if (v && *v)
		json_object_object_add(o, key, json_object_new_string(v));
}

static void add_count(json_object *o, const char *key, long long v)
{
	if (v >= 0)
		json_object_object_add(o, key, json_object_new_int64(v));
}

json_object *tu_testomat_create_body(const struct tu_testomat_run *r)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	add_str(o, "title", r->title);
	add_str(o, "env", r->env);
	add_str(o, "group_title", r->group_title);
	add_str(o, "description", r->description);
	add_str(o, "kind", r->kind);
	add_str(o, "label", r->label);
	json_object_object_add(o, "shared_run", json_object_new_boolean(1));
	return o;
}

json_object *tu_testomat_finish_body(const struct tu_finish *f, long long duration_ms,
				     const char *description)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "status_event", json_object_new_string(f->status_event));
	if (duration_ms >= 0)
		json_object_object_add(o, "duration", tu_seconds(duration_ms));
	add_count(o, "tests_count", f->tests);
	add_count(o, "passed_count", f->passed);
	add_count(o, "failed_count", f->failed);
	add_count(o, "skipped_count", f->skipped);
	add_str(o, "description", description);
	return o;
}

const char *tu_testomat_status(const char *s, int *blocked)
{
	*blocked = 0;
	if (!s)
		return NULL;
	if (strcasecmp(s, "passed") == 0)
		return "passed";
	if (strcasecmp(s, "failed") == 0 || strcasecmp(s, "invalid") == 0)
		return "failed";
	if (strcasecmp(s, "skipped") == 0)
		return "skipped";
	if (strcasecmp(s, "blocked") == 0) {
		*blocked = 1;
		return "failed";
	}
	return NULL; /* untested, in_progress, custom: nothing to report */
}

static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;
	json_object_object_get_ex(o, key, &v);
	return v;
}

static const char *str_member(json_object *o, const char *key)
{
	json_object *v = member(o, key);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static long long int_member(json_object *o, const char *key)
{
	json_object *v = member(o, key);
	if (!json_object_is_type(v, json_type_int))
		return -1;
	long long n = json_object_get_int64(v);
	return n < 0 ? -1 : n;
}

/* time_ms, time_spent_ms, else time in seconds (as the Qase API has it). */
static long long result_ms(json_object *r)
{
	long long ms = int_member(r, "time_ms");
	json_object *t;

	if (ms < 0)
		ms = int_member(r, "time_spent_ms");
	if (ms >= 0)
		return ms;
	t = member(r, "time");
	if (json_object_is_type(t, json_type_int) && json_object_get_int64(t) >= 0 &&
	    json_object_get_int64(t) < 9000000000000LL)
		return json_object_get_int64(t) * 1000;
	if (json_object_is_type(t, json_type_double) && json_object_get_double(t) >= 0 &&
	    json_object_get_double(t) < 9.0e12)
		return (long long)(json_object_get_double(t) * 1000.0 + 0.5);
	return -1;
}

static void add_message(json_object *t, int blocked, const char *comment, const char *stack)
{
	if (blocked) {
		char *m = NULL;
		if (comment && *comment && asprintf(&m, "blocked: %s", comment) >= 0) {
			json_object_object_add(t, "message", json_object_new_string(m));
			free(m);
		} else {
			json_object_object_add(t, "message", json_object_new_string("blocked"));
		}
	} else {
		add_str(t, "message", comment);
	}
	add_str(t, "stack", stack);
}

int tu_testomat_test(json_object *r, const char *project, long long run_id, json_object **out)
{
	char rid[200], fallback[200];
	long long case_id = int_member(r, "case_id");
	json_object *cs = member(r, "case"), *t;
	const char *status, *title;
	int blocked;

	*out = NULL;
	if (case_id < 0)
		case_id = int_member(cs, "id");
	status = tu_testomat_status(str_member(r, "status"), &blocked);
	if (case_id < 0 || !status)
		return 1;
	snprintf(rid, sizeof(rid), "qase-%s-%lld-%lld", project, run_id, case_id);
	snprintf(fallback, sizeof(fallback), "%s-%lld", project, case_id);
	title = str_member(cs, "title");
	if (!title || !*title)
		title = str_member(r, "case_title");
	if (!title || !*title)
		title = str_member(r, "title");
	if (!title || !*title)
		title = fallback;
	if (!(t = json_object_new_object()))
		return -1;
	json_object_object_add(t, "rid", json_object_new_string(rid));
	json_object_object_add(t, "title", json_object_new_string(title));
	json_object_object_add(t, "status", json_object_new_string(status));
	long long ms = result_ms(r);
	if (ms >= 0)
		json_object_object_add(t, "run_time", json_object_new_int64(ms));
	add_message(t, blocked, str_member(r, "comment"), str_member(r, "stacktrace"));
	json_object_object_add(t, "create", json_object_new_boolean(1));
	*out = t;
	return 0;
}

json_object *tu_testomat_batch_body(json_object *tests, size_t from, size_t n, int batch_index)
{
	json_object *o = json_object_new_object(), *arr = json_object_new_array();
	size_t len = json_object_array_length(tests);

	if (!o || !arr) {
		json_object_put(o);
		json_object_put(arr);
		return NULL;
	}
	for (size_t i = from; i < from + n && i < len; i++)
		json_object_array_add(arr, json_object_get(json_object_array_get_idx(tests, i)));
	json_object_object_add(o, "tests", arr);
	json_object_object_add(o, "batch_index", json_object_new_int(batch_index));
	return o;
}

json_object *tu_qasphere_create_body(const struct tu_qasphere_run *r)
{
	json_object *o = json_object_new_object(), *plans, *plan = NULL;
	char *title = tu_cut(r->title, 255), *desc = tu_cut(r->description, 512);

	if (!o || !title || !desc)
		goto oom;
	add_str(o, "title", title);
	add_str(o, "description", desc);
	json_object_object_add(o, "type", json_object_new_string(r->type));
	if (r->milestone_id > 0)
		json_object_object_add(o, "milestoneId", json_object_new_int64(r->milestone_id));
	if (!(plans = json_object_new_array()))
		goto oom;
	json_object_object_add(o, "queryPlans", plans);
	if (r->query_plan && json_object_deep_copy(r->query_plan, &plan, NULL) != 0)
		goto oom;
	json_object_array_add(plans, plan ? plan : json_object_new_object());
	free(title);
	free(desc);
	return o;
oom:
	json_object_put(o);
	free(title);
	free(desc);
	return NULL;
}

/* "10 passed, 3 failed, 1 blocked of 14 cases; duration 31.2 s" */
static void counts_text(char *buf, size_t len, const struct tu_counts *c, int with_rest)
{
	const struct {
		const char *name;
		long long v;
	} parts[] = {
		{ "passed", c->passed },
		{ "failed", c->failed },
		{ "blocked", c->blocked },
		{ "skipped", with_rest ? c->skipped : -1 },
		{ "untested", with_rest ? c->untested : -1 },
	};
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (parts[i].v < 0)
			continue;
		o += snprintf(buf + o, len - o, "%s%lld %s", o ? ", " : "", parts[i].v,
			      parts[i].name);
		if (o >= len)
			return;
	}
	if (c->total >= 0 && o < len)
		o += snprintf(buf + o, len - o, "%s%lld cases", o ? " of " : "", c->total);
	if (!o)
		o += snprintf(buf, len, "no counts");
	if (c->duration_ms >= 0 && o < len)
		snprintf(buf + o, len - o, "; duration %lld.%lld s", c->duration_ms / 1000,
			 c->duration_ms % 1000 / 100);
}

char *tu_qasphere_comment(const char *type, const struct tu_counts *c, long long cases_added,
			  long long cases_count, const char *project, long long run_id,
			  const char *qase_title)
{
	char counts[400], *head = NULL, *out = NULL;
	char *code = tu_html_escape(project), *title = tu_html_escape(qase_title);
	int rc = -1;

	if (!code || !title)
		goto done;
	if (strcmp(type, "run.updated") == 0) {
		if (cases_added >= 0)
			rc = asprintf(&out, "<p>%lld cases added in Qase</p>", cases_added);
		else if (cases_count >= 0)
			rc = asprintf(&out, "<p>Cases changed in Qase: the run has %lld cases</p>",
				      cases_count);
		else
			rc = asprintf(&out, "<p>Run updated in Qase</p>");
		goto done;
	}
	if (strcmp(type, "run.completed") == 0) {
		counts_text(counts, sizeof(counts), c, 0);
		rc = asprintf(&head, "<p>Completed in Qase: %s</p>", counts);
	} else if (strcmp(type, "run.aborted") == 0) {
		counts_text(counts, sizeof(counts), c, 1);
		rc = asprintf(&head, "<p>Aborted in Qase: %s</p>", counts);
	} else {
		rc = asprintf(&head, "<p>Run deleted in Qase</p>");
	}
	if (rc < 0)
		goto done;
	rc = asprintf(&out, "%s<p>Qase run %s#%lld%s%s</p>", head, code, run_id, *title ? ": " : "",
		      title);
done:
	free(head);
	free(code);
	free(title);
	return rc < 0 ? NULL : out;
}

/* ---- rate limit ---------------------------------------------------------- */

long long tu_bucket_take(struct tu_bucket *b, long long now_ns, double rate, double burst)
{
	if (rate <= 0)
		return 0;
	if (burst < 1)
		burst = 1;
	if (!b->primed) {
		b->primed = 1;
		b->tokens = burst;
		b->last_ns = now_ns;
	}
	if (now_ns > b->last_ns) {
		b->tokens += (double)(now_ns - b->last_ns) * rate / 1e9;
		if (b->tokens > burst)
			b->tokens = burst;
		b->last_ns = now_ns;
	}
	b->tokens -= 1.0;
	if (b->tokens >= 0)
		return 0;
	return (long long)(-b->tokens / rate * 1e9 + 0.5);
}
