# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a migration of the live root runs into, each as a Finding that says what, where, who is
behind it and what to do: deleted files still in use and files open for writing (remount,ro fails
while they are), loop devices, overlays and swap on the root, mounts and sockets that must be put
back after the switch, a shared root mount pivot_root refuses, and a destination device that is
missing, too small, in use or part of the root's own disk. Read from procfs and sysfs; decided here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts, procfs, sysfs
from ansible_collections.lifeline.rescue.plugins.module_utils.host.mounts import Mount
from ansible_collections.lifeline.rescue.plugins.module_utils.host.procfs import Devno, Process, ProcessView
from ansible_collections.lifeline.rescue.plugins.module_utils.host.sysfs import BlockDevice, Loop
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import submounts

HOLDS_ROOT_BUSY = "/ cannot be remounted read-only while it is in use (EBUSY)"
# How each kind of deleted file is still in use, and what releases it.
DELETED_WORDS = {
    "deleted_executable": ("the running program of", "restart it so that it runs the installed file"),
    "deleted_library": ("mapped by", "restart it so that it loads the installed library"),
    "deleted_open": ("open in", "stop or restart it to release the file (its space is freed then)"),
}


@dataclass(frozen=True)
class Target:
    """The device the root would move to."""

    path: str
    devno: Devno | None = None  # its st_rdev; None when it is missing or not a block device
    fstype: str | None = None  # what blkid found on it ("" nothing), None when not probed


@dataclass
class Finding:
    """Something the migration runs into: what, where, who is behind it, and what to do."""

    kind: str
    detail: str
    action: str
    path: str = ""
    processes: list[Process] = field(default_factory=list)
    handled: bool = False  # the plan resolves it by itself (a prepare step, a stop and a start)

    def as_dict(self) -> dict:
        return asdict(self)


def _who(processes: list[Process]) -> str:
    """Processes named for a sentence: "pid 12 (cron)", "pids 12 (nginx), 13 (nginx) and 4 more"."""
    if not processes:
        return "no process seen here"
    shown = ", ".join(f"{p.pid} ({p.comm})" for p in processes[:5])
    more = f" and {len(processes) - 5} more" if len(processes) > 5 else ""
    return f"{'pid' if len(processes) == 1 else 'pids'} {shown}{more}"


def _grouped(pairs: Iterable[tuple[str, Process]]) -> dict[str, list[Process]]:
    groups: dict[str, list[Process]] = {}
    for path, proc in pairs:
        if proc not in groups.setdefault(path, []):
            groups[path].append(proc)
    return {path: sorted(procs, key=lambda p: p.pid) for path, procs in sorted(groups.items())}


def deleted_in_use(views: list[ProcessView], devno: Devno) -> list[Finding]:
    """Deleted executables, mapped files and open files of the filesystem that processes still use.

    A deleted file in use is an orphan inode, and the kernel refuses to remount a filesystem
    read-only while it has any.
    """
    pairs: dict[str, list[tuple[str, Process]]] = {kind: [] for kind in DELETED_WORDS}
    for view in views:
        if view.exe_deleted and view.exe_devno == devno:
            pairs["deleted_executable"].append((view.exe, view.process))
        for path, dev in view.deleted_maps.items():
            if dev == devno:
                pairs["deleted_library"].append((path, view.process))
        for opened in view.files:
            if opened.deleted and opened.devno == devno:
                pairs["deleted_open"].append((opened.path, view.process))
    found = []
    for kind, (how, action) in DELETED_WORDS.items():
        for path, procs in _grouped(pairs[kind]).items():
            detail = f"{path} was deleted and is still {how} {_who(procs)}"
            found.append(Finding(kind, detail, f"{action}: {HOLDS_ROOT_BUSY}", path, procs))
    return found


def open_for_writing(views: list[ProcessView], devno: Devno) -> list[Finding]:
    """Files of the filesystem open for writing (O_WRONLY or O_RDWR): remount,ro fails while they are."""
    pairs = [
        (f.path, v.process)
        for v in views
        for f in v.files
        if f.writing and not f.deleted and f.devno == devno
    ]
    return [
        Finding(
            "open_for_writing",
            f"{path} is open for writing in {_who(procs)}",
            "stop it before / is remounted read-only (remount fails with EBUSY while a file is open "
            "for writing, and later writes would miss the copy); start it again after the switch",
            path,
            procs,
        )
        for path, procs in _grouped(pairs).items()
    ]


def _holding(proc: str, rdevs: list[int]) -> list[Process]:
    pids = sorted({h.pid for h in mounts.holders(devices=rdevs, proc=proc)})
    return [procfs.process(pid, proc) for pid in pids]


def _rdevs(devnos: Iterable[Devno]) -> list[int]:
    return [os.makedev(*d) for d in devnos]


