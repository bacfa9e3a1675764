#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy a mounted root filesystem to a new device, check the copy and grow it to the device."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: root_copy
short_description: Copy the root filesystem to a new device, block by block or file by file
version_added: "0.1.0"
description:
  - Copies the filesystem mounted on O(source) to O(target_device), then checks the copy
    (C(e2fsck -f -p) or C(xfs_repair -n)) and grows it to the whole device.
  - A block copy (a C(dd) done in Python) carries the filesystem as it is, UUID included; it is
    chosen when the filesystem type stays, it is ext2, ext3, ext4 or xfs, and the target is at
    least as large as the source device. The source must be mounted read-only (or not at all) for
    it; the migration remounts C(/) read-only first.
  - A file copy makes a new filesystem of type O(fstype) on the target and copies the files with
    C(cp), keeping owners, modes, times, hard links, symbolic links, device nodes, FIFOs, sparse
    files, POSIX ACLs, extended attributes and SELinux labels. It is chosen when the type changes
    or the target is smaller than the source device (it needs room for the used bytes and 10%).
    It stays on the source's filesystem; other mounts below it become empty directories.
  - While the copy runs, its progress (bytes done of bytes total) is written to O(progress_path)
    at most once a second, replaced atomically, so that a task can read it while the module runs
    as an async job. See RV(progress_path) for its format.
  - In check mode it says which method it would use and how many bytes it would copy, and refuses
    what a real run would refuse on the target; it writes nothing.
options:
  source:
    description:
      - The mount point of the filesystem to copy, C(/) for the running root.
    type: path
    default: /
  source_device:
    description:
      - The block device the source filesystem is on. By default the device mounted on O(source),
        found in C(/proc/self/mountinfo). A block copy reads it.
    type: path
  target_device:
    description:
      - The block device to copy to (an LVM logical volume, a partition, a disk). It must not be
        mounted, and must not share storage with the source.
    type: path
    required: true
  method:
    description:
      - C(block) copies the device, C(file) copies the files onto a new filesystem, C(auto) chooses
        as the description says.
    type: str
    choices: [auto, block, file]
    default: auto
  fstype:
    description:
      - The filesystem a file copy makes on the target. By default the source's type. Another type
        than the source's means a file copy.
    type: str
    choices: [ext2, ext3, ext4, xfs]
  exclude:
    description:
      - Paths under O(source) that a file copy leaves out. An excluded directory is copied as an
        empty directory with its owner and mode (a mount point stays a mount point). Hard links
        between files on either side of an excluded path's parent directories are copied as
        separate files.
    type: list
    elements: path
    default: []
  progress_path:
    description:
      - Where the progress of the copy is written. It must be on a writable filesystem other than
        the source (C(/run) is a tmpfs).
    type: path
    default: /run/lifeline/copy-progress.json
  overwrite:
    description:
      - Copy onto a target that holds a filesystem, a partition table or any other signature
        C(wipefs) finds. Without it such a target is refused and nothing is written.
    type: bool
    default: false
  grow:
    description:
      - Grow the filesystem of a block copy to the whole target device (C(resize2fs) offline,
        C(xfs_growfs) on a temporary mount). A file copy's new filesystem spans the device already.
    type: bool
    default: true
  check:
    description:
      - Check the copy after it is made and fail when it has errors. An ext2/3/4 block copy that is
        grown is checked anyway, since C(resize2fs) requires it.
    type: bool
    default: true
  new_uuid:
    description:
      - After a block copy, give the copy a filesystem UUID of its own (C(tune2fs -U random),
        C(xfs_admin -U generate)), so that fstab can name it by UUID while the old device is still
        attached. A file copy always has its own.
    type: bool
    default: false
extends_documentation_fragment:
  - lifeline.rescue.attributes
attributes:
  check_mode:
    support: full
    details: Reports the method and sizes, and refuses what a real run would refuse; writes nothing.
  diff_mode:
    support: none
notes:
  - Run it as root. Run it as an async task (C(async), C(poll 0)) to read the progress while it runs,
    for example with M(ansible.builtin.slurp) of O(progress_path) retried C(until) its C(state) is
    no longer C(running), then M(ansible.builtin.async_status) for the result.
  - A block copy leaves two filesystems with one UUID, the source and the copy. Mount the copy by
    its device, and name it by UUID in fstab only once the old device is out of the way, or give
    the copy a new UUID (O(new_uuid)). An xfs copy mounts beside its source only
    with C(-o nouuid).
