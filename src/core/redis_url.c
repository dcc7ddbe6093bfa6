/*
 * redis_url: redis://[:password@]host[:port][/db], parsed strictly so that
 * a typo is a config error with its position rather than a connection that
 * never works.
 */
#include "core/redis_url.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/* Digits only, within [lo, hi]; *p moves past them. */
static int url_number(const char **p, long lo, long hi, int *out)
{
	const char *s = *p;
	long v = 0;

	while (isdigit((unsigned char)*s) && v <= hi)
		v = v * 10 + (*s++ - '0');
	if (s == *p || isdigit((unsigned char)*s) || v < lo || v > hi)
		return -1;
	*p = s;
	*out = (int)v;
	return 0;
}

static int url_host(const char **p, struct redis_addr *a)
{
	const char *s = *p, *end;

	if (*s == '[') {
		if (!(end = strchr(++s, ']')))
			return -1;
		*p = end + 1;
	} else {
		end = s + strcspn(s, ":/");
		*p = end;
	}
	size_t n = (size_t)(end - s);
	if (n == 0 || n >= sizeof(a->host) || strcspn(s, " \t@[]") < n)
		return -1;
	memcpy(a->host, s, n);
	a->host[n] = '\0';
	return 0;
}

/* Fills a from url; on failure *why completes "expected <form>...". */
int redis_url_parse(const char *url, struct redis_addr *a,
			   const char **why)
{
	const char *p = url + 8, *at;

	memset(a, 0, sizeof(*a));
	a->port = 6379;
	*why = "";
	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	if ((at = strrchr(p, '@'))) {
		size_t n = (size_t)(at - p);
		if (*p != ':' || n > sizeof(a->password)) {
			*why = " (a password only, no user name)";
			return -1;
		}
		memcpy(a->password, p + 1, n - 1);
		p = at + 1;
	}
	if (url_host(&p, a) < 0) {
		*why = " with a host name";
		return -1;
	}
	if (*p == ':' && (p++, url_number(&p, 1, 65535, &a->port) < 0)) {
		*why = " with a port between 1 and 65535";
		return -1;
	}
	if (*p == '/' && p[1] && (p++, url_number(&p, 0, INT_MAX, &a->db) < 0)) {
		*why = " with a database number after '/'";
		return -1;
	}
	if (*p == '/' && !p[1])
		p++;
	if (*p) {
		*why = " with nothing after the database number";
		return -1;
	}
	return 0;
}

/* The URL for messages, password hidden. */
const char *redis_url_redact(const char *url, char *buf, size_t len)
{
	const char *at = strrchr(url, '@');

	if (!at || strncmp(url, "redis://", 8) != 0)
		return url;
	snprintf(buf, len, "redis://:***%s", at);
	return buf;
}

