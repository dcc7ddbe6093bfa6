/*
 * responder: the reference the benchmark compares runbridge against.
 *
 * A bare civetweb + json-c server: for any POST it reads the body onto the
 * heap, parses it with json-c, and answers 202 with a small JSON body in one
 * mg_write (civetweb sends a packet per header line otherwise).  Keep-alive
 * on and tcp_nodelay=1, as the platform notes require; nothing is stored,
 * nothing is forwarded.  This is the ceiling for a civetweb + json-c server
 * on this machine: runbridge does the same plus durable storage and routing.
 *
 * usage: responder PORT [THREADS]   (binds 127.0.0.1:PORT only)
 * Build: cc -O2 -o responder responder.c -lcivetweb -ljson-c
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <civetweb.h>
#include <json-c/json.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void reply(struct mg_connection *c, int status, const char *reason,
		  const char *body)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: application/json\r\n"
			 "Content-Length: %zu\r\n"
			 "Cache-Control: no-store\r\n"
			 "\r\n%s",
			 status, reason, strlen(body), body);
	mg_write(c, buf, (size_t)n);
}

static int handle(struct mg_connection *c, void *cbdata)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	long long declared = ri->content_length;
	size_t cap = declared >= 0 ? (size_t)declared + 1 : 16384, len = 0;
	char *body;

	(void)cbdata;
	if (strcmp(ri->request_method, "POST") != 0) {
		reply(c, 405, "Method Not Allowed", "{\"error\":\"POST only\"}");
		return 405;
	}
	if (declared > 1048576) {
		reply(c, 413, "Payload Too Large", "{\"error\":\"too large\"}");
		return 413;
	}
	if (!(body = malloc(cap)))
		return 500;
	for (;;) {
		if (len == cap - 1) {
			if (declared >= 0 || cap > 1048576)
				break;
			char *nb = realloc(body, cap * 2);
			if (!nb)
				break;
			body = nb;
			cap *= 2;
		}
		int r = mg_read(c, body + len, cap - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	body[len] = '\0';

	json_tokener *tok = json_tokener_new_ex(32);
	json_object *o = tok ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
	int ok = o && json_tokener_get_error(tok) == json_tokener_success &&
		 json_object_is_type(o, json_type_object);
	if (tok)
		json_tokener_free(tok);
	json_object_put(o);
	free(body);
	if (!ok) {
		reply(c, 400, "Bad Request", "{\"error\":\"not a JSON object\"}");
		return 400;
	}
	reply(c, 202, "Accepted",
	      "{\"id\":\"0000000000000000000000000000000000000000000000000000000000000000\","
	      "\"duplicate\":false}");
	return 202;
}

static int handle_healthz(struct mg_connection *c, void *cbdata)
{
	(void)cbdata;
	reply(c, 200, "OK", "{\"status\":\"ok\"}");
	return 200;
}

int main(int argc, char **argv)
{
	char listen[64];
	const char *threads = argc > 2 ? argv[2] : "64";

	if (argc < 2) {
		fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]);
		return 2;
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%s", argv[1]);
	const char *options[] = {
		"listening_ports", listen,
		"num_threads", threads,
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", "30000",
		"tcp_nodelay", "1",
		"request_timeout_ms", "10000",
		NULL,
	};
	struct mg_callbacks cb;
	memset(&cb, 0, sizeof(cb));
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	mg_init_library(0); /* returns 0 on Debian's build, yet works */
	struct mg_context *ctx = mg_start(&cb, NULL, options);
	if (!ctx) {
		fprintf(stderr, "responder: cannot listen on %s\n", listen);
		return 1;
	}
	mg_set_request_handler(ctx, "/healthz$", handle_healthz, NULL);
	mg_set_request_handler(ctx, "/", handle, NULL);
	while (!stop_requested)
		pause();
	mg_stop(ctx);
	mg_exit_library();
	return 0;
}
