/* redact: masking a URL's secrets for output (redact.h). */
#include "core/redact.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Hosts whose URL path is the credential. */
static const char *const chat_hosts[] = {
	"hooks.slack.com",
	"discord.com",
	"discordapp.com",
	"webhook.office.com",
	"outlook.office.com",
	"chat.googleapis.com",
	NULL,
};

static int ends_with(const char *host, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	if (n < m || strncasecmp(host + n - m, suffix, m) != 0)
		return 0;
	return n == m || host[n - m - 1] == '.';
}

static int chat_host(const char *host, size_t n)
{
	for (const char *const *h = chat_hosts; *h; h++)
		if (ends_with(host, n, *h))
			return 1;
	return 0;
}

struct out {
	char *p;
	size_t len, at;
};

static void put(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n && o->at + 1 < o->len; i++)
		o->p[o->at++] = s[i];
	o->p[o->at] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* name=***&name=***: the names stay, every value goes. */
static void query(struct out *o, const char *q, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;
		while (j < n && q[j] != '&' && q[j] != '=')
			j++;
		put(o, q + i, j - i);
		if (j < n && q[j] == '=') {
			puts_(o, "=" REDACT_MASK);
			while (j < n && q[j] != '&')
				j++;
		}
		if (j < n) {
			put(o, "&", 1);
			j++;
		}
		i = j;
	}
}

void redact_url(const char *url, char *out, size_t len)
{
	struct out o = { out, len, 0 };
	const char *scheme_end = strstr(url, "://");

	if (!len)
		return;
	out[0] = '\0';
	if (!scheme_end || scheme_end == url) {
		puts_(&o, REDACT_MASK);
		return;
	}
	const char *auth = scheme_end + 3;
	size_t alen = strcspn(auth, "/?#");
	const char *at = memchr(auth, '@', alen);
	put(&o, url, (size_t)(auth - url));
	if (at) {
		/* the last '@' ends the userinfo: a password may hold one */
		for (const char *p = at; p < auth + alen; p++)
			if (*p == '@')
				at = p;
		puts_(&o, REDACT_MASK "@");
		auth = at + 1;
		alen = strcspn(auth, "/?#");
	}
	size_t hlen = strcspn(auth, ":/?#");
	if (hlen > alen)
		hlen = alen;
	put(&o, auth, alen);
	const char *path = auth + alen;
	size_t plen = strcspn(path, "?#");
	if (chat_host(auth, hlen) && plen > 1)
		puts_(&o, "/" REDACT_MASK);
	else
		put(&o, path, plen);
	const char *rest = path + plen;
	if (*rest == '?') {
		size_t qlen = strcspn(rest + 1, "#");
		put(&o, "?", 1);
		query(&o, rest + 1, qlen);
		rest += 1 + qlen;
	}
	if (*rest == '#')
		puts_(&o, "#" REDACT_MASK);
}

int redact_header_is_secret(const char *name)
{
	static const char *const words[] = { "auth",      "key",      "token",  "secret",
					     "signature", "password", "cookie", NULL };
	char low[128];
	size_t i;

	for (i = 0; name[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[i] = '\0';
	for (const char *const *w = words; *w; w++)
		if (strstr(low, *w))
			return 1;
	return 0;
}
