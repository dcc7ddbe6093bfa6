#!/bin/sh
# Fuzzes what peers and rule authors write (deliveries, the config file,
# rule files, templates, request heads) with libFuzzer under ASan+UBSan:
#
#   scripts/fuzz.sh [SECONDS]     # each harness runs SECONDS (default 60)
#
# Builds the harnesses in build-fuzz with clang (-DRB_FUZZ=ON), then runs
# each one in turn on its corpus: build-fuzz/corpus/<harness> keeps what
# earlier runs found, tests/fuzz/corpus/<harness> holds the checked-in seeds
# (read, never written).  Crashes, leaks and sanitizer reports are written to
# build-fuzz/artifacts/ (replay one: build-fuzz/tests/fuzz/<harness> FILE).
# Exits non-zero when any harness found one.
set -eu
cd "$(dirname "$0")/.."
secs="${1:-60}"
case "$secs" in
'' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
esac

scripts/deps.sh clang

build=build-fuzz
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DRB_FUZZ=ON \
	-DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz

harnesses="fuzz_event fuzz_config fuzz_rules fuzz_template fuzz_http"
summary=""
failed=0
for h in $harnesses; do
	corpus="$build/corpus/$h"
	arts="$build/artifacts/$h"
	log="$build/logs/$h.log"
	mkdir -p "$corpus" "$arts" "$(dirname "$log")"
	rm -f "$arts"/*
	echo "fuzz: $h for ${secs}s (log: $log)"
	rc=0
	"$build/tests/fuzz/$h" -max_total_time="$secs" -rss_limit_mb=2048 \
		-timeout=10 -print_final_stats=1 -artifact_prefix="$arts/" \
		-dict="tests/fuzz/$h.dict" "$corpus" "tests/fuzz/corpus/$h" \
		>"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	corp=$(grep -o 'corp: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
	crashes=$(find "$arts" -type f | wc -l)
	if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ] ||
		grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
		[ "$crashes" -gt 0 ] || crashes=1
		failed=1
		echo "fuzz: $h FAILED (exit $rc); the report:" >&2
		grep -A40 -E 'ERROR: |runtime error:' "$log" | head -n 40 >&2 || tail -n 40 "$log" >&2
		find "$arts" -type f | sed 's/^/fuzz:   input: /' >&2
	fi
	summary="${summary}fuzz: $h ${execs:-0} execs, ${corp:-0} corpus, $crashes crashes
"
done
printf '%s' "$summary"
exit "$failed"
