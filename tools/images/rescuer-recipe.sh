#!/usr/bin/env bash
# Build the rescuer tree with qemu: tools/images/rescuer-recipe.sh BASE DEST
# BASE is a Debian tree of tools/images/image-recipe.sh (bookworm); DEST becomes a copy of it with
# qemu-img (qemu-utils) and qemu-storage-daemon (qemu-system-common), what target_image needs for an
# image that is not raw: the daemon shows it as a raw file through FUSE, which libfuse3 (a
# dependency of both) mounts itself when run as root, so fuse3's fusermount3 is not needed.
# The trees themselves stay without qemu: a target never needs it.
# Its content and BASE's recipe hash make this image's hash (tools/images/build-images.sh).
set -euo pipefail
base=$1
dest=$2
packages=(qemu-utils qemu-system-common)
[ -f "$base/etc/os-release" ] || { echo "no Debian tree in $base" >&2; exit 1; }

cp -a --reflink=auto "$base" "$dest"
# apt-get inside the copy with the package lists debootstrap left in the base (same snapshot), the
# host's resolver to fetch the .debs, no service started, /proc in a private mount namespace.
cp -L /etc/resolv.conf "$dest/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$dest/usr/sbin/policy-rc.d"
chmod 755 "$dest/usr/sbin/policy-rc.d"
echo "rescuer-recipe: apt-get install --no-install-recommends ${packages[*]}"
# When the base's lists are older than the mirror (the .deb they name is gone), they are refreshed
# and the install tried once more.
# shellcheck disable=SC2016  # expanded by the inner shell
unshare --mount --propagation private -- sh -c '
  dest=$1
  shift
  mount -t proc proc "$dest/proc"
  install() {
    chroot "$dest" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Use-Pty=0 \
      --no-install-recommends "$@"
  }
  install "$@" || { chroot "$dest" apt-get update -q && install "$@"; }
' sh "$dest" "${packages[@]}"
rm -f "$dest/usr/sbin/policy-rc.d"
chroot "$dest" apt-get clean
rm -f "$dest"/var/cache/apt/archives/*.deb "$dest"/var/cache/apt/*.bin
: >"$dest/etc/resolv.conf"
echo "lifeline-rescuer" >"$dest/etc/hostname"

# The two programs must start inside the tree (their libraries all there).
for program in qemu-img qemu-storage-daemon; do
  version=$(chroot "$dest" "$program" --version | head -n 1) ||
    { echo "$program --version fails in the rescuer tree" >&2; exit 1; }
  echo "rescuer-recipe: $version"
done
