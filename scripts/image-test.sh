#!/bin/sh
# The container image, without a Docker engine: builds docker/Dockerfile with
# podman, runs it next to a throwaway Redis, and checks what the image
# promises.  Run as root on Debian 12, from anywhere:
#
#   scripts/image-test.sh
#
#  1. Debian's docker-compose (1.29) accepts docker/compose.yaml, which names
#     the image, config and volume tested here;
#  2. the base image debian:12-slim, when podman's store lacks it:
#     debootstrap (minbase, from the mirror in this machine's apt sources)
#     imported into podman;
#  3. podman build of docker/Dockerfile as runbridge:local (docker format, so
#     that the HEALTHCHECK is kept);
#  4. the image run with host networking, listening on a free 127.0.0.1 port
#     and pointing at a redis-server on another one (the image's config with
#     only `listen` and `redis.url` changed, mounted over it; the store in a
#     named volume at /var/lib/runbridge, as in compose.yaml): it runs as a
#     non-root user, /healthz, the image's health check and /readyz answer, a
#     posted delivery gets 202 and lands in the stream the shipped rules
#     write, and `podman stop -t 40` drains and exits 0.
#
# Ends with "image: N passed, 0 failed"; exits non-zero otherwise.  Cleans up
# (container, volume, Redis, temporary files) on any exit.  Nothing listens on
# or is sent to anything but 127.0.0.1, except the package mirror
# (debootstrap, apt in the build).
#   RB_IMAGE_TAG      the image to build and test (default runbridge:local)
#   RB_DEBIAN_MIRROR  debootstrap's mirror (default: from /etc/apt)
set -eu
cd "$(dirname "$0")/.."

tag="${RB_IMAGE_TAG:-runbridge:local}"
base=debian:12-slim
suite=bookworm
fixture=tests/fixtures/qase/run.started.json
stream="runbridge:ID"           # rules/10-streams.yaml: runbridge:{{project}}

scripts/deps.sh podman runc debootstrap docker-compose uidmap slirp4netns

passed=0
failed=0
name="rb-image-test-$$"
volume="rb-image-test-$$"
work=""
redis_pid=""
container_made=0

now() { date +%s; }
say() { printf '%s\n' "image: $*"; }
ok() { passed=$((passed + 1)); say "ok   $*"; }
bad() { failed=$((failed + 1)); say "FAIL $*" >&2; }
die() {
	say "FAIL $*" >&2
	failed=$((failed + 1))
	exit 1
}

# podman as the runtime needs it here: runc (crun fails on this cgroup
# layout), cgroupfs, and no default rlimits (they cannot be raised here).
pm() {
	CONTAINERS_CONF="$work/containers.conf" \
		podman --runtime runc --cgroup-manager=cgroupfs "$@"
}

cleanup() {
	rc=$?
	trap - EXIT INT TERM
	if [ "$container_made" = 1 ]; then
		if [ "$rc" != 0 ] || [ "$failed" != 0 ]; then
			say "container log (last 40 lines):" >&2
			pm logs "$name" 2>&1 | tail -n 40 >&2 || true
		fi
		pm rm -f -t 5 "$name" >/dev/null 2>&1 || true
	fi
	pm volume rm -f "$volume" >/dev/null 2>&1 || true
	if [ -n "$redis_pid" ]; then
		kill "$redis_pid" 2>/dev/null || true
		wait "$redis_pid" 2>/dev/null || true
	fi
	[ -n "$work" ] && rm -rf "$work"
	if [ "$rc" != 0 ] || [ "$failed" != 0 ]; then
		say "$passed passed, $failed failed" >&2
		[ "$rc" != 0 ] || rc=1
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# On the root filesystem, not a tmpfs: the debootstrap'd tree is ~250 MB.
work=$(mktemp -d /var/tmp/rb-image-test.XXXXXX)
chmod 0755 "$work"
printf '[containers]\ndefault_ulimits = []\n' >"$work/containers.conf"

# ---- 1. the compose file -------------------------------------------------
if out=$(docker-compose -f docker/compose.yaml config 2>&1); then
	ok "docker-compose $(docker-compose version --short 2>/dev/null) accepts docker/compose.yaml"
else
	printf '%s\n' "$out" >&2
	bad "docker-compose -f docker/compose.yaml config refuses the file"
fi
# The image, config and store that compose uses are the ones tested here.
for want in "image: $tag" "- runbridge-data:/var/lib/runbridge" \
	"/etc/runbridge/runbridge.yaml"; do
	if printf '%s\n' "$out" | grep -qF -- "$want"; then
		ok "compose.yaml has '$want'"
	else
		bad "compose.yaml's resolved config lacks '$want'"
	fi
done

# ---- 2. the base image ---------------------------------------------------
# The first bookworm "deb" source of this machine's apt configuration
# (one-line and deb822 formats).
apt_mirror() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk -v s="$suite" '$1 == "deb" {
			i = 2
			if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			if ($(i + 1) == s) { print $i; exit }
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v s="$suite" '
		function flush() {
			if (!done && deb && suite && on && uri != "") { print uri; done = 1 }
			deb = suite = 0; on = 1; uri = ""
		}
		BEGIN { on = 1 }
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
		tolower($1) == "uris:" { uri = $2 }
		tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) suite = 1 }
		tolower($1) == "enabled:" && tolower($2) == "no" { on = 0 }
		END { flush() }' "$f"
	done | grep -E '^(https?|file):' | head -n 1
}

