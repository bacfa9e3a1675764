#!/usr/bin/env bash
# Prove that podman, configured by tools/setup/containers.conf (CONTAINERS_CONF, never
# /etc/containers), uses runc and cgroupfs, gives containers the explicit ulimits, and that a
# privileged container gets a loop device — what the molecule lane relies on. A stamp
# (containers.conf + podman version + image id) makes a second run a no-op. Without the bookworm
# image yet, only `podman info` is checked and nothing is stamped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${CONTAINERS_CONF:=$here/containers.conf}"
export CONTAINERS_CONF
cache=${LIFELINE_CACHE:-/var/cache/lifeline}
image=${LIFELINE_RESCUER_IMAGE:-localhost/lifeline/debian:bookworm}
stamp=$cache/podman-check.stamp

die() {
  echo "podman: FAILED: $*" >&2
  exit 1
}

command -v podman >/dev/null || die "podman is not installed (run: make apt)"
[ -f "$CONTAINERS_CONF" ] || die "CONTAINERS_CONF=$CONTAINERS_CONF does not exist"
image_id=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
want="$(sha256sum <"$CONTAINERS_CONF" | cut -c1-64) $(podman --version) $image_id"
if [ -n "$image_id" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "podman: up to date (runc, cgroupfs, ulimits and loop devices verified with $CONTAINERS_CONF)"
  exit 0
fi

echo "podman: checking that podman uses $CONTAINERS_CONF (runc, cgroupfs, nofile/nproc ulimits)" \
  "— the molecule lane's containers must start on this host without touching /etc/containers"
err=$(mktemp /tmp/lifeline-podman.XXXXXX)
trap 'rm -f "$err"' EXIT
got=$(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}' 2>"$err") ||
  die "podman info failed: $(cat "$err")"
[ "$got" = "runc cgroupfs" ] || die "podman info says runtime/cgroup manager '$got', expected 'runc cgroupfs'"
warnings=$(grep -i 'warn' "$err" || true)

if [ -z "$image_id" ]; then
  echo "podman: runc + cgroupfs confirmed; the container checks wait for the image $image (make images)"
  exit 0
fi
limits=$(podman run --rm "$image" cat /proc/self/limits 2>"$err") ||
  die "podman run --rm $image failed: $(cat "$err")"
warnings+=$(grep -i 'warn' "$err" || true)
grep -Eq '^Max open files +20000 +20000 ' <<<"$limits" || die "nofile is not 20000:20000 in a container"
grep -Eq '^Max processes +32768 +32768 ' <<<"$limits" || die "nproc is not 32768:32768 in a container"
loop=$(podman run --rm --privileged "$image" losetup -f 2>"$err") ||
  die "a privileged container cannot find a free loop device: $(cat "$err")"
warnings+=$(grep -i 'warn' "$err" || true)
[ -z "$warnings" ] || echo "podman: warnings seen: $warnings"
mkdir -p "$cache"
echo "$want" >"$stamp"
echo "podman: ok (runc, cgroupfs, nofile 20000, nproc 32768; a privileged container sees $loop)"
