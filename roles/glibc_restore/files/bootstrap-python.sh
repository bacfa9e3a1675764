#!/bin/sh
# Live mode: make python start on a host whose glibc keeps it from loading, with the shell alone.
#   bootstrap-python.sh PYTHON STAGE [SOURCE_DEB]
# Each library python cannot load is staged in STAGE (a private directory, never the system's
# library directories) from, in order: its versioned file beside it (libm-2.31.so), a copy renamed
# away beside it (libm.so.6.bak), the package cache, SOURCE_DEB. The last line of the output is
#   python-command: COMMAND
# the command that starts python: PYTHON itself when it starts, else STAGE/python, a script that
# runs PYTHON through the target's own loader with --library-path STAGE. One path, not the loader
# command line itself: ansible-core 2.19 quotes ansible_python_interpreter as one word (shlex.join
# in build_module_command), so a command with arguments would be looked up as a file name.
# The glibc_restore module then repairs the system properly (backups, checksums) and the
# verification runs the plain PYTHON again.
set -u
python=${1:-/usr/bin/python3}
stage=${2:-/var/lib/lifeline/glibc-stage}
source=${3:-}

say() { printf '%s\n' "$*"; }
die() { say "bootstrap: $*" >&2; exit 1; }

if "$python" -c pass 2>/dev/null; then
  say "python-command: $python"
  exit 0
fi

# The loader the system's programs ask for; this very shell runs through it, so it is there.
loader=
for candidate in /lib64/ld-linux-x86-64.so.2 /lib/ld-linux-aarch64.so.1 /lib/ld-linux-armhf.so.3 \
  /lib/ld-linux.so.2 /lib64/ld64.so.2 /lib/ld64.so.1 /lib/ld-linux-riscv64-lp64d.so.1; do
  if [ -e "$candidate" ]; then loader=$candidate; break; fi
done
[ -n "$loader" ] || die "no glibc loader found under /lib or /lib64: this host needs a rescue system (use target_root, target_image or target_device)"
libdir=$(dirname "$(readlink -f "$loader")")
dirs="$libdir /lib64 /usr/lib64 /lib /usr/lib"

{ mkdir -p "$stage" && chmod 700 "$stage"; } || die "cannot create $stage"
# A check-mode run leaves its stage (python needs it until that play ends): say what it holds.
for kept in "$stage"/*; do
  [ -L "$kept" ] && say "staged ${kept##*/} from $(readlink "$kept") (by an earlier run)"
done

version=$(sed -n '/^Package: libc6$/,/^$/s/^Version: //p' /var/lib/dpkg/status 2>/dev/null | head -n 1)
arch=$(sed -n '/^Package: libc6$/,/^$/s/^Architecture: //p' /var/lib/dpkg/status 2>/dev/null | head -n 1)
debname=$(printf 'libc6_%s_%s.deb' "$version" "$arch" | sed 's/:/%3a/')

# from_deb NAME DEB: extract DEB's library directories once, then stage NAME from them.
from_deb() {
  [ -f "$2" ] || return 1
  tree="$stage/.deb-$(basename "$2")"
  if [ ! -d "$tree" ]; then
    mkdir -p "$tree.part" || return 1
    dpkg-deb --fsys-tarfile "$2" | tar -x -C "$tree.part" --wildcards './lib*' './usr/lib*' 2>/dev/null
    mv "$tree.part" "$tree" || return 1
  fi
  for found in "$tree"/lib/*/"$1" "$tree"/usr/lib/*/"$1" "$tree"/lib64/"$1" "$tree"/usr/lib64/"$1"; do
    [ -e "$found" ] || continue
    case $(readlink "$found") in
      /*) found="$tree$(readlink "$found")" ;;  # an absolute link inside the package
    esac
    ln -sfn "$(readlink -f "$found")" "$stage/$1" && say "staged $1 from $2" && return 0
  done
  return 1
}

# stage NAME: a good copy of library NAME into the stage, from the first source that has one.
stage_one() {
  name=$1
  stem=${name%%.so*}
  for dir in $dirs; do
    for found in "$dir/$stem"-[0-9]*.so "$dir/$name".* "$dir/$name"~; do
      [ -f "$found" ] || continue
      ln -sfn "$found" "$stage/$name" && say "staged $name from $found" && return 0
    done
  done
  if [ -n "$version" ] && from_deb "$name" "/var/cache/apt/archives/$debname"; then return 0; fi
  for deb in "$source" "$source"/libc6_*.deb; do
    [ -n "$source" ] && from_deb "$name" "$deb" && return 0
  done
  return 1
}

tries=0
while ! errors=$("$loader" --library-path "$stage" "$python" -c pass 2>&1); do
  tries=$((tries + 1))
  name=$(say "$errors" | sed -n 's/.*error while loading shared libraries: \([^:]*\): cannot open.*/\1/p' | head -n 1)
  if [ -z "$name" ] || [ "$tries" -gt 16 ]; then die "python still does not start: $errors"; fi
  [ ! -e "$stage/$name" ] || die "python still cannot load $name from $stage: $errors"
  stage_one "$name" || die "python cannot load $name and no good copy was found (beside it, in /var/cache/apt/archives/$debname${source:+, in $source}): give glibc_restore_source"
done
# quote WORD: WORD as one shell word.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
cat >"$stage/python" <<EOF || die "cannot write $stage/python"
#!/bin/sh
# $python through the system's own loader, with the libraries staged beside this script.
exec $(quote "$loader") --library-path $(quote "$stage") $(quote "$python") "\$@"
EOF
chmod 755 "$stage/python" || die "cannot make $stage/python executable"
"$stage/python" -c pass || die "$stage/python does not start python"
say "python-command: $stage/python"
