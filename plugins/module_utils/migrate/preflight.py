# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Can the live root move to another device now, and what has to stop first: read from /proc and /sys.

Everything the migration runs into is decided here without lsof or any other tool: what keeps /
from being remounted read-only (files open for writing, deleted files still in use, loop devices
and overlays writing to it, swap files), what pivot_root refuses (a shared root mount), what has to
be put back after the switch (mounts under /, unix sockets bound on /), whether the target can take
the copy, and which services the plan stops and restarts, in order. The sources are parameters
(a /proc tree, a /sys tree, a /dev directory) so that fixtures and the running kernel read alike.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts, procfs, sysfs
from ansible_collections.lifeline.rescue.plugins.module_utils.host.mounts import Mount
from ansible_collections.lifeline.rescue.plugins.module_utils.host.procfs import (
    Devno,
    Init,
    Process,
    ProcessView,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.host.sysfs import BlockDevice, Loop

# Filesystems a block copy (dd) may carry: the copy keeps the filesystem UUID, and btrfs cannot tell
# two mounted devices with one UUID apart, so btrfs (and anything not on a block device) is copied
# file by file.
BLOCK_COPY_FSTYPES = ("ext2", "ext3", "ext4", "xfs")
# The filesystems a file copy makes (mkfs) on the target.
FILE_COPY_FSTYPES = ("ext2", "ext3", "ext4", "xfs")
# A fresh filesystem spends a few percent on its own metadata (journal, inode tables): a file copy
# needs the used bytes plus this share of them.
FILE_COPY_HEADROOM = 10  # percent

NETWORK_FSTYPES = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "afs", "lustre", "ocfs2", "gfs2"}
)
OVERLAY_FSTYPES = frozenset({"overlay", "aufs"})
API_FSTYPES = frozenset(
    {
        "proc", "sysfs", "devtmpfs", "devpts", "tmpfs", "mqueue", "cgroup", "cgroup2", "securityfs",
        "debugfs", "tracefs", "pstore", "bpf", "hugetlbfs", "configfs", "fusectl", "efivarfs",
        "binfmt_misc", "autofs", "rpc_pipefs", "nsfs", "ramfs", "selinuxfs",
    }
)  # fmt: skip
# After pivot_root the kernel's own trees go back first, in this order, then the rest by depth.
API_FIRST = ("proc", "sys", "dev", "run")

# The connection's server is never stopped: it is the way back in, and it is restarted first.
SSH_UNITS = ("ssh.service", "sshd.service", "dropbear.service")
SSH_COMMS = ("sshd", "dropbear")
JOURNALD = "systemd-journald.service"
# Loggers stop last and start first, so that the others can log while they stop and start.
LOGGERS = ("rsyslog.service", "syslog-ng.service", "syslog.service")

# Findings about processes, and those of them a restart of the process fixes.
PROCESS_KINDS = ("deleted_executable", "deleted_library", "deleted_open", "open_for_writing")
STALE_KINDS = ("deleted_executable", "deleted_library")

HOLDS_ROOT_BUSY = "/ cannot be remounted read-only while it is in use (EBUSY)"
# How each kind of deleted file is still in use, and what releases it.
DELETED_WORDS = {
    "deleted_executable": ("the running program of", "restart it so that it runs the installed file"),
    "deleted_library": ("mapped by", "restart it so that it loads the installed library"),
    "deleted_open": ("open in", "stop or restart it to release the file (its space is freed then)"),
}


class PreflightError(LifelineError):
    """The preflight cannot run at all (no such mount point, no /proc); the message says what to do."""


@dataclass(frozen=True)
class Host:
    """Where the facts are read from: this machine by default, a fixture tree in tests."""

    proc: str = "/proc"
    sys: str = "/sys"
    dev: str = "/dev"
    systemd_run: str = "/run/systemd/system"  # exists when systemd is the running init (sd_booted(3))
    systemctl: bool | None = None  # is systemctl installed; None looks it up in PATH

    def loop_backing(self, name: str, devno: Devno) -> Devno | None:
        """The filesystem a loop device's backing file is on, from the kernel; None when it cannot tell."""
        return sysfs.loop_backing_devno(f"{self.dev}/{name}", devno)


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


