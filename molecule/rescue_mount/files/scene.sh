#!/bin/bash
# Set up and tear down the situations around a target that rescue_mount must handle:
#   scene attach-disk IMAGE     attach IMAGE as a disk (loop device with its partitions); prints it
#   scene detach-disk DISK      undo attach-disk (both with molecule/shared/files/disk.sh)
#   scene mount-elsewhere DISK  mount the disk's last partition at /mnt/elsewhere
#   scene unmount-elsewhere
#   scene hold FILE             keep FILE open in a background process; prints its pid
#   scene release PID
#   scene fill-loops            bind every loop device node this container has to a small file, so
#                               that the kernel's next free loop device has no node here (as when the
#                               host and other containers hold the numbers podman made nodes for)
#   scene empty-loops           undo fill-loops
set -euo pipefail
case $1 in
  attach-disk)
    disk attach "$2" ;;
  detach-disk)
    disk detach "$2" ;;
  mount-elsewhere)
    mkdir -p /mnt/elsewhere
    mount "$(ls "$2"p[0-9]* | tail -1)" /mnt/elsewhere ;;
  unmount-elsewhere)
    umount /mnt/elsewhere ;;
  hold)
    setsid sleep 600 3<"$2" >/dev/null 2>&1 &
    echo $! ;;
  release)
    kill "$2" ;;
  fill-loops)
    mkdir -p /srv/fillers
    for node in /dev/loop[0-9]*; do
      [ -b "$node" ] || continue
      file=/srv/fillers/${node#/dev/}.img
      truncate -s 1M "$file"
      losetup "$node" "$file" 2>/dev/null || rm -f "$file"  # bound already: by the host or another
    done
    unbound=$(for node in /dev/loop[0-9]*; do losetup "$node" >/dev/null 2>&1 || echo "$node"; done)
    [ -z "$unbound" ] || { echo "still unbound here: $unbound" >&2; exit 1; }
    echo "all $(ls -d /dev/loop[0-9]* | wc -l) loop device nodes here are bound" ;;
  empty-loops)
    losetup --list --noheadings --output NAME,BACK-FILE | awk '$2 ~ "^/srv/fillers/" { print $1 }' |
      xargs -r -n 1 losetup -d
    rm -rf /srv/fillers ;;
esac
