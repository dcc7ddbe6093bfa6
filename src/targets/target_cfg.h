/*
 * target_cfg: the loader of the targets: section (targets.<kind>.<name>),
 * generic over the kinds' config maps (struct action_ops.settings).  The
 * program hands target_cfg_section to config_load; core/ does not know it.
 */
#ifndef RB_TARGETS_TARGET_CFG_H
#define RB_TARGETS_TARGET_CFG_H

#include "core/cfgtree.h"
#include "core/config.h"
#include "core/err.h"

/* Loads val (the value of targets:) into cfg->targets; errors appended to
 * errs with file:line:col.  Returns 0 or -1. */
int target_cfg_load(struct config *cfg, const struct cfg_node *val, struct errlist *errs);

/* { "targets", target_cfg_load }, for config_load's sections. */
extern const struct config_section target_cfg_section;

#endif
