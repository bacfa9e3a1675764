#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Switch the live root to its copy with pivot_root, guarded by a dead-man switch; confirm or roll back."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: root_switch
short_description: Switch the live root to its copy with pivot_root, and switch back unless confirmed
version_added: "0.1.0"
description:
  - With O(state=switched), makes the filesystem mounted on O(new_root) the root of the running
    system - C(pivot_root NEW NEW/OLD) - and puts every mount that was under the old root back into
    place with C(mount --move), C(/proc), C(/sys), C(/dev) and C(/run) first, then the rest by depth
    as C(/proc/self/mountinfo) lists them. Mounts below a moved one travel with it; a bind of the
    old root's own filesystem is bound again from the new root; mounts hidden under another one
    stay with the old root (RV(mounts_left)). Missing mount points are created in the new root.
  - The switch is one step that undoes itself. When any part fails, the parts done are undone in
    reverse and the task fails saying so; the host is on its old root with every mount where it
    was. When the undo fails too, the message says exactly what state the host is in and which
    commands finish the way back.
  - Then, unless O(confirm_timeout=0), a dead-man switch is armed. A small self-contained python3
    script in O(state_dir) runs detached from the module and the connection. Unless the switch is
    confirmed (O(state=confirmed), from a fresh connection) within O(confirm_timeout) seconds, it
    switches back to the old root by itself and runs the O(restart_on_fallback) commands, recording
    every step in a JSON log next to it.
  - O(state=confirmed) confirms the new root; the dead-man switch exits.
    O(state=rolled_back) disarms a waiting dead-man switch and switches back now.
  - Run the preflight (M(lifeline.rescue.root_preflight)) and its plan first. Shared mounts
    (systemd makes C(/) shared) are refused by C(pivot_root), so the plan's
    C(mount --make-rprivate /) must have run.
options:
  new_root:
    description:
      - Where the copy of the root is mounted. It becomes C(/).
    type: path
    required: true
  old_root:
    description:
      - Where the old root goes, relative to the new root (C(mnt/oldroot) puts it on
        C(/mnt/oldroot) after the switch). Created when missing, removed again on the way back.
    type: str
    default: mnt/oldroot
  confirm_timeout:
    description:
      - Seconds the dead-man switch waits for O(state=confirmed) before it switches back by itself.
        C(0) arms no dead-man switch.
    type: int
    default: 300
  restart_on_fallback:
    description:
      - Shell commands the dead-man switch runs with C(/bin/sh -c), in order, after it switched
        back (the services that were stopped for the copy; C(mount -o remount,rw /) first when the
        old root was made read-only).
    type: list
    elements: str
    default: []
  state:
    description:
      - C(switched) switches to O(new_root) and arms the dead-man switch; C(confirmed) confirms the
        new root; C(rolled_back) switches back to the old root now.
    type: str
    choices: [switched, confirmed, rolled_back]
    default: switched
  state_dir:
    description:
      - Where the switch record, the dead-man script, its log and the confirmation live. It must
        be on a filesystem that moves with the switch (a tmpfs such as C(/run)), so that its path
        is the same on both roots.
    type: path
    default: /run/lifeline
extends_documentation_fragment:
  - lifeline.rescue.command_timeout
  - lifeline.rescue.attributes
attributes:
  check_mode:
    support: full
    details: Returns the plan (RV(steps) with outcome C(planned)) and changes nothing.
  diff_mode:
    support: none
notes:
  - The dead-man switch starts in a session of its own, but stays in the cgroup of the task. Where
    systemd-logind kills the processes of a closed session (C(KillUserProcesses=yes)), it would
    die with the connection; Debian's default is C(no).
  - The python running the module must exist at the same path on the new root, for the dead-man
    switch to run there.
seealso:
  - module: lifeline.rescue.root_preflight
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Switch to the copy on /mnt/newroot; switch back unless confirmed within 5 minutes
  lifeline.rescue.root_switch:
    new_root: /mnt/newroot
    confirm_timeout: 300
    restart_on_fallback:
      - mount -o remount,rw /
      - systemctl start rsyslog.service app.service
  register: switched

- name: Confirm from a fresh connection that the new root works
  lifeline.rescue.root_switch:
    new_root: /mnt/newroot
    state: confirmed

- name: Switch back to the old root now
  lifeline.rescue.root_switch:
    new_root: /mnt/newroot
    state: rolled_back

