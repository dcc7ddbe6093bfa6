#!/bin/sh
# Installs, builds with AddressSanitizer and UndefinedBehaviorSanitizer, and
# runs the whole test suite (unit tests, and integration tests that start
# the real binary and their own redis-server on free loopback ports).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh nginx openssl chromium chromium-driver python3-selenium   # nginx: test_nginx.py; chromium, its driver, selenium: test_console.py
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DRB_SANITIZE=ON >/dev/null
cmake --build build-test -j"$(nproc)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --test-dir build-test --output-on-failure -j2 "$@"
