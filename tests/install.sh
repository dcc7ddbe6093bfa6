#!/bin/sh
# `cmake --install` into a scratch DESTDIR puts every file in place, and the
# installed binary accepts the installed config and rules.
set -eu
build="$1"
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
DESTDIR="$dest" cmake --install "$build" >/dev/null
prefix=$(grep '^CMAKE_INSTALL_PREFIX:' "$build/CMakeCache.txt" | cut -d= -f2)
root="$dest$prefix"
for f in bin/runbridge etc/runbridge/runbridge.yaml etc/runbridge/rules/10-streams.yaml \
	 share/runbridge/hooks/notify.sh share/man/man8/runbridge.8 \
	 lib/systemd/system/runbridge.service lib/runbridge/libssl.so; do
	[ -e "$root/$f" ] || { echo "install: $f missing" >&2; exit 1; }
done
[ -x "$root/share/runbridge/hooks/notify.sh" ] || { echo "install: hook not executable" >&2; exit 1; }
# The installed config names absolute paths under the prefix: point them
# into the scratch tree and check it.
sed -e "s#$prefix#$root#g" -e "s#/var/lib/runbridge#$dest/var#g" \
	"$root/etc/runbridge/runbridge.yaml" > "$dest/check.yaml"
"$root/bin/runbridge" check -c "$dest/check.yaml"
echo "install: 1 passed, 0 failed"
