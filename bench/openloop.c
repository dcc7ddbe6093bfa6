/*
 * openloop: an open-loop HTTP load generator for the benchmark's cost curve.
 *
 * wrk is closed loop: a connection sends its next request only once the
 * previous one is answered, so when the server stalls the load stalls with
 * it and the stall hides in the figures (coordinated omission).  This sends
 * on a fixed schedule instead: request k is due at start + k / RATE, goes out
 * on the first idle keep-alive connection once it is due, and its latency is
 * measured from that due time ("latency from intended send time"), so time a
 * request spent waiting for a free connection counts against the server.
 * One thread, epoll, N connections opened before the schedule starts.
 *
 * The body is a Qase delivery read from a file; with -i the number after
 * "id" in its "payload" object is replaced by ID_BASE + k, so every request
 * is a distinct delivery (the same rewrite as bench/post.lua's distinct
 * mode).  Scheduling stops after SECONDS; requests already due are still
 * sent, and the run ends when every request is answered or GRACE seconds
 * after the schedule ended (what is left is counted as unanswered).
 *
 * usage: openloop -p PORT -r RATE -d SECONDS -b BODY_FILE
 *                 [-c CONNS (64)] [-P PATH (/webhooks/qase)] [-i ID_BASE]
 *                 [-g GRACE_S (10)]
 * Prints one JSON object on stdout (figures in ms); binds nothing, connects
 * to 127.0.0.1:PORT only.
 * Build: cc -std=c11 -O2 -o openloop openloop.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF   8192
#define NO_REQ UINT64_MAX

struct conn {
	int fd;
	int connected;
	int queued;       /* on the idle stack */
	int want_out;     /* EPOLLOUT is in its events */
	uint64_t k;       /* request in flight, NO_REQ when idle */
	uint64_t sent_ns; /* when its first byte was written */
	char *wbuf;
	size_t wlen, woff;
	char rbuf[RBUF];
	size_t rused;
};

static struct {
	int port;
	double rate, dur, grace;
	int nconn;
	const char *path, *body_file;
	long long id_base;
	int distinct;
} opt = { .nconn = 64, .path = "/webhooks/qase", .grace = 10.0 };

static int ep;
static int started;
static struct sockaddr_in addr;
static char *prefix, *suffix;
static size_t prefix_len, suffix_len;
static char *raw;
static size_t raw_len;

/* Per request (index k), filled when its answer arrives. */
static uint32_t *lat_us; /* from due time; UINT32_MAX: no answer */
static uint32_t *svc_us; /* from the actual send */
static uint32_t *lag_us; /* actual send minus due */
static uint16_t *status; /* 0: connection failed before an answer */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "openloop: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: openloop -p PORT -r RATE -d SECONDS -b BODY_FILE "
			"[-c CONNS] [-P PATH] [-i ID_BASE] [-g GRACE_S]\n");
	exit(2);
}

/* A number within [lo, hi], or exit with a message naming the option. */
static double num(const char *arg, double lo, double hi, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(arg, &end);
	if (errno || end == arg || *end || v < lo || v > hi) {
		fprintf(stderr, "openloop: %s: '%s' is not a number from %g to %g\n", what, arg, lo,
			hi);
		exit(2);
	}
	return v;
}

static void read_body(void)
{
	FILE *f = fopen(opt.body_file, "rb");
	if (!f)
		die(opt.body_file);
	raw = malloc(1 << 20);
	if (!raw)
		die("malloc");
	raw_len = fread(raw, 1, (1 << 20) - 1, f);
	fclose(f);
	raw[raw_len] = '\0';
	if (!opt.distinct)
		return;
	/* Split around the number of payload.id: the first "id" key after
	 * "payload" (as post.lua does). */
	char *p = strstr(raw, "\"payload\"");
	char *id = p ? strstr(p, "\"id\"") : NULL;
	if (!id) {
		fprintf(stderr, "openloop: %s has no payload.id\n", opt.body_file);
		exit(2);
	}
	char *num = id + 4;
	while (*num == ' ' || *num == ':' || *num == '\t' || *num == '\n' || *num == '\r')
		num++;
	char *end = num;
	if (*end == '-')
		end++;
	while (*end >= '0' && *end <= '9')
		end++;
	if (end == num) {
		fprintf(stderr, "openloop: payload.id in %s is not a number\n", opt.body_file);
		exit(2);
	}
	prefix = raw;
	prefix_len = (size_t)(num - raw);
	suffix = end;
	suffix_len = raw_len - (size_t)(end - raw);
}

