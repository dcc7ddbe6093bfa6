/*
 * action: the contract every action kind fulfils, and the registry of kinds.
 *
 * A rule's action is written `- <kind>: <node>`.  At load, `parse` checks the
 * node and builds a spec (templates compiled).  At ingest, `render` turns the
 * spec and the normalized event into params: a self-contained JSON object
 * stored with the job, so a job runs as it was queued even if the rules are
 * reloaded or the daemon restarts.  At run time a worker thread of the
 * kind's pool loads each job and hands it to `run`.
 *
 * Everything about a kind is its one `struct action_ops`, in its own file:
 * the name, the config map of its targets (targets.<kind>.<name>), how its
 * pool is shaped (threads, batch size, priority), the per-thread state it
 * runs with (a connection, an HTTP handle), and parse, render, run, free.
 * Dispatch, the targets: loader, metrics and the docs test all read the
 * registry; none of them names a kind.
 *
 * Adding a kind = one file with one `struct action_ops action_<kind>_ops`
 * and one word in KINDS in action.c.  Tests may add kinds of their own with
 * action_register.
 */
#ifndef RB_ACTIONS_ACTION_H
#define RB_ACTIONS_ACTION_H

#include <stddef.h>
#include <json-c/json.h>

#include "core/cfgtree.h"
#include "core/config.h"
#include "core/err.h"

enum work_outcome {
	WORK_OK,
	WORK_FAIL,      /* failed; retried until retry.max_attempts */
	WORK_PERMANENT, /* failed in a way retrying cannot fix: dead now */
	WORK_DEFER,     /* not attempted (backend unreachable): no attempt used */
};

/* The outcome of one attempt. */
struct work_result {
	enum work_outcome outcome;
	long long started_ms, finished_ms;
	const char *action; /* kind name, static */
	char target[64];    /* params' "target" (a configured name), or "" */
	char rule[128];
	char delivery_id[65];
	char detail[1024];         /* what happened, for logs and the attempt row */
	long long retry_after_ms;  /* WORK_FAIL: the server asked to wait this long; -1 none */
	long long retry_within_ms; /* WORK_FAIL: retry no later than this from now
				      (a deadline; wins over backoff); 0 none */
};

/* ---- the config map: keys of targets.<kind>.<name> ------------------------ */

enum action_key_type {
	AK_STR,      /* non-empty text */
	AK_SECRET,   /* non-empty text, never shown */
	AK_URL,      /* http:// or https:// */
	AK_TEMPLATE, /* {{...}} text, rendered per event */
	AK_INT,      /* non-negative integer */
	AK_BOOL,     /* true | false */
	AK_ENUM,     /* one of values */
	AK_MAP,      /* a free-form map, kept as JSON */
};

#define AK_REQUIRED 0x1 /* no default: the target must set it */
/* a reload (SIGHUP) takes the new value; other keys keep the value the
 * daemon started with */
#define AK_RELOAD    0x2
#define AK_SCALAR_OK 0x4 /* AK_MAP: a plain value is taken too, as a string */

struct action_key {
	const char *name;
	enum action_key_type type;
	const char *def;    /* as written in YAML; NULL: no default */
	int flags;          /* AK_REQUIRED, AK_RELOAD, AK_SCALAR_OK */
	const char *values; /* AK_ENUM: "a|b|c" */
	const char *desc;   /* one line, for docs */
};

/* ---- running --------------------------------------------------------------- */

/* How a kind's pool runs: one pool per kind, so a slow kind never holds up
 * another. */
struct action_pool {
	int threads;  /* worker threads, >= 1 */
	size_t batch; /* most jobs per run call, >= 1 */
	int nice;     /* > 0: the threads' (and their children's)
				     CPU priority */
};

struct map_key;
struct map_rec;
struct result_row;
struct action_job;
struct ingest_tx;
struct store;

