/*
 * target_util: the pure parts of the testomat and qasphere kinds, kept apart
 * so that they can be tested without a server: text helpers (HTML escaping,
 * percent-encoding, cutting UTF-8, reading "conflicting run id: N"), the
 * arithmetic of counts and durations, the JSON bodies, and a token bucket.
 *
 * Nothing here does I/O or reads the configuration; callers pass values in.
 * Counts use -1 for "Qase did not send it": those are omitted from bodies,
 * never invented.
 */
#ifndef RB_ACTIONS_TARGET_UTIL_H
#define RB_ACTIONS_TARGET_UTIL_H

#include <stddef.h>

#include <json-c/json.h>

/* ---- text ---------------------------------------------------------------- */

/* s with & < > " ' as entities; NULL s gives "".  Malloc'd, NULL on OOM. */
/* strcmp that takes NULL: 1 when both are strings and equal (NULL equals
 * nothing, not even NULL). */
int tu_streq(const char *a, const char *b);

char *tu_html_escape(const char *s);

/* RFC 3986 percent-encoding of one path segment or query value (everything
 * but ALPHA DIGIT - . _ ~).  Returns 0, or -1 when out (len bytes) is too
 * small. */
int tu_pct_encode(const char *s, char *out, size_t len);

/* Bytes taken by the first max_chars UTF-8 characters of s (never splits a
 * character). */
size_t tu_utf8_prefix(const char *s, size_t max_chars);

/* A malloc'd copy of s cut to max_chars characters (NULL s gives ""). */
char *tu_cut(const char *s, size_t max_chars);

/* QA Sphere's answer to a duplicate run title ends with "conflicting run
 * id: N" (qas-cli matches the same).  Looks for the last occurrence, in any
 * case, anywhere in text.  Returns 0 and *out = N, or -1. */
int tu_conflicting_run_id(const char *text, long long *out);

/* Replaces every occurrence of secret (when at least 4 bytes) in s by "***",
 * in place: error bodies that echo a key never reach a log. */
void tu_redact(char *s, const char *secret);

/*
 * The run's title on a target: the rendered title, trimmed, or the
 * synthetic "Qase <CODE>#<id>" when it is empty or only the default prefix
 * "[Qase <CODE>#<id>]" (the run was never seen started, so its Qase title is
 * unknown).  Malloc'd.
 */
char *tu_run_title(const char *rendered, const char *project, long long run_id);

/* Appends "; " (unless buf is empty) and the formatted text, cut to fit. */
void tu_appendf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Joins base_url (trailing slashes dropped) and path; malloc'd. */
char *tu_url(const char *base_url, const char *path);

/* ---- counts -------------------------------------------------------------- */

struct tu_counts {
	long long total, passed, failed, blocked, skipped, untested; /* -1: absent */
	long long duration_ms;                                       /* -1: absent */
};

/* From a normalized event's run.counts and run.duration_ms; run.cases_count
 * stands in for a missing total. */
void tu_counts_of(json_object *event, struct tu_counts *c);

/* The finish summary a run's counts give on Testomat.  -1 = omit. */
struct tu_finish {
	const char *status_event; /* "finish", "fail" or "pass" */
	long long tests, passed, failed, skipped;
};

/* completed: "fail" when failed+blocked > 0 else "finish", skipped =
 * total-passed-failed-blocked (never negative); aborted: aborted_status,
 * skipped = skipped+untested.  failed always counts blocked. */
void tu_testomat_finish(const struct tu_counts *c, int aborted, const char *aborted_status,
			struct tu_finish *f);

/* ---- bodies -------------------------------------------------------------- */

/* A number with at most 3 decimals, serialized as written ("31.2"). */
json_object *tu_seconds(long long ms);

struct tu_testomat_run {
	const char *title, *env, *group_title, *description, *kind, *label;
};

/* POST /api/reporter: empty strings are omitted; shared_run is true (a
 * re-create after a crash joins the run by its title). */
json_object *tu_testomat_create_body(const struct tu_testomat_run *r);

/* PUT /api/reporter/{uid} that finishes: counts of f, duration in seconds
 * (omitted when duration_ms < 0), description when not NULL. */
json_object *tu_testomat_finish_body(const struct tu_finish *f, long long duration_ms,
				     const char *description);

/* Qase result status -> Testomat status; NULL when not sent (untested,
 * in_progress, unknown).  *blocked is set for blocked (sent as failed). */
const char *tu_testomat_status(const char *qase_status, int *blocked);

/*
 * One Qase result (payload or an item of payload.results[]) as a Testomat
 * TestData: rid "qase-<CODE>-<run>-<case>", title, status, run_time (ms),
 * message/stack, create:true.  Returns 0 and *out, 1 when the result is not
 * sent (no case id, or a status with no equivalent), -1 on OOM.
 */
int tu_testomat_test(json_object *result, const char *project, long long run_id, json_object **out);

/* POST /api/reporter/{uid}/testrun body for tests[from, from+n). */
json_object *tu_testomat_batch_body(json_object *tests, size_t from, size_t n, int batch_index);

struct tu_qasphere_run {
	const char *title, *description, *type;
	json_object *query_plan; /* copied */
	long long milestone_id;  /* <= 0: none */
};

/* POST /project/{p}/run: title cut to 255 and description to 512
 * characters (the API's limits), queryPlans [query_plan]. */
json_object *tu_qasphere_create_body(const struct tu_qasphere_run *r);

/* The HTML comment logged on a QA Sphere run for a Qase event ("run.updated",
 * "run.completed", "run.aborted", "run.deleted"); every Qase-provided text
 * is escaped.  Malloc'd; NULL on OOM. */
char *tu_qasphere_comment(const char *type, const struct tu_counts *c, long long cases_added,
			  long long cases_count, const char *project, long long run_id,
			  const char *qase_title);

/* ---- rate limit ---------------------------------------------------------- */

/* Tokens refill at rate per second up to burst. */
struct tu_bucket {
	double tokens;
	long long last_ns;
	int primed;
};

/* Takes one token at now_ns; returns how long to wait (ns) before using it.
 * A token is reserved even when the wait is positive (tokens go negative),
 * so concurrent takers queue up fairly.  With burst 1 requests are paced
 * 1/rate apart, which keeps any sliding one-second window at or under rate.
 * rate <= 0: no limit. */
long long tu_bucket_take(struct tu_bucket *b, long long now_ns, double rate, double burst);

#endif