static void build_request(struct conn *c, uint64_t k)
{
	char idbuf[32];
	const char *body = raw;
	size_t blen = raw_len;
	int n;

	if (opt.distinct) {
		n = snprintf(idbuf, sizeof(idbuf), "%lld", opt.id_base + (long long)k);
		blen = prefix_len + (size_t)n + suffix_len;
	}
	size_t cap = blen + 256 + strlen(opt.path);
	c->wbuf = realloc(c->wbuf, cap);
	if (!c->wbuf)
		die("malloc");
	n = snprintf(c->wbuf, cap,
		     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		     opt.path, opt.port, blen);
	size_t off = (size_t)n;
	if (opt.distinct) {
		memcpy(c->wbuf + off, prefix, prefix_len);
		off += prefix_len;
		memcpy(c->wbuf + off, idbuf, strlen(idbuf));
		off += strlen(idbuf);
		memcpy(c->wbuf + off, suffix, suffix_len);
		off += suffix_len;
	} else {
		memcpy(c->wbuf + off, body, blen);
		off += blen;
	}
	c->wlen = off;
	c->woff = 0;
}

/* Idle connections, as a stack of indexes; an entry is checked when it is
 * taken (a connection lost while idle reconnects and is taken again once
 * it is up). */
static struct conn *conns;
static int *idle;
static int nidle;
static uint64_t inflight;

static void push_idle(struct conn *c)
{
	if (!c->queued) {
		c->queued = 1;
		idle[nidle++] = (int)(c - conns);
	}
}

static void watch(struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };
	if (epoll_ctl(ep, op, c->fd, &ev) < 0)
		die("epoll_ctl");
}

static void open_conn(struct conn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->connected = 0;
	c->want_out = 0;
	c->k = NO_REQ;
	c->rused = 0;
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		c->connected = 1;
	else if (errno != EINPROGRESS)
		die("connect");
	watch(c, EPOLL_CTL_ADD, c->connected ? EPOLLIN : EPOLLOUT);
	if (c->connected && started)
		push_idle(c);
}

static void close_conn(struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

static uint64_t answered, ok2xx, non2xx, failed, reconnects;

/* lat_us/svc_us are written only when the answer comes; the due and send
 * times of the request in flight live in the connection. */
static uint64_t t0;
static double period_ns;

static uint64_t due_ns(uint64_t k)
{
	return t0 + (uint64_t)((double)k * period_ns);
}

static void finish(struct conn *c, uint64_t t, int st)
{
	uint64_t k = c->k;
	uint64_t due = due_ns(k);
	uint64_t l = (t - due) / 1000, s = (t - c->sent_ns) / 1000;
	lat_us[k] = l >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)l;
	svc_us[k] = s >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)s;
	status[k] = (uint16_t)st;
	c->k = NO_REQ;
	inflight--;
	if (st) {
		answered++;
		if (st >= 200 && st < 300)
			ok2xx++;
		else
			non2xx++;
	} else {
		failed++;
	}
}

static int try_write(struct conn *c)
{
	while (c->woff < c->wlen) {
		ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (!c->want_out)
					watch(c, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
				c->want_out = 1;
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -1;
		}
		c->woff += (size_t)w;
	}
	if (c->want_out)
		watch(c, EPOLL_CTL_MOD, EPOLLIN);
	c->want_out = 0;
	return 0;
}

static void lost(struct conn *c, uint64_t t)
{
	if (c->k != NO_REQ)
		finish(c, t, 0);
	close_conn(c);
	reconnects++;
	open_conn(c);
}

static void assign(struct conn *c, uint64_t k, uint64_t t)
{
	c->k = k;
	c->sent_ns = t;
	inflight++;
	uint64_t g = (t - due_ns(k)) / 1000;
	lag_us[k] = g >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)g;
	c->rused = 0;
	build_request(c, k);
	if (try_write(c) < 0)
		lost(c, t);
}

/* Parses one whole response in c->rbuf: returns its status, 0 when more
 * bytes are needed, -1 when it cannot be read; *close_after when the server
 * said Connection: close. */
static int parse(struct conn *c, int *close_after)
{
	c->rbuf[c->rused] = '\0';
	char *hend = strstr(c->rbuf, "\r\n\r\n");
	if (!hend)
		return c->rused >= RBUF - 1 ? -1 : 0;
	if (strncmp(c->rbuf, "HTTP/1.", 7) != 0 || c->rused < 12)
		return -1;
	int st = (int)strtol(c->rbuf + 9, NULL, 10);
	long cl = 0;
	*close_after = 0;
	for (char *line = strstr(c->rbuf, "\r\n") + 2; line < hend;) {
		char *eol = strstr(line, "\r\n");
		if (strncasecmp(line, "Content-Length:", 15) == 0)
			cl = strtol(line + 15, NULL, 10);
		else if (strncasecmp(line, "Connection:", 11) == 0 && strcasestr(line, "close") &&
			 strcasestr(line, "close") < eol)
			*close_after = 1;
		line = eol + 2;
	}
	size_t need = (size_t)(hend + 4 - c->rbuf) + (size_t)cl;
	if (need >= RBUF)
		return -1;
	return c->rused >= need ? (st > 0 ? st : -1) : 0;
}

