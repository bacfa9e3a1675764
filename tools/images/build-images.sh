#!/usr/bin/env bash
# Debian trees and local container images, built with debootstrap (no image registry needed).
#
#   tools/images/build-images.sh [SUITE...]   default: bullseye bookworm trixie, built in parallel
#
# For each suite:
#   tree   $LIFELINE_CACHE/trees/SUITE  (default cache /var/cache/lifeline), made by
#          tools/images/image-recipe.sh; the playbook lane uses it as a real Debian root
#   stamp  $LIFELINE_CACHE/trees/SUITE.stamp          the recipe hash the tree was built with
#   manifest $LIFELINE_CACHE/trees/SUITE.manifest.json  suite, hash, image id, package versions
#   image  localhost/lifeline/debian:SUITE, `podman import` of the tree, labelled
#          lifeline.recipe=HASH, CMD sleep infinity
# HASH = sha256 of the content of tools/images/image-recipe.sh + tools/images/image-packages.txt
# (not their paths) + the import changes + suite + mirror. The tree is rebuilt when its stamp
# differs or it is missing; the image is re-imported when its label differs, it is missing, or the
# tree was rebuilt. Otherwise nothing is done.
#
# Images derived from a suite's tree: a copy of the tree changed by a recipe of their own, imported
# and labelled with the hash of the suite's HASH + that recipe; rebuilt when the label differs or the
# image is missing (the copy is removed once imported), built only when their suite is asked for:
#   localhost/lifeline/cronie:trixie     cronie (Red Hat's cron, packaged by Debian) replaced Debian's
#                                        cron (tools/images/cronie-recipe.sh); the oracle lane runs it
#   localhost/lifeline/rescuer:bookworm  qemu-img and qemu-storage-daemon added
#                                        (tools/images/rescuer-recipe.sh); the molecule rescuer that
#                                        attaches qcow2, vmdk, vhdx, vpc and vdi images
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${CONTAINERS_CONF:=$repo/tools/setup/containers.conf}"
export CONTAINERS_CONF
cache=${LIFELINE_CACHE:-/var/cache/lifeline}
trees=${LIFELINE_TREES:-$cache/trees}
mirror=${LIFELINE_MIRROR:-http://deb.debian.org/debian}
repository=localhost/lifeline/debian
all_suites=(bullseye bookworm trixie)
# What `podman import` is told besides the recipe label (part of the hash).
changes=('CMD ["/bin/sleep","infinity"]')

die() {
  echo "images: FAILED: $*" >&2
  exit 1
}

suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=("${all_suites[@]}")
for s in "${suites[@]}"; do
  [[ " ${all_suites[*]} " == *" $s "* ]] || die "unknown suite '$s' (known: ${all_suites[*]})"
done
[ "$(id -u)" -eq 0 ] || die "debootstrap and podman import need root"
for tool in debootstrap podman tar sha256sum python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed (run: make apt)"
done

mkdir -p "$trees"
# One builder at a time on this machine (two `make setup` at once must not race on the trees).
exec 9>"$cache/.build-images.lock"
flock -w 3600 9 || die "another tools/images/build-images.sh holds $cache/.build-images.lock"

recipe_hash() {
  {
    cat "$here/image-recipe.sh" "$here/image-packages.txt"
    printf '%s\n' "${changes[@]}" "suite=$1" "mirror=$mirror"
  } | sha256sum | cut -c1-64
}

image_label() {
  podman image inspect --format '{{index .Labels "lifeline.recipe"}}' "${2:-$repository}:$1" 2>/dev/null || true
}

# The derived images: NAME (its repository below localhost/lifeline), the suite whose tree it copies,
# its recipe.
derived=(cronie rescuer)
declare -A derived_suite=([cronie]=trixie [rescuer]=bookworm)
declare -A derived_recipe=([cronie]="$here/cronie-recipe.sh" [rescuer]="$here/rescuer-recipe.sh")
derived_hash() {
  { recipe_hash "${derived_suite[$1]}"; cat "${derived_recipe[$1]}" "$here/derived-tree.sh"; } | sha256sum | cut -c1-64
}

# Mount points at or below a directory: a tree with the playbook lane's binds still in it must
# never be deleted (rm would reach the host's /dev) nor archived.
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

write_manifest() {
  local suite=$1 hash=$2 image_id=$3
  python3 - "$trees/$suite" "$suite" "$hash" "$mirror" "$repository:$suite" "$image_id" \
    "$(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null)" >"$trees/$suite.manifest.json.tmp" <<'PY'
import json, subprocess, sys, time
tree, suite, recipe, mirror, image, image_id, debootstrap = sys.argv[1:]
os_release = {}
with open(f"{tree}/etc/os-release", encoding="utf-8") as handle:
    for line in handle:
        key, sep, value = line.strip().partition("=")
        if sep:
            os_release[key] = value.strip('"')
out = subprocess.run(
    ["dpkg-query", f"--admindir={tree}/var/lib/dpkg", "-W", "-f", "${Package}\t${Version}\n"],
    capture_output=True, text=True, check=True,
).stdout
packages = dict(line.split("\t", 1) for line in out.splitlines() if line)
json.dump(
    {
        "suite": suite,
        "tree": tree,
        "recipe": recipe,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mirror": mirror,
        "debootstrap": debootstrap,
        "os_release": {k: os_release.get(k) for k in ("PRETTY_NAME", "VERSION_ID", "VERSION_CODENAME")},
        "debian_version": open(f"{tree}/etc/debian_version", encoding="utf-8").read().strip(),
        "image": image,
        "image_id": image_id,
        "python3": packages.get("python3"),
        "libc6": packages.get("libc6"),
        "packages": packages,
    },
    sys.stdout,
    indent=1,
    sort_keys=False,
)
print()
PY
  mv "$trees/$suite.manifest.json.tmp" "$trees/$suite.manifest.json"
}

# build_one SUITE WHAT: WHAT is "tree" (debootstrap + import) or "image" (import only).
build_one() {
  local suite=$1 what=$2 hash tree new old started old_id image_id
  hash=$(recipe_hash "$suite")
  tree=$trees/$suite
  new=$trees/.$suite.new
  old=$trees/.$suite.old
  started=$SECONDS
  if [ "$what" = tree ]; then
    safe_remove "$new"
    rm -f "$trees/$suite.stamp"
    "$here/image-recipe.sh" "$suite" "$new" "$mirror" "$cache/debs/$suite"
    safe_remove "$old"
    if [ -e "$tree" ]; then
      [ -z "$(mounts_under "$tree")" ] || die "$tree has mounts below it: $(mounts_under "$tree" | xargs)"
      mv "$tree" "$old"
    fi
    mv "$new" "$tree"
    safe_remove "$old"
    echo "$hash" >"$trees/$suite.stamp"
  fi
  [ -z "$(mounts_under "$tree")" ] || die "$tree has mounts below it: $(mounts_under "$tree" | xargs)"
  old_id=$(podman image inspect --format '{{.Id}}' "$repository:$suite" 2>/dev/null || true)
  local args=()
  for c in "${changes[@]}"; do args+=(--change "$c"); done
  args+=(--change "LABEL lifeline.recipe=$hash" --change "LABEL lifeline.suite=$suite")
  tar -C "$tree" --numeric-owner --one-file-system --xattrs -c . |
    podman import -q "${args[@]}" - "$repository:$suite" >/dev/null
  image_id=$(podman image inspect --format '{{.Id}}' "$repository:$suite")
  [ "$(image_label "$suite")" = "$hash" ] || die "$repository:$suite does not carry label lifeline.recipe=$hash"
  if [ -n "$old_id" ] && [ "$old_id" != "$image_id" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true # still used by a container: left to podman
  fi
  write_manifest "$suite" "$hash" "$image_id"
  echo "images: $suite done in $((SECONDS - started))s ($what; tree $tree, image $repository:$suite ${image_id:0:12})"
}

# build_derived NAME: copy its suite's tree, run its recipe on the copy, import it, remove the copy.
build_derived() {
  local name=$1 suite=${derived_suite[$1]} repository=localhost/lifeline/$1 hash tree new started old_id image_id
  hash=$(derived_hash "$name")
  tree=$trees/$suite
  new=$trees/.$name-$suite.new
  started=$SECONDS
  [ -z "$(mounts_under "$tree")" ] || die "$tree has mounts below it: $(mounts_under "$tree" | xargs)"
  safe_remove "$new"
  "${derived_recipe[$name]}" "$tree" "$new"
  old_id=$(podman image inspect --format '{{.Id}}' "$repository:$suite" 2>/dev/null || true)
  local args=()
  for c in "${changes[@]}"; do args+=(--change "$c"); done
  args+=(--change "LABEL lifeline.recipe=$hash" --change "LABEL lifeline.suite=$suite")
  tar -C "$new" --numeric-owner --one-file-system --xattrs -c . |
    podman import -q "${args[@]}" - "$repository:$suite" >/dev/null
  image_id=$(podman image inspect --format '{{.Id}}' "$repository:$suite")
  [ "$(image_label "$suite" "$repository")" = "$hash" ] ||
    die "$repository:$suite does not carry label lifeline.recipe=$hash"
  if [ -n "$old_id" ] && [ "$old_id" != "$image_id" ]; then
    podman rmi "$old_id" >/dev/null 2>&1 || true # still used by a container: left to podman
  fi
  safe_remove "$new"
  echo "images: $name:$suite done in $((SECONDS - started))s (image $repository:$suite ${image_id:0:12})"
}

# A derived image is wanted when its suite is; built after that suite's tree.
derived_wanted=()
for name in "${derived[@]}"; do
  suite=${derived_suite[$name]}
  if [[ " ${suites[*]} " == *" $suite "* ]] &&
    [ "$(image_label "$suite" "localhost/lifeline/$name")" != "$(derived_hash "$name")" ]; then
    derived_wanted+=("$name")
  fi
done

# What each suite needs.
declare -A need
todo=()
plan=""
for suite in "${suites[@]}"; do
  hash=$(recipe_hash "$suite")
  tree=$trees/$suite
  if [ ! -f "$tree/etc/os-release" ]; then
    need[$suite]=tree why="no tree"
  elif [ ! -f "$trees/$suite.stamp" ]; then
    need[$suite]=tree why="no stamp"
  elif [ "$(cat "$trees/$suite.stamp")" != "$hash" ]; then
    need[$suite]=tree why="recipe changed"
  elif [ ! -f "$trees/$suite.manifest.json" ]; then
    need[$suite]=image why="no manifest"
  else
    label=$(image_label "$suite")
    if [ -z "$label" ]; then
      need[$suite]=image why="no image"
    elif [ "$label" != "$hash" ]; then
      need[$suite]=image why="image label differs"
    else
      continue
    fi
  fi
  todo+=("$suite")
  plan+="${plan:+, }$suite (${need[$suite]}: $why)"
done

if [ ${#todo[@]} -eq 0 ] && [ ${#derived_wanted[@]} -eq 0 ]; then
  echo "images: up to date (${suites[*]}: trees in $trees, images $repository:<suite> and the derived" \
    "ones, recipe hashes match)"
  exit 0
fi

[ ${#todo[@]} -eq 0 ] ||
  echo "images: building $plan with debootstrap minbase + podman import — the molecule lane's rescuer" \
    "containers and the playbook lane's real Debian roots"
declare -A pids
for suite in "${todo[@]}"; do
  log=$trees/$suite.build.log
  (build_one "$suite" "${need[$suite]}") >"$log" 2>&1 &
  pids[$suite]=$!
done
failed=()
for suite in "${todo[@]}"; do
  if wait "${pids[$suite]}"; then
    tail -n 1 "$trees/$suite.build.log"
  else
    failed+=("$suite")
  fi
done
for suite in "${failed[@]}"; do
  echo "---- last lines of $trees/$suite.build.log" >&2
  tail -n 25 "$trees/$suite.build.log" >&2
done
[ ${#failed[@]} -eq 0 ] || die "could not build: ${failed[*]} (logs: $trees/<suite>.build.log)"

for name in "${derived_wanted[@]}"; do
  suite=${derived_suite[$name]}
  echo "images: building localhost/lifeline/$name:$suite (${derived_recipe[$name]##*/} on a copy of the $suite tree)"
  log=$trees/$name-$suite.build.log
  if (build_derived "$name") >"$log" 2>&1; then
    tail -n 1 "$log"
  else
    echo "---- last lines of $log" >&2
    tail -n 25 "$log" >&2
    die "could not build localhost/lifeline/$name:$suite (log: $log)"
  fi
done
