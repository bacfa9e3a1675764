#!/usr/bin/env bash
# The VM lane's disks: small bootable bookworm systems made from Debian packages only, each booted
# by its own GRUB (BIOS), reached by ssh with the lane's key.
#
#   tools/images/build-vm-disks.sh   -> $LIFELINE_CACHE/vm/disks/{patient,rescue,mover,vault}.img,
#                                       vm/disks/vault.key + vm/id_ed25519
#
#   patient.img  root on LVM (vg0/root): the host that breaks (incidents 2, 3 and 4)
#   rescue.img   root on LVM as well, its volume group also named vg0 (another UUID): the rescuer
#   mover.img    root on a plain partition (vda1): the host whose root moves into LVM (incident 5)
#   vault.img    /boot on vda1, vda2 LUKS2 holding vg0/root (LVM on LUKS), unlocked at boot by the
#                key file in its initramfs; vault.key beside it is that key, for the rescuer
#
# This machine's kernel has no device-mapper, so the host only debootstraps a tree and partitions
# the disk files; a builder VM booted from the tree (an ext4 image made by mkfs.ext4 -d, no mount)
# creates the volume groups, copies itself onto each disk and installs GRUB. The disks are cached:
# rebuilt only when the content of this recipe, of the lay-out script or of the key changes (not
# their paths, nor how this script was called). Tests boot copy-on-write overlays of them and never
# write to them.
set -euo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$0")/../.."
cache=${LIFELINE_CACHE:-/var/cache/lifeline}/vm
mirror=${LIFELINE_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
packages=linux-image-amd64,grub-pc,lvm2,cryptsetup,cryptsetup-initramfs,systemd-sysv,udev,dbus,openssh-server,cron,python3,initramfs-tools,kmod,iproute2,procps,lsof,psmisc,e2fsprogs
layout=tools/images/vm-lay-out.sh
mkdir -p "$cache/debs" "$cache/disks"
exec 9>"$cache/.build.lock"
flock 9

key=$cache/id_ed25519
[ -s "$key" ] || ssh-keygen -q -t ed25519 -N '' -C lifeline-vm-lane -f "$key"

# Content only: a moved file, or this script called by another path, rebuilds nothing.
recipe=$(cat "$self" "$layout" "$key.pub" | sha256sum | cut -c1-16)
if [ "$(cat "$cache/disks.stamp" 2>/dev/null)" = "$recipe" ] && [ -s "$cache/disks/vault.img" ] &&
  [ -s "$cache/disks/vault.key" ]; then
  echo "vm disks: up to date ($cache/disks, recipe $recipe)"
  exit 0
fi
echo "vm disks: building patient, rescue, mover and vault disks in $cache (a few minutes, once per recipe)"
start=$SECONDS

# 1. The tree, once per package list (its own deb cache: the machine's holds one libc6 per suite).
tree=$cache/tree
if [ "$(cat "$cache/tree.stamp" 2>/dev/null)" != "$suite $packages" ]; then
  rm -rf "$tree" "$tree.new"
  debootstrap --variant=minbase --include="$packages" --cache-dir="$cache/debs" \
    "$suite" "$tree.new" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 30 "$cache/debootstrap.log" >&2; echo "vm disks: debootstrap failed (log above)" >&2; exit 1; }
  mv "$tree.new" "$tree"
  echo "$suite $packages" >"$cache/tree.stamp"
fi

# 2. What every VM shares: a static address on qemu's user network, the key, a serial console,
# no timers that would run apt or fstrim in the middle of a test, a small initramfs.
work=$cache/build
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
cat >"$tree/etc/systemd/network/10-lifeline.network" <<'EOF'
[Match]
Type=ether

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
DNS=10.0.2.3
EOF
chroot "$tree" systemctl enable -q systemd-networkd.service
chroot "$tree" systemctl mask -q apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer 2>/dev/null || true
install -d -m 700 "$tree/root/.ssh"
install -m 600 "$key.pub" "$tree/root/.ssh/authorized_keys"
cat >"$tree/etc/default/grub" <<'EOF'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=ttyS0,115200 net.ifnames=0 panic=10"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
# An initramfs with the modules this machine needs, not most of the kernel's: under emulation
# mkinitramfs spends a minute per hundred modules (update-initramfs runs in the migration test).
echo MODULES=dep >"$tree/etc/initramfs-tools/conf.d/lifeline-vm"
install -m 755 "$layout" "$tree/sbin/lifeline-lay-out"
# The vault's LUKS key: made for each build, given to the builder in its root, kept beside the disk.
head -c 64 /dev/urandom >"$work/vault.key"
install -d -m 700 "$tree/etc/keys"
install -m 400 "$work/vault.key" "$tree/etc/keys/vault.key"

# 3. The builder's root and the four disks (msdos labels; type 8e = Linux LVM, 83 = Linux; the
# vault's /boot first, then its LUKS partition).
truncate -s 3G "$work/builder.img"
mkfs.ext4 -q -F -d "$tree" "$work/builder.img"
rm -rf "$tree/sbin/lifeline-lay-out" "$tree/etc/keys"
for disk in patient:',,8e,*' rescue:',,8e,*' mover:',,83,*' vault:',256M,83,*\n,,83'; do
  name=${disk%%:*}
  rm -f "$work/$name.img"
  truncate -s 2G "$work/$name.img"
  printf 'label: dos\n%b\n' "${disk#*:}" | sfdisk -q "$work/$name.img"
done
kernel=$(find "$tree/boot" -name 'vmlinuz-*' | sort -V | tail -n 1)
initrd=$(find "$tree/boot" -name 'initrd.img-*' | sort -V | tail -n 1)
# panic=1 with -no-reboot: a builder that fails ends qemu instead of hanging on the panic.
timeout 1200 qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -no-reboot -nic none \
  -kernel "$kernel" -initrd "$initrd" \
  -append "root=/dev/vda rw console=ttyS0 init=/sbin/lifeline-lay-out panic=1" \
  -drive "file=$work/builder.img,if=virtio,format=raw" \
  -drive "file=$work/patient.img,if=virtio,format=raw" \
  -drive "file=$work/rescue.img,if=virtio,format=raw" \
  -drive "file=$work/mover.img,if=virtio,format=raw" \
  -drive "file=$work/vault.img,if=virtio,format=raw" \
  >"$cache/builder.log" 2>&1 || true
if ! grep -aq "LIFELINE LAY-OUT DONE" "$cache/builder.log"; then
  tail -n 60 "$cache/builder.log" >&2
  echo "vm disks: the builder VM did not finish (log above; all of it in $cache/builder.log)" >&2
  exit 1
fi
for name in patient rescue mover vault; do mv "$work/$name.img" "$cache/disks/$name.img"; done
install -m 600 "$work/vault.key" "$cache/disks/vault.key"
echo "$recipe" >"$cache/disks.stamp"
echo "vm disks: built in $((SECONDS - start))s ($cache/disks)"
