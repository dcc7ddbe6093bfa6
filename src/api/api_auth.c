/*
 * api_auth: the access rule, browser sessions and CSRF tokens (api_auth.h).
 *
 * Session ids and CSRF tokens are 32 random bytes from getrandom(2), in
 * hex.  Every comparison with a secret runs in constant time (nettle's
 * memeql_sec over SHA-256 digests, as the webhook secret check does), and
 * a session is looked up by comparing with every slot, so a probe learns
 * nothing from timing.
 *
 * Trusted loopback is "the client address is loopback and the Host header
 * names a loopback host": a page of another site that a DNS rebinding
 * points at 127.0.0.1 sends its own host name and is refused, so it can
 * neither read the API nor learn the loopback CSRF token.
 */
#include "api/api_auth.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <civetweb.h>
#include <nettle/memops.h>
#include <nettle/sha2.h>

#include "core/clock.h"
#include "core/config.h"

struct session {
	char id[65]; /* "" = free slot */
	char csrf[65];
	long long last_ms; /* monotonic */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct session sessions[API_SESSIONS_MAX];
static char loopback_csrf[65];

static int random_hex(char *out, size_t len)
{
	unsigned char b[32];
	size_t got = 0;

	if (len < 65)
		return -1;
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

int api_auth_init(void)
{
	pthread_mutex_lock(&mu);
	int rc = loopback_csrf[0] ? 0 : random_hex(loopback_csrf, sizeof(loopback_csrf));
	pthread_mutex_unlock(&mu);
	return rc;
}

void api_auth_cleanup(void)
{
	pthread_mutex_lock(&mu);
	memset(sessions, 0, sizeof(sessions));
	pthread_mutex_unlock(&mu);
}

static int same_secret(const char *given, const char *want)
{
	uint8_t a[SHA256_DIGEST_SIZE], b[SHA256_DIGEST_SIZE];
	struct sha256_ctx c;

	sha256_init(&c);
	sha256_update(&c, strlen(given), (const uint8_t *)given);
	sha256_digest(&c, sizeof(a), a);
	sha256_init(&c);
	sha256_update(&c, strlen(want), (const uint8_t *)want);
	sha256_digest(&c, sizeof(b), b);
	return memeql_sec(a, b, sizeof(a));
}

int api_auth_token_ok(const struct config *cfg, const char *token)
{
	return cfg->admin_token && cfg->admin_token[0] && token &&
	       same_secret(token, cfg->admin_token);
}

static int bearer_ok(struct mg_connection *c, const struct config *cfg)
{
	const char *auth = mg_get_header(c, "Authorization");

	return auth && strncmp(auth, "Bearer ", 7) == 0 && api_auth_token_ok(cfg, auth + 7);
}

/* "127.0.0.1", "127.0.0.1:8080", "localhost:8080", "[::1]:8080". */
static int host_is_loopback(const char *host)
{
	size_t n;

	if (!host)
		return 1; /* HTTP/1.0 without Host: no browser sends that */
	if (strncmp(host, "[::1]", 5) == 0)
		return host[5] == '\0' || host[5] == ':';
	n = strcspn(host, ":");
	if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
		return 1;
	if (strncmp(host, "127.", 4) != 0)
		return 0;
	for (size_t i = 4; i < n; i++)
		if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9')))
			return 0;
	return 1;
}

static int loopback_trusted(struct mg_connection *c, const struct config *cfg)
{
	const char *addr = mg_get_request_info(c)->remote_addr;

	if (!cfg->admin_trust_loopback)
		return 0;
	if (strncmp(addr, "127.", 4) != 0 && strcmp(addr, "::1") != 0)
		return 0;
	return host_is_loopback(mg_get_header(c, "Host"));
}

/* The slot of c's session cookie, touched, or -1.  Called with mu held. */
static int session_find_locked(struct mg_connection *c)
{
	const char *cookies = mg_get_header(c, "Cookie");
	char id[80];
	long long now = clock_mono_ms();
	int found = -1;

	if (!cookies || mg_get_cookie(cookies, API_SESSION_COOKIE, id, sizeof(id)) != 64)
		return -1;
	for (int i = 0; i < API_SESSIONS_MAX; i++) {
		struct session *s = &sessions[i];
		if (!s->id[0])
			continue;
		if (now - s->last_ms > (long long)API_SESSION_IDLE_S * 1000) {
			memset(s, 0, sizeof(*s));
			continue;
		}
		if (same_secret(id, s->id))
			found = i;
	}
	if (found >= 0)
		sessions[found].last_ms = now;
	return found;
}

enum api_via api_auth_via(struct mg_connection *c, const struct config *cfg, char *csrf,
			  size_t csrf_len)
{
	enum api_via via = API_VIA_NONE;

	pthread_mutex_lock(&mu);
	int slot = session_find_locked(c);
	if (slot >= 0) {
		via = API_VIA_COOKIE;
		snprintf(csrf, csrf_len, "%s", sessions[slot].csrf);
	}
	pthread_mutex_unlock(&mu);
	if (via != API_VIA_NONE)
		return via;
	if (bearer_ok(c, cfg)) {
		snprintf(csrf, csrf_len, "%s", ""); /* the header is the proof */
		return API_VIA_BEARER;
	}
	if (loopback_trusted(c, cfg)) {
		snprintf(csrf, csrf_len, "%s", loopback_csrf);
		return API_VIA_LOOPBACK;
	}
	return API_VIA_NONE;
}

const char *api_via_name(enum api_via via)
{
	switch (via) {
	case API_VIA_LOOPBACK: return "loopback";
	case API_VIA_BEARER: return "bearer";
	case API_VIA_COOKIE: return "cookie";
	case API_VIA_NONE: break;
	}
	return "none";
}

int api_auth_allowed(struct mg_connection *c, const struct config *cfg, int state_changing,
		     char *why, size_t len)
{
	char csrf[80];
	enum api_via via = api_auth_via(c, cfg, csrf, sizeof(csrf));
	const char *given = mg_get_header(c, "X-CSRF-Token");

	if (via == API_VIA_NONE) {
		snprintf(why, len, "%s",
			 cfg->admin_trust_loopback
				 ? "sign in: a loopback client, Authorization: Bearer "
				   "<http.admin_token> or a session (POST /api/v1/login)"
				 : "sign in: Authorization: Bearer <http.admin_token> or a "
				   "session (POST /api/v1/login)");
		return 0;
	}
	if (!state_changing || via == API_VIA_BEARER)
		return 1;
	if (!given || !given[0] || !same_secret(given, csrf)) {
		snprintf(why, len, "%s",
			 "missing or wrong X-CSRF-Token (GET /api/v1/session gives it)");
		return 0;
	}
	return 1;
}

int api_session_new(char *id, size_t len)
{
	int oldest = 0;

	pthread_mutex_lock(&mu);
	for (int i = 0; i < API_SESSIONS_MAX; i++) {
		if (!sessions[i].id[0]) {
			oldest = i;
			break;
		}
		if (sessions[i].last_ms < sessions[oldest].last_ms)
			oldest = i;
	}
	struct session *s = &sessions[oldest];
	int rc = random_hex(s->id, sizeof(s->id));
	if (rc == 0)
		rc = random_hex(s->csrf, sizeof(s->csrf));
	if (rc == 0) {
		s->last_ms = clock_mono_ms();
		snprintf(id, len, "%s", s->id);
	} else {
		memset(s, 0, sizeof(*s));
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void api_session_end(struct mg_connection *c)
{
	pthread_mutex_lock(&mu);
	int slot = session_find_locked(c);
	if (slot >= 0)
		memset(&sessions[slot], 0, sizeof(sessions[slot]));
	pthread_mutex_unlock(&mu);
}
