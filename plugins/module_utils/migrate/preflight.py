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
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import findings, submounts
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate.findings import Finding, Target

# Filesystems a block copy (dd) may carry: the copy keeps the filesystem UUID, and btrfs cannot tell
# two mounted devices with one UUID apart, so btrfs (and anything not on a block device) is copied
# file by file.
BLOCK_COPY_FSTYPES = ("ext2", "ext3", "ext4", "xfs")
# The filesystems a file copy makes (mkfs) on the target.
FILE_COPY_FSTYPES = ("ext2", "ext3", "ext4", "xfs")
# A fresh filesystem spends a few percent on its own metadata (journal, inode tables): a file copy
# needs the used bytes plus this share of them.
FILE_COPY_HEADROOM = 10  # percent
# The connection's server is never stopped: it is the way back in, and it is restarted first.
SSH_UNITS = ("ssh.service", "sshd.service", "dropbear.service")
SSH_COMMS = ("sshd", "dropbear")
JOURNALD = "systemd-journald.service"
# Loggers stop last and start first, so that the others can log while they stop and start.
LOGGERS = ("rsyslog.service", "syslog-ng.service", "syslog.service")
# Findings about processes, and those of them a restart of the process fixes.
PROCESS_KINDS = ("deleted_executable", "deleted_library", "deleted_open", "open_for_writing")
STALE_KINDS = ("deleted_executable", "deleted_library")


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


@dataclass
class _Reading:
    """What the preflight read of the host once, for the findings, the plan and the facts."""

    table: list[Mount]
    root: Mount
    views: list[ProcessView]
    init: Init
    loops: list[Loop]
    subs: list[Mount]
    root_info: BlockDevice | None
    size: int
    used: int
    counted: str  # how the used bytes were counted: given, statvfs or files
    target_info: BlockDevice | None
    available: int
    unix: list[tuple[int, str]]


def _read(host: Host, mount_point: str, target: Target, usage: tuple[int, int] | None, exclude) -> _Reading:
    try:
        table = mounts.read_mountinfo(f"{host.proc}/self/mountinfo")
    except OSError as exc:
        raise PreflightError(f"cannot read the mount table ({exc}): is /proc mounted?") from exc
    root = mounts.mount_at(table, mount_point)
    if root is None:
        raise PreflightError(
            f"nothing is mounted on {mount_point}: give the mount point of the filesystem to move"
        )
    root_info = _root_device(host, root)
    if usage is not None:
        (size, used), counted = usage, "given"
    else:
        (size, used), counted = mounts.usage_of(mount_point), "statvfs"
        if root_info is None:  # no device of its own: statvfs may speak of another filesystem
            used, counted = mounts.tree_bytes(mount_point), "files"
    try:
        unix = procfs.parse_unix(procfs.read_text(f"{host.proc}/net/unix"))
    except OSError:
        unix = []
    return _Reading(
        table=table,
        root=root,
        views=procfs.scan_processes(host.proc, table, {os.getpid()} if exclude is None else exclude),
        init=procfs.init_system(host.proc, host.systemd_run, host.systemctl),
        loops=sysfs.loop_devices(host.sys, table, host.loop_backing),
        subs=submounts.submounts(table, root),
        root_info=root_info,
        size=size,
        used=used,
        counted=counted,
        target_info=sysfs.block_device(host.sys, target.devno) if target.devno else None,
        available=procfs.mem_available(host.proc),
        unix=unix,
    )


