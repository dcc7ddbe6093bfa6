/*
 * door: a waiting room in front of civetweb's worker threads, so that a
 * connection holds a thread only once its request has arrived.
 *
 * civetweb 1.15 gives every accepted connection a worker thread at once
 * and keeps it while the request head trickles in (request_timeout_ms):
 * 64 idle or slow sockets stop the server, and past the thread pool its
 * 20-slot queue and 200-connection listen backlog fill, so a new client
 * cannot even connect.  The door takes that stage over.  After mg_start it
 * keeps civetweb's listening sockets for itself (dup) and puts an eventfd
 * in their place (dup2), so civetweb's master thread polls the eventfd; the
 * door's thread accepts every connection, holds it in an epoll set, and
 * makes it ready (eventfd + 1) only when its head is complete and its
 * body has arrived too: a declared one (Content-Length within
 * max_body_bytes) by its length, a chunked one by following its chunks to
 * the last.  Past about 64 KiB the kernel holds a body for a reader that
 * only peeks if the socket's receive buffer is raised to fit it; the door
 * raises it within a budget for all waiters (256 MiB) and as far as
 * net.core.rmem_max allows, else it hands the connection over at 64 KiB
 * (a Content-Length body; a chunked one at once) and civetweb streams the
 * rest under the body deadline.  civetweb's accept() on the eventfd is answered
 * by the accept() defined in door.c, which the dynamic linker binds for
 * libcivetweb.so too: it returns the next ready connection, and passes any
 * other descriptor to accept4.  TLS listeners: a connection is ready at
 * its first byte (the head is encrypted).
 *
 * A waiting connection costs a descriptor and about 200 bytes.  It is
 * closed when its whole request has not arrived within request_timeout_ms
 * of its accept; once the room is half full, when its address already has
 * max_per_address others waiting (the oldest of them is closed, so a new
 * connection always gets its chance); and, oldest first, when the room is
 * full (room_max).  Measured (docs/reliability.md): with 2,000 idle and 200
 * trickling connections from 127.0.0.1, /healthz answers in under 4 ms;
 * a cap of 32 applied at any fill made the attackers reconnect 15,000
 * times a second and probes failed.
 */
#ifndef RB_HTTP_DOOR_H
#define RB_HTTP_DOOR_H

#include <stddef.h>

#include "core/err.h"

struct mg_context;
struct door;

struct door_opts {
	size_t head_max;     /* civetweb's request buffer: a fuller head is ready */
	size_t body_max;     /* max_body_bytes: a larger declared body is ready */
	int timeout_ms;      /* the whole request, from accept */
	int max_per_address; /* waiting connections per client address; 0: any */
	size_t room_max;     /* waiting connections at once */
};

/* Takes over every listening socket of ctx (started, not yet stopped)
 * and starts the door's thread.  -1 with err set. */
int door_open(struct door **out, struct mg_context *ctx, const struct door_opts *opts,
	      struct err *err);

/* Stops the thread and closes every connection not handed to civetweb
 * yet.  Call before mg_stop (which closes the eventfds).  NULL is fine. */
void door_close(struct door *d);

/* How many connections may wait at once with this process's descriptor
 * limit, after raising its soft limit to the hard one, keeping reserve
 * descriptors for everything else. */
size_t door_room_for_fds(size_t reserve);

#endif
