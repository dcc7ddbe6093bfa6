/*
 * api_auth: who may use the operator API (/api/v1/) and console (/ui/).
 *
 * The rule is /metrics' (loopback, or Authorization: Bearer
 * <http.admin_token>), plus a browser session:
 *
 *   - loopback client: allowed while http.admin_trust_loopback is true
 *     (the default); with false it needs the token like anyone else (a
 *     local reverse proxy makes every client loopback);
 *   - Authorization: Bearer <http.admin_token>: allowed (compared in
 *     constant time; no token configured = no bearer access);
 *   - Cookie rb_session=<id> of a live session made by POST
 *     /api/v1/login with the token: allowed.
 *
 * State-changing requests (every POST but login) must in addition prove
 * they come from the console and not from a cross-site page: the Bearer
 * header proves it by itself; a session cookie needs X-CSRF-Token equal to
 * its session's CSRF token; a trusted loopback client without a cookie
 * needs X-CSRF-Token equal to the process's loopback CSRF token.  Both are
 * what GET /api/v1/session returns, which a cross-site page cannot read
 * (no CORS, SameSite=Strict cookie).
 *
 * Sessions live in memory only (a restart signs everyone out), at most
 * API_SESSIONS_MAX of them (the least recently used is dropped), each
 * expiring after API_SESSION_IDLE_S seconds without a request.
 */
#ifndef RB_API_API_AUTH_H
#define RB_API_API_AUTH_H

#include <stddef.h>

struct mg_connection;
struct config;

#define API_SESSIONS_MAX   256
#define API_SESSION_IDLE_S (12 * 3600)
#define API_SESSION_COOKIE "rb_session"

/* Header lines (each ending in \r\n) every API and console answer
 * carries; pass them as http_reply's extra. */
#define API_SECURITY_HEADERS                                                      \
	"Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n" \
	"X-Content-Type-Options: nosniff\r\n"                                     \
	"Referrer-Policy: no-referrer\r\n"

/* How a request was let in. */
enum api_via { API_VIA_NONE = 0, API_VIA_LOOPBACK, API_VIA_BEARER, API_VIA_COOKIE };

/* Once at start, before the server answers (random loopback CSRF token,
 * the session table).  -1 when no randomness is available. */
int api_auth_init(void);
/* Drops every session (at shutdown; tests). */
void api_auth_cleanup(void);

/*
 * 1 when the request may go on, 0 when it must be refused with 401 (why
 * says why, a constant-like sentence fit for {"error": ...}, cut to len).
 * state_changing: 1 for a request that changes state (then the CSRF rule
 * above applies), 0 for reads.  Touches the session (idle timer).  Safe
 * from any request thread.  The /ui/ handler calls it too.
 */
int api_auth_allowed(struct mg_connection *c, const struct config *cfg, int state_changing,
		     char *why, size_t len);

/* How c would be let in for a read (API_VIA_NONE: not at all); the CSRF
 * token that goes with it is written to csrf (at least 65 bytes) when
 * allowed.  For GET /api/v1/session. */
enum api_via api_auth_via(struct mg_connection *c, const struct config *cfg, char *csrf,
			  size_t csrf_len);

/* "loopback", "bearer", "cookie" or "none". */
const char *api_via_name(enum api_via via);

/* 1 when token is http.admin_token (constant time; 0 when none is set). */
int api_auth_token_ok(const struct config *cfg, const char *token);

/* A new session: its id (64 hex) into id, at least 65 bytes.  -1 when
 * out of randomness. */
int api_session_new(char *id, size_t len);

/* Ends the session named by c's rb_session cookie, if any. */
void api_session_end(struct mg_connection *c);

#endif
