#!/bin/sh
# Test hook: records its argv (one per line), stdin, and environment into
# $OUT_DIR/<RUN_ID>-<n>.{args,stdin,env}; exits with $HOOK_EXIT (default 0).
set -eu
dir="${OUT_DIR:?}"
n=$(ls "$dir" 2>/dev/null | wc -l)
base="$dir/${RUN_ID:-x}-$n"
for a in "$@"; do printf '%s\n' "$a"; done > "$base.args.tmp"
cat > "$base.stdin.tmp"
env > "$base.env.tmp"
mv "$base.stdin.tmp" "$base.stdin"
mv "$base.env.tmp" "$base.env"
mv "$base.args.tmp" "$base.args"
echo "recorded $base"
exit "${HOOK_EXIT:-0}"
