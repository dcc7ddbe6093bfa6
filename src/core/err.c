#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int err_set(struct err *e, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		e->code = ERR_FAIL;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return ERR_FAIL;
}

int err_setc(struct err *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

int errlist_add(struct errlist *l, const char *fmt, ...)
{
	char buf[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **m = realloc(l->msgs, cap * sizeof(*m));
		if (!m)
			return -1;
		l->msgs = m;
		l->cap = cap;
	}
	l->msgs[l->n] = strdup(buf);
	if (l->msgs[l->n])
		l->n++;
	return -1;
}

void errlist_free(struct errlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->msgs[i]);
	free(l->msgs);
	l->msgs = NULL;
	l->n = l->cap = 0;
}
