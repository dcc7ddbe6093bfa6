/*
 * ui: serves the console's three files from memory (ui.h).  Each answer
 * is one mg_write of head and body (civetweb sends a packet per header
 * line otherwise); the buffer is on the heap, as worker stacks are small.
 */
#include "ui/ui.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>

#include "api/api_auth.h"
#include "core/config.h"
#include "http/reply.h"
#include "ui_assets.h"

struct ui_asset {
	const char *path; /* exact request path */
	const char *type; /* Content-Type */
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted, as sent */
};

/* clang-format off */
static const struct ui_asset assets[] = {
	{ "/ui/", "text/html; charset=utf-8",
	  ui_asset_index_html, sizeof(ui_asset_index_html), UI_ASSET_INDEX_HTML_ETAG },
	{ "/ui/console.css", "text/css; charset=utf-8",
	  ui_asset_console_css, sizeof(ui_asset_console_css), UI_ASSET_CONSOLE_CSS_ETAG },
	{ "/ui/console.js", "text/javascript; charset=utf-8",
	  ui_asset_console_js, sizeof(ui_asset_console_js), UI_ASSET_CONSOLE_JS_ETAG },
};
/* clang-format on */

/* What a handler needs: its file and the config (for the access rule).
 * One server per process, so one table. */
struct ui_route {
	const struct ui_asset *asset; /* NULL: the /ui redirect */
	const struct config *cfg;
};

#define UI_ASSETS (sizeof(assets) / sizeof(assets[0]))
static struct ui_route routes[UI_ASSETS + 1];

const char *const ui_paths[] = { "/ui", "/ui/", "/ui/console.css", "/ui/console.js", NULL };

#define UI_HEAD_MAX 1024

/* Status line and headers common to every console answer, then extra. */
static int ui_head(char *out, size_t cap, const char *status, const char *extra)
{
	int n = snprintf(out, cap,
			 "HTTP/1.1 %s\r\n"
			 "X-Frame-Options: DENY\r\n" API_SECURITY_HEADERS "%s\r\n",
			 status, extra);
	return n > 0 && (size_t)n < cap ? n : -1;
}

static int ui_send(struct mg_connection *c, int code, const char *status, const char *extra,
		   const unsigned char *body, size_t len)
{
	char *buf = malloc(UI_HEAD_MAX + len);
	int n;

	if (!buf)
		return http_reply_error(c, 503, "", "out of memory");
	if ((n = ui_head(buf, UI_HEAD_MAX, status, extra)) < 0) {
		free(buf);
		return http_reply_error(c, 500, "", "header too long");
	}
	if (len)
		memcpy(buf + n, body, len);
	mg_write(c, buf, (size_t)n + len);
	free(buf);
	return code;
}

/* 1 when the request may have the console (see ui.h). */
static int ui_allowed(struct mg_connection *c, const struct config *cfg, char *why, size_t len)
{
	if (api_auth_allowed(c, cfg, 0, why, len))
		return 1;
	return cfg->admin_token && cfg->admin_token[0];
}

static int ui_method_ok(struct mg_connection *c, int *head)
{
	const char *m = mg_get_request_info(c)->request_method;

	*head = strcmp(m, "HEAD") == 0;
	return *head || strcmp(m, "GET") == 0;
}

static int ui_refused(struct mg_connection *c, const struct config *cfg, int *head)
{
	char why[160] = "sign in first";

	if (!ui_method_ok(c, head))
		return http_reply_error(c, 405, "Allow: GET, HEAD\r\n" API_SECURITY_HEADERS,
					"the console answers GET and HEAD only");
	if (!ui_allowed(c, cfg, why, sizeof(why)))
		return http_reply_error(c, 401, API_SECURITY_HEADERS, why);
	return 0;
}

static int ui_serve(struct mg_connection *c, void *cbdata)
{
	const struct ui_route *rt = cbdata;
	const struct ui_asset *a = rt->asset;
	const char *inm = mg_get_header(c, "If-None-Match");
	char extra[256];
	int head, refused = ui_refused(c, rt->cfg, &head);

	if (refused)
		return refused;
	if (inm && strstr(inm, a->etag)) {
		snprintf(extra, sizeof(extra), "ETag: %s\r\nCache-Control: no-cache\r\n", a->etag);
		return ui_send(c, 304, "304 Not Modified", extra, NULL, 0);
	}
	snprintf(extra, sizeof(extra),
		 "Content-Type: %s\r\nContent-Length: %zu\r\nETag: %s\r\n"
		 "Cache-Control: no-cache\r\n",
		 a->type, a->len, a->etag);
	return ui_send(c, 200, "200 OK", extra, a->data, head ? 0 : a->len);
}

static int ui_redirect(struct mg_connection *c, void *cbdata)
{
	const struct ui_route *rt = cbdata;
	int head, refused = ui_refused(c, rt->cfg, &head);

	if (refused)
		return refused;
	return ui_send(c, 301, "301 Moved Permanently",
		       "Location: /ui/\r\nContent-Length: 0\r\nCache-Control: no-cache\r\n", NULL, 0);
}

void ui_register(struct mg_context *ctx, const struct config *cfg)
{
	routes[0] = (struct ui_route){ .asset = NULL, .cfg = cfg };
	mg_set_request_handler(ctx, "/ui$", ui_redirect, &routes[0]);
	for (size_t i = 0; i < UI_ASSETS; i++) {
		char uri[64];
		routes[i + 1] = (struct ui_route){ .asset = &assets[i], .cfg = cfg };
		snprintf(uri, sizeof(uri), "%s$", assets[i].path);
		mg_set_request_handler(ctx, uri, ui_serve, &routes[i + 1]);
	}
}
