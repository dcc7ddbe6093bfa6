/*
 * action: the registry of action kinds.  A new kind is its file plus one
 * word in KINDS; the order is the order of messages and docs.
 */
#include "actions/action.h"

#include <stdio.h>
#include <string.h>

/* results is runbridge's own (an event's wait for its run's results), never
 * named by a rule */
#define KINDS(X) X(redis) X(exec) X(http) X(testomat) X(qasphere) X(testcenter) X(results)

#define DECLARE(k) extern const struct action_ops action_##k##_ops;
KINDS(DECLARE)

#define ENTRY(k) &action_##k##_ops,
static const struct action_ops *const builtin[] = { KINDS(ENTRY) };

#define NBUILTIN  (sizeof(builtin) / sizeof(builtin[0]))
#define EXTRA_MAX 8

static const struct action_ops *extra[EXTRA_MAX];
static size_t n_extra;
static char kind_list[512];

size_t action_count(void)
{
	return NBUILTIN + n_extra;
}

const struct action_ops *action_at(size_t i)
{
	if (i < NBUILTIN)
		return builtin[i];
	return i - NBUILTIN < n_extra ? extra[i - NBUILTIN] : NULL;
}

const struct action_ops *action_find(const char *name)
{
	for (size_t i = 0; i < action_count(); i++)
		if (strcmp(action_at(i)->name, name) == 0)
			return action_at(i);
	return NULL;
}

static void build_list(void)
{
	size_t n = 0;

	kind_list[0] = '\0';
	for (size_t i = 0; i < action_count() && n < sizeof(kind_list); i++)
		if (!action_at(i)->internal)
			n += (size_t)snprintf(kind_list + n, sizeof(kind_list) - n, "%s%s",
					      n ? ", " : "", action_at(i)->name);
}

const char *action_kind_list(void)
{
	if (!kind_list[0])
		build_list();
	return kind_list;
}

int action_register(const struct action_ops *ops)
{
	if (!ops->name || action_find(ops->name) || n_extra == EXTRA_MAX || !ops->parse ||
	    !ops->render || !ops->free_spec || !ops->pool || !ops->run)
		return -1;
	extra[n_extra++] = ops;
	build_list();
	return 0;
}

void action_pool_outbound(const struct config *cfg, struct action_pool *out)
{
	*out = (struct action_pool){ .threads = cfg->target_workers, .batch = 1 };
}
