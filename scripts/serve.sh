#!/bin/sh
# Installs, builds and runs runbridge with config/runbridge.yaml and the
# example rules.  Starts a local redis-server when nothing answers on
# 127.0.0.1:6379.  Extra arguments go to `runbridge serve`.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target runbridge
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
	echo "starting redis-server on 127.0.0.1:6379"
	redis-server --bind 127.0.0.1 --port 6379 --daemonize yes \
		--dir /tmp --logfile /tmp/runbridge-redis.log >/dev/null
fi
exec build/runbridge serve -c config/runbridge.yaml "$@"
