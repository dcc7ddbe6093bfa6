/*
 * accept: from a checked delivery to its committed rows, in the thread that
 * received it, so that the writer only writes.
 *
 * For each delivery, in its HTTP thread: the committed-duplicate shortcut,
 * enrichment from the run registry, event_normalize, rules_route (match and
 * render), the job rows with their lanes, then ingest_write, which commits
 * them in the next group and returns once they are on disk.  A slow rule (a
 * long `matches`) holds up its own delivery and later ones of its run,
 * never a commit or another run.
 *
 * Receipt order per run: a delivery takes its run's in-flight slot before
 * it reads the registry and keeps it until its rows are committed (or
 * failed), so a second event of the run, arriving at the same moment, waits
 * and is enriched from the first as the store has it.  Different runs never
 * wait for each other.  Events about no run (run id 0) take no slot.
 *
 * Lookups without SQLite where it can: the registry is read (through a
 * read-only connection from a small pool) only for a run the stage may have
 * seen: a Bloom filter of every run in the registry, filled at start from
 * the store and as run events commit, answers "never seen" for a new run at
 * no cost.  A filter is sized for 1,048,576 runs (1 MiB, about 2% false
 * positives when full, each costing one lookup); when it fills, another
 * twice its size is added (at most 12: 4 billion runs).
 *
 * Duplicates: the writer dedups every delivery against the store when it
 * inserts (a stored id writes nothing, no job, no registry change).  The
 * ids of the last 65,536 committed deliveries are also kept here (64-bit
 * hashes, one slot each): a delivery whose id is among them is answered
 * as a duplicate at once, without routing or a commit; it was on disk
 * before its hash was.
 *
 * Results: an event whose run's results are pulled (a source with an API
 * token, the event in api.fetch_on) is stored with one "results" job
 * instead of its actions, and so is each later event of that run while one
 * waits; the results stage routes them, in order, through
 * accept_route_deferred.
 *
 * Rules: routing holds a read lock from the match until the commit;
 * accept_set_rules swaps under the write lock, so when it returns every
 * delivery routed by the old rules is committed or failed.
 */
#ifndef RB_ACCEPT_ACCEPT_H
#define RB_ACCEPT_ACCEPT_H

#include <stddef.h>
#include <json-c/json.h>

#include "core/config.h"
#include "core/err.h"

struct ingest;
struct rules;
struct acceptor;

/* Reads data_dir's store (which must exist: the writer created it) for the
 * runs it holds.  in and rules are borrowed (rules NULL: no rule, no job).
 * 0, or -1 with err set. */
int acceptor_new(struct acceptor **out, const char *data_dir, struct ingest *in,
		 const struct rules *rules, struct err *err);
void acceptor_free(struct acceptor *a);

/* Routes by rules from now on; returns the previous rules, which nothing
 * uses any more when this returns. */
const struct rules *acceptor_set_rules(struct acceptor *a, const struct rules *rules);

/* Calls fn with the rules deliveries are routed by now (NULL: none) and
 * returns what fn returns.  fn runs under the rules' read lock, so a reload
 * (acceptor_set_rules) waits for it and the rules stay valid until it
 * returns; fn must not call into the acceptor. */
int acceptor_with_rules(struct acceptor *a, int (*fn)(void *ctx, const struct rules *rules),
			void *ctx);

/*
 * Normalizes, routes and stores one delivery, waiting for the commit.
 * delivery (parsed by event_parse) is consumed in every case; raw is the
 * body as received.  Returns 0 with *duplicate set, or -1 when nothing was
 * stored (err->code ERR_UNAVAILABLE, the message says why).
 */
int accept_delivery(struct acceptor *a, const struct source_cfg *src, const char *id,
		    json_object *delivery, const char *raw, size_t raw_len, long long received_ms,
		    int *duplicate, struct err *err);

/*
 * The results stage's router (dispatch_set_router): routes job j's event
 * (with its "results" when status is "complete", "partial" or
 * "unavailable"; as stored when status is "") by the current rules, in the
 * run's order, storing the event with its results and the new jobs in one
 * commit.  An event already routed is routed again only with better
 * results.  0, or -1 with err set.
 */
struct action_job;
int accept_route_deferred(void *acceptor, const struct action_job *j, json_object *event,
			  const char *status, struct err *err);

#endif