@dataclass
class Plan:
    """What the migration would do about the blockers, in the order it would do it."""

    prepare: list[str] = field(default_factory=list)  # commands before anything is stopped
    stop: list[str] = field(default_factory=list)  # units, stopped in this order before remount,ro
    restart_first: list[str] = field(default_factory=list)  # the connection's server, never stopped
    reexec_init: str = ""
    start: list[str] = field(default_factory=list)  # the stopped units, after the switch
    restart: list[str] = field(default_factory=list)  # units that keep running but hold the old root
    finish: list[str] = field(default_factory=list)  # commands after everything runs again
    move_mounts: list[dict] = field(default_factory=list)  # mounts under / to put back, in order
    copy: dict = field(default_factory=dict)  # method (block, file or ""), reason, bytes

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Preflight:
    blockers: list[Finding]
    notes: list[Finding]
    plan: Plan
    facts: dict

    @property
    def ready(self) -> bool:
        """True when the plan resolves every blocker by itself."""
        return all(b.handled for b in self.blockers)

    def as_dict(self) -> dict:
        return {
            "ready": self.ready,
            "blockers": [b.as_dict() for b in self.blockers],
            "notes": [n.as_dict() for n in self.notes],
            "plan": self.plan.as_dict(),
            "facts": self.facts,
        }


# ---- findings -----------------------------------------------------------------------------------


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


def mount_kind(mount: Mount, root_devno: Devno) -> str:
    """network, fuse, overlay, api (the kernel's trees and tmpfs), bind (a part of / itself) or other."""
    if mount.fstype in NETWORK_FSTYPES:
        return "network"
    if mount.fstype.startswith("fuse") and mount.fstype != "fusectl":
        return "fuse"
    if mount.fstype in OVERLAY_FSTYPES:
        return "overlay"
    if mount.fstype in API_FSTYPES:
        return "api"
    if mount.devno == root_devno:
        return "bind"
    return "other"


def submounts(table: list[Mount], root: Mount) -> list[Mount]:
    """The mounts under the root, in the order to put them back: by depth, the kernel's trees first."""
    top = root.mount_point
    below = [
        (i, m) for i, m in enumerate(table) if m.mount_point != top and mounts.is_under(m.mount_point, top)
    ]

    def order(item: tuple[int, Mount]) -> tuple[int, int, int]:
        index, mount = item
        relative = os.path.relpath(mount.mount_point, top)
        first = API_FIRST.index(relative) if relative in API_FIRST else len(API_FIRST)
        return (mounts.depth(mount.mount_point), first, index)

    return [m for _key, m in sorted(below, key=order)]


def move_plan(subs: list[Mount], root: Mount) -> list[dict]:
    """How each mount under / comes back after pivot_root.

    ``move`` (mount --move, carrying what is mounted below it) for the children of the root and of a
    re-created bind, ``rebind`` for a bind of the old root itself (moved, it would still show the old
    filesystem; it is bound again from the new root), ``carried`` for what an ancestor's move brings.
    """
    kinds = {m.mount_id: mount_kind(m, root.devno) for m in subs}
    actions: dict[int, str] = {}
    plan = []
    for mount in subs:
        if kinds[mount.mount_id] == "bind":
            action = "rebind"
        elif mount.parent_id == root.mount_id or actions.get(mount.parent_id) == "rebind":
            action = "move"
        else:
            action = "carried"
        actions[mount.mount_id] = action
        plan.append(
            {
                "mount_point": mount.mount_point,
                "fstype": mount.fstype,
                "source": mount.source,
                "kind": kinds[mount.mount_id],
                "action": action,
            }
        )
    return plan


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
        kind = mount_kind(mount, root.devno)
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


