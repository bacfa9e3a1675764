#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Say whether the live root filesystem can move to another device now, and what would have to stop."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: root_preflight
short_description: Tell whether the live root can move to another device, and what has to stop first
version_added: "0.1.0"
description:
  - Reads /proc, /sys and the mount table of the running system (no lsof or other tool needed) and
    reports everything that stands between the filesystem at O(mount_point) and a move to
    O(root_migrate_device) with C(mount -o remount,ro), a copy and C(pivot_root).
  - Blockers are processes running deleted executables or mapping deleted libraries on it, deleted
    files still open, files open for writing, loop devices backed by files on it, overlays writing
    to it, swap files on it, a shared root mount (C(pivot_root) fails with EINVAL), a target that is
    missing, mounted, in use, on the disk of the root, backed by a file on the root or too small,
    and too little free memory. Each one names the processes behind it with their systemd units.
  - The plan says what the migration would run first, which services it would stop before the
    remount and start after the switch, in order (the SSH server is never stopped, it is restarted
    first), which mounts it would put back, and whether it would copy blocks or files.
  - Reads only; it never changes anything. C(blkid -p) tells the target's filesystem when it is
    installed.
options:
  root_migrate_device:
    description:
      - The block device the root would move to (an LVM logical volume, a partition, a disk).
    type: path
    required: true
  mount_point:
    description:
      - The mount point of the filesystem to move; C(/) for the root.
    type: path
    default: /
  min_free_memory_mb:
    description:
      - Less memory available than this many MiB (MemAvailable of C(/proc/meminfo)) is a blocker.
    type: int
    default: 64
  fstype:
    description:
      - The filesystem the copy is to have, as M(lifeline.rescue.root_copy) is given it; by default
        the type of the filesystem at O(mount_point). Another type means a file copy.
      - A file copy of a filesystem of another type (a container's overlay) needs one.
    type: str
    choices: [ext2, ext3, ext4, xfs]
extends_documentation_fragment:
  - lifeline.rescue.command_timeout
  - lifeline.rescue.attributes
  - lifeline.rescue.attributes.read_only
notes:
  - Run it as root, so that every process's descriptors and memory maps can be read.
  - The RV(ready) result is true when the plan resolves every blocker by itself; blockers with
    C(handled) false (in RV(blockers)) need a person first.
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Check whether / can move to the new logical volume
  lifeline.rescue.root_preflight:
    root_migrate_device: /dev/vg0/root
  register: preflight

- name: Stop unless the plan resolves every blocker by itself
  lifeline.rescue.root_preflight:
    root_migrate_device: /dev/vg0/root
  register: preflight
  failed_when: not preflight.ready

- name: Ask for at least 256 MiB of free memory
  lifeline.rescue.root_preflight:
    root_migrate_device: /dev/sdb1
    min_free_memory_mb: 256

- name: Plan a copy onto a new xfs filesystem
  lifeline.rescue.root_preflight:
    root_migrate_device: /dev/vg0/root
    fstype: xfs
"""

RETURN = r"""
ready:
  description: True when the plan resolves every blocker by itself (every blocker has C(handled) true).
  returned: when the preflight ran
  type: bool
  sample: false
blockers:
  description:
    - What keeps the migration from going ahead, each with C(kind), C(detail), C(action) (what to
      do), C(path), C(processes) (C(pid), C(comm) and the systemd C(unit), empty when none) and
      C(handled) (the plan resolves it).
    - Kinds are deleted_executable, deleted_library, deleted_open, open_for_writing, loop_on_root,
      overlay_on_root, swap_on_root, shared_propagation, initramfs_root, target_not_block_device,
      target_unknown, target_holds_root, target_on_root_disk, target_mounted, target_in_use,
      target_backed_by_root, target_too_small, copy_needs_fstype (a file copy cannot make the
      type of the filesystem, give O(fstype)) and low_memory.
  returned: when the preflight ran
  type: list
  elements: dict
  sample:
    - kind: open_for_writing
      detail: /var/log/app.log is open for writing in pid 812 (app)
      action: stop it before / is remounted read-only; start it again after the switch
      path: /var/log/app.log
      processes: [{pid: 812, comm: app, unit: app.service}]
      handled: true
notes:
  description:
    - What the migration takes care of after the switch, or worth knowing, in the form of
      RV(blockers); kinds are network_mount, fuse_mount, socket_on_root, target_has_filesystem,
      init_cannot_reexec and loop_maybe_on_root (a loop device with no node here to ask the
      kernel, whose backing file's name falls on the filesystem; in a container, often the host's).
  returned: when the preflight ran
  type: list
  elements: dict
  sample:
    - kind: socket_on_root
      detail: /var/lib/app/app.sock is a unix socket bound on / by pid 812 (app)
      action: restart its server after the switch
      path: /var/lib/app/app.sock
      processes: [{pid: 812, comm: app, unit: app.service}]
      handled: false
plan:
  description:
    - The steps, in order. C(prepare) are commands run before anything is stopped; C(stop) the
      systemd units stopped before the remount, in order; C(restart_first) the SSH server's unit,
      restarted first after the switch; C(reexec_init) the command that re-executes PID 1;
      C(start) the stopped units, started after the switch; C(restart) units that keep running but
      must restart after the switch; C(finish) commands run last.
    - C(move_mounts) lists the mounts under the mount point in the order they go back after
      C(pivot_root), each with C(mount_point), C(fstype), C(source), C(kind) (api, bind, network,
      fuse, overlay, other) and C(action) (move, rebind, or carried along by its parent's move).
    - C(copy) is the copy method, block or file (empty when the target cannot take the data), with
      its C(reason) and the C(bytes) to copy.
  returned: when the preflight ran
  type: dict
  sample:
    prepare: [mount --make-rprivate /]
    stop: [app.service, rsyslog.service]
    restart_first: [ssh.service]
    reexec_init: systemctl daemon-reexec
    start: [rsyslog.service, app.service]
    restart: []
    finish: []
    move_mounts: [{mount_point: /proc, fstype: proc, source: proc, kind: api, action: move}]
    copy: {method: block, reason: the target is at least as large and keeps ext4, bytes: 10737418240}
facts:
  description:
    - What the decisions rest on. Sizes are in bytes; C(device) is the major and minor number.
      C(init) has C(name) (systemd, sysvinit, other), C(comm), C(exe), C(systemctl) (usable) and
      C(reexec). C(target.fstype) is null when blkid is not installed or cannot read the device.
    - C(used_bytes) comes from statvfs (C(used_counted_by) statvfs) unless the filesystem has no
      block device of its own (an overlay answers statvfs for its upper layer's whole filesystem), so
      that its files are counted (C(used_counted_by) files).
  returned: when the preflight ran
  type: dict
  sample:
    mount_point: /
    source: /dev/sda1
    fstype: ext4
    device: "8:1"
    device_name: sda1
    device_bytes: 10737418240
    size_bytes: 10464022528
    used_bytes: 2147483648
    used_counted_by: statvfs
    propagation: "shared:1"
    init: {name: systemd, comm: systemd, exe: /usr/lib/systemd/systemd, systemctl: true,
           reexec: systemctl daemon-reexec}
    memory: {available_bytes: 1610612736, required_bytes: 67108864}
    target: {path: /dev/vg0/root, device: "254:1", name: dm-1, disk: dm-1, size_bytes: 21474836480,
             fstype: ""}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.host import disks
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import (
    TIME_LIMIT_OPTION,
    ToolTimeout,
    run_limited,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import preflight


def argument_spec() -> dict:
    return {
        "root_migrate_device": {"type": "path", "required": True},
        "mount_point": {"type": "path", "default": "/"},
        "min_free_memory_mb": {"type": "int", "default": 64},
        "fstype": {"type": "str", "choices": list(preflight.FILE_COPY_FSTYPES)},
        **TIME_LIMIT_OPTION,
    }


def target_fstype(module: AnsibleModule, device: str) -> str | None:
    """The filesystem blkid finds on the target, "" when none, None when blkid is missing or cannot read it.

    blkid exits 2 both when it recognises nothing and when it cannot open the device, so its exit
    code alone does not tell an empty device from an unreadable one: its error output does.
    """
    blkid = module.get_bin_path("blkid", opt_dirs=["/usr/sbin", "/sbin"])
    if not blkid:
        return None
    argv = [blkid, "--probe", "--output", "udev", device]
    try:
        rc, raw_out, raw_err = run_limited(
            argv, module.params["command_timeout"], env=dict(os.environ, LC_ALL="C")
        )
    except (ToolTimeout, OSError) as exc:
        module.warn(f"blkid could not read {device}: {exc}; its filesystem type is unknown")
        return None
    out, err = raw_out.decode("utf-8", "surrogateescape"), raw_err.decode("utf-8", "surrogateescape")
    if rc == 0:
        return disks.parse_blkid_udev(out).get("TYPE", "")
    if rc == 2 and not err.strip():
        return ""
    module.warn(f"blkid could not read {device} (exit {rc}): {err.strip()}; its filesystem type is unknown")
    return None


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    result: dict = {"changed": False}
    if params["min_free_memory_mb"] < 0:
        module.fail_json(msg=f"min_free_memory_mb={params['min_free_memory_mb']}: give 0 or more", **result)
    target = preflight.target_of(params["root_migrate_device"])
    if target.devno is not None:
        target = preflight.Target(target.path, target.devno, target_fstype(module, target.path))
    try:
        found = preflight.run_preflight(
            target,
            mount_point=params["mount_point"],
            min_free_memory=params["min_free_memory_mb"] << 20,
            new_fstype=params["fstype"] or "",
        )
    except FAILURES as exc:
        module.fail_json(msg=f"the preflight of {params['mount_point']} could not run: {exc}", **result)
    result.update(found.as_dict())
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
