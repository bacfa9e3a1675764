#!/usr/bin/env bash
# Build the cronie tree: tools/images/cronie-recipe.sh BASE DEST
# BASE is a Debian tree of tools/images/image-recipe.sh (trixie: its cronie is 1.7.2, the cron of
# the Red Hat family); DEST becomes a copy of it where cronie replaced Debian's cron (the packages
# conflict). rsyslog stays: cronie logs through syslog only. The oracle lane runs this cronie.
# Its content, derived-tree.sh's and BASE's recipe hash make this image's hash
# (tools/images/build-images.sh).
set -euo pipefail
base=$1
dest=$2
"$(dirname "$0")/derived-tree.sh" "$base" "$dest" lifeline-cronie cronie

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
