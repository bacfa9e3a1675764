#!/bin/sh
# The builder VM's init (tools/images/build-vm-disks.sh): lays out /dev/vdb (patient), /dev/vdc
# (rescue), /dev/vdd (mover) and /dev/vde (vault), each partitioned by the host, copies this root
# onto them, installs GRUB, then powers off. The initramfs has already mounted /proc, /sys and /dev
# (devtmpfs is moved into the root: mounting it again would fail). LVM runs without udev, each call
# seeing one disk only, so that two volume groups named vg0 never meet; device-mapper makes its own
# nodes (DM_DISABLE_UDEV) for cryptsetup as well.
set -eux
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mountpoint -q /run || mount -t tmpfs run /run
mkdir -p /run/lock /run/lvm /run/cryptsetup
modprobe dm-mod
modprobe dm-crypt
export DM_DISABLE_UDEV=1
# The vault's key, put here by the host; only the vault keeps a copy (its initramfs unlocks with it).
vault_key=/etc/keys/vault.key

# sh has no local variables: each function names its own, so that none changes its caller's.
lvm_on() { # lvm_on PARTITION COMMAND ARGS...
  lvm_device=$1 lvm_command=$2
  shift 2
  lvm "$lvm_command" --config "devices { filter = [ \"a|^$lvm_device\$|\", \"r|.*|\" ] use_devicesfile = 0 }
    activation { udev_rules = 0 udev_sync = 0 } global { use_lvmetad = 0 }" "$@"
}

on_lvm() { # on_lvm PV: vg0/root on it
  lvm_on "$1" pvcreate -q "$1"
  lvm_on "$1" vgcreate -q vg0 "$1"
  lvm_on "$1" lvcreate -q -n root -l 100%FREE vg0
  lvm_on "$1" vgmknodes
}

# The vault: /boot on partition 1, partition 2 LUKS2 holding vg0 (LVM on LUKS), unlocked at boot by
# the key file its initramfs carries (crypttab's key, copied in by KEYFILE_PATTERN), as a headless
# server with an encrypted disk boots. pbkdf2 with few iterations: unlocking under emulation must
# take a moment, not the seconds-long argon2 default sized for real hardware (the key is a test's).
unlock_vault() { # unlock_vault PARTITION: vda2_crypt open on it, vg0/root inside
  cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
    --key-file "$vault_key" "$1"
  cryptsetup open --type luks --key-file "$vault_key" "$1" vda2_crypt
  on_lvm /dev/mapper/vda2_crypt
}

vault_boot() { # vault_boot PARTITION: the crypttab, fstab line and initramfs of the vault
  luks_uuid=$(blkid -s UUID -o value "$1")
  install -d -m 700 /mnt/new/etc/keys
  install -m 400 "$vault_key" /mnt/new/etc/keys/vault.key
  echo "vda2_crypt UUID=$luks_uuid /etc/keys/vault.key luks,initramfs" >/mnt/new/etc/crypttab
  echo 'KEYFILE_PATTERN="/etc/keys/*.key"' >>/mnt/new/etc/cryptsetup-initramfs/conf-hook
  echo UMASK=0077 >>/mnt/new/etc/initramfs-tools/initramfs.conf
  echo "UUID=$(blkid -s UUID -o value "$boot") /boot ext4 defaults 0 2" >>/mnt/new/etc/fstab
  chroot /mnt/new update-initramfs -u -k all
}

lay_out() { # lay_out DISK HOSTNAME lvm|plain|luks
  disk=$1 name=$2 kind=$3 part=${1}1 boot=
  # Never "f && g" here: set -e is off inside a function called on the left of &&.
  root=/dev/mapper/vg0-root
  case $kind in
    lvm) on_lvm "$part" ;;
    luks)
      boot=$part part=${1}2
      unlock_vault "$part"
      ;;
    *) root=$part ;;
  esac
  mkfs.ext4 -q -L root "$root"
  mkdir -p /mnt/new
  mount "$root" /mnt/new
  if [ -n "$boot" ]; then
    mkfs.ext4 -q -L boot "$boot"
    mkdir -p /mnt/new/boot
    mount "$boot" /mnt/new/boot
  fi
  cp -ax /. /mnt/new/ # "cp -ax / DIR" fails: the source must be "/."
  rm -f /mnt/new/sbin/lifeline-lay-out
  rm -rf /mnt/new/etc/keys
  echo "$name" >/mnt/new/etc/hostname
  printf '127.0.0.1 localhost\n127.0.1.1 %s\n' "$name" >/mnt/new/etc/hosts
  echo "UUID=$(blkid -s UUID -o value "$root") / ext4 errors=remount-ro 0 1" >/mnt/new/etc/fstab
  for fs in dev proc sys run; do mount --bind "/$fs" "/mnt/new/$fs"; done
  if [ "$kind" = luks ]; then
    vault_boot "$part"
  fi
  chroot /mnt/new grub-install --target=i386-pc "$disk"
  chroot /mnt/new update-grub
  for fs in run sys proc dev; do umount "/mnt/new/$fs"; done
  [ -z "$boot" ] || umount /mnt/new/boot
  umount /mnt/new
  case $kind in
    lvm) lvm_on "$part" vgchange -q -an vg0 ;;
    luks)
      lvm_on /dev/mapper/vda2_crypt vgchange -q -an vg0
      cryptsetup close vda2_crypt
      ;;
  esac
  echo "laid out $disk as $name ($kind)"
}

lay_out /dev/vdb patient lvm
lay_out /dev/vdc rescue lvm
lay_out /dev/vdd mover plain
lay_out /dev/vde vault luks
sync
echo "LIFELINE LAY-OUT DONE"
echo o >/proc/sysrq-trigger
