#!/bin/sh
# bench/run.sh: the benchmark suite, in one command (as root, Debian 12).
#
#   bench/run.sh            full run (10-second loads, two rounds), ~5 minutes
#   bench/run.sh --quick    smoke run (3-second loads, one round), under a minute
#                           once built; writes the report too, marked as quick
#   options: --no-perf      skip the perf profile of runbridge under load
#            --out FILE     write the report elsewhere (default docs/benchmarks.md)
#            --keep         keep the temp dir (configs, logs, perf data)
#
# Installs what it needs (scripts/deps.sh, wrk, webhook, nginx-light,
# redis-server), builds a Release runbridge in build-bench/ and the bare
# civetweb + json-c responder (bench/responder.c), then bench/bench.py starts
# every peer on free 127.0.0.1 ports in a temp dir, runs the same wrk load
# against each, and writes docs/benchmarks.md.  Every process it started is
# stopped on exit (bench.py records their pids; the trap below is the
# backstop).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/deps.sh wrk webhook nginx-light redis-tools

echo "building runbridge (Release) in build-bench/"
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target runbridge >/dev/null
echo "building bench/responder.c"
cc -std=c11 -O2 -Wall -Wextra -Werror -o build-bench/bench-responder \
	bench/responder.c -lcivetweb -ljson-c

TMP=$(mktemp -d /tmp/runbridge-bench.XXXXXX)
KEEP=0
for a in "$@"; do [ "$a" = "--keep" ] && KEEP=1; done

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	# Stop what bench.py started (one pid a line), by id; it normally
	# stops them itself, so these are usually gone already.
	if [ -f "$TMP/pids" ]; then
		while read -r pid; do
			kill -TERM "$pid" 2>/dev/null || true
		done <"$TMP/pids"
		sleep 0.5
		while read -r pid; do
			kill -KILL "$pid" 2>/dev/null || true
		done <"$TMP/pids"
	fi
	if [ "$KEEP" = 1 ]; then
		echo "kept $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 bench/bench.py --root "$ROOT" --tmp "$TMP" \
	--runbridge "$ROOT/build-bench/runbridge" \
	--responder "$ROOT/build-bench/bench-responder" "$@"