def loops_on_root(loops: list[Loop], devno: Devno, table: list[Mount], proc: str) -> list[Finding]:
    """Loop devices whose backing file is on the filesystem: the kernel keeps that file open.

    A loop whose backing the kernel could not be asked about, but whose file's name falls on the
    filesystem, is ``loop_maybe_on_root`` (a note): the name may be another mount namespace's.
    """
    found = []
    for loop in loops:
        if loop.backing_devno != devno:
            continue
        if not loop.backing_known:
            found.append(
                Finding(
                    "loop_maybe_on_root",
                    f"/dev/{loop.name} is backed by a file named {loop.backing_file}, which may be on /; "
                    f"there is no /dev/{loop.name} here to ask the kernel (the name may be another "
                    "mount namespace's, such as the host's of a container)",
                    "if it is on /, detach it first: the remount read-only would then fail (EBUSY) "
                    "and the migration stop before the copy",
                    loop.backing_file,
                )
            )
            continue
        numbers = {loop.devno, *loop.partitions}
        where = sorted(
            {m.mount_point for m in mounts.mounts_of_devices(table, numbers, [f"/dev/{loop.name}"])}
        )
        mounted = f", mounted on {', '.join(where)}" if where else ""
        found.append(
            Finding(
                "loop_on_root",
                f"/dev/{loop.name} is backed by {loop.backing_file}{mounted}",
                f"unmount what is on it and detach it (losetup -d /dev/{loop.name}), or move its file off /: "
                "the kernel keeps the file open for writing, so / cannot be remounted read-only",
                loop.backing_file,
                _holding(proc, _rdevs(numbers)),
            )
        )
    return found


def _super_options(mount: Mount) -> dict[str, str]:
    options = {}
    for option in mount.super_options.split(","):
        key, _equals, value = option.partition("=")
        options[key] = mounts.unescape(value)
    return options


def mount_findings(
    subs: list[Mount], table: list[Mount], root: Mount, views: list[ProcessView]
) -> list[Finding]:
    """Overlays writing to the filesystem (blockers); network and fuse mounts (notes)."""
    found = []
    for mount in subs:
        kind = submounts.mount_kind(mount, root.devno)
        if kind == "overlay":
            upper = _super_options(mount).get("upperdir", "")
            on = mounts.mount_containing(table, upper) if upper else None
            if on is None or on.devno != root.devno:
                continue  # a read-only overlay, or one writing elsewhere, is only moved back
            # A container's processes: /proc names their root "/" when it is in another mount
            # namespace, so its filesystem tells them apart.
            users = [
                v.process
                for v in views
                if v.root_devno == mount.devno or (v.root and mounts.is_under(v.root, mount.mount_point))
            ]
            found.append(
                Finding(
                    "overlay_on_root",
                    f"the {mount.fstype} on {mount.mount_point} writes to {upper} on /",
                    "stop what uses it (containers: podman stop, docker stop) and unmount it: its writes "
                    "after the copy would stay on the old root",
                    mount.mount_point,
                    users,
                )
            )
        elif kind in ("network", "fuse"):
            action = "it is moved back into place after the switch"
            if kind == "fuse":
                action += "; the daemon serving it runs from the old root: restart it afterwards"
            detail = f"{mount.source} on {mount.mount_point} ({mount.fstype}) is not copied"
            found.append(Finding(f"{kind}_mount", detail, action, mount.mount_point))
    return found


def sockets_on_root(
    sockets: list[tuple[int, str]], views: list[ProcessView], table: list[Mount], devno: Devno
) -> list[Finding]:
    """Unix sockets bound to a path on the filesystem, with the processes holding them.

    After the switch that path leads to the copy, where nobody listens: their servers must restart.
    """
    inodes: dict[str, set[int]] = {}
    for inode, path in sockets:
        mount = mounts.mount_containing(table, path)
        if mount is not None and mount.devno == devno:
            inodes.setdefault(path, set()).add(inode)
    found = []
    for path in sorted(inodes):
        procs = [v.process for v in views if v.sockets & inodes[path]]
        found.append(
            Finding(
                "socket_on_root",
                f"{path} is a unix socket bound on / by {_who(procs)}",
                "restart its server after the switch: clients of this path reach the new root, where "
                "nothing listens",
                path,
                procs,
            )
        )
    return found


def root_mount_findings(root: Mount) -> list[Finding]:
    """What pivot_root refuses about the root mount itself."""
    found = []
    if root.shared:
        found.append(
            Finding(
                "shared_propagation",
                f"{root.mount_point} is a shared mount ({root.propagation}): pivot_root fails with EINVAL",
                f"mount --make-rprivate {root.mount_point} first (mounts made later in other namespaces "
                "then no longer appear here)",
                root.mount_point,
            )
        )
    if root.fstype == "rootfs":
        found.append(
            Finding(
                "initramfs_root",
                f"{root.mount_point} is the kernel's initial rootfs, which pivot_root cannot leave",
                "move this system to a real root filesystem first (switch_root at boot)",
                root.mount_point,
            )
        )
    return found


