# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The time limit of every program a module runs."""

from __future__ import annotations


class ModuleDocFragment:
    # Modules that run the rescuer's tools (mount, losetup, partx, lvm, blkid, cryptsetup, fsck...).
    DOCUMENTATION = r"""
options:
  command_timeout:
    description:
      - Seconds each program the module runs may take. A program still running then is killed with
        every process it started, and the module fails with a message naming it and the limit.
      - The default fits a slow or failing disk that retries its reads; raise it (the roles'
        C(lifeline_command_timeout)) for a disk slower still.
    type: int
    default: 300
"""
