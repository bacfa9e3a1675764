#!/bin/sh
# Break a Debian root's glibc the way the incidents broke theirs (the root is a disposable copy).
#   roles/drill/files/glibc.sh ROOT FAULT [FILE]
# FAULT:
#   libc_renamed         libc.so.6 renamed to libc.so.6.bak (incident 1)
#   libc_foreign FILE    libc.so.6 replaced by a link to FILE (a libc of another glibc release)
#                        copied under /opt/glibc-<version>/lib (incident 2)
#   loader_link_removed  the /lib64 link to the loader removed
#   lib64_link_removed   a merged-/usr root's top-level /lib64 -> usr/lib64 link removed
#   libm_deleted FILE    libm.so.6 and the file it leads to deleted; FILE (the root's libc6 .deb)
#                        put in the root's package cache to recover from
#   glibc_deleted        libc, libm, libpthread, libdl, librt and libresolv deleted, with no copy
#                        beside them and no package cache (incident 3)
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
    [ -f "$file" ] || { echo "libm_deleted needs the root's libc6 .deb" >&2; exit 2; }
    remove libm.so.6
    mkdir -p "$root/var/cache/apt/archives"
    # Under the package's own file name, as apt keeps it, also when FILE is a link to it.
    cp "$file" "$root/var/cache/apt/archives/$(basename "$(readlink -f "$file")")"
    ;;
  glibc_deleted)
    for name in libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2; do
      remove "$name"
    done
    rm -f "$root"/var/cache/apt/archives/libc6_*.deb
    ;;
  *)
    echo "unknown fault $fault" >&2
    exit 2
    ;;
esac
echo "planted $fault in $root ($libdir)"
