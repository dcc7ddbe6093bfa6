/*
 * target_fake_http: a tiny HTTP/1.1 server on a loopback port, for the unit
 * tests of the translated kinds.  It answers requests in order from a
 * script (status, body, optional Retry-After), 200 "{}" when the script is
 * exhausted, and records every request (method, target, Authorization,
 * body).  One connection per request (it answers Connection: close).
 * Answers and requests may be of any size (a request up to FAKE_REQ_MAX).
 * Header-only: each test file includes it once.
 *
 * It also holds the harness that runs a kind's attempts against it: a
 * target_cfg, an attempt whose mapping persists across runs (as the store
 * keeps it), and a save() that records each committed state and can be
 * told to refuse.
 */
#ifndef RB_TESTS_TARGET_FAKE_HTTP_H
#define RB_TESTS_TARGET_FAKE_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAKE_MAX     64
#define FAKE_REQ_MAX (64 << 20) /* bytes of one request, head and body */

struct fake_req {
	char method[16];
	char target[1024]; /* path and query */
	char auth[512];    /* Authorization value, "" if none */
	char ctype[128];   /* Content-Type value */
	char *body;
};

struct fake_answer {
	int status;
	const char *body;
	int retry_after_s; /* > 0: sends Retry-After */
};

struct fake_http {
	int fd, port, stop;
	pthread_t th;
	pthread_mutex_t mu;
	struct fake_answer script[FAKE_MAX];
	size_t n_script, next;
	struct fake_req reqs[FAKE_MAX];
	size_t n_reqs;
};

static void fake_header(const char *head, const char *name, char *out, size_t len)
{
	size_t nl = strlen(name);
	out[0] = '\0';
	for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
			const char *v = p + 3 + nl, *e;
			while (*v == ' ')
				v++;
			e = strstr(v, "\r\n");
			snprintf(out, len, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
			return;
		}
	}
}

/* Sends all of p; 0, or -1 (the client went away: MSG_NOSIGNAL keeps
 * that from killing the test). */
