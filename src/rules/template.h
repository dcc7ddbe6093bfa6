/*
 * template: "{{path}}" rendering of normalized events, with mustache-style
 * sections for lists.
 *
 * "runbridge:{{project}}" with project "DEMO" renders "runbridge:DEMO".
 * Whitespace inside the braces is allowed ("{{ run.title }}").  A missing or
 * null field renders empty; strings render as their text, numbers in
 * decimal, booleans as true/false, objects and arrays as compact JSON.
 * "{{.}}" is the current item (the whole event outside any section).
 *
 * Sections:
 *   {{#results.failed}}- {{title}} ({{suite}}){{/results.failed}}
 *     An array renders the body once per item; a falsy value (missing, null,
 *     false, 0, "", []) renders nothing; any other value (an object, a
 *     string, true, a number) renders the body once with that value as the
 *     current item.
 *   {{^results.failed}}no failures{{/results.failed}}
 *     Renders the body once when the value is falsy, else nothing.
 * Inside a section a path is looked up in the current item first, then in
 * each enclosing item, then in the event: the first of them in which the
 * whole path exists (even as null) gives the value.  Sections nest up to
 * TMPL_DEPTH_MAX deep.  An unclosed, stray or mismatched {{/...}} is a
 * compile error naming its line and column within the template.
 *
 * Templates are compiled once at load; rendering never fails but for memory.
 * Rendering is bounded twice: output stops at max_len bytes, and after
 * TMPL_WORK_MAX steps (a part written or a list item entered) it stops as
 * if the cap had been reached, so a list inside a list of hostile sizes
 * costs a bounded time even when its body renders nothing.
 */
#ifndef RB_RULES_TEMPLATE_H
#define RB_RULES_TEMPLATE_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/err.h"

#define TMPL_DEPTH_MAX 8       /* sections inside sections */
#define TMPL_WORK_MAX  1000000 /* render steps, see above */

enum tmpl_escape {
	TMPL_RAW,  /* values inserted as they are */
	TMPL_JSON, /* values escaped for the inside of a JSON string literal */
	/*
	 * Values percent-encoded for where they stand in a URL, as decided by
	 * tmpl_compile_url: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX, so
	 * a value cannot add a path segment, a query parameter or a fragment.
	 * In the path a value's leading and trailing dots are encoded too, so
	 * "." and ".." cannot be read as dot segments.  A template compiled
	 * with tmpl_compile encodes its values as path segments.
	 */
	TMPL_URL,
};

struct tmpl;

/* "{{" without a closing "}}", an empty/invalid path, or sections that do
 * not nest are an error. */
int tmpl_compile(struct tmpl **out, const char *src, struct err *err);

/*
 * tmpl_compile for a URL: each placeholder's place (path, query, fragment)
 * is read from the literal text before it, for TMPL_URL.  A placeholder or
 * section before the path starts (in the scheme, user info, host or port)
 * is an error naming its line and column: the authority of a URL is always
 * the rule author's literal text.
 */
int tmpl_compile_url(struct tmpl **out, const char *src, struct err *err);

void tmpl_free(struct tmpl *t);

/* A malloc'd NUL-terminated string (caller frees), or NULL on OOM.  Output is
 * capped at max_len bytes (0 = 1 MiB); longer results are truncated, at a
 * whole character and a whole escape sequence. */
char *tmpl_render(const struct tmpl *t, json_object *event, enum tmpl_escape esc, size_t max_len);

/* tmpl_render, also telling whether a string value was cut: TMPL_RAW output
 * stops a string at a NUL byte it holds (a C string cannot carry one), and
 * *cut_nul is then 1 (else 0), so that a caller can refuse rather than
 * pass on a shortened value. */
char *tmpl_render_cut(const struct tmpl *t, json_object *event, enum tmpl_escape esc,
		      size_t max_len, int *cut_nul);

/*
 * For load-time checks of the text a template can produce (the http
 * action's JSON body check): the source with each value read as "x", each
 * {{#section}}'s body written reps times and each {{^section}}'s body once
 * when inverted is not 0, else not at all.  *out is malloc'd text; *map (malloc'd,
 * strlen(*out) + 1 entries) gives, for each byte of *out, its offset in the
 * source (an "x" maps to its "{{"; the last entry is the source's length).
 * -1 when the probe would pass 1 MiB.
 */
int tmpl_probe(const struct tmpl *t, unsigned reps, int inverted, char **out, size_t **map,
	       struct err *err);

/* 1 when the template has no {{...}} (a constant). */
int tmpl_is_constant(const struct tmpl *t);
const char *tmpl_source(const struct tmpl *t);

#endif
