/*
 * door: accepts connections and holds them until their request is in
 * (door.h).  One thread owns the waiting room; civetweb's master thread
 * takes ready connections through accept() on the eventfd.
 *
 * Every waiting connection is on two lists, both in accept order: all of
 * them (deadlines and "room full" close from its head) and those of its
 * address (the cap closes from that head).
 */
#include "http/door.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <civetweb.h>

#include "core/clock.h"
#include "http/deadline.h"

#define MAX_LISTENERS 16
#define ADDR_BUCKETS  1024
#define BODY_READY    (64 * 1024) /* what the kernel holds unasked: the rest waits for room */
#define ACCEPT_BURST  256
#define HOLD_BUDGET   ((size_t)256 << 20) /* receive buffers raised at once, all waiters */
#define HOLD_MAX      ((size_t)4 << 20)   /* the largest chunked body held */
#define CHUNK_LINE    1024                /* a longer chunk-size line: civetweb refuses it */

struct peer {
	unsigned char key[17]; /* family, then the address bytes */
	size_t count;
	struct waiter *head, *tail;
	struct peer *next; /* in its bucket */
};

struct waiter {
	int fd, tls;
	int li;          /* the listener that accepted it (d->l) */
	int eof;         /* the client sent all it will (shut its side down) */
	int chunked;     /* the body is chunked: scan tells how far it is in */
	size_t head;     /* the head's length once complete, else 0 */
	size_t wait_for; /* bytes that must be in before another look */
	size_t scan;     /* chunked: where the next chunk-size line starts */
	size_t decoded;  /* chunked: data bytes before scan */
	size_t raised;   /* its receive buffer raised by this, in the budget */
	long long since_ms;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct waiter *prev, *next;           /* every waiter, oldest first */
	struct waiter *peer_prev, *peer_next; /* its address's */
	struct peer *peer;
};

struct ready {
	int fd;
	struct sockaddr_storage addr;
	socklen_t addr_len;
};

struct listener {
	int fake; /* civetweb's descriptor, now an eventfd */
	int real; /* the listening socket */
	int tls;
	/* under the door's mu: the eventfd counts token + q_len */
	int token;       /* the wake-up below is still in the eventfd */
	struct ready *q; /* connections ready for civetweb's accept() on fake */
	size_t q_cap, q_head, q_len;
};

struct door {
	struct door_opts o;
	pthread_t thread;
	int ep, wake, stop;
	struct listener l[MAX_LISTENERS];
	int n_l;
	struct waiter *head, *tail;
	struct waiter *dead; /* left the room during this turn of the loop */
	size_t waiting;
	struct peer *peers[ADDR_BUCKETS];
	char *peek;
	size_t peek_cap; /* a head and the largest body held, chunked */
	size_t raised;   /* the sum of the waiters' raised, within HOLD_BUDGET */
	/* the listeners' ready queues and tokens, shared with accept() */
	pthread_mutex_t mu;
};

/* The door accept() answers for; one per process. */
static pthread_mutex_t current_mu = PTHREAD_MUTEX_INITIALIZER;
static struct door *current;

/* ---- addresses ------------------------------------------------------- */

static void peer_key(unsigned char key[17], const struct sockaddr_storage *a)
{
	memset(key, 0, 17);
	key[0] = (unsigned char)a->ss_family;
	if (a->ss_family == AF_INET)
		memcpy(key + 1, &((const struct sockaddr_in *)a)->sin_addr, 4);
	else if (a->ss_family == AF_INET6)
		memcpy(key + 1, &((const struct sockaddr_in6 *)a)->sin6_addr, 16);
}

static struct peer **peer_slot(struct door *d, const unsigned char key[17])
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 17; i++)
		h = (h ^ key[i]) * 16777619u;
	struct peer **p = &d->peers[h % ADDR_BUCKETS];
	while (*p && memcmp((*p)->key, key, 17) != 0)
		p = &(*p)->next;
	return p;
}

/* ---- the waiting room ------------------------------------------------ */

static void unlink_waiter(struct door *d, struct waiter *w)
{
	struct peer *p = w->peer;

	*(w->prev ? &w->prev->next : &d->head) = w->next;
	*(w->next ? &w->next->prev : &d->tail) = w->prev;
	*(w->peer_prev ? &w->peer_prev->peer_next : &p->head) = w->peer_next;
	*(w->peer_next ? &w->peer_next->peer_prev : &p->tail) = w->peer_prev;
	d->waiting--;
	d->raised -= w->raised;
	if (--p->count == 0) {
		struct peer **slot = peer_slot(d, p->key);
		*slot = p->next;
		free(p);
	}
	epoll_ctl(d->ep, EPOLL_CTL_DEL, w->fd, NULL);
}

