#!/bin/bash
# The broken systems of the restore_glibc scenario, made from the real Debian trees, and the
# scenario's own checks of them: by hand (chroot, md5sum, mount, qemu-img), sharing no code with
# lifeline.
#   targets build NAME SUITE FAULT FOREIGN [TABLE FS FILE [FORMAT [snapshot|backing]]]
#       a copy of /srv/trees/SUITE with FAULT planted (roles/drill/files/glibc.sh, installed as
#       glibc-fault; FOREIGN: the suite whose libc libc_foreign links in, or ''): the directory
#       $DIRECTORIES/NAME, or with TABLE (dos|gpt) and FS (ext4|xfs) a disk image $IMAGES/FILE
#       (FILE is NAME.EXTENSION), its root filesystem on its only partition, planted raw and then
#       converted by qemu-img to FORMAT (default raw: qcow2, vmdk, vhdx, vpc, vdi); with qcow2,
#       snapshot: an internal snapshot "planted" taken of the broken system; backing: the broken
#       system stays in the raw file $IMAGES/NAME-base.img and FILE is an empty qcow2 overlay on it
#       (as a hypervisor's external snapshot leaves a disk). The image's format, its snapshot list
#       and the backing file's checksum are kept in $EVIDENCE/NAME.image and NAME.backing.sha256
#   targets record NAME COMMAND...
#       run COMMAND inside the target (chroot) and keep its exit status and words in
#       $EVIDENCE/NAME.broken (printed); keep the listing of its library directories in
#       $EVIDENCE/NAME.listing, and an image's checksums (with its backing file) in NAME.sha256
#   targets unchanged NAME     the image's bytes (and its backing file's), or a directory's
#                              listing, are still the recorded ones (after a check-mode run)
#   targets verify NAME SUITE  the target's programs run, and every file and link of its library
#                              directories is the pristine tree's (extra entries are printed); an
#                              image still has its format, its snapshots (a snapshot still holds
#                              the broken system), a clean qemu-img check and an unchanged backing file
# An image is read back for each command and always released: a raw one attached and mounted by
# hand (disk mount), any other converted first to a raw scratch copy by qemu-img convert (no nbd
# here), which is what is mounted: the checks never rely on lifeline's own export of the image.
set -euo pipefail
trees=/srv/trees
debs=/srv/debs
# Where the targets and the evidence are (vars.yml: directories, images, evidence).
: "${DIRECTORIES:?}" "${IMAGES:?}" "${EVIDENCE:?}"
mnt=/mnt/check

# listing ROOT: every entry of the library directories (merged /usr: these are links into /usr)
# with its type, mode, owner and link text, the checksum of each file, then the loader cache, the
# foreign glibc's directory and lifeline's backups; read from outside, a broken root too.
listing() {
  (
    cd "$1"
    find lib/x86_64-linux-gnu/ lib64/ -mindepth 1 -maxdepth 1 -printf '%p %y %m %U:%G %l\n' | sort
    find lib/x86_64-linux-gnu/ lib64/ -mindepth 1 -maxdepth 1 -type f -print0 | sort -z | xargs -0 md5sum
    md5sum etc/ld.so.cache
    find opt var/backups -printf '%p %y %l\n' | sort
  )
}

# contents ROOT: every entry of the library directories with its type, mode and owner, and the
# checksum of what it leads to, read by the root's own programs (a link resolves inside the root,
# whether its text is relative or absolute); a root whose programs cannot run gives nothing.
contents() {
  chroot "$1" /bin/sh -c 'cd / && dirs="lib/x86_64-linux-gnu/ lib64/" &&
    find $dirs -mindepth 1 -maxdepth 1 -printf "%p %y %m %U:%G\n" &&
    find $dirs -mindepth 1 -maxdepth 1 \( -type f -o -type l \) -print0 | xargs -0 md5sum' 2>&1 | sort || true
}

# sha256 FILE...: each file's sha256 as sha256sum prints it, by python's hashlib (which uses the CPU's
# SHA instructions: five times faster than sha256sum on a 1 GiB image here).
sha256() {
  python3 - "$@" <<'PY'
import hashlib, sys
for path in sys.argv[1:]:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    print(f"{digest.hexdigest()}  {path}")
PY
}

# same_sha256 LIST: the files LIST names (kept from sha256) still have the checksums it says.
same_sha256() {
  local files
  mapfile -t files < <(cut -d' ' -f3- "$1")
  sha256 "${files[@]}" | diff -u "$1" - >&2
}

