/*
 * deadline: a whole-body time limit for request reads.
 *
 * civetweb's request timeout applies to each read, so a client trickling a
 * byte at a time would hold a worker thread for as long as it keeps
 * trickling.  A handler arms a deadline before reading the body and disarms
 * it after; one watchdog thread shuts down the socket of any connection
 * still reading past its deadline, which makes the blocked read return.
 * civetweb exposes no socket accessor, so the socket is found (only then)
 * by its address pair among the process's descriptors.
 */
#ifndef RB_HTTP_DEADLINE_H
#define RB_HTTP_DEADLINE_H

struct deadlines;

struct deadlines *deadlines_start(int slots);
void deadlines_stop(struct deadlines *d);

/* Returns a slot index to pass to deadline_disarm, or -1 (all slots busy:
 * the read then has only civetweb's per-read timeout). */
int deadline_arm(struct deadlines *d, int local_port, int remote_port, long long deadline_ms);
/* Returns 1 when the watchdog fired for this slot. */
int deadline_disarm(struct deadlines *d, int slot);

/* The port of socket fd's own address (peer 0) or of its peer's (peer 1),
 * IPv4 or IPv6; -1 for any other socket or a failed call.  A deadline finds
 * its connection by this pair; the door (door.c) finds civetweb's listening
 * sockets by their port the same way. */
int deadline_sock_port(int fd, int peer);

/* Calls fn for each socket descriptor of this process (by /proc/self/fd)
 * until it returns non-zero.  0, or -1 with errno set when the list cannot
 * be read.  How a deadline finds its connection, and the door civetweb's
 * listening sockets. */
int deadline_each_socket(int (*fn)(void *ctx, int fd), void *ctx);

#endif