static void on_readable(struct conn *c, uint64_t t)
{
	int close_after = 0, st = 0;
	for (;;) {
		ssize_t r = recv(c->fd, c->rbuf + c->rused, RBUF - 1 - c->rused, 0);
		if (r == 0) {
			lost(c, t);
			return;
		}
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return; /* the rest comes later */
			if (errno == EINTR)
				continue;
			lost(c, t);
			return;
		}
		if (c->k == NO_REQ) { /* bytes nobody asked for */
			lost(c, t);
			return;
		}
		c->rused += (size_t)r;
		if ((st = parse(c, &close_after)) != 0)
			break;
	}
	if (st < 0) {
		lost(c, t);
		return;
	}
	finish(c, t, st);
	if (close_after) {
		lost(c, t);
		return;
	}
	c->rused = 0;
	push_idle(c);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint32_t *sorted, size_t n, double p)
{
	if (!n)
		return -1;
	size_t k = (size_t)(p / 100.0 * (double)n + 0.5);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return sorted[k - 1] / 1000.0;
}

static void print_dist(const char *name, const uint32_t *v, size_t total, int last)
{
	uint32_t *s = malloc((total ? total : 1) * sizeof(*s));
	size_t n = 0;
	if (!s)
		die("malloc");
	for (size_t k = 0; k < total; k++)
		if (v[k] != UINT32_MAX && status[k])
			s[n++] = v[k];
	qsort(s, n, sizeof(*s), cmp_u32);
	printf("\"%s\":{\"n\":%zu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}%s",
	       name, n, pct(s, n, 50), pct(s, n, 90), pct(s, n, 99), pct(s, n, 99.9),
	       n ? s[n - 1] / 1000.0 : -1.0, last ? "" : ",");
	free(s);
}