# image_of NAME: the target's disk image ($IMAGES/NAME.EXTENSION), nothing for a directory target.
image_of() {
  local found=("$IMAGES/$1".*)
  [ -e "${found[0]}" ] || return 0
  [ ${#found[@]} -eq 1 ] || { echo "more than one image of $1: ${found[*]}" >&2; exit 1; }
  echo "${found[0]}"
}

# facts FILE: what qemu-img finds in the image's header (left to probe: these are the scenario's own
# images): its format, its backing file, its internal snapshots, one a line.
facts() {
  qemu-img info --output=json "$1" | python3 -c '
import json, sys
info = json.load(sys.stdin)
print("format", info["format"])
if "backing-filename" in info:
    print("backing", info["backing-filename"], info.get("backing-filename-format", "?"))
for snap in info.get("snapshots", []):
    print("snapshot", *(snap[k] for k in ("name", "id", "date-sec", "date-nsec", "vm-clock-sec", "vm-state-size")))
'
}

# The format the image was built in (the first line of its facts, kept by build).
built_format() {
  awk '$1 == "format" { print $2; exit }' "$EVIDENCE/$1.image"
}

# open NAME [OPTIONS [SNAPSHOT]]: the target's root directory; an image is mounted first (OPTIONS:
# mount's -o), a raw one directly, any other from a raw scratch copy qemu-img makes of it (of its
# internal snapshot SNAPSHOT when given). The caller runs close NAME at exit, also when this fails.
open() {
  local image format
  image=$(image_of "$1")
  if [ -z "$image" ]; then
    [ -d "$DIRECTORIES/$1" ] || { echo "no target $1" >&2; exit 1; }
    echo "$DIRECTORIES/$1"
    return
  fi
  format=$(built_format "$1")
  if [ "$format" != raw ]; then
    qemu-img convert -f "$format" ${3:+-l "snapshot.name=$3"} -O raw "$image" "$IMAGES/scratch-$1.img"
    image=$IMAGES/scratch-$1.img
  fi
  disk mount "$image" "$mnt/$1" "${2:-}" >/dev/null
  echo "$mnt/$1"
}

close() {
  if mountpoint -q "$mnt/$1"; then
    disk unmount "$mnt/$1"
    rmdir "$mnt/$1"
  fi
  rm -f "$IMAGES/scratch-$1.img"
}

build() {
  name=$1 suite=$2 fault=$3 foreign=$4 table=${5:-} fs=${6:-} file=${7:-} format=${8:-raw} layout=${9:-}
  source=""
  case $fault in
    libc_foreign) source=$trees/$foreign/lib/x86_64-linux-gnu/libc.so.6 ;;
    libm_deleted) source=$(ls "$debs/$suite"/libc6_*.deb) ;;
  esac
  if [ -z "$table" ]; then
    root=$DIRECTORIES/$name
    rm -rf "$root"
    mkdir -p "$root"
    cp -a "$trees/$suite/." "$root/"
    glibc-fault "$root" "$fault" $source
    return
  fi
  # Planted in a raw file first; any other format is made from it by qemu-img.
  base=$IMAGES/$name-base.img
  mkdir -p "$IMAGES" "$EVIDENCE" "$mnt/$name"
  rm -f "$IMAGES/$name".* "$base"
  truncate -s 1G "$base"
  printf 'label: %s\n,,L\n' "$table" | sfdisk -q "$base"
  loop=$(disk attach "$base")
  trap 'mountpoint -q "$mnt/$name" && umount "$mnt/$name"; disk detach "$loop"' EXIT
  "mkfs.$fs" -q -L root "${loop}p1" >/dev/null
  mount "${loop}p1" "$mnt/$name"
  cp -a "$trees/$suite/." "$mnt/$name/"
  echo "UUID=$(blkid -p -s UUID -o value "${loop}p1") / $fs defaults 0 1" >"$mnt/$name/etc/fstab"
  # The fault is planted before the image is closed, as the incident left the disk.
  glibc-fault "$mnt/$name" "$fault" $source
  umount "$mnt/$name"
  rmdir "$mnt/$name"
  disk detach "$loop"
  trap - EXIT
  image=$IMAGES/$file
  case $format:$layout in
    raw:) mv "$base" "$image" ;;
    qcow2:backing)
      qemu-img create -q -f qcow2 -F raw -b "${base##*/}" "$image"
      sha256 "$base" >"$EVIDENCE/$name.backing.sha256"
      ;;
    qcow2:snapshot | qcow2: | vmdk: | vhdx: | vdi: | vpc:)
      # A VHD's size would be rounded to a disk geometry (cutting off gpt's backup header) without
      # force_size.
      options=()
      [ "$format" != vpc ] || options=(-o "subformat=dynamic,force_size=on")
      qemu-img convert -f raw -O "$format" "${options[@]}" "$base" "$image"
      rm "$base"
      [ "$layout" != snapshot ] || qemu-img snapshot -c planted "$image"
      ;;
    *) echo "build: no $format image with '$layout'" >&2; exit 2 ;;
  esac
  facts "$image" >"$EVIDENCE/$name.image"
  [ "$(built_format "$name")" = "$format" ] || { echo "$image came out as $(built_format "$name")" >&2; exit 1; }
  echo "$name: $(xargs <"$EVIDENCE/$name.image") in $image"
}

