/*
 * cfgtree: a YAML document as a small tree that remembers where every node
 * came from, so that config and rule errors can name file:line:column.
 *
 * libyaml does the parsing; this module only keeps what it produced.
 * Anchors/aliases are refused (a config has no need for them and they allow
 * billion-laughs expansion); nesting deeper than CFG_MAX_DEPTH is refused.
 */
#ifndef RB_CORE_CFGTREE_H
#define RB_CORE_CFGTREE_H

#include <stddef.h>

#include "core/err.h"

#define CFG_MAX_DEPTH 64

enum cfg_type { CFG_SCALAR, CFG_SEQ, CFG_MAP };

struct cfg_node {
	enum cfg_type type;
	const char *file;        /* owned by the document */
	int line, col;           /* 1-based position of the node's start */
	char *value;             /* CFG_SCALAR: the text, NUL-terminated */
	int quoted;              /* CFG_SCALAR: written quoted, so always a string */
	size_t n;                /* CFG_SEQ / CFG_MAP: number of items / pairs */
	struct cfg_node **items; /* CFG_SEQ: items; CFG_MAP: values */
	struct cfg_node **keys;  /* CFG_MAP: keys (scalar nodes) */
};

struct cfg_doc {
	char *file;
	struct cfg_node *root; /* NULL for an empty document */
};

/* Parses a file.  On a YAML syntax error, err says "file:line:col: ...".
 * A NUL byte anywhere in the text, or a NUL character written as an escape
 * in a quoted scalar ("\0", "\x00"), is an error at its position: a C
 * string would otherwise end there and silently drop the rest. */
int cfg_load_file(struct cfg_doc **out, const char *path, struct err *err);

/* Parses text in memory; name is used in positions. */
int cfg_load_string(struct cfg_doc **out, const char *name, const char *text, size_t len,
		    struct err *err);

void cfg_doc_free(struct cfg_doc *doc);

/* The value under key in a map, or NULL (also NULL when map is not a map). */
const struct cfg_node *cfg_get(const struct cfg_node *map, const char *key);

/* "file:line:col" of a node, into buf; returns buf. */
const char *cfg_where(const struct cfg_node *node, char *buf, size_t len);

/* Type name for messages: "a string", "a list", "a map". */
const char *cfg_type_name(const struct cfg_node *node);

/*
 * Table-driven parsing of a map's keys (action specs): each key of map must
 * be one of keys[], at most once; its parser gets the value.  Errors read
 * "file:line:col: WHAT: unknown key 'k'; expected a, b, c" and "... key 'k'
 * appears twice".  *seen gets bit i for keys[i] found (at most 32 keys).
 * Returns 0, or -1 when any key failed (every problem appended to errs).
 */
struct cfg_key {
	const char *name;
	int (*parse)(void *spec, const struct cfg_node *value, struct errlist *errs);
};
int cfg_parse_keys(void *spec, const struct cfg_node *map, const struct cfg_key *keys, size_t nkeys,
		   const char *what, unsigned *seen, struct errlist *errs);

/*
 * Plain (unquoted) scalar typing, YAML 1.2 core schema style.  Each returns
 * 0 when the scalar is of that kind and stores the value, -1 otherwise.
 */
int cfg_scalar_is_null(const struct cfg_node *node);
int cfg_scalar_bool(const struct cfg_node *node, int *out);
int cfg_scalar_int(const struct cfg_node *node, long long *out);
int cfg_scalar_double(const struct cfg_node *node, double *out);

#endif