- name: Show the plan only
  lifeline.rescue.root_switch:
    new_root: /mnt/newroot
  check_mode: true
"""

RETURN = r"""
steps:
  description:
    - Every command run, in order, with C(command), C(outcome) (done, failed, or planned in check
      mode), C(seconds) and C(phase) (switch; undo when a failed switch was undone; switch back).
      C(created) lists the mount points a step created; C(error) says why a command failed.
    - With O(state=switched) and nothing to do, the steps of the switch as it was done.
  returned: always
  type: list
  elements: dict
  sample:
    - {command: pivot_root /mnt/newroot /mnt/newroot/mnt/oldroot, outcome: done, seconds: 0.004,
       phase: switch, created: [/mnt/newroot/mnt/oldroot]}
    - {command: mount --no-mtab --move /mnt/oldroot/proc /proc, outcome: done, seconds: 0.003, phase: switch}
mounts_moved:
  description:
    - The mounts put back on the new root, with C(mount_point), C(fstype), C(source) and C(action)
      (move, rebind - bound again from the new root - or carried along by the move of a mount
      above it).
  returned: always
  type: list
  elements: dict
  sample:
    - {mount_point: /proc, fstype: proc, source: proc, action: move}
    - {mount_point: /dev/pts, fstype: devpts, source: devpts, action: carried}
mounts_left:
  description: Mounts that stay under the old root, with C(mount_point), C(fstype), C(source) and C(reason).
  returned: always
  type: list
  elements: dict
  sample:
    - {mount_point: /run/netns, fstype: ext4, source: /dev/sda2, reason: hidden under the mount on /run}
deadman:
  description:
    - The dead-man switch's log as it is now; empty when none was armed. C(status) is waiting,
      confirmed, disarmed, switching back, restarting, switched back or switch back failed.
      C(script) and C(log) are its files, C(confirm_path) the file whose appearance confirms,
      C(deadline) (UTC) when it fires, C(pid) its process. Once it fired, C(steps) and
      C(restarts) hold what it ran, each with C(command), C(outcome), C(exit), C(output) and
      C(seconds).
  returned: always
  type: dict
  sample:
    status: waiting
    pid: 4242
    token: 5f0c2e8a91d34b77
    armed: "2025-01-31T10:00:00Z"
    deadline: "2025-01-31T10:05:00Z"
    timeout: 300
    script: /run/lifeline/deadman.py
    log: /run/lifeline/deadman.json
    confirm_path: /run/lifeline/confirmed
    steps: []
    restarts: []
record:
  description: The switch record (its plan and the steps done), read by O(state=rolled_back).
  returned: always
  type: str
  sample: /run/lifeline/switch.json
"""

import os

from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common import json as common_json
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.host import runner
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import pivot, switching


def argument_spec() -> dict:
    return {
        "new_root": {"type": "path", "required": True},
        "old_root": {"type": "str", "default": pivot.OLD_ROOT},
        "confirm_timeout": {"type": "int", "default": 300},
        "restart_on_fallback": {"type": "list", "elements": "str", "default": []},
        "state": {"type": "str", "choices": ["switched", "confirmed", "rolled_back"], "default": "switched"},
        "state_dir": {"type": "path", "default": pivot.STATE_DIR},
        **runner.TIME_LIMIT_OPTION,
    }


def load_result_encoder() -> None:
    """Load now what exit_json and fail_json load only when they run (the JSON profile of the result).

    After pivot_root, either way, the files of this module and of Ansible (the task's payload) lie
    below the root just left and cannot be imported by name any more: a module that could not print
    its result would fail a task whose switch worked.
    """
    profile = getattr(basic, "_ANSIBLE_PROFILE", None)
    encoder = getattr(common_json, "get_module_encoder", None)
    if profile and encoder:
        encoder(profile, common_json.Direction.MODULE_TO_CONTROLLER)


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    result: dict = {
        "changed": False,
        "steps": [],
        "mounts_moved": [],
        "mounts_left": [],
        "deadman": {},
        "record": os.path.join(params["state_dir"], pivot.RECORD),
    }
    if params["confirm_timeout"] < 0:
        module.fail_json(msg=f"confirm_timeout={params['confirm_timeout']}: give 0 or more seconds", **result)
    load_result_encoder()
    try:
        switching.STATES[params["state"]](
            runner.module_runner(module, params["command_timeout"]), module.check_mode, params, result
        )
    except FAILURES as exc:
        result["steps"] = getattr(exc, "log", None) or result["steps"]
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
