/*
 * expand: ${VAR} expansion of config values (see expand.c), with a report
 * of the variables that were unset.
 *
 * An unset variable expands to nothing, which for a secret (a source's
 * webhook secret, a target's token or api key, the Redis password) turns
 * authentication off without a word.  config_expand_info says which
 * variables were unset so that the loader can warn, with the key's
 * position, in `check` and at start-up.  config_expand (config.h) is
 * config_expand_info without the report.
 */
#ifndef RB_CORE_EXPAND_H
#define RB_CORE_EXPAND_H

#include <stddef.h>

struct expand_info {
	size_t n_unset;  /* ${VAR}s that were unset, so expanded empty
				    (each occurrence; a variable set to ""
				    is set) */
	char unset[256]; /* their names in order, ", "-separated, whole
				    names only ("" when none; cut to fit) */
};

/*
 * ${VAR} from the environment (unset = empty), "$$" a literal '$': 0 and a
 * malloc'd *out, or -1 with the reason in why.  info (may be NULL) is
 * cleared, then filled as far as the value was read, also on failure.
 */
int config_expand_info(const char *in, char **out, struct expand_info *info, char *why, size_t len);

#endif
