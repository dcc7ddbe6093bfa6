/*
 * target_testomat.h: what the two files of the testomat kind share; private
 * to them.  target_testomat.c mirrors the run (create, refresh, finish,
 * publish, delete) and makes the reporter API's requests;
 * target_testomat_results.c sends the run's per-case results (the stored
 * ones before a finish, and result.* webhooks) through them.
 */
#ifndef RB_TARGETS_TARGET_TESTOMAT_H
#define RB_TARGETS_TARGET_TESTOMAT_H

#include <stddef.h>

#include "targets/target.h"
#include "targets/target_util.h"

/* An event's results by what they were sent as (omitted: not sent). */
struct tally {
	long long sent, passed, failed, skipped, omitted;
};

/* One attempt. */
struct tmat {
	struct target_attempt *a;
	struct target_outcome *out;
	const char *key; /* api_key */
	int key_in_body, key_in_query;
	const char *project; /* Qase project code */
	long long run_id;
	char *title;    /* the run's title on Testomat */
	char done[600]; /* what happened, for the detail */
	/* results: how a Qase status is sent (target_testomat_results.c) */
	const char *blocked_as, *custom_as; /* a Testomat status; custom_as may be "omit" */
	int run_time_s;                     /* run_time in seconds, not ms */
	int mirrored;                       /* the event has results, and they were sent */
	struct tally sent;                  /* what they gave, over every attempt of the event */
};

/* Adds to what the detail says happened. */
#define note(t, ...) tu_appendf((t)->done, sizeof((t)->done), __VA_ARGS__)

/* ---- the run: target_testomat.c ------------------------------------------ */

/* buf = "/<uid>" + rest, the mapped uid escaped; -1 (permanent) when it
 * cannot be used. */
int tmat_uid_path(struct tmat *t, const char *rest, char *buf, size_t len);

/*
 * One request to "/api/reporter" + suffix; body is consumed.  On a 2xx,
 * *answer (when asked) is the parsed JSON answer or NULL.  On anything else
 * the outcome is set.
 */
int tmat_call(struct tmat *t, const char *method, const char *suffix, json_object *body,
	      json_object **answer, const char *what);

/* The run exists on Testomat once this returns 0 (created now if needed). */
int tmat_ensure(struct tmat *t);

/* ---- results: target_testomat_results.c ---------------------------------- */

/* Sends the event's stored results not sent yet (none when the event has
 * no "results"), batch by batch, each recorded once accepted; sets
 * t->mirrored and t->sent. */
int tmat_send_stored(struct tmat *t);

/* result.* webhooks: the payload's results, as they came. */
int tmat_result_event(struct tmat *t);

#endif