/* A waiter leaves the room: its memory is freed only after the events
 * epoll returned with it are handled (one may still name it). */
static void bury(struct door *d, struct waiter *w)
{
	w->fd = -1;
	w->next = d->dead;
	d->dead = w;
}

/* Closes a waiting connection: its request did not come in time, or it
 * made room for a newer one. */
static void drop(struct door *d, struct waiter *w)
{
	unlink_waiter(d, w);
	close(w->fd);
	bury(d, w);
}

static int admit(struct door *d, int fd, const struct sockaddr_storage *a, socklen_t len, int li)
{
	unsigned char key[17];
	struct waiter *w = calloc(1, sizeof(*w));

	peer_key(key, a);
	struct peer **slot = peer_slot(d, key);
	/* Fairness only under pressure: below half the room one address may
	 * hold many (all clients behind one proxy, or a test on loopback), and
	 * closing its oldest for each new one would only make it reconnect. */
	if (*slot && d->o.max_per_address > 0 && (*slot)->count >= (size_t)d->o.max_per_address &&
	    d->waiting >= d->o.room_max / 2) {
		drop(d, (*slot)->head);
		slot = peer_slot(d, key); /* the address may have had only that one */
	}
	if (w && !*slot && (*slot = calloc(1, sizeof(**slot))) != NULL)
		memcpy((*slot)->key, key, 17);
	if (!w || !*slot) {
		free(w);
		return -1;
	}
	struct peer *p = *slot;
	*w = (struct waiter){ .fd = fd,
			      .tls = d->l[li].tls,
			      .li = li,
			      .since_ms = clock_mono_ms(),
			      .addr = *a,
			      .addr_len = len,
			      .prev = d->tail,
			      .peer_prev = p->tail,
			      .peer = p };
	*(d->tail ? &d->tail->next : &d->head) = w;
	d->tail = w;
	*(p->tail ? &p->tail->peer_next : &p->head) = w;
	p->tail = w;
	p->count++;
	d->waiting++;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = w };
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		unlink_waiter(d, w);
		free(w);
		return -1;
	}
	return 0;
}

/* ---- when a request has arrived ---------------------------------------- */

/* civetweb's get_http_header_len: the head's length, 0 while incomplete,
 * -1 for a byte civetweb refuses (it answers that itself). */
static size_t head_len(const char *b, size_t n, int *bad)
{
	*bad = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];
		if (c < 128 && c != '\r' && c != '\n' && (c < 32 || c == 127)) {
			*bad = 1;
			return 0;
		}
		if (i + 1 < n && b[i] == '\n' && b[i + 1] == '\n')
			return i + 2;
		if (i + 3 < n && memcmp(b + i, "\r\n\r\n", 4) == 0)
			return i + 4;
	}
	return 0;
}

