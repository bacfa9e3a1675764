# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the modules that read or repair a target's root: where it is, where backups go."""

from __future__ import annotations


class ModuleDocFragment:
    # The root every inspecting or repairing module works in.
    DOCUMENTATION = r"""
options:
  root:
    description:
      - The target's root directory, C(/) in live mode. On a rescuer it is where the target's root is
        mounted (RV(lifeline.rescue.rescue_attach#module:root)); every path the module reads or
        writes is resolved inside it, and no link leads out of it.
    type: path
    required: true
"""

    # Modules that change files of the target keep a copy of each first.
    BACKUP = r"""
options:
  backup_dir:
    description:
      - Where each file or link is copied before it is changed, as a directory inside the root (one
        subdirectory per run, named by the run's time).
    type: str
    default: /var/backups/lifeline
"""
