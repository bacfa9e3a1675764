#!/bin/bash
# The broken systems of the restore_glibc scenario, made from the real Debian trees, and the
# scenario's own checks of them: by hand (chroot, md5sum, mount), sharing no code with lifeline.
#   targets build NAME SUITE FAULT [TABLE FS] [FOREIGN]
#       a copy of /srv/trees/SUITE with FAULT planted (roles/drill/files/glibc.sh, installed as
#       glibc-fault): the directory $DIRECTORIES/NAME, or with TABLE (dos|gpt) and FS (ext4|xfs)
#       the raw disk image $IMAGES/NAME.img, its root filesystem on its only partition
#   targets record NAME COMMAND...
#       run COMMAND inside the target (chroot) and keep its exit status and words in
#       $EVIDENCE/NAME.broken (printed); keep the listing of its library directories in
#       $EVIDENCE/NAME.listing
#   targets unchanged NAME     the listing is still the recorded one (after a check-mode run)
#   targets verify NAME SUITE  the target's programs run, and every file and link of its library
#                              directories is the pristine tree's (extra entries are printed)
# An image is attached and mounted by hand (disk mount) for each command, and always detached.
set -euo pipefail
trees=/srv/trees
debs=/srv/debs
# Where the targets and the evidence are (vars.yml: directories, images, evidence).
: "${DIRECTORIES:?}" "${IMAGES:?}" "${EVIDENCE:?}"
mnt=/mnt/check

# listing ROOT: every entry of the library directories (merged /usr: these are links into /usr)
# with its type, mode, owner and link text, the checksum of each file, then the loader cache, the
# foreign glibc's directory and lifeline's backups; read from outside, a broken root too.
listing() {
  (
    cd "$1"
    find lib/x86_64-linux-gnu/ lib64/ -mindepth 1 -maxdepth 1 -printf '%p %y %m %U:%G %l\n' | sort
    find lib/x86_64-linux-gnu/ lib64/ -mindepth 1 -maxdepth 1 -type f -print0 | sort -z | xargs -0 md5sum
    md5sum etc/ld.so.cache
    find opt var/backups -printf '%p %y %l\n' | sort
  )
}

# contents ROOT: every entry of the library directories with its type, mode and owner, and the
# checksum of what it leads to, read by the root's own programs (a link resolves inside the root,
# whether its text is relative or absolute); a root whose programs cannot run gives nothing.
contents() {
  chroot "$1" /bin/sh -c 'cd / && dirs="lib/x86_64-linux-gnu/ lib64/" &&
    find $dirs -mindepth 1 -maxdepth 1 -printf "%p %y %m %U:%G\n" &&
    find $dirs -mindepth 1 -maxdepth 1 \( -type f -o -type l \) -print0 | xargs -0 md5sum' 2>&1 | sort || true
}

# open NAME [OPTIONS]: the target's root directory, an image mounted first (OPTIONS: mount's -o).
open() {
  if [ -f "$IMAGES/$1.img" ]; then
    disk mount "$IMAGES/$1.img" "$mnt/$1" "${2:-}" >/dev/null
    echo "$mnt/$1"
  else
    [ -d "$DIRECTORIES/$1" ] || { echo "no target $1" >&2; exit 1; }
    echo "$DIRECTORIES/$1"
  fi
}

close() {
  if mountpoint -q "$mnt/$1"; then
    disk unmount "$mnt/$1"
    rmdir "$mnt/$1"
  fi
}

build() {
  name=$1 suite=$2 fault=$3 table=${4:-} fs=${5:-} foreign=${6:-} file=""
  case $fault in
    libc_foreign) file=$trees/$foreign/lib/x86_64-linux-gnu/libc.so.6 ;;
    libm_deleted) file=$(ls "$debs/$suite"/libc6_*.deb) ;;
  esac
  if [ -z "$table" ]; then
    root=$DIRECTORIES/$name
    rm -rf "$root"
    mkdir -p "$root"
    cp -a "$trees/$suite/." "$root/"
    glibc-fault "$root" "$fault" $file
    return
  fi
  mkdir -p "$IMAGES" "$mnt/$name"
  rm -f "$IMAGES/$name.img"
  truncate -s 1G "$IMAGES/$name.img"
  printf 'label: %s\n,,L\n' "$table" | sfdisk -q "$IMAGES/$name.img"
  loop=$(disk attach "$IMAGES/$name.img")
  trap 'mountpoint -q "$mnt/$name" && umount "$mnt/$name"; disk detach "$loop"' EXIT
  "mkfs.$fs" -q -L root "${loop}p1" >/dev/null
  mount "${loop}p1" "$mnt/$name"
  cp -a "$trees/$suite/." "$mnt/$name/"
  echo "UUID=$(blkid -p -s UUID -o value "${loop}p1") / $fs defaults 0 1" >"$mnt/$name/etc/fstab"
  # The fault is planted before the image is closed, as the incident left the disk.
  glibc-fault "$mnt/$name" "$fault" $file
  umount "$mnt/$name"
  rmdir "$mnt/$name"
}

record() {
  name=$1 rc=0
  shift
  mkdir -p "$EVIDENCE"
  root=$(open "$name" ro)
  trap 'close "$name"' EXIT
  words=$(chroot "$root" "$@" 2>&1) || rc=$?
  printf 'chroot %s %s\nexit %s\n%s\n' "$root" "$*" "$rc" "$words" | tee "$EVIDENCE/$name.broken"
  listing "$root" >"$EVIDENCE/$name.listing"
}

unchanged() {
  name=$1
  root=$(open "$name" ro)
  trap 'close "$name"' EXIT
  if ! listing "$root" | diff -u "$EVIDENCE/$name.listing" - ; then
    echo "$name changed (diff above: recorded listing, then now)" >&2
    exit 1
  fi
  echo "$name: $(wc -l <"$EVIDENCE/$name.listing") listed entries unchanged"
}

verify() {
  name=$1 suite=$2 failed=0
  root=$(open "$name")
  trap 'close "$name"' EXIT
  run() {
    local expect=$1 rc=0 out
    shift
    out=$(chroot "$root" "$@" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ] && { [ -z "$expect" ] || [ "$out" = "$expect" ]; }; then
      echo "ok: chroot $root $*"
    else
      echo "FAILED: chroot $root $* (exit $rc): $out"
      failed=1
    fi
  }
  run "" /bin/true
  run "" /bin/ls /
  run ok /bin/sh -c 'echo ok'
  run "" /usr/bin/python3 -c 'import math, ssl'
  # Every entry and checksum of the pristine tree's library directories is the target's too
  # (copies renamed away by the fault stay: they are listed as extra).
  pristine=$(contents "$trees/$suite")
  now=$(contents "$root")
  missing=$(comm -23 <(echo "$pristine") <(echo "$now"))
  extra=$(comm -13 <(echo "$pristine") <(echo "$now"))
  if [ -n "$missing" ]; then
    printf 'FAILED: these entries of the pristine %s tree differ or are missing:\n%s\n' "$suite" "$missing"
    failed=1
  else
    echo "ok: all $(echo "$pristine" | wc -l) entries and checksums of the pristine $suite tree's library directories are the same here (read inside each root)"
  fi
  [ -z "$extra" ] || echo "extra, not in the pristine tree: $(echo "$extra" | tr '\n' ';')"
  return "$failed"
}

command=${1:-}
shift || true
case $command in
  build | record | unchanged | verify) "$command" "$@" ;;
  *)
    sed -n '2,/^set /p' "$0" | sed '$d' >&2
    exit 2
    ;;
esac
