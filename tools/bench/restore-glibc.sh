#!/usr/bin/env bash
# Benchmark: the wall time of playbooks/restore-glibc.yml on a root broken like incident 1
# (libc.so.6 renamed away), given as a target_root and as a target_image (msdos, ext4).
#   tools/bench/restore-glibc.sh [SUITE]        (root; default bookworm; works under .cache/bench)
# Prints one line per form; each run must end "repaired" and the target's ls must work again.
set -euo pipefail
cd "$(dirname "$0")/../.."
suite=${1:-bookworm}
trees=${LIFELINE_TREES:-/var/cache/lifeline/trees}
work=$PWD/.cache/bench
export ANSIBLE_CONFIG=$PWD/ansible.cfg
rm -rf "$work"
mkdir -p "$work"
loop=""
cleanup() {
  mountpoint -q "$work/mnt" 2>/dev/null && umount "$work/mnt"
  if [ -n "$loop" ]; then partx -d "$loop" 2>/dev/null || true; losetup -d "$loop" 2>/dev/null || true; fi
}
trap cleanup EXIT

# timed FORM ARGS...: run the playbook, print its wall time, check the report says repaired.
timed() {
  local form=$1; shift
  local start end
  start=$(date +%s.%N)
  .venv/bin/ansible-playbook playbooks/restore-glibc.yml "$@" -e lifeline_report_dir="$work/reports-$form" \
    >"$work/$form.log" 2>&1 || { tail -20 "$work/$form.log"; exit 1; }
  end=$(date +%s.%N)
  grep -q '"result": "repaired"' "$work"/reports-"$form"/*.json || { echo "$form: not repaired" >&2; exit 1; }
  printf '%-12s %6.1f s  (%s)\n' "$form" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$*"
}

cp -a "$trees/$suite" "$work/root"
roles/drill/files/glibc.sh "$work/root" libc_renamed >/dev/null
timed target_root -e target_root="$work/root"
chroot "$work/root" /bin/true

truncate -s 1G "$work/disk.raw"
printf 'label: dos\n,,L\n' | sfdisk -q "$work/disk.raw"
loop=$(losetup -f --show "$work/disk.raw")
partx -a "$loop"
mkfs.ext4 -q "${loop}p1"
mkdir -p "$work/mnt"
mount "${loop}p1" "$work/mnt"
cp -a "$trees/$suite/." "$work/mnt/"
roles/drill/files/glibc.sh "$work/mnt" libc_renamed >/dev/null
umount "$work/mnt"
partx -d "$loop"
losetup -d "$loop"
loop=""
timed target_image -e target_image="$work/disk.raw"
