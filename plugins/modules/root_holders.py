#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Say which processes still use a filesystem (the old root after a switch), and their systemd units."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: root_holders
short_description: Tell which processes still use a mounted filesystem, and which services to restart
version_added: "0.1.0"
description:
  - Reads /proc (no lsof or fuser needed) for every process whose program, current directory, root
    directory, open files or mapped files (a library) lie under O(path); after C(pivot_root) these
    are the processes that still run from the old root and keep it mounted.
  - Each one is named with its systemd unit (from /proc/PID/cgroup), so that the services among
    them can be restarted to run from the new root.
  - Reads only; it never changes anything.
options:
  path:
    description:
      - The mount point of the filesystem, as this process sees it (the old root's after a switch).
    type: path
    required: true
extends_documentation_fragment:
  - lifeline.rescue.attributes
  - lifeline.rescue.attributes.read_only
notes:
  - Run it as root, so that every process's descriptors and memory maps can be read.
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Find what still runs from the old root
  lifeline.rescue.root_holders:
    path: /mnt/oldroot
  register: holders

- name: Stop when something other than a service still runs from the old root
  lifeline.rescue.root_holders:
    path: /mnt/oldroot
  register: holders
  failed_when: holders.others | length > 0
"""

RETURN = r"""
holders:
  description:
    - Each process that uses something under O(path), with how (C(exe), C(cwd), C(root),
      C(fd N) or C(maps)) and the first such file; C(unit) is its systemd unit, empty when none.
  returned: always
  type: list
  elements: dict
  sample:
    - pid: 812
      comm: app
      unit: app.service
      how: maps
      path: /mnt/oldroot/usr/lib/x86_64-linux-gnu/libc.so.6
services:
  description:
    - The systemd service units of the holders, sorted; PID 1 and login sessions (scopes) are
      left out, since restarting them is not a service restart.
  returned: always
  type: list
  elements: str
  sample: [app.service, cron.service]
others:
  description:
    - Holders that are in no service unit (PID 1, a login session, a process of no unit), as
      C(pid (comm) how path), for a person to end or to leave until the next boot.
  returned: always
  type: list
  elements: str
  sample: ["pid 1 (init) exe /mnt/oldroot/sbin/init"]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts, procfs


def argument_spec() -> dict:
    return {"path": {"type": "path", "required": True}}


def holders_of(path: str, proc: str = "/proc") -> dict:
    """The processes using ``path``, one entry each (the first way found), and their service units."""
    first: dict[int, mounts.Holder] = {}
    for holder in mounts.holders(under=[path], proc=proc):
        first.setdefault(holder.pid, holder)
    listed, services, others = [], set(), []
    for pid in sorted(first):
        holder = first[pid]
        unit = procfs.process(pid, proc).unit
        listed.append({"pid": pid, "comm": holder.comm, "unit": unit, "how": holder.how, "path": holder.path})
        if pid != 1 and unit.endswith(".service"):
            services.add(unit)
        else:
            others.append(holder.describe())
    return {"holders": listed, "services": sorted(services), "others": others}


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    path = module.params["path"].rstrip("/") or "/"
    if path == "/" or not os.path.isdir(path):
        module.fail_json(msg=f"path={path}: give the mount point of a filesystem other than / (a directory)")
    module.exit_json(changed=False, **holders_of(path))


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
