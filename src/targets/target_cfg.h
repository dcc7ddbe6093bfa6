/*
 * target_cfg: the loader of the targets: section (targets.<kind>.<name>),
 * generic over the kinds' config maps (struct action_ops.settings).  The
 * program hands target_cfg_section to config_load; core/ does not know it.
 */
#ifndef RB_TARGETS_TARGET_CFG_H
#define RB_TARGETS_TARGET_CFG_H

#include <stddef.h>

#include "core/cfgtree.h"
#include "core/config.h"
#include "core/err.h"

/* Loads val (the value of targets:) into cfg->targets; errors appended to
 * errs with file:line:col.  Returns 0 or -1. */
int target_cfg_load(struct config *cfg, const struct cfg_node *val, struct errlist *errs);

/* { "targets", target_cfg_load }, for config_load's sections. */
extern const struct config_section target_cfg_section;

/*
 * run_url (every kind's, TARGET_COMMON_KEYS) is the web page of a run in
 * the target, a template such as
 * "https://qa.example.com/project/P/run/{remote_id}" whose placeholders are
 * {remote_id} (the target's id of the run), {project} and {run_id} (the
 * Qase run's).  The loader refuses one with an unknown placeholder or a
 * credential (user:password@, a query parameter named like a key or a
 * token): everyone who may read the operator API sees it.
 *
 * target_cfg_run_url writes t's run_url for one run into out, each
 * placeholder's value percent-encoded.  1 when written; 0 when t has no
 * run_url or a value is missing (remote_id NULL: the target has no id for
 * the run yet); -1 when it does not fit in len.
 */
int target_cfg_run_url(char *out, size_t len, const struct target_cfg *t, const char *remote_id,
		       const char *project, long long run_id);

#endif