t0=$(now)
if podman image exists "$base"; then
	t_boot="skipped ($base is in podman's store)"
else
	mirror="${RB_DEBIAN_MIRROR:-$(apt_mirror)}"
	[ -n "$mirror" ] ||
		die "no '$suite' deb source in /etc/apt to debootstrap $base from (set RB_DEBIAN_MIRROR)"
	say "debootstrap --variant=minbase $suite from $mirror"
	if ! debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" \
		>"$work/debootstrap.log" 2>&1; then
		tail -n 20 "$work/debootstrap.log" >&2
		die "debootstrap failed"
	fi
	# apt's caches are not part of the image (as in the real slim one).
	rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb \
		"$work/rootfs/var/lib/apt/lists/"*_* 2>/dev/null || true
	tar -C "$work/rootfs" -c . | podman import -q - "$base" >/dev/null ||
		die "podman import of the debootstrap'd tree failed"
	rm -rf "$work/rootfs"
	t_boot="$(($(now) - t0)) s"
fi
say "time debootstrap+import: $t_boot"
podman image exists "$base" || die "no $base after import"

# ---- 3. the image --------------------------------------------------------
t0=$(now)
say "podman build -f docker/Dockerfile -t $tag ."
if ! podman build --isolation chroot --network host --format docker \
	-f docker/Dockerfile -t "$tag" . >"$work/build.log" 2>&1; then
	tail -n 30 "$work/build.log" >&2
	die "podman build failed (log above)"
fi
t_build=$(($(now) - t0))
say "time build: $t_build s"
ok "podman build -f docker/Dockerfile"

user=$(podman image inspect --format '{{.Config.User}}' "$tag")
if [ "$user" = runbridge ]; then
	ok "image's USER is runbridge"
else
	bad "image's USER is '$user', not runbridge"
fi
hc=$(podman image inspect --format '{{.Config.Healthcheck}}' "$tag" 2>/dev/null || true)
case "$hc" in
*/healthz*) ok "image keeps its HEALTHCHECK" ;;
*) bad "image has no HEALTHCHECK on /healthz ('$hc')" ;;
esac

# ---- 4. run it -----------------------------------------------------------
t0=$(now)
ports=$(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
rport=${ports% *}
hport=${ports#* }
url="http://127.0.0.1:$hport"

redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no \
	--dir "$work" --logfile "$work/redis.log" &
redis_pid=$!
i=0
until [ "$(redis-cli -h 127.0.0.1 -p "$rport" ping 2>/dev/null)" = PONG ]; do
	i=$((i + 1))
	[ "$i" -lt 50 ] || die "redis-server on 127.0.0.1:$rport did not start"
	sleep 0.1
done

# The image's own config with only the addresses changed.
sed -e "s|^listen: [^ ]*|listen: 127.0.0.1:$hport|" \
	-e "s|^\(  url: \)redis://redis:6379/0|\1redis://127.0.0.1:$rport/0|" \
	docker/runbridge.docker.yaml >"$work/runbridge.yaml"
chmod 0644 "$work/runbridge.yaml"
{ grep -q "^listen: 127.0.0.1:$hport" "$work/runbridge.yaml" &&
	grep -q "url: redis://127.0.0.1:$rport/0" "$work/runbridge.yaml"; } ||
	die "docker/runbridge.docker.yaml no longer has 'listen:' and 'url: redis://redis:6379/0' to point at the test's addresses"

pm volume create "$volume" >/dev/null
# The image's health check with the test's port, run on demand below
# (podman's timers need systemd).
container_made=1
pm run -d --name "$name" --network host \
	-v "$work/runbridge.yaml:/etc/runbridge/runbridge.yaml:ro" \
	-v "$volume:/var/lib/runbridge" \
	--health-cmd "curl -fsS -o /dev/null $url/healthz || exit 1" \
	--health-interval disable \
	"$tag" >/dev/null || die "podman run failed"

i=0
until curl -fsS -o /dev/null "$url/healthz" 2>/dev/null; do
	i=$((i + 1))
	running=$(pm inspect --format '{{.State.Running}}' "$name" 2>/dev/null || echo false)
	[ "$running" = true ] || die "the container exited before answering"
	[ "$i" -lt 150 ] || die "no answer on $url/healthz within 15 s"
	sleep 0.1
done
say "time start to /healthz: $(($(now) - t0)) s"

body=$(curl -sS -w ' %{http_code}' "$url/healthz")
if [ "$body" = '{"status":"ok"} 200' ]; then
	ok "GET /healthz: $body"
else
	bad "GET /healthz: '$body'"
fi

uid=$(pm exec "$name" id -u 2>/dev/null || echo "?")
case "$uid" in
'' | *[!0-9]* | 0) bad "the container runs as uid '$uid'" ;;
*) ok "the container runs as uid $uid ($(pm exec "$name" id -un 2>/dev/null))" ;;
esac
# PID 1 is tini; the daemon is its child.  No process in the container is
# root's.
top=$(pm top "$name" user args 2>/dev/null || true)
serve=$(printf '%s\n' "$top" | awk '$2 == "runbridge" && $3 == "serve" { print $1 }')
users=$(printf '%s\n' "$top" | awk 'NR > 1 { print $1 }' | sort -u | paste -sd ' ' -)
case "$serve:$users" in
runbridge:*root*) bad "a process in the container runs as root ($users)" ;;
runbridge:*) ok "runbridge serve and every other process run as: $users" ;;
*) bad "no 'runbridge serve' of user runbridge in podman top: $top" ;;
esac
owner=$(pm exec "$name" stat -c %U /var/lib/runbridge 2>/dev/null || true)
if [ "$owner" = runbridge ]; then
	ok "the store volume is owned by runbridge"
