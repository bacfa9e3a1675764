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
    # Other scenarios attach and detach beside this one: a node found bound may be free a moment
    # later, so the free ones are bound again until none is left (or ten rounds).
    mkdir -p /srv/lifeline-loop-fillers
    for round in 1 2 3 4 5 6 7 8 9 10; do
      unbound=""
      for node in /dev/loop[0-9]*; do
        [ -b "$node" ] || continue
        losetup "$node" >/dev/null 2>&1 && continue  # bound: by the host, another container or us
        file=/srv/lifeline-loop-fillers/${node#/dev/}.img
        truncate -s 1M "$file"
        losetup "$node" "$file" 2>/dev/null || unbound="$unbound $node"
      done
      [ -n "$unbound" ] || break
      sleep 0.2
    done
    if [ -n "$unbound" ]; then
      "$0" empty-loops  # loop devices outlive the container: none of ours may stay bound
      echo "still unbound here after ten rounds:$unbound" >&2
      exit 1
    fi
    echo "all $(ls -d /dev/loop[0-9]* | wc -l) loop device nodes here are bound" ;;
  empty-loops)
    losetup --list --noheadings --output NAME,BACK-FILE | awk '$2 ~ "^/srv/lifeline-loop-fillers/" { print $1 }' |
      xargs -r -n 1 losetup -d
    rm -rf /srv/lifeline-loop-fillers ;;
esac