/* What the worker offers a kind's run (borrowed, valid while it runs). */
struct action_host {
	const struct config *cfg; /* the running config (the last reload's) */
	/* A configured target: the running config's, else the newest earlier
	 * config's that has it (a job queued before the reload removed it). */
	const struct target_cfg *(*target)(struct action_host *h, const char *kind, const char *name);
	/* The kind's backend became reachable (1) or not (0): /healthz. */
	void (*set_up)(struct action_host *h, int up);
	/* The run mapping of a target (targets/target.h): read from the
	 * worker's store connection; written through the writer, committed
	 * when it returns.  0, or -1 with err set. */
	int (*map_get)(struct action_host *h, const struct map_key *k, struct map_rec *out,
		       struct err *err);
	int (*map_put)(struct action_host *h, const struct map_key *k, const struct map_rec *m,
		       struct err *err);
	/* The stored per-case results of a run (store/results.h), read from
	 * the worker's connection: store_results_each's contract. */
	int (*results_each)(struct action_host *h, const char *project, long long run_id,
			    long long after_case, size_t limit,
			    int (*fn)(void *ctx, const struct result_row *r), void *fn_ctx,
			    size_t *n_out, struct err *err);
	/* The results stage's kind only: routes job j's event (now holding
	 * its results) by the rules, committing its jobs; see
	 * accept_route_deferred.  0, or -1 with err set. */
	int (*route)(struct action_host *h, const struct action_job *j, json_object *event,
		     const char *status, struct err *err);
	/* The results stage's kind only: the worker's read connection, and
	 * writes in the writer's next commit (ingest_call's contract). */
	struct store *store;
	int (*write)(struct action_host *h,
		     int (*fn)(struct ingest_tx *tx, void *ctx, struct err *err), void *fn_ctx,
		     struct err *err);
	void *ctx; /* the worker's */
};

/* One loaded job as a kind runs it.  Strings are borrowed. */
struct action_job {
	long long id;
	int attempt; /* 1-based number of this attempt */
	const char *delivery_id, *rule, *type;
	const char *project;   /* may be NULL */
	int index;             /* the action's position in its rule */
	long long run_id;      /* 0: the event is about no run */
	long long received_ms; /* when its delivery arrived, Unix ms */
	const char *event_json;
	json_object *params;     /* the rendered params, an object */
	struct work_result *res; /* to fill: outcome, detail, retry_after_ms */
};

struct target_attempt;
struct target_outcome;

struct action_ops {
	const char *name;
	const char *summary; /* one line, for docs */
	int internal;        /* 1: runbridge's own (the results stage), not for rules */

	/* Checks node (the value under the kind key); on error appends
	 * "file:line:col: ..." messages to errs and returns -1. */
	int (*parse)(void **out_spec, const struct cfg_node *node, struct errlist *errs);
	/* Renders params (a new JSON object the caller owns). */
	int (*render)(json_object **out_params, const void *spec, json_object *event,
		      struct err *err);
	void (*free_spec)(void *spec);

	/* The keys of targets.<kind>.<name>, NULL-name terminated; NULL: the
	 * kind has no targets.  check (optional) tests a loaded target as a
	 * whole (keys that go together). */
	const struct action_key *settings;
	int (*check)(const struct target_cfg *t, const struct cfg_node *at, struct errlist *errs);

	/* The pool's shape under cfg. */
	void (*pool)(const struct config *cfg, struct action_pool *out);
	/* Per-thread state (optional; *out may stay NULL). */
	int (*open)(void **out, const struct action_ops *self, struct action_host *host,
		    struct err *err);
	void (*close)(void *state);
	/* Optional, before a batch is loaded: -1 (err set) when the backend is
	 * unreachable; the batch is then deferred, not attempted. */
	int (*ready)(void *state, struct action_host *host, struct err *err);
	/* Runs n jobs (n <= the pool's batch) and fills each job's res. */
	void (*run)(void *state, struct action_host *host, struct action_job *jobs, size_t n);

	/* Kinds built on targets/target.h (their run is target_run): one
	 * attempt against the job's target and its run mapping. */
	void (*attempt)(struct target_attempt *a, struct target_outcome *out);
};

/* The kind called name, or NULL. */
const struct action_ops *action_find(const char *name);

/* The registered kinds, built-in first: i < action_count(). */
size_t action_count(void);
const struct action_ops *action_at(size_t i);

/* "redis, exec, ..." for messages (static storage). */
const char *action_kind_list(void);

/* Adds a kind (tests); before any dispatcher starts.  -1 when the name is
 * taken or the table is full. */
int action_register(const struct action_ops *ops);

/* Pool shapes most kinds use: one thread per job at a time, as many
 * threads as targets_workers (outbound calls). */
void action_pool_outbound(const struct config *cfg, struct action_pool *out);

#endif
