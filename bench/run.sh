#!/bin/sh
# bench/run.sh: the benchmark suite, in one command (as root, Debian 12).
#
#   bench/run.sh            full run (10-second loads, two rounds, the cost
#                           curve), ~7 minutes
#   bench/run.sh --quick    smoke run (3-second loads, one round, a short
#                           curve), about two minutes once built; writes the
#                           report too, marked as quick
#   bench/run.sh --curve-only [--quick]
#                           the cost curve alone (~4 minutes; ~1 with --quick):
#                           its table on stdout (or --out FILE) and the plot
#   options: --no-perf      skip the perf profile of runbridge under load
#            --no-curve     skip the cost curve
#            --out FILE     write the report elsewhere (default docs/benchmarks.md;
#                           what is written by hand below its generated part is kept)
#            --plot FILE    the cost curve's PNG (default docs/img/cost-curve.png)
#            --build-dir D  build in D instead of build-bench/
#            --keep         keep the temp dir (configs, logs, perf data)
#
# Installs what it needs (scripts/deps.sh, wrk, webhook, nginx-light,
# redis-server, gnuplot-nox), builds a Release runbridge in build-bench/, the
# bare civetweb + json-c responder (bench/responder.c) and the open-loop load
# generator (bench/openloop.c), then bench/bench.py starts every peer on free
# 127.0.0.1 ports in a temp dir, runs the same wrk load against each, and
# writes docs/benchmarks.md and docs/img/cost-curve.png.  Every process it
# started is stopped on exit (bench.py records their pids; the trap below is
# the backstop).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BUILD=build-bench
KEEP=0
prev=""
for a in "$@"; do
	[ "$a" = "--keep" ] && KEEP=1
	[ "$prev" = "--build-dir" ] && BUILD=$a
	prev=$a
done
[ "$prev" = "--build-dir" ] && { echo "run.sh: --build-dir needs a directory" >&2; exit 2; }
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

scripts/deps.sh wrk webhook nginx-light redis-tools gnuplot-nox

echo "building runbridge (Release) in $BUILD/"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target runbridge >/dev/null
echo "building bench/responder.c and bench/openloop.c"
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$BUILD/bench-responder" \
	bench/responder.c -lcivetweb -ljson-c
cc -std=c11 -O2 -Wall -Wextra -Werror -o "$BUILD/bench-openloop" bench/openloop.c

TMP=$(mktemp -d /tmp/runbridge-bench.XXXXXX)

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
	--runbridge "$BUILD/runbridge" \
	--responder "$BUILD/bench-responder" \
	--openloop "$BUILD/bench-openloop" "$@"
