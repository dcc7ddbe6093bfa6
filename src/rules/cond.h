/*
 * cond: the `match:` section of a rule, compiled into a tree of conditions.
 *
 *   match:
 *     event: [run.completed, "run.*"]      # globs against the event's type
 *     project: DEMO                        # globs against its project
 *     all: [ {field: run.counts.failed, gt: 0} ]
 *     any: [ {field: run.public, eq: true}, {not: {field: x, exists: true}} ]
 *     not: {field: run.environment, eq: staging}
 *
 * Every key present must hold (they are and-ed).  Paths are compiled and
 * regular expressions built at load, so a bad one is a load error with its
 * position, and matching an event does no parsing.  `matches` takes POSIX
 * extended regular expressions without backreferences (\1..\9), which are
 * not regular and can take exponential time: they are a load error.
 */
#ifndef RB_RULES_COND_H
#define RB_RULES_COND_H

#include <json-c/json.h>

#include "core/cfgtree.h"
#include "core/err.h"

/* Longest regular expression source accepted in `matches`. */
#define COND_REGEX_MAX 1024

/* `matches` reads at most this many bytes of its field: a longer value is
 * matched by its first COND_MATCH_MAX bytes, cut back to the last whole
 * UTF-8 character, as if that prefix were the whole value (so `$` anchors
 * at its end).  Matching time is bounded by the pattern and this cap. */
#define COND_MATCH_MAX 4096

struct cond;

/*
 * Compiles node, the value under `match:` (NULL or null: matches every
 * event, and *out stays NULL).  rule names the rule in messages.  Returns -1
 * with every problem appended to errs as "file:line:col: ...".
 */
int cond_parse_match(struct cond **out, const struct cfg_node *node, const char *rule,
		     struct errlist *errs);

/* 1 when event satisfies c (a NULL c matches everything), 0 when not. */
int cond_eval(const struct cond *c, json_object *event);

void cond_free(struct cond *c);

/*
 * Reports every key of map that is not in allowed (NULL-terminated) and
 * every key written twice, as "file:line:col: unknown key 'k' in rule 'r';
 * expected one of a, b, c".  rule may be NULL.  Returns -1 when any.
 */
int cond_check_keys(const struct cfg_node *map, const char *const *allowed, const char *rule,
		    struct errlist *errs);

#endif
