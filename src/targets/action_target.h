/*
 * action_target: the rule-side action kinds testomat, qasphere and
 * testcenter (the running side is target_<kind>.c, see target.h).
 */
#ifndef RB_ACTIONS_ACTION_TARGET_H
#define RB_ACTIONS_ACTION_TARGET_H

#include "actions/action.h"
#include "core/config.h"

extern const struct action_ops action_testomat_ops, action_qasphere_ops,
	action_testcenter_ops;

/* The config whose targets rules may name; set before loading rules.  The
 * rules keep no pointer into it: their templates are compiled copies. */
void action_set_config(const struct config *cfg);

#endif
