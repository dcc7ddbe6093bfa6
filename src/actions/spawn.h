/*
 * spawn: run one program to completion with a deadline, feeding it input on
 * stdin and capturing stdout+stderr, without a shell.  The process-running
 * half of action_exec; it knows nothing of rules, events or params.
 *
 * The child leads its own process group, has only fds 0, 1, 2 open, an empty
 * signal mask and every signal at its default disposition (whatever the
 * daemon blocks or ignores).  When the child exits, and past the deadline,
 * the whole group gets SIGKILL: background processes a hook leaves in its
 * group do not outlive it (one that must, a daemon, calls setsid).  The
 * child is always reaped before spawn_run returns; no fd outlives it.
 *
 * Thread-safe: each call owns its pipes and child.  SIGPIPE from feeding a
 * child that does not read stdin is taken back in the calling thread, so it
 * cannot kill the process even where SIGPIPE is at its default.
 */
#ifndef RB_ACTIONS_SPAWN_H
#define RB_ACTIONS_SPAWN_H

#include <stddef.h>

#include "actions/action_exec.h"
#include "core/err.h"

struct spawn_req {
	/* argv[0] is looked up in the daemon's PATH when it has no '/'; a
	 * relative path is resolved in cwd. */
	char *const *argv;
	char *const *envp; /* the child's whole environment */
	const char *cwd;   /* NULL: the daemon's working directory */
	const char *input; /* written to stdin, which is then closed */
	size_t input_len;
	long long timeout_ms; /* > 0, from before the start to the exit */
	size_t output_max;    /* output past this is read and dropped */
};

/* Linux's limit on one argument or environment string (MAX_ARG_STRLEN,
 * with its NUL), for messages. */
#define SPAWN_ARG_MAX (128 * 1024)

/*
 * Returns 0 when the child ran and was reaped (out says how it ended; the
 * caller frees out->output), -1 when it could not be started ("cannot start
 * 'x': No such file or directory") or the wait failed.  On -1, out->output
 * is NULL.  err->code is ERR_TOOLARGE when exec refused the arguments and
 * environment as too large (E2BIG; the message names the largest, not its
 * contents): the same request can never start.
 */
int spawn_run(const struct spawn_req *req, struct exec_outcome *out, struct err *err);

#endif
