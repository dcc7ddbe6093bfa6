/*
 * jpath: dotted paths into a JSON document ("run.counts.failed",
 * "raw.payload.id", "items.0.title"), compiled once and looked up often.
 * Used by rule conditions and templates alike.
 */
#ifndef RB_CORE_JPATH_H
#define RB_CORE_JPATH_H

#include <json-c/json.h>

#include "core/err.h"

struct jpath;

/* Compiles "a.b.c"; empty segments ("a..b", ".a") are an error. */
int jpath_compile(struct jpath **out, const char *path, struct err *err);
void jpath_free(struct jpath *p);
const char *jpath_text(const struct jpath *p);

/* Borrowed pointer to the value, or NULL when any segment is missing. A
 * numeric segment indexes an array. JSON null is returned as NULL too; use
 * jpath_exists to tell them apart. */
json_object *jpath_get(const struct jpath *p, json_object *root);
int jpath_exists(const struct jpath *p, json_object *root);

#endif
