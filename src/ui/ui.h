/*
 * ui: the operator console, GET /ui/.
 *
 * Three files of src/ui/ (index.html, console.css, console.js) are
 * compiled into the binary as byte arrays (src/ui/embed.cmake writes
 * generated/ui_assets.h at build time) and served from memory:
 *
 *   GET /ui                  301 to /ui/
 *   GET /ui/                 index.html      text/html
 *   GET /ui/console.css      console.css     text/css
 *   GET /ui/console.js       console.js      text/javascript
 *
 * HEAD works too; other methods get 405.  Every answer carries the API's
 * security headers (API_SECURITY_HEADERS: a CSP of default-src 'self', so
 * the page runs no inline script or style, nosniff, no referrer), an ETag
 * made from the file's hash and Cache-Control: no-cache, so a browser
 * revalidates (304) and a new binary's console is never served stale.
 *
 * The page holds no data: everything it shows comes from /api/v1/, which
 * checks every request.  Access follows the API's rule (api_auth.h): a
 * client the API lets in gets the console; one it does not gets it too
 * when a sign-in is possible (http.admin_token is set: the page shows the
 * sign-in form), and 401 otherwise, as /api/v1/ would answer.
 */
#ifndef RB_UI_UI_H
#define RB_UI_UI_H

struct mg_context;
struct config;

/* The exact paths the console answers, NULL-terminated: the server lets
 * them through its path filter (framing_add_path) before it starts. */
extern const char *const ui_paths[];

/* Adds the console's request handlers to ctx; call it before a catch-all
 * "/" handler (civetweb takes the first that matches).  cfg must outlive
 * ctx. */
void ui_register(struct mg_context *ctx, const struct config *cfg);

#endif
