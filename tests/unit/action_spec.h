/*
 * Test helper shared by the action unit tests: parse an action's YAML
 * node with its kind's ops, keeping the document and the errors.
 * Define ACTION_OPS (e.g. action_exec_ops) before including this file.
 */
#ifndef RB_TEST_ACTION_SPEC_H
#define RB_TEST_ACTION_SPEC_H

#include <string.h>

#include "actions/action.h"
#include "core/cfgtree.h"

struct parsed {
	struct cfg_doc *doc;
	void *spec;
	struct errlist errs;
};

static int parse(struct parsed *ps, const char *yaml)
{
	struct err e = { 0 };

	memset(ps, 0, sizeof(*ps));
	if (cfg_load_string(&ps->doc, "rules.yaml", yaml, strlen(yaml), &e) < 0)
		fail_msg("yaml: %s", e.msg);
	return ACTION_OPS.parse(&ps->spec, ps->doc->root, &ps->errs);
}

static void parsed_free(struct parsed *ps)
{
	ACTION_OPS.free_spec(ps->spec);
	errlist_free(&ps->errs);
	cfg_doc_free(ps->doc);
}

#endif
