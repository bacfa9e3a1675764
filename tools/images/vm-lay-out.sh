#!/bin/sh
# The builder VM's init (tools/images/build-vm-disks.sh): lays out /dev/vdb (patient), /dev/vdc
# (rescue) and /dev/vdd (mover), each partitioned by the host, copies this root onto them, installs
# GRUB, then powers off. The initramfs has already mounted /proc, /sys and /dev (devtmpfs is moved
# into the root: mounting it again would fail). LVM runs without udev, each call seeing one disk
# only, so that two volume groups named vg0 never meet.
set -eux
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mountpoint -q /run || mount -t tmpfs run /run
mkdir -p /run/lock /run/lvm
modprobe dm-mod

lvm_on() { # lvm_on PARTITION COMMAND ARGS...
  part=$1 cmd=$2
  shift 2
  lvm "$cmd" --config "devices { filter = [ \"a|^$part\$|\", \"r|.*|\" ] use_devicesfile = 0 }
    activation { udev_rules = 0 udev_sync = 0 } global { use_lvmetad = 0 }" "$@"
}

lay_out() { # lay_out DISK HOSTNAME lvm|plain
  disk=$1 name=$2 kind=$3 part=${1}1
  if [ "$kind" = lvm ]; then
    lvm_on "$part" pvcreate -q "$part"
    lvm_on "$part" vgcreate -q vg0 "$part"
    lvm_on "$part" lvcreate -q -n root -l 100%FREE vg0
    lvm_on "$part" vgmknodes
    root=/dev/mapper/vg0-root
  else
    root=$part
  fi
  mkfs.ext4 -q -L root "$root"
  mkdir -p /mnt/new
  mount "$root" /mnt/new
  cp -ax /. /mnt/new/ # "cp -ax / DIR" fails: the source must be "/."
  rm -f /mnt/new/sbin/lifeline-lay-out
  echo "$name" >/mnt/new/etc/hostname
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >/mnt/new/etc/hosts
  echo "UUID=$(blkid -s UUID -o value "$root") / ext4 errors=remount-ro 0 1" >/mnt/new/etc/fstab
  for fs in dev proc sys run; do mount --bind "/$fs" "/mnt/new/$fs"; done
  chroot /mnt/new grub-install --target=i386-pc "$disk"
  chroot /mnt/new update-grub
  for fs in run sys proc dev; do umount "/mnt/new/$fs"; done
  umount /mnt/new
  if [ "$kind" = lvm ]; then
    lvm_on "$part" vgchange -q -an vg0
  fi
  echo "laid out $disk as $name ($kind)"
}

lay_out /dev/vdb patient lvm
lay_out /dev/vdc rescue lvm
lay_out /dev/vdd mover plain
sync
echo "LIFELINE LAY-OUT DONE"
echo o >/proc/sysrq-trigger
