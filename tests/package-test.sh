#!/bin/sh
# The Debian package end to end, as root on a Debian 12 machine (CI):
#
#   tests/package-test.sh [BUILD_DIR]     # default build-pkg
#
# Builds it (scripts/package.sh), installs it with apt-get, checks the
# layout, the user and /var/lib/runbridge, runs `runbridge check` on the
# installed config, starts the installed binary as the user runbridge with a
# copy of the installed config that differs only in the Redis URL (a
# throwaway redis-server) and the listen port, posts a sample delivery and
# finds it in the stream the installed rules write, checks the TLS shim is
# found in /usr/lib/runbridge, checks that an edited conffile survives a
# reinstall and an upgrade, that `remove` keeps the store and the user and
# `purge` deletes them, and that lintian reports no error.  Everything it
# started is stopped and the package purged, also on failure.  Only
# loopback addresses are used.  Services are kept from starting while the
# package is installed (policy-rc.d), as scripts/deps.sh does.
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
build="${1:-build-pkg}"
case "$build" in /*) ;; *) build="$src/$build" ;; esac

[ "$(id -u)" = 0 ] || { echo "package: FAILED: run as root (it installs the package)" >&2; exit 1; }
scripts/deps.sh dpkg-dev binutils lintian openssl procps

passed=0
tmp=$(mktemp -d /tmp/runbridge-pkgtest.XXXXXX)
chmod 0755 "$tmp"
redis_pid=""
daemon_pid=""
prc=""
installed_here=0

log() { echo "package: $*"; }
ok() { passed=$((passed + 1)); echo "package: ok $passed - $*"; }
fail() {
	echo "package: FAILED: $*" >&2
	exit 1
}
apt_get() {
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q "$@"
}
stop_pid() { # pid: SIGTERM, then SIGKILL after 10 s
	[ -n "$1" ] || return 0
	kill "$1" 2>/dev/null || return 0
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null || true
}
cleanup() {
	rc=$?
	set +e
	stop_pid "$daemon_pid"
	stop_pid "$redis_pid"
	if [ "$installed_here" = 1 ] && dpkg-query -W -f='${db:Status-Status}' runbridge 2>/dev/null |
		grep -qv '^not-installed$'; then
		apt_get purge runbridge >/dev/null 2>&1 || log "cleanup: could not purge runbridge"
	fi
	[ -n "$prc" ] && rm -f "$prc"
	if [ $rc -ne 0 ] && [ -s "$tmp/daemon.log" ]; then
		echo "package: the daemon's log:" >&2
		tail -n 30 "$tmp/daemon.log" >&2
	fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url pid: up to 15 s for a 200
	i=0
	while [ $i -lt 150 ]; do
		kill -0 "$2" 2>/dev/null || return 1
		code=$(curl -sk -o /dev/null -w '%{http_code}' "$1" 2>/dev/null) || code=000
		[ "$code" = 200 ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
start_daemon() { # config: the installed binary as runbridge, the unit's cwd and umask
	(cd /usr/share/runbridge && umask 0027 &&
		exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
			setpriv --reuid=runbridge --regid=runbridge --init-groups \
			/usr/bin/runbridge serve -c "$1") >"$tmp/daemon.log" 2>&1 &
	daemon_pid=$!
}
stop_daemon() { # SIGTERM; the daemon must exit 0
	kill -TERM "$daemon_pid"
	st=0
	wait "$daemon_pid" || st=$?
	daemon_pid=""
	[ "$st" = 0 ] || fail "runbridge serve exited $st on SIGTERM"
}

if dpkg-query -W -f='${db:Status-Status}' runbridge 2>/dev/null | grep -qv '^not-installed$'; then
	fail "a runbridge package is already installed here; this test installs and purges it (apt-get purge runbridge first)"
fi

# ---- build ------------------------------------------------------------------
scripts/package.sh "$build"
set -- "$build"/runbridge_*_*.deb
[ $# = 1 ] && [ -f "$1" ] || fail "scripts/package.sh made no single .deb in $build"
deb="$1"
version=$(dpkg-deb -f "$deb" Version)
ok "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

# ---- lintian ----------------------------------------------------------------
lintian --info --display-info "$deb" >"$tmp/lintian.txt" 2>&1 || true
grep -E '^[EWI]: ' "$tmp/lintian.txt" | sed 's/^/package: lintian: /' || true
if grep -q '^E: ' "$tmp/lintian.txt"; then
	fail "lintian reports errors (above)"
fi
ok "lintian: no errors ($(grep -c '^W: ' "$tmp/lintian.txt" || true) warnings)"

# ---- install ----------------------------------------------------------------
if [ ! -e /usr/sbin/policy-rc.d ]; then
	prc=/usr/sbin/policy-rc.d
	printf '#!/bin/sh\nexit 101\n' >"$prc"
	chmod 755 "$prc"
fi
installed_here=1
(cd "$(dirname "$deb")" && apt_get install "./$(basename "$deb")") >"$tmp/apt.log" 2>&1 ||
	{ cat "$tmp/apt.log" >&2; fail "apt-get install ./$(basename "$deb") failed"; }
[ "$(dpkg-query -W -f='${db:Status-Status} ${Version}' runbridge)" = "installed $version" ] ||
	fail "runbridge $version is not installed after apt-get install"
ok "apt-get install ./$(basename "$deb")"

for f in /usr/bin/runbridge /usr/lib/runbridge/libssl.so /etc/runbridge/runbridge.yaml \
	/etc/runbridge/rules/10-streams.yaml /etc/default/runbridge \
	/usr/share/runbridge/hooks/notify.sh /usr/share/runbridge/hooks/on-run-started.sh \
	/lib/systemd/system/runbridge.service /usr/share/man/man8/runbridge.8.gz \
	/usr/share/doc/runbridge/copyright /usr/share/doc/runbridge/changelog.gz; do
	[ -f "$f" ] || fail "$f is not installed"
done
[ -x /usr/share/runbridge/hooks/notify.sh ] || fail "the hooks are not executable"
grep -q '^EnvironmentFile=-/etc/default/runbridge$' /lib/systemd/system/runbridge.service ||
	fail "the unit does not read /etc/default/runbridge"
grep -q '^WorkingDirectory=/usr/share/runbridge$' /lib/systemd/system/runbridge.service ||
	fail "the unit's WorkingDirectory is not /usr/share/runbridge"
grep -q '^ExecStart=/usr/bin/runbridge serve -c /etc/runbridge/runbridge.yaml$' \
	/lib/systemd/system/runbridge.service || fail "the unit's ExecStart is not the installed binary and config"
grep -q '^rules: /etc/runbridge/rules$' /etc/runbridge/runbridge.yaml &&
	grep -q '^data_dir: /var/lib/runbridge$' /etc/runbridge/runbridge.yaml ||
	fail "the installed config does not name /etc/runbridge/rules and /var/lib/runbridge"
! grep -rq /usr/local /etc/runbridge /lib/systemd/system/runbridge.service /etc/default/runbridge ||
	fail "an installed file still names /usr/local"
ok "layout: binary, shim, config, rules, hooks, unit, man page, docs"

conffiles=$(dpkg-query -W -f='${Conffiles}\n' runbridge | awk 'NF {print $1}')
for f in /etc/runbridge/runbridge.yaml /etc/runbridge/rules/10-streams.yaml \
	/etc/runbridge/rules/20-failures.yaml /etc/runbridge/rules/30-ci.yaml /etc/default/runbridge; do
	echo "$conffiles" | grep -qx "$f" || fail "$f is not a conffile"
done
ok "conffiles: runbridge.yaml, rules/*.yaml, /etc/default/runbridge"

getent passwd runbridge >/dev/null || fail "no user runbridge"
getent group runbridge >/dev/null || fail "no group runbridge"
[ "$(getent passwd runbridge | cut -d: -f6,7)" = "/var/lib/runbridge:/usr/sbin/nologin" ] ||
	fail "user runbridge: home/shell are $(getent passwd runbridge | cut -d: -f6,7)"
[ "$(id -u runbridge)" -lt 1000 ] || fail "runbridge is not a system user"
[ "$(stat -c '%U:%G %a' /var/lib/runbridge)" = "runbridge:runbridge 750" ] ||
	fail "/var/lib/runbridge is $(stat -c '%U:%G %a' /var/lib/runbridge), not runbridge:runbridge 750"
[ "$(stat -c '%U:%G %a' /etc/default/runbridge)" = "root:runbridge 640" ] ||
	fail "/etc/default/runbridge is $(stat -c '%U:%G %a' /etc/default/runbridge), not root:runbridge 640"
ok "user and group runbridge, /var/lib/runbridge runbridge:runbridge 0750"

# No systemd runs here: the unit is enabled (as deb-systemd-helper does) but
# nothing started it.
[ -L /etc/systemd/system/multi-user.target.wants/runbridge.service ] ||
	fail "the unit is not enabled (no multi-user.target.wants/runbridge.service)"
if [ ! -d /run/systemd/system ] && pgrep -u runbridge -x runbridge >/dev/null; then
	fail "a runbridge process runs although systemd does not"
fi
ok "unit enabled, not started without systemd"

# ---- the installed binary ---------------------------------------------------
runbridge --version >/dev/null || fail "runbridge --version"
runbridge check -c /etc/runbridge/runbridge.yaml >"$tmp/check.log" 2>&1 ||
	{ cat "$tmp/check.log" >&2; fail "runbridge check -c /etc/runbridge/runbridge.yaml"; }
ok "runbridge check -c /etc/runbridge/runbridge.yaml"

rport=$(free_port)
redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no \
	--dir "$tmp" --logfile "$tmp/redis.log" &
redis_pid=$!
i=0
until redis-cli -h 127.0.0.1 -p "$rport" ping 2>/dev/null | grep -q PONG; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "redis-server did not answer on 127.0.0.1:$rport"
	kill -0 "$redis_pid" 2>/dev/null || fail "redis-server exited (see $tmp/redis.log)"
	sleep 0.1
done

hport=$(free_port)
grep -q '^listen: 127.0.0.1:8080 ' /etc/runbridge/runbridge.yaml &&
	grep -q '^  url: redis://127.0.0.1:6379/0 ' /etc/runbridge/runbridge.yaml ||
	fail "the installed config's listen/redis.url lines are not the ones this test rewrites"
sed -e "s#^listen: 127.0.0.1:8080 #listen: 127.0.0.1:$hport #" \
	-e "s#^  url: redis://127.0.0.1:6379/0 #  url: redis://127.0.0.1:$rport/0 #" \
	/etc/runbridge/runbridge.yaml >"$tmp/runbridge.yaml"
chmod 0644 "$tmp/runbridge.yaml"
[ "$(diff /etc/runbridge/runbridge.yaml "$tmp/runbridge.yaml" | grep -c '^[<>]')" = 4 ] ||
	fail "the test config differs from the installed one in more than listen and redis.url"

start_daemon "$tmp/runbridge.yaml"
wait_http "http://127.0.0.1:$hport/healthz" "$daemon_pid" ||
	fail "runbridge serve (as runbridge) did not answer /healthz on 127.0.0.1:$hport"
[ "$(ps -o user= -p "$daemon_pid")" = runbridge ] || fail "the daemon does not run as runbridge"
ok "runbridge serve as the user runbridge, cwd /usr/share/runbridge, the installed rules"

fixture=tests/fixtures/qase/run.started.json
code=$(curl -s -o "$tmp/resp.json" -w '%{http_code}' -H 'Content-Type: application/json' \
	--data-binary "@$fixture" "http://127.0.0.1:$hport/webhooks/qase") || code=000
[ "$code" = 202 ] || fail "POST $fixture: HTTP $code, not 202 ($(cat "$tmp/resp.json" 2>/dev/null))"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/resp.json")
ok "POST /webhooks/qase $fixture: 202, delivery $id"

project=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["project_code"])' "$fixture")
stream="runbridge:$project"
i=0
until redis-cli -h 127.0.0.1 -p "$rport" XRANGE "$stream" - + 2>/dev/null | grep -q "$id"; do
	i=$((i + 1))
	[ $i -lt 150 ] || fail "no entry for delivery $id in $stream after 15 s"
	sleep 0.1
done
ok "stream $stream has the delivery's entry"

# The rules' other job is hooks/on-run-started.sh, found from the unit's
# working directory /usr/share/runbridge: both jobs end done.
i=0
while :; do
	st=$(cd /usr/share/runbridge && setpriv --reuid=runbridge --regid=runbridge --init-groups \
		/usr/bin/runbridge status -c "$tmp/runbridge.yaml" 2>&1) || true
	if echo "$st" | grep -qx 'done: 2' && echo "$st" | grep -qx 'pending: 0' &&
		echo "$st" | grep -qx 'retrying: 0' && echo "$st" | grep -qx 'dead: 0'; then
		break
	fi
	i=$((i + 1))
	[ $i -lt 150 ] || fail "the delivery's 2 jobs are not done after 15 s: $(echo "$st" | tr '\n' ' ')"
	sleep 0.1
done
ok "runbridge status: both jobs done (stream entry, hooks/on-run-started.sh)"

[ "$(stat -c %U /var/lib/runbridge/runbridge.db 2>/dev/null)" = runbridge ] ||
	fail "/var/lib/runbridge/runbridge.db missing or not owned by runbridge"
stop_daemon
ok "SIGTERM: the daemon exited 0; the store is /var/lib/runbridge/runbridge.db"

# The TLS shim: the installed binary finds /usr/lib/runbridge/libssl.so.
tport=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 || fail "openssl req"
chmod 0644 "$tmp/key.pem" "$tmp/cert.pem"
install -d -o runbridge -g runbridge -m 0750 "$tmp/tls-var"
sed -e "s#^listen: 127.0.0.1:$hport #listen: 127.0.0.1:${tport}s #" \
	-e "s#^data_dir: /var/lib/runbridge#data_dir: $tmp/tls-var#" "$tmp/runbridge.yaml" >"$tmp/tls.yaml"
printf 'tls:\n  certificate: %s\n  key: %s\n' "$tmp/cert.pem" "$tmp/key.pem" >>"$tmp/tls.yaml"
start_daemon "$tmp/tls.yaml"
wait_http "https://127.0.0.1:$tport/healthz" "$daemon_pid" ||
	fail "no HTTPS answer on 127.0.0.1:$tport: the TLS shim in /usr/lib/runbridge not found?"
stop_daemon
ok "TLS listener: the shim /usr/lib/runbridge/libssl.so is found"

# ---- conffiles survive a reinstall and an upgrade ---------------------------
marker="# local edit $$"
echo "$marker" >>/etc/runbridge/runbridge.yaml
echo "$marker" >>/etc/runbridge/rules/10-streams.yaml
echo 'QASE_WEBHOOK_SECRET=local-secret' >>/etc/default/runbridge
(cd "$(dirname "$deb")" &&
	apt_get install --reinstall -o DPkg::Options::=--force-confold "./$(basename "$deb")") \
	>"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; fail "reinstall failed"; }
grep -qx "$marker" /etc/runbridge/runbridge.yaml || fail "reinstall lost the edit of runbridge.yaml"
grep -qx "$marker" /etc/runbridge/rules/10-streams.yaml || fail "reinstall lost the edit of rules/10-streams.yaml"
grep -qx 'QASE_WEBHOOK_SECRET=local-secret' /etc/default/runbridge || fail "reinstall lost /etc/default/runbridge"
ok "reinstall of the same .deb keeps edited conffiles"

# An upgrade whose runbridge.yaml changed too: dpkg keeps the user's
# (--force-confold) and puts the new one beside it as .dpkg-dist.
up="$tmp/up"
dpkg-deb -R "$deb" "$up"
upver="$version+pkgtest1"
sed -i "s/^Version: .*/Version: $upver/" "$up/DEBIAN/control"
echo "# changed in $upver" >>"$up/etc/runbridge/runbridge.yaml"
updeb="$tmp/runbridge_${upver}_$(dpkg --print-architecture).deb"
dpkg-deb --root-owner-group -b "$up" "$updeb" >/dev/null
(cd "$tmp" && apt_get install -o DPkg::Options::=--force-confold "./$(basename "$updeb")") \
	>"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; fail "upgrade to $upver failed"; }