/* The value of header name in a complete head, or NULL. */
static const char *header(const char *head, size_t len, const char *name)
{
	size_t nl = strlen(name);

	for (const char *p = memchr(head, '\n', len); p && p + 1 < head + len;
	     p = memchr(p + 1, '\n', (size_t)(head + len - p - 1))) {
		const char *line = p + 1;
		if ((size_t)(head + len - line) > nl && strncasecmp(line, name, nl) == 0 &&
		    line[nl] == ':')
			return line + nl + 1;
	}
	return NULL;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* "chunked", alone: anything else framing.c refuses, so it is ready. */
static int only_chunked(const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	if (strncasecmp(v, "chunked", 7) != 0)
		return 0;
	for (v += 7; *v == ' ' || *v == '\t'; v++)
		;
	return *v == '\r' || *v == '\n';
}

/* Raises w's receive buffer so that the kernel can hold want bytes of its
 * request (a peeking reader gets only the default, about 128 KiB, before
 * the sender has to wait), within HOLD_BUDGET for all waiters.  0, or -1
 * when the budget or net.core.rmem_max does not allow it. */
static int hold(struct door *d, struct waiter *w, size_t want)
{
	int size, got = 0;
	socklen_t len = sizeof(got);

	if (want > INT_MAX / 4 || d->raised + want > HOLD_BUDGET)
		return -1;
	size = (int)(want + want / 4); /* the kernel doubles it for its overhead */
	if (setsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0 ||
	    getsockopt(w->fd, SOL_SOCKET, SO_RCVBUF, &got, &len) < 0 || (size_t)got / 2 < want)
		return -1;
	w->raised = want;
	d->raised += want;
	return 0;
}

/* What a complete head (w->head bytes at d->peek) needs before it can be
 * served without waiting: 1 nothing more (no body, one civetweb refuses or
 * answers 413 without reading, a client waiting for 100 Continue), else 0
 * with w->wait_for (Content-Length) or w->chunked set.  A body the kernel
 * cannot be made to hold is ready at BODY_READY, as civetweb streams it. */
static int body_plan(struct door *d, struct waiter *w)
{
	const char *cl = header(d->peek, w->head, "Content-Length");
	const char *te = header(d->peek, w->head, "Transfer-Encoding");
	char *end;

	if (header(d->peek, w->head, "Expect"))
		return 1;
	if (te) {
		if (cl || !only_chunked(te) || hold(d, w, d->peek_cap) < 0)
			return 1;
		w->chunked = 1;
		w->scan = w->head;
		return 0;
	}
	if (!cl)
		return 1;
	while (*cl == ' ' || *cl == '\t')
		cl++;
	if (*cl < '0' || *cl > '9')
		return 1;
	unsigned long long len = strtoull(cl, &end, 10);
	if (len > d->o.body_max)
		return 1;
	w->wait_for = w->head + (size_t)len;
	if (w->wait_for > BODY_READY && hold(d, w, w->wait_for) < 0)
		w->wait_for = w->head + BODY_READY;
	return 0;
}

/* The trailer section after the last chunk's line (which ends at at): 1
 * once its blank line is in, or it is longer than a head may be. */
static int trailer_in(struct door *d, struct waiter *w, size_t at, size_t m)
{
	const char *b = d->peek;

	for (size_t i = at - 1; i + 1 < m; i++)
		if (b[i] == '\n' &&
		    (b[i + 1] == '\n' || (b[i + 1] == '\r' && i + 2 < m && b[i + 2] == '\n')))
			return 1;
	w->wait_for = m + 1;
	return m - at > d->o.head_max;
}

/* Follows a chunked body in the m bytes peeked, from the chunk-size line
 * at w->scan (chunks already passed are not read again): 1 when the last
 * chunk and its trailers are in, or civetweb must decide (a malformed
 * size line, a body over max_body_bytes); else 0, w->wait_for set. */
static int chunks_in(struct door *d, struct waiter *w, size_t m)
{
	const char *b = d->peek;

	while (w->scan < m) {
		const char *nl = memchr(b + w->scan, '\n', m - w->scan);
		if (!nl) {
			w->wait_for = m + 1;
			return m - w->scan > CHUNK_LINE;
		}
		size_t line_end = (size_t)(nl - b) + 1, size = 0, digits = 0;
		for (size_t i = w->scan; digits < 16 && hex_digit(b[i]) >= 0; i++, digits++)
			size = size * 16 + (size_t)hex_digit(b[i]);
		if (digits == 0 || digits == 16 || line_end - w->scan > CHUNK_LINE)
			return 1;
		if (size == 0)
			return trailer_in(d, w, line_end, m);
		if (size > d->o.body_max - w->decoded)
			return 1;
		w->decoded += size;
		w->scan = line_end + size + 2; /* its data and CRLF */
	}
	w->wait_for = w->scan + 1;
	return 0;
}

/* 1 ready, 0 not yet, -1 gone (closed by the client, or an error). */
static int arrived(struct door *d, struct waiter *w)
{
	int avail = 0, bad;

	if (ioctl(w->fd, FIONREAD, &avail) < 0)
		return -1;
	if (avail <= 0) {
		char c;
		ssize_t r = recv(w->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		return r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR) ? -1 : 0;
	}
	if (w->tls || w->eof)
		return 1; /* civetweb answers what it can of it */
	if ((size_t)avail < w->wait_for)
		return 0; /* nothing in yet that could complete it */
	if (w->head && !w->chunked)
		return 1;
	if ((size_t)avail > d->peek_cap)
		return 1; /* more than can be followed here: civetweb reads it */
	ssize_t m = recv(w->fd, d->peek, (size_t)avail, MSG_PEEK | MSG_DONTWAIT);
	if (m <= 0)
		return m == 0 ? -1 : 0;
	if (!w->head) {
		size_t n = (size_t)m < d->o.head_max ? (size_t)m : d->o.head_max;
		w->head = head_len(d->peek, n, &bad);
		if (bad || (w->head == 0 && n >= d->o.head_max))
			return 1; /* civetweb refuses it */
		if (w->head == 0)
			return 0;
		if (body_plan(d, w))
			return 1;
		if (!w->chunked)
			return (size_t)avail >= w->wait_for;
	}
	return chunks_in(d, w, (size_t)m);
}

/* Hands a connection to civetweb: into the queue of the listener that
 * accepted it, and one more on the eventfd that listener's descriptor now
 * is (so civetweb serves it as that port: plain or TLS). */
static void hand_over(struct door *d, struct waiter *w)
{
	struct listener *l = &d->l[w->li];

	unlink_waiter(d, w);
	pthread_mutex_lock(&d->mu);
	if (l->q_len == l->q_cap) { /* never more than the descriptors allow */
		size_t cap = l->q_cap ? 2 * l->q_cap : 64;
		struct ready *q = malloc(cap * sizeof(*q));
		if (!q) {
			pthread_mutex_unlock(&d->mu);
			close(w->fd);
			bury(d, w);
			return;
		}
		for (size_t i = 0; i < l->q_len; i++)
			q[i] = l->q[(l->q_head + i) % l->q_cap];
		free(l->q);
		l->q = q;
		l->q_cap = cap;
		l->q_head = 0;
	}
	/* civetweb gets what accept() would give it: a blocking socket (a
	 * non-blocking one makes its TLS handshake spin) */
	int fl = fcntl(w->fd, F_GETFL);
	if (fl >= 0)
		fcntl(w->fd, F_SETFL, fl & ~O_NONBLOCK);
	l->q[(l->q_head + l->q_len++) % l->q_cap] = (struct ready){ .fd = w->fd,
								    .addr = w->addr,
								    .addr_len = w->addr_len };
	uint64_t one = 1;
	if (write(l->fake, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow: it counts queued descriptors */
	}
	pthread_mutex_unlock(&d->mu);
	bury(d, w);
}

static void free_dead(struct door *d)
{
	while (d->dead) {
		struct waiter *w = d->dead;
		d->dead = w->next;
		free(w);
	}
}

static void check(struct door *d, struct waiter *w)
{
	if (w->fd < 0)
		return; /* it left the room earlier in this turn */
	int r = arrived(d, w);
	if (r > 0)
		hand_over(d, w);
	else if (r < 0)
		drop(d, w);
}

/* ---- the thread ------------------------------------------------------ */

static void accept_burst(struct door *d, const struct listener *l)
{
	for (int i = 0; i < ACCEPT_BURST; i++) {
		struct sockaddr_storage a;
		socklen_t len = sizeof(a);
		if (d->waiting >= d->o.room_max && d->head)
			drop(d, d->head);
		int fd = accept4(l->real, (struct sockaddr *)&a, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if ((errno == EMFILE || errno == ENFILE) && d->head) {
				drop(d, d->head);
				continue;
			}
			return;
		}
		if (admit(d, fd, &a, len, (int)(l - d->l)) < 0) {
			close(fd);
			continue;
		}
		check(d, d->tail); /* the request often came with the handshake */
	}
}

static void expire(struct door *d, long long now)
{
	while (d->head && now - d->head->since_ms >= d->o.timeout_ms)
		drop(d, d->head);
}

static void *run(void *arg)
{
	struct door *d = arg;
	struct epoll_event ev[256];

	while (!__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE)) {
		int n = epoll_wait(d->ep, ev, 256, 50);
		for (int i = 0; i < n; i++) {
			uintptr_t tag = (uintptr_t)ev[i].data.ptr;
			if (tag <= MAX_LISTENERS)
				accept_burst(d, &d->l[tag - 1]);
			else {
				struct waiter *w = ev[i].data.ptr;
				if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
					w->eof = 1;
				check(d, w);
			}
		}
		expire(d, clock_mono_ms());
		free_dead(d);
	}
	return NULL;
}

/* ---- taking civetweb's listeners over -------------------------------- */

/* The port fd listens on, or -1 when it is not a listening socket. */
static int local_port(int fd)
{
	int on = 0;
	socklen_t ol = sizeof(on);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) != 0 || !on)
		return -1;
	return deadline_sock_port(fd, 0);
}

