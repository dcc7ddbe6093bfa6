/*
 * junit: JUnit XML reports of one Qase run, for Test Center's /import.
 *
 * From the results (junit_doc_*), when runbridge fetched the run's
 * per-case results from the Qase API: one <testcase> per case, written as
 * the results are read from the store (a page at a time), so the document
 * is the only copy of a run's results in memory:
 *
 *   <testsuites><testsuite name="Nightly" timestamp="..." tests="237"
 *     failures="31" errors="12" skipped="20" time="31.200">
 *     <properties><property name="qase.results" value="complete"/></properties>
 *     <testcase name="Login works" classname="Auth / Login" time="1.250"/>
 *     <testcase ...><failure message="comment" type="failed">stack trace</failure></testcase>
 *     <testcase ...><error message="blocked in Qase: comment" type="blocked">...</error></testcase>
 *     <testcase ...><error message="invalid in Qase: ..." type="invalid">...</error></testcase>
 *     <testcase ...><skipped message="skipped in Qase"/></testcase>
 *   </testsuite></testsuites>
 *
 * name is the case title, classname the suite path; time is in seconds,
 * left out when Qase has no duration.  untested and in_progress results
 * are left out (section 5.2 of target-apis.md: "omit"); a custom status is
 * a <skipped> naming it, since it says neither passed nor failed.  The
 * counters are only known at the end: the start tag keeps room for them
 * (blanks, which XML allows between attributes) and junit_doc_end writes
 * them in place.
 *
 * From the counts (junit_render), for a run without results: Qase's run
 * webhooks carry counts, not per-case results, so the report has one
 * synthetic <testcase> per counted case ("Nightly passed 1",
 * "Nightly failed 2", ...) under one <testsuite> whose attributes carry the
 * counts:
 *
 *   <testsuites><testsuite name="Nightly" tests="14" failures="4" errors="0"
 *     skipped="0" time="31.200" timestamp="2022-04-21T11:23:14Z">
 *     <testcase name="Nightly passed 1"/> ...
 *     <testcase name="Nightly failed 1"><failure message="failed in Qase"/></testcase>
 *     <testcase name="Nightly blocked 1"><failure message="blocked in Qase"/></testcase>
 *     <testcase name="Nightly skipped 1"><skipped message="..."/></testcase>
 *   </testsuite></testsuites>
 *
 * failures = failed + blocked.  skipped: run.completed has no skipped or
 * untested counts, so it is what is left, total - passed - failed - blocked
 * (never below 0); run.aborted sends them: skipped + untested.
 *
 * Text and attributes are escaped (& < > " '); characters XML 1.0 cannot
 * carry (control characters, invalid UTF-8) become U+FFFD.  The output is
 * capped (JUNIT_MAX_CASES, JUNIT_MAX_BYTES, and per field): counts and
 * texts come from a peer.
 */
#ifndef RB_ACTIONS_JUNIT_H
#define RB_ACTIONS_JUNIT_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

#define JUNIT_MAX_CASES 100000      /* synthetic testcases per report */
#define JUNIT_MAX_BYTES (32u << 20) /* the whole document */
#define JUNIT_NAME_MAX  1024        /* bytes of a suite, case or class name used */
#define JUNIT_MSG_MAX   2048        /* bytes of a message attribute used */
#define JUNIT_TRACE_MAX 16384       /* bytes of a stack trace used */
/* Past this size the document carries no more stack traces (messages
 * stay), so that a run with huge traces still fits JUNIT_MAX_BYTES. */
#define JUNIT_TRACE_BUDGET (JUNIT_MAX_BYTES / 2)

/* The counts of one Qase run.  A count below 0 is unknown (JSON null). */
struct junit_run {
	const char *suite;     /* testsuite name, the prefix of testcase names */
	const char *timestamp; /* ISO 8601 (occurred_at); NULL: left out */
	long long duration_ms; /* < 0: unknown, time left out */
	long long total;       /* run.counts.total; < 0: the sum of the counts */
	long long passed, failed, blocked;
	long long skipped, untested; /* read for aborted runs only */
	int aborted;                 /* 1: run.aborted, 0: run.completed */
};

/* The skipped attribute of r, as described above. */
long long junit_skipped(const struct junit_run *r);

/* The tests attribute: total, or the sum of the counted cases when that is
 * larger (Qase's counts can disagree with its total) or total is unknown. */
long long junit_tests(const struct junit_run *r);

/*
 * Renders r.  Returns 0 with *out (malloc'd, NUL-terminated; caller frees)
 * and *len, or -1 with err when the run counts more than JUNIT_MAX_CASES
 * cases, the document would pass JUNIT_MAX_BYTES, or memory ran out.
 */
int junit_render(char **out, size_t *len, const struct junit_run *r, struct err *err);

/* ---- from the results ---------------------------------------------------- */

struct result_row;

/* A document being written; its fields are the counters so far. */
struct junit_doc {
	struct buf b;
	size_t room_at; /* offset of the blanks kept for the counters */
	long long tests, failures, errors, skipped;
	long long sum_ms;      /* the known durations, added up */
	int timed;             /* 1: some case had a duration */
	long long duration_ms; /* the run's; < 0: sum_ms is the suite's time */
};

/* The document's start: suite name, timestamp (NULL: left out), the run's
 * duration (< 0: unknown) and the results status ("complete", "partial";
 * NULL: no property).  Returns 0, or -1 with err (memory). */
int junit_doc_begin(struct junit_doc *d, const char *suite, const char *timestamp,
		    long long duration_ms, const char *results_status, struct err *err);

/* One <testcase> for r (nothing for untested and in_progress).  Returns 0,
 * or -1 with err when the document would pass JUNIT_MAX_CASES or
 * JUNIT_MAX_BYTES or memory ran out (the document stays unusable). */
int junit_doc_case(struct junit_doc *d, const struct result_row *r, struct err *err);

/* Closes the document and hands it over as junit_render does; d is empty
 * afterwards.  -1 with err as junit_doc_case. */
int junit_doc_end(struct junit_doc *d, char **out, size_t *len, struct err *err);

/* Frees what d holds; d may be zeroed, finished or half-built. */
void junit_doc_free(struct junit_doc *d);

#endif
