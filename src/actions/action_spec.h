/*
 * action_spec: what rules/ sees of the action kinds.  A rule's action
 * `- <kind>: <node>` is parsed into a spec of that kind (its templates
 * compiled) and rendered per event into params; the kinds and their ops
 * stay behind this interface (actions/action.h is for kinds, dispatch and
 * the config loader).
 */
#ifndef RB_ACTIONS_ACTION_SPEC_H
#define RB_ACTIONS_ACTION_SPEC_H

#include <json-c/json.h>

#include "core/cfgtree.h"
#include "core/err.h"

struct action_spec;

/* The kind called kind, parsed from node.  Returns 0; -1 with the node's
 * problems appended to errs; ACTION_SPEC_UNKNOWN (nothing appended) when
 * no kind has that name. */
#define ACTION_SPEC_UNKNOWN (-2)
int action_spec_parse(struct action_spec **out, const char *kind, const struct cfg_node *node,
		      struct errlist *errs);

/* Params for event: a new JSON object the caller owns. */
int action_spec_render(json_object **out, const struct action_spec *s, json_object *event,
		       struct err *err);

/* The kind's name (static storage). */
const char *action_spec_kind(const struct action_spec *s);

/* "redis, exec, ..." for messages. */
const char *action_spec_kinds(void);

void action_spec_free(struct action_spec *s);

#endif
