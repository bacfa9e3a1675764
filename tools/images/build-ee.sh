#!/usr/bin/env bash
# The execution environment and the ssh rescuer the playbook lane runs it against, built locally.
#
#   tools/images/build-ee.sh
#
#   localhost/lifeline/ee:bookworm           execution-environment.yml built by ansible-builder
#                                            (ansible-builder create, then podman build) on
#                                            localhost/lifeline/debian:bookworm: ansible-core,
#                                            ansible-runner, the ssh client and this collection
#   localhost/lifeline/rescuer-ssh:bookworm  tools/images/rescuer-ssh.Containerfile on
#                                            localhost/lifeline/rescuer:bookworm
# Each image carries lifeline.recipe=HASH and is rebuilt only when HASH changes. The EE's HASH covers
# execution-environment.yml, meta/execution-environment.yml, meta/ee-bindep.txt, this script, the
# base image's id and the content of the collection (its FILES.json, every file's sha256), so a
# change to the collection rebuilds it. pip installs inside the build only from wheels downloaded
# here first ($LIFELINE_CACHE/ee/wheels): the image builds without reaching a package index.
# ansible-builder itself lives in its own environment, $LIFELINE_CACHE/ee/tools.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${CONTAINERS_CONF:=$repo/tools/setup/containers.conf}"
export CONTAINERS_CONF
cache=${LIFELINE_CACHE:-/var/cache/lifeline}
ee_image=localhost/lifeline/ee:bookworm
ee_base=localhost/lifeline/debian:bookworm
ssh_image=localhost/lifeline/rescuer-ssh:bookworm
ssh_base=localhost/lifeline/rescuer:bookworm
builder_pin=ansible-builder==3.2.0
# What pip installs in the image: what ansible-builder's stages install (ansible-core and
# ansible-runner as execution-environment.yml pins them, bindep and its helpers, dumb-init).
wheel_set=(ansible-core==2.19.14 ansible-runner==2.4.3 bindep pyyaml packaging dumb-init==1.2.5)
work=$repo/.cache/ee

die() {
  echo "ee: FAILED: $*" >&2
  exit 1
}
label_of() { podman image inspect --format '{{index .Labels "lifeline.recipe"}}' "$1" 2>/dev/null || true; }
id_of() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null || die "no image $1 (run: make images)"; }

for tool in podman sha256sum tar python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed (run: make apt)"
done
[ -x "$repo/.venv/bin/ansible-galaxy" ] || die "no $repo/.venv/bin/ansible-galaxy (run: make venv)"
mkdir -p "$cache/ee" "$work"
exec 9>"$cache/ee/.build.lock"
flock -w 3600 9 || die "another tools/images/build-ee.sh holds $cache/ee/.build.lock"

# ---- the rescuer reached over ssh
ssh_hash=$({ cat "$here/rescuer-ssh.Containerfile"; id_of "$ssh_base"; } | sha256sum | cut -c1-64)
if [ "$(label_of "$ssh_image")" = "$ssh_hash" ]; then
  echo "ee: $ssh_image up to date"
else
  echo "ee: building $ssh_image (sshd and sudo on the rescuer image: the rescuer an EE reaches over ssh)"
  started=$SECONDS
  podman build -q --label "lifeline.recipe=$ssh_hash" --build-arg "RESCUER=$ssh_base" -t "$ssh_image" \
    -f "$here/rescuer-ssh.Containerfile" "$here" >"$cache/ee/rescuer-ssh.build.log" 2>&1 ||
    { tail -n 25 "$cache/ee/rescuer-ssh.build.log" >&2; die "podman build of $ssh_image (log: $cache/ee/rescuer-ssh.build.log)"; }
  echo "ee: $ssh_image done in $((SECONDS - started))s"
fi

# ---- the execution environment
collection=$work/collection
rm -rf "$collection" "$work/wheels" "$work/build" "$work/context"
mkdir -p "$collection" "$work/wheels" "$work/build"
"$repo/.venv/bin/ansible-galaxy" collection build --force --output-path "$work/build" "$repo" >/dev/null ||
  die "ansible-galaxy collection build"
tarball=$(find "$work/build" -name 'lifeline-rescue-*.tar.gz' | head -n 1)
[ -n "$tarball" ] || die "ansible-galaxy collection build made no lifeline-rescue-*.tar.gz"
mv "$tarball" "$collection/lifeline-rescue.tar.gz"
ee_hash=$({
  cat "$repo/execution-environment.yml" "$repo/meta/execution-environment.yml" "$repo/meta/ee-bindep.txt" "$0"
  printf '%s\n' "${wheel_set[@]}"
  tar -xzOf "$collection/lifeline-rescue.tar.gz" FILES.json
  id_of "$ee_base"
} | sha256sum | cut -c1-64)
if [ "$(label_of "$ee_image")" = "$ee_hash" ]; then
  echo "ee: $ee_image up to date"
  exit 0
fi
echo "ee: building $ee_image (execution-environment.yml with ansible-builder: the controller of AWX and ansible-navigator)"
started=$SECONDS
if [ ! -x "$cache/ee/tools/bin/ansible-builder" ] || ! "$cache/ee/tools/bin/pip" show -q "${builder_pin%%==*}" 2>/dev/null ||
  [ "$("$cache/ee/tools/bin/ansible-builder" --version)" != "${builder_pin##*==}" ]; then
  echo "ee: installing $builder_pin into $cache/ee/tools"
  python3 -m venv "$cache/ee/tools"
  "$cache/ee/tools/bin/pip" install -q "$builder_pin" || die "pip install $builder_pin"
fi
# The wheels for the image's Python (Debian bookworm's 3.11), at the versions the checkout pins.
"$cache/ee/tools/bin/pip" download -q --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
  --platform manylinux_2_34_x86_64 --platform linux_x86_64 -c "$repo/requirements/dev.lock" \
  -d "$cache/ee/wheels" "${wheel_set[@]}" >"$cache/ee/wheels.log" 2>&1 || { tail -n 20 "$cache/ee/wheels.log" >&2; die "pip download of ${wheel_set[*]}"; }
cp "$cache/ee/wheels"/*.whl "$work/wheels/"
"$cache/ee/tools/bin/ansible-builder" create -f "$repo/execution-environment.yml" -c "$work/build" \
  --output-filename Containerfile >/dev/null || die "ansible-builder create"
podman build --label "lifeline.recipe=$ee_hash" -t "$ee_image" -f "$work/build/Containerfile" "$work/build" \
  >"$cache/ee/ee.build.log" 2>&1 || { tail -n 40 "$cache/ee/ee.build.log" >&2; die "podman build of $ee_image (log: $cache/ee/ee.build.log)"; }
echo "ee: $ee_image done in $((SECONDS - started))s"
