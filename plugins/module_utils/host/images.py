# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disk images as hypervisors keep them, read and exported in place.

The format of an image comes from its own first bytes (never from its name), or from the user.
Every qemu tool is then told that format (``-f``, ``driver``): a qemu left to probe would take a
raw guest disk whose first sector holds a qcow2 header, written there by the guest, for a qcow2
image with a backing file of the guest's choosing. Backing chains are built here, layer by layer,
each layer's format given explicitly, and only from plain files.

An image that is not raw is seen as a raw disk through qemu-storage-daemon's FUSE export: a
regular file a loop device can be attached to, so no nbd module and no full copy are needed.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.host.disks import DiskError
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner, ToolError

# What qemu calls each format lifeline attaches (vpc is VHD), and the formats it recognises only
# to say so clearly.
FORMATS = ("raw", "qcow2", "vmdk", "vhdx", "vpc", "vdi")
NOT_ATTACHED = {"qcow": "qcow version 1", "qed": "QED"}
# Formats whose layers may have a backing file (qemu rejects the option for the others).
BACKED_FORMATS = ("qcow2", "vmdk")
# Backing chains deeper than this are refused: no hypervisor stacks more, a loop would.
MAX_CHAIN = 16
# An overlay names its backing file in its header; images beside the target are read this far.
MAX_SIBLINGS = 4096
HEADER_BYTES = 4096

VDI_SIGNATURE = 0xBEDA107F
QCOW2_BACKING_FORMAT_EXTENSION = 0xE2792ACA


class ImageError(DiskError):
    """An image cannot be attached as asked; the message says why and what to do."""


@dataclass
class Layer:
    """One file of an image's chain, top first: the target image, then its backing files."""

    path: str
    format: str
    detected_by: str  # "header", "target_image_format", or the overlay that names this layer's format

    def as_dict(self) -> dict:
        return {"path": self.path, "format": self.format, "detected_by": self.detected_by}


@dataclass
class Image:
    """A disk image and what attaching it involves."""

    path: str
    format: str
    detected_by: str
    layers: list[Layer] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    virtual_size: int = 0
    header_says: str = ""  # the format its header shows, when the user forced another

    @property
    def exported(self) -> bool:
        """True when a loop device cannot read the file directly: it needs qemu's raw view."""
        return self.format != "raw" or len(self.layers) > 1

    @property
    def backing_chain(self) -> list[str]:
        return [layer.path for layer in self.layers[1:]]

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "format": self.format,
            "detected_by": self.detected_by,
            "header_says": self.header_says,
            "backing_chain": self.backing_chain,
            "layers": [layer.as_dict() for layer in self.layers],
            "snapshots": self.snapshots,
            "virtual_size": self.virtual_size,
            "exported": self.exported,
        }


# ---- formats from headers -------------------------------------------------------------------------


def read_ends(path: str) -> tuple[bytes, bytes]:
    """The first HEADER_BYTES and the last 512 bytes of a regular file, opened without following a
    last link and without blocking on a FIFO (O_NONBLOCK); anything but a regular file is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ImageError(f"{path} cannot be opened: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"{path} is not a regular file")
        head = os.pread(fd, HEADER_BYTES, 0)
        tail = os.pread(fd, 512, st.st_size - 512) if st.st_size >= 1024 else b""
        return head, tail
    finally:
        os.close(fd)


def format_of(head: bytes, tail: bytes) -> str:
    """The image format its bytes show: one of FORMATS or NOT_ATTACHED; "raw" when none."""
    if head[:4] == b"QFI\xfb" and len(head) >= 8:
        version = struct.unpack(">I", head[4:8])[0]
        return "qcow2" if version in (2, 3) else "qcow"
    if head[:4] in (b"KDMV", b"COWD") or head.lstrip()[:21] == b"# Disk DescriptorFile":
        return "vmdk"
    if head[:8] == b"vhdxfile":
        return "vhdx"
    # A dynamic VHD starts with a copy of its footer; a fixed one is raw data with the footer last.
    if head[:8] == b"conectix" or tail[:8] == b"conectix":
        return "vpc"
    if len(head) >= 0x44 and struct.unpack("<I", head[0x40:0x44])[0] == VDI_SIGNATURE:
        return "vdi"
    if head[:4] == b"QED\x00":
        return "qed"
    return "raw"


def qcow2_backing(head: bytes) -> tuple[str, str]:
    """(backing file name, its format as recorded, "" when not) from a qcow2 header's first bytes."""
    if len(head) < 72 or head[:4] != b"QFI\xfb":
        return "", ""
    offset, size = struct.unpack(">QI", head[8:20])
    name = head[offset : offset + size] if offset > 0 and offset + size <= len(head) else b""
    version = struct.unpack(">I", head[4:8])[0]
    cursor = struct.unpack(">I", head[100:104])[0] if version >= 3 and len(head) >= 104 else 72
    recorded = ""
    while cursor + 8 <= len(head):
        kind, length = struct.unpack(">II", head[cursor : cursor + 8])
        if kind == 0:
            break
        if kind == QCOW2_BACKING_FORMAT_EXTENSION:
            recorded = head[cursor + 8 : cursor + 8 + length].decode("ascii", "replace")
        cursor += 8 + (length + 7) // 8 * 8
    return name.decode("utf-8", "surrogateescape"), recorded


