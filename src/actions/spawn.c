/*
 * spawn: one child, two pipes, one poll loop.
 *
 * posix_spawnp starts the child from the calling worker thread: glibc uses
 * clone(CLONE_VM|CLONE_VFORK), so nothing of a big multithreaded daemon is
 * copied and the exec error (ENOENT, EACCES) comes back as the return value.
 * All our pipe ends are O_CLOEXEC, so a child started by another thread at
 * the same moment cannot hold them open and hide our EOF.
 *
 * One poll(2) loop writes stdin, reads stdout+stderr and watches a pidfd for
 * the exit, so the child can never block on a full pipe while we block on
 * the other one.  The loop ends at the exit, not at EOF: a process the hook
 * moved out of its group (setsid) may hold stdout open for as long as it
 * likes.  At the exit the hook's process group is killed before the hook
 * is reaped, so nothing it started in its group outlives it and the group
 * id cannot have been reused by then.
 */
#include "actions/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"

#define CHUNK (16 * 1024)
/* Reads per drain: a writer that never stops cannot pin the loop. */
#define DRAIN_CHUNKS 64
/* Without a pidfd the exit is noticed by polling waitpid this often. */
#define TICK_MS 20

struct child {
	pid_t pid;
	int pidfd;         /* -1 when pidfd_open is unavailable */
	int in_fd, out_fd; /* our pipe ends, -1 once closed */
	const char *input;
	size_t input_len, input_off;
	int exited, status;
	int lost;  /* reaped by someone else: status unknown */
	int epipe; /* a write raised SIGPIPE in this thread */
};

