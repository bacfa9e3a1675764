#!/bin/bash
# Set up and tear down the situations around a target that rescue_mount must handle:
#   scene attach-disk IMAGE     attach IMAGE as a disk (loop device with its partitions); prints it
#   scene detach-disk DISK      undo attach-disk (both with molecule/shared/files/disk.sh)
#   scene mount-elsewhere DISK  mount the disk's last partition at /mnt/elsewhere
#   scene unmount-elsewhere
#   scene hold FILE             keep FILE open in a background process; prints its pid
#   scene release PID
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
esac
