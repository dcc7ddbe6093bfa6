#!/bin/sh
# Installs what runbridge needs to build, run and test, from Debian's
# packages.  Run as root; does nothing when everything is present.
set -eu
PKGS="build-essential cmake pkg-config libcivetweb-dev libjson-c-dev
libhiredis-dev libyaml-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev
libcmocka-dev redis-server python3 curl libclang-rt-14-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