int main(int argc, char **argv)
{
	int ch;
	while ((ch = getopt(argc, argv, "p:r:d:b:c:P:i:g:")) != -1) {
		switch (ch) {
		case 'p': opt.port = (int)num(optarg, 1, 65535, "-p PORT"); break;
		case 'r': opt.rate = num(optarg, 0.001, 1e7, "-r RATE"); break;
		case 'd': opt.dur = num(optarg, 0.001, 86400, "-d SECONDS"); break;
		case 'b': opt.body_file = optarg; break;
		case 'c': opt.nconn = (int)num(optarg, 1, 10000, "-c CONNS"); break;
		case 'P': opt.path = optarg; break;
		case 'i':
			opt.id_base = (long long)num(optarg, 0, 9e15, "-i ID_BASE");
			opt.distinct = 1;
			break;
		case 'g': opt.grace = num(optarg, 0, 3600, "-g GRACE_S"); break;
		default: usage();
		}
	}
	if (opt.port <= 0 || opt.port > 65535 || opt.rate <= 0 || opt.dur <= 0 || !opt.body_file ||
	    opt.nconn < 1 || opt.nconn > 10000 || opt.grace < 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* wake on time, not 50 µs late */
	read_body();

	uint64_t total = (uint64_t)(opt.rate * opt.dur + 0.5);
	if (total < 1 || total > 100000000) {
		fprintf(stderr, "openloop: RATE * SECONDS must be 1..1e8\n");
		return 2;
	}
	lat_us = malloc(total * sizeof(*lat_us));
	svc_us = malloc(total * sizeof(*svc_us));
	lag_us = malloc(total * sizeof(*lag_us));
	status = calloc(total, sizeof(*status));
	conns = calloc((size_t)opt.nconn, sizeof(*conns));
	idle = malloc((size_t)opt.nconn * sizeof(*idle));
	if (!lat_us || !svc_us || !lag_us || !status || !conns || !idle)
		die("malloc");
	memset(lat_us, 0xff, total * sizeof(*lat_us));
	memset(svc_us, 0xff, total * sizeof(*svc_us));
	memset(lag_us, 0xff, total * sizeof(*lag_us));

	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)opt.port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");

	/* Open every connection before the schedule starts. */
	for (int i = 0; i < opt.nconn; i++)
		open_conn(&conns[i]);
	struct epoll_event evs[256];
	uint64_t deadline = now_ns() + 5000000000u;
	int up = 0;
	for (int i = 0; i < opt.nconn; i++)
		up += conns[i].connected;
	while (up < opt.nconn && now_ns() < deadline) {
		int n = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int err = 0;
			socklen_t el = sizeof(err);
			getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
			if (err) {
				errno = err;
				die("connect");
			}
			if (!c->connected) {
				c->connected = 1;
				up++;
				watch(c, EPOLL_CTL_MOD, EPOLLIN);
			}
		}
	}
	if (up < opt.nconn) {
		fprintf(stderr, "openloop: only %d of %d connections opened\n", up, opt.nconn);
		return 1;
	}
	started = 1;
	for (int i = 0; i < opt.nconn; i++)
		push_idle(&conns[i]);

	/* Per second of the schedule: answers, and the most requests that were
	 * due but not yet sent (all connections busy). */
	size_t nsec = (size_t)opt.dur + 2 + (size_t)opt.grace;
	uint64_t *done_s = calloc(nsec, sizeof(*done_s));
	uint64_t *queue_s = calloc(nsec, sizeof(*queue_s));
	if (!done_s || !queue_s)
		die("malloc");

	period_ns = 1e9 / opt.rate;
	t0 = now_ns();
	uint64_t sched_end = t0 + (uint64_t)(opt.dur * 1e9);
	uint64_t hard_end = sched_end + (uint64_t)(opt.grace * 1e9);
	uint64_t next = 0, max_queue = 0, t_last = t0;

	for (;;) {
		uint64_t t = now_ns();
		/* Send every request that is due, while a connection is idle. */
		while (next < total && due_ns(next) <= t && nidle > 0) {
			struct conn *c = &conns[idle[--nidle]];
			c->queued = 0;
			if (c->fd < 0 || !c->connected || c->k != NO_REQ)
				continue; /* reconnecting: it rejoins once up */
			assign(c, next++, t);
		}
		uint64_t due_by_now = t < t0 ? 0 : (uint64_t)((double)(t - t0) / period_ns) + 1;
		if (due_by_now > total)
			due_by_now = total;
		uint64_t q = due_by_now > next ? due_by_now - next : 0;
		size_t sec = (size_t)((t - t0) / 1000000000u);
		if (sec < nsec && q > queue_s[sec])
			queue_s[sec] = q;
		if (q > max_queue)
			max_queue = q;
		if (next == total && inflight == 0)
			break;
		if (t >= hard_end)
			break;

		/* Sleep until the next request is due (if a connection is free
		 * to take it) or an answer comes. */
		struct timespec to = { 0, 10000000 }; /* 10 ms at most */
		if (next < total && nidle > 0) {
			uint64_t d = due_ns(next);
			uint64_t w = d > t ? d - t : 0;
			if (w < 10000000u)
				to.tv_nsec = (long)w;
		}
		int n = epoll_pwait2(ep, evs, 256, &to, NULL);
		if (n < 0 && errno != EINTR)
			die("epoll_pwait2");
		t = now_ns();
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->fd < 0)
				continue;
			if (!c->connected) {
				int err = 0;
				socklen_t el = sizeof(err);
				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err) {
					close_conn(c);
					reconnects++;
					open_conn(c);
					continue;
				}
				c->connected = 1;
				watch(c, EPOLL_CTL_MOD, EPOLLIN);
				push_idle(c);
				continue;
			}
			uint64_t before = answered + failed;
			if ((evs[i].events & EPOLLOUT) && c->k != NO_REQ && c->woff < c->wlen) {
				if (try_write(c) < 0) {
					lost(c, t);
					continue;
				}
			}
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(c, t);
			if (answered + failed > before) {
				size_t s = (size_t)((t - t0) / 1000000000u);
				if (s < nsec)
					done_s[s] += answered + failed - before;
				t_last = t;
			}
		}
	}
	uint64_t t_end = now_ns();

	double span = (double)(t_last - t0) / 1e9;
	printf("{\"rate\":%.1f,\"duration_s\":%.3f,\"conns\":%d,\"scheduled\":%" PRIu64
	       ",\"sent\":%" PRIu64 ",\"answered\":%" PRIu64 ",\"ok\":%" PRIu64
	       ",\"non2xx\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"unanswered\":%" PRIu64
	       ",\"never_sent\":%" PRIu64 ",\"reconnects\":%" PRIu64
	       ",\"achieved_rps\":%.1f,\"elapsed_s\":%.3f,\"max_queue\":%" PRIu64 ",",
	       opt.rate, opt.dur, opt.nconn, total, next, answered, ok2xx, non2xx, failed, inflight,
	       total - next, reconnects,
	       span > 0 ? (double)ok2xx / (span > opt.dur ? span : opt.dur) : 0.0,
	       (double)(t_end - t0) / 1e9, max_queue);
	print_dist("latency", lat_us, total, 0);
	print_dist("service", svc_us, total, 0);
	print_dist("send_lag", lag_us, total, 0);
	printf("\"per_s\":[");
	for (size_t s = 0; s < nsec && s * 1000000000u <= t_end - t0; s++)
		printf("%s[%" PRIu64 ",%" PRIu64 "]", s ? "," : "", done_s[s], queue_s[s]);
	printf("]}\n");
	return 0;
}
