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
  - Copies the filesystem mounted on O(source) to O(destination_device), the migration's new
    storage, then checks the copy
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
  destination_device:
    description:
      - The block device to copy to (an LVM logical volume, a partition, a disk). It must not be
        mounted, and must not share storage with the source.
      - The alias O(target_device) is the name before 0.2.0 (in lifeline, the target is the broken
        system; the new storage is the destination).
    type: path
    required: true
    aliases: [target_device]
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
  - lifeline.rescue.command_timeout
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
    destination_device: /dev/vg0/root
  register: copy

- name: Copy the root as an async job
  lifeline.rescue.root_copy:
    destination_device: /dev/vg0/root
  async: 7200
  poll: 0
  register: copy_job

- name: Move an ext4 root onto a smaller device as xfs, replacing what the device held
  lifeline.rescue.root_copy:
    source: /
    destination_device: /dev/sdb1
    method: file
    fstype: xfs
    overwrite: true
    exclude: [/var/cache/apt/archives]

- name: Say what the copy would do
  lifeline.rescue.root_copy:
    destination_device: /dev/vg0/root
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
destination_device:
  description: The device copied to.
  returned: always
  type: str
  sample: /dev/vg0/root
destination_signatures:
  description: What C(wipefs) found on the destination before the copy (overwritten with O(overwrite)).
  returned: always, once the method is decided
  type: list
  elements: str
  sample: [ext4]
target_device:
  description: The same as RV(destination_device), under its name before 0.2.0; it will be removed.
  returned: always
  type: str
  sample: /dev/vg0/root
target_signatures:
  description: The same as RV(destination_signatures), under its name before 0.2.0; it will be removed.
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import (
    TIME_LIMIT_OPTION,
    ToolTimeout,
    module_runner,
    run_limited,
    time_limit_message,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import copyjob, rootcopy


def argument_spec() -> dict:
    return {
        "source": {"type": "path", "default": "/"},
        "source_device": {"type": "path"},
        "destination_device": {"type": "path", "required": True, "aliases": ["target_device"]},
        "method": {"type": "str", "choices": ["auto", "block", "file"], "default": "auto"},
        "fstype": {"type": "str", "choices": list(rootcopy.MKFS_FSTYPES)},
        "exclude": {"type": "list", "elements": "path", "default": []},
        "progress_path": {"type": "path", "default": "/run/lifeline/copy-progress.json"},
        "overwrite": {"type": "bool", "default": False},
        "grow": {"type": "bool", "default": True},
        "check": {"type": "bool", "default": True},
        "new_uuid": {"type": "bool", "default": False},
        **TIME_LIMIT_OPTION,
    }


# The copy, the check and the growth of a whole filesystem take time in proportion to its size: their
# limit adds the time a slow disk (this many bytes a second) needs for the bytes to copy.
SLOW_DISK_BYTES_PER_SECOND = 10 << 20


def whole_filesystem_limit(command_timeout: int, bytes_total: int) -> int:
    """Seconds cp, mkfs, fsck and resize2fs may take over a filesystem of ``bytes_total`` used bytes."""
    return command_timeout + bytes_total // SLOW_DISK_BYTES_PER_SECOND


def tool_exec(module: AnsibleModule, time_limit: int) -> rootcopy.Exec:
    """Run a tool whose exit code is the answer (fsck): (rc, stdout, stderr), with LC_ALL=C, for at
    most ``time_limit`` seconds."""

    def execute(argv: list[str]) -> tuple[int, str, str]:
        path = module.get_bin_path(argv[0], required=False, opt_dirs=["/usr/sbin", "/sbin"])
        if not path:
            raise rootcopy.CopyError(
                f"{argv[0]} is not installed on this host; install it (e2fsprogs, xfsprogs) and retry"
            )
        try:
            rc, out, err = run_limited([path, *argv[1:]], time_limit, env=dict(os.environ, LC_ALL="C"))
        except ToolTimeout:
            raise rootcopy.CopyError(time_limit_message(argv, time_limit)) from None
        return rc, out.decode("utf-8", "surrogateescape"), err.decode("utf-8", "surrogateescape")

    return execute


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    request = copyjob.CopyRequest(
        destination=params["destination_device"],
        source=os.path.realpath(params["source"]),
        **{key: params[key] for key in ("source_device", "method", "fstype", "exclude", "progress_path")},
        **{key: params[key] for key in ("overwrite", "grow", "check", "new_uuid")},
    )
    result: dict = {
        "changed": False,
        "source": request.source,
        "destination_device": request.destination,
        "progress_path": request.progress_path,
    }
    try:
        run = module_runner(module, params["command_timeout"])
        result.update(copyjob.prepare(run, request), changed=True)
        if not module.check_mode:
            limit = whole_filesystem_limit(params["command_timeout"], result.get("bytes_total") or 0)
            done, warnings = copyjob.carry_out(
                module_runner(module, limit), tool_exec(module, limit), request, result
            )
            result.update(done)
            for warning in warnings:
                module.warn(warning)
    except FAILURES as exc:
        module.fail_json(msg=str(exc), **with_old_names(result))
    module.exit_json(**with_old_names(result))


def with_old_names(result: dict) -> dict:
    """The result with the return values' names before 0.2.0 beside the new ones."""
    renamed = {"target_device": "destination_device", "target_signatures": "destination_signatures"}
    return {**result, **{old: result[new] for old, new in renamed.items() if new in result}}


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
