#!/bin/sh
# bench/results.sh [N]: issue 14's benchmark (see bench/results.py): a
# Release runbridge and the fakes, built in build-bench-results/.
set -eu
cd "$(dirname "$0")/.."
cmake -S . -B build-bench-results -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench-results -j"$(nproc)" --target runbridge fake_targets >/dev/null
RUNBRIDGE_BIN=$PWD/build-bench-results/runbridge \
FAKE_TARGETS_BIN=$PWD/build-bench-results/tests/fakes/fake_targets \
RB_FIXTURES=$PWD/tests/fixtures/qase RB_SOURCE_DIR=$PWD \
	python3 bench/results.py "$@"
