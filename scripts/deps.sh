#!/bin/sh
# Installs what runbridge needs to build, run and test, from Debian's
# packages, plus any package names given as arguments (the benchmark, fuzz
# and valgrind scripts add theirs).  Run as root; does nothing when
# everything is present.  Packages that ship services (redis-server, nginx)
# are kept from starting them: runbridge's scripts start their own, on
# 127.0.0.1 only.
set -eu
PKGS="build-essential cmake pkg-config libcivetweb-dev libjson-c-dev
libhiredis-dev libyaml-dev libsqlite3-dev libssl-dev nettle-dev libcurl4-openssl-dev
libcmocka-dev redis-server python3 curl libclang-rt-14-dev clang-format $*"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -n "$missing" ] || exit 0
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
prc=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
	prc=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\nexit 101\n' >"$prc"
	chmod 755 "$prc"
	trap 'rm -f "$prc"' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
