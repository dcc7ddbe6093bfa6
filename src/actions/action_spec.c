/* action_spec: a kind's spec with its ops, for rules/ (see the header). */
#include "actions/action_spec.h"

#include <stdlib.h>

#include "actions/action.h"

struct action_spec {
	const struct action_ops *ops;
	void *spec;
};

int action_spec_parse(struct action_spec **out, const char *kind, const struct cfg_node *node,
		      struct errlist *errs)
{
	const struct action_ops *ops = action_find(kind);
	struct action_spec *s;

	*out = NULL;
	if (!ops || ops->internal)
		return ACTION_SPEC_UNKNOWN;
	if (!(s = calloc(1, sizeof(*s))))
		return errlist_add(errs, "out of memory");
	s->ops = ops;
	if (ops->parse(&s->spec, node, errs) < 0) {
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

int action_spec_render(json_object **out, const struct action_spec *s, json_object *event,
		       struct err *err)
{
	return s->ops->render(out, s->spec, event, err);
}

const char *action_spec_kind(const struct action_spec *s)
{
	return s->ops->name;
}

const char *action_spec_kinds(void)
{
	return action_kind_list();
}

void action_spec_free(struct action_spec *s)
{
	if (!s)
		return;
	s->ops->free_spec(s->spec);
	free(s);
}
