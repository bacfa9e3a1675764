#!/bin/bash
# Build the raw disk images the rescue_mount scenario attaches, from the real Debian tree in $1.
# Each image is a disk as a hypervisor would hold it: a partition table, filesystems at the
# partitions' offsets, and a root whose fstab names its other filesystems by UUID.
set -euo pipefail
export LVM_SUPPRESS_FD_WARNINGS=1
tree=$1
out=$2
mkdir -p "$out"
work=$(mktemp -d /var/tmp/make-images.XXXXXX)
# Every loop device still backed by a file of $work is detached, whichever step attached it.
cleanup() {
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  losetup --list --noheadings --output NAME,BACK-FILE | awk -v work="$work/" 'index($2, work) == 1 { print $1 }' |
    xargs -r -n 1 losetup -d 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A loop device for a file (the shared disk tool makes its /dev node when this container lacks it).
loop_for() { disk attach-file "$1"; }

# root_fs FILE TYPE LABEL MARKER FSTAB: a filesystem holding the Debian tree, a marker and an
# fstab, in which @ROOT_UUID@ stands for the new filesystem's own UUID.
root_fs() {
  local file=$1 type=$2 label=$3 marker=$4 fstab=$5 loop
  truncate -s 900M "$file"
  "mkfs.$type" -q -L "$label" "$file" >/dev/null
  loop=$(loop_for "$file")
  mkdir -p "$work/mnt"
  mount "$loop" "$work/mnt"
  cp -a "$tree/." "$work/mnt/"
  echo "$marker" >"$work/mnt/etc/lifeline-fixture"
  printf '%s\n' "${fstab//@ROOT_UUID@/$(uuid_of "$file")}" >"$work/mnt/etc/fstab"
  umount "$work/mnt"
  losetup -d "$loop"
}

# boot_fs FILE LABEL MARKER: a small ext4 /boot holding a marker file.
boot_fs() {
  mkdir -p "$work/bootdir"
  echo "$3" >"$work/bootdir/lifeline-fixture-boot"
  truncate -s 120M "$1"
  mkfs.ext4 -q -L "$2" -d "$work/bootdir" "$1"
  rm -rf "$work/bootdir"
}

uuid_of() { blkid -p -s UUID -o value "$1"; }

# assemble IMAGE LABEL(dos|gpt) FILE...: one partition per filesystem file, each copied in place.
assemble() {
  local image=$1 label=$2 file start script="label: $2"$'\n'
  shift 2
  for file in "$@"; do script+="size=$(( $(stat -c %s "$file") / 512 ))"$'\n'; done
  truncate -s $(( $(du -cb --apparent-size "$@" | tail -1 | cut -f1) + 8 * 1024 * 1024 )) "$image"
  printf '%s' "$script" | sfdisk -q "$image"
  local nr=1
  for file in "$@"; do
    start=$(partx -g -o START -n "$nr" "$image" | tr -d ' ')
    dd if="$file" of="$image" bs=1M oflag=seek_bytes seek=$(( start * 512 )) conv=notrunc,sparse status=none
    nr=$(( nr + 1 ))
  done
}

declare -A manifest

# msdos + ext4 root
root_fs "$work/a.root" ext4 root "msdos-ext4" "LABEL=root / ext4 errors=remount-ro 0 1"
manifest[msdos_ext4_root]=$(uuid_of "$work/a.root")
assemble "$out/msdos-ext4.img" dos "$work/a.root"

# gpt + xfs root + separate ext4 /boot named by UUID in the root's fstab
boot_fs "$work/b.boot" boot "gpt-xfs-boot"
boot_uuid=$(uuid_of "$work/b.boot")
root_fs "$work/b.root" xfs root "gpt-xfs-boot" "UUID=@ROOT_UUID@ / xfs defaults 0 1
UUID=$boot_uuid /boot ext4 defaults 0 2
/dev/sdb1 /srv ext4 defaults 0 2"
manifest[gpt_xfs_root]=$(uuid_of "$work/b.root")
manifest[gpt_xfs_boot]=$boot_uuid
assemble "$out/gpt-xfs-boot.img" gpt "$work/b.boot" "$work/b.root"

# two candidate roots
root_fs "$work/c1.root" ext4 first "two-roots-1" "LABEL=first / ext4 defaults 0 1"
root_fs "$work/c2.root" ext4 second "two-roots-2" "LABEL=second / ext4 defaults 0 1"
manifest[two_roots_2]=$(uuid_of "$work/c2.root")
assemble "$out/two-roots.img" dos "$work/c1.root" "$work/c2.root"
rm -f "$work"/*.root "$work"/*.boot

# msdos + btrfs whose root is the subvolume "@", the way Ubuntu installs it
truncate -s 900M "$work/e.root"
mkfs.btrfs -q -L root "$work/e.root" >/dev/null
loop=$(loop_for "$work/e.root")
mkdir -p "$work/mnt"
mount "$loop" "$work/mnt"
btrfs subvolume create "$work/mnt/@" >/dev/null
cp -a "$tree/." "$work/mnt/@/"
echo "btrfs-subvolume" >"$work/mnt/@/etc/lifeline-fixture"
echo "LABEL=root / btrfs defaults,subvol=@ 0 0" >"$work/mnt/@/etc/fstab"
umount "$work/mnt"
losetup -d "$loop"
manifest[btrfs_root]=$(uuid_of "$work/e.root")
assemble "$out/btrfs-subvolume.img" dos "$work/e.root"
rm -f "$work/e.root"

# a root on LVM: the physical volume and its volume group exist, activating it needs device-mapper
boot_fs "$work/d.boot" boot "lvm"
truncate -s 200M "$work/d.pv"
pv=$(loop_for "$work/d.pv")
nobackup="backup { backup = 0 archive = 0 }"
lvm pvcreate -q --config "$nobackup" "$pv" >/dev/null
lvm vgcreate -q --config "$nobackup" lifeline_vg "$pv" >/dev/null
losetup -d "$pv"
assemble "$out/lvm.img" gpt "$work/d.boot" "$work/d.pv"

# not a disk image at all
{ echo "this is a log file, not a disk"; head -c 1048576 /dev/urandom; } >"$out/not-an-image.img"

{
  echo "{"
  for key in "${!manifest[@]}"; do echo "  \"$key\": \"${manifest[$key]}\","; done
  echo "  \"built\": true"
  echo "}"
} >"$out/manifest.json"
