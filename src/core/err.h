/*
 * err: how runbridge functions say what went wrong.
 *
 * A fallible function returns 0 on success and -1 on failure, and fills the
 * caller's `struct err` once, where the failure happened.  Callers propagate
 * the same struct untouched and log it only at a boundary (an HTTP request,
 * an action attempt, start-up).
 *
 * Loaders that should report every problem at once (config, rules) collect
 * them in a `struct errlist`; each message already names file:line:column.
 */
#ifndef RB_CORE_ERR_H
#define RB_CORE_ERR_H

#include <stddef.h>

#define ERR_MSG_MAX 512

/*
 * The few outcomes a caller branches on (libgit2's GIT_ENOTFOUND style).
 * Anything else is ERR_FAIL, and only the message says what it was.  HTTP
 * statuses are not error codes: the http layer picks them.
 */
enum {
	ERR_FAIL = -1,        /* any failure no caller tells apart */
	ERR_NOTFOUND = -2,    /* what was asked for does not exist (yet) */
	ERR_TOOLARGE = -3,    /* over a hard cap (struct buf, a peer's input) */
	ERR_NOMEM = -4,       /* out of memory */
	ERR_INVALID = -5,     /* a peer's input refused as malformed */
	ERR_UNAVAILABLE = -6, /* cannot be done now (store shutting down,
	                          failing); worth retrying later */
};

struct err {
	int code;              /* 0 (unset), ERR_FAIL or one of the above */
	char msg[ERR_MSG_MAX]; /* human-readable, never holds a secret */
};

/* Formats into e->msg (when e is not NULL), sets e->code to ERR_FAIL and
 * returns ERR_FAIL (-1). */
int err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Same with one of the codes above, which it returns. */
int err_setc(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

struct errlist {
	char **msgs;
	size_t n, cap;
};

#define ERRLIST_INIT \
	{            \
		0    \
	}

/* Appends a formatted message; returns -1 so callers can `return errlist_add(...)`. */
int errlist_add(struct errlist *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void errlist_free(struct errlist *l);

#endif
