#!/usr/bin/env bash
# Build one busy-server root: tools/images/server-recipe.sh SUITE BASE DEST [DEB_CACHE]
# BASE is the suite's tree of tools/images/image-recipe.sh; DEST becomes a copy of it where apt-get
# installed tools/images/server-packages.txt with their recommends (as on a real server), then the
# few things an administrator does on day one: a locale, an admin account in the sudo group that
# logs in with a key. Nothing is started: policy-rc.d refuses every service, /proc is private to a
# pid and mount namespace that vanishes with the command, and needrestart's apt hook is suspended.
# The root is never booted: it is data for the persistence scan's false-alarm test.
# Its content, server-packages.txt and BASE's recipe hash make the root's hash
# (tools/images/build-servers.sh).
set -euo pipefail
suite=$1
base=$2
dest=$3
debs=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$base/etc/os-release" ] || { echo "no Debian tree in $base" >&2; exit 1; }

# The names of server-packages.txt for this suite.
packages=$(awk -v suite="$suite" '
  { sub(/#.*/, "") }
  /^[ \t]*$/ { next }
  {
    if (match($0, /\[[^]]*\]/) && index(" " substr($0, RSTART + 1, RLENGTH - 2) " ", " " suite " ") == 0) next
    print $1
  }' "$here/server-packages.txt" | xargs)
[ -n "$packages" ] || { echo "no packages for $suite in $here/server-packages.txt" >&2; exit 1; }

cp -a --reflink=auto "$base" "$dest"
cp -L /etc/resolv.conf "$dest/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$dest/usr/sbin/policy-rc.d"
chmod 755 "$dest/usr/sbin/policy-rc.d"
[ -z "$debs" ] || mkdir -p "$debs/partial"
echo "server-recipe: apt-get install $packages"
# The .debs go to the shared cache (bound on the root's apt archive directory) so a rebuild
# downloads only what changed. When the base's lists are older than the mirror (the .deb they
# name is gone), they are refreshed and the install tried once more.
# shellcheck disable=SC2016,SC2086  # expanded by the inner shell; the names split on purpose
unshare --mount --pid --fork --propagation private -- sh -c '
  dest=$1 debs=$2
  shift 2
  mount -t proc proc "$dest/proc"
  [ -z "$debs" ] || mount --bind "$debs" "$dest/var/cache/apt/archives"
  install() {
    chroot "$dest" env DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
      apt-get install -y -q -o Dpkg::Use-Pty=0 "$@"
  }
  install "$@" || { chroot "$dest" apt-get update -q && install "$@"; }
  echo "en_US.UTF-8 UTF-8" >>"$dest/etc/locale.gen"
  chroot "$dest" locale-gen
  chroot "$dest" useradd --create-home --shell /bin/bash --groups sudo --comment "Site administrator" admin
' sh "$dest" "$debs" $packages

install -d -m 700 "$dest/home/admin/.ssh"
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFjmtDuMZvAiDv2wmQRAQ88xjuy5twBK8ypK6K6JeseO admin@example.org" \
  >"$dest/home/admin/.ssh/authorized_keys"
chmod 600 "$dest/home/admin/.ssh/authorized_keys"
chroot "$dest" chown -R admin:admin /home/admin/.ssh

rm -f "$dest/usr/sbin/policy-rc.d" "$dest"/var/cache/apt/archives/*.deb "$dest"/var/cache/apt/*.bin
: >"$dest/etc/resolv.conf"
echo "server-$suite" >"$dest/etc/hostname"

# The services a busy server runs must all be installed; a package that lost its daemon fails here.
# shellcheck disable=SC2016  # expanded by the shell in the root
missing=$(chroot "$dest" /bin/sh -c '
  for c in sshd sudo cron rsyslogd logrotate nginx apache2 php-fpm* NetworkManager dockerd containerd runc \
    git curl vim chronyd auditd fail2ban-server postfix sar unattended-upgrade needrestart locale-gen; do
    command -v "$c" >/dev/null 2>&1 || ls /usr/sbin/$c >/dev/null 2>&1 || printf "%s " "$c"
  done
  ls -d /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || printf "postgres "
  [ -d /usr/lib/cgi-bin ] || printf "/usr/lib/cgi-bin "
  ls -d /var/lib/postgresql/*/main >/dev/null 2>&1 || printf "a-postgresql-cluster "')
[ -z "$missing" ] || { echo "the $suite server root lacks: $missing" >&2; exit 1; }
echo "server-recipe: $suite server root complete in $dest"
