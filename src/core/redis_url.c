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
int redis_url_parse(const char *url, struct redis_addr *a, const char **why)
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

/* ---- redacting ----------------------------------------------------------- */

/*
 * A URL for messages is built from what is safe to show, whatever the text:
 * it was refused because it is malformed, so the password may stand
 * anywhere.  What may hold a secret is written "***": everything before the
 * last '@' (after the scheme), what follows a ':' that starts the authority
 * when there is no '@' ("redis://:secret"), and what is not a number where
 * the port and database stand ("redis://h:secret").  The scheme (when a "//" follows it),
 * the host and numbers stay: "rediss://:***@host:6379/0".
 */

static void put(char *buf, size_t len, size_t *used, const char *s, size_t n)
{
	if (*used + 1 >= len)
		return;
	if (n > len - 1 - *used)
		n = len - 1 - *used;
	memcpy(buf + *used, s, n);
	*used += n;
	buf[*used] = '\0';
}

/* host, then the rest (the port, the database) with each piece between
 * ':' and '/' that is not all digits written "***". */
static void put_hostpart(char *buf, size_t len, size_t *used, const char *p)
{
	size_t n = *p == '[' ? strcspn(p, "]") : strcspn(p, ":/");

	if (*p == '[' && p[n] == ']')
		n++;
	put(buf, len, used, p, n);
	for (p += n; *p; p += n) {
		if (*p == ':' || *p == '/') {
			put(buf, len, used, p, n = 1);
			continue;
		}
		n = strcspn(p, ":/");
		if (strspn(p, "0123456789") >= n)
			put(buf, len, used, p, n);
		else
			put(buf, len, used, "***", 3);
	}
}

const char *redis_url_redact(const char *url, char *buf, size_t len)
{
	/* the scheme's letters, then its separator as written ("://", "//:") */
	size_t scheme = strspn(url, "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
	size_t sep = strspn(url + scheme, ":/");
	const char *p, *at;
	size_t used = 0;

	/* "secret:x@h" has no scheme: one needs a "//" after it */
	if (!scheme || !memmem(url + scheme, sep, "//", 2))
		scheme = sep = 0;
	p = url + scheme + sep;
	at = strrchr(p, '@');
	if (len == 0)
		return "";
	buf[0] = '\0';
	put(buf, len, &used, url, scheme + sep);
	if (at) {
		if (sep && url[scheme + sep - 1] == ':')
			put(buf, len, &used, "***@", 4);
		else
			put(buf, len, &used, ":***@", 5);
		p = at + 1;
	} else if (sep && url[scheme + sep - 1] == ':' && *p) {
		/* "redis://:secret": a password with its '@' and host missing */
		put(buf, len, &used, "***", 3);
		return buf;
	}
	put_hostpart(buf, len, &used, p);
	return buf;
}
