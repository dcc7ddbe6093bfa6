/*
 * stub_http: a scripted HTTP/1.1 server on 127.0.0.1 for unit tests that
 * drive outbound (libcurl) for real.  One thread accepts connections, reads
 * one request per connection, records it, answers with the next scripted
 * reply (200 "{}" when the script is empty) and closes the connection.
 *
 * A request is recorded before its reply is written, so once the client has
 * its answer, stub_req(s, i) holds the request.  Header-only: include it in
 * one test file.
 */
#ifndef RB_TESTS_STUB_HTTP_H
#define RB_TESTS_STUB_HTTP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define STUB_MAX     64
#define STUB_REQ_MAX (1u << 20)

struct stub_req {
	char method[16];
	char path[512];
	char *head; /* request line and headers, NUL-terminated */
	char *body; /* NUL-terminated */
	size_t body_len;
};

struct stub_reply {
	int status;
	char headers[256]; /* extra lines, each ending in \r\n */
	char body[1024];
};

struct stub {
	int fd;
	int port;
	pthread_t thread;
	pthread_mutex_t lock;
	struct stub_req reqs[STUB_MAX];
	size_t n;
	struct stub_reply script[STUB_MAX];
	size_t n_script, next;
	atomic_int stop;
};

/* Index of "\r\n\r\n" + 4 in buf[0..len), or 0. */
static size_t stub_head_end(const char *buf, size_t len)
{
	for (size_t i = 3; i < len; i++)
		if (memcmp(buf + i - 3, "\r\n\r\n", 4) == 0)
			return i + 1;
	return 0;
}

static size_t stub_content_length(const char *head)
{
	const char *p = head;

	while ((p = strchr(p, '\n'))) {
		p++;
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			return (size_t)strtoul(p + 15, NULL, 10);
	}
	return 0;
}

static void stub_serve(struct stub *s, int c)
{
	char *buf = malloc(STUB_REQ_MAX + 1), out[2048];
	size_t len = 0, hend = 0, want = 0;
	struct stub_reply rep = { .status = 200, .body = "{}" };

	while (len < STUB_REQ_MAX) {
		ssize_t n = read(c, buf + len, STUB_REQ_MAX - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (!hend && (hend = stub_head_end(buf, len)))
			want = hend + stub_content_length(buf);
		if (hend && len >= want)
			break;
	}
	pthread_mutex_lock(&s->lock);
	if (hend && s->n < STUB_MAX) {
		struct stub_req *r = &s->reqs[s->n++];
		sscanf(buf, "%15s %511s", r->method, r->path);
		r->head = strndup(buf, hend);
		r->body_len = len - hend;
		r->body = malloc(r->body_len + 1);
		memcpy(r->body, buf + hend, r->body_len);
		r->body[r->body_len] = '\0';
	}
	if (s->next < s->n_script)
		rep = s->script[s->next++];
	pthread_mutex_unlock(&s->lock);
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
			 rep.status, strlen(rep.body), rep.headers, rep.body);
	if (write(c, out, (size_t)n) < 0)
		perror("stub write");
	free(buf);
}

static void *stub_main(void *arg)
{
	struct stub *s = arg;

	for (;;) {
		int c = accept(s->fd, NULL, NULL);
		if (c < 0 || s->stop) {
			if (c >= 0)
				close(c);
			return NULL;
		}
		stub_serve(s, c);
		close(c);
	}
}

static struct stub *stub_start(void)
{
	struct stub *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(s->fd, 16) < 0 || getsockname(s->fd, (struct sockaddr *)&a, &al) < 0)
		abort();
	s->port = ntohs(a.sin_port);
	pthread_mutex_init(&s->lock, NULL);
	pthread_create(&s->thread, NULL, stub_main, s);
	return s;
}

/* Queues a reply: status, extra header lines ("" or "Retry-After: 7\r\n"),
 * body. */
static void stub_push(struct stub *s, int status, const char *headers, const char *body)
{
	pthread_mutex_lock(&s->lock);
	struct stub_reply *r = &s->script[s->n_script++];
	r->status = status;
	snprintf(r->headers, sizeof(r->headers), "%s", headers);
	snprintf(r->body, sizeof(r->body), "%s", body);
	pthread_mutex_unlock(&s->lock);
}

static size_t stub_count(struct stub *s)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static const struct stub_req *stub_req(struct stub *s, size_t i)
{
	return i < stub_count(s) ? &s->reqs[i] : NULL;
}

static void stub_stop(struct stub *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int c = socket(AF_INET, SOCK_STREAM, 0);

	s->stop = 1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((unsigned short)s->port);
	if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		perror("stub stop");
	close(c);
	pthread_join(s->thread, NULL);
	close(s->fd);
	for (size_t i = 0; i < s->n; i++) {
		free(s->reqs[i].head);
		free(s->reqs[i].body);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

#endif
