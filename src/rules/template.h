/*
 * template: "{{path}}" rendering of normalized events.
 *
 * "runbridge:{{project}}" with project "DEMO" renders "runbridge:DEMO".
 * Whitespace inside the braces is allowed ("{{ run.title }}").  A missing or
 * null field renders empty; strings render as their text, numbers in
 * decimal, booleans as true/false, objects and arrays as compact JSON.
 * Templates are compiled once at load; rendering never fails but for memory.
 */
#ifndef RB_RULES_TEMPLATE_H
#define RB_RULES_TEMPLATE_H

#include <json-c/json.h>

#include "core/err.h"

enum tmpl_escape {
	TMPL_RAW,    /* values inserted as they are */
	TMPL_JSON,   /* values escaped for the inside of a JSON string literal */
};

struct tmpl;

/* "{{" without a closing "}}", or an empty/invalid path, is an error. */
int tmpl_compile(struct tmpl **out, const char *src, struct err *err);
void tmpl_free(struct tmpl *t);

/* A malloc'd NUL-terminated string (caller frees), or NULL on OOM.  Output is
 * capped at max_len bytes (0 = 1 MiB); longer results are truncated. */
char *tmpl_render(const struct tmpl *t, json_object *event,
		  enum tmpl_escape esc, size_t max_len);

/* 1 when the template has no {{...}} (a constant). */
int tmpl_is_constant(const struct tmpl *t);
const char *tmpl_source(const struct tmpl *t);

#endif