static int fake_send_all(int c, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = send(c, p, len, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Reads one request into a buffer grown as it fills, up to FAKE_REQ_MAX:
 * a larger one is a test's mistake, and aborts it.  Returns the buffer
 * (the head NUL-terminated, then the body; the caller frees it), with
 * *body the body's start and *want its Content-Length; NULL when the
 * client closed before the end of the head. */
static char *fake_read(int c, char **body, long *want)
{
	size_t cap = 64 * 1024, n = 0, head = 0;
	char *buf = malloc(cap + 1), *end = NULL, cl[32];
	ssize_t r;

	if (!buf)
		abort();
	for (;;) {
		if (end && n - head >= (size_t)*want)
			break;
		if (n == cap) {
			if (cap >= FAKE_REQ_MAX) {
				fprintf(stderr, "fake_http: a request over %d bytes\n", FAKE_REQ_MAX);
				abort();
			}
			cap *= 2;
			if (!(buf = realloc(buf, cap + 1)))
				abort();
			if (end)
				end = buf + head - 4;
		}
		if ((r = read(c, buf + n, cap - n)) <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			head = (size_t)(end + 4 - buf);
			/* the head alone: a header-like line in the body is not one */
			end[2] = '\0';
			fake_header(buf, "Content-Length", cl, sizeof(cl));
			end[2] = '\r';
			*want = strtol(cl, NULL, 10);
			if (*want < 0)
				*want = 0;
		}
	}
	if (!end) {
		free(buf);
		return NULL;
	}
	end[2] = '\0';
	*body = end + 4;
	return buf;
}

static void fake_serve(struct fake_http *f, int c)
{
	char head[256], extra[64] = "", *body = NULL, *buf;
	long want = 0;
	int len;

	if (!(buf = fake_read(c, &body, &want)))
		return;
	pthread_mutex_lock(&f->mu);
	struct fake_answer a = { 200, "{}", 0 };
	if (f->next < f->n_script)
		a = f->script[f->next++];
	if (f->n_reqs < FAKE_MAX) {
		struct fake_req *q = &f->reqs[f->n_reqs++];
		sscanf(buf, "%15s %1023s", q->method, q->target);
		fake_header(buf, "Authorization", q->auth, sizeof(q->auth));
		fake_header(buf, "Content-Type", q->ctype, sizeof(q->ctype));
		q->body = strndup(body, (size_t)want);
	}
	pthread_mutex_unlock(&f->mu);

	if (a.retry_after_s > 0)
		snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", a.retry_after_s);
	/* the head is short and bounded; the body goes on its own, whatever its size */
	len = snprintf(head, sizeof(head),
		       "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
		       "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
		       a.status, strlen(a.body), extra);
	if (len < 0 || (size_t)len >= sizeof(head) || fake_send_all(c, head, (size_t)len) < 0 ||
	    fake_send_all(c, a.body, strlen(a.body)) < 0)
		perror("fake_http write");
	free(buf);
}

static void *fake_loop(void *p)
{
	struct fake_http *f = p;
	while (!__atomic_load_n(&f->stop, __ATOMIC_SEQ_CST)) {
		struct pollfd pfd = { f->fd, POLLIN, 0 };
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		int c = accept(f->fd, NULL, NULL);
		if (c < 0)
			continue;
		fake_serve(f, c);
		close(c);
	}
	return NULL;
}

static struct fake_http *fake_start(void)
{
	struct fake_http *f = calloc(1, sizeof(*f));
	struct sockaddr_in sa = { 0 };
	socklen_t sl = sizeof(sa);
	int one = 1;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(f->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(f->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(f->fd, 16) < 0 ||
	    getsockname(f->fd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("fake_http");
		abort();
	}
	f->port = ntohs(sa.sin_port);
	pthread_mutex_init(&f->mu, NULL);
	pthread_create(&f->th, NULL, fake_loop, f);
	return f;
}

/* Queues the next answer. */
static void fake_queue(struct fake_http *f, int status, const char *body, int retry_after_s)
{
	pthread_mutex_lock(&f->mu);
	f->script[f->n_script++] = (struct fake_answer){ status, body, retry_after_s };
	pthread_mutex_unlock(&f->mu);
}

/* Forgets requests and script. */
static void fake_reset(struct fake_http *f)
{
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->n_reqs; i++)
		free(f->reqs[i].body);
	f->n_reqs = f->n_script = f->next = 0;
	pthread_mutex_unlock(&f->mu);
}

static void fake_stop(struct fake_http *f)
{
	__atomic_store_n(&f->stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(f->th, NULL);
	close(f->fd);
	fake_reset(f);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

/* ---- attempts ------------------------------------------------------------ */

#include "core/unconst.h"
#include "targets/target.h"

struct harness {
	struct fake_http *http;
	struct target_cfg cfg;
	struct target_attempt a;
	struct target_outcome out;
	char saves[32][32]; /* the state at each save */
	size_t n_saves;
	size_t fail_save_at; /* 1-based save number to refuse; 0 none */
};

static int h_save(struct target_attempt *a, struct err *err)
{
	struct harness *h = a->save_ctx;

	if (++h->n_saves == h->fail_save_at)
		return err_set(err, "disk full");
	if (h->n_saves <= 32)
		snprintf(h->saves[h->n_saves - 1], sizeof(h->saves[0]), "%s",
			 a->map.state ? a->map.state : "(null)");
	return 0;
}

/* settings: a JSON object text with a %d where the port goes. */
static void h_init(struct harness *h, const char *kind, const char *name, const char *settings_fmt)
{
	char settings[2048];
	struct err e;

	memset(h, 0, sizeof(*h));
	h->http = fake_start();
	/* the tests pass literals with one %d */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(settings, sizeof(settings), settings_fmt, h->http->port);
#pragma GCC diagnostic pop
	h->cfg.kind = RB_UNCONST(kind);
	h->cfg.name = RB_UNCONST(name);
	h->cfg.settings = json_tokener_parse(settings);
	assert_non_null(h->cfg.settings);
	h->a.target = &h->cfg;
	h->a.save = h_save;
	h->a.save_ctx = h;
	h->a.map.data = json_object_new_object();
	assert_int_equal(outbound_new(&h->a.http, &e), 0);
}

/* Runs one attempt of k for event (and params) and returns the outcome. */
static struct target_outcome *h_run(struct harness *h, const struct action_ops *k,
				    const char *event, const char *params)
{
	h->a.event = json_tokener_parse(event);
	h->a.params = json_tokener_parse(params);
	assert_non_null(h->a.event);
	assert_non_null(h->a.params);
	h->a.attempt++;
	memset(&h->out, 0, sizeof(h->out));
	h->out.retry_after_ms = -2;
	k->attempt(&h->a, &h->out);
	json_object_put(h->a.event);
	json_object_put(h->a.params);
	h->a.event = h->a.params = NULL;
	return &h->out;
}

static void h_free(struct harness *h)
{
	fake_stop(h->http);
	outbound_free(h->a.http);
	json_object_put(h->cfg.settings);
	json_object_put(h->a.map.data);
	free(h->a.map.remote_id);
	free(h->a.map.state);
}

static const char *h_data_str(struct harness *h, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(h->a.map.data, key, &v) ? json_object_get_string(v) : NULL;
}

#endif
