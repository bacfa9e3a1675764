# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The destination device of a root copy: what it holds before (wipefs), the filesystem a file copy
makes on it, the check of the copy (e2fsck, xfs_repair), its growth to the whole device, and its
UUID (read, or made its own after a block copy)."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import asdict, dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.host.disks import parse_blkid_udev
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner, ToolError
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate.rootcopy import (
    EXT_FSTYPES,
    MKFS_FSTYPES,
    CopyError,
    Exec,
    mounts_of,
    refuse_mounted,
)


@dataclass
class FsckResult:
    """One filesystem check: the command, its exit code, what the code means, and what it printed."""

    command: list[str]
    rc: int
    ok: bool
    verdict: str
    output: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class GrowResult:
    """Size of the filesystem in bytes before and after it was grown to its device."""

    before: int
    after: int

    def as_dict(self) -> dict:
        return asdict(self)


def signatures(run: Runner, device: str) -> list[str]:
    """What wipefs finds on a device (filesystems, partition tables, LVM, RAID, swap); [] when blank."""
    out = run(["wipefs", "--no-act", "--noheadings", "--output", "TYPE", device])
    return [line.strip() for line in out.splitlines() if line.strip()]


def refuse_used_target(run: Runner, device: str, overwrite: bool) -> list[str]:
    """The signatures on a target; CopyError when there are some and ``overwrite`` is false."""
    found = signatures(run, device)
    if found and not overwrite:
        raise CopyError(
            f"{device} holds {', '.join(found)}: check that nothing on it is needed, then allow the copy "
            "to overwrite it (overwrite=true)"
        )
    return found


def mkfs_argv(device: str, fstype: str, label: str | None, overwrite: bool) -> list[str]:
    if fstype not in MKFS_FSTYPES:
        raise CopyError(f"a file copy makes ext2, ext3, ext4 or xfs, not {fstype}")
    argv = [f"mkfs.{fstype}", "-q"]
    if fstype == "xfs":
        argv += ["-f"] if overwrite else []
    else:
        argv.append("-F")  # mke2fs asks before it writes on a whole disk; the refusal is ours to make
    if label:
        argv += ["-L", label]
    return [*argv, device]


def prepare_target(
    run: Runner,
    device: str,
    fstype: str,
    label: str | None = None,
    overwrite: bool = False,
    mountinfo: str = "/proc/self/mountinfo",
) -> None:
    """Make a fresh ``fstype`` filesystem on ``device`` for a file copy; refuses a mounted device, and
    one that holds anything unless ``overwrite``."""
    argv = mkfs_argv(device, fstype, label, overwrite)
    refuse_mounted(device, "a new filesystem would destroy one in use", mountinfo)
    refuse_used_target(run, device, overwrite)
    run(argv)


def fsck_verdict(fstype: str, rc: int) -> tuple[bool, str]:
    """(ok, meaning) of an exit code of e2fsck (fsck(8) bits) or xfs_repair -n."""
    if fstype in EXT_FSTYPES:
        if rc == 0:
            return True, "clean"
        if rc in (1, 2):
            return True, "errors corrected"
        if rc & 4:
            return False, "errors left uncorrected"
        return False, f"e2fsck could not check it (exit {rc})"
    return {
        0: (True, "clean"),
        1: (False, "corruption found"),
        2: (False, "the log holds changes: mount and unmount it once to replay the log, then check again"),
    }.get(rc, (False, f"xfs_repair could not check it (exit {rc})"))


def check_copy(
    execute: Exec, device: str, fstype: str, repair: bool = True, mountinfo: str = "/proc/self/mountinfo"
) -> FsckResult:
    """Check the unmounted copy: ``e2fsck -f -p`` (-n when not ``repair``) or ``xfs_repair -n``.

    e2fsck -p also records the check, which resize2fs requires before it grows the filesystem.
    """
    refuse_mounted(device, "a filesystem is checked unmounted", mountinfo)
    if fstype in EXT_FSTYPES:
        argv = ["e2fsck", "-f", "-p" if repair else "-n", device]
    elif fstype == "xfs":
        argv = ["xfs_repair", "-n", device]  # repairing xfs is not a safe automatic step
    else:
        raise CopyError(f"no check for {fstype}: ext2, ext3, ext4 and xfs are checked")
    rc, out, err = execute(argv)
    ok, verdict = fsck_verdict(fstype, rc)
    output = "\n".join(part.strip() for part in (out, err) if part.strip())
    return FsckResult(command=argv, rc=rc, ok=ok, verdict=verdict, output=output)


