/*
 * rules: YAML routing rules, compiled once, matched against every event.
 *
 *   rules:
 *     - name: failures-to-stream        # required, unique across files
 *       match:
 *         event: [run.completed, run.aborted]   # string or list, * globs
 *         project: DEMO                          # string or list, * globs
 *         all: [ {field: run.counts.failed, gt: 0} ]   # also any: [...], not: {...}
 *       actions:
 *         - redis: { stream: "runbridge:{{project}}", maxlen: 100000 }
 *       stop: false
 *
 * Conditions: {field: PATH, OP: VALUE} with OP one of eq ne in gt ge lt le
 * exists matches (POSIX extended regex); all/any take lists of conditions or
 * groups, not takes one.  Every matching rule's actions run in rule order
 * (files in name order, rules in file order) until a matching rule has
 * stop: true.
 */
#ifndef RB_RULES_RULES_H
#define RB_RULES_RULES_H

#include <stddef.h>
#include <json-c/json.h>

#include "core/err.h"

struct rules;

/*
 * Loads path: a YAML file, or a directory whose *.yaml (and *.yml) files load
 * in name order.  Returns -1 with every problem in errs, each message
 * "file:line:col: what is wrong".  A directory with no rule files is valid
 * (zero rules).
 */
int rules_load(struct rules **out, const char *path, struct errlist *errs);

/* Same, from text (tests). */
int rules_load_string(struct rules **out, const char *name, const char *text, struct errlist *errs);

void rules_free(struct rules *rs);
size_t rules_count(const struct rules *rs);

/* What one loaded rule is, for listing it (the operator API): strings
 * borrowed from the rules, valid while they are. */
struct rule_view {
	const char *name;
	const char *where; /* "file:line:col" of the rule in its file */
	size_t n_actions;
	int stop;
};

/* Rule i, in routing order; i < rules_count(rs). */
void rules_at(const struct rules *rs, size_t i, struct rule_view *out);
/* The kind ("redis", "exec", ...) of rule i's action k; k < n_actions. */
const char *rules_action_kind(const struct rules *rs, size_t i, size_t k);

/* Warnings of the load (see lint.h), each "file:line:col: warning: ...";
 * the rules are valid all the same. */
const struct errlist *rules_warnings(const struct rules *rs);

/* One action a matching rule asks for, rendered against the event. */
struct routed_action {
	const char *rule;    /* borrowed from the rules */
	int index;           /* position of the action in its rule */
	const char *kind;    /* "redis", "exec", ... (static) */
	json_object *params; /* owned: the rendered action */
};

struct route_result {
	struct routed_action *v;
	size_t n;
	const char **matched; /* names of matching rules, in order (borrowed) */
	size_t n_matched;
};

/* Matches event against every rule and renders the actions of each match. */
int rules_route(const struct rules *rs, json_object *event, struct route_result *out,
		struct err *err);
void route_result_free(struct route_result *r);

#endif