# ---- the target ---------------------------------------------------------------------------------


def target_findings(
    target: Target,
    info: BlockDevice | None,
    host: Host,
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
                f"{target.path} ({procfs.devno_text(target.devno)}) is not listed in {host.sys}/dev/block",
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
    users = _holding(host.proc, _rdevs(numbers))
    stacked = info.holders + tuple(
        h for name, _devno in info.partitions for h in sysfs.listing(f"{host.sys}/class/block/{name}/holders")
    )
    swapped = [path for path, _kind in _swaps(host.proc) if path in nodes]
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


def _swaps(proc: str) -> list[tuple[str, str]]:
    try:
        return procfs.parse_swaps(procfs.read_text(f"{proc}/swaps"))
    except OSError:
        return []


def choose_copy(
    fstype: str, new_fstype: str, source_bytes: int | None, used: int, target_bytes: int | None
) -> dict:
    """Block copy when the type stays, dd can carry it and the target is as large; else a file copy.

    Returns method ("block", "file", or "" when the target cannot take the data), reason and bytes.
    """
    if target_bytes is None:
        return {"method": "", "reason": "the target's size is unknown", "bytes": 0}
    keeps = not new_fstype or new_fstype == fstype
    why_not = []
    if not keeps:
        why_not.append(f"the filesystem changes from {fstype} to {new_fstype}")
    if source_bytes is None:
        why_not.append(f"/ ({fstype}) is not on a block device")
    elif fstype not in BLOCK_COPY_FSTYPES:
        why_not.append(f"a block copy of {fstype} would carry its UUID, which {fstype} cannot have twice")
    elif target_bytes < source_bytes:
        why_not.append(
            f"the target ({target_bytes} bytes) is smaller than the device of / ({source_bytes} bytes)"
        )
    if not why_not:
        reason = (
            f"the target ({target_bytes} bytes) is at least as large as the device of / and keeps {fstype}"
        )
        return {"method": "block", "reason": reason, "bytes": source_bytes}
    needed = used + used * FILE_COPY_HEADROOM // 100
    if target_bytes < needed:
        why_not.append(
            f"a file copy needs {needed} bytes ({used} used plus {FILE_COPY_HEADROOM}% for the new "
            f"filesystem's metadata) and the target has {target_bytes}"
        )
        return {"method": "", "reason": "; ".join(why_not), "bytes": needed}
    return {"method": "file", "reason": "; ".join(why_not), "bytes": used}


# ---- the plan -----------------------------------------------------------------------------------


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _remedy(kind: str, proc: Process, init: Init, plan: Plan) -> bool:
    """Put what resolves one process's part of a finding into the plan; False when it cannot."""
    if proc.pid == 1:
        if kind in STALE_KINDS and init.reexec:
            _add(plan.prepare, init.reexec)
            return True
        return False
    if not init.systemctl:
        return False  # without systemd a process cannot be told apart from its service, nor restarted
    if proc.unit in SSH_UNITS:
        # Restarted, it serves new connections from the new program; the sessions' own sshd processes
        # keep the old one and sit in session scopes, which leave the finding to a person (reconnect).
        if kind in STALE_KINDS:
            _add(plan.prepare, f"systemctl restart {proc.unit}")
            return True
        return False
    if proc.unit == JOURNALD:
        if kind in STALE_KINDS:
            _add(plan.prepare, f"systemctl restart {JOURNALD}")
        else:
            # Stopped, journald is started again by its sockets at once; it can write to /run instead.
            _add(plan.prepare, "journalctl --relinquish-var")
            _add(plan.finish, "journalctl --flush")
        return True
    if proc.unit.endswith(".service") and not proc.unit.startswith("user@"):
        _add(plan.stop, proc.unit)
        return True
    return False  # a session, a container scope or no unit: nothing the plan can stop and start again


def make_plan(
    blockers: list[Finding], notes: list[Finding], views: list[ProcessView], init: Init, mount_point: str
) -> Plan:
    """The steps that resolve what they can of the blockers, in order; marks those it resolves."""
    plan = Plan()
    for blocker in blockers:
        if blocker.kind == "shared_propagation":
            _add(plan.prepare, f"mount --make-rprivate {mount_point}")
            blocker.handled = True
        elif blocker.kind in PROCESS_KINDS and blocker.processes:
            results = [_remedy(blocker.kind, p, init, plan) for p in blocker.processes]
            blocker.handled = all(results)
    # PID 1 first, so that the later systemctl calls talk to the re-executed manager; the root turns
    # private last, right before the services stop.
    order = (init.reexec or "-", "systemctl restart", "journalctl", "mount")
    plan.prepare.sort(
        key=lambda command: next(i for i, start in enumerate(order) if command.startswith(start))
    )
    plan.stop.sort(key=lambda unit: (unit in LOGGERS, unit))
    plan.start = list(reversed(plan.stop))
    if init.systemctl:
        servers = {
            v.process.unit for v in views if v.process.comm in SSH_COMMS and v.process.unit in SSH_UNITS
        }
        plan.restart_first = sorted(servers)
        plan.restart = sorted(
            {
                p.unit
                for n in notes
                if n.kind == "socket_on_root"
                for p in n.processes
                if p.unit.endswith(".service")
                and p.unit not in (*SSH_UNITS, JOURNALD, *plan.stop)
                and not p.unit.startswith("user@")
            }
        )
    plan.reexec_init = init.reexec
    return plan


# ---- the whole preflight ------------------------------------------------------------------------


def target_of(path: str, fstype: str | None = None) -> Target:
    """The target named by a path, with its device numbers when it is a block device."""
    st = procfs.stat_or_none(path)
    if st is None or not stat.S_ISBLK(st.st_mode):
        return Target(path, None, fstype)
    return Target(path, (os.major(st.st_rdev), os.minor(st.st_rdev)), fstype)


def _root_device(host: Host, root: Mount) -> BlockDevice | None:
    """The block device / is on: by its numbers, or by its source for btrfs's anonymous numbers."""
    info = sysfs.block_device(host.sys, root.devno)
    if info is None and root.source.startswith("/dev/"):
        st = procfs.stat_or_none(root.source)
        if st is not None and stat.S_ISBLK(st.st_mode):
            info = sysfs.block_device(host.sys, (os.major(st.st_rdev), os.minor(st.st_rdev)))
    return info


def run_preflight(
    target: Target,
    *,
    host: Host | None = None,
    mount_point: str = "/",
    min_free_memory: int = 64 << 20,
    usage: tuple[int, int] | None = None,
    new_fstype: str = "",
    exclude: Iterable[int] | None = None,
) -> Preflight:
    """Everything that stands between the filesystem at ``mount_point`` and a move to ``target``.

    ``usage`` is (size, used) in bytes, read with statvfs when not given (the used bytes of a
    filesystem without a block device of its own, an overlay, are counted file by file); ``exclude``
    are pids left out of the scan, this process by default (it reads /proc and holds nothing of the root).
    """
    host = host or Host()
    try:
        table = mounts.read_mountinfo(f"{host.proc}/self/mountinfo")
    except OSError as exc:
        raise PreflightError(f"cannot read the mount table ({exc}): is /proc mounted?") from exc
    root = mounts.mount_at(table, mount_point)
    if root is None:
        raise PreflightError(
            f"nothing is mounted on {mount_point}: give the mount point of the filesystem to move"
        )
    views = procfs.scan_processes(host.proc, table, {os.getpid()} if exclude is None else exclude)
    init = procfs.init_system(host.proc, host.systemd_run, host.systemctl)
    loops = sysfs.loop_devices(host.sys, table, host.loop_backing)
    subs = submounts(table, root)
    root_info = _root_device(host, root)
    if usage is not None:
        size, used = usage
        counted = "given"
    else:
        size, used = mounts.usage_of(mount_point)
        counted = "statvfs"
        if root_info is None:  # no device of its own: statvfs may speak of another filesystem
            used, counted = mounts.tree_bytes(mount_point), "files"
    root_below = sysfs.devices_below(host.sys, root_info.name) if root_info else set()
    info = sysfs.block_device(host.sys, target.devno) if target.devno else None
    copy = choose_copy(
        root.fstype, new_fstype, root_info.size if root_info else None, used, info.size if info else None
    )
    available = procfs.mem_available(host.proc)
    try:
        unix = procfs.parse_unix(procfs.read_text(f"{host.proc}/net/unix"))
    except OSError:
        unix = []

    blockers = root_mount_findings(root)
    blockers += deleted_in_use(views, root.devno)
    blockers += open_for_writing(views, root.devno)
    # The target's own loop device is judged with the target (target_backed_by_root).
    others = [lp for lp in loops if info is None or lp.devno != info.devno]
    on_loops = loops_on_root(others, root.devno, table, host.proc)
    blockers += [f for f in on_loops if f.kind == "loop_on_root"]
    mounted = mount_findings(subs, table, root, views)
    blockers += [f for f in mounted if f.kind == "overlay_on_root"]
    blockers += swap_findings(_swaps(host.proc), table, root.devno)
    on_target = target_findings(target, info, host, table, root_below, loops, root.devno)
    blockers += [f for f in on_target if f.kind != "target_has_filesystem"]
    if not copy["method"] and info is not None:  # no size to compare is a target finding already
        blockers.append(
            Finding(
                "target_too_small",
                f"{target.path} cannot take {mount_point}: {copy['reason']}",
                "choose a larger device, or free space on the filesystem",
                target.path,
            )
        )
    made = new_fstype or root.fstype
    if copy["method"] == "file" and made not in FILE_COPY_FSTYPES:
        blockers.append(
            Finding(
                "copy_needs_fstype",
                f"a file copy makes a new filesystem, and {mount_point} is {made}, which it cannot make",
                f"give the type of the new filesystem ({', '.join(FILE_COPY_FSTYPES)}): root_migrate_fstype",
                mount_point,
            )
        )
    if available < min_free_memory:
        blockers.append(
            Finding(
                "low_memory",
                f"{available >> 20} MiB of memory available, less than the "
                f"{min_free_memory >> 20} MiB asked for",
                "stop memory-hungry services first: while / is read-only nothing can be swapped to it",
            )
        )
    notes = [f for f in mounted if f.kind != "overlay_on_root"]
    notes += sockets_on_root(unix, views, table, root.devno)
    notes += [f for f in on_loops if f.kind == "loop_maybe_on_root"]
    notes += [f for f in on_target if f.kind == "target_has_filesystem"]
    if not init.reexec:
        notes.append(
            Finding(
                "init_cannot_reexec",
                f"PID 1 ({init.comm}) is neither systemd nor sysvinit and cannot execute itself again",
                "it keeps the old root in use until the next boot: the old root stays mounted",
            )
        )
    plan = make_plan(blockers, notes, views, init, mount_point)
    plan.move_mounts = move_plan(subs, root)
    plan.copy = copy
    facts = {
        "mount_point": mount_point,
        "source": root.source,
        "fstype": root.fstype,
        "device": procfs.devno_text(root.devno),
        "device_name": root_info.name if root_info else None,
        "device_bytes": root_info.size if root_info else None,
        "size_bytes": size,
        "used_bytes": used,
        "used_counted_by": counted,
        "propagation": root.propagation,
        "init": {**asdict(init), "reexec": init.reexec},
        "memory": {"available_bytes": available, "required_bytes": min_free_memory},
        "target": {
            "path": target.path,
            "device": procfs.devno_text(target.devno),
            "name": info.name if info else None,
            "disk": info.disk if info else None,
            "size_bytes": info.size if info else None,
            "fstype": target.fstype,
        },
    }
    return Preflight(blockers, notes, plan, facts)
