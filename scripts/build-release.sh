#!/bin/sh
# The optimised build: what the Docker image ships and CI proves.
#   scripts/build-release.sh [BUILD_DIR] [--no-tests]
# With tests, -O2 also compiles the test programs (warnings that only the
# optimiser sees fail here too).  Ends with `runbridge check` of the
# shipped config and rules.
set -eu
cd "$(dirname "$0")/.."
dir="${1:-build-release}"
testing=ON
[ "${2:-}" = "--no-tests" ] && testing=OFF
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING="$testing" >/dev/null
if [ "$testing" = ON ]; then
	cmake --build "$dir" -j"$(nproc)"
else
	cmake --build "$dir" -j"$(nproc)" --target runbridge
fi
"$dir/runbridge" check -c config/runbridge.yaml
