/*
 * action_target: the rule side shared by the translated kinds (testomat,
 * qasphere, testcenter): which configured targets rules may name.  The
 * kinds themselves are target_<kind>.c; what they share is target.h.
 */
#ifndef RB_ACTIONS_ACTION_TARGET_H
#define RB_ACTIONS_ACTION_TARGET_H

#include "core/config.h"

/* The config whose targets rules may name; set before loading rules.  The
 * rules keep no pointer into it: their templates are compiled copies. */
void action_set_config(const struct config *cfg);

#endif