def swap_findings(swaps: list[tuple[str, str]], table: list[Mount], devno: Devno) -> list[Finding]:
    """Swap files on the filesystem: the kernel holds them, and they would stay on the old root."""
    found = []
    for path, kind in swaps:
        mount = mounts.mount_containing(table, path)
        if kind == "file" and mount is not None and mount.devno == devno:
            found.append(
                Finding(
                    "swap_on_root",
                    f"{path} is an active swap file on /",
                    f"swapoff {path} before the migration (with enough free memory for what it holds) and "
                    "swapon it after the switch",
                    path,
                )
            )
    return found


def target_findings(
    target: Target,
    info: BlockDevice | None,
    proc: str,
    sys: str,
    table: list[Mount],
    root_below: set[str],
    loops: list[Loop],
    root_devno: Devno,
) -> list[Finding]:
    """Whether the target is a free block device that does not hold /."""
    if target.devno is None:
        what = "is not a block device" if os.path.exists(target.path) else "does not exist"
        return [
            Finding(
                "target_not_block_device",
                f"{target.path} {what}",
                "give the new device (an LVM logical volume, a partition or a disk) as root_migrate_device",
                target.path,
            )
        ]
    if info is None:
        return [
            Finding(
                "target_unknown",
                f"{target.path} ({procfs.devno_text(target.devno)}) is not listed in {sys}/dev/block",
                "check that the device is still there (lsblk)",
                target.path,
            )
        ]
    found = []
    # root_below holds the device of /, what it is built on, and their disks.
    if info.name in root_below:
        found.append(
            Finding(
                "target_holds_root",
                f"{target.path} ({info.name}) is the device / is on, or a device below it",
                "choose another device: the copy would overwrite the running root",
                target.path,
            )
        )
    found += _target_on_root_disk(target, info, root_below)
    numbers = {info.devno, *(d for _name, d in info.partitions)}
    nodes = {target.path, f"/dev/{info.name}", *(f"/dev/{name}" for name, _devno in info.partitions)}
    where = sorted({m.mount_point for m in mounts.mounts_of_devices(table, numbers, nodes)})
    if where:
        found.append(
            Finding(
                "target_mounted",
                f"{target.path} is mounted on {', '.join(where)}",
                f"unmount it (umount {where[0]}) and check that nothing on it is still needed",
                target.path,
            )
        )
    users = _holding(proc, _rdevs(numbers))
    stacked = info.holders + tuple(
        h for name, _devno in info.partitions for h in sysfs.listing(f"{sys}/class/block/{name}/holders")
    )
    swapped = [path for path, _kind in active_swaps(proc) if path in nodes]
    if users or stacked or swapped:
        uses = ([f"open in {_who(users)}"] if users else []) + [f"{h} is built on it" for h in stacked]
        uses += [f"it is active swap ({path})" for path in swapped]
        found.append(
            Finding(
                "target_in_use",
                f"{target.path} is in use: {'; '.join(uses)}",
                "stop what uses it (swapoff, vgchange -an, mdadm --stop, or the processes) before the copy",
                target.path,
                users,
            )
        )
    loop = next((lp for lp in loops if lp.devno == info.devno), None)
    if loop is not None and loop.backing_devno == root_devno:
        found.append(
            Finding(
                "target_backed_by_root",
                f"{target.path} is a loop device backed by {loop.backing_file}, a file on / itself",
                "put its backing file on another filesystem, or choose another device",
                target.path,
            )
        )
    if target.fstype:
        found.append(
            Finding(
                "target_has_filesystem",
                f"{target.path} holds a {target.fstype} filesystem",
                "check that nothing on it is needed: the copy overwrites it",
                target.path,
            )
        )
    return found


def _target_on_root_disk(target: Target, info: BlockDevice, root_below: set[str]) -> list[Finding]:
    """A partition of a disk / is on (the target itself holding / is a finding of its own)."""
    if info.disk == info.name or info.disk not in root_below or info.name in root_below:
        return []
    return [
        Finding(
            "target_on_root_disk",
            f"{target.path} is a partition of {info.disk}, the disk / is on",
            "choose a device on another disk: the old root is the way back, and a partition table "
            "cannot be re-read while / is mounted from that disk",
            target.path,
        )
    ]


def active_swaps(proc: str) -> list[tuple[str, str]]:
    try:
        return procfs.parse_swaps(procfs.read_text(f"{proc}/swaps"))
    except OSError:
        return []
