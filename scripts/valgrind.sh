#!/bin/sh
# Runs the integration tests that exercise the whole daemon (HTTP, store,
# Redis, hooks, restarts) with the daemon under valgrind memcheck: any
# memory error or definite leak fails the test (the harness reads the log
# and the exit status).  A build without sanitizers: valgrind and ASan do
# not mix.  Extra arguments go to ctest (e.g. -R integration.test_http).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh valgrind
cmake -S . -B build-vg -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-vg -j"$(nproc)"
RB_WRAPPER="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-fds=no --suppressions=$(pwd)/tests/valgrind.supp" \
	ctest --test-dir build-vg --output-on-failure -j2 \
	-R 'integration.test_(http|pipeline|recovery|ops|targets)$' "$@"
