# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Block devices and loop devices as the kernel describes them in /sys: sizes, partitions, what is
built on what, and the filesystem a loop device's backing file lives on (asked with an ioctl)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.host.mounts import Mount
from ansible_collections.lifeline.rescue.plugins.module_utils.host.procfs import (
    Devno,
    parse_devno,
    read_text,
    stat_or_none,
    without_deleted_mark,
)

SECTOR = 512  # /sys/class/block/*/size counts 512-byte sectors whatever the device's block size

# struct loop_info64 of linux/loop.h and LOOP_GET_STATUS64: the backing file's st_dev and inode.
LOOP_GET_STATUS64 = 0x4C05
LOOP_INFO64 = struct.Struct("=QQQQQIIII64s64s32s2Q")


@dataclass(frozen=True)
class BlockDevice:
    """A block device as /sys/class/block describes it."""

    name: str
    devno: Devno
    size: int  # bytes
    disk: str  # the whole disk: itself unless it is a partition
    partitions: tuple[tuple[str, Devno], ...] = ()
    holders: tuple[str, ...] = ()  # devices built on it (device-mapper, md)
    slaves: tuple[str, ...] = ()  # devices it is built on


@dataclass(frozen=True)
class Loop:
    name: str
    devno: Devno
    backing_file: str
    backing_devno: Devno | None  # the filesystem its file lives on
    partitions: tuple[Devno, ...] = ()
    # False: the kernel could not be asked (no /dev node here, as in a container's static /dev) and
    # backing_devno is a guess from the file's name, which is relative to whoever attached it.
    backing_known: bool = True


def block_device(sys: str, devno: Devno) -> BlockDevice | None:
    """The block device with these numbers as /sys describes it; None when the kernel has none."""
    real = os.path.realpath(f"{sys}/dev/block/{devno[0]}:{devno[1]}")
    try:
        size = int(read_text(f"{real}/size")) * SECTOR
    except (OSError, ValueError):
        return None
    name = os.path.basename(real)
    disk = os.path.basename(os.path.dirname(real)) if os.path.exists(f"{real}/partition") else name
    partitions = []
    for entry in sorted(os.listdir(real)):
        if os.path.exists(f"{real}/{entry}/partition"):
            with contextlib.suppress(OSError, ValueError):
                partitions.append((entry, parse_devno(read_text(f"{real}/{entry}/dev"))))
    return BlockDevice(
        name, devno, size, disk, tuple(partitions), listing(f"{real}/holders"), listing(f"{real}/slaves")
    )


def listing(path: str) -> tuple[str, ...]:
    try:
        return tuple(sorted(os.listdir(path)))
    except OSError:
        return ()


def devices_below(sys: str, name: str) -> set[str]:
    """A device, what it is built on (/sys slaves, recursively) and the disks of all of them."""
    found, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in found:
            continue
        found.add(current)
        real = os.path.realpath(f"{sys}/class/block/{current}")
        if os.path.exists(f"{real}/partition"):
            todo.append(os.path.basename(os.path.dirname(real)))
        todo += listing(f"{real}/slaves")
    return found


def loop_backing_devno(node: str, devno: Devno) -> Devno | None:
    """The st_dev of a loop device's backing file, asked from the kernel (what losetup shows).

    Names in /sys are relative to the reader's root and mount namespace, so a file of another
    namespace (a container's loop device backed on the host) would be placed on the wrong mount.
    """
    st = stat_or_none(node)
    if st is None or not stat.S_ISBLK(st.st_mode) or (os.major(st.st_rdev), os.minor(st.st_rdev)) != devno:
        return None
    try:
        fd = os.open(node, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = fcntl.ioctl(fd, LOOP_GET_STATUS64, bytes(LOOP_INFO64.size))
    except OSError:
        return None  # unbound meanwhile
    finally:
        os.close(fd)
    backing = LOOP_INFO64.unpack(info)[0]
    return (os.major(backing), os.minor(backing))


def loop_devices(
    sys: str, table: list[Mount], backing_of: Callable[[str, Devno], Devno | None]
) -> list[Loop]:
    """The bound loop devices and the filesystem each one's backing file lives on.

    ``backing_of(name, devno)`` asks the kernel (loop_backing_devno on the device node); when it
    cannot, the backing file's name is placed on the mount that contains it, a guess.
    """
    loops = []
    for name in sorted(listing(f"{sys}/block")):
        base = f"{sys}/block/{name}"
        try:
            backing = read_text(f"{base}/loop/backing_file").rstrip("\n")
            devno = parse_devno(read_text(f"{base}/dev"))
        except (OSError, ValueError):
            continue  # not a loop device, or an unbound one
        where = backing_of(name, devno)
        known = where is not None
        if not known:
            mount = mounts.mount_containing(table, without_deleted_mark(backing))
            where = mount.devno if mount else None
        partitions = []
        for entry in listing(base):
            if os.path.exists(f"{base}/{entry}/partition"):
                with contextlib.suppress(OSError, ValueError):
                    partitions.append(parse_devno(read_text(f"{base}/{entry}/dev")))
        loops.append(Loop(name, devno, backing, where, tuple(partitions), known))
    return loops
