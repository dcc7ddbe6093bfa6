/*
 * target_testcenter.h: what the three files of the testcenter kind share;
 * private to them.
 *
 *   target_testcenter.c         the attempt: login, the target's URLs, the
 *                               map, labels, the event's counts; settings
 *   target_testcenter_import.c  mode import: one JUnit file at the end
 *   target_testcenter_report.c  mode reporting: live, through /upload
 */
#ifndef RB_TARGETS_TARGET_TESTCENTER_H
#define RB_TARGETS_TARGET_TESTCENTER_H

#include <stddef.h>

#include "targets/junit.h"
#include "targets/target.h"
#include "targets/target_util.h"

#define TC_URL_MAX    2048
#define TC_LABELS_MAX 40 /* qase.* plus action_target's 32 */

/* One attempt's view of the event and the target. */
struct tc {
	struct target_attempt *a;
	struct target_outcome *out;
	const char *type;    /* "run.completed" */
	const char *project; /* Qase project code */
	long long run_id;
	char ref[96]; /* "DEMO#42", for names and messages */
	char *auth;   /* "Authorization: ..." (malloc'd) */
};

/* ---- target_testcenter.c ------------------------------------------------- */

/* buf = {base_url}{path}; a trailing slash of base_url is not doubled.  -1
 * (permanent) when base_url is missing or too long. */
int tc_url(struct tc *c, const char *path, char *buf, size_t len);

/* The rendered param, or NULL when missing or empty. */
const char *tc_param(struct tc *c, const char *key);

/* The suite name (in buf when made up): a run whose title never reached us
 * gets "Qase DEMO#42". */
const char *tc_suite(struct tc *c, char *buf, size_t len);

/* The event's type is type; the map's state is state. */
int tc_is_type(const struct tc *c, const char *type);
int tc_state_is(const struct tc *c, const char *state);

/* Sets the state (unless NULL) and commits the map; -1 with out set (a retry). */
int tc_save(struct tc *c, const char *state);

/* o.key (NULL when missing); o.key when it is a string, else NULL. */
json_object *tc_data_get(json_object *o, const char *key);
const char *tc_data_str(json_object *o, const char *key);

/* Tombstone: later events of the run are ignored. */
void tc_tombstone(struct tc *c, const char *what);

/* The report's labels, [{key, value}...] (qase.event too when with_event). */
json_object *tc_labels(struct tc *c, int with_event);

/* The run's counts and duration from the event (-1: absent). */
void tc_run_counts(struct tc *c, struct junit_run *r);

/* The event's results object, or NULL when none were fetched (the counts
 * alone are mirrored). */
json_object *tc_results(struct tc *c);

/* ---- the modes ----------------------------------------------------------- */

/* run.completed and run.aborted: the JUnit file (target_testcenter_import.c). */
void tc_import(struct tc *c);

/* Any event, live (target_testcenter_report.c). */
void tc_reporting(struct tc *c);

#endif
