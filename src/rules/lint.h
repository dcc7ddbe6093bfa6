/*
 * lint: warnings about rules that load but will not do what they say.
 *
 * One today: a rule whose `match.event` can match events of families other
 * than run (no event key, or a glob not starting with "run.", such as
 * "case.*" or "*.deleted") and that reads run fields (`field: run.title`,
 * `{{run.counts.failed}}`, `{{run_id}}`) in its conditions or templates.
 * Those fields are null on such events (result.* events carry `run` only
 * when the registry knows the run), so the condition is false or the text
 * renders empty.  It is a warning, not an error: the rule may mean it.
 *
 *   rules/20-x.yaml:7:18: warning: rule 'all': run.title is null on events
 *   other than run.* (match.event '*.deleted' matches them)
 */
#ifndef RB_RULES_LINT_H
#define RB_RULES_LINT_H

#include "core/cfgtree.h"
#include "core/err.h"

/* Appends one "file:line:col: warning: ..." per use to warnings.  node is
 * the rule's map, rule its name for messages. */
void lint_rule(const struct cfg_node *node, const char *rule, struct errlist *warnings);

#endif