[ "$(dpkg-query -W -f='${Version}' runbridge)" = "$upver" ] || fail "the upgrade did not install $upver"
grep -qx "$marker" /etc/runbridge/runbridge.yaml || fail "the upgrade lost the edit of runbridge.yaml"
grep -q "^# changed in $upver" /etc/runbridge/runbridge.yaml.dpkg-dist ||
	fail "the upgrade left no runbridge.yaml.dpkg-dist with the new version"
[ -f /var/lib/runbridge/runbridge.db ] || fail "the upgrade lost /var/lib/runbridge/runbridge.db"
ok "upgrade to $upver keeps the edited runbridge.yaml (new one in .dpkg-dist) and the store"

# ---- remove keeps, purge deletes --------------------------------------------
apt_get remove runbridge >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; fail "apt-get remove runbridge"; }
[ "$(dpkg-query -W -f='${db:Status-Status}' runbridge)" = config-files ] ||
	fail "after remove, runbridge is $(dpkg-query -W -f='${db:Status-Status}' runbridge)"
[ ! -e /usr/bin/runbridge ] || fail "remove left /usr/bin/runbridge"
[ -f /var/lib/runbridge/runbridge.db ] || fail "remove deleted /var/lib/runbridge/runbridge.db"
getent passwd runbridge >/dev/null || fail "remove deleted the user runbridge"
grep -qx "$marker" /etc/runbridge/runbridge.yaml || fail "remove deleted the edited config"
ok "apt-get remove: binary gone; store, user and config kept"

apt_get purge runbridge >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log" >&2; fail "apt-get purge runbridge"; }
installed_here=0
[ "$(dpkg-query -W -f='${db:Status-Status}' runbridge 2>/dev/null || echo not-installed)" = not-installed ] ||
	fail "after purge, runbridge is $(dpkg-query -W -f='${db:Status-Status}' runbridge)"
[ ! -e /var/lib/runbridge ] || fail "purge left /var/lib/runbridge"
! getent passwd runbridge >/dev/null || fail "purge left the user runbridge"
! getent group runbridge >/dev/null || fail "purge left the group runbridge"
[ ! -e /etc/runbridge ] || fail "purge left /etc/runbridge ($(find /etc/runbridge | head -n 5 | tr '\n' ' '))"
[ ! -e /etc/default/runbridge ] || fail "purge left /etc/default/runbridge"
[ ! -e /etc/systemd/system/multi-user.target.wants/runbridge.service ] &&
	[ ! -L /etc/systemd/system/runbridge.service ] ||
	fail "purge left the unit's enablement or mask links in /etc/systemd/system"
ok "apt-get purge: store, user, group and conffiles gone"

echo "package: $passed passed, 0 failed"
