/*
 * action_exec: run a program for an event, directly, never through a shell.
 *
 *   - exec: { argv: ["hooks/notify.sh", "{{run.title}}"], env: { RUN_ID: "{{run_id}}" },
 *             timeout_s: 30, cwd: "optional/dir" }
 *
 * Each argv element is one template rendered into exactly one argument, so a
 * title like `"; rm -rf / #` is just text.  Rendered params:
 *   {"argv":["hooks/notify.sh","Nightly"],"env":{"RUN_ID":"42"},
 *    "timeout_s":30,"cwd":null}
 *
 * The child gets: a clean environment (PATH from the daemon, or a default;
 * RUNBRIDGE_EVENT = the normalized event JSON, RUNBRIDGE_DELIVERY_ID) plus
 * the rule's env; the event JSON on stdin; its own process group; no file
 * descriptors but 0, 1, 2.  Exit 0 is success.  A non-zero exit, a signal,
 * or running past timeout_s (the whole process group gets SIGKILL) is a
 * failed attempt.  stdout and stderr are captured together, capped.  When
 * the hook exits its process group gets SIGKILL too: a background process
 * it started dies with it unless it left the group (setsid).
 *
 * Failures retrying cannot fix are permanent at once (WORK_PERMANENT): an
 * argument or variable that would hold a NUL byte from the event (render
 * puts "error" in params, naming it: "argv[1] would hold a NUL byte..."),
 * and arguments too large for exec (E2BIG, naming the largest).
 */
#ifndef RB_ACTIONS_ACTION_EXEC_H
#define RB_ACTIONS_ACTION_EXEC_H

#include <stddef.h>
#include <json-c/json.h>

#include "actions/action.h"
#include "core/err.h"

extern const struct action_ops action_exec_ops;

/* Linux refuses one environment string over 128 KiB; a larger event goes to
 * RUNBRIDGE_EVENT without its "raw" member, and if still too large the
 * variable is left out and RUNBRIDGE_EVENT_TRUNCATED=1 is set.  stdin always
 * gets the whole event. */
#define EXEC_ENV_VALUE_MAX (120 * 1024)

struct exec_outcome {
	int exit_code; /* valid when !signaled && !timed_out */
	int signaled;  /* killed by signal term_signal */
	int term_signal;
	int timed_out;
	long long elapsed_ms;
	char *output; /* malloc'd, NUL-terminated, stdout+stderr */
	size_t output_len;
	int truncated; /* output exceeded the cap */
};

/*
 * Runs params (as rendered above) with event_json on stdin.  Returns 0 when
 * the child was started and waited for (outcome says how it ended), -1 when
 * it could not be started (err says why: no such file, permission...; the
 * code is ERR_INVALID for params with "error", ERR_TOOLARGE for E2BIG).
 * The caller frees outcome->output.
 */
int action_exec_run(const json_object *params, const char *event_json, const char *delivery_id,
		    size_t output_max, struct exec_outcome *outcome, struct err *err);

/* A one-line summary for logs and attempt records: "exit 3", "timed out
 * after 30000 ms", "killed by signal 9", "cannot start: ...". */
void exec_outcome_describe(const struct exec_outcome *o, char *buf, size_t len);

#endif
