/*
 * buf: the one growable byte buffer (curl's dynbuf).
 *
 * Every buffer whose size a peer, a file or a hook can drive is a struct buf
 * with a hard cap fixed at buf_init: nothing grows without bound, and the
 * one way to hit the cap is ERR_TOOLARGE.  The contents are always
 * NUL-terminated once anything was added, so text can be used as a string.
 *
 * Errors are sticky: after the first failed add (ERR_TOOLARGE or ERR_NOMEM)
 * every later add fails with the same code and the contents stay as they
 * were before it, so a writer of many small pieces checks once, at the end
 * (buf_error).  A failed add appends nothing: a caller that wants to keep
 * what fits (hook output, response bodies) asks buf_room first.
 */
#ifndef RB_CORE_BUF_H
#define RB_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/err.h"

struct buf {
	char *p;    /* the bytes, NUL-terminated; NULL until the first add */
	size_t len; /* bytes in p, without the NUL */
	size_t cap; /* bytes allocated at p, at most max + 1 */
	size_t max; /* len never passes this; fixed at buf_init */
	int error;  /* 0, or the first failure (ERR_TOOLARGE, ERR_NOMEM) */
};

/* An empty buffer that will hold at most max bytes (SIZE_MAX / 4 at most:
 * more is taken as that).  Allocates nothing. */
void buf_init(struct buf *b, size_t max);

/* Appends n bytes: 0, ERR_TOOLARGE when len + n would pass max, or
 * ERR_NOMEM.  On failure nothing is appended and the error is kept. */
int buf_add(struct buf *b, const void *data, size_t n);

/* buf_add of a NUL-terminated string. */
int buf_adds(struct buf *b, const char *s);

/* Appends printf output, all of it or nothing; returns as buf_add. */
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/*
 * Makes room for n more bytes without adding them, for a reader that
 * writes in place (fread, mg_read): at least n bytes, in fact
 * cap - len - 1, are writable at p + len; buf_commit then counts what was
 * written.  Returns as buf_add.
 */
int buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);

/* Bytes that can still be added before the cap. */
size_t buf_room(const struct buf *b);

/* 0, or the sticky error of the first failed add. */
int buf_error(const struct buf *b);

/*
 * Hands the contents to the caller (free them; "" when nothing was added)
 * and leaves b empty with the same cap and no error.  NULL only when the
 * empty string cannot be allocated.  *len (when len is not NULL) gets the
 * length.
 */
char *buf_detach(struct buf *b, size_t *len);

/* Empties b, keeps its memory and cap, clears the error. */
void buf_reset(struct buf *b);

/* Frees the contents; b is empty afterwards (and may be reused). */
void buf_free(struct buf *b);

#endif