struct civetweb_ports {
	struct door *d;
	const struct mg_server_port *ports;
	int n_ports;
};

static int add_if_listener(void *ctx, int fd)
{
	struct civetweb_ports *cp = ctx;
	struct door *d = cp->d;
	int port = local_port(fd);

	for (int i = 0; port > 0 && i < cp->n_ports; i++)
		if (cp->ports[i].port == port)
			d->l[d->n_l++] = (struct listener){ .fake = fd,
							    .real = -1,
							    .tls = cp->ports[i].is_ssl };
	return d->n_l >= MAX_LISTENERS;
}

/* The listening sockets on civetweb's ports, by /proc/self/fd. */
static int find_listeners(struct door *d, const struct mg_server_port *ports, int n_ports,
			  struct err *err)
{
	struct civetweb_ports cp = { d, ports, n_ports };

	if (deadline_each_socket(add_if_listener, &cp) < 0)
		return err_set(err, "door: cannot read /proc/self/fd: %s", strerror(errno));
	return d->n_l == n_ports ? 0
				 : err_set(err, "door: found %d of civetweb's %d listening sockets",
					   d->n_l, n_ports);
}

/* Keeps the real socket, leaves an eventfd under civetweb's number. */
static int take_over(struct door *d, struct listener *l, int tag, struct err *err)
{
	int efd = eventfd(0, EFD_NONBLOCK | EFD_SEMAPHORE | EFD_CLOEXEC);

	l->real = fcntl(l->fake, F_DUPFD_CLOEXEC, 0);
	/* the door's thread must never block in accept */
	if (efd < 0 || l->real < 0 ||
	    fcntl(l->real, F_SETFL, fcntl(l->real, F_GETFL) | O_NONBLOCK) < 0 ||
	    dup3(efd, l->fake, O_CLOEXEC) < 0) {
		if (efd >= 0)
			close(efd);
		return err_set(err, "door: cannot take the listening socket over: %s",
			       strerror(errno));
	}
	close(efd);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = (void *)(uintptr_t)tag };
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, l->real, &ev) < 0)
		return err_set(err, "door: epoll: %s", strerror(errno));
	return 0;
}

