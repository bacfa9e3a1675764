#!/usr/bin/env bash
# Build one Debian tree: tools/image-recipe.sh SUITE DEST [MIRROR [DEB_CACHE]]
# The recipe of the lifeline rescuer images and of the playbook lane's real Debian roots.
# Its content, tools/image-packages.txt and the suite make the recipe hash (tools/build-images.sh):
# any change here rebuilds the trees and images.
set -euo pipefail
suite=$1
dest=$2
mirror=${3:-http://deb.debian.org/debian}
debs=${4:-}
here=$(cd "$(dirname "$0")" && pwd)

# packages PHASE: the names of tools/image-packages.txt for this suite and phase (debootstrap|apt).
packages() {
  awk -v suite="$suite" -v want="$1" '
    { sub(/#.*/, "") }
    /^[ \t]*$/ { next }
    {
      tags = ""
      if (match($0, /\[[^]]*\]/)) tags = substr($0, RSTART + 1, RLENGTH - 2)
      n = split(tags, t, /[ \t,]+/); phase = "debootstrap"; suites = ""
      for (i = 1; i <= n; i++) { if (t[i] == "apt") phase = "apt"; else if (t[i] != "") suites = suites " " t[i] " " }
      if (suites != "" && index(suites, " " suite " ") == 0) next
      if (phase == want) print $1
    }' "$here/image-packages.txt"
}
early=$(packages debootstrap | paste -sd,)
late=$(packages apt | xargs)
[ -n "$early" ] || { echo "no packages for debootstrap in $here/image-packages.txt" >&2; exit 1; }

args=(--variant=minbase --include="$early")
if [ -n "$debs" ]; then
  mkdir -p "$debs"
  args+=(--cache-dir="$debs")
fi
echo "recipe: debootstrap ${args[*]} $suite $dest $mirror"
debootstrap "${args[@]}" "$suite" "$dest" "$mirror"

if [ -n "$late" ]; then
  # apt-get inside the tree, with the package lists debootstrap left there (same snapshot), the
  # host's resolver to fetch the .debs, no service started (policy-rc.d), and /proc mounted in a
  # private mount namespace that vanishes with the command (nothing stays mounted on the host).
  echo "recipe: apt-get install --no-install-recommends $late"
  cp -L /etc/resolv.conf "$dest/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$dest/usr/sbin/policy-rc.d"
  chmod 755 "$dest/usr/sbin/policy-rc.d"
  # shellcheck disable=SC2086
  unshare --mount --propagation private -- sh -c '
    dest=$1; shift
    mount -t proc proc "$dest/proc"
    chroot "$dest" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "$@"
  ' sh "$dest" $late
  rm -f "$dest/usr/sbin/policy-rc.d"
  chroot "$dest" apt-get clean
fi

# Smaller and tidier: no downloaded .debs, the host's resolver is not baked in, a clear hostname.
rm -f "$dest"/var/cache/apt/archives/*.deb "$dest"/var/cache/apt/*.bin
: >"$dest/etc/resolv.conf"
echo "lifeline-$suite" >"$dest/etc/hostname"

# The tree must have what a rescuer uses; a package that lost a command must fail the build here.
missing=$(chroot "$dest" /bin/sh -c '
  for c in python3 losetup partx blkid findmnt mount umount chroot pivot_root mkfs.ext4 e2fsck resize2fs \
    mkfs.xfs mkfs.btrfs sfdisk sgdisk mkfs.vfat lvm modprobe file ps crontab cron rsyslogd readelf; do
    command -v "$c" >/dev/null 2>&1 || printf "%s " "$c"
  done')
[ -z "$missing" ] || { echo "the $suite tree lacks: $missing" >&2; exit 1; }
chroot "$dest" python3 -c 'import json, sys; assert sys.version_info >= (3, 9)'
echo "recipe: $suite tree complete in $dest"