def _sorted_findings(
    seen: _Reading,
    host: Host,
    target: Target,
    copy: dict,
    mount_point: str,
    new_fstype: str,
    min_free_memory: int,
) -> tuple[list[Finding], list[Finding]]:
    """(blockers, notes): every finding, each on the side it belongs to."""
    root, info = seen.root, seen.target_info
    root_below = sysfs.devices_below(host.sys, seen.root_info.name) if seen.root_info else set()
    blockers = findings.root_mount_findings(root)
    blockers += findings.deleted_in_use(seen.views, root.devno)
    blockers += findings.open_for_writing(seen.views, root.devno)
    # The target's own loop device is judged with the target (target_backed_by_root).
    others = [lp for lp in seen.loops if info is None or lp.devno != info.devno]
    on_loops = findings.loops_on_root(others, root.devno, seen.table, host.proc)
    blockers += [f for f in on_loops if f.kind == "loop_on_root"]
    mounted = findings.mount_findings(seen.subs, seen.table, root, seen.views)
    blockers += [f for f in mounted if f.kind == "overlay_on_root"]
    blockers += findings.swap_findings(findings.active_swaps(host.proc), seen.table, root.devno)
    on_target = findings.target_findings(
        target, info, host.proc, host.sys, seen.table, root_below, seen.loops, root.devno
    )
    blockers += [f for f in on_target if f.kind != "target_has_filesystem"]
    blockers += _copy_and_memory_findings(seen, target, copy, mount_point, new_fstype, min_free_memory)
    notes = [f for f in mounted if f.kind != "overlay_on_root"]
    notes += findings.sockets_on_root(seen.unix, seen.views, seen.table, root.devno)
    notes += [f for f in on_loops if f.kind == "loop_maybe_on_root"]
    notes += [f for f in on_target if f.kind == "target_has_filesystem"]
    if not seen.init.reexec:
        notes.append(
            Finding(
                "init_cannot_reexec",
                f"PID 1 ({seen.init.comm}) is neither systemd nor sysvinit and cannot execute itself again",
                "it keeps the old root in use until the next boot: the old root stays mounted",
            )
        )
    return blockers, notes


def _copy_and_memory_findings(
    seen: _Reading, target: Target, copy: dict, mount_point: str, new_fstype: str, min_free_memory: int
) -> list[Finding]:
    """Blockers of the copy itself: a destination too small, a type a file copy cannot make, memory."""
    found = []
    if not copy["method"] and seen.target_info is not None:  # no size to compare is a target finding already
        found.append(
            Finding(
                "target_too_small",
                f"{target.path} cannot take {mount_point}: {copy['reason']}",
                "choose a larger device, or free space on the filesystem",
                target.path,
            )
        )
    made = new_fstype or seen.root.fstype
    if copy["method"] == "file" and made not in FILE_COPY_FSTYPES:
        found.append(
            Finding(
                "copy_needs_fstype",
                f"a file copy makes a new filesystem, and {mount_point} is {made}, which it cannot make",
                f"give the type of the new filesystem ({', '.join(FILE_COPY_FSTYPES)}): root_migrate_fstype",
                mount_point,
            )
        )
    if seen.available < min_free_memory:
        found.append(
            Finding(
                "low_memory",
                f"{seen.available >> 20} MiB of memory available, less than the "
                f"{min_free_memory >> 20} MiB asked for",
                "stop memory-hungry services first: while / is read-only nothing can be swapped to it",
            )
        )
    return found


def _facts(seen: _Reading, target: Target, mount_point: str, min_free_memory: int) -> dict:
    root, root_info, info = seen.root, seen.root_info, seen.target_info
    return {
        "mount_point": mount_point,
        "source": root.source,
        "fstype": root.fstype,
        "device": procfs.devno_text(root.devno),
        "device_name": root_info.name if root_info else None,
        "device_bytes": root_info.size if root_info else None,
        "size_bytes": seen.size,
        "used_bytes": seen.used,
        "used_counted_by": seen.counted,
        "propagation": root.propagation,
        "init": {**asdict(seen.init), "reexec": seen.init.reexec},
        "memory": {"available_bytes": seen.available, "required_bytes": min_free_memory},
        "target": {
            "path": target.path,
            "device": procfs.devno_text(target.devno),
            "name": info.name if info else None,
            "disk": info.disk if info else None,
            "size_bytes": info.size if info else None,
            "fstype": target.fstype,
        },
    }


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
    seen = _read(host, mount_point, target, usage, exclude)
    info = seen.target_info
    copy = choose_copy(
        seen.root.fstype,
        new_fstype,
        seen.root_info.size if seen.root_info else None,
        seen.used,
        info.size if info else None,
    )
    blockers, notes = _sorted_findings(seen, host, target, copy, mount_point, new_fstype, min_free_memory)
    plan = make_plan(blockers, notes, seen.views, seen.init, mount_point)
    plan.move_mounts = submounts.move_plan(seen.subs, seen.root)
    plan.copy = copy
    return Preflight(blockers, notes, plan, _facts(seen, target, mount_point, min_free_memory))
