/* action: the registry of action kinds.  A new kind is one line here. */
#include "actions/action.h"

#include <string.h>

#include "actions/action_exec.h"
#include "actions/action_http.h"
#include "actions/action_redis.h"
#include "targets/action_target.h"

static const struct action_ops *const kinds[] = {
	&action_redis_ops,
	&action_exec_ops,
	&action_http_ops,
	&action_testomat_ops,
	&action_qasphere_ops,
	&action_testcenter_ops,
};

const struct action_ops *action_find(const char *name)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i]->name, name) == 0)
			return kinds[i];
	return NULL;
}

const char *action_kind_list(void)
{
	return "redis, exec, http, testomat, qasphere, testcenter";
}
