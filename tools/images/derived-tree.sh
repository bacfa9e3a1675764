#!/usr/bin/env bash
# A Debian tree with more packages: tools/images/derived-tree.sh BASE DEST HOSTNAME PACKAGE...
# DEST becomes a copy of BASE (a tree of tools/images/image-recipe.sh) where apt-get installed the
# packages, without recommends, with the package lists debootstrap left in BASE (same snapshot) and
# the host's resolver to fetch the .debs; no service started, /proc in a private mount namespace.
# The recipes of the derived images (cronie-recipe.sh, rescuer-recipe.sh) call it, then check.
set -euo pipefail
base=$1
dest=$2
hostname=$3
shift 3
[ -f "$base/etc/os-release" ] || { echo "no Debian tree in $base" >&2; exit 1; }

cp -a --reflink=auto "$base" "$dest"
cp -L /etc/resolv.conf "$dest/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$dest/usr/sbin/policy-rc.d"
chmod 755 "$dest/usr/sbin/policy-rc.d"
echo "derived-tree: apt-get install --no-install-recommends $* ($hostname)"
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
' sh "$dest" "$@"
rm -f "$dest/usr/sbin/policy-rc.d"
chroot "$dest" apt-get clean
rm -f "$dest"/var/cache/apt/archives/*.deb "$dest"/var/cache/apt/*.bin
: >"$dest/etc/resolv.conf"
echo "$hostname" >"$dest/etc/hostname"