seealso:
  - module: lifeline.rescue.root_preflight
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Copy the read-only root to the new logical volume, choosing the method
  lifeline.rescue.root_copy:
    target_device: /dev/vg0/root
  register: copy

- name: Copy the root as an async job
  lifeline.rescue.root_copy:
    target_device: /dev/vg0/root
  async: 7200
  poll: 0
  register: copy_job

- name: Move an ext4 root onto a smaller device as xfs, replacing what the device held
  lifeline.rescue.root_copy:
    source: /
    target_device: /dev/sdb1
    method: file
    fstype: xfs
    overwrite: true
    exclude: [/var/cache/apt/archives]

- name: Say what the copy would do
  lifeline.rescue.root_copy:
    target_device: /dev/vg0/root
  check_mode: true
"""

RETURN = r"""
method:
  description: The copy method, C(block) or C(file).
  returned: always, once the method is decided
  type: str
  sample: block
reason:
  description: Why this method (or why no copy is possible).
  returned: always, once the method is decided
  type: str
  sample: the target (21474836480 bytes) is at least as large as the device of / and keeps ext4
fstype:
  description: The filesystem type of the copy.
  returned: always, once the method is decided
  type: str
  sample: ext4
source:
  description: The mount point copied.
  returned: always
  type: str
  sample: /
source_device:
  description: The device the source filesystem is on; null when it is on none (a file copy only).
  returned: always, once the method is decided
  type: str
  sample: /dev/sda1
target_device:
  description: The device copied to.
  returned: always
  type: str
  sample: /dev/vg0/root
target_signatures:
  description: What C(wipefs) found on the target before the copy (overwritten with O(overwrite)).
  returned: always, once the method is decided
  type: list
  elements: str
  sample: [ext4]
