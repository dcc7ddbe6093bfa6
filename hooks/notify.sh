#!/bin/sh
# Example hook: a run finished with failures.  argv: project, title, failed
# count; the whole normalized event is on stdin and in $RUNBRIDGE_EVENT.
# Replace the echo with your chat or pager call.
echo "run ${RUN_ID} of $1 (\"$2\") finished with $3 failed case(s)"