# ---- the image and its chain ------------------------------------------------------------------------


def inspect(run: Runner, path: str, forced: str = "", readonly: bool = False) -> Image:
    """The image at ``path``: its format (``forced`` wins over the header), its backing chain, its
    internal snapshots. Refuses formats lifeline does not attach and chains it will not follow."""
    if forced and forced not in FORMATS:
        raise ImageError(f"target_image_format={forced} is not one of {', '.join(FORMATS)}")
    head, tail = read_ends(path)
    seen = format_of(head, tail)
    fmt = forced or seen
    if fmt in NOT_ATTACHED:
        raise ImageError(
            f"{path} is {NOT_ATTACHED[fmt]}, which lifeline does not attach: convert it "
            f"(qemu-img convert -f {fmt} -O qcow2 {path} NEW.qcow2) and give the copy"
        )
    image = Image(
        path=path,
        format=fmt,
        detected_by="target_image_format" if forced else "header",
        header_says=seen if forced and seen != forced else "",
    )
    image.layers.append(Layer(path, fmt, image.detected_by))
    if fmt == "raw":
        image.virtual_size = os.stat(path).st_size
        return image
    info = qemu_info(run, path, fmt, readonly)
    image.virtual_size = int(info.get("virtual-size", 0))
    image.snapshots = [s.get("name", "") for s in info.get("snapshots", [])]
    _follow_chain(run, image, info, readonly)
    return image


def qemu_info(run: Runner, path: str, fmt: str, readonly: bool) -> dict:
    """``qemu-img info`` of one file, its format given; -U (share a running guest's image) only
    for a read-only look."""
    argv = ["qemu-img", "info", "--output=json", "-f", fmt, *(["-U"] if readonly else []), path]
    try:
        return json.loads(run(argv))
    except ToolError as exc:
        raise ImageError(lock_words(path, str(exc))) from exc
    except ValueError as exc:
        raise ImageError(f"qemu-img info {path} gave no readable answer ({exc})") from exc


def _follow_chain(run: Runner, image: Image, info: dict, readonly: bool) -> None:
    seen = {_file_key(image.path)}
    while info.get("backing-filename"):
        top = image.layers[-1]
        if len(image.layers) > MAX_CHAIN:
            raise ImageError(f"{image.path} has a backing chain deeper than {MAX_CHAIN}: refused")
        named = info.get("full-backing-filename") or info["backing-filename"]
        backing = _plain_file(top.path, named)
        if _file_key(backing) in seen:
            raise ImageError(f"the backing chain of {image.path} loops back to {backing}: refused")
        seen.add(_file_key(backing))
        head, tail = read_ends(backing)
        header_fmt = format_of(head, tail)
        recorded = info.get("backing-filename-format", "")
        if recorded and recorded not in FORMATS:
            raise ImageError(f"{top.path} names its backing file {backing} as {recorded}: not attached")
        if recorded and recorded != "raw" and header_fmt != recorded:
            raise ImageError(
                f"{top.path} says its backing file {backing} is {recorded}, but its header says "
                f"{header_fmt}: refused (a backing file replaced by another?)"
            )
        fmt = recorded or header_fmt
        if fmt == "raw" and os.path.getsize(backing) % 512:
            raise ImageError(
                f"{top.path} names {backing} as its backing file, which is not a disk image (its size "
                "is not a whole number of sectors): refused. A raw guest disk whose first sector holds "
                "a qcow2 header looks like this: give target_image_format=raw if it is one"
            )
        if fmt in NOT_ATTACHED:
            raise ImageError(f"the backing file {backing} of {top.path} is {NOT_ATTACHED[fmt]}: not attached")
        image.layers.append(Layer(backing, fmt, f"{top.path}" if recorded else "header"))
        info = {} if fmt == "raw" else qemu_info(run, backing, fmt, True)


