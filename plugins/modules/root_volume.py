#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the LVM logical volume a root moves to, refusing any device that holds something."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: root_volume
short_description: Make the LVM logical volume a live root moves to
version_added: "0.1.0"
description:
  - Makes logical volume O(lv) in volume group O(vg), making the volume group on O(pvs) first when
    it does not exist (C(pvcreate), C(vgcreate), C(lvcreate)).
  - Refuses, before any command runs, a device that holds a partition table, a filesystem, another
    volume group or a device-mapper device; nothing is ever written over.
  - Does nothing when the volume exists already, so that a second run changes nothing.
options:
  vg:
    description: The volume group (made on O(pvs) when it does not exist).
    type: str
    required: true
  lv:
    description: The logical volume's name.
    type: str
    default: root
  pvs:
    description:
      - The devices the volume group is made on, when it does not exist (a whole disk or a
        partition). Not needed for a volume group that exists.
    type: list
    elements: path
    default: []
  size:
    description:
      - The volume's size, C(100%FREE) or C(N%VG) (extents), or a size such as C(20G).
    type: str
    default: 100%FREE
extends_documentation_fragment:
  - lifeline.rescue.command_timeout
  - lifeline.rescue.attributes
attributes:
  check_mode:
    support: full
    details: In check mode it only says which commands it would run.
  diff_mode:
    support: none
notes:
  - Needs lvm2 and blkid on the host. The role root_migrate calls it when O(vg) is given as
    C(root_migrate_lvm.vg).
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Make vg1/root on the second disk for the root to move to
  lifeline.rescue.root_volume:
    vg: vg1
    lv: root
    pvs: [/dev/vdb]

- name: Make a 20 GiB volume in a volume group that exists
  lifeline.rescue.root_volume:
    vg: vg0
    lv: newroot
    size: 20G
"""

RETURN = r"""
device:
  description: The logical volume's path.
  returned: always
  type: str
  sample: /dev/vg1/root
existed:
  description: True when the volume was there before this run (nothing was done).
  returned: always
  type: bool
  sample: false
commands:
  description: The commands run (in check mode, the commands that would run), in order.
  returned: always
  type: list
  elements: list
  sample: [[pvcreate, --yes, /dev/vdb], [vgcreate, --yes, vg1, /dev/vdb]]
notes:
  description: What the module found about the volume group and the volume.
  returned: always
  type: list
  elements: str
  sample: ["volume group vg0 exists, the volume is made in its free space"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.host import lvm
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import (
    TIME_LIMIT_OPTION,
    module_runner,
)


def argument_spec() -> dict:
    return {
        "vg": {"type": "str", "required": True},
        "lv": {"type": "str", "default": "root"},
        "pvs": {"type": "list", "elements": "path", "default": []},
        "size": {"type": "str", "default": "100%FREE"},
        **TIME_LIMIT_OPTION,
    }


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    run = module_runner(module, params["command_timeout"])
    try:
        plan = lvm.plan_volume(run, params["vg"], params["lv"], params["pvs"], params["size"])
        if not module.check_mode:
            for argv in plan.commands:
                run(argv)
            if plan.commands:
                # udev makes /dev/VG/LV; without udev (a minimal rescuer) LVM makes the nodes itself.
                run(["vgmknodes", plan.vg])
    except FAILURES as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(
        changed=bool(plan.commands),
        device=plan.device,
        existed=plan.exists,
        commands=plan.commands,
        notes=plan.notes,
    )


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
