/* reply: one way to answer over HTTP (reply.h). */
#include "http/reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <civetweb.h>
#include <json-c/json.h>

#include "http/pool.h"

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

const char *http_reply_closing(struct mg_connection *c, const char *extra)
{
	if (strstr(extra, "Connection: close")) {
		mg_disable_connection_keep_alive(c);
		return "";
	}
	if (!pool_nearly_full())
		return "";
	mg_disable_connection_keep_alive(c);
	return "Connection: close\r\n";
}

int http_reply(struct mg_connection *c, int status, const char *extra, const char *body)
{
	size_t blen = strlen(body);
	size_t cap = blen + strlen(extra) + 256;
	char *buf = malloc(cap);
	if (!buf)
		return 500;
	int n = snprintf(buf, cap,
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: application/json\r\n"
			 "Content-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n"
			 "%s%s\r\n%s",
			 status, http_reason(status), blen, extra, http_reply_closing(c, extra),
			 body);
	mg_write(c, buf, (size_t)n);
	free(buf);
	return status;
}

int http_reply_error(struct mg_connection *c, int status, const char *extra, const char *msg)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(msg));
	http_reply(c, status, extra,
		   json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return status;
}
