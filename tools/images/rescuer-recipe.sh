#!/usr/bin/env bash
# Build the rescuer tree with qemu: tools/images/rescuer-recipe.sh BASE DEST
# BASE is a Debian tree of tools/images/image-recipe.sh (bookworm); DEST becomes a copy of it with
# qemu-img (qemu-utils) and qemu-storage-daemon (qemu-system-common), what target_image needs for an
# image that is not raw: the daemon shows it as a raw file through FUSE, which libfuse3 (a
# dependency of both) mounts itself when run as root, so fuse3's fusermount3 is not needed.
# The trees themselves stay without qemu: a target never needs it.
# Its content, derived-tree.sh's and BASE's recipe hash make this image's hash
# (tools/images/build-images.sh).
set -euo pipefail
base=$1
dest=$2
packages=(qemu-utils qemu-system-common)
"$(dirname "$0")/derived-tree.sh" "$base" "$dest" lifeline-rescuer "${packages[@]}"

# The two programs must start inside the tree (their libraries all there).
for program in qemu-img qemu-storage-daemon; do
  version=$(chroot "$dest" "$program" --version | head -n 1) ||
    { echo "$program --version fails in the rescuer tree" >&2; exit 1; }
  echo "rescuer-recipe: $version"
done
