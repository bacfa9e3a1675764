# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attach a target of each kind (a directory holding its root, a disk image, a block device) with
an Attachment, and undo everything already done when any step fails.

A directory is checked and used as it is; an image or a device is surveyed, attached (a loop device
for an image), its partitions mapped, its root found (activating its volume groups when the root is
on LVM), mounted, and the fstab mounts it needs added. An image that is not raw is exported as a
raw file first (host/images). A read-only attachment (check mode) does all of it without writing.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.lifeline.rescue.plugins.module_utils.attach.attachment import (
    AttachError,
    Attachment,
    NoRootFound,
    UndoError,
    undo,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.host import disks, images
from ansible_collections.lifeline.rescue.plugins.module_utils.host.disks import DiskError, Volume
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

KINDS = ("root", "image", "device")


class AttachFailed(AttachError):
    """Attaching failed; ``undone`` says what was undone, ``steps_left`` what is still attached (kept
    in the state file for rescue_detach when undoing failed too, else empty)."""

    def __init__(self, message: str, undone: list[str], steps_left: list[dict]) -> None:
        super().__init__(message)
        self.undone, self.steps_left = undone, steps_left


def attach_root(job: Attachment, root: str, bind_api: bool) -> None:
    """A directory where the target's root is mounted already: a Linux root, not the rescuer's own."""
    if refusal := rootfs.not_a_linux_root("target_root", root, root):
        raise AttachError(refusal)
    if rootfs.is_running_root(root):
        raise AttachError(
            f"target_root={root} is this rescuer's own running root; to repair the running system, "
            "give no target_* variable (live mode)"
        )
    if bind_api:
        job.bind_api()


def _refuse_wrong_kind(path: str, is_image: bool) -> None:
    if not os.path.exists(path):
        raise AttachError(
            f"{path}: no such file; check the {'target_image' if is_image else 'target_device'} path"
        )
    mode = os.stat(path).st_mode
    if is_image and not stat.S_ISREG(mode):
        hint = " (a block device: use target_device)" if stat.S_ISBLK(mode) else ""
        raise AttachError(f"target_image={path} is not a regular file{hint}")
    if not is_image and not stat.S_ISBLK(mode):
        raise AttachError(f"target_device={path} is not a block device (an image file? use target_image)")


def attach_disk(
    job: Attachment,
    path: str,
    is_image: bool,
    partition: str,
    fstab_mounts: list[str],
    bind_api: bool,
    image_format: str = "",
) -> str:
    """Attach an image or a device and mount its root; returns the partition table type."""
    path = os.path.abspath(path)  # recorded for the detach, which may run from another directory
    _refuse_wrong_kind(path, is_image)
    if is_image:
        job.refuse_busy_image(path)  # first: the processes holding it say more than qemu's lock
        job.image = images.inspect(job.run, path, image_format, job.readonly)
        if not job.readonly:
            _refuse_shared_base(job.image)
        _say_what_the_image_is(job)
    else:
        job.refuse_busy_device(path)
    job.prepare_mount_point()
    raw = job.export_image(job.image) if is_image and job.image.exported else path
    try:
        table, job.volumes = disks.survey(job.run, raw)
    except DiskError as exc:
        if raw == path:
            raise
        # The user knows the image, not the file its export is mounted on.
        raise DiskError(str(exc).replace(raw, f"{path} (read as {job.image.format})")) from exc
    # A device looked at read-only goes through a read-only loop device as an image does: then
    # nothing on the way (a btrfs log replay, LVM) can write to it, whatever its mount options.
    through_loop = is_image or job.readonly
    disk = job.attach_loop(raw) if through_loop else os.path.realpath(path)
    job.map_partitions(disk, is_loop=through_loop)
    volume, subvolume = find_root(job, partition)
    job.mount_root(volume, subvolume)
    if fstab_mounts:
        job.mount_fstab(fstab_mounts)
    if bind_api:
        job.bind_api()
    return table


def find_root(job: Attachment, partition: str) -> tuple[Volume, str]:
    """Look for the root; not found, open one more layer and look again, until nothing new opens:
    LVM on LUKS and LUKS on LVM both come out. (volume, btrfs subvolume or "")."""
    activated: set[str] = set()
    while True:
        try:
            return job.choose_root(partition)
        except NoRootFound:
            if not _open_next_layer(job, activated):
                raise
            job.candidates.clear()


def _open_next_layer(job: Attachment, activated: set[str]) -> bool:
    """Unlock the LUKS volumes not yet open, else activate the LVM physical volumes not yet in
    ``activated``; what they hold joins the volumes. False when nothing is left to open."""
    locked = job.locked_luks()
    if locked:
        job.open_luks(locked)
        return True
    pvs = [v for v in job.volumes if v.fstype == "LVM2_member" and v.device not in activated]
    if not pvs:
        return False
    activated.update(v.device for v in pvs)
    job.activate_lvm(pvs)
    return True


def _refuse_shared_base(image: images.Image) -> None:
    """Writing into an image other images are built on would change what each of them shows."""
    overlays = images.overlays_of(image.path)
    if overlays:
        raise AttachError(
            f"{image.path} is the backing file of {', '.join(overlays)}: writing into it would corrupt "
            "what they show. Repair the overlay that is the broken system's disk (give it as "
            "target_image), or look without writing (target_readonly: true, or --check)"
        )


def _say_what_the_image_is(job: Attachment) -> None:
    image = job.image
    how = "by its header" if image.detected_by == "header" else "as target_image_format says"
    said = f"{image.path} is {image.format} ({how}"
    if image.header_says:
        said += f"; its header says {image.header_says}"
    job.plan.append(said + ")")
    if image.backing_chain:
        writes = "nothing is written" if job.readonly else f"writes go into {image.path} only"
        job.plan.append(f"its backing files, unchanged ({writes}): {', '.join(image.backing_chain)}")
    if image.snapshots:
        job.plan.append(f"its internal snapshots are kept: {', '.join(image.snapshots)}")


def attach(
    job: Attachment,
    kind: str,
    source: str,
    *,
    partition: str = "",
    fstab_mounts: list[str] | None = None,
    bind_api: bool = False,
    image_format: str = "",
) -> str | None:
    """Attach the target ``source`` of ``kind`` (root, image, device; live attaches nothing): the
    partition table type of an image or device, else None. Any failure undoes every step already
    taken, newest first, and raises AttachFailed saying what failed and what was undone."""
    if kind not in (*KINDS, "live"):
        raise AttachError(f"unknown kind of target {kind!r}: give one of {', '.join(KINDS)}")
    try:
        if kind == "root":
            attach_root(job, source, bind_api)
        elif kind in ("image", "device"):
            return attach_disk(
                job, source, kind == "image", partition, fstab_mounts or [], bind_api, image_format
            )
        return None
    except FAILURES as exc:
        try:
            undone, _left = undo(job.run, job.steps)
        except UndoError as undo_exc:
            raise AttachFailed(
                f"{exc}; then undoing failed, state kept in {job.state_file}: {undo_exc}",
                undo_exc.done,
                list(job.steps),
            ) from exc
        if os.path.exists(job.state_file):
            os.unlink(job.state_file)
        raise AttachFailed(str(exc), undone, []) from exc
