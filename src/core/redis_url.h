/* redis_url: parsing and redacting Redis URLs (see redis_url.c). */
#ifndef RB_CORE_REDIS_URL_H
#define RB_CORE_REDIS_URL_H

#include <stddef.h>

#define REDIS_URL_FORM "redis://[:password@]host[:port][/db]"

struct redis_addr {
	char host[256];
	char password[512];
	int port, db;
};

/* Fills a from url (port 6379 and db 0 by default).  On failure returns -1
 * and *why completes "expected REDIS_URL_FORM...". */
int redis_url_parse(const char *url, struct redis_addr *a, const char **why);

/* The URL for messages (in buf, cut to len), whatever url holds: anything
 * that may be a password, even in a malformed URL, is written "***";
 * "redis://:***@host:6379/0".  Returns buf. */
const char *redis_url_redact(const char *url, char *buf, size_t len);

#endif