bytes_total:
  description:
    - Bytes to copy. A block copy copies the whole source device; a file copy's total is the used
      bytes of the source filesystem (statvfs), or the bytes of its files when it has no block
      device (an overlay, whose statvfs is that of its upper layer's filesystem).
  returned: always, once the method is decided
  type: int
  sample: 10737418240
bytes_done:
  description: Bytes copied; equal to RV(bytes_total) after a copy, 0 in check mode.
  returned: always, once the method is decided
  type: int
  sample: 10737418240
seconds:
  description: How long the copy itself took.
  returned: when the copy ran
  type: float
  sample: 93.412
rate:
  description: The copy's average rate, bytes per second.
  returned: when the copy ran
  type: int
  sample: 114947153
fsck:
  description:
    - The check of the copy. C(command) as run, C(rc) its exit code, C(ok), C(verdict) (what the
      code means) and C(output). Null when not checked.
  returned: when the copy ran
  type: dict
  sample: {command: [e2fsck, -f, -p, /dev/vg0/root], rc: 0, ok: true, verdict: clean,
           output: "/dev/vg0/root: 41321/655360 files (0.2% non-contiguous), 546133/2621440 blocks"}
grow:
  description:
    - Size of the copy's filesystem in bytes, C(before) and C(after) growing it to the device. Null
      when O(grow) is false.
  returned: when the copy ran
  type: dict
  sample: {before: 10737418240, after: 21474836480}
uuid:
  description: The filesystem UUID of the copy, as fstab names it.
  returned: when the copy ran
  type: str
  sample: 2f9c7a4e-1b62-4f0e-9d1e-7f0c3a5b8e21
uuid_shared:
  description:
    - True when the copy carries the UUID of the source (a block copy without O(new_uuid)); see the notes.
  returned: when the copy ran
  type: bool
  sample: true
progress_path:
  description:
    - The progress file. Its JSON object has C(method), C(state) (running, done or failed),
      C(bytes_done), C(bytes_total), C(percent), C(started) and C(updated) (Unix time), C(seconds),
      C(rate) (bytes per second), C(eta_seconds) (null when unknown) and C(error) (the message of a
      failed copy). It is rewritten at most once a second, by renaming a complete file over it.
  returned: always
  type: str
  sample: /run/lifeline/copy-progress.json
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner, module_runner
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import preflight, rootcopy


def argument_spec() -> dict:
    return {
        "source": {"type": "path", "default": "/"},
        "source_device": {"type": "path"},
        "target_device": {"type": "path", "required": True},
        "method": {"type": "str", "choices": ["auto", "block", "file"], "default": "auto"},
        "fstype": {"type": "str", "choices": list(rootcopy.MKFS_FSTYPES)},
        "exclude": {"type": "list", "elements": "path", "default": []},
        "progress_path": {"type": "path", "default": "/run/lifeline/copy-progress.json"},
        "overwrite": {"type": "bool", "default": False},
        "grow": {"type": "bool", "default": True},
        "check": {"type": "bool", "default": True},
        "new_uuid": {"type": "bool", "default": False},
    }


def tool_exec(module: AnsibleModule) -> rootcopy.Exec:
    """Run a tool whose exit code is the answer (fsck): (rc, stdout, stderr), with LC_ALL=C."""

    def execute(argv: list[str]) -> tuple[int, str, str]:
        path = module.get_bin_path(argv[0], required=False, opt_dirs=["/usr/sbin", "/sbin"])
        if not path:
            raise rootcopy.CopyError(
                f"{argv[0]} is not installed on this host; install it (e2fsprogs, xfsprogs) and retry"
            )
        return module.run_command([path, *argv[1:]], environ_update={"LC_ALL": "C"})

    return execute


def device_of(mount: mounts.Mount) -> str | None:
    """The block device node of a mount: its source when that is the device, else /dev/block/MAJ:MIN."""
    for node in (mount.source, f"/dev/block/{mount.major}:{mount.minor}"):
        try:
            if node.startswith("/dev/") and rootcopy.devno_of(node) == mount.devno:
                return node
        except rootcopy.CopyError:
            continue
    return None


def used_by(source: str, source_device: str | None) -> int:
    """The bytes a file copy of ``source`` carries: statvfs's used bytes for a filesystem on a block
    device, its files counted otherwise (an overlay answers statvfs for its upper layer's filesystem)."""
    return mounts.usage_of(source)[1] if source_device else mounts.tree_bytes(source)


def decide(params: dict, mount: mounts.Mount, source_device: str | None, used: int) -> dict:
    """Method, reason, fstype and bytes of the copy asked for; CopyError when it cannot be done."""
    target = params["target_device"]
    source_bytes = rootcopy.device_size(source_device) if source_device else None
    target_bytes = rootcopy.device_size(target)
    new_fstype = params["fstype"] or ""
    auto = preflight.choose_copy(mount.fstype, new_fstype, source_bytes, used, target_bytes)
    method = auto["method"] if params["method"] == "auto" else params["method"]
    reason = auto["reason"]
    if params["method"] != "auto":
        reason = f"asked for (method={method}); auto would choose {auto['method'] or 'no copy'}: {reason}"
    if not method:
        raise rootcopy.CopyError(f"{params['source']} cannot be copied to {target}: {auto['reason']}")
    if method == "block":
        if new_fstype and new_fstype != mount.fstype:
            raise rootcopy.CopyError(
                f"a block copy keeps {mount.fstype}; fstype={new_fstype} needs method=file or auto"
            )
        if source_device is None:
            raise rootcopy.CopyError(
                f"{params['source']} is not on a block device ({mount.source}): give source_device or "
                "use method=file"
            )
        if mount.fstype not in preflight.BLOCK_COPY_FSTYPES:
            raise rootcopy.CopyError(
                f"a block copy of {mount.fstype} would give two filesystems one UUID, which "
                f"{mount.fstype} cannot tell apart; use method=file"
            )
        if target_bytes < source_bytes:
            raise rootcopy.CopyError(
                f"{target} ({target_bytes} bytes) is smaller than {source_device} ({source_bytes} bytes): "
                "a block copy needs a target at least as large; use method=file or a larger device"
            )
        return {"method": method, "reason": reason, "fstype": mount.fstype, "bytes_total": source_bytes}
    fstype = new_fstype or mount.fstype
    if fstype not in rootcopy.MKFS_FSTYPES:
        raise rootcopy.CopyError(
            f"a file copy makes ext2, ext3, ext4 or xfs, and the source is {mount.fstype}: give fstype"
        )
    return {"method": method, "reason": reason, "fstype": fstype, "bytes_total": used}


def copy_files(run: Runner, params: dict, fstype: str, total: int) -> rootcopy.CopyResult:
    """Make the new filesystem, mount it beside the progress file, copy into it, unmount it."""
    target, progress_path = params["target_device"], params["progress_path"]
    directory = os.path.dirname(progress_path) or "."
    os.makedirs(directory, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="copy-target.", dir=directory)
    try:
        rootcopy.prepare_target(run, target, fstype, overwrite=params["overwrite"])
        run(["mount", "-t", fstype, target, scratch])
        try:
            return rootcopy.file_copy(
                run, params["source"], scratch, progress_path, exclude=params["exclude"], total=total
            )
        finally:
            run(["umount", scratch])
    finally:
        os.rmdir(scratch)


def run_copy(module: AnsibleModule, result: dict) -> None:
    """The copy, its check, its growth and its UUID, into ``result``."""
    params, run = module.params, module_runner(module)
    target = params["target_device"]
    if result["method"] == "block":
        copied = rootcopy.block_copy(result["source_device"], target, params["progress_path"])
    else:
        copied = copy_files(run, params, result["fstype"], result["bytes_total"])
    result.update(copied.as_dict())
    result.update(fsck=None, grow=None)
    is_ext = result["fstype"] in rootcopy.EXT_FSTYPES
    growing = params["grow"] and result["method"] == "block"
    if params["check"] or (growing and is_ext):
        fsck = rootcopy.check_copy(tool_exec(module), target, result["fstype"])
        result["fsck"] = fsck.as_dict()
        if not fsck.ok:
            raise rootcopy.CopyError(
                f"the copy on {target} fails its check ({fsck.verdict}, {fsck.command[0]} exit {fsck.rc}); "
                "see fsck.output; the source is unchanged"
            )
    if growing:
        scratch_dir = os.path.dirname(params["progress_path"]) or "."  # writable while / is read-only
        result["grow"] = rootcopy.grow(run, target, result["fstype"], scratch_dir=scratch_dir).as_dict()
    elif params["grow"]:
        size = rootcopy.filesystem_size(run, target, result["fstype"])
        result["grow"] = {"before": size, "after": size}
    result["uuid"] = rootcopy.filesystem_uuid(run, target)
    result["uuid_shared"] = result["method"] == "block"  # dd copies the superblock, UUID and all
    if result["uuid_shared"] and params["new_uuid"]:
        result["uuid"] = rootcopy.give_new_uuid(run, target, result["fstype"])
        result["uuid_shared"] = False
    if result["uuid_shared"]:
        module.warn(
            f"{target} and {result['source_device']} both carry the filesystem UUID {result['uuid']}: "
            "mount the copy by its device until the old one is gone, or give the copy a new UUID"
        )


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    params["source"] = os.path.realpath(params["source"])
    result: dict = {
        "changed": False,
        "source": params["source"],
        "target_device": params["target_device"],
        "progress_path": params["progress_path"],
    }
    try:
        mount = mounts.mount_at(mounts.read_mountinfo(), params["source"])
        if mount is None:
            raise rootcopy.CopyError(
                f"nothing is mounted on {params['source']}: give the mount point of the filesystem to copy"
            )
        source_device = params["source_device"] or device_of(mount)
        target = params["target_device"]
        rootcopy.devno_of(target)  # a block device, or a CopyError that says what was given
        if source_device and rootcopy.overlapping(source_device, target):
            raise rootcopy.CopyError(
                f"{target} is {source_device} or shares storage with it: give another target device"
            )
        rootcopy.refuse_mounted(target, "the copy would overwrite a filesystem in use")
        result.update(decide(params, mount, source_device, used_by(params["source"], source_device)))
        result.update(source_device=source_device, bytes_done=0)
        run = module_runner(module)
        result["target_signatures"] = rootcopy.refuse_used_target(run, target, params["overwrite"])
        result["changed"] = True
        if not module.check_mode:
            run_copy(module, result)
    except FAILURES as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
