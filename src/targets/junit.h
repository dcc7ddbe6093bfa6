/*
 * junit: a JUnit XML report of one Qase run, for Test Center's /import.
 *
 * Qase's run webhooks carry counts, not per-case results, so the report has
 * one synthetic <testcase> per counted case ("Nightly passed 1",
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
 * capped (JUNIT_MAX_CASES, JUNIT_MAX_BYTES): counts come from a peer.
 */
#ifndef RB_ACTIONS_JUNIT_H
#define RB_ACTIONS_JUNIT_H

#include <stddef.h>

#include "core/err.h"

#define JUNIT_MAX_CASES 100000      /* synthetic testcases per report */
#define JUNIT_MAX_BYTES (32u << 20) /* the whole document */
#define JUNIT_NAME_MAX  1024        /* bytes of the suite name used */

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

#endif
