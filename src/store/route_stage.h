/*
 * route_stage: everything a delivery needs before the writer may store it,
 * done in the thread that received it, so that the writer only writes.
 *
 * For each delivery, in that thread: dedup by (project, run id, delivery
 * id), enrichment from the run registry, event_normalize, rules_route (match
 * and render) and serialization.  The result is a struct ingest_rows (the
 * delivery row, the registry row of a run.* event, one row per job) that
 * the writer inserts as it is.  A slow rule (a backtracking `matches` on a
 * long title) now stalls the deliveries of its stripe, never a commit.
 *
 * Enrichment must see deliveries that are not committed yet (two events of
 * one run in one group: the second is enriched from the first).  The stage
 * keeps them as tickets: one per delivery on its way to the writer, linked
 * from accept until its group is finished.  The registry a delivery reads is
 * then layered: the newest live run.* ticket of its run if there is one,
 * else the store (through a read-only connection of the stage's own).  A
 * ticket leaves the stage only after its group's COMMIT returned (the
 * store has it, and a reader sees it) or failed (the store does not, and
 * nothing may read it any more), so the layers never show what the store
 * will not have.
 *
 * Receipt order: runs hash to one of a fixed set of stripes, each one
 * mutex.  Dedup, enrichment and the ticket's place in its stripe are
 * decided under the stripe lock; routing (the rules, which may be slow)
 * runs without it, and the hand-over to the writer's queue waits until every
 * earlier ticket of the same run was handed over.  So for one run the
 * writer's queue order (the registry's last write, the job ids that order a
 * lane) is the order in which its deliveries were enriched, a slow rule
 * holds back only later deliveries of its own run, and the writer, which
 * takes a stripe lock for a moment when a ticket leaves, never waits for a
 * rule.  A request still waits for its own routing, then for its commit.
 *
 * Failure: a delivery the writer cannot store is marked failed here; every
 * live ticket that was enriched from it (in its own group or a later one)
 * is doomed and fails too (a 503: Qase delivers it again and it is enriched
 * from the store then), so nothing committed was enriched from a row the
 * store does not have.  Unrelated deliveries of the group commit as before.
 *
 * Duplicates: a second delivery with the id of a live ticket waits until
 * that ticket is finished, then asks the store: a duplicate of a committed
 * delivery writes nothing, creates no job and touches no registry state (it
 * still goes through a group commit, so its 202 means what it always did);
 * one of a failed delivery is stored as new.
 */
#ifndef RB_STORE_ROUTE_STAGE_H
#define RB_STORE_ROUTE_STAGE_H

#include <stddef.h>
#include <json-c/json.h>

#include "core/config.h"
#include "core/err.h"
#include "rules/rules.h"
#include "store/ingest.h"

struct route_stage;

/* One delivery between accept and the end of its group.  It lives on the
 * caller's stack; route_stage_prepare fills it, route_stage_clear frees
 * what it holds.  The writer reads rows and duplicate only. */
struct route_ticket {
	struct ingest_rows rows;   /* what to store (unless duplicate) */
	int duplicate;             /* stored already: write nothing */

	/* private to route_stage.c */
	const char *key_project;   /* project, "" when none */
	unsigned stripe;
	int linked;                /* in its stripe's list */
	int failed;                /* the writer could not store it */
	int doomed;                /* enriched from a ticket that failed */
	int submitted;             /* handed to the writer */
	char *run_text;            /* rows.run_json, owned */
	struct route_ticket *basis; /* the live ticket it was enriched from */
	struct route_ticket *prev, *next;
	json_object *ev;
	struct route_result rr;
	struct ingest_job *jobs;
};

/* What arrived: borrowed for the ticket's whole life. */
struct route_input {
	const struct source_cfg *src;
	const char *id;
	json_object *delivery;     /* passed event_parse */
	const char *raw;
	size_t raw_len;
	long long received_ms;
};

/* Hands a prepared ticket to the writer's queue; called with the run's
 * stripe locked.  Returns -1 (err set) when the writer takes no more. */
typedef int (*route_submit_fn)(void *ctx, struct route_ticket *t,
			       struct err *err);

/* Opens read-only connections to data_dir's store as request threads need
 * them.  rules are borrowed (NULL: no rule, no job). */
int route_stage_new(struct route_stage **out, const char *data_dir,
		    const struct rules *rules, struct err *err);
void route_stage_free(struct route_stage *rs);

/* Routes by rules from now on; returns the previous rules, which no
 * delivery is being routed by any more when this returns. */
const struct rules *route_stage_set_rules(struct route_stage *rs,
					  const struct rules *rules);

/*
 * Dedups, enriches, normalizes and routes one delivery, then calls submit
 * (still in receipt order for its run).  Returns 0 when submitted (the
 * writer must then finish the ticket with route_stage_done), -1 when not
 * (err set: the delivery gets a 503).  Either way call route_stage_clear afterwards.
 */
int route_stage_prepare(struct route_stage *rs, struct route_ticket *t,
			const struct route_input *in, route_submit_fn submit,
			void *ctx, struct err *err);

/* The writer's side, on its thread.  doomed: 1 when t was enriched from a
 * delivery that failed (do not store it).  fail: t is not stored (dooms
 * whatever was enriched from it).  done: t's group is finished, committed
 * or not; t leaves the stage (call it after the commit, before the waiter
 * wakes, in queue order). */
int route_stage_doomed(struct route_stage *rs, struct route_ticket *t);
void route_stage_fail(struct route_stage *rs, struct route_ticket *t);
void route_stage_done(struct route_stage *rs, struct route_ticket *t);

/* Frees what the ticket holds (the caller's thread, after the writer). */
void route_stage_clear(struct route_ticket *t);

#endif