def _field(text: str, pattern: str, what: str) -> int:
    match = re.search(pattern, text, flags=re.MULTILINE)
    if match is None:
        raise CopyError(f"cannot read the {what} from: {text.strip()[:200]}")
    return int(match[1])


def filesystem_size(run: Runner, device: str, fstype: str) -> int:
    """Size of the filesystem on ``device`` in bytes, from its superblock."""
    if fstype in EXT_FSTYPES:
        out = run(["dumpe2fs", "-h", device])
        return _field(out, r"^Block count:\s+(\d+)", "block count") * _field(
            out, r"^Block size:\s+(\d+)", "block size"
        )
    if fstype == "xfs":
        out = run(["xfs_db", "-r", "-c", "sb 0", "-c", "print blocksize dblocks", device])
        return _field(out, r"^blocksize = (\d+)", "block size") * _field(
            out, r"^dblocks = (\d+)", "block count"
        )
    raise CopyError(f"cannot size a {fstype} filesystem: ext2, ext3, ext4 and xfs are known")


def grow(
    run: Runner,
    device: str,
    fstype: str,
    mountpoint: str | None = None,
    mountinfo: str = "/proc/self/mountinfo",
    scratch_dir: str | None = None,
) -> GrowResult:
    """Grow the filesystem on ``device`` to the whole device.

    ext2/3/4 grow offline (resize2fs; the device must not be mounted, and must have been checked with
    e2fsck -f since it was last mounted). xfs grows only mounted: on ``mountpoint`` when given, else on
    a temporary mount with nouuid (a block copy shares its UUID with the mounted source), made in
    ``scratch_dir``: the temporary directory by default, which a read-only / does not have.
    """
    if fstype in EXT_FSTYPES:
        refuse_mounted(device, "resize2fs grows it offline here", mountinfo)
        before = filesystem_size(run, device, fstype)
        run(["resize2fs", device])
        return GrowResult(before, filesystem_size(run, device, fstype))
    if fstype != "xfs":
        raise CopyError(f"cannot grow a {fstype} filesystem: ext2, ext3, ext4 and xfs are known")
    if mountpoint is not None:
        if not any(m.mount_point == mountpoint for m in mounts_of(device, mountinfo)):
            raise CopyError(f"{device} is not mounted on {mountpoint}: give where it is mounted, or none")
        return _xfs_growfs(run, mountpoint)
    refuse_mounted(device, "give its mount point to grow it there", mountinfo)
    scratch = tempfile.mkdtemp(prefix="grow.", dir=scratch_dir)
    try:
        run(["mount", "-t", "xfs", "-o", "nouuid", device, scratch])
        try:
            return _xfs_growfs(run, scratch)
        finally:
            run(["umount", scratch])
    finally:
        os.rmdir(scratch)


def _xfs_growfs(run: Runner, mountpoint: str) -> GrowResult:
    out = run(["xfs_growfs", mountpoint])
    block = _field(out, r"^data\s+=\s+bsize=(\d+)", "block size")
    before = _field(out, r"^data\s+=\s+bsize=\d+\s+blocks=(\d+)", "block count")
    changed = re.search(r"data blocks changed from (\d+) to (\d+)", out)
    after = int(changed[2]) if changed else before
    return GrowResult(before * block, after * block)


def give_new_uuid(run: Runner, device: str, fstype: str) -> str:
    """A filesystem UUID of its own for an unmounted copy (a block copy shares its source's); the new UUID.

    With two filesystems of one UUID, whichever the kernel finds first is the root that fstab names.
    """
    refuse_mounted(device, "its UUID is changed unmounted")
    if fstype in EXT_FSTYPES:
        run(["tune2fs", "-U", "random", device])
    elif fstype == "xfs":
        run(["xfs_admin", "-U", "generate", device])
    else:
        raise CopyError(f"a new UUID for {fstype} is not supported: give ext2, ext3, ext4 or xfs")
    return filesystem_uuid(run, device)


def filesystem_uuid(run: Runner, device: str) -> str:
    """The filesystem UUID blkid reads from the device itself (not from its cache)."""
    try:
        info = parse_blkid_udev(run(["blkid", "--probe", "--output", "udev", device]))
    except ToolError as exc:
        raise CopyError(f"blkid finds no filesystem on {device}: {exc}") from exc
    if not info.get("UUID"):
        raise CopyError(f"the filesystem on {device} has no UUID: fstab cannot name it by UUID")
    return info["UUID"]
