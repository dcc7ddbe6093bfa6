#!/bin/sh
# Builds the Debian package runbridge_<version>_<arch>.deb:
#
#   scripts/package.sh [BUILD_DIR]      # default build-pkg; the .deb lands there
#   apt-get install ./build-pkg/runbridge_0.1.0_amd64.deb
#
# The release build (scripts/build-release.sh's -DCMAKE_BUILD_TYPE=Release)
# with Debian's hardening flags (dpkg-buildflags), installed with prefix /usr
# (CMakeLists.txt: /etc/runbridge, /lib/systemd/system, /etc/default/runbridge)
# into BUILD_DIR/debian/runbridge, then stripped, the man page and changelog gzipped,
# the maintainer scripts, copyright and changelog from packaging/deb/, every
# file under /etc marked a conffile, and Depends computed by dpkg-shlibdeps
# from the binary and the TLS shim, plus libcurl4 (loaded with dlopen, which
# dpkg-shlibdeps cannot see) and adduser (the maintainer scripts use it).
# The version is the CMake project's; packaging/deb/changelog must agree.
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
dir="${1:-build-pkg}"
case "$dir" in /*) ;; *) dir="$src/$dir" ;; esac
jobs="${RB_JOBS:-2}"

scripts/deps.sh dpkg-dev binutils

export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cflags="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
# --no-as-needed for the shim: it calls nothing in libc itself, but a shared
# object should name libc (lintian's library-not-linked-against-libc).
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DRB_WERROR=OFF \
	-DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_C_FLAGS="$cflags" \
	-DCMAKE_EXE_LINKER_FLAGS="$ldflags" -DCMAKE_SHARED_LINKER_FLAGS="$ldflags -Wl,--no-as-needed" >/dev/null
cmake --build "$dir" -j"$jobs"

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$dir/CMakeCache.txt")
chver=$(dpkg-parsechangelog -l packaging/deb/changelog -S Version)
if [ "$version" != "$chver" ]; then
	echo "package: CMakeLists.txt says $version, packaging/deb/changelog $chver: add a changelog entry" >&2
	exit 1
fi
maintainer=$(dpkg-parsechangelog -l packaging/deb/changelog -S Maintainer)
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l packaging/deb/changelog -S Timestamp)
export SOURCE_DATE_EPOCH
arch=$(dpkg --print-architecture)

root="$dir/debian/runbridge"
rm -rf "$dir/debian"
DESTDIR="$root" cmake --install "$dir" >/dev/null

# What dh_strip, dh_compress and dh_fixperms would do.
strip --remove-section=.comment --remove-section=.note "$root/usr/bin/runbridge"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
	"$root/usr/lib/runbridge/libssl.so"
chmod 0644 "$root/usr/lib/runbridge/libssl.so"
gzip -9nf "$root/usr/share/man/man8/runbridge.8"
doc="$root/usr/share/doc/runbridge"
install -d "$doc"
install -m 0644 packaging/deb/copyright "$doc/copyright"
gzip -9nc packaging/deb/changelog >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
install -D -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/runbridge"

# The shipped config loads against the staged tree (paths pointed into it).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
sed -e "s#/etc/runbridge#$root/etc/runbridge#g" -e "s#/var/lib/runbridge#$scratch/var#g" \
	"$root/etc/runbridge/runbridge.yaml" >"$scratch/check.yaml"
"$root/usr/bin/runbridge" check -c "$scratch/check.yaml" >/dev/null

deb="$root/DEBIAN"
install -d -m 0755 "$deb"

# Depends, as dpkg-shlibdeps computes it (it wants debian/control, and the
# files in a tree with a DEBIAN/).
printf 'Source: runbridge\n\nPackage: runbridge\nArchitecture: any\n' >"$dir/debian/control"
shlibs=$(cd "$dir" && dpkg-shlibdeps -O \
	debian/runbridge/usr/bin/runbridge debian/runbridge/usr/lib/runbridge/libssl.so |
	sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "package: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
depends="adduser, $shlibs, libcurl4"

for f in postinst prerm postrm; do
	install -m 0755 "packaging/deb/$f" "$deb/$f"
done
(cd "$root" && find etc -type f | LC_ALL=C sort | sed 's#^#/#') >"$deb/conffiles"
(cd "$root" && find usr lib -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) >"$deb/md5sums"
chmod 0644 "$deb/conffiles" "$deb/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
	-e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$depends|" packaging/deb/control.in >"$deb/control"
chmod 0644 "$deb/control"

out="$dir/runbridge_${version}_${arch}.deb"
rm -f "$dir"/runbridge_*.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "package: $out ($(du -k "$out" | cut -f1) KiB; Depends: $depends)"
