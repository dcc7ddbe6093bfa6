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

struct err {
	int code;                /* optional detail: an HTTP status, an errno... */
	char msg[ERR_MSG_MAX];   /* human-readable, never holds a secret */
};

/* Formats into e->msg (when e is not NULL) and returns -1. */
int err_set(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Same, and sets e->code. */
int err_setc(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct errlist {
	char **msgs;
	size_t n, cap;
};

#define ERRLIST_INIT {0}

/* Appends a formatted message; returns -1 so callers can `return errlist_add(...)`. */
int errlist_add(struct errlist *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void errlist_free(struct errlist *l);

#endif
