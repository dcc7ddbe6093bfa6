#include "core/buf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_FIRST 64 /* the first allocation, unless more is needed */

void buf_init(struct buf *b, size_t max)
{
	/* keeps the doubling in buf_reserve from wrapping */
	if (max > SIZE_MAX / 4)
		max = SIZE_MAX / 4;
	*b = (struct buf){ .max = max };
}

size_t buf_room(const struct buf *b)
{
	return b->max - b->len;
}

int buf_error(const struct buf *b)
{
	return b->error;
}

static int fail(struct buf *b, int code)
{
	b->error = code;
	return code;
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (b->error)
		return b->error;
	if (n > b->max - b->len)
		return fail(b, ERR_TOOLARGE);
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : BUF_FIRST;
	while (cap < need)
		cap *= 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	p = realloc(b->p, cap);
	if (!p)
		return fail(b, ERR_NOMEM);
	b->p = p;
	b->cap = cap;
	return 0;
}

void buf_commit(struct buf *b, size_t n)
{
	assert(b->p && b->len + n < b->cap);
	b->len += n;
	b->p[b->len] = '\0';
}

int buf_add(struct buf *b, const void *data, size_t n)
{
	int rc = buf_reserve(b, n);

	if (rc)
		return rc;
	if (n)
		memcpy(b->p + b->len, data, n);
	buf_commit(b, n);
	return 0;
}

int buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n, rc;

	if (b->error)
		return b->error;
	/* Try in what is allocated already; measure when it does not fit. */
	va_copy(again, ap);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
	if (n < 0) {
		va_end(again);
		return fail(b, ERR_NOMEM); /* EOVERFLOW or ENOMEM */
	}
	if (b->p && (size_t)n < b->cap - b->len) {
		va_end(again);
		buf_commit(b, (size_t)n);
		return 0;
	}
	if (b->p)
		b->p[b->len] = '\0'; /* undo the partial write */
	if ((rc = buf_reserve(b, (size_t)n)) == 0) {
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, again);
		buf_commit(b, (size_t)n);
	}
	va_end(again);
	return rc;
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *p = b->p ? b->p : calloc(1, 1);

	if (len)
		*len = b->p ? b->len : 0;
	b->p = NULL;
	b->len = b->cap = 0;
	b->error = 0;
	return p;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->error = 0;
	if (b->p)
		b->p[0] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->error = 0;
}
