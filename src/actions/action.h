/*
 * action: the contract every action kind fulfils, and the registry of kinds.
 *
 * A rule's action is written `- <kind>: <node>`.  At load, `parse` checks the
 * node and builds a spec (templates compiled).  At ingest, `render` turns the
 * spec and the normalized event into params: a self-contained JSON object
 * stored with the job, so a job runs as it was queued even if the rules are
 * reloaded or the daemon restarts.  Running params is each kind's own module
 * (action_redis.h, action_exec.h): kinds differ in how they batch and block.
 *
 * Adding a kind (http, testomat, ...) = one file with one `struct action_ops`
 * and one line in the registry in action.c.
 */
#ifndef RB_ACTIONS_ACTION_H
#define RB_ACTIONS_ACTION_H

#include <json-c/json.h>

#include "core/cfgtree.h"
#include "core/err.h"

struct action_ops {
	const char *name;
	/* Checks node (the value under the kind key); on error appends
	 * "file:line:col: ..." messages to errs and returns -1. */
	int (*parse)(void **out_spec, const struct cfg_node *node,
		     struct errlist *errs);
	/* Renders params (a new JSON object the caller owns). */
	int (*render)(json_object **out_params, const void *spec,
		      json_object *event, struct err *err);
	void (*free_spec)(void *spec);
};

/* The kind called name, or NULL. */
const struct action_ops *action_find(const char *name);

/* "redis, exec" for messages. */
const char *action_kind_list(void);

#endif