else
	bad "/var/lib/runbridge is owned by '$owner'"
fi

if pm healthcheck run "$name" >/dev/null 2>&1; then
	ok "the health check (the image's curl on /healthz) passes"
else
	bad "podman healthcheck run fails"
fi

resp=$(curl -sS -w ' %{http_code}' -H 'Content-Type: application/json' \
	--data-binary "@$fixture" "$url/webhooks/qase")
id=$(printf '%s' "$resp" | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
case "$resp" in
*'"duplicate":false}'' 202') ok "POST $fixture: $resp" ;;
*) bad "POST $fixture: '$resp' (want 202, duplicate false)" ;;
esac

i=0
entry=""
while [ -n "$id" ]; do
	entry=$(redis-cli -h 127.0.0.1 -p "$rport" XRANGE "$stream" - + 2>/dev/null |
		grep -F "$id" || true)
	[ -z "$entry" ] || break
	i=$((i + 1))
	[ "$i" -lt 100 ] || break
	sleep 0.1
done
if [ -n "$entry" ]; then
	ok "delivery $id is in the stream $stream"
else
	bad "delivery '$id' not in $stream within 10 s"
fi

# Redis counts as up once a worker has used it (not before the first job).
body=$(curl -sS -w ' %{http_code}' "$url/readyz")
case "$body" in
*'"store":"ok"'*'"redis":"up"'*' 200') ok "GET /readyz: $body" ;;
*) bad "GET /readyz: '$body'" ;;
esac

resp=$(curl -sS -w ' %{http_code}' -H 'Content-Type: application/json' \
	--data-binary "@$fixture" "$url/webhooks/qase")
case "$resp" in
*'"duplicate":true}'' 202') ok "the same delivery again is a duplicate: $resp" ;;
*) bad "redelivery: '$resp' (want 202, duplicate true)" ;;
esac

# The run.started hook (rules/30-ci.yaml, hooks/ in the image) ran.
i=0
until pm logs "$name" 2>&1 | grep -q "run 1 of ID started"; do
	i=$((i + 1))
	[ "$i" -lt 100 ] || break
	sleep 0.1
done
if [ "$i" -lt 100 ]; then
	ok "the exec hook hooks/on-run-started.sh ran"
else
	bad "no output of hooks/on-run-started.sh in the log"
fi

# Stop: SIGTERM through tini, drain, exit 0, well within the 40 s.
ts=$(now)
pm stop -t 40 "$name" >/dev/null || bad "podman stop failed"
t_stop=$(($(now) - ts))
code=$(pm inspect --format '{{.State.ExitCode}}' "$name")
if [ "$code" = 0 ]; then
	ok "podman stop -t 40: exit code 0 after $t_stop s"
else
	bad "podman stop -t 40: exit code $code after $t_stop s"
fi
log=$(pm logs "$name" 2>&1)
if printf '%s\n' "$log" | grep -q "shutting down.*SIGTERM" &&
	printf '%s\n' "$log" | tail -n 3 | grep -q "stopped"; then
	ok "the log shows the drain (shutting down on SIGTERM ... stopped)"
else
	bad "the log does not show a drain on SIGTERM"
fi
say "time run (redis, start, checks, stop): $(($(now) - t0)) s"

[ "$failed" = 0 ] || exit 1
say "$passed passed, 0 failed"
