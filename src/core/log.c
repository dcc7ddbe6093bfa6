#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static int json_format;

static const char *level_names[] = { "debug", "info", "warn", "error" };

int log_set_level(const char *name)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			min_level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_set_format(const char *name)
{
	if (strcmp(name, "text") == 0)
		json_format = 0;
	else if (strcmp(name, "json") == 0)
		json_format = 1;
	else
		return -1;
	return 0;
}

int log_enabled(enum log_level lvl)
{
	return lvl >= min_level;
}

/* A bounded line builder: output past the cap is cut, never overflowed. */
struct line {
	char buf[4096];
	size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
	size_t room = sizeof(l->buf) - 2 - l->len; /* keep room for "\n\0" */
	if (n > room)
		n = room;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* JSON string escaping; in text mode, control characters become spaces. */
static void put_escaped(struct line *l, const char *s, int json)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char tmp[8];
		if (json && (c == '"' || c == '\\')) {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			put(l, tmp, 2);
		} else if (c < 0x20) {
			if (json) {
				snprintf(tmp, sizeof(tmp), "\\u%04x", c);
				put(l, tmp, 6);
			} else {
				put(l, " ", 1);
			}
		} else {
			put(l, (const char *)&c, 1);
		}
	}
}

static void put_time(struct line *l)
{
	struct timespec ts;
	struct tm tm;
	char tmp[40];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(tmp + n, sizeof(tmp) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	puts_(l, tmp);
}

static void vlog_kv(enum log_level lvl, const char *msg, va_list ap)
{
	struct line l;
	const char *k, *v;

	l.len = 0;
	if (json_format) {
		puts_(&l, "{\"ts\":\"");
		put_time(&l);
		puts_(&l, "\",\"level\":\"");
		puts_(&l, level_names[lvl]);
		puts_(&l, "\",\"msg\":\"");
		put_escaped(&l, msg, 1);
		puts_(&l, "\"");
	} else {
		put_time(&l);
		puts_(&l, " ");
		puts_(&l, level_names[lvl]);
		puts_(&l, " ");
		put_escaped(&l, msg, 0);
	}
	while ((k = va_arg(ap, const char *)) != NULL) {
		v = va_arg(ap, const char *);
		if (!v)
			continue;
		if (json_format) {
			puts_(&l, ",\"");
			put_escaped(&l, k, 1);
			puts_(&l, "\":\"");
			put_escaped(&l, v, 1);
			puts_(&l, "\"");
		} else {
			puts_(&l, " ");
			puts_(&l, k);
			puts_(&l, "=");
			int quote = strchr(v, ' ') != NULL || *v == '\0';
			if (quote)
				puts_(&l, "\"");
			put_escaped(&l, v, 0);
			if (quote)
				puts_(&l, "\"");
		}
	}
	if (json_format)
		puts_(&l, "}");
	l.buf[l.len++] = '\n';
	ssize_t r = write(STDERR_FILENO, l.buf, l.len);
	(void)r;
}

void log_kv(enum log_level lvl, const char *msg, ...)
{
	va_list ap;
	if (!log_enabled(lvl))
		return;
	va_start(ap, msg);
	vlog_kv(lvl, msg, ap);
	va_end(ap);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_kv(lvl, buf, (const char *)NULL);
}
