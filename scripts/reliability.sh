#!/bin/sh
# The long reliability run behind docs/reliability.md, in one command:
#   - 5000 deliveries under SIGKILL at random moments (20 kills), and SIGTERM
#     mid-load, with exec hooks counted (tests/integration/test_chaos.py);
#   - Redis outages, restarts, a full disk (test_recovery.py);
#   - target API outages: 503, 429 + Retry-After, resets, stalls, answers
#     lost between the call and the commit, permanent errors (test_targets.py);
#   - hostile deliveries and slow senders (test_hostile.py);
#   - each libFuzzer harness for FUZZ_SECONDS (default 60).
# Prints the figures the document reports.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=Debug -DRB_SANITIZE=ON >/dev/null
cmake --build build-test -j"$(nproc)"
RB_CHAOS_N="${RB_CHAOS_N:-5000}" ctest --test-dir build-test -V \
	-R 'integration.test_(chaos|recovery|targets|hostile)$' 2>&1 |
	tee build-test/reliability.log | grep -oE 'chaos: .*|Ran [0-9]+ tests.*|tests passed.*'
scripts/fuzz.sh "${FUZZ_SECONDS:-60}" 2>&1 | tail -n 6