/* civetweb's master thread may be in poll() on the socket since before the
 * take-over: an eventfd written now does not wake that poll, which waits
 * out its 2 s quantum, and the first connections with it.  So before the
 * door's thread runs, each listener gets a token in its eventfd (wakes a
 * poll on the eventfd) and a connection made and dropped at once (wakes a
 * poll on the socket; the door accepts it later, sees it closed, drops it).
 * Either way civetweb calls accept(), which takes the token and finds
 * nothing (EAGAIN), and it polls again, on the eventfd.  The door's thread
 * starts once every token is taken, or after WAKE_WAIT_MS: if it accepted
 * first, a poll woken on the socket would find it not readable and sleep
 * on.  Best effort: a failure only leaves the wait. */
enum { WAKE_WAIT_MS = 500 };

static void wake_master(struct door *d)
{
	uint64_t one = 1;

	for (int i = 0; i < d->n_l; i++) {
		struct listener *l = &d->l[i];
		struct sockaddr_storage a;
		socklen_t len = sizeof(a);

		pthread_mutex_lock(&d->mu);
		l->token = write(l->fake, &one, sizeof(one)) == (ssize_t)sizeof(one);
		pthread_mutex_unlock(&d->mu);
		if (getsockname(l->real, (struct sockaddr *)&a, &len) < 0)
			continue;
		/* non-blocking: with the accept queue full (a burst at start)
		 * a blocking connect would wait out the SYN retries, minutes.
		 * It returns EINPROGRESS, and the handshake completes all the
		 * same (the listener was readable after 200 of 200 tries) */
		int fd = socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		(void)!connect(fd, (struct sockaddr *)&a, len);
		close(fd);
	}
	for (int waited = 0; waited < WAKE_WAIT_MS; waited++) {
		int left = 0;
		pthread_mutex_lock(&d->mu);
		for (int i = 0; i < d->n_l; i++)
			left += d->l[i].token;
		pthread_mutex_unlock(&d->mu);
		if (!left)
			return;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

/* ---- the door's life ----------------------------------------------- */

static void door_free(struct door *d)
{
	while (d->head)
		drop(d, d->head);
	free_dead(d);
	for (int i = 0; i < d->n_l; i++) {
		struct listener *l = &d->l[i];
		for (size_t k = 0; k < l->q_len; k++)
			close(l->q[(l->q_head + k) % l->q_cap].fd);
		free(l->q);
	}
	for (int i = 0; i < d->n_l; i++)
		if (d->l[i].real >= 0)
			close(d->l[i].real);
	if (d->ep >= 0)
		close(d->ep);
	pthread_mutex_destroy(&d->mu);
	free(d->peek);
	free(d);
}

int door_open(struct door **out, struct mg_context *ctx, const struct door_opts *opts, struct err *err)
{
	struct mg_server_port ports[MAX_LISTENERS];
	struct door *d = calloc(1, sizeof(*d));
	int n_ports = mg_get_server_ports(ctx, MAX_LISTENERS, ports);

	*out = NULL;
	if (!d)
		return err_set(err, "out of memory");
	d->o = *opts;
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	pthread_mutex_init(&d->mu, NULL);
	size_t body_held = d->o.body_max < HOLD_MAX ? d->o.body_max : HOLD_MAX;
	/* chunked: room for the size lines of chunks of 8 bytes or more */
	d->peek_cap = d->o.head_max + body_held + body_held / 2;
	if (d->ep < 0 || !(d->peek = malloc(d->peek_cap))) {
		err_set(err, "door: cannot start: %s", strerror(errno));
		door_free(d);
		return -1;
	}
	if (n_ports <= 0 || find_listeners(d, ports, n_ports, err) < 0) {
		if (n_ports <= 0)
			err_set(err, "door: civetweb reports no listening port");
		door_free(d);
		return -1;
	}
	pthread_mutex_lock(&current_mu);
	current = d; /* from here civetweb's accept() on these is ours */
	pthread_mutex_unlock(&current_mu);
	for (int i = 0; i < d->n_l; i++)
		if (take_over(d, &d->l[i], i + 1, err) < 0)
			goto fail;
	wake_master(d); /* before the door's thread can accept */
	if (pthread_create(&d->thread, NULL, run, d) != 0) {
		err_set(err, "door: cannot start its thread");
		goto fail;
	}
	pthread_setname_np(d->thread, "rb-door");
	*out = d;
	return 0;
fail:
	pthread_mutex_lock(&current_mu);
	current = NULL;
	pthread_mutex_unlock(&current_mu);
	door_free(d);
	return -1;
}

void door_close(struct door *d)
{
	if (!d)
		return;
	__atomic_store_n(&d->stop, 1, __ATOMIC_RELEASE);
	pthread_join(d->thread, NULL);
	pthread_mutex_lock(&current_mu);
	current = NULL;
	pthread_mutex_unlock(&current_mu);
	door_free(d);
}

size_t door_room_for_fds(size_t reserve)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) != 0)
		return 64;
	if (r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
		getrlimit(RLIMIT_NOFILE, &r);
	}
	return r.rlim_cur > reserve + 64 ? (size_t)(r.rlim_cur - reserve) : 64;
}