/* Output with a hard cap; what does not fit is counted as truncation. */
struct capture {
	struct buf out; /* capped at req->output_max */
	int truncated;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Keeps what fits; the rest (or all of it, out of memory) is truncation. */
static void capture_add(struct capture *k, const char *p, size_t n)
{
	size_t room = buf_room(&k->out);

	if (n > room) {
		k->truncated = 1;
		n = room;
	}
	if (n && buf_add(&k->out, p, n) < 0)
		k->truncated = 1;
}

/* ---- SIGPIPE ------------------------------------------------------------- */

/*
 * Writing to a pipe whose reader is gone raises SIGPIPE in the writing
 * thread, which kills the process unless it is ignored.  Instead of relying
 * on the daemon's disposition, the thread blocks SIGPIPE while it feeds the
 * child and takes the pending signal back before unblocking: the effect of
 * send(MSG_NOSIGNAL), for a pipe.  A SIGPIPE that was already pending
 * before is left alone (standard signals do not queue twice).
 */
struct sigpipe_guard {
	sigset_t old;
	int was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

static void sigpipe_restore(struct sigpipe_guard *g, int raised)
{
	if (raised && !g->was_pending) {
		const struct timespec zero = { 0, 0 };
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ---- start --------------------------------------------------------------- */

static int open_pipes(int in[2], int out[2])
{
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return -1;
	/* Only our ends: the child's stay blocking, as programs expect. */
	if (fcntl(in[1], F_SETFL, O_NONBLOCK) < 0 || fcntl(out[0], F_SETFL, O_NONBLOCK) < 0)
		return -1;
	return 0;
}

static int file_actions(posix_spawn_file_actions_t *fa, const struct spawn_req *req,
			const int in[2], const int out[2])
{
	/* dup2 clears O_CLOEXEC on the copies; the originals close at exec. */
	int rc = posix_spawn_file_actions_adddup2(fa, in[0], 0);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(fa, out[1], 1);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(fa, out[1], 2);
	if (!rc && req->cwd)
		rc = posix_spawn_file_actions_addchdir_np(fa, req->cwd);
	/* Whatever the daemon opened without O_CLOEXEC stays with the daemon. */
	if (!rc)
		rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
	return rc;
}

static int attributes(posix_spawnattr_t *attr)
{
	sigset_t none, all;

	sigemptyset(&none);
	/* glibc's sigfillset leaves out its internal signals. */
	sigfillset(&all);
	/* Own group: the timeout kills the hook and everything it started.
	 * Mask and dispositions: the daemon blocks and ignores signals (SIGPIPE,
	 * SIGTERM...) that a hook must see as any program would. */
	int rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
							POSIX_SPAWN_SETSIGDEF);
	if (!rc)
		rc = posix_spawnattr_setpgroup(attr, 0);
	if (!rc)
		rc = posix_spawnattr_setsigmask(attr, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(attr, &all);
	return rc;
}

/* Returns 0 or an errno value. */
static int start(pid_t *pid, const struct spawn_req *req, const int in[2], const int out[2])
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int rc;

	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		return rc;
	if ((rc = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	rc = file_actions(&fa, req, in, out);
	if (!rc)
		rc = attributes(&attr);
	if (!rc)
		rc = posix_spawnp(pid, req->argv[0], &fa, &attr, req->argv, req->envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/* The longest argument or variable, "argv[1]" or "env NAME", into what. */
static size_t largest(const struct spawn_req *req, char *what, size_t len)
{
	size_t max = 0;

	for (size_t i = 0; req->argv[i]; i++) {
		size_t n = strlen(req->argv[i]);
		if (n >= max) {
			max = n;
			snprintf(what, len, "argv[%zu]", i);
		}
	}
	for (size_t i = 0; req->envp && req->envp[i]; i++) {
		size_t n = strlen(req->envp[i]);
		if (n > max) {
			max = n;
			snprintf(what, len, "env %.*s", (int)strcspn(req->envp[i], "="),
				 req->envp[i]);
		}
	}
	return max;
}

/* E2BIG: the same arguments can never start, so the message says which
 * one is large (not what it holds) and the code makes it permanent. */
static int too_big(const struct spawn_req *req, struct err *err)
{
	char what[80] = "?";
	size_t n = largest(req, what, sizeof(what));

	return err_setc(err, ERR_TOOLARGE,
			"cannot start '%.100s': argument list too long (E2BIG): "
			"the largest, %s, is %zu bytes; Linux takes at most %d "
			"bytes per argument or variable and %ld in all",
			req->argv[0], what, n, SPAWN_ARG_MAX, sysconf(_SC_ARG_MAX));
}

static int start_error(const struct spawn_req *req, int e, struct err *err)
{
	if (e == E2BIG)
		return too_big(req, err);
	/* chdir fails inside the child with the same ENOENT as a missing
	 * program; say which one it was. */
	if (req->cwd && access(req->cwd, X_OK) < 0)
		return err_set(err, "cannot start '%s': cwd '%s': %s", req->argv[0], req->cwd,
			       strerror(errno));
	return err_set(err, "cannot start '%s': %s", req->argv[0], strerror(e));
}

/* ---- run ----------------------------------------------------------------- */

static void feed(struct child *c)
{
	while (c->input_off < c->input_len) {
		ssize_t n = write(c->in_fd, c->input + c->input_off, c->input_len - c->input_off);
		if (n > 0) {
			c->input_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		/* EPIPE: the child need not read stdin; it just gets no more. */
		c->epipe |= n < 0 && errno == EPIPE;
		break;
	}
	/* All written (or refused): EOF tells the child there is no more. */
	close_fd(&c->in_fd);
}

static void drain(struct child *c, struct capture *k, char *chunk)
{
	for (int i = 0; i < DRAIN_CHUNKS; i++) {
		ssize_t n = read(c->out_fd, chunk, CHUNK);
		if (n > 0) {
			capture_add(k, chunk, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		close_fd(&c->out_fd);
		return;
	}
}

/* Notices the exit without reaping: until the hook is reaped its pid, and
 * so its process group's id, cannot be reused (see run). */
static void check_exit(struct child *c)
{
	siginfo_t si;
	int r;

	memset(&si, 0, sizeof(si));
	do
		r = waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT);
	while (r < 0 && errno == EINTR);
	/* ECHILD: reaped behind our back; reap() says so */
	if (r < 0 || si.si_pid == c->pid)
		c->exited = 1;
}

static void reap(struct child *c, int flags)
{
	pid_t r;

	do
		r = waitpid(c->pid, &c->status, flags);
	while (r < 0 && errno == EINTR);
	if (r == c->pid) {
		c->exited = 1;
	} else if (r < 0) {
		/* ECHILD: reaped behind our back (SIGCHLD set to SIG_IGN). */
		c->exited = 1;
		c->lost = 1;
	}
}

static int poll_wait(struct child *c, long long left, int *out_ev, int *in_ev, int *pid_ev)
{
	struct pollfd p[3];
	nfds_t n = 0;
	int oi = -1, ii = -1, pi = -1;

	if (c->out_fd >= 0)
		p[oi = (int)n++] = (struct pollfd){ c->out_fd, POLLIN, 0 };
	if (c->in_fd >= 0)
		p[ii = (int)n++] = (struct pollfd){ c->in_fd, POLLOUT, 0 };
	if (c->pidfd >= 0)
		p[pi = (int)n++] = (struct pollfd){ c->pidfd, POLLIN, 0 };
	else if (left > TICK_MS)
		left = TICK_MS;
	if (left > INT_MAX)
		left = INT_MAX;
	if (poll(p, n, (int)left) < 0)
		return errno == EINTR ? 0 : -1;
	*out_ev = oi >= 0 && p[oi].revents;
	*in_ev = ii >= 0 && p[ii].revents;
	*pid_ev = pi < 0 || p[pi].revents;
	return 0;
}

/* Runs until the child exits or the deadline passes; -1 if poll fails. */
static int pump(struct child *c, struct capture *k, char *chunk, long long deadline)
{
	feed(c);
	while (!c->exited) {
		int out_ev = 0, in_ev = 0, pid_ev = 0;
		long long left = deadline - clock_mono_ms();

		if (left <= 0)
			return 0;
		if (poll_wait(c, left, &out_ev, &in_ev, &pid_ev) < 0)
			return -1;
		if (out_ev)
			drain(c, k, chunk);
		if (in_ev)
			feed(c);
		if (pid_ev)
			check_exit(c);
	}
	return 0;
}

static void fill(struct exec_outcome *o, const struct child *c, int timed_out)
{
	/* exit_code -1 when there is none, for readers that skip the flags. */
	o->exit_code = -1;
	if (timed_out) {
		o->timed_out = 1;
	} else if (c->lost) {
		return;
	} else if (WIFSIGNALED(c->status)) {
		o->signaled = 1;
		o->term_signal = WTERMSIG(c->status);
	} else {
		o->exit_code = WEXITSTATUS(c->status);
	}
}

/* Feeds, reads and waits under the SIGPIPE guard; always reaps. */
static int run(struct child *c, struct capture *k, const struct spawn_req *req, long long started,
	       int *timed_out, struct err *err)
{
	struct sigpipe_guard g;
	char *chunk = malloc(CHUNK);
	int rc = -1;

	sigpipe_block(&g);
	if (!chunk)
		err_set(err, "'%s': out of memory", req->argv[0]);
	else if ((rc = pump(c, k, chunk, started + req->timeout_ms)) < 0)
		err_set(err, "'%s': poll: %s", req->argv[0], strerror(errno));
	*timed_out = !c->exited && rc == 0;
	/* Past the deadline, and also at the exit: what the hook left in its
	 * group dies with it (a daemon it means to leave behind runs setsid).
	 * The hook is not reaped yet, so the group id is still its own. */
	kill(-c->pid, SIGKILL);
	reap(c, 0);
	/* What was written before is in the pipe already. */
	if (chunk && c->out_fd >= 0)
		drain(c, k, chunk);
	sigpipe_restore(&g, c->epipe);
	free(chunk);
	return rc;
}

int spawn_run(const struct spawn_req *req, struct exec_outcome *out, struct err *err)
{
	struct child c = { .pid = -1,
			   .pidfd = -1,
			   .in_fd = -1,
			   .out_fd = -1,
			   .input = req->input,
			   .input_len = req->input_len };
	struct capture k = { .truncated = 0 };
	int in[2] = { -1, -1 }, op[2] = { -1, -1 };
	long long started = clock_mono_ms();
	int rc = -1, e, timed_out = 0;

	memset(out, 0, sizeof(*out));
	buf_init(&k.out, req->output_max);
	if (open_pipes(in, op) < 0) {
		err_set(err, "cannot start '%s': pipe: %s", req->argv[0], strerror(errno));
		goto done;
	}
	e = start(&c.pid, req, in, op);
	close_fd(&in[0]);
	close_fd(&op[1]);
	if (e) {
		start_error(req, e, err);
		goto done;
	}
	c.in_fd = in[1];
	c.out_fd = op[0];
	in[1] = op[0] = -1;
	/* Not yet waited for, so the pid cannot have been reused. */
	c.pidfd = (int)syscall(SYS_pidfd_open, c.pid, 0);
	if (run(&c, &k, req, started, &timed_out, err) < 0)
		goto done;
	fill(out, &c, timed_out);
	out->elapsed_ms = clock_mono_ms() - started;
	out->truncated = k.truncated;
	out->output = buf_detach(&k.out, &out->output_len);
	rc = 0;
done:
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&op[0]);
	close_fd(&op[1]);
	close_fd(&c.in_fd);
	close_fd(&c.out_fd);
	close_fd(&c.pidfd);
	buf_free(&k.out);
	return rc;
}
