#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Undo what rescue_attach did, newest step first."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rescue_detach
short_description: Undo an attachment made by rescue_attach, in reverse order
version_added: "0.1.0"
description:
  - Reads the state file that M(lifeline.rescue.rescue_attach) wrote for O(mount_point) and undoes
    its steps newest first; unmounts, deactivates and renames back volume groups, closes the LUKS
    mappings it opened, removes partition mappings and device nodes it created, detaches the loop
    device, stops the C(qemu-storage-daemon) export of an image that is not raw, removes directories
    it created.
  - A step already undone by hand is skipped. When a step cannot be undone (a mount held by a
    process), it stops there, names the processes, and keeps the remaining steps in the state file
    so that running it again finishes the job; nothing is forced or lost.
  - Nothing recorded for O(mount_point) means nothing to undo.
options:
  mount_point:
    description:
      - The root the attachment made available
        (the RV(lifeline.rescue.rescue_attach#module:root) it returned).
    type: path
    default: /mnt/lifeline
extends_documentation_fragment:
  - lifeline.rescue.command_timeout
  - lifeline.rescue.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports the steps it would undo of a read-write attachment.
      - Undoes a read-only attachment (the one check mode makes), which wrote nothing to the target.
  diff_mode:
    support: none
seealso:
  - module: lifeline.rescue.rescue_attach
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Detach the broken system again
  lifeline.rescue.rescue_detach:
    mount_point: "{{ attached.root }}"
"""

RETURN = r"""
undone:
  description: What was undone, one sentence a step, in the order it happened.
  returned: always
  type: list
  elements: str
  sample: [unmounted /mnt/lifeline, detached /dev/loop3 (/srv/vm.raw), removed /mnt/lifeline]
left:
  description: Steps that could not be undone yet (still recorded in the state file).
  returned: always
  type: list
  elements: dict
  sample: []
state_file:
  description: The state file read.
  returned: always
  type: str
  sample: /run/lifeline/attachments/mnt-lifeline.json
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.attach.attachment import (
    UndoError,
    recorded_steps,
    state_file_for,
    undo_plan,
    undo_recorded,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import (
    TIME_LIMIT_OPTION,
    module_runner,
)


def argument_spec() -> dict:
    return {"mount_point": {"type": "path", "default": "/mnt/lifeline"}, **TIME_LIMIT_OPTION}


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    mount_point = os.path.realpath(module.params["mount_point"])
    state_file = state_file_for(mount_point)
    result = {"changed": False, "undone": [], "left": [], "state_file": state_file}
    if not os.path.exists(state_file):
        module.exit_json(**result)
    try:
        steps, readonly = recorded_steps(state_file, mount_point)
    except FAILURES as exc:
        module.fail_json(msg=str(exc), **result)
    # A read-only attachment (check mode's) wrote nothing to the target: it is undone in check mode
    # too, or the rescuer would keep its loop devices and mounts.
    if module.check_mode and not readonly:
        result.update(changed=bool(steps), left=steps, undone=[f"would {what}" for what in undo_plan(steps)])
        module.exit_json(**result)
    try:
        result["undone"] = undo_recorded(
            module_runner(module, module.params["command_timeout"]), state_file, mount_point
        )
    except UndoError as exc:
        result.update(changed=bool(exc.done), undone=exc.done, left=exc.left)
        module.fail_json(
            msg=f"{exc}; the steps left are kept in {state_file}: fix that and run the detach again", **result
        )
    except FAILURES as exc:
        module.fail_json(msg=str(exc), **result)
    result["changed"] = bool(steps)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
