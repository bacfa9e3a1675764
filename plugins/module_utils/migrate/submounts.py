# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mounts below the root and how each goes back after the switch: the kernel's own trees first
(/proc, /sys, /dev, /run), then the rest by depth; the root switch (pivot) and the preflight's
findings both read it."""

from __future__ import annotations

import os

from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.host.mounts import Mount
from ansible_collections.lifeline.rescue.plugins.module_utils.host.procfs import Devno

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
