#!/bin/sh
# Break a root's glibc the way the incidents broke theirs (the root is a disposable copy): a Debian
# root (libc in /lib/<triplet>) or an RPM-family one (libc in /lib64, which is /usr/lib64 after
# usrmove; libc.so.6 a link to libc-<version>.so before glibc 2.34, the file itself since).
#   roles/drill/files/glibc.sh ROOT FAULT [FILE]
# FAULT:
#   libc_renamed         libc.so.6 renamed to libc.so.6.bak (incident 1)
#   libc_foreign FILE    libc.so.6 replaced by a link to FILE (a libc of another glibc release)
#                        copied under /opt/glibc-<version>/lib (incident 2)
#   loader_link_removed  the /lib64 link to the loader removed
#   lib64_link_removed   a merged-/usr root's top-level /lib64 -> usr/lib64 link removed
#   libm_deleted FILE    libm.so.6 and the file it leads to deleted; FILE (the root's libc6 .deb
#                        or glibc .rpm) put in the root's package cache to recover from (apt's
#                        for a .deb, dnf's for an .rpm)
#   glibc_deleted        libc, libm, libpthread, libdl, librt and libresolv deleted, with no copy
#                        beside them and no package cache (incident 3; the package may be given)
#   glibc_deleted_yum_cache FILE
#                        glibc_deleted, with FILE (the glibc .rpm) in yum's cache as RHEL 6 and 7
#                        keep it: /var/cache/yum/x86_64/<release>/base/packages (incident 3)
#   glibc_deleted_dnf_cache FILE
#                        glibc_deleted, with FILE in dnf's cache as RHEL 8 and later keep it:
#                        /var/cache/dnf/baseos-<hash>/packages (incident 3)
#   libc_truncated_dnf_cache FILE
#                        the file libc.so.6 leads to cut to its first 64 KiB in place, FILE (the
#                        glibc .rpm) in dnf's cache
#   rpmdb_removed        the rpm package database removed (/var/lib/rpm and /usr/lib/sysimage/rpm);
#                        plant it before another fault for a root broken twice
set -eu
root=$1
fault=$2
file=${3:-}

# first PATH...: the first PATH that exists (a dangling link counts), or nothing.
first() {
  for path in "$@"; do
    if [ -e "$path" ] || [ -L "$path" ]; then
      printf '%s\n' "$path"
      return 0
    fi
  done
}

libc=$(first "$root"/lib/*-linux-gnu*/libc.so.6 "$root"/lib64/libc.so.6)
[ -n "$libc" ] || { echo "no libc.so.6 under $root/lib" >&2; exit 2; }
libdir=$(dirname "$libc")

# cache_package FILE DIR: FILE into the package cache DIR of the root, under the package's own file
# name, as apt, yum and dnf keep it, also when FILE is a link to it.
cache_package() {
  mkdir -p "$root/$2"
  cp "$1" "$root/$2/$(basename "$(readlink -f "$1")")"
}

# rpm_release: the major release of an RPM-family root, for yum's cache path.
rpm_release() {
  sed -n 's/^VERSION_ID="*\([0-9]*\).*/\1/p' "$root/etc/os-release" 2>/dev/null | head -n 1 | grep . ||
    sed -n 's/.*release \([0-9]*\).*/\1/p' "$root/etc/redhat-release" 2>/dev/null | head -n 1 | grep . ||
    echo 7
}

# need_rpm FILE: the fault needs the root's glibc .rpm.
need_rpm() {
  case $1 in *.rpm) [ -f "$1" ] && return 0 ;; esac
  echo "$fault needs the root's glibc .rpm" >&2
  exit 2
}

# dnf's cache directory of a repository: its id and a hash of its URL.
DNF_CACHE=var/cache/dnf/baseos-929b586ef1f72f69/packages

# remove NAME: delete the member and, when it is a link inside libdir, the file it leads to.
remove() {
  if [ -L "$libdir/$1" ]; then
    target=$(readlink "$libdir/$1")
    case $target in */*) ;; *) rm -f "$libdir/$target" ;; esac
  fi
  rm -f "$libdir/$1"
}

case $fault in
  libc_renamed)
    mv "$libdir/libc.so.6" "$libdir/libc.so.6.bak"
    ;;
  libc_foreign)
    [ -f "$file" ] || { echo "libc_foreign needs a foreign libc.so.6 file" >&2; exit 2; }
    version=$(grep -ao 'release version [0-9.]*[0-9]' "$file" | head -n 1 | cut -d' ' -f3)
    mkdir -p "$root/opt/glibc-$version/lib"
    cp "$file" "$root/opt/glibc-$version/lib/libc.so.6"
    # bookworm and later: libc.so.6 is the file itself and is lost; bullseye: only its link changes.
    ln -sfn "/opt/glibc-$version/lib/libc.so.6" "$libdir/libc.so.6"
    ;;
  loader_link_removed)
    loader=$(first "$root"/lib64/ld-linux*.so.*)
    [ -L "$loader" ] || { echo "$loader is not a link" >&2; exit 2; }
    rm -f "$loader"
    ;;
  lib64_link_removed)
    [ -L "$root/lib64" ] || { echo "$root/lib64 is not a link (not a merged-/usr root)" >&2; exit 2; }
    rm -f "$root/lib64"
    ;;
  libm_deleted)
    [ -f "$file" ] || { echo "libm_deleted needs the root's libc6 .deb or glibc .rpm" >&2; exit 2; }
    remove libm.so.6
    case $file in
      *.rpm) cache_package "$file" "$DNF_CACHE" ;;
      *) cache_package "$file" var/cache/apt/archives ;;
    esac
    ;;
  glibc_deleted | glibc_deleted_yum_cache | glibc_deleted_dnf_cache)
    case $fault in glibc_deleted_*) need_rpm "$file" ;; esac
    for name in libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2; do
      remove "$name"
    done
    rm -f "$root"/var/cache/apt/archives/libc6_*.deb "$root"/var/cache/yum/*/*/*/packages/glibc-[0-9]*.rpm \
      "$root"/var/cache/dnf/*/packages/glibc-[0-9]*.rpm
    case $fault in
      glibc_deleted_yum_cache) cache_package "$file" "var/cache/yum/x86_64/$(rpm_release)/base/packages" ;;
      glibc_deleted_dnf_cache) cache_package "$file" "$DNF_CACHE" ;;
    esac
    ;;
  libc_truncated_dnf_cache)
    need_rpm "$file"
    target=$libdir/libc.so.6
    if [ -L "$target" ]; then
      target=$libdir/$(readlink "$target")
    fi
    [ -f "$target" ] || { echo "$target is not a file" >&2; exit 2; }
    # Cut in place (the same inode, as a write that stopped part way leaves it).
    dd if="$target" of="$target.part" bs=4096 count=16 2>/dev/null
    cat "$target.part" >"$target"
    rm -f "$target.part"
    cache_package "$file" "$DNF_CACHE"
    ;;
  rpmdb_removed)
    [ -d "$root/var/lib/rpm" ] || [ -d "$root/usr/lib/sysimage/rpm" ] ||
      { echo "$root has no rpm database" >&2; exit 2; }
    rm -rf "$root/var/lib/rpm" "$root/usr/lib/sysimage/rpm"
    ;;
  *)
    echo "unknown fault $fault" >&2
    exit 2
    ;;
esac
echo "planted $fault in $root ($libdir)"
