#!/usr/bin/env bash
# Busy-server roots: a suite's Debian tree with a real server's packages, for the persistence
# scan's false-alarm test (tests/unit/.../persistence/test_busy_servers.py) and the peer bench.
#
#   tools/images/build-servers.sh [SUITE...]   default: bullseye bookworm trixie, built in parallel
#
# For each suite (its tree, $LIFELINE_TREES/SUITE, must be built first: tools/images/build-images.sh):
#   root   $LIFELINE_CACHE/servers/SUITE          made by tools/images/server-recipe.sh
#   stamp  $LIFELINE_CACHE/servers/SUITE.stamp    the recipe hash the root was built with
#   facts  $LIFELINE_CACHE/servers/SUITE.json     build seconds, size, package count
#   log    $LIFELINE_CACHE/servers/SUITE.build.log
# HASH = sha256 of the content of server-recipe.sh + server-packages.txt + the tree's stamp + suite
# + mirror. The root is rebuilt when its stamp differs or it is missing; otherwise nothing is done.
# The .debs are cached in $LIFELINE_CACHE/debs/SUITE, beside the trees' own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${LIFELINE_CACHE:-/var/cache/lifeline}
trees=${LIFELINE_TREES:-$cache/trees}
servers=${LIFELINE_SERVERS:-$cache/servers}
mirror=${LIFELINE_MIRROR:-http://deb.debian.org/debian}
all_suites=(bullseye bookworm trixie)

die() {
  echo "servers: FAILED: $*" >&2
  exit 1
}

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=("${all_suites[@]}")
for s in "${suites[@]}"; do
  [[ " ${all_suites[*]} " == *" $s "* ]] || die "unknown suite '$s' (known: ${all_suites[*]})"
done
[ "$(id -u)" -eq 0 ] || die "apt-get in a chroot needs root"
for tool in unshare chroot sha256sum du; do
  command -v "$tool" >/dev/null || die "$tool is not installed (run: make apt)"
done

mkdir -p "$servers"
# The same lock as the trees' builder: a tree is never rebuilt while a root is copied from it.
exec 9>"$cache/.build-images.lock"
flock -w 3600 9 || die "another image builder holds $cache/.build-images.lock"

recipe_hash() {
  {
    cat "$here/server-recipe.sh" "$here/server-packages.txt" "$trees/$1.stamp"
    printf '%s\n' "suite=$1" "mirror=$mirror"
  } | sha256sum | cut -c1-64
}

mounts_under() {
  awk -v top="$1" '$5 == top || index($5, top "/") == 1 { print $5 }' /proc/self/mountinfo
}

safe_remove() {
  local dir=$1 held
  [ -e "$dir" ] || return 0
  held=$(mounts_under "$dir")
  [ -z "$held" ] || die "refusing to remove $dir: still mounted below it: $(xargs <<<"$held") (umount them first)"
  rm -rf --one-file-system "$dir"
}

build_one() {
  local suite=$1 hash root new old started seconds
  hash=$(recipe_hash "$suite")
  root=$servers/$suite
  new=$servers/.$suite.new
  old=$servers/.$suite.old
  started=$SECONDS
  safe_remove "$new"
  rm -f "$servers/$suite.stamp"
  "$here/server-recipe.sh" "$suite" "$trees/$suite" "$new" "$cache/debs/$suite"
  safe_remove "$old"
  if [ -e "$root" ]; then
    [ -z "$(mounts_under "$root")" ] || die "$root has mounts below it: $(mounts_under "$root" | xargs)"
    mv "$root" "$old"
  fi
  mv "$new" "$root"
  safe_remove "$old"
  echo "$hash" >"$servers/$suite.stamp"
  seconds=$((SECONDS - started))
  printf '{"suite": "%s", "recipe": "%s", "build_seconds": %d, "bytes": %d, "packages": %d}\n' \
    "$suite" "$hash" "$seconds" "$(du -sxb "$root" | cut -f1)" \
    "$(grep -c '^Status: install ok installed' "$root/var/lib/dpkg/status")" >"$servers/$suite.json"
  echo "servers: $suite done in ${seconds}s ($(du -sxh "$root" | cut -f1), root $root)"
}

todo=()
for suite in "${suites[@]}"; do
  if [ ! -f "$trees/$suite.stamp" ] || [ ! -f "$trees/$suite/etc/os-release" ]; then
    die "no $suite tree in $trees (run: tools/images/build-images.sh $suite, or make images)"
  fi
  if [ -f "$servers/$suite/etc/os-release" ] && [ -f "$servers/$suite.stamp" ] &&
    [ "$(cat "$servers/$suite.stamp")" = "$(recipe_hash "$suite")" ]; then
    continue
  fi
  todo+=("$suite")
done
if [ ${#todo[@]} -eq 0 ]; then
  echo "servers: up to date (${suites[*]}: busy-server roots in $servers, recipe hashes match)"
  exit 0
fi

echo "servers: building ${todo[*]}: copies of the trees with a busy server's packages (apt-get in a" \
  "chroot, nothing started) — the persistence scan's false-alarm roots"
declare -A pids
for suite in "${todo[@]}"; do
  (build_one "$suite") >"$servers/$suite.build.log" 2>&1 &
  pids[$suite]=$!
done
failed=()
for suite in "${todo[@]}"; do
  if wait "${pids[$suite]}"; then
    tail -n 1 "$servers/$suite.build.log"
  else
    failed+=("$suite")
  fi
done
for suite in "${failed[@]}"; do
  echo "---- last lines of $servers/$suite.build.log" >&2
  tail -n 25 "$servers/$suite.build.log" >&2
done
[ ${#failed[@]} -eq 0 ] || die "could not build: ${failed[*]} (logs: $servers/<suite>.build.log)"
