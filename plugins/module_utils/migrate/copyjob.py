# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One copy of a mounted filesystem onto the destination device: what is asked, checked against the
source and the destination, decided (block or file, by preflight.choose_copy's rules), carried out,
checked, grown and given its own UUID. The copy mechanics are rootcopy's.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import destination, preflight, rootcopy
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate.rootcopy import CopyError


@dataclass
class CopyRequest:
    """What the copy is asked to do (root_copy's options)."""

    destination: str  # the block device the copy goes to
    source: str = "/"
    source_device: str | None = None
    method: str = "auto"  # auto, block or file
    fstype: str | None = None
    exclude: list[str] = field(default_factory=list)
    progress_path: str = "/run/lifeline/copy-progress.json"
    overwrite: bool = False
    grow: bool = True
    check: bool = True
    new_uuid: bool = False


def device_of(mount: mounts.Mount) -> str | None:
    """The block device node of a mount: its source when that is the device, else /dev/block/MAJ:MIN."""
    for node in (mount.source, f"/dev/block/{mount.major}:{mount.minor}"):
        try:
            if node.startswith("/dev/") and rootcopy.devno_of(node) == mount.devno:
                return node
        except CopyError:
            continue
    return None


def used_by(source: str, source_device: str | None) -> int:
    """The bytes a file copy of ``source`` carries: statvfs's used bytes for a filesystem on a block
    device, its files counted otherwise (an overlay answers statvfs for its upper layer's filesystem)."""
    return mounts.usage_of(source)[1] if source_device else mounts.tree_bytes(source)


def decide(request: CopyRequest, mount: mounts.Mount, source_device: str | None, used: int) -> dict:
    """Method, reason, fstype and bytes of the copy asked for; CopyError when it cannot be done."""
    device = request.destination
    source_bytes = rootcopy.device_size(source_device) if source_device else None
    destination_bytes = rootcopy.device_size(device)
    new_fstype = request.fstype or ""
    auto = preflight.choose_copy(mount.fstype, new_fstype, source_bytes, used, destination_bytes)
    method = auto["method"] if request.method == "auto" else request.method
    reason = auto["reason"]
    if request.method != "auto":
        reason = f"asked for (method={method}); auto would choose {auto['method'] or 'no copy'}: {reason}"
    if not method:
        raise CopyError(f"{request.source} cannot be copied to {device}: {auto['reason']}")
    if method == "block":
        _refuse_block_copy(request, mount, source_device, source_bytes, destination_bytes)
        return {"method": method, "reason": reason, "fstype": mount.fstype, "bytes_total": source_bytes}
    fstype = new_fstype or mount.fstype
    if fstype not in rootcopy.MKFS_FSTYPES:
        raise CopyError(
            f"a file copy makes ext2, ext3, ext4 or xfs, and the source is {mount.fstype}: give fstype"
        )
    return {"method": method, "reason": reason, "fstype": fstype, "bytes_total": used}


def _refuse_block_copy(
    request: CopyRequest,
    mount: mounts.Mount,
    source_device: str | None,
    source_bytes: int | None,
    destination_bytes: int,
) -> None:
    """Why a block copy of this source onto this destination cannot be done, as a CopyError."""
    if request.fstype and request.fstype != mount.fstype:
        raise CopyError(
            f"a block copy keeps {mount.fstype}; fstype={request.fstype} needs method=file or auto"
        )
    if source_device is None or source_bytes is None:
        raise CopyError(
            f"{request.source} is not on a block device ({mount.source}): give source_device or "
            "use method=file"
        )
    if mount.fstype not in preflight.BLOCK_COPY_FSTYPES:
        raise CopyError(
            f"a block copy of {mount.fstype} would give two filesystems one UUID, which "
            f"{mount.fstype} cannot tell apart; use method=file"
        )
    if destination_bytes < source_bytes:
        raise CopyError(
            f"{request.destination} ({destination_bytes} bytes) is smaller than {source_device} "
            f"({source_bytes} bytes): a block copy needs a destination at least as large; use "
            "method=file or a larger device"
        )


def prepare(run: Runner, request: CopyRequest) -> dict:
    """Everything a copy is checked and decided on, before anything is written: the result so far
    (method, reason, fstype, bytes, source device, the destination's signatures); CopyError with
    the reason when it must not run."""
    mount = mounts.mount_at(mounts.read_mountinfo(), request.source)
    if mount is None:
        raise CopyError(
            f"nothing is mounted on {request.source}: give the mount point of the filesystem to copy"
        )
    source_device = request.source_device or device_of(mount)
    device = request.destination
    rootcopy.devno_of(device)  # a block device, or a CopyError that says what was given
    if source_device and rootcopy.overlapping(source_device, device):
        raise CopyError(f"{device} is {source_device} or shares storage with it: give another device")
    rootcopy.refuse_mounted(device, "the copy would overwrite a filesystem in use")
    decided = decide(request, mount, source_device, used_by(request.source, source_device))
    signatures = destination.refuse_used_target(run, device, request.overwrite)
    return {**decided, "source_device": source_device, "bytes_done": 0, "destination_signatures": signatures}


def _copy_files(run: Runner, request: CopyRequest, fstype: str, total: int) -> rootcopy.CopyResult:
    """Make the new filesystem, mount it beside the progress file, copy into it, unmount it."""
    directory = os.path.dirname(request.progress_path) or "."
    os.makedirs(directory, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="copy-target.", dir=directory)
    try:
        destination.prepare_target(run, request.destination, fstype, overwrite=request.overwrite)
        run(["mount", "-t", fstype, request.destination, scratch])
        try:
            return rootcopy.file_copy(
                run, request.source, scratch, request.progress_path, exclude=request.exclude, total=total
            )
        finally:
            run(["umount", scratch])
    finally:
        os.rmdir(scratch)


def carry_out(
    run: Runner, execute: rootcopy.Exec, request: CopyRequest, prepared: dict
) -> tuple[dict, list[str]]:
    """The copy ``prepare`` decided, its check, its growth and its UUID: what to add to the result,
    and the warnings for the operator. ``execute`` runs a tool whose exit code is the answer (fsck)."""
    device, fstype = request.destination, prepared["fstype"]
    if prepared["method"] == "block":
        copied = rootcopy.block_copy(prepared["source_device"], device, request.progress_path)
    else:
        copied = _copy_files(run, request, fstype, prepared["bytes_total"])
    done: dict = {**copied.as_dict(), "fsck": None, "grow": None}
    growing = request.grow and prepared["method"] == "block"
    if request.check or (growing and fstype in rootcopy.EXT_FSTYPES):
        fsck = destination.check_copy(execute, device, fstype)
        done["fsck"] = fsck.as_dict()
        if not fsck.ok:
            raise CopyError(
                f"the copy on {device} fails its check ({fsck.verdict}, {fsck.command[0]} exit "
                f"{fsck.rc}); see fsck.output; the source is unchanged"
            )
    if growing:
        scratch_dir = os.path.dirname(request.progress_path) or "."  # writable while / is read-only
        done["grow"] = destination.grow(run, device, fstype, scratch_dir=scratch_dir).as_dict()
    elif request.grow:
        size = destination.filesystem_size(run, device, fstype)
        done["grow"] = {"before": size, "after": size}
    done["uuid"] = destination.filesystem_uuid(run, device)
    done["uuid_shared"] = prepared["method"] == "block"  # dd copies the superblock, UUID and all
    if done["uuid_shared"] and request.new_uuid:
        done["uuid"] = destination.give_new_uuid(run, device, fstype)
        done["uuid_shared"] = False
    warnings = []
    if done["uuid_shared"]:
        warnings.append(
            f"{device} and {prepared['source_device']} both carry the filesystem UUID {done['uuid']}: "
            "mount the copy by its device until the old one is gone, or give the copy a new UUID"
        )
    return done, warnings