record() {
  name=$1 rc=0
  shift
  mkdir -p "$EVIDENCE"
  trap 'close "$name"' EXIT
  image=$(image_of "$name")
  if [ -n "$image" ]; then
    # The bytes a check-mode run must leave alone: the image's and its backing file's.
    files=("$image")
    [ ! -f "$EVIDENCE/$name.backing.sha256" ] || files+=("$(cut -d' ' -f3- "$EVIDENCE/$name.backing.sha256")")
    sha256 "${files[@]}" >"$EVIDENCE/$name.sha256"
  fi
  root=$(open "$name" ro)
  words=$(chroot "$root" "$@" 2>&1) || rc=$?
  printf 'chroot %s %s\nexit %s\n%s\n' "$root" "$*" "$rc" "$words" | tee "$EVIDENCE/$name.broken"
  listing "$root" >"$EVIDENCE/$name.listing"
}

unchanged() {
  name=$1
  trap 'close "$name"' EXIT
  # An image whose bytes are the same holds the same listing: the checksums say more, and faster.
  if [ -f "$EVIDENCE/$name.sha256" ]; then
    same_sha256 "$EVIDENCE/$name.sha256" || { echo "$name: image bytes changed (diff above)" >&2; exit 1; }
    echo "$name: sha256 of$(awk '{ printf " %s", $2 }' "$EVIDENCE/$name.sha256") unchanged"
    return
  fi
  root=$(open "$name" ro)
  if ! listing "$root" | diff -u "$EVIDENCE/$name.listing" - ; then
    echo "$name changed (diff above: recorded listing, then now)" >&2
    exit 1
  fi
  echo "$name: $(wc -l <"$EVIDENCE/$name.listing") listed entries unchanged"
}

# image_checks NAME IMAGE: the image keeps what it was built with (format, backing file, internal
# snapshots, each snapshot still the broken system prepare recorded), qemu-img finds no error in it,
# its backing file kept every byte.
image_checks() {
  local name=$1 image=$2 format out rc=0 snapshot
  format=$(built_format "$name")
  if out=$(facts "$image" | diff -u "$EVIDENCE/$name.image" -); then
    echo "ok: qemu-img info: $(xargs <"$EVIDENCE/$name.image") as built"
  else
    printf 'FAILED: qemu-img info differs from what was built (built, then now):\n%s\n' "$out"
    failed=1
  fi
  out=$(qemu-img check -f "$format" "$image" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "ok: qemu-img check -f $format: $(head -n 1 <<<"$out")"
  elif [ "$rc" -eq 63 ] && [[ $format == @(raw|vpc) ]]; then
    echo "note: qemu-img has no check for $format"
  else
    echo "FAILED: qemu-img check -f $format $image (exit $rc): $out"
    failed=1
  fi
  if [ -f "$EVIDENCE/$name.backing.sha256" ]; then
    if same_sha256 "$EVIDENCE/$name.backing.sha256"; then
      echo "ok: the backing file $(cut -d' ' -f3- "$EVIDENCE/$name.backing.sha256") kept every byte"
    else
      echo "FAILED: the backing file changed"
      failed=1
    fi
  fi
  # shellcheck disable=SC2013  # snapshot names are single words here (build names them)
  for snapshot in $(awk '$1 == "snapshot" { print $2 }' "$EVIDENCE/$name.image"); do
    root=$(open "$name" ro "$snapshot")
    if out=$(listing "$root" | diff -u "$EVIDENCE/$name.listing" -); then
      echo "ok: snapshot $snapshot still holds the broken system prepare recorded"
    else
      printf 'FAILED: snapshot %s changed (recorded listing, then now):\n%s\n' "$snapshot" "$out"
      failed=1
    fi
    close "$name"
  done
}

verify() {
  name=$1 suite=$2 failed=0
  trap 'close "$name"' EXIT
  image=$(image_of "$name")
  [ -z "$image" ] || image_checks "$name" "$image"
  root=$(open "$name")
  run() {
    local expect=$1 rc=0 out
    shift
    out=$(chroot "$root" "$@" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ] && { [ -z "$expect" ] || [ "$out" = "$expect" ]; }; then
      echo "ok: chroot $root $*"
    else
      echo "FAILED: chroot $root $* (exit $rc): $out"
      failed=1
    fi
  }
  run "" /bin/true
  run "" /bin/ls /
  run ok /bin/sh -c 'echo ok'
  run "" /usr/bin/python3 -c 'import math, ssl'
  # Every entry and checksum of the pristine tree's library directories is the target's too
  # (copies renamed away by the fault stay: they are listed as extra).
  pristine=$(contents "$trees/$suite")
  now=$(contents "$root")
  missing=$(comm -23 <(echo "$pristine") <(echo "$now"))
  extra=$(comm -13 <(echo "$pristine") <(echo "$now"))
  if [ -n "$missing" ]; then
    printf 'FAILED: these entries of the pristine %s tree differ or are missing:\n%s\n' "$suite" "$missing"
    failed=1
  else
    echo "ok: all $(echo "$pristine" | wc -l) entries and checksums of the pristine $suite tree's library directories are the same here (read inside each root)"
  fi
  [ -z "$extra" ] || echo "extra, not in the pristine tree: $(echo "$extra" | tr '\n' ';')"
  return "$failed"
}

command=${1:-}
shift || true
case $command in
  build | record | unchanged | verify) "$command" "$@" ;;
  *)
    sed -n '2,/^set /p' "$0" | sed '$d' >&2
    exit 2
    ;;
esac