/* -1 (EAGAIN) when nothing is ready, -2 when fd is not a door listener. */
static int take_ready(int fd, struct sockaddr *addr, socklen_t *len)
{
	int got = -2;

	pthread_mutex_lock(&current_mu);
	struct door *d = current;
	struct listener *l = NULL;
	for (int i = 0; d && i < d->n_l && got == -2; i++)
		if (d->l[i].fake == fd) {
			got = -1;
			l = &d->l[i];
		}
	if (got == -1) {
		pthread_mutex_lock(&d->mu);
		uint64_t one;
		if (l->token && l->q_len == 0 && read(fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
			l->token = 0; /* the wake-up: nothing to take */
		else if (l->q_len > 0 && read(fd, &one, sizeof(one)) == (ssize_t)sizeof(one)) {
			struct ready *r = &l->q[l->q_head];
			l->q_head = (l->q_head + 1) % l->q_cap;
			l->q_len--;
			got = r->fd;
			if (addr && len) {
				socklen_t n = *len < r->addr_len ? *len : r->addr_len;
				memcpy(addr, &r->addr, n);
				*len = r->addr_len;
			}
		}
		pthread_mutex_unlock(&d->mu);
	}
	pthread_mutex_unlock(&current_mu);
	if (got == -1)
		errno = EAGAIN;
	return got;
}

/*
 * civetweb calls accept() on its listening descriptors; this definition
 * in the executable is the one the dynamic linker binds for it.  Any other
 * descriptor is accepted as libc would.
 */
int accept(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len)
{
	int got = take_ready(fd, addr.__sockaddr__, len);
	return got != -2 ? got : accept4(fd, addr, len, 0);
}
