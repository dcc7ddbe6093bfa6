#!/bin/sh
# bench/retention.sh: retention on a store of 1,000,000 old deliveries while
# deliveries keep coming (bench/retention.py says what it measures).
#
#   bench/retention.sh [--n N] [--rate R] [--seconds S]   (defaults 1000000, 500, 20)
#
# Builds a Release runbridge in build-retention/, runs bench/retention.py in
# a temp dir (about 3 GB for 1M deliveries) and prints a Markdown section
# for docs/benchmarks.md.  Not part of ctest: tests/integration/
# test_retention.py is the short version.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-retention}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target runbridge >/dev/null
TMP=$(mktemp -d /tmp/runbridge-retention.XXXXXX)
cleanup() {
	rc=$?
	trap - EXIT INT TERM
	# stop what retention.py started (one pid a line), by id
	if [ -f "$TMP/pids" ]; then
		while read -r pid; do kill -TERM "$pid" 2>/dev/null || true; done <"$TMP/pids"
	fi
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
python3 bench/retention.py --bin "$BUILD/runbridge" --tmp "$TMP" \
	--fixture tests/fixtures/qase/run.completed.json "$@"
