# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The running system's processes, memory, sockets and swap, read from /proc without any tool.

What each process holds (its program, mapped libraries, open files with their flags and mount,
sockets, root directory), which systemd unit it runs in, and which init is PID 1. The /proc tree is a
parameter, so that a fixture tree and the running kernel read alike.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Tuple

from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.host.mounts import Mount

Devno = Tuple[int, int]

DELETED = " (deleted)"  # how /proc marks the name of a file that was unlinked while in use
ACCESS_MODE = 0o3  # O_ACCMODE: O_RDONLY 0, O_WRONLY 1, O_RDWR 2


def unit_of(cgroup: str) -> str:
    """The systemd unit a process runs in, from /proc/PID/cgroup (v1 name=systemd or v2); "" if none.

    The unit is the last .service or .scope in the path: a service may delegate sub-groups below it.
    """
    paths = {}
    for line in cgroup.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _hierarchy, controllers, path = fields
        if controllers == "" or "name=systemd" in controllers.split(","):
            paths[controllers] = path
    for key in ("name=systemd", ""):
        for part in reversed(paths.get(key, "").split("/")):
            if part.endswith((".service", ".scope")):
                return part
    return ""


@dataclass(frozen=True)
class Process:
    pid: int
    comm: str
    unit: str = ""  # the systemd unit of /proc/PID/cgroup, "" when it is in none


@dataclass(frozen=True)
class OpenFile:
    fd: int
    path: str  # as /proc shows it, without the deleted mark
    deleted: bool
    flags: int
    devno: Devno | None

    @property
    def writing(self) -> bool:
        return self.flags & ACCESS_MODE in (os.O_WRONLY, os.O_RDWR)


@dataclass
class ProcessView:
    """What one process holds, read once from /proc."""

    process: Process
    exe: str = ""
    exe_deleted: bool = False
    exe_devno: Devno | None = None
    files: list[OpenFile] = field(default_factory=list)
    deleted_maps: dict[str, Devno] = field(default_factory=dict)  # mapped files that were deleted
    sockets: set[int] = field(default_factory=set)  # inodes of its socket descriptors
    root: str = ""  # its root directory as /proc names it
    root_devno: Devno | None = None  # the filesystem of its root directory


@dataclass(frozen=True)
class Init:
    name: str  # systemd, sysvinit or other
    comm: str
    exe: str
    systemctl: bool  # systemctl can stop and start units

    @property
    def reexec(self) -> str:
        """The command that makes PID 1 execute itself again from the new root; "" when it cannot."""
        return {"systemd": "systemctl daemon-reexec", "sysvinit": "telinit u"}.get(self.name, "")


def without_deleted_mark(name: str) -> str:
    """A /proc name with its " (deleted)" mark taken off (whether or not the file is deleted)."""
    return name[: -len(DELETED)] if name.endswith(DELETED) else name


def parse_devno(text: str, base: int = 10) -> Devno:
    """Device numbers written "8:1" (a /sys dev file) or "fe:00" (/proc/PID/maps, base 16)."""
    major, _colon, minor = text.strip().partition(":")
    return (int(major, base), int(minor, base))


def devno_text(devno: Devno | None) -> str | None:
    return f"{devno[0]}:{devno[1]}" if devno else None


def read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return handle.read()


def stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def unmark(name: str, st: os.stat_result | None) -> tuple[str, bool]:
    """A /proc name without its deleted mark, and whether it is deleted.

    The link count settles it when the file can be reached, since a file may be named "x (deleted)".
    """
    if not name.endswith(DELETED):
        return name, False
    if st is not None and st.st_nlink:
        return name, False
    return name[: -len(DELETED)], True


def process(pid: int, proc: str = "/proc") -> Process:
    """pid, comm and unit of a process ("?" and "" once it is gone)."""
    try:
        unit = unit_of(read_text(f"{proc}/{pid}/cgroup"))
    except OSError:
        unit = ""
    return Process(pid, mounts.comm(pid, proc), unit)


def parse_fdinfo(text: str) -> tuple[int, int]:
    """(flags, mnt_id) of /proc/PID/fdinfo/FD; flags are octal there, mnt_id -1 on kernels before 3.15."""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return int(fields.get("flags", "0").strip(), 8), int(fields.get("mnt_id", "-1").strip())


def parse_maps(text: str) -> Iterator[tuple[str, Devno]]:
    """(path, device) of every file-backed mapping of /proc/PID/maps; the path keeps its deleted mark."""
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or fields[4] == "0" or ":" not in fields[3]:
            continue  # anonymous memory, the heap, the stack, [vdso]: no inode
        yield fields[5], parse_devno(fields[3], 16)


