#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attach a broken system's root (a directory, a disk image of any common format or a block device)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rescue_attach
short_description: Make a broken system's root filesystem available on a rescue host
version_added: "0.1.0"
description:
  - Given a directory, a disk image or a block device holding a broken Linux system, makes its
    root filesystem available at a mount point on the rescuer and records every step it took.
  - An image may be raw, qcow2 (with a backing chain and internal snapshots), vmdk, vhdx, vpc (VHD)
    or vdi. Its format comes from the file's own header, never from its name (O(image_format)
    forces one). An image that is not raw is shown as a raw file by C(qemu-storage-daemon)'s FUSE
    export, in place (no copy), each layer of a backing chain opened with its format named; only
    the top image is ever written, and an image that other images in its directory are built on is
    refused for writing.
  - An image or device that a process holds open (a running virtual machine), or a device mounted
    on the rescuer, is refused with the process or mount named; a read-only look is allowed.
  - With an image or a device it finds the partitions (msdos or gpt) with C(partx), identifies each
    filesystem with C(blkid), picks the root as the filesystem holding C(etc/os-release) and
    C(etc/fstab) (or the one named by O(target_partition)), mounts it read-write, mounts the
    target's own C(/boot), C(/usr) or C(/var) from its fstab, and can bind the rescuer's C(/dev),
    C(/proc), C(/sys) and C(/run) into it for a chroot step.
  - A root on LVM is activated, the volume group renamed on the fly when the rescuer has one of the
    same name (and back when detached); a rescuer without device-mapper gets one clear error.
  - A LUKS1 or LUKS2 partition or logical volume is unlocked with O(luks_key_file) or
    O(luks_passphrase) when the root is not found outside it, under a device-mapper name of its own
    (C(lifeline-<mount point>-<n>)), and looked into in turn, so LVM on LUKS and LUKS on LVM both work.
    The mapping is closed when detached.
  - A volume group with the UUID of one active on the rescuer (a disk copied from the rescuer's own
    image) is refused before anything is activated, since activating it would give back the
    rescuer's own volumes.
  - Every step is written to a state file as it happens; M(lifeline.rescue.rescue_detach) undoes
    them in reverse. When attaching fails half way, what was done is undone before the error.
  - With O(readonly), and always in check mode, nothing of the target is written. Loop devices and
    exports read-only, ext4 mounted C(ro,noload), xfs C(ro,norecovery), btrfs C(ro),
    volume groups activated read-only without writing metadata; the recoveries' checks then look at
    the whole target, so check mode shows their full plan for an image or a device too.
  - Without any target the module reports the live root C(/) and attaches nothing.
options:
  target_root:
    description:
      - A directory where the broken root is already mounted. It must look like a Linux root and
        must not be the rescuer's own running C(/).
    type: path
  target_image:
    description:
      - A disk image file (raw, qcow2, vmdk, vhdx, vpc, vdi); attached read-write to a free loop
        device, through a C(qemu-storage-daemon) export when it is not raw.
    type: path
  image_format:
    description:
      - The format of O(target_image), when its header is not to be trusted (a raw disk whose first
        sector a guest filled with another format's header).
    type: str
    choices: [raw, qcow2, vmdk, vhdx, vpc, vdi]
  readonly:
    description: Attach without writing anything to the target (implied by check mode).
    type: bool
    default: false
  undo_earlier:
    description:
      - When an earlier attachment at the same mount point is still recorded (a run that was killed),
        undo it first instead of failing. Only when no other run is using it.
    type: bool
    default: false
  target_device:
    description: A block device holding the broken system's disk, or one of its partitions.
    type: path
  target_partition:
    description:
      - Which filesystem is the root when the disk holds several. A partition number, C(UUID=...),
        C(LABEL=...), C(PARTUUID=...), or C(VG/LV) for a logical volume.
    type: str
  mount_point:
    description: Where the root of an image or device is mounted; created when missing, must be empty.
    type: path
    default: /mnt/lifeline
  fstab_mounts:
    description:
      - Mount points of the target's own fstab to mount as well, when the filesystem they name is on
        the target's disk. An empty list mounts only the root.
    type: list
    elements: str
    default: [/boot, /boot/efi, /usr, /var]
  bind_api:
    description: Bind the rescuer's C(/dev), C(/dev/pts), C(/proc), C(/sys) and C(/run) into the root.
    type: bool
    default: false
  luks_key_file:
    description:
      - A key file on the rescuer that unlocks the target's LUKS volumes (its whole content is the key,
        as C(cryptsetup --key-file) reads it).
      - Needed only when the root is inside LUKS; without it and O(luks_passphrase) such a target fails,
        naming its LUKS volumes.
    type: path
  luks_passphrase:
    description:
      - A passphrase that unlocks the target's LUKS volumes, given to C(cryptsetup) on its standard
        input, never on a command line; not logged.
    type: str
