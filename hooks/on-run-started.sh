#!/bin/sh
# Example hook: a run started.  argv: project, run id, title.
echo "run $2 of $1 started: $3"
