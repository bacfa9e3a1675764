#!/bin/bash
# Set up and tear down the situations around a target that rescue_mount must handle:
#   scene attach-disk IMAGE     attach IMAGE as a disk (loop device with its partitions); prints it
#   scene detach-disk DISK      undo attach-disk
#   scene mount-elsewhere DISK  mount the disk's last partition at /mnt/elsewhere
#   scene unmount-elsewhere
#   scene hold FILE             keep FILE open in a background process; prints its pid
#   scene release PID
set -euo pipefail
case $1 in
  attach-disk)
    disk=$(losetup --find --show "$2")
    partx --add "$disk"
    for sys in /sys/class/block/"${disk#/dev/}"/"${disk#/dev/}"p*; do
      node=/dev/${sys##*/}
      [ -b "$node" ] || mknod "$node" b $(tr ':' ' ' <"$sys/dev")
    done
    echo "$disk" ;;
  detach-disk)
    partx --delete "$2" || true
    rm -f "$2"p[0-9]*
    losetup --detach "$2" ;;
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
esac