extends_documentation_fragment:
  - lifeline.rescue.command_timeout
  - lifeline.rescue.attributes
attributes:
  check_mode:
    support: full
    details:
      - Attaches an image or a device read-only (as O(readonly)), so the checks that follow see it.
      - Binds no API filesystem into the target.
  diff_mode:
    support: none
notes:
  - Needs C(losetup), C(partx), C(blkid) and C(mount) from util-linux on the rescuer, C(lvm2) for LVM,
    C(qemu-img) and C(qemu-storage-daemon) (qemu-utils, qemu-system-common) for an image that is not
    raw, and C(cryptsetup) (Debian's C(cryptsetup-bin)) for LUKS.
seealso:
  - module: lifeline.rescue.rescue_detach
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Attach a virtual machine's raw disk image
  lifeline.rescue.rescue_attach:
    target_image: /var/lib/vz/images/108/vm-108-disk-1.raw
  register: attached

- name: Look inside a running guest's qcow2 disk without writing to it
  lifeline.rescue.rescue_attach:
    target_image: /var/lib/libvirt/images/web1.qcow2
    readonly: true

- name: Attach a disk of a rescue instance, root chosen by label, ready for chroot
  lifeline.rescue.rescue_attach:
    target_device: /dev/vdb
    target_partition: LABEL=cloudimg-rootfs
    bind_api: true

- name: Attach a disk whose root is on LVM inside LUKS, unlocked with a key file
  lifeline.rescue.rescue_attach:
    target_device: /dev/vdb
    luks_key_file: /root/vdb.key

- name: Check a root a rescue system already mounted
  lifeline.rescue.rescue_attach:
    target_root: /mnt/sysimage
"""

RETURN = r"""
root:
  description: Where the target's root is now, as seen from the rescuer (C(/) in live mode).
  returned: always
  type: str
  sample: /mnt/lifeline
kind:
  description: How the target was given.
  returned: always
  type: str
  sample: image
live:
  description: True when no target was given and the running system itself is the target.
  returned: always
  type: bool
  sample: false
os_release:
  description: The target's os-release fields, read inside its root (empty in check mode for a disk).
  returned: always
  type: dict
  sample: {ID: debian, VERSION_ID: "12", PRETTY_NAME: Debian GNU/Linux 12 (bookworm)}
image:
  description:
    - What the image is, when one is given - V(format), how it was found (V(detected_by) C(header) or
      C(target_image_format)), V(backing_chain), V(snapshots), V(virtual_size), and V(exported) (seen
      through qemu-storage-daemon).
  returned: when an image is given, also when attaching it failed once its format was known
  type: dict
  sample: {format: qcow2, detected_by: header, backing_chain: [/srv/base.qcow2], snapshots: [before-upgrade]}
readonly:
  description: Whether the target was attached read-only.
  returned: always
  type: bool
  sample: false
earlier_undone:
  description: What was undone of an earlier attachment left by a killed run (O(undo_earlier)).
  returned: always
  type: list
  elements: str
  sample: [unmounted /mnt/lifeline, detached /dev/loop3 (/srv/vm.raw)]
partition_table:
  description: The disk's partition table type (C(dos), C(gpt)), empty for a whole-disk filesystem.
  returned: when an image or a device is given
  type: str
  sample: gpt
volumes:
  description: Every partition, whole-disk filesystem or logical volume found, with its filesystem.
  returned: always
  type: list
  elements: dict
  sample: [{name: partition 1, fstype: ext4, uuid: 1f0b..., device: /dev/loop3p1, number: 1},
           {name: inside LUKS partition 2, fstype: LVM2_member, luks: partition 2,
            device: /dev/mapper/lifeline-mnt-lifeline-1}]
root_volume:
  description: The volume mounted as the root.
  returned: when an image or a device was attached
  type: dict
  sample: {name: partition 2, fstype: xfs, device: /dev/loop3p2}
candidates:
  description: Each filesystem probed for a root and what was found on it.
  returned: always
  type: list
  elements: dict
  sample: [{volume: partition 1 ext4 /dev/loop3p1, root: false, why: no etc/os-release with etc/fstab}]
steps:
  description: The reversible steps taken, oldest first; M(lifeline.rescue.rescue_detach) undoes them.
  returned: always
  type: list
  elements: dict
  sample: [{action: loop, device: /dev/loop3, backing: /srv/vm.raw}, {action: mount, target: /mnt/lifeline}]
plan:
  description: What was done, or in check mode what would be done, one sentence a step.
  returned: always
  type: list
  elements: str
  sample: [attached /srv/vm.raw to /dev/loop3, mounted partition 1 ext4 at /mnt/lifeline]
not_mounted:
  description: Optional mounts that were not made, and why.
  returned: always
  type: list
  elements: str
  sample: ["/boot: /dev/sda1 (fstab line 3) is not on the target's disk"]
state_file:
  description: The file on the rescuer that records the steps until they are undone.
  returned: always
  type: str
  sample: /run/lifeline/attachments/mnt-lifeline.json
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.attach.attachment import (
    Attachment,
    state_file_for,
    undo_recorded,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.attach.target import attach
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.host import images, luks
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import (
    TIME_LIMIT_OPTION,
    module_runner,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs


def argument_spec() -> dict:
    return {
        "target_root": {"type": "path"},
        "target_image": {"type": "path"},
        "target_device": {"type": "path"},
        "target_partition": {"type": "str"},
        "mount_point": {"type": "path", "default": "/mnt/lifeline"},
        "fstab_mounts": {
            "type": "list",
            "elements": "str",
            "default": ["/boot", "/boot/efi", "/usr", "/var"],
        },
        "bind_api": {"type": "bool", "default": False},
        "image_format": {"type": "str", "choices": list(images.FORMATS)},
        "readonly": {"type": "bool", "default": False},
        "undo_earlier": {"type": "bool", "default": False},
        "luks_key_file": {"type": "path", "no_log": False},  # a path, not the key
        "luks_passphrase": {"type": "str", "no_log": True},
        **TIME_LIMIT_OPTION,
    }


def luks_key(params: dict) -> luks.Key | None:
    if params["luks_key_file"]:
        return luks.Key(key_file=params["luks_key_file"])
    if params["luks_passphrase"]:
        return luks.Key(passphrase=params["luks_passphrase"].encode("utf-8", "surrogateescape"))
    return None


def run_module() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[
            ("target_root", "target_image", "target_device"),
            ("luks_key_file", "luks_passphrase"),
        ],
        supports_check_mode=True,
    )
    params = module.params
    # One spelling per root, so the state file of an attachment is found again by the detach.
    root = os.path.realpath(params["target_root"] or params["mount_point"])
    run = module_runner(module, params["command_timeout"])
    job = Attachment(
        run=run,
        mount_point=root,
        readonly=params["readonly"] or module.check_mode,
        state_file=state_file_for(root),
        luks_key=luks_key(params),
    )
    kind = next((k for k in ("root", "image", "device") if params[f"target_{k}"]), "live")
    result = {
        "changed": False,
        "kind": kind,
        "live": kind == "live",
        "root": "/" if kind == "live" else root,
        "os_release": {},
        "volumes": [],
        "candidates": [],
        "steps": job.steps,
        "plan": job.plan,
        "not_mounted": job.not_mounted,
        "state_file": job.state_file,
        "readonly": job.readonly,
        "earlier_undone": [],
    }
    if os.path.exists(job.state_file):
        if not params["undo_earlier"]:
            module.fail_json(
                msg=f"an earlier attachment at {root} is still recorded in {job.state_file} (a run that "
                "was killed or could not detach): if no other run is using it, run again with "
                "-e rescue_mount_undo_earlier=true (module option undo_earlier) to undo it first",
                **result,
            )
        try:
            result["earlier_undone"] = undo_recorded(run, job.state_file, root)
        except FAILURES as exc:
            module.fail_json(msg=f"undoing the earlier attachment failed: {exc}", **result)
    sources = {"root": root, "image": params["target_image"], "device": params["target_device"], "live": ""}
    try:
        table = attach(
            job,
            kind,
            sources[kind],
            partition=params["target_partition"] or "",
            fstab_mounts=params["fstab_mounts"],
            bind_api=params["bind_api"] and not module.check_mode,
            image_format=params["image_format"] or "",
        )
    except FAILURES as exc:
        result.update(
            volumes=[v.as_dict() for v in job.volumes],
            candidates=job.candidates,
            undone=getattr(exc, "undone", []),
            steps=getattr(exc, "steps_left", job.steps),
        )
        if job.image:
            result["image"] = job.image.as_dict()
        module.fail_json(msg=str(exc), **result)
    if table is not None:
        result["partition_table"] = table
    if job.image:
        result["image"] = job.image.as_dict()
    if job.root_volume:
        result["root_volume"] = job.root_volume.as_dict()
    result["os_release"] = rootfs.os_release(result["root"])
    result.update(
        changed=bool(job.steps), volumes=[v.as_dict() for v in job.volumes], candidates=job.candidates
    )
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