def _plain_file(overlay: str, named: str) -> str:
    """The backing file an overlay names, as a plain regular file: no protocol, no json:, no device."""
    if ":" in named.split("/", 1)[0] and not os.path.exists(os.path.join(os.path.dirname(overlay), named)):
        raise ImageError(
            f"{overlay} names its backing file as {named!r}, a protocol or option string, not a file: refused"
        )
    path = os.path.realpath(os.path.join(os.path.dirname(overlay), named))
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ImageError(f"the backing file {path} of {overlay} cannot be read ({exc.strerror})") from exc
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"the backing file {path} of {overlay} is not a regular file: refused")
    return path


def _file_key(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def lock_words(path: str, words: str) -> str:
    if re.search(r'Failed to get (shared )?"[a-z ]+" lock', words):
        return (
            f"{path} is locked by another program ({words.strip()}): a running virtual machine? "
            "Power it off first, or look without writing (target_readonly: true, or --check)"
        )
    return words


def overlays_of(path: str) -> list[str]:
    """qcow2 images in the same directory whose backing file is ``path``: writing into ``path``
    would change what each of them shows."""
    key = _file_key(path)
    directory = os.path.dirname(path)
    found = []
    try:
        entries = sorted(os.listdir(directory))[:MAX_SIBLINGS]
    except OSError:
        return []
    for entry in entries:
        candidate = os.path.join(directory, entry)
        try:
            if not stat.S_ISREG(os.lstat(candidate).st_mode) or _file_key(candidate) == key:
                continue
            head, _tail = read_ends(candidate)
        except (OSError, ImageError):
            continue
        name, _fmt = qcow2_backing(head)
        if not name:
            continue
        try:
            if _file_key(os.path.join(directory, name)) == key:
                found.append(candidate)
        except OSError:
            continue
    return found


# ---- the raw view ---------------------------------------------------------------------------------


def export_argv(image: Image, mount_file: str, pidfile: str, readonly: bool) -> list[str]:
    """The qemu-storage-daemon command that shows ``image`` as the raw file ``mount_file``.

    Each layer is a node of its own, its format named and its backing node given (the bottom one
    ``null``), so qemu follows nothing the image's bytes say. Only the top layer is ever writable.
    """
    argv = ["qemu-storage-daemon", "--daemonize", "--pidfile", pidfile]
    below = None
    for depth in range(len(image.layers) - 1, -1, -1):
        layer = image.layers[depth]
        if readonly:  # a running guest's image may be looked at: share it, as qemu-img -U does
            access = {"read-only": True, "force-share": True}
        else:
            access = {} if depth == 0 else {"read-only": True}
        file_node = {"driver": "file", "node-name": f"file{depth}", "filename": layer.path, **access}
        node = {"driver": layer.format, "node-name": f"layer{depth}", "file": f"file{depth}", **access}
        if layer.format in BACKED_FORMATS:
            node["backing"] = below
        argv += ["--blockdev", json.dumps(file_node), "--blockdev", json.dumps(node)]
        below = f"layer{depth}"
    export = {
        "type": "fuse",
        "id": "lifeline",
        "node-name": "layer0",
        "mountpoint": mount_file,
        "writable": not readonly,
    }
    return [*argv, "--export", json.dumps(export)]


def export_pid(pidfile: str, mount_file: str, proc: str = "/proc") -> int:
    """The pid of the daemon serving ``mount_file``: from its pid file, else found by its command
    line (a run killed before the pid file was read); 0 when none runs."""
    try:
        with open(pidfile, encoding="ascii") as handle:
            pids = [int(handle.read().strip())]
    except (OSError, ValueError):
        pids = [int(p) for p in os.listdir(proc) if p.isdigit()]
    for pid in pids:
        try:
            with open(f"{proc}/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and os.path.basename(argv[0]) == b"qemu-storage-daemon"
            and any(mount_file.encode() in arg for arg in argv)
        ):
            return pid
    return 0
