#!/usr/bin/env bash
# Build the cronie tree: tools/images/cronie-recipe.sh BASE DEST
# BASE is a Debian tree of tools/images/image-recipe.sh (trixie: its cronie is 1.7.2, the cron of
# the Red Hat family); DEST becomes a copy of it where cronie replaced Debian's cron (the packages
# conflict). rsyslog stays: cronie logs through syslog only. The oracle lane runs this cronie.
# Its content and BASE's recipe hash make this image's hash (tools/images/build-images.sh).
set -euo pipefail
base=$1
dest=$2
[ -f "$base/etc/os-release" ] || { echo "no Debian tree in $base" >&2; exit 1; }

cp -a --reflink=auto "$base" "$dest"
# apt-get inside the copy with the package lists debootstrap left in the base (same snapshot), the
# host's resolver to fetch the .debs, no service started, /proc in a private mount namespace.
cp -L /etc/resolv.conf "$dest/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$dest/usr/sbin/policy-rc.d"
chmod 755 "$dest/usr/sbin/policy-rc.d"
echo "cronie-recipe: apt-get install cronie (removes cron)"
# When the base's lists are older than the mirror (the .deb they name is gone), they are refreshed
# and the install tried once more.
# shellcheck disable=SC2016  # expanded by the inner shell
unshare --mount --propagation private -- sh -c '
  dest=$1
  mount -t proc proc "$dest/proc"
  install() {
    chroot "$dest" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Use-Pty=0 \
      --no-install-recommends cronie
  }
  install || { chroot "$dest" apt-get update -q && install; }
' sh "$dest"
rm -f "$dest/usr/sbin/policy-rc.d"
chroot "$dest" apt-get clean
rm -f "$dest"/var/cache/apt/archives/*.deb "$dest"/var/cache/apt/*.bin
: >"$dest/etc/resolv.conf"
echo "lifeline-cronie" >"$dest/etc/hostname"

# The daemon, its crontab(1) and the syslog it logs to; Debian's cron must be gone.
# shellcheck disable=SC2016  # expanded by the shell in the tree
missing=$(chroot "$dest" /bin/sh -c '
  for c in crond crontab rsyslogd python3; do command -v "$c" >/dev/null 2>&1 || printf "%s " "$c"; done')
[ -z "$missing" ] || { echo "the cronie tree lacks: $missing" >&2; exit 1; }
# shellcheck disable=SC2016  # dpkg-query's format, not the shell's
if chroot "$dest" dpkg-query -W -f '${Status}' cron 2>/dev/null | grep -q "ok installed"; then
  echo "Debian's cron is still installed beside cronie" >&2
  exit 1
fi
# shellcheck disable=SC2016  # dpkg-query's format, not the shell's
version=$(chroot "$dest" dpkg-query -W -f '${Version}' cronie)
echo "cronie-recipe: cronie $version in $dest"
