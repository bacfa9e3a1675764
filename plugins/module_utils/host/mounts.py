# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is mounted (/proc/self/mountinfo), what a root wants mounted (fstab), and who holds it (/proc)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    """Undo the octal escapes the kernel and fstab use for space, tab, newline and backslash."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo (proc(5))."""

    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str
    mount_point: str
    options: str
    optional: tuple[str, ...]
    fstype: str
    source: str
    super_options: str

    @property
    def devno(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def shared(self) -> bool:
        return any(tag.startswith("shared:") for tag in self.optional)

    @property
    def propagation(self) -> str:
        """The propagation tags as mountinfo shows them ("shared:1 master:2"), "private" when none."""
        return " ".join(self.optional) or "private"


def parse_mountinfo(text: str) -> list[Mount]:
    """Lines of proc(5) mountinfo; malformed ones are skipped."""
    mounts = []
    for line in text.splitlines():
        # Single spaces separate the fields: an empty source shows as two spaces in a row.
        fields = line.split(" ")
        if "-" not in fields:
            continue
        sep = fields.index("-")
        if sep < 6 or len(fields) < sep + 3:
            continue
        major, _colon, minor = fields[2].partition(":")
        if not (fields[0].isdigit() and fields[1].isdigit() and major.isdigit() and minor.isdigit()):
            continue
        mounts.append(
            Mount(
                mount_id=int(fields[0]),
                parent_id=int(fields[1]),
                major=int(major),
                minor=int(minor),
                root=unescape(fields[3]),
                mount_point=unescape(fields[4]),
                options=fields[5],
                optional=tuple(fields[6:sep]),
                fstype=fields[sep + 1],
                source=unescape(fields[sep + 2]),
                super_options=fields[sep + 3] if len(fields) > sep + 3 else "",
            )
        )
    return mounts


def read_mountinfo(path: str = "/proc/self/mountinfo") -> list[Mount]:
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return parse_mountinfo(handle.read())


def is_under(path: str, top: str) -> bool:
    top = top.rstrip("/") or "/"
    return path == top or top == "/" or path.startswith(top + "/")


def mounts_under(mounts: Iterable[Mount], top: str) -> list[Mount]:
    """Mounts at or below ``top``, deepest last (the order to mount them; reverse it to unmount)."""
    found = [m for m in mounts if is_under(m.mount_point, top)]
    return sorted(found, key=lambda m: (depth(m.mount_point), m.mount_id))


def depth(path: str) -> int:
    """How many directories deep a path is: / is 0, /proc is 1, /proc/sys is 2."""
    return len([part for part in path.split("/") if part])


def mounts_of_devices(
    mounts: Iterable[Mount], devnos: set[tuple[int, int]], nodes: Iterable[str] = ()
) -> list[Mount]:
    """Mounts of the given devices, by device number or by source node.

    Both are needed: btrfs reports an anonymous device number in mountinfo, only its source names the disk.
    """
    names = set(nodes)
    return [m for m in mounts if m.devno in devnos or m.source in names]


@dataclass(frozen=True)
class FstabEntry:
    spec: str
    file: str
    vfstype: str
    options: str
    freq: int
    passno: int
    line: int

    @property
    def option_list(self) -> list[str]:
        return self.options.split(",")


def parse_fstab(text: str) -> list[FstabEntry]:
    """fstab(5) entries; malformed lines are skipped, like mount(8) does with a warning."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#") or len(fields) < 2:
            continue
        fields += ["auto", "defaults", "0", "0"][len(fields) - 2 :]
        try:
            freq, passno = int(fields[4]), int(fields[5])
        except ValueError:
            freq, passno = 0, 0
        entries.append(
            FstabEntry(
                spec=unescape(fields[0]),
                file=unescape(fields[1]),
                vfstype=fields[2],
                options=fields[3],
                freq=freq,
                passno=passno,
                line=number,
            )
        )
    return entries


@dataclass(frozen=True)
class Holder:
    """A process that uses a file, a device or a directory tree, and how."""

    pid: int
    comm: str
    how: str
    path: str
    writing: bool = False  # an open descriptor that can write

    def describe(self) -> str:
        mode = " (open for writing)" if self.writing else ""
        return f"pid {self.pid} ({self.comm}) {self.how} {self.path}{mode}"


def _comm(pid: str, proc: str) -> str:
    try:
        with open(f"{proc}/{pid}/comm", encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return "?"


def _links(pid: str, proc: str) -> Iterator[tuple[str, str]]:
    """(how, path of /proc entry) for the cwd, root, exe and every open descriptor of a process."""
    for name in ("cwd", "root", "exe"):
        yield name, f"{proc}/{pid}/{name}"
    try:
        fds = os.listdir(f"{proc}/{pid}/fd")
    except OSError:
        return
    for fd in fds:
        yield f"fd {fd}", f"{proc}/{pid}/fd/{fd}"


def holders(
    *,
    files: Iterable[tuple[int, int]] = (),
    devices: Iterable[int] = (),
    under: Iterable[str] = (),
    proc: str = "/proc",
) -> list[Holder]:
    """Processes that keep a file (by st_dev/st_ino), a block device (by st_rdev) or a tree open.

    Scanned from /proc the way fuser(1) does, so it needs no tool on a minimal rescuer: the cwd,
    root, program and descriptors of each process, and the files it has mapped (a library).
    """
    file_ids, rdevs, tops = set(files), set(devices), [t.rstrip("/") or "/" for t in under]
    me = str(os.getpid())
    found = []
    for pid in os.listdir(proc):
        if not pid.isdigit() or pid == me:
            continue
        for how, link in _links(pid, proc):
            hit = _uses(link, file_ids, rdevs, tops)
            if hit:
                writing = how.startswith("fd ") and _writes(f"{proc}/{pid}/fdinfo/{how[3:]}")
                found.append(Holder(int(pid), _comm(pid, proc), how, hit, writing))
        hit = _maps_in(pid, proc, file_ids, tops)
        if hit:
            found.append(Holder(int(pid), _comm(pid, proc), "maps", hit))
    return found


def _writes(fdinfo: str) -> bool:
    """Whether a descriptor was opened for writing (its fdinfo flags, in octal)."""
    try:
        with open(fdinfo, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags:"):
                    return int(line.split(":", 1)[1].strip(), 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    except (OSError, ValueError):
        pass
    return False


def _maps_in(pid: str, proc: str, file_ids: set, tops: list[str]) -> str:
    """The first mapped file of a process that is one of ``file_ids`` or lies under one of ``tops``."""
    try:
        with open(f"{proc}/{pid}/maps", encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or fields[4] == "0" or ":" not in fields[3]:
            continue  # anonymous memory, the heap, the stack: no file
        name = fields[5]
        if name.endswith(" (deleted)"):
            name = name[: -len(" (deleted)")]
        if any(name == t or name.startswith(t + "/") for t in tops if t != "/"):
            return name
        major, minor = (int(part, 16) for part in fields[3].split(":", 1))
        if (os.makedev(major, minor), int(fields[4])) in file_ids:
            return name
    return ""


def _uses(link: str, file_ids: set, rdevs: set, tops: list[str]) -> str:
    try:
        target = os.readlink(link)
    except OSError:
        return ""
    if tops and any(target == t or target.startswith(t + "/") for t in tops if t != "/"):
        return target
    if not (file_ids or rdevs):
        return ""
    try:
        st = os.stat(link)
    except OSError:
        return ""
    if (st.st_dev, st.st_ino) in file_ids or (stat.S_ISBLK(st.st_mode) and st.st_rdev in rdevs):
        return target
    return ""


# ---- which mount a path or a mount point is on --------------------------------------------------


def mount_at(mounts: Iterable[Mount], point: str) -> Mount | None:
    """The mount visible at a mount point: of several stacked there, the one no other sits on."""
    stacked = [m for m in mounts if m.mount_point == point]
    covered = {m.parent_id for m in stacked}
    visible = [m for m in stacked if m.mount_id not in covered]
    if not stacked:
        return None
    return (visible or stacked)[-1]


def mount_containing(mounts: Iterable[Mount], path: str) -> Mount | None:
    """The mount a path lies on, by its name: the visible mount at the deepest mount point above it.

    Names are resolved as this process sees them, without following symbolic links.
    """
    mounts = list(mounts)
    points = [m.mount_point for m in mounts if is_under(path, m.mount_point)]
    if not points:
        return None
    return mount_at(mounts, max(points, key=depth))


def comm(pid: int | str, proc: str = "/proc") -> str:
    """A process's command name (/proc/PID/comm), "?" once it is gone."""
    return _comm(str(pid), proc)


# ---- how much a mounted filesystem holds ----------------------------------------------------------

# st_blocks counts 512-byte units whatever the filesystem's block size.
STAT_BLOCK = 512


def usage_of(mount_point: str) -> tuple[int, int]:
    """(size, used) of a mounted filesystem in bytes, from statvfs."""
    vfs = os.statvfs(mount_point)
    return vfs.f_blocks * vfs.f_frsize, (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize


def tree_bytes(top: str) -> int:
    """Bytes allocated to the files under ``top`` on its own filesystem, each inode once (du -sx).

    What a file copy of a filesystem without a block device of its own carries: statvfs does not
    tell it, since an overlay (a container's root) answers with its upper layer's whole filesystem.
    Directories on another filesystem (mount points) are left out; unreadable entries count nothing.
    """
    top_dev = os.lstat(top).st_dev
    total = os.lstat(top).st_blocks * STAT_BLOCK
    seen: set[tuple[int, int]] = set()
    todo = [top]
    while todo:
        try:
            with os.scandir(todo.pop()) as listing:
                entries = list(listing)
        except OSError:
            continue  # gone meanwhile, or unreadable
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != top_dev:
                    continue
                todo.append(entry.path)
            elif st.st_nlink > 1:
                if (st.st_dev, st.st_ino) in seen:
                    continue  # a hard link to a file counted already
                seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * STAT_BLOCK
    return total