def _open_file(base: str, fd: str, by_id: dict[int, Mount]) -> OpenFile | None:
    link = f"{base}/fd/{fd}"
    try:
        name = os.readlink(link)
        flags, mnt_id = parse_fdinfo(read_text(f"{base}/fdinfo/{fd}"))
    except (OSError, ValueError):
        return None  # closed meanwhile
    st = stat_or_none(link)
    if st is not None and not stat.S_ISREG(st.st_mode):
        return None  # only regular files keep a filesystem busy; devices and fifos do not
    path, deleted = unmark(name, st)
    # The mount id names the mount exactly; a mount of another namespace is found by the file's st_dev.
    mount = by_id.get(mnt_id)
    if mount is not None:
        devno = mount.devno
    else:
        devno = (os.major(st.st_dev), os.minor(st.st_dev)) if st is not None else None
    return OpenFile(int(fd), path, deleted, flags, devno)


def read_process(proc: str, pid: int, by_id: dict[int, Mount]) -> ProcessView | None:
    """What a process holds; None for kernel threads and processes that are gone."""
    base = f"{proc}/{pid}"
    try:
        exe_name = os.readlink(f"{base}/exe")
    except FileNotFoundError:
        return None  # a kernel thread, a zombie or gone: it holds no file
    except OSError:
        exe_name = ""  # denied (a sandbox may deny even root): its descriptors may still be readable
    view = ProcessView(process(pid, proc))
    with contextlib.suppress(OSError):
        view.root = os.readlink(f"{base}/root")
    root_st = stat_or_none(f"{base}/root")
    if root_st is not None:
        view.root_devno = (os.major(root_st.st_dev), os.minor(root_st.st_dev))
    exe_st = stat_or_none(f"{base}/exe") if exe_name else None
    view.exe, view.exe_deleted = unmark(exe_name, exe_st)
    if exe_st is not None:
        view.exe_devno = (os.major(exe_st.st_dev), os.minor(exe_st.st_dev))
    try:
        maps = read_text(f"{base}/maps")
    except OSError:
        maps = ""
    for name, devno in parse_maps(maps):
        if exe_name and name == exe_name:
            view.exe_devno = view.exe_devno or devno
        elif name.endswith(DELETED):
            view.deleted_maps[name[: -len(DELETED)]] = devno
    try:
        fds = os.listdir(f"{base}/fd")
    except OSError:
        fds = []
    for fd in fds:
        try:
            name = os.readlink(f"{base}/fd/{fd}")
        except OSError:
            continue
        inode = name[len("socket:[") : -1]
        if name.startswith("socket:[") and name.endswith("]") and inode.isdigit():
            view.sockets.add(int(inode))
        elif name.startswith("/"):  # pipes and anonymous inodes have no path on a filesystem
            opened = _open_file(base, fd, by_id)
            if opened is not None:
                view.files.append(opened)
    return view


def scan_processes(proc: str, table: list[Mount], exclude: Iterable[int] = ()) -> list[ProcessView]:
    """Every process of a /proc tree but those excluded, by pid."""
    by_id = {m.mount_id: m for m in table}
    skip = set(exclude)
    views = []
    for entry in sorted((e for e in os.listdir(proc) if e.isdigit()), key=int):
        if int(entry) in skip:
            continue
        view = read_process(proc, int(entry), by_id)
        if view is not None:
            views.append(view)
    return views


def init_system(
    proc: str = "/proc", systemd_run: str = "/run/systemd/system", systemctl: bool | None = None
) -> Init:
    """Which init runs as PID 1 (systemd, sysvinit, other) and whether systemctl can drive it.

    ``systemd_run`` exists when systemd is the running init (sd_booted(3)); ``systemctl`` says
    whether systemctl is installed (None looks it up in PATH).
    """
    comm = mounts.comm(1, proc)
    try:
        exe = os.readlink(f"{proc}/1/exe")
    except OSError:
        exe = ""
    exe = without_deleted_mark(exe)
    base = os.path.basename(exe)
    if comm == "systemd" or base == "systemd":
        name = "systemd"
    elif comm == "init" and base in ("init", ""):
        name = "sysvinit"
    else:
        name = "other"
    installed = systemctl if systemctl is not None else bool(shutil.which("systemctl"))
    usable = name == "systemd" and os.path.isdir(systemd_run) and installed
    return Init(name, comm, exe, usable)


def mem_available(proc: str) -> int:
    """Bytes of memory available without swapping (MemAvailable; MemFree on kernels before 3.14)."""
    fields = {}
    for line in read_text(f"{proc}/meminfo").splitlines():
        key, _colon, value = line.partition(":")
        if value.split() and value.split()[0].isdigit():
            fields[key] = int(value.split()[0]) * 1024
    return fields.get("MemAvailable", fields.get("MemFree", 0))


def parse_unix(text: str) -> list[tuple[int, str]]:
    """(inode, path) of the unix sockets of /proc/net/unix bound to a path (not abstract, not unbound)."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split(maxsplit=7)
        if len(fields) == 8 and fields[7].startswith("/") and fields[6].isdigit():
            found.append((int(fields[6]), fields[7]))
    return found


def parse_swaps(text: str) -> list[tuple[str, str]]:
    """(path, type) of the active swap areas of /proc/swaps."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2:
            found.append((mounts.unescape(fields[0]), fields[1]))
    return found
