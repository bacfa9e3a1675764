#!/bin/bash
# Raw disk images as the molecule scenarios attach them by hand, independently of lifeline's own
# code (shared by every scenario: installed as /usr/local/sbin/disk in a rescuer container).
#   disk attach IMAGE            a loop device with the image's partitions; prints the loop device
#   disk attach-file FILE        a loop device for FILE as it is (no partition table read); prints it
#   disk detach LOOP             undo attach: partition mappings, their /dev nodes, the loop device
#   disk mount IMAGE DIR [OPTS]  attach, then mount the image's last partition (the root) at DIR;
#                                with ro among OPTS the loop device is read-only too (xfs writes to
#                                its log when mounted ro from a writable device)
#   disk unmount DIR             unmount DIR and detach the loop device it was on
#   disk detach-images DIR       every loop device backed by an image under DIR (seen from here):
#                                whatever is mounted from it unmounted, then detached; prints each
#   disk detach-backing REGEX    the same for loop devices whose backing file (as the kernel names it
#                                to this mount namespace) matches REGEX: for the host, which sees a
#                                container's images under its storage path, or "(deleted)" ones
#   disk forget-inherited        remove the loop partition nodes this container's /dev was given
#                                when it started (podman copies the host's, of loop devices other
#                                lanes held then): any found later were left by the scenario
# Partition nodes are created when this container's /dev lacks them (podman's /dev is static);
# `losetup -P` does not map partitions here, `partx -a` does.
set -euo pipefail

# node SYSDIR: the /dev node of a kernel block device, made when missing and made again when it
# names another device: partition numbers are handed out anew at each attach, so a node an earlier
# attach left behind (here or in a scenario running beside this one) can be stale.
node() {
  local path=/dev/${1##*/} want
  want=$(cat "$1/dev")
  if [ ! -b "$path" ] || [ "$(stat -c '%Hr:%Lr' "$path")" != "$want" ]; then
    rm -f "$path"
    mknod "$path" b "${want%:*}" "${want#*:}"
  fi
}

# loop_of FILE [ro]: a loop device backed by FILE (read-only with ro), without partitions; prints it.
# `losetup --find --show FILE` fails (ENOENT) when this container's static /dev lacks the node of
# the number the kernel hands out (the host or a scenario beside this one holds the others): the
# free device is asked for first, its node made, then attached; if another attacher took it
# meanwhile (busy), or the kernel still tears down its previous use (EAGAIN, seen on a busy machine
# with loop devices coming and going beside this one), or the number vanished between the two
# (ENOENT, seen with a lane attaching beside this one), the next free one is asked for.
loop_of() {
  local disk try err
  for try in 1 2 3 4 5 6 7 8; do
    disk=$(losetup --find)
    node "/sys/class/block/${disk#/dev/}"
    if err=$(losetup ${2:+--read-only} "$disk" "$1" 2>&1); then
      echo "$disk"
      return
    fi
    case $err in
      *busy* | *"temporarily unavailable"* | *"No such file or directory"*)
        [ "$try" -lt 8 ] && { sleep 0.$try; continue; } ;;
    esac
    echo "disk: attaching $1 to $disk (try $try): $err" >&2
    exit 1
  done
}

# partitions LOOP: the kernel's partition mappings of LOOP made to match its table; --add would
# fail on a mapping a previous user of this number left, and --update itself can meet a mapping
# still busy for a moment: tried again before giving up, with partx's words.
partitions() {
  local try err
  for try in 1 2 3 4 5 6; do
    err=$(partx --update "$1" 2>&1) && return
    [ "$try" -lt 6 ] && sleep 0.5
  done
  echo "disk: reading the partitions of $1 (6 tries): $err" >&2
  return 1
}

attach() {
  local disk sys
  disk=$(loop_of "$1" "${2:-}")
  partitions "$disk" || { losetup --detach "$disk"; exit 1; }
  for sys in /sys/class/block/"${disk#/dev/}"/"${disk#/dev/}"p*; do
    [ -e "$sys" ] || continue
    node "$sys"
  done
  echo "$disk"
}

# A partition just unmounted can still be busy for a moment: partx --delete is tried again until
# the kernel has no partition of the loop device left, so the next attach of that number starts clean.
detach() {
  local try
  for try in 1 2 3 4 5 6 7 8 9 10; do
    partx --delete "$1" 2>/dev/null || true
    compgen -G "/sys/class/block/${1#/dev/}/${1#/dev/}p*" >/dev/null || break
    [ "$try" -lt 10 ] || echo "disk: partitions of $1 still present after 10 tries" >&2
    sleep 0.5
  done
  rm -f "$1"p[0-9]*
  losetup --detach "$1"
}

# unmount_from LOOP: unmount every mount of the loop device or of its partitions, deepest first.
unmount_from() {
  local target
  awk -v loop="$1" '$1 ~ "^" loop "(p[0-9]+)?$" { print $2 }' /proc/self/mounts | tac |
    while read -r target; do umount "$(printf '%b' "$target")"; done
}

detach_all() {
  local loop
  for loop in "$@"; do
    unmount_from "$loop"
    detach "$loop"
    echo "detached $loop"
  done
}

case ${1:-} in
  attach) attach "$2" ;;
  attach-file) loop_of "$2" ;;
  detach) detach "$2" ;;
  mount)
    readonly=""
    [[ ",${4:-}," != *,ro,* ]] || readonly=ro
    disk=$(attach "$2" "$readonly")
    mkdir -p "$3"
    mount ${4:+-o "$4"} "$(ls "$disk"p[0-9]* | sort -V | tail -1)" "$3" || { detach "$disk"; exit 1; }
    ;;
  unmount)
    source=$(findmnt --noheadings --output SOURCE --mountpoint "$2")
    umount "$2"
    detach "${source%p[0-9]*}"
    ;;
  detach-images)
    shopt -s nullglob
    for image in "$2"/*.img; do
      # shellcheck disable=SC2046  # one loop device name a word
      detach_all $(losetup --associated "$image" --noheadings --output NAME)
    done
    ;;
  forget-inherited)
    rm -f /dev/loop[0-9]*p[0-9]*
    ;;
  detach-backing)
    # shellcheck disable=SC2046
    detach_all $(losetup --list --noheadings --output NAME,BACK-FILE | awk -v re="$2" '$0 ~ re { print $1 }')
    ;;
  *)
    sed -n '2,/^set /p' "$0" | sed '$d' >&2
    exit 2
    ;;
esac
